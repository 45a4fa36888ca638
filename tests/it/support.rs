//! Shared test helpers: temp folders, the real server on 127.0.0.1:0, the real client binary,
//! python3 scripts, and bounded waits on events.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anonshare::secret::ShareCode;

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

/// A running `anonshare-server` on a free loopback port with its own root.
pub struct Server {
    child: Child,
    pub addr: String,
    pub root: PathBuf,
    log: PathBuf,
    _dir: TempDir,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Server {
        let dir = TempDir::new();
        Server::start_in(dir, extra)
    }

    /// Starts a server whose root is `dir/root`, e.g. again after a restart.
    pub fn start_in(dir: TempDir, extra: &[&str]) -> Server {
        let root = dir.path().join("root");
        let log = dir.path().join(format!("server-{}.log", ShareCode::generate().unwrap()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_anonshare-server"))
            .args(["--listen", "127.0.0.1:0", "--root"])
            .arg(&root)
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
        let line = rx.recv_timeout(DEADLINE).expect("server printed its address");
        let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(addr.starts_with("127.0.0.1:"), "first line ends with HOST:PORT: {line:?}");
        Server { child, addr, root, log, _dir: dir }
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the server with SIGKILL and hands back its folder for a restart.
    pub fn kill(mut self) -> TempDir {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let dir = std::mem::replace(&mut self._dir, TempDir(PathBuf::new()));
        std::mem::forget(self);
        dir
    }

    pub fn url(&self, code: &str) -> String {
        format!("ftp://{}/{code}/", self.addr)
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

fn wait_output(child: Child, what: &str) -> Run {
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
        assert!(control.command("USER anonymous").starts_with("331"));
        assert!(control.command("PASS x").starts_with("230"));
        control
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
    let url = run.stdout.trim().to_owned();
    assert_eq!(run.stdout.lines().count(), 1, "upload prints exactly one line: {:?}", run.stdout);
    url
}

/// The share code of a share URL.
pub fn code_of(url: &str) -> String {
    url.trim_end_matches('/').rsplit('/').next().unwrap().to_owned()
}
