//! The `anonshare` command line against a real server: upload, list, download, shell, exit codes.

use std::fs;
use std::io::Write;

use anonshare::common::digest::Sha256Digest;
use anonshare::server::log::ShareTag;

use crate::fault_proxy::FaultProxy;
use crate::support::{
    RefusingAddress, Server, SmallDisk, TempDir, client, code_of, connections_with, events, random_bytes,
    shows_reply_code, upload, wait_until,
};

fn sha(bytes: &[u8]) -> String {
    Sha256Digest::of(bytes).to_string()
}

#[test]
fn files_and_folders_round_trip_byte_exact() {
    let server = Server::start();
    let dir = TempDir::new();
    let big = random_bytes(5 * 1024 * 1024 + 7, 1);
    dir.file("src/empty", b"");
    dir.file("src/one", b"x");
    dir.file("src/tree/deep/big.bin", &big);
    dir.file("src/tree/name with spaces.txt", b"spaces");
    dir.file("src/tree/\u{e9}t\u{e9} \u{65e5}\u{672c}.txt", "utf-8 \u{2713}".as_bytes());
    let url = upload(&server, dir.path(), &["src/empty", "src/one", "src/tree"]);
    assert!(url.starts_with(&format!("ftp://{}/", server.addr)) && url.ends_with('/'), "{url}");
    assert_eq!(code_of(&url).len(), 26);

    let list = client(&server.addr, dir.path(), &["list", &url], b"");
    assert_eq!(list.code, 0, "{}", list.stderr);
    let expected = format!(
        "0\t{}\tempty\n1\t{}\tone\n{}\t{}\ttree/deep/big.bin\n6\t{}\ttree/name with spaces.txt\n{}\t{}\ttree/\u{e9}t\u{e9} \u{65e5}\u{672c}.txt\n",
        sha(b""),
        sha(b"x"),
        big.len(),
        sha(&big),
        sha(b"spaces"),
        "utf-8 \u{2713}".len(),
        sha("utf-8 \u{2713}".as_bytes()),
    );
    assert_eq!(list.stdout, expected);

    let get = client(&server.addr, dir.path(), &["download", &url, "--dir", "out"], b"");
    assert_eq!(get.code, 0, "{}", get.stderr);
    assert_eq!(get.stdout.lines().count(), 5);
    let out = dir.path().join("out");
    assert_eq!(fs::read(out.join("empty")).unwrap(), b"");
    assert_eq!(fs::read(out.join("one")).unwrap(), b"x");
    assert_eq!(fs::read(out.join("tree/deep/big.bin")).unwrap(), big);
    assert_eq!(fs::read(out.join("tree/name with spaces.txt")).unwrap(), b"spaces");
    assert_eq!(
        fs::read_to_string(out.join("tree/\u{e9}t\u{e9} \u{65e5}\u{672c}.txt")).unwrap(),
        "utf-8 \u{2713}"
    );
}

#[test]
fn a_subset_of_files_can_be_downloaded() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("a.txt", b"a");
    dir.file("b.txt", b"b");
    dir.file("d/c.txt", b"c");
    let url = upload(&server, dir.path(), &["a.txt", "b.txt", "d"]);
    let get = client(&server.addr, dir.path(), &["download", &url, "b.txt", "d", "--dir", "out"], b"");
    assert_eq!(get.code, 0, "{}", get.stderr);
    let out = dir.path().join("out");
    assert!(!out.join("a.txt").exists());
    assert_eq!(fs::read(out.join("b.txt")).unwrap(), b"b");
    assert_eq!(fs::read(out.join("d/c.txt")).unwrap(), b"c");

    let missing = client(&server.addr, dir.path(), &["download", &url, "nope.txt", "--dir", "out2"], b"");
    assert_eq!(missing.code, 3, "{}", missing.stderr);
    assert!(missing.stderr.contains("nope.txt"), "{}", missing.stderr);
    assert!(!dir.path().join("out2").exists(), "nothing is downloaded when a name is wrong");
}

#[test]
fn json_output_describes_the_share() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("x \u{e9}.txt", b"json");
    let run = client(&server.addr, dir.path(), &["upload", "--json", "--expires", "1h", "x \u{e9}.txt"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.stdout.trim();
    assert!(out.starts_with("{\"url\":\"ftp://"), "{out}");
    assert!(out.contains(&format!("\"sha256\":\"{}\"", sha(b"json"))), "{out}");
    assert!(out.contains("\"path\":\"x \u{e9}.txt\""), "{out}");
    assert!(out.contains("\"owner_token\":\"") && out.contains("\"expires\":\""), "{out}");
    assert!(run.stderr.contains("owner token"), "the token is also told on stderr");

    let url = out.split("\"url\":\"").nth(1).unwrap().split('"').next().unwrap();
    let list = client(&server.addr, dir.path(), &["list", "--json", url], b"");
    assert_eq!(list.code, 0);
    assert!(list.stdout.contains("\"size\":4"), "{}", list.stdout);
}

#[test]
fn an_expired_share_is_gone_for_every_client_and_from_disk() {
    let server = Server::start_with(&["--sweep-interval", "1s"]);
    let dir = TempDir::new();
    dir.file("soon.txt", b"gone soon");
    let url = upload(&server, dir.path(), &["--expires", "2s", "soon.txt"]);
    let code = code_of(&url);
    let share_dir = server.root.join("shares").join(&code);
    let expired = format!("event=expired share={}", ShareTag::of(&code));
    // The share lives two seconds (on a busy machine it may be gone already); wait for the
    // sweeper to remove it from disk.
    assert!(share_dir.exists() || server.log().contains(&expired), "the share was on disk");
    wait_until("the sweeper removed the expired share", || !share_dir.exists());
    let list = client(&server.addr, dir.path(), &["list", &url], b"");
    assert_eq!(list.code, 3, "{}", list.stderr);
    let get = client(&server.addr, dir.path(), &["download", &url, "--dir", "out"], b"");
    assert_eq!(get.code, 3);
    wait_until("the server logged the expired share", || server.log().contains(&expired));
}

#[test]
fn a_share_that_never_existed_is_exit_3() {
    let server = Server::start();
    let dir = TempDir::new();
    let url = server.url("abcdefghijklmnopqrstuvwxyz");
    assert_eq!(client(&server.addr, dir.path(), &["list", &url], b"").code, 3);
    assert_eq!(client(&server.addr, dir.path(), &["download", &url], b"").code, 3);
    assert_eq!(client(&server.addr, dir.path(), &["list", &server.url("..")], b"").code, 3);
}

#[test]
fn corrupted_bytes_on_the_server_are_caught_and_never_saved() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("precious.bin", &random_bytes(100_000, 2));
    let url = upload(&server, dir.path(), &["precious.bin"]);
    // Flip one byte of the stored file, as bit rot would.
    let blobs = server.root.join("shares").join(code_of(&url)).join("blobs");
    let stored = fs::read_dir(&blobs).unwrap().next().unwrap().unwrap().path();
    let mut bytes = fs::read(&stored).unwrap();
    bytes[5000] ^= 0xff;
    fs::write(&stored, bytes).unwrap();

    let get = client(&server.addr, dir.path(), &["download", &url, "--dir", "out"], b"");
    assert_eq!(get.code, 4, "{}", get.stderr);
    assert!(get.stderr.contains("SHA-256"), "{}", get.stderr);
    let out = dir.path().join("out");
    assert!(!out.join("precious.bin").exists(), "a mismatching file never gets its final name");
    assert_eq!(fs::read_dir(&out).unwrap().count(), 0, "and no partial file is left");
}

#[test]
fn exit_codes_for_usage_connection_and_limits() {
    let server = Server::start_with(&["--max-expiry", "1h", "--default-expiry", "30m"]);
    let dir = TempDir::new();
    dir.file("f", b"f");
    assert_eq!(client(&server.addr, dir.path(), &["upload"], b"").code, 1);
    assert_eq!(client(&server.addr, dir.path(), &["upload", "missing-file"], b"").code, 1);
    assert_eq!(client(&server.addr, dir.path(), &["upload", "--expires", "soonish", "f"], b"").code, 1);
    assert_eq!(client(&server.addr, dir.path(), &["frobnicate"], b"").code, 1);
    let refused = client(&server.addr, dir.path(), &["upload", "--expires", "2h", "f"], b"");
    assert_eq!(
        refused.code, 1,
        "an expiry the server does not take is the user's to fix: {}",
        refused.stderr
    );
    assert!(refused.stderr.contains("longer than this server allows (1h)"), "{}", refused.stderr);
    assert!(!shows_reply_code(&refused.stderr, 504), "no protocol words: {}", refused.stderr);
    assert_eq!(
        refused.stderr.lines().filter(|line| line.starts_with("anonshare:")).count(),
        1,
        "{}",
        refused.stderr
    );
    // A port nobody listens on.
    let closed = RefusingAddress::new();
    assert_eq!(client(&closed.addr, dir.path(), &["upload", "f"], b"").code, 2);
}

#[test]
fn help_tells_the_exit_codes() {
    let dir = TempDir::new();
    let help = client("127.0.0.1:1", dir.path(), &["--help"], b"");
    assert_eq!(help.code, 0);
    let needles = [
        "upload",
        "list",
        "download",
        "info",
        "delete",
        "shell",
        "--json",
        "--expires",
        "--max-downloads",
        "--once",
        "--retries",
        "--parallel",
        "--token",
        "4    integrity failure",
    ];
    for needle in needles {
        assert!(help.stdout.contains(needle), "--help mentions {needle}");
    }
}

#[test]
fn the_shell_works_from_a_pipe() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("one.txt", b"first");
    dir.file("my two.txt", b"second");
    // The server from ANONSHARE_SERVER, then upload with comma-separated paths (one holds a space).
    let script = "1 one.txt, my two.txt\nquit\n";
    let run = client(&server.addr, dir.path(), &["shell"], script.as_bytes());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let url = run.stdout.trim().to_owned();
    assert!(url.starts_with("ftp://"), "{url}");

    let script = format!("list {url}\ndownload {url} my two.txt, --dir got\n5\n");
    let run = client(&server.addr, dir.path(), &["shell", &server.addr], script.as_bytes());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(&format!("5\t{}\tone.txt", sha(b"first"))), "{}", run.stdout);
    assert_eq!(fs::read(dir.path().join("got/my two.txt")).unwrap(), b"second");
    assert!(!dir.path().join("got/one.txt").exists());

    let run = client(&server.addr, dir.path(), &["shell", &server.addr], b"2 abcdefghijklmnopqrstuvwxyz\n");
    assert_eq!(run.code, 3, "a piped session that ends in failure says so: {}", run.stderr);
}

#[test]
fn a_connect_that_gets_no_answer_gives_up_after_the_timeout() {
    // A listener that accepts nothing, with its queue already full: the kernel drops further
    // handshakes, and a client's connect hears nothing.
    let silent = anonshare::common::platform::listen("127.0.0.1:0", 0).unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let _queued = std::net::TcpStream::connect(&addr).unwrap();
    let dir = TempDir::new();
    let started = std::time::Instant::now();
    let run = client(
        &addr,
        dir.path(),
        &["--timeout", "1s", "--retries", "0", "info", "abcdefghijklmnopqrstuvwxyz"],
        b"",
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("cannot reach") && run.stderr.contains("within 1s"), "{}", run.stderr);
    // --timeout 1s must be what bounds the connect. A connect that ignored it would wait the
    // default 60 s: half of that is a bound no busy machine comes near.
    let ignored = anonshare::client::connection::DEFAULT_TIMEOUT / 2;
    assert!(started.elapsed() < ignored, "took {:?}", started.elapsed());
}

#[test]
fn a_failed_upload_publishes_nothing() {
    let server = Server::start_with(&["--max-file-size", "10"]);
    let dir = TempDir::new();
    dir.file("a-small.txt", b"fits");
    dir.file("b-large.txt", b"does not fit in ten bytes");
    let run =
        client(&server.addr, dir.path(), &["--parallel", "1", "upload", "a-small.txt", "b-large.txt"], b"");
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "no URL: {}", run.stdout);
    let log = server.log();
    assert!(log.contains("event=share-created"), "{log}");
    assert!(log.contains("event=stor share="), "the first file was stored: {log}");
    assert!(!log.contains("event=sealed"), "the half-made share is not sealed: {log}");
    assert!(log.contains("event=deleted"), "and it is deleted at once: {log}");
    assert_eq!(fs::read_dir(server.root.join("shares")).unwrap().count(), 0, "nothing left on disk");
}

#[test]
fn a_shell_left_idle_past_the_servers_timeout_carries_on() {
    let server = Server::start_with(&["--idle-timeout", "1s"]);
    let dir = TempDir::new();
    dir.file("kept.txt", b"still listed");
    let url = upload(&server, dir.path(), &["kept.txt"]);
    let mut shell = std::process::Command::new(env!("CARGO_BIN_EXE_anonshare"))
        .args(["shell", &server.addr])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = shell.stdin.take().unwrap();
    writeln!(input, "list {url}").unwrap();
    // The server hangs up on the idle shell; the next command must still work.
    wait_until("the server closed the idle shell's connection", || {
        server.log().matches("reason=idle-timeout").count() >= 1
    });
    writeln!(input, "list {url}").unwrap();
    drop(input);
    let output = shell.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.matches("\tkept.txt\n").count(), 2, "both listings: {stdout}");
}

#[test]
fn an_upload_refused_midway_ends_with_the_servers_reason_not_retries() {
    let dir = TempDir::new();
    // A disk of its own, so that other work on the machine cannot move the floor: 48 MiB with
    // a floor of 16 MiB, which a 64 MiB upload crosses part way.
    let disk = SmallDisk::new("48m");
    let server = Server::start_on(&disk.dir.path().join("root"), &["--min-free-disk", "16M"]);
    dir.file("big.bin", &random_bytes(64 << 20, 71));
    let run = client(&server.addr, dir.path(), &["upload", "big.bin"], b"");
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stderr.contains("short of disk space"), "{}", run.stderr);
    assert!(!shows_reply_code(&run.stderr, 452), "no protocol words: {}", run.stderr);
    assert!(!run.stderr.contains("retry"), "a refusal is not retried: {}", run.stderr);
}

/// A plain FTP server without anonshare's extensions, as far as a client sees: it logs anyone
/// in and answers every other command `502`. Returns its address and how many connections it
/// has taken so far.
fn server_without_extensions() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let connections = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&connections);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut stream) = stream else { return };
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(b"220 ready\r\n");
            let reader = BufReader::new(stream.try_clone().unwrap());
            for line in reader.lines().take(20) {
                let Ok(line) = line else { break };
                let verb = line.split(' ').next().unwrap_or_default().to_ascii_uppercase();
                let reply: &[u8] = match verb.as_str() {
                    "USER" => b"230 logged in\r\n",
                    "TYPE" => b"200 type set\r\n",
                    "QUIT" => b"221 bye\r\n",
                    _ => b"502 command not implemented\r\n",
                };
                if stream.write_all(reply).is_err() || verb == "QUIT" {
                    break;
                }
            }
        }
    });
    (addr, connections)
}

#[test]
fn a_permanent_refusal_is_not_retried_rfc959_4_2_1() {
    // A 5yz reply is permanent: the same command would be refused again.
    let (addr, connections) = server_without_extensions();
    let dir = TempDir::new();
    dir.file("f", b"f");
    let run = client(&addr, dir.path(), &["--retries", "5", "upload", "f"], b"");
    assert_eq!(run.code, 5, "refused, not unreachable: {}", run.stderr);
    assert!(!run.stderr.contains("retry"), "{}", run.stderr);
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1, "one connection, no retry");
}

#[test]
fn the_shell_moves_files_on_as_many_connections_as_parallel_says() {
    // The proxy rewrites passive replies, which TLS would hide from it.
    let server = Server::start_with(&["--tls", "off"]);
    let dir = TempDir::new();
    let names: Vec<String> = (0..6).map(|n| format!("f{n}.bin")).collect();
    for (n, name) in names.iter().enumerate() {
        dir.file(name, &random_bytes(512 << 10, 40 + n as u64));
    }
    // Six files and three connections: each connection takes a file while the others are busy.
    // The proxy opens the first three STORs side by side, so each of the three has one to do
    // however the client's threads are scheduled.
    let proxy = FaultProxy::side_by_side(&server.addr, &[(0, 3)]);
    let script = format!("upload {}\nquit\n", names.join(", "));
    let run = client(&proxy.addr, dir.path(), &["--parallel", "3", "shell", &proxy.addr], script.as_bytes());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let url = run.stdout.trim().to_owned();
    wait_until("the server logged six stored files", || events(&server.log(), "stor") == 6);
    assert_eq!(
        connections_with(&server.log(), "stor").len(),
        3,
        "uploaded on 3 connections: {}",
        server.log()
    );

    // The share's listing, then three RETRs side by side.
    let proxy = FaultProxy::side_by_side(&server.addr, &[(1, 3)]);
    let script = format!("download {} --dir got\nquit\n", proxy.url(&code_of(&url)));
    let run = client(&proxy.addr, dir.path(), &["shell", &proxy.addr, "--parallel", "3"], script.as_bytes());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 6, "{}", run.stdout);
    wait_until("the server logged six sent files", || events(&server.log(), "retr") == 6);
    assert_eq!(
        connections_with(&server.log(), "retr").len(),
        3,
        "downloaded on 3 connections: {}",
        server.log()
    );
    for (n, name) in names.iter().enumerate() {
        assert_eq!(
            fs::read(dir.path().join("got").join(name)).unwrap(),
            random_bytes(512 << 10, 40 + n as u64)
        );
    }

    // One connection moves every file of the next upload, one after another.
    let script = format!("upload {}\nquit\n", names.join(", "));
    let run = client(&server.addr, dir.path(), &["shell", "--parallel=1", &server.addr], script.as_bytes());
    assert_eq!(run.code, 0, "{}", run.stderr);
    wait_until("the server logged six more stored files", || events(&server.log(), "stor") == 12);
    assert_eq!(connections_with(&server.log(), "stor").len(), 3 + 1, "{}", server.log());
}

#[test]
fn the_shell_takes_its_server_from_the_server_flag() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("one.txt", b"first");
    // No HOST:PORT after `shell`, and no address typed: --server names the server.
    let run = client("127.0.0.1:1", dir.path(), &["--server", &server.addr, "shell"], b"upload one.txt\n");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with(&format!("ftp://{}/", server.addr)), "{}", run.stdout);
}
