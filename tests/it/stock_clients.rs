//! More stock FTP clients as peers: tnftp and ncftp expand wildcards on the server, lftp, tnftp
//! and ncftpls list recursively, and segmented downloads (lftp `pget -n 4`, curl ranges) of a
//! budgeted file count one download per client, exactly, round after round. Clients on
//! 127.0.0.2, .3, ... stand for different hosts: one address is one client.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{
    Control, Run, Server, TempDir, code_of, curl, info_value, listing, random_bytes, site_info, upload,
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
    Run::from(child.wait_with_output().unwrap())
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
