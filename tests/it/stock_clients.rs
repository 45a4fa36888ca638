//! More stock FTP clients as peers: tnftp and ncftp expand wildcards on the server, lftp, tnftp
//! and ncftpls list recursively, and segmented downloads (lftp `pget -n 4`, curl ranges) of a
//! budgeted file count one download per client, exactly, round after round. Clients on
//! 127.0.0.2, .3, ... stand for different hosts: one address is one client. wget and rclone
//! mirror a share; wget resumes with `-c`, a cut budgeted download too, in the place it holds,
//! and exits 8 on a spent file; rclone's writes into a share are refused with replies it shows.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{
    Control, Run, Server, TempDir, code_of, curl, events, info_value, listing, random_bytes, site_info,
    upload, wait_output, wait_until,
};

/// Runs `program` with `args` in `cwd`, feeding `stdin`.
pub fn run(program: &str, cwd: &Path, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!("{program} is installed (.ci/run and make test-deps install it): {err}")
        });
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    wait_output(child, program)
}

/// A share holding `d/a.txt`, `d/b.txt`, `d/c.bin` and `d/sub/s.txt`; its code.
fn folder_share(server: &Server, dir: &TempDir) -> String {
    for (name, bytes) in [("a.txt", "a"), ("b.txt", "b"), ("c.bin", "c"), ("sub/s.txt", "s")] {
        dir.file(&format!("d/{name}"), bytes.as_bytes());
    }
    code_of(&upload(server, dir.path(), &["d"]))
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn tnftp_and_ncftp_fetch_by_wildcard_within_one_share() {
    let server = Server::start();
    let dir = TempDir::new();
    let code = folder_share(&server, &dir);
    let (host, port) = server.addr.rsplit_once(':').unwrap();

    // tnftp's mget sends NLST *.txt in the share's folder.
    fs::create_dir(dir.path().join("tnftp")).unwrap();
    let url = format!("ftp://{}/{code}/d/", server.addr);
    let tnftp = run("tnftp", &dir.path().join("tnftp"), &["-p", "-a", &url], "prompt off\nmget *.txt\nbye\n");
    assert_eq!(tnftp.code, 0, "{}{}", tnftp.stdout, tnftp.stderr);
    assert_eq!(names_in(&dir.path().join("tnftp")), ["a.txt", "b.txt"]);

    // ncftpget sends NLST /<code>/d/*.txt and fetches the paths it gets back.
    fs::create_dir(dir.path().join("ncftp")).unwrap();
    let pattern = format!("/{code}/d/[ab].*");
    let ncftp =
        run("ncftpget", &dir.path().join("ncftp"), &["-P", port, "-t", "20", host, ".", &pattern], "");
    assert_eq!(ncftp.code, 0, "{}{}", ncftp.stdout, ncftp.stderr);
    assert_eq!(names_in(&dir.path().join("ncftp")), ["a.txt", "b.txt"]);

    // Never across shares: a wildcard in place of a code, or at /, lists nothing.
    let mut control = Control::login(&server.addr);
    assert_eq!(listing(&mut control, "NLST /*").unwrap(), Vec::<String>::new());
    assert_eq!(listing(&mut control, "NLST *").unwrap(), Vec::<String>::new());
    assert_eq!(listing(&mut control, "LIST /*/d").unwrap(), Vec::<String>::new());
    assert_eq!(
        listing(&mut control, &format!("NLST /{code}/d/?.bin")).unwrap(),
        [format!("/{code}/d/c.bin")]
    );
    assert!(!server.log().contains("event=share-miss"), "a wildcard is no guess at a code");
}

#[test]
fn wildcard_and_recursive_listings_are_bounded() {
    let server = Server::start_with(&["--max-list-entries", "3"]);
    let dir = TempDir::new();
    let code = folder_share(&server, &dir);
    let mut control = Control::login(&server.addr);
    assert_eq!(listing(&mut control, &format!("NLST /{code}/d/*.txt")).unwrap().len(), 2);
    let refused = listing(&mut control, &format!("NLST /{code}/d/*")).unwrap_err();
    assert!(refused.starts_with("452 ") && refused.ends_with("[limit]"), "{refused}");
    let refused = listing(&mut control, &format!("LIST -R /{code}/d/sub/..")).unwrap_err();
    assert!(refused.starts_with("452 "), "{refused}");
}

#[test]
fn lftp_tnftp_and_ncftpls_list_a_share_recursively() {
    let server = Server::start();
    let dir = TempDir::new();
    let code = folder_share(&server, &dir);
    let (host, port) = server.addr.rsplit_once(':').unwrap();
    let url = format!("ftp://{}/{code}/d/", server.addr);

    let ncftpls =
        run("ncftpls", dir.path(), &["-P", port, "-t", "20", "-R", &format!("ftp://{host}/{code}/d/")], "");
    assert_eq!(ncftpls.code, 0, "{}", ncftpls.stderr);
    assert!(ncftpls.stdout.contains("./sub:") && ncftpls.stdout.contains(" s.txt"), "{}", ncftpls.stdout);

    let tnftp = run("tnftp", dir.path(), &["-p", "-a", &url], "ls -R\nbye\n");
    assert!(tnftp.stdout.contains("./sub:") && tnftp.stdout.contains(" s.txt"), "{}", tnftp.stdout);

    let lftp =
        run("lftp", dir.path(), &["-e", "set net:max-retries 1; set net:timeout 20; ls -R; bye", &url], "");
    assert_eq!(lftp.code, 0, "{}", lftp.stderr);
    assert!(lftp.stdout.contains(" s.txt"), "{}", lftp.stdout);

    // NLST -R: one path a line, below the folder listed.
    let mut control = Control::login(&server.addr);
    let names = listing(&mut control, &format!("NLST -1R /{code}/d")).unwrap();
    assert_eq!(names, ["a.txt", "b.txt", "c.bin", "sub", "sub/s.txt"]);
}

/// Downloads `url` with `lftp pget -n 4` from the address `from` into `dir/got.bin`; whether
/// it ends up whole, and the bytes it holds if any.
fn pget(dir: &Path, url: &str, from: &str) -> Option<Vec<u8>> {
    let script = format!(
        "set net:socket-bind-ipv4 {from}; set net:max-retries 1; set net:timeout 20; \
         set cmd:fail-exit yes; pget -n 4 {url} -o got.bin; bye"
    );
    let _ = fs::remove_file(dir.join("got.bin"));
    let run = run("lftp", dir, &["-e", &script], "");
    eprintln!("lftp from {from}: exit {} {}", run.code, run.stderr);
    fs::read(dir.join("got.bin")).ok()
}

#[test]
fn lftp_pget_spends_one_download_per_client_round_after_round() {
    let server = Server::start();
    let dir = TempDir::new();
    let bytes = random_bytes(6 << 20, 61);
    dir.file("big.bin", &bytes);
    for round in 0..3 {
        let url = upload(&server, dir.path(), &["--max-downloads", "2", "big.bin"]) + "big.bin";
        for client in 0..3 {
            let got = pget(dir.path(), &url, &format!("127.0.0.{}", 2 + client));
            match client {
                0 | 1 => {
                    assert!(
                        got.as_ref() == Some(&bytes),
                        "round {round}: client {client} gets it whole\n{}",
                        server.log()
                    )
                }
                // lftp allocates its output file (zeros) before the RETR that is refused.
                _ => assert!(
                    got.is_none_or(|g| g.iter().all(|&b| b == 0)),
                    "round {round}: the third gets no byte"
                ),
            }
        }
    }
    let log = server.log();
    let third: Vec<&str> = log.lines().filter(|l| l.contains("peer=127.0.0.4:")).collect();
    let sent = ["event=retr", "event=transfer-aborted", "event=download-counted"];
    assert!(
        !third.iter().any(|l| sent.iter().any(|event| l.contains(event))),
        "the third client is refused before any transfer starts: {third:#?}"
    );
    assert_eq!(server.downloads_counted(), 6, "two downloads a round, exactly");
}

#[test]
fn curl_ranges_from_one_address_are_one_download() {
    let server = Server::start();
    let dir = TempDir::new();
    let bytes = random_bytes(4 << 20, 62);
    dir.file("big.bin", &bytes);
    let url = upload(&server, dir.path(), &["--max-downloads", "2", "big.bin"]);
    let code = code_of(&url);
    let left = || {
        let mut control = Control::login(&server.addr);
        let info = site_info(&mut control, &format!("{code}/big.bin")).unwrap();
        info_value(&info, "downloads-left")
    };
    let half = bytes.len() / 2;
    // The tail first: a segment alone, even the one with the last byte, spends nothing.
    let (tail, got_tail) =
        curl(&["--interface", "127.0.0.2", "--range", &format!("{half}-"), &format!("{url}big.bin")]);
    assert_eq!(tail.code, 0, "{}", tail.stderr);
    assert!(got_tail == bytes[half..]);
    assert_eq!(left(), "2");
    let head_range = format!("0-{}", half - 1);
    let (head, got_head) =
        curl(&["--interface", "127.0.0.2", "--range", &head_range, &format!("{url}big.bin")]);
    assert_eq!(head.code, 0, "{}", head.stderr);
    assert!(got_head == bytes[..half]);
    assert_eq!(left(), "1", "head and tail: one whole download");
    let (whole, got) = curl(&["--interface", "127.0.0.3", &format!("{url}big.bin")]);
    assert_eq!(whole.code, 0, "{}", whole.stderr);
    assert!(got == bytes);
    let (spent, got) =
        curl(&["--interface", "127.0.0.4", "--range", &format!("{half}-"), &format!("{url}big.bin")]);
    assert_ne!(spent.code, 0);
    assert!(got.is_empty(), "nobody gets a part of a spent file");
}

#[test]
fn a_client_between_its_curl_ranges_keeps_its_place_in_a_once_budget() {
    let server = Server::start();
    let dir = TempDir::new();
    // Larger than the socket buffers can hold past the head: the server could not hand it all
    // to the network while curl reads the head.
    let bytes = random_bytes(24 << 20, 63);
    dir.file("once.bin", &bytes);
    let url = upload(&server, dir.path(), &["--once", "once.bin"]) + "once.bin";
    let half = 1 << 20;
    let head_range = format!("0-{}", half - 1);
    let (head, got_head) = curl(&["--interface", "127.0.0.2", "--range", &head_range, &url]);
    assert_eq!(head.code, 0, "{}", head.stderr);
    assert!(got_head == bytes[..half]);
    // The first client is away between its ranges: its place is kept, nobody else begins.
    let (other, got) = curl(&["--interface", "127.0.0.3", &url]);
    assert_ne!(other.code, 0, "a second client while the first holds the only place");
    assert!(got.is_empty(), "and it gets no byte");
    let (tail, got_tail) = curl(&["--interface", "127.0.0.2", "--range", &format!("{half}-"), &url]);
    assert_eq!(tail.code, 0, "the first client comes back for the rest: {}", tail.stderr);
    assert!(got_tail == bytes[half..]);
    assert_eq!(server.downloads_counted(), 1);
    let (spent, got) = curl(&["--interface", "127.0.0.3", &url]);
    assert_ne!(spent.code, 0);
    assert!(got.is_empty(), "nobody gets a part of a spent file");
}

/// Runs wget with `args` in `cwd`: one try, bounded waits, no `~/.wgetrc`.
fn wget(cwd: &Path, args: &[&str]) -> Run {
    let mut all = vec!["--no-config", "--tries=1", "--timeout=20", "--no-verbose"];
    all.extend_from_slice(args);
    run("wget", cwd, &all, "")
}

/// Runs rclone with `args` in `cwd`: no config file of the user's, one try, bounded waits.
fn rclone(cwd: &Path, args: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--config", "none.conf", "--retries", "1", "--low-level-retries", "1"]);
    all.extend_from_slice(&["--contimeout", "20s", "--timeout", "20s"]);
    run("rclone", cwd, &all, "")
}

/// rclone's on-the-fly remote for `path` on `server`. rclone needs a password, obscured, even
/// for an anonymous login.
fn rclone_remote(server: &Server, path: &str) -> String {
    let obscured = rclone(Path::new("/"), &["obscure", "anonymous"]);
    assert_eq!(obscured.code, 0, "{}", obscured.stderr);
    let (host, port) = server.addr.rsplit_once(':').unwrap();
    format!(":ftp,host={host},port={port},user=anonymous,pass={}:{path}", obscured.stdout.trim())
}

/// Every file below `dir` with its bytes, by its path from `dir`.
fn tree_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            let name = entry.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            (name, fs::read(entry.path()).unwrap())
        })
        .collect()
}

/// A share holding `d/a.txt`, `d/big.bin` (300 kB), `d/sub/s.txt` and the empty `d/sub/e.txt`;
/// its code and the files by their path in the share.
fn mirror_share(server: &Server, dir: &TempDir) -> (String, BTreeMap<String, Vec<u8>>) {
    let files: BTreeMap<String, Vec<u8>> = [
        ("d/a.txt", b"a\n".to_vec()),
        ("d/big.bin", random_bytes(300_000, 81)),
        ("d/sub/e.txt", Vec::new()),
        ("d/sub/s.txt", b"s\n".to_vec()),
    ]
    .into_iter()
    .map(|(name, bytes)| (name.to_owned(), bytes))
    .collect();
    for (name, bytes) in &files {
        dir.file(&format!("up/{name}"), bytes);
    }
    let code = code_of(&upload(server, &dir.path().join("up"), &["d"]));
    (code, files)
}

#[test]
fn wget_fetches_a_file_and_a_whole_share_by_url() {
    let server = Server::start();
    let dir = TempDir::new();
    let (code, files) = mirror_share(&server, &dir);
    let url = server.url(&code);

    fs::create_dir(dir.path().join("one")).unwrap();
    let one = wget(&dir.path().join("one"), &[&format!("{url}d/big.bin")]);
    assert_eq!(one.code, 0, "{}", one.stderr);
    assert!(fs::read(dir.path().join("one/big.bin")).unwrap() == files["d/big.bin"]);

    // -r lists each folder with LIST into a `.listing` it deletes after; -nH --cut-dirs=1
    // drops the host and the code from the paths.
    fs::create_dir(dir.path().join("all")).unwrap();
    let all = wget(&dir.path().join("all"), &["-r", "-nH", "--cut-dirs=1", "--no-parent", &url]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    assert!(tree_of(&dir.path().join("all")) == files, "{:?}", tree_of(&dir.path().join("all")).keys());

    // --mirror keeps its `.listing` files, and a second run fetches nothing new: LIST's times
    // and sizes tell wget its copies are current.
    fs::create_dir(dir.path().join("mirror")).unwrap();
    let mirror = || wget(&dir.path().join("mirror"), &["--mirror", "-nH", "--cut-dirs=1", &url]);
    assert_eq!(mirror().code, 0);
    let mut mirrored = tree_of(&dir.path().join("mirror"));
    mirrored.retain(|name, _| !name.ends_with(".listing"));
    assert!(mirrored == files, "{:?}", mirrored.keys());
    let retrs = events(&server.log(), "retr");
    assert_eq!(mirror().code, 0);
    assert_eq!(events(&server.log(), "retr"), retrs, "nothing fetched twice");
}

#[test]
fn wget_c_resumes_a_cut_download_where_it_stopped() {
    let server = Server::start();
    let dir = TempDir::new();
    let bytes = random_bytes(1 << 20, 82);
    dir.file("f.bin", &bytes);
    let url = upload(&server, dir.path(), &["f.bin"]) + "f.bin";
    fs::create_dir(dir.path().join("got")).unwrap();
    let got = dir.path().join("got");
    assert_eq!(wget(&got, &[&url]).code, 0);

    // The download cut at 300000 bytes: wget -c sends REST 300000 and fetches the rest alone.
    fs::OpenOptions::new().write(true).open(got.join("f.bin")).unwrap().set_len(300_000).unwrap();
    let resumed = wget(&got, &["-c", &url]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(fs::read(got.join("f.bin")).unwrap() == bytes);
    let rest = format!(" path=\"/f.bin\" offset=300000 bytes={}", bytes.len() - 300_000);
    assert!(server.log().contains(&rest), "{}", server.log());

    // A whole file: SIZE says so, and wget fetches nothing.
    let retrs = events(&server.log(), "retr");
    assert_eq!(wget(&got, &["-c", &url]).code, 0);
    assert_eq!(events(&server.log(), "retr"), retrs);
    assert!(fs::read(got.join("f.bin")).unwrap() == bytes);
}

#[test]
fn wget_gets_a_budgeted_file_once_and_a_second_host_exits_8_with_no_file() {
    let server = Server::start();
    let dir = TempDir::new();
    let bytes = random_bytes(2 << 20, 83);
    dir.file("two/big.bin", &bytes);
    dir.file("two/other.txt", b"other");
    let url = upload(&server, dir.path(), &["--max-downloads", "1", "two"]) + "two/big.bin";
    for host in ["first", "second"] {
        fs::create_dir(dir.path().join(host)).unwrap();
    }

    let first = wget(&dir.path().join("first"), &["--bind-address", "127.0.0.2", &url]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(fs::read(dir.path().join("first/big.bin")).unwrap() == bytes);
    assert_eq!(server.downloads_counted(), 1);

    // The share is still there (other.txt is left), but its big.bin is spent: SIZE and RETR
    // get 550 [not-found], and wget exits 8, a server's error reply, with no file.
    let second = wget(&dir.path().join("second"), &["--bind-address", "127.0.0.3", &url]);
    assert_eq!(second.code, 8, "{}", second.stderr);
    assert_eq!(names_in(&dir.path().join("second")), Vec::<String>::new());
    let log = server.log();
    let refused = log.lines().filter(|line| line.contains(" peer=127.0.0.3:"));
    assert!(
        refused.filter(|line| line.contains("event=refused code=550 reason=not-found verb=RETR")).count()
            == 1,
        "{log}"
    );
    assert_eq!(server.downloads_counted(), 1);
}

#[test]
fn rclone_copies_lists_and_checks_a_whole_share() {
    let server = Server::start();
    let dir = TempDir::new();
    let (code, files) = mirror_share(&server, &dir);
    let remote = rclone_remote(&server, &code);

    let copy = rclone(dir.path(), &["copy", &remote, "got"]);
    assert_eq!(copy.code, 0, "{}", copy.stderr);
    assert!(tree_of(&dir.path().join("got")) == files, "{:?}", tree_of(&dir.path().join("got")).keys());

    // lsf (and lsjson) read MLSD: every file with its size.
    let lsf = rclone(dir.path(), &["lsf", "-R", "--files-only", "--format", "ps", &remote]);
    assert_eq!(lsf.code, 0, "{}", lsf.stderr);
    let sizes: Vec<String> = files.iter().map(|(name, bytes)| format!("{name};{}", bytes.len())).collect();
    assert_eq!(lsf.stdout.lines().collect::<Vec<_>>(), sizes);

    // rclone's FTP backend has no hash (not even with HASH or XSHA256 offered): `check`
    // compares sizes only, and `check --download` compares the bytes.
    let check = rclone(dir.path(), &["check", "--download", &remote, "got"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    let mut changed = files["d/big.bin"].clone();
    changed[150_000] ^= 1;
    fs::write(dir.path().join("got/d/big.bin"), changed).unwrap();
    let check = rclone(dir.path(), &["check", "--download", &remote, "got"]);
    assert_eq!(check.code, 1, "one byte changed is a difference: {}", check.stderr);
}

#[test]
fn rclone_cannot_write_into_a_share_and_changes_nothing() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("up/new.txt", b"new");
    dir.file("up/n/n.txt", b"n");

    // An unsealed share is seen by its owners only. rclone looks for /CODE/in by listing
    // /CODE, then for /CODE by listing /: its connections find neither, and its MKD /CODE gets
    // 553, which it shows.
    let mut owner = Control::login(&server.addr);
    let share = crate::support::make_share(&mut owner, 600);
    assert!(crate::support::store(&mut owner, "in/f.txt", b"f").starts_with("226 "));
    let into = rclone_remote(&server, &format!("{}/in", share.code));
    let copy = rclone(dir.path(), &["copy", "up", &into]);
    assert_ne!(copy.code, 0);
    let shown = copy.stderr.contains("553 MKD makes no share") && copy.stderr.contains("[outside-share]");
    assert!(shown, "{}", copy.stderr);
    assert_eq!(events(&server.log(), "stor"), 1, "the owner's alone: {}", server.log());
    // The owner's upload goes on, and publishes its file alone.
    let sealed = owner.command("SITE SEAL");
    assert!(sealed.starts_with("200 "), "{sealed}");
    let lsf = rclone(dir.path(), &["lsf", "-R", &rclone_remote(&server, &share.code)]);
    assert_eq!(lsf.stdout, "in/\nin/f.txt\n", "{}", lsf.stderr);

    // A sealed share is read-only: rclone's STOR into a folder of it gets 550 [sealed].
    let (code, files) = mirror_share(&server, &TempDir::new());
    let copy = rclone(dir.path(), &["copy", "up", &rclone_remote(&server, &format!("{code}/d"))]);
    assert_ne!(copy.code, 0);
    assert!(copy.stderr.contains("550 Share is sealed and read-only [sealed]"), "{}", copy.stderr);
    let got = rclone(dir.path(), &["copy", &rclone_remote(&server, &code), "got"]);
    assert_eq!(got.code, 0, "{}", got.stderr);
    assert!(tree_of(&dir.path().join("got")) == files, "the share is as it was");
}

#[test]
fn wget_c_resumes_a_cut_budgeted_download_in_the_place_it_holds() {
    let server = Server::start();
    let dir = TempDir::new();
    // Larger than the socket buffers can hold: the server is still sending when wget is cut.
    let bytes = random_bytes(24 << 20, 84);
    dir.file("once.bin", &bytes);
    let url = upload(&server, dir.path(), &["--once", "once.bin"]) + "once.bin";
    for host in ["first", "second"] {
        fs::create_dir(dir.path().join(host)).unwrap();
    }
    let got = dir.path().join("first/once.bin");

    // wget from 127.0.0.2, slowed to 2 MB/s, is killed once it holds 512 KiB.
    let mut slow = Command::new("wget")
        .args(["--no-config", "--tries=1", "--timeout=20", "--quiet", "--limit-rate=2m"])
        .args(["--bind-address", "127.0.0.2", &url])
        .current_dir(dir.path().join("first"))
        .spawn()
        .expect("wget is installed");
    wait_until("wget holds 512 KiB", || fs::metadata(&got).is_ok_and(|meta| meta.len() >= 512 << 10));
    slow.kill().unwrap();
    slow.wait().unwrap();
    let cut = fs::metadata(&got).unwrap().len();
    assert!(cut < bytes.len() as u64, "cut before its end: {cut}");

    // Its place is kept: another host gets nothing meanwhile, and the first one resumes.
    let other = wget(&dir.path().join("second"), &["--bind-address", "127.0.0.3", &url]);
    assert_eq!(other.code, 8, "{}", other.stderr);
    assert_eq!(names_in(&dir.path().join("second")), Vec::<String>::new());
    let resumed = wget(&dir.path().join("first"), &["-c", "--bind-address", "127.0.0.2", &url]);
    assert_eq!(resumed.code, 0, "{}\n{}", resumed.stderr, server.log());
    assert!(fs::read(&got).unwrap() == bytes);
    assert!(server.log().contains(&format!(" offset={cut} bytes={}", bytes.len() as u64 - cut)));
    assert_eq!(server.downloads_counted(), 1);

    let late = wget(&dir.path().join("second"), &["--bind-address", "127.0.0.3", &url]);
    assert_eq!(late.code, 8, "{}", late.stderr);
    assert_eq!(names_in(&dir.path().join("second")), Vec::<String>::new());
}
