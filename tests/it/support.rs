//! Shared test helpers: temp folders, the real server on 127.0.0.1:0, the real client binary,
//! python3 scripts, and bounded waits on events.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anonshare::common::digest::Sha256Digest;
use anonshare::common::secret::ShareCode;
use anonshare::proto::{CreatedShare, parse_epsv_reply};

/// Longest any single wait in a test may take.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A folder under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!("anonshare-it-{}", ShareCode::generate().unwrap()));
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `bytes` to `rel` (creating folders) and returns its path.
    pub fn file(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A running `anonshare-server` on a free loopback port; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: String,
    pub root: PathBuf,
    log: PathBuf,
    /// The folder holding the root, when this server owns it.
    dir: Option<TempDir>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Server {
        Server::start_in(TempDir::new(), extra)
    }

    /// Starts a server whose root is `dir/root`, e.g. again after a restart.
    pub fn start_in(dir: TempDir, extra: &[&str]) -> Server {
        let mut server = Server::start_on(&dir.path().join("root"), extra);
        server.dir = Some(dir);
        server
    }

    /// Starts another server on `root`, such as the root of a running one.
    pub fn start_on(root: &Path, extra: &[&str]) -> Server {
        Server::try_start_on(root, extra).unwrap_or_else(|err| panic!("{err}"))
    }

    /// Starts a server on `root`; one that exits instead of printing its address gives what it
    /// wrote to stderr.
    pub fn try_start_on(root: &Path, extra: &[&str]) -> Result<Server, String> {
        Server::spawn(Command::new(env!("CARGO_BIN_EXE_anonshare-server")), root, extra)
    }

    /// Starts a server in its own folder that may have at most `files` open at once
    /// (`ulimit -n`, through bash, as an operator's shell would).
    pub fn start_with_open_files(files: u32, extra: &[&str]) -> Server {
        let dir = TempDir::new();
        let mut command = Command::new("bash");
        command.args(["-c", &format!("ulimit -n {files} && exec \"$0\" \"$@\"")]);
        command.arg(env!("CARGO_BIN_EXE_anonshare-server"));
        let mut server =
            Server::spawn(command, &dir.path().join("root"), extra).unwrap_or_else(|err| panic!("{err}"));
        server.dir = Some(dir);
        server
    }

    fn spawn(mut command: Command, root: &Path, extra: &[&str]) -> Result<Server, String> {
        let log = root.with_file_name(format!("server-{}.log", ShareCode::generate().unwrap()));
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--root"])
            .arg(root)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start anonshare-server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(DEADLINE).expect("the server printed its address or exited");
        let addr = line.trim().rsplit(' ').next().unwrap_or_default().to_owned();
        let server = Server { child, addr, root: root.to_owned(), log, dir: None };
        if server.addr.starts_with("127.0.0.1:") {
            Ok(server)
        } else {
            Err(format!("no HOST:PORT in its first line {line:?}; stderr: {}", server.log().trim()))
        }
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Budgeted downloads the server counted so far: told on their `retr` line, or on a line of
    /// their own when the send failed after the count.
    pub fn downloads_counted(&self) -> usize {
        let log = self.log();
        log.lines()
            .filter(|line| line.contains(" event=download-counted ") || line.ends_with(" counted=yes"))
            .count()
    }

    /// Kills the server with SIGKILL and hands back its folder for a restart.
    pub fn kill(mut self) -> TempDir {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.dir.take().expect("a server started with its own folder")
    }

    /// Kills the server with SIGKILL and starts it again on the same root.
    pub fn restart(mut self, extra: &[&str]) -> Server {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let mut again = Server::start_on(&self.root, extra);
        again.dir = self.dir.take();
        again
    }

    pub fn url(&self, code: &str) -> String {
        format!("ftp://{}/{code}/", self.addr)
    }

    /// Sends signal `name` (`TERM`, `INT`, `HUP`, `STOP`, `CONT`) to the server process with the shell's own
    /// `kill` (a `kill` program is not on every machine).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("sh").args(["-c", "kill -s \"$1\" \"$2\"", "sh", name, &pid]).status();
        assert!(status.expect("run sh").success(), "kill -s {name} {pid} failed");
    }

    /// Waits for the server to exit by itself and returns its exit code.
    pub fn exit_code(&mut self) -> Option<i32> {
        let mut status = None;
        wait_until("the server exited", || {
            status = self.child.try_wait().expect("look at the server process");
            status.is_some()
        });
        status.and_then(|status| status.code())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a finished client run produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs `anonshare` with `args` against `server`, in `cwd`, feeding `stdin`.
pub fn client(server: &str, cwd: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_anonshare"))
        .args(args)
        .current_dir(cwd)
        .env("ANONSHARE_SERVER", server)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start anonshare");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    wait_output(child, "anonshare")
}

/// Runs a python3 script with `args`; the script gets them in sys.argv[1:].
pub fn python(script: &str, args: &[&str]) -> Run {
    let child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is installed");
    wait_output(child, "python3")
}

/// Runs curl with `args`.
pub fn curl(args: &[&str]) -> (Run, Vec<u8>) {
    let child = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl is installed");
    let output = wait_child(child, "curl");
    let bytes = output.stdout.clone();
    (Run::from(output), bytes)
}

/// Waits for a child's exit and what it wrote, killing it past a minute.
pub fn wait_output(child: Child, what: &str) -> Run {
    Run::from(wait_child(child, what))
}

/// Waits for a child's exit, killing it past the deadline.
fn wait_child(child: Child, what: &str) -> Output {
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.expect("child output"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            panic!("{what} did not finish within 60 s");
        }
    }
}

/// Polls `condition` until it holds, failing the test after [`DEADLINE`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    let mut pause = Duration::from_millis(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// A loopback address that refuses connections for as long as this lives: the local port of a
/// connection of our own. No listener can bind a port a connection holds, whereas a port that
/// was free a moment ago may be another test's server or data port by the time it is used.
pub struct RefusingAddress {
    pub addr: String,
    _held: (TcpStream, TcpStream, TcpListener),
}

impl RefusingAddress {
    pub fn new() -> RefusingAddress {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (theirs, _) = listener.accept().unwrap();
        let addr = ours.local_addr().unwrap().to_string();
        RefusingAddress { addr, _held: (ours, theirs, listener) }
    }
}

/// A raw control connection for protocol-level tests.
pub struct Control {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Control {
    pub fn connect(addr: &str) -> Control {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Control { stream, reader }
    }

    /// Reads one whole reply (multi-line included) and returns its lines.
    pub fn reply(&mut self) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).unwrap();
            assert!(n > 0, "connection closed while waiting for a reply; got {lines:?}");
            assert!(line.ends_with("\r\n"), "reply lines end with CRLF: {line:?}");
            let line = line.trim_end().to_owned();
            let done = match lines.first() {
                None => line.as_bytes().get(3) != Some(&b'-'),
                Some(first) => line.starts_with(&first[..3]) && line.as_bytes().get(3) == Some(&b' '),
            };
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends a command line and returns the reply's first line.
    pub fn command(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply().remove(0)
    }

    pub fn login(addr: &str) -> Control {
        let mut control = Control::connect(addr);
        assert!(control.reply()[0].starts_with("220"));
        assert!(control.command("USER anonymous").starts_with("230"));
        control
    }

    /// Logs in with USER and PASS sent in one write, for a server whose idle timeout is short:
    /// a pause of this thread between the two would otherwise be idle time.
    pub fn login_at_once(addr: &str) -> Control {
        let mut control = Control::connect(addr);
        control.send(b"USER anonymous\r\nPASS x\r\n");
        assert!(control.reply()[0].starts_with("220"));
        assert!(control.reply()[0].starts_with("230"));
        assert!(control.reply()[0].starts_with("230"), "a PASS sent anyway is answered 230");
        control
    }

    /// The reply lines that have arrived so far, without waiting for more.
    pub fn arrived(&mut self) -> Vec<String> {
        let mut bytes = self.reader.buffer().to_vec();
        self.reader.consume(bytes.len());
        self.stream.set_nonblocking(true).unwrap();
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(err) => panic!("reading replies: {err}"),
            }
        }
        self.stream.set_nonblocking(false).unwrap();
        String::from_utf8_lossy(&bytes).lines().map(str::to_owned).collect()
    }

    /// Whether the server closed the connection (reads until EOF or a timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut rest = Vec::<u8>::new();
        self.reader.read_to_end(&mut rest).is_ok()
    }
}

/// Uploads with the real client and returns the share URL.
pub fn upload(server: &Server, cwd: &Path, args: &[&str]) -> String {
    let mut all = vec!["upload"];
    all.extend_from_slice(args);
    let run = client(&server.addr, cwd, &all, b"");
    assert_eq!(run.code, 0, "upload failed: {}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 1, "upload prints exactly one line: {:?}", run.stdout);
    if args.contains(&"--json") {
        return run.stdout.trim().to_owned();
    }
    // The pin a TLS server's URL carries is left off, so tests can add paths; ftps.rs reads it.
    let (url, pin) = run.stdout.trim().split_once('#').unwrap_or((run.stdout.trim(), "pin=sha256//"));
    assert!(pin.starts_with("pin=sha256//"), "{pin}");
    url.to_owned()
}

/// The share code of a share URL.
/// Whether `text` shows `code` as a reply code would stand: a word of its own. A port or a
/// share code that holds its digits (`45207`, `ab452c`) does not count.
pub fn shows_reply_code(text: &str, code: u16) -> bool {
    let code = code.to_string();
    text.split(|c: char| c.is_whitespace() || "()[]\"':,;.".contains(c)).any(|word| word == code)
}

pub fn code_of(url: &str) -> String {
    let url = url.split('#').next().unwrap();
    url.trim_end_matches('/').rsplit('/').next().unwrap().to_owned()
}

/// A share just made with SITE MKSHARE on a raw connection.
pub struct NewShare {
    pub code: String,
    pub token: String,
}

/// Sends `SITE MKSHARE <seconds>` and reads the code and owner token from the 257 reply.
pub fn make_share(control: &mut Control, seconds: u64) -> NewShare {
    let created = control.command(&format!("SITE MKSHARE {seconds}"));
    assert!(created.starts_with("257 \"/") && created.contains("; owner token "), "{created}");
    let created = CreatedShare::parse(&created[4..]).unwrap_or_else(|| panic!("{created}"));
    NewShare { code: created.code, token: created.owner_token }
}

/// Opens a passive data port with EPSV and returns it.
pub fn epsv(control: &mut Control) -> u16 {
    let reply = control.command("EPSV");
    assert!(reply.starts_with("229 "), "{reply}");
    parse_epsv_reply(&reply[4..]).unwrap_or_else(|| panic!("EPSV reply names a port: {reply}"))
}

/// Opens a passive data connection for the next transfer command.
pub fn data_connection(control: &mut Control) -> TcpStream {
    TcpStream::connect(("127.0.0.1", epsv(control))).unwrap()
}

/// Declares the SHA-256 of `bytes` for `path`, opens a data connection and sends STOR. Gives
/// the data connection once the server said 150, else its refusal.
pub fn open_upload(control: &mut Control, path: &str, bytes: &[u8]) -> Result<TcpStream, String> {
    let declared = control.command(&format!("SITE DIGEST {} {path}", Sha256Digest::of(bytes)));
    assert!(declared.starts_with("200 "), "{declared}");
    let data = data_connection(control);
    let reply = control.command(&format!("STOR {path}"));
    if reply.starts_with("150 ") { Ok(data) } else { Err(reply) }
}

/// Announces the size of the next upload with `ALLO`: small files then go to the share's pack.
pub fn announce(control: &mut Control, bytes: &[u8]) {
    let reply = control.command(&format!("ALLO {}", bytes.len()));
    assert!(reply.starts_with("200 "), "{reply}");
}

/// Stores `bytes` at `path` with its digest declared; the final reply (226 when stored).
pub fn store(control: &mut Control, path: &str, bytes: &[u8]) -> String {
    match open_upload(control, path, bytes) {
        Ok(mut data) => {
            data.write_all(bytes).unwrap();
            drop(data);
            control.reply().remove(0)
        }
        Err(refusal) => refusal,
    }
}

/// Sends `line` (RETR, NLST, MLSD ...) with a data connection open; what came over the data
/// connection once the server said 226, else its refusal.
pub fn receive(control: &mut Control, line: &str) -> Result<Vec<u8>, String> {
    let mut data = data_connection(control);
    let reply = control.command(line);
    if !reply.starts_with("150 ") {
        return Err(reply);
    }
    data.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut bytes = Vec::new();
    data.read_to_end(&mut bytes).unwrap();
    let done = control.reply().remove(0);
    assert!(done.starts_with("226 "), "{line}: {done}");
    Ok(bytes)
}

/// Downloads `path` with RETR: its bytes once `226` came, else the refusal, before the `150` or
/// after it, with the bytes that came before it (a budgeted download refused at its end).
pub fn fetch_or_refusal(control: &mut Control, path: &str) -> Result<Vec<u8>, (String, usize)> {
    let mut data = data_connection(control);
    let reply = control.command(&format!("RETR {path}"));
    if !reply.starts_with("150 ") {
        return Err((reply, 0));
    }
    data.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut bytes = Vec::new();
    data.read_to_end(&mut bytes).unwrap();
    let done = control.reply().remove(0);
    match done.starts_with("226 ") {
        true => Ok(bytes),
        false => Err((done, bytes.len())),
    }
}

/// Downloads `path` with RETR: its bytes, or the refusal.
pub fn fetch(control: &mut Control, path: &str) -> Result<Vec<u8>, String> {
    receive(control, &format!("RETR {path}"))
}

/// The lines of a listing command such as `NLST /<code>`, or the refusal.
pub fn listing(control: &mut Control, line: &str) -> Result<Vec<String>, String> {
    let bytes = receive(control, line)?;
    let text = String::from_utf8(bytes).unwrap();
    Ok(text.lines().map(str::to_owned).collect())
}

/// The whole SITE INFO reply for share `code`, or the refusal.
pub fn site_info(control: &mut Control, code: &str) -> Result<Vec<String>, String> {
    control.send(format!("SITE INFO /{code}\r\n").as_bytes());
    let lines = control.reply();
    if lines[0].starts_with("211-") { Ok(lines) } else { Err(lines.join("\n")) }
}

/// The value of ` <key> <value>` in a SITE INFO reply.
pub fn info_value(info: &[String], key: &str) -> String {
    let prefix = format!(" {key} ");
    let line = info.iter().find(|line| line.starts_with(&prefix));
    line.unwrap_or_else(|| panic!("SITE INFO has {key}: {info:?}"))[prefix.len()..].to_owned()
}

/// The exact 213 reply HASH gives for `path` holding `bytes`.
pub fn hash_reply(path: &str, bytes: &[u8]) -> String {
    let last = bytes.len().saturating_sub(1);
    format!("213 SHA-256 0-{last} {} {path}", Sha256Digest::of(bytes))
}

/// The connections (`conn=N`) on which the server logged `event` (such as `stor` or `retr`).
pub fn connections_with(log: &str, event: &str) -> BTreeSet<String> {
    let needle = format!(" event={event} ");
    log.lines()
        .filter(|line| line.contains(&needle))
        .filter_map(|line| line.split(' ').find(|word| word.starts_with("conn=")))
        .map(str::to_owned)
        .collect()
}

/// How many times the server logged `event`.
pub fn events(log: &str, event: &str) -> usize {
    log.matches(&format!(" event={event} ")).count()
}

/// Names of all files below `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every `.part` file below `dir` with its length. Files may vanish while this looks.
pub fn part_files(dir: &Path) -> Vec<(std::path::PathBuf, u64)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .filter_map(|e| Some((e.path().to_owned(), e.metadata().ok()?.len())))
        .collect()
}

/// What a share's manifest records: its files' paths, and how many of them have a blob of their
/// own (the others are in the pack).
pub struct Recorded {
    pub files: Vec<String>,
    pub blobs: usize,
}

/// Checks every record of the manifest in `share_dir`. An `F` record has 6 tab-separated fields
/// and names a blob of its size, or `@<offset>` in the pack with its bytes all there; a `D`
/// record has 3. Only a kill may leave a torn last record (one without its newline).
pub fn manifest_files(share_dir: &Path, torn_tail_allowed: bool) -> Recorded {
    let text = fs::read_to_string(share_dir.join("manifest")).unwrap();
    let whole = text.rfind('\n').map_or(0, |end| end + 1);
    let torn = &text[whole..];
    assert!(torn.is_empty() || torn_tail_allowed, "{}: torn record {torn:?}", share_dir.display());
    let pack_len = |name: &str| fs::metadata(share_dir.join(name)).map_or(0, |m| m.len());
    let mut recorded = Recorded { files: Vec::new(), blobs: 0 };
    for line in text[..whole].lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let bad = || format!("{}: malformed record {line:?}", share_dir.display());
        match fields.as_slice() {
            ["F", sha256, size, modified, blob, path] => {
                assert!(sha256.parse::<Sha256Digest>().is_ok(), "{}", bad());
                let size: u64 = size.parse().unwrap_or_else(|_| panic!("{}", bad()));
                assert!(modified.parse::<i64>().is_ok() && !path.is_empty(), "{}", bad());
                if let Some(place) = blob.strip_prefix('@') {
                    // `@<offset>` in the share's `pack`, or `@<instance>:<offset>` in `pack.<instance>`.
                    let (pack, offset) = match place.split_once(':') {
                        Some((instance, offset)) => (format!("pack.{instance}"), offset),
                        None => ("pack".to_owned(), place),
                    };
                    let offset: u64 = offset.parse().unwrap_or_else(|_| panic!("{}", bad()));
                    assert!(offset + size <= pack_len(&pack), "{}: its bytes are in {pack}", bad());
                } else {
                    let blob = fs::symlink_metadata(share_dir.join("blobs").join(blob));
                    assert_eq!(blob.map(|m| m.len()).ok(), Some(size), "{}: blob of that size", bad());
                    recorded.blobs += 1;
                }
                recorded.files.push((*path).to_owned());
            }
            ["D", modified, path] => {
                assert!(modified.parse::<i64>().is_ok() && !path.is_empty(), "{}", bad());
            }
            _ => panic!("{}", bad()),
        }
    }
    recorded
}

/// A small tmpfs of its own, unmounted when dropped (tests run as root, as CI does).
pub struct SmallDisk {
    pub dir: TempDir,
}

impl SmallDisk {
    pub fn new(size: &str) -> SmallDisk {
        let dir = TempDir::new();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(mounted.success(), "mounting a {size} tmpfs needs root, as CI has");
        SmallDisk { dir }
    }

    pub fn free(&self) -> u64 {
        anonshare::common::platform::free_space(self.dir.path()).unwrap()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}
