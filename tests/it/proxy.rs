//! The client's retries through the [`FaultProxy`]: cut data and control connections, and a
//! network loss, are taken up again; every file arrives byte-exact, and the proxy's counters
//! show that only the bytes the other side lost cross again.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

use crate::fault_proxy::{DATA_ACCEPT_WINDOW, rewrite_passive_reply};
use crate::fault_proxy::{Direction, Fault, FaultProxy};
use crate::support::{
    Control, DEADLINE, Server, TempDir, client, code_of, curl, data_connection, files_under, random_bytes,
    receive, upload,
};

/// The proxy reads and rewrites the control connection (the passive ports), which TLS would
/// hide from it: its servers speak in the clear. FTPS is tested in `ftps.rs`.
const PLAINTEXT: &[&str] = &["--tls", "off"];

// The smoke tests: the proxy against today's client, which does not retry. The cut tests pin
// down today's failure; they change once the client resumes.

const MIB: usize = 1 << 20;

#[test]
fn passive_replies_point_at_the_proxy() {
    let mut asked = Vec::new();
    let mut check = |line: &str, expected: Option<&str>| {
        let got = rewrite_passive_reply(line.as_bytes(), |port| {
            asked.push(port);
            Ok(4242)
        });
        assert_eq!(got.unwrap().map(|b| String::from_utf8(b).unwrap()).as_deref(), expected, "{line:?}");
    };
    check(
        "229 Entering Extended Passive Mode (|||40001|)\r\n",
        Some("229 Entering Extended Passive Mode (|||4242|)\r\n"),
    );
    check(
        "227 Entering Passive Mode (127,0,0,1,156,65).\r\n",
        Some("227 Entering Passive Mode (127,0,0,1,16,146).\r\n"),
    );
    check("229 no port here\r\n", None);
    check("150 Sending /x (229 bytes)\r\n", None);
    check("226 Transfer complete\r\n", None);
    assert_eq!(asked, [40001, 156 * 256 + 65]);
}

#[test]
fn a_clean_proxy_passes_every_byte() {
    let server = Server::start_with(PLAINTEXT);
    let proxy = FaultProxy::start(&server.addr, Vec::new());
    let dir = TempDir::new();
    let files = [
        ("big.bin", random_bytes(5 * MIB + 3, 1)),
        ("notes.txt", random_bytes(1000, 2)),
        ("photos/a.jpg", random_bytes(70_001, 3)),
    ];
    for (path, bytes) in &files {
        dir.file(path, bytes);
    }
    let total: u64 = files.iter().map(|(_, bytes)| bytes.len() as u64).sum();

    let up = client(
        &proxy.addr,
        dir.path(),
        &["--parallel", "1", "upload", "big.bin", "notes.txt", "photos"],
        b"",
    );
    assert_eq!(up.code, 0, "upload through the proxy: {}", up.stderr);
    let url = up.stdout.trim().to_owned();
    assert!(url.starts_with(&format!("ftp://{}/", proxy.addr)), "the URL names the proxy: {url}");
    proxy.wait_idle();
    // An upload opens one data connection per STOR and sends each file exactly once.
    assert_eq!((proxy.control_connections(), proxy.data_connections()), (1, 3));
    assert_eq!(proxy.data_bytes_to_server(), total);
    assert_eq!(proxy.data_bytes_to_client(), 0);

    let out = TempDir::new();
    let down = client(&proxy.addr, out.path(), &["--parallel", "1", "download", &url, "--dir", "."], b"");
    assert_eq!(down.code, 0, "download through the proxy: {}", down.stderr);
    for (path, bytes) in &files {
        assert_same_bytes(&out.path().join(path), bytes);
    }
    proxy.wait_idle();
    // A download lists each folder (MLSD) and then opens one RETR per file. Listings are data
    // too, so the exact count adds the listings the server gives for the same folders.
    let code = code_of(&url);
    let listings = mlsd_bytes(&server, &[&format!("/{code}"), &format!("/{code}/photos")]);
    assert_eq!((proxy.control_connections(), proxy.data_connections()), (2, 3 + 2 + 3));
    assert_eq!(proxy.data_bytes_to_client(), total + listings);
    assert_eq!(proxy.data_bytes_to_server(), total, "a download sends nothing on data connections");
    assert_eq!(proxy.faults_fired(), 0);
}

#[test]
fn a_pasv_client_goes_through_the_proxy_too() {
    let server = Server::start_with(PLAINTEXT);
    let dir = TempDir::new();
    let bytes = random_bytes(300_001, 9);
    dir.file("f.bin", &bytes);
    let code = code_of(&upload(&server, dir.path(), &["f.bin"]));
    let proxy = FaultProxy::start(&server.addr, Vec::new());
    let (run, got) = curl(&["--disable-epsv", &format!("{}f.bin", proxy.url(&code))]);
    assert_eq!(run.code, 0, "curl over PASV: {}", run.stderr);
    assert!(got == bytes, "curl got {} bytes, not the {} stored", got.len(), bytes.len());
    proxy.wait_idle();
    assert_eq!((proxy.data_connections(), proxy.data_bytes_to_client()), (1, bytes.len() as u64));
    let replies = String::from_utf8(proxy.control_transcript(0, Direction::ToClient)).unwrap();
    assert!(replies.contains("\r\n227 Entering Passive Mode (127,0,0,1,"), "{replies}");
}

#[test]
fn cut_data_connections_are_resumed_and_no_byte_is_sent_twice() {
    let (server, code, files) = share_with_big_file(UNBUFFERABLE_BYTES);
    // Data connection 0 is the MLSD of the share, 1 the RETR of big.bin (files go in path order),
    // 2 its first resume, 3 its second.
    let cuts = vec![Fault::data_to_client(1, MIB as u64), Fault::data_to_client(2, 5 * MIB as u64)];
    let proxy = FaultProxy::start(&server.addr, cuts);
    let (run, out) = download_through(&proxy, &code);
    assert_eq!(run.code, 0, "a cut download resumes: {}", run.stderr);
    assert!(run.stderr.contains("was cut") && run.stderr.contains("retry 1 of 5"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("resuming big.bin at byte {MIB}\n")), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("resuming big.bin at byte {}\n", 6 * MIB)), "{}", run.stderr);
    assert_eq!(proxy.faults_fired(), 2);
    check_downloaded_once(&proxy, &server, &code, out.path(), &files);
}

#[test]
fn a_cut_control_connection_is_taken_up_again() {
    let (server, code, files) = share_with_big_file(3 * MIB);
    // Where the client's RETR ends on its control connection, from a clean run.
    let clean = FaultProxy::start(&server.addr, Vec::new());
    let out = TempDir::new();
    let run = client(
        &clean.addr,
        out.path(),
        &["--parallel", "1", "download", &clean.url(&code), "--dir", "."],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    clean.wait_idle();
    let commands = clean.control_transcript(0, Direction::ToServer);
    let retr = format!("RETR /{code}/big.bin\r\n");
    let at = find(&commands, retr.as_bytes()).expect("the client sent RETR") + retr.len();

    // The control connection goes down just after the RETR got through, and its data with it.
    let proxy = FaultProxy::start(&server.addr, vec![Fault::control_to_server(0, at as u64)]);
    let (run, out) = download_through(&proxy, &code);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The client may see the cut at any step of the transfer first: the control connection's
    // close while it waits for the 229 of the EPSV sent in the same write as the RETR, or for
    // the 150, or the data connection refused, closed or reset. Either way it retries once.
    assert!(run.stderr.contains("; retry 1 of 5"), "{}", run.stderr);
    assert_eq!(proxy.faults_fired(), 1);
    assert_eq!(proxy.control_connections(), 2);
    check_downloaded(out.path(), &files);
    // The 150 never arrived, so the client never read that RETR's data connection: what the
    // proxy had passed on there before the cut was lost at the client, and crosses again. No
    // more than that: the file is not fetched a third time.
    proxy.wait_idle();
    let once = mlsd_bytes(&server, &[&format!("/{code}")]) + total(&files);
    let sent = proxy.data_bytes_to_client();
    assert!(sent >= once && sent <= once + 3 * MIB as u64, "{sent} bytes for {once}");
}

#[test]
fn a_network_loss_mid_download_is_resumed() {
    let (server, code, files) = share_with_big_file(UNBUFFERABLE_BYTES);
    let cut = Fault::data_to_client(1, MIB as u64 + 17).and_control();
    let proxy = FaultProxy::start(&server.addr, vec![cut]);
    let (run, out) = download_through(&proxy, &code);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("resuming big.bin at byte {}\n", MIB + 17)), "{}", run.stderr);
    assert_eq!(proxy.faults_fired(), 1);
    check_downloaded_once(&proxy, &server, &code, out.path(), &files);
}

#[test]
fn spent_retries_end_in_exit_2_and_keep_the_partial_file() {
    let (server, code, _) = share_with_big_file(UNBUFFERABLE_BYTES);
    let cuts = (1..=3).map(|nth| Fault::data_to_client(nth, 0)).collect();
    let proxy = FaultProxy::start(&server.addr, cuts);
    let out = TempDir::new();
    let run = client(
        &proxy.addr,
        out.path(),
        &["--parallel", "1", "--retries", "2", "download", &proxy.url(&code), "--dir", "."],
        b"",
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("gave up after 2 retries"), "{}", run.stderr);
    assert_eq!(run.stderr.matches("; retry ").count(), 2, "{}", run.stderr);
    assert!(!out.path().join("big.bin").exists(), "nothing under the final name");
}

#[test]
fn cut_uploads_resume_from_the_bytes_the_server_kept() {
    let server = Server::start_with(PLAINTEXT);
    let cuts = vec![Fault::data_to_server(0, MIB as u64), Fault::control_to_server(1, 0)];
    let proxy = FaultProxy::start(&server.addr, cuts);
    let dir = TempDir::new();
    let bytes = random_bytes(UNBUFFERABLE_BYTES, 8);
    dir.file("big.bin", &bytes);
    dir.file("small.txt", b"after the big one");
    let run = client(&proxy.addr, dir.path(), &["--parallel", "1", "upload", "big.bin", "small.txt"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The server keeps what it had read when the cut reset the connection; bytes still in its
    // socket buffer were lost with it, and only those cross again.
    let kept: u64 = run
        .stderr
        .split("resuming big.bin at byte ")
        .nth(1)
        .and_then(|rest| rest.lines().next()?.parse().ok())
        .unwrap_or_else(|| panic!("the upload resumed: {}", run.stderr));
    assert!(kept <= MIB as u64, "{kept}");
    assert_eq!(proxy.faults_fired(), 2);
    proxy.wait_idle();
    let sent = bytes.len() as u64 + (MIB as u64 - kept) + 17;
    assert_eq!(proxy.data_bytes_to_server(), sent, "only bytes the server lost cross again");
    let out = TempDir::new();
    let got = client(
        &server.addr,
        out.path(),
        &["--parallel", "1", "download", &server.url(&code_of(run.stdout.trim())), "--dir", "."],
        b"",
    );
    assert_eq!(got.code, 0, "{}", got.stderr);
    assert_same_bytes(&out.path().join("big.bin"), &bytes);
    assert!(crate::support::part_files(&server.root).is_empty(), "nothing kept after the seal");
}

#[test]
fn a_small_upload_cut_every_time_spends_the_retries() {
    // A small file's bytes go before the server's go-ahead and nothing of it is kept when it is
    // cut: sending it again from its first byte is no progress, so the retries run out.
    let server = Server::start_with(PLAINTEXT);
    let cuts = (0..10).map(|nth| Fault::data_to_server(nth, 100)).collect();
    let proxy = FaultProxy::start(&server.addr, cuts);
    let dir = TempDir::new();
    dir.file("small.bin", &random_bytes(5000, 10));
    let run =
        client(&proxy.addr, dir.path(), &["--retries", "2", "--parallel", "1", "upload", "small.bin"], b"");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("gave up after 2 retries"), "{}", run.stderr);
    assert_eq!(proxy.data_connections(), 3, "the first try and two retries");
}

#[test]
fn bytes_corrupted_on_the_way_up_are_caught_and_nothing_is_published() {
    let server = Server::start_with(PLAINTEXT);
    let proxy = FaultProxy::start(&server.addr, vec![Fault::flip_data_to_server(0, 5000)]);
    let dir = TempDir::new();
    dir.file("precious.bin", &random_bytes(100_000, 9));
    let run = client(&proxy.addr, dir.path(), &["--parallel", "1", "upload", "precious.bin"], b"");
    assert_eq!(proxy.faults_fired(), 1);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("SHA-256"), "{}", run.stderr);
    assert_eq!(run.stdout, "", "no share path is printed");
    proxy.wait_idle();
    let shares = fs::read_dir(server.root.join("shares")).unwrap().count();
    assert_eq!(shares, 0, "the unsealed share was deleted, never published");
}

#[test]
fn dropping_the_proxy_ends_every_connection_at_once() {
    let (server, code, _) = share_with_big_file(3 * MIB);
    let proxy = FaultProxy::start(&server.addr, Vec::new());
    let mut control = Control::login(&proxy.addr);
    let mut data = data_connection(&mut control);
    let sending = control.command(&format!("RETR /{code}/big.bin"));
    assert!(sending.starts_with("150 "), "{sending}");
    data.set_read_timeout(Some(DEADLINE)).unwrap();
    data.read_exact(&mut [0; 1000]).unwrap();
    let dropped = Instant::now();
    drop(proxy);
    // Its threads look up every POLL; a drop that waited out a data port's accept window
    // instead would take all of it.
    let waited = dropped.elapsed();
    assert!(waited < DATA_ACCEPT_WINDOW / 2, "the proxy's threads took {waited:?}");
    assert!(data.read_to_end(&mut Vec::new()).is_ok(), "the data connection was closed");
    assert!(control.is_closed(), "the control connection was closed");
}

/// A server holding a share (uploaded directly) with `big.bin` of `size` bytes and a small file
/// after it; the share's code and its files.
fn share_with_big_file(size: usize) -> (Server, String, Vec<(&'static str, Vec<u8>)>) {
    let server = Server::start_with(PLAINTEXT);
    let dir = TempDir::new();
    let files = vec![("big.bin", random_bytes(size, 7)), ("small.txt", b"after the big one".to_vec())];
    for (name, bytes) in &files {
        dir.file(name, bytes);
    }
    let code = code_of(&upload(&server, dir.path(), &["big.bin", "small.txt"]));
    (server, code, files)
}

fn total(files: &[(&str, Vec<u8>)]) -> u64 {
    files.iter().map(|(_, bytes)| bytes.len() as u64).sum()
}

/// Downloads the share through the proxy, one file at a time so data connections come in path
/// order; the run and the folder it saved into.
fn download_through(proxy: &FaultProxy, code: &str) -> (crate::support::Run, TempDir) {
    let out = TempDir::new();
    let args = ["--parallel", "1", "download", &proxy.url(code), "--dir", "."];
    (client(&proxy.addr, out.path(), &args, b""), out)
}

/// Every file arrived byte-exact, none is left partial, and every byte crossed the proxy once:
/// the files and the share's one listing, exactly.
fn check_downloaded_once(
    proxy: &FaultProxy,
    server: &Server,
    code: &str,
    dir: &Path,
    files: &[(&str, Vec<u8>)],
) {
    check_downloaded(dir, files);
    proxy.wait_idle();
    let listing = mlsd_bytes(server, &[&format!("/{code}")]);
    assert_eq!(proxy.data_bytes_to_client(), listing + total(files), "every byte crossed once");
}

/// Every file arrived byte-exact, and no partial file is left.
fn check_downloaded(dir: &Path, files: &[(&str, Vec<u8>)]) {
    for (name, bytes) in files {
        assert_same_bytes(&dir.join(name), bytes);
    }
    let mut names: Vec<String> = files.iter().map(|(name, _)| name.to_string()).collect();
    names.sort();
    assert_eq!(files_under(dir), names, "no .anonshare-part left");
}

/// Size of a file cut after 1 MiB: far more than the socket buffers between the proxy and the
/// sender hold (a few MiB here), so the sender is still sending at the cut. With 2 MiB, a server
/// cut after 1 MiB had already sent everything and said 226.
const UNBUFFERABLE_BYTES: usize = 24 * MIB + 5;

/// Bytes the server sends for `MLSD` of each folder, straight from the server.
fn mlsd_bytes(server: &Server, folders: &[&str]) -> u64 {
    let mut control = Control::login(&server.addr);
    folders.iter().map(|folder| receive(&mut control, &format!("MLSD {folder}")).unwrap().len() as u64).sum()
}

fn assert_same_bytes(path: &Path, expected: &[u8]) {
    let got = fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    assert!(
        got == expected,
        "{}: {} bytes differ from the {} sent",
        path.display(),
        got.len(),
        expected.len()
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[test]
fn a_control_connection_cut_mid_greeting_is_retried() {
    let server = Server::start_with(PLAINTEXT);
    let proxy = FaultProxy::start(&server.addr, vec![Fault::control_to_client(0, 3)]);
    let dir = TempDir::new();
    dir.file("a.txt", b"sent on the second try");
    let run = client(&proxy.addr, dir.path(), &["--parallel", "1", "upload", "a.txt"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("greeting: server closed the connection; retry 1 of 5"), "{}", run.stderr);
    proxy.wait_idle();
    assert_eq!(proxy.control_transcript(0, Direction::ToClient), b"220", "a reply split mid-line");
    assert_eq!(proxy.control_transcript(0, Direction::ToServer), b"");
    assert_eq!((proxy.faults_fired(), proxy.data_connections()), (1, 1));
}

#[test]
fn many_files_move_on_parallel_connections_and_arrive_whole() {
    let server = Server::start_with(PLAINTEXT);
    // The first four STORs run side by side: each of the four connections takes a file.
    let proxy = FaultProxy::side_by_side(&server.addr, &[(0, 4)]);
    let dir = TempDir::new();
    let files: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| (format!("many/f{i:02}.bin"), random_bytes(1000 + i * 7919, 60 + i as u64)))
        .collect();
    for (path, bytes) in &files {
        dir.file(path, bytes);
    }
    let up = client(&proxy.addr, dir.path(), &["--parallel", "4", "upload", "many"], b"");
    assert_eq!(up.code, 0, "{}", up.stderr);
    proxy.wait_idle();
    // One connection makes and seals the share; three more join it with the owner token.
    assert_eq!((proxy.control_connections(), proxy.data_connections()), (4, 12));
    // Two listings (the share, then many/), then four RETRs side by side.
    let down_proxy = FaultProxy::side_by_side(&server.addr, &[(2, 4)]);
    let url = down_proxy.url(&code_of(up.stdout.trim()));
    let out = TempDir::new();
    let down =
        client(&down_proxy.addr, out.path(), &["--parallel", "4", "download", &url, "--dir", "."], b"");
    assert_eq!(down.code, 0, "{}", down.stderr);
    for (path, bytes) in &files {
        assert_same_bytes(&out.path().join(path), bytes);
    }
    assert_eq!(down.stdout.lines().count(), files.len(), "one saved path per file: {}", down.stdout);
    down_proxy.wait_idle();
    assert_eq!((down_proxy.control_connections(), down_proxy.data_connections()), (4, 2 + 12));
}

#[test]
fn a_wrong_token_is_refused_even_after_a_reconnect() {
    let (server, code, _) = share_with_big_file(1000);
    // The first connection dies in its greeting, before SITE DELETE was ever sent.
    let proxy = FaultProxy::start(&server.addr, vec![Fault::control_to_client(0, 3)]);
    let dir = TempDir::new();
    let wrong = "aaaaaaaaaaaaaaaaaaaaaaaaaa";
    let run = client(&proxy.addr, dir.path(), &["delete", "--token", wrong, &proxy.url(&code)], b"");
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("retry 1 of 5"), "{}", run.stderr);
    assert!(server.root.join("shares").join(&code).exists(), "the share is still there");
}
