//! Hostile input and limits: every bound the peer controls, and what the server answers.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use anonshare::common::digest::Sha256Digest;
use anonshare::proto::parse_epsv_reply;

use crate::support::{
    Control, DEADLINE, Server, SmallDisk, TempDir, announce, client, code_of, data_connection, events, fetch,
    info_value, make_share, python, random_bytes, site_info, store, upload, wait_until,
};

/// A logged-in connection that owns a fresh share; returns it and the share's code.
fn owner(server: &Server) -> (Control, String) {
    let mut control = Control::login(&server.addr);
    let code = make_share(&mut control, 600).code;
    assert!(control.command("TYPE I").starts_with("200 "));
    (control, code)
}

/// Sends `bytes` as file `name` and returns the final reply's first line.
fn stor(control: &mut Control, name: &str, bytes: &[u8]) -> String {
    let mut data = data_connection(control);
    let first = control.command(&format!("STOR {name}"));
    if !first.starts_with("150 ") {
        return first;
    }
    // The server may stop reading once a limit is crossed; that is its answer, not ours.
    let _ = data.write_all(bytes);
    let _ = data.shutdown(Shutdown::Write);
    let reply = control.reply().remove(0);
    drop(data);
    reply
}

/// Blob files on disk in `server`'s share `code` (finished files) and `.part` files anywhere.
fn stored_files(server: &Server, code: &str) -> (usize, usize) {
    let blobs = std::fs::read_dir(server.root.join("shares").join(code).join("blobs"))
        .map(|d| d.count())
        .unwrap_or(0);
    let parts = walkdir::WalkDir::new(&server.root)
        .into_iter()
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".part")))
        .count();
    (blobs, parts)
}

#[test]
fn size_and_count_limits_get_552_and_leave_nothing() {
    let server = Server::start_with(&[
        "--max-file-size",
        "1M",
        "--max-share-size",
        "1536K",
        "--max-files-per-share",
        "3",
    ]);
    let (mut control, code) = owner(&server);
    let too_big = stor(&mut control, "big.bin", &random_bytes(2 << 20, 1));
    assert!(too_big.starts_with("552 ") && too_big.contains("file would exceed"), "{too_big}");
    assert_eq!(stored_files(&server, &code), (0, 0), "nothing of the rejected file remains");
    assert!(stor(&mut control, "a", &random_bytes(1 << 20, 2)).starts_with("226 "));
    let over_share = stor(&mut control, "b", &random_bytes(600 << 10, 3));
    assert!(over_share.starts_with("552 ") && over_share.contains("share would exceed"), "{over_share}");
    assert!(stor(&mut control, "b", b"small").starts_with("226 "));
    assert!(stor(&mut control, "c", b"").starts_with("226 "));
    let fourth = stor(&mut control, "d", b"x");
    assert!(fourth.starts_with("552 ") && fourth.contains("most files"), "{fourth}");
    let folder = control.command("MKD more");
    assert!(folder.starts_with("552 "), "folders count too: {folder}");
    assert_eq!(stored_files(&server, &code), (3, 0));
    assert!(control.command("NOOP").starts_with("200 "), "the connection goes on");
}

#[test]
fn the_free_disk_floor_refuses_uploads_and_keeps_serving_downloads() {
    let dir = TempDir::new();
    dir.file("kept.txt", b"still here");
    let server = Server::start();
    let url = upload(&server, dir.path(), &["kept.txt"]);
    let folder = server.kill();
    // A floor far above any real disk: every upload would cross it.
    let server = Server::start_in(folder, &["--min-free-disk", "1000000T"]);
    let (mut control, code) = owner(&server);
    let refused = stor(&mut control, "x", b"bytes");
    assert!(refused.starts_with("452 "), "{refused}");
    assert_eq!(stored_files(&server, &code), (0, 0));
    let url = server.url(&code_of(&url));
    let get = client(&server.addr, dir.path(), &["download", &url, "--dir", "out"], b"");
    assert_eq!(get.code, 0, "downloads go on: {}", get.stderr);
    let refused = client(&server.addr, dir.path(), &["upload", "kept.txt"], b"");
    assert_eq!(refused.code, 5, "{}", refused.stderr);
}

/// Logs in, makes a share, announces `size` bytes and sends STOR; the data connection when
/// the server said 150, else its refusal.
fn announced_upload(server: &Server, size: usize) -> (Control, Result<TcpStream, String>) {
    let (mut control, _) = owner(server);
    assert!(control.command(&format!("ALLO {size}")).starts_with("200 "));
    let data = data_connection(&mut control);
    let reply = control.command("STOR cut.bin");
    let outcome = if reply.starts_with("150 ") { Ok(data) } else { Err(reply) };
    (control, outcome)
}

#[test]
fn the_free_disk_floor_holds_against_uploads_at_once_that_are_cut() {
    const FLOOR: u64 = 16 << 20;
    const ANNOUNCED: usize = 4_000_000;
    let disk = SmallDisk::new("48m");
    let server =
        Server::start_on(&disk.dir.path().join("root"), &["--min-free-disk", "16M", "--max-per-ip", "64"]);
    // Eleven uploads at once each announce 4 MB: together they would cross the floor, so only
    // those that fit begin.
    let uploads: Vec<_> = (0..11).map(|_| announced_upload(&server, ANNOUNCED)).collect();
    let mut begun = 0;
    for (mut control, outcome) in uploads {
        match outcome {
            Ok(mut data) => {
                begun += 1;
                // 3.9 MB of the 4 announced, then the data connection is cut: kept for a resume.
                data.write_all(&vec![7; ANNOUNCED - 100_000]).unwrap();
                drop(data);
                let cut = control.reply().remove(0);
                assert!(cut.starts_with("426 "), "{cut}");
            }
            Err(refused) => {
                assert!(refused.starts_with("452 ") && refused.ends_with("[disk-full]"), "{refused}")
            }
        }
    }
    assert!((1..11).contains(&begun), "{begun} of 11 began");
    assert!(disk.free() >= FLOOR, "{} bytes free, below the floor", disk.free());
    // The kept bytes count: a second wave finds no room, and still the floor holds.
    for _ in 0..11 {
        let (_control, outcome) = announced_upload(&server, ANNOUNCED);
        assert!(outcome.is_err(), "no room left above the floor");
    }
    let (mut control, _) = owner(&server);
    assert!(stor(&mut control, "unannounced.bin", &[1; 8 << 20]).starts_with("452 "));
    assert!(disk.free() >= FLOOR, "{} bytes free, below the floor", disk.free());
    // Everything that is not an upload goes on for everyone.
    assert!(control.command("MKD folder").starts_with("257 "));
    assert!(control.command("SITE SEAL").starts_with("200 "));
    assert!(Control::login(&server.addr).command("SITE MKSHARE 60").starts_with("257 "));
}

#[test]
fn quit_whose_seal_fails_says_so_instead_of_goodbye() {
    let disk = SmallDisk::new("4m");
    let server = Server::start_on(&disk.dir.path().join("root"), &["--min-free-disk", "0"]);
    let (mut control, code) = owner(&server);
    assert!(stor(&mut control, "a.txt", b"stored").starts_with("226 "));
    // Something else fills the disk: the seal cannot write the share's meta.
    let filler = disk.dir.path().join("filler");
    let _ = std::fs::write(&filler, vec![0; 8 << 20]);
    let answer = control.command("QUIT");
    assert!(answer.starts_with("452 ") && answer.ends_with("[disk-full]"), "{answer}");
    assert!(control.is_closed());
    std::fs::remove_file(&filler).unwrap();
    let mut other = Control::login(&server.addr);
    assert!(other.command(&format!("CWD /{code}")).starts_with("550 "), "the share stayed unseen");
}

#[test]
fn a_full_disk_refuses_a_budgeted_download_before_its_150() {
    let disk = SmallDisk::new("4m");
    let server = Server::start_on(&disk.dir.path().join("root"), &["--min-free-disk", "0"]);
    let mut maker = Control::login(&server.addr);
    assert!(maker.command("TYPE I").starts_with("200 "));
    let created = maker.command("SITE MKSHARE 600 DOWNLOADS=1");
    let code = created.split('"').nth(1).unwrap().trim_start_matches('/').to_owned();
    let bytes = random_bytes(300_000, 77);
    let path = format!("/{code}/once.bin");
    assert!(store(&mut maker, &path, &bytes).starts_with("226 "));
    assert!(maker.command("SITE SEAL").starts_with("200 "));
    // Something else fills the disk: the download could not be counted, so it must not begin.
    let filler = disk.dir.path().join("filler");
    let _ = std::fs::write(&filler, vec![0; 8 << 20]);
    let mut reader = Control::login(&server.addr);
    assert!(reader.command("TYPE I").starts_with("200 "));
    let _data = data_connection(&mut reader);
    let refused = reader.command(&format!("RETR {path}"));
    // The first reply: no 150, so not a byte went.
    assert!(refused.starts_with("452 ") && refused.ends_with("[disk-full]"), "{refused}");
    let info = site_info(&mut reader, &format!("{code}/once.bin")).unwrap();
    assert_eq!(info_value(&info, "downloads-left"), "1", "nothing spent");
    std::fs::remove_file(&filler).unwrap();
    assert!(fetch(&mut reader, &path).unwrap() == bytes, "with room again, the download counts");
    assert!(reader.command(&format!("SIZE {path}")).starts_with("550 "), "spent");
}

#[test]
fn a_stalled_transfer_gets_426_and_keeps_its_bytes_unseen_for_a_resume() {
    let server = Server::start_with(&["--data-timeout", "1s"]);
    let (mut control, code) = owner(&server);
    let mut data = data_connection(&mut control);
    // The bytes go before the command, as our client sends them: however late this thread
    // runs, the server has them before its data timeout starts.
    data.write_all(&[1; 1000]).unwrap();
    assert!(control.command("STOR stalled.bin").starts_with("150 "));
    // Send nothing more: the server gives up after the data timeout.
    let reply = control.reply().remove(0);
    assert!(reply.starts_with("426 ") && reply.contains("no progress"), "{reply}");
    assert_eq!(stored_files(&server, &code), (0, 1), "no file, one kept partial");
    assert!(control.command("SIZE stalled.bin").starts_with("550 "), "kept bytes are unseen");
    assert_eq!(control.command("SITE PARTIAL stalled.bin"), "213 1000");
    assert!(control.command("NOOP").starts_with("200 "));
}

#[test]
fn connections_per_address_are_capped_without_touching_other_addresses() {
    let server = Server::start_with(&["--max-per-ip", "2"]);
    let _first = Control::login(&server.addr);
    let _second = Control::login(&server.addr);
    // Refused while the first two are still there: at once, not once a slot frees.
    let mut third = Control::connect(&server.addr);
    let refused = third.reply().remove(0);
    assert!(refused.starts_with("421 ") && refused.contains("your address"), "{refused}");
    // Another address is still welcome.
    let script = r#"
import socket, sys
host, port = sys.argv[1].rsplit(':', 1)
s = socket.socket()
s.bind(('127.0.0.2', 0))
s.settimeout(20)
s.connect((host, int(port)))
print(s.makefile('rb').readline().decode().strip())
"#;
    let other = python(script, &[&server.addr]);
    assert!(other.stdout.starts_with("220 "), "{} {}", other.stdout, other.stderr);
}

#[test]
fn share_creation_is_rate_limited_per_address() {
    let server = Server::start_with(&["--max-shares-per-hour", "2"]);
    let mut control = Control::login(&server.addr);
    assert!(control.command("SITE MKSHARE 60").starts_with("257 "));
    assert!(control.command("SITE MKSHARE 60").starts_with("257 "));
    let refused = control.command("SITE MKSHARE 60");
    assert!(refused.starts_with("452 ") && refused.contains("limit 2 per hour"), "{refused}");
    assert!(control.command("NOOP").starts_with("200 "), "the connection and its shares go on");
}

/// A well-formed share code no share has: a guess.
fn guess(number: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut code = String::from("zzzzzzzzzzzzzzzzzzzzz");
    let mut rest = number;
    for _ in 0..5 {
        code.push(ALPHABET[rest % 32] as char);
        rest /= 32;
    }
    code
}

#[test]
fn a_guesser_is_slowed_while_a_client_at_its_address_downloads() {
    let server =
        Server::start_with(&["--max-share-misses", "3", "--miss-delay", "1s", "--max-miss-delay", "60s"]);
    let dir = TempDir::new();
    dir.file("mine.txt", b"a share this client holds");
    let url = upload(&server, dir.path(), &["mine.txt"]);
    // Fifty guesses at once from 127.0.0.1; the first three are the allowance, answered at once.
    let mut guesser = Control::login(&server.addr);
    let guesses: String = (0..50).map(|n| format!("CWD /{}\r\n", guess(n))).collect();
    guesser.send(guesses.as_bytes());
    for _ in 0..3 {
        let reply = guesser.reply().remove(0);
        assert!(reply.starts_with("550 "), "{reply}");
    }
    // Meanwhile a person at the same address downloads a share they hold, unslowed.
    let get = client(&server.addr, dir.path(), &["download", &url, "--dir", "out"], b"");
    assert_eq!(get.code, 0, "{}", get.stderr);
    assert_eq!(std::fs::read(dir.path().join("out/mine.txt")).unwrap(), b"a share this client holds");
    // The guesses answered during that whole download: a handful at most (their waits double
    // from 1 s, so a sixth more would have taken a minute), and none refused.
    let answered = guesser.arrived();
    assert!(answered.iter().all(|line| line.starts_with("550 ")), "{answered:?}");
    assert!(answered.len() <= 6, "{} guesses answered during one download", answered.len());
    let log = server.log();
    let closed = log.lines().filter(|line| line.contains("event=refused code=421")).count();
    assert_eq!(closed, 0, "no connection refused: {log}");
}

#[test]
fn a_guess_that_would_wait_too_long_closes_its_connection_and_says_for_how_long() {
    let server =
        Server::start_with(&["--max-share-misses", "1", "--miss-delay", "10m", "--max-miss-delay", "10m"]);
    let mut first = Control::login(&server.addr);
    assert!(first.command(&format!("CWD /{}", guess(1))).starts_with("550 "), "the allowance");
    first.send(format!("CWD /{}\r\n", guess(2)).as_bytes());
    wait_until("the second guess is held", || server.log().contains("wait_ms=600000"));
    // Another connection from the same address is let in, and its guess would wait behind
    // the first one's: it is answered, then closed with when the slowing ends.
    let mut second = Control::login(&server.addr);
    assert!(second.command(&format!("CWD /{}", guess(3))).starts_with("550 "));
    let closing = second.reply().remove(0);
    assert!(closing.starts_with("421 ") && closing.ends_with("[limit]"), "{closing}");
    assert!(closing.contains("slowed for 2h more"), "two misses over one an hour: {closing}");
    assert!(second.is_closed());
    // Shares and other commands are never slowed.
    let mut third = Control::login(&server.addr);
    assert!(third.command("NOOP").starts_with("200 "));
    assert!(third.command("SITE MKSHARE 60").starts_with("257 "));
}

#[test]
fn only_lookups_of_well_formed_codes_that_never_existed_are_guesses() {
    let server =
        Server::start_with(&["--max-share-misses", "1", "--miss-delay", "10m", "--max-miss-delay", "10m"]);
    let dir = TempDir::new();
    dir.file("once.txt", b"once");
    let spent = code_of(&upload(&server, dir.path(), &["once.txt", "--once"]));
    let get = client(&server.addr, dir.path(), &["download", &server.url(&spent), "--dir", "out"], b"");
    assert_eq!(get.code, 0, "{}", get.stderr);
    let mut control = Control::login(&server.addr);
    let expiring = make_share(&mut control, 1).code;
    // Sealed, or on a busy machine already expired: either way a share that existed.
    let _ = control.command("SITE SEAL");
    wait_until("the share expired", || control.command(&format!("CWD /{expiring}")).starts_with("550 "));
    // ncftp's probes of /CODE.tar, a spent share, an expired one, in any case: all plain 550s,
    // none of them counted, none of them slowed.
    for path in ["/CODE.tar", "/x/y", &format!("/{spent}"), &format!("/{}", spent.to_uppercase())] {
        for _ in 0..5 {
            assert!(control.command(&format!("CWD {path}")).starts_with("550 "), "{path}");
            assert!(control.command(&format!("SIZE {path}/once.txt")).starts_with("550 "), "{path}");
        }
    }
    assert!(control.command(&format!("CWD /{expiring}")).starts_with("550 "));
    assert_eq!(events(&server.log(), "share-miss"), 0, "{}", server.log());
    // A real guess counts, and the next one waits.
    assert!(control.command(&format!("CWD /{}", guess(7))).starts_with("550 "));
    assert_eq!(events(&server.log(), "share-miss"), 1);
}

#[test]
fn a_large_upload_hashed_beside_its_writes_is_checked_whole_announced_or_not() {
    // Past the size from which the server hashes on a thread of its own, in many reads.
    let server = Server::start();
    let (mut control, code) = owner(&server);
    let bytes = random_bytes(5 << 20, 16);
    let wrong = Sha256Digest::of(b"other bytes");
    for announced in [true, false] {
        assert!(control.command(&format!("SITE DIGEST {wrong} big")).starts_with("200 "));
        if announced {
            announce(&mut control, &bytes);
        }
        let refused = stor(&mut control, "big", &bytes);
        assert!(
            refused.starts_with("550 ") && refused.ends_with("[digest-mismatch]"),
            "{announced}: {refused}"
        );
        assert!(control.command("SIZE big").starts_with("550 "), "nothing was stored");
        assert_eq!(stored_files(&server, &code), (0, 0), "nothing of a refused file remains");
    }
    let right = Sha256Digest::of(&bytes);
    assert!(control.command(&format!("SITE DIGEST {right} big")).starts_with("200 "));
    let stored = stor(&mut control, "big", &bytes);
    assert!(
        stored.starts_with(&format!("226 Stored /{code}/big, {} bytes, SHA-256 {right}", bytes.len())),
        "{stored}"
    );
    assert!(fetch(&mut control, "big").unwrap() == bytes);
}

#[test]
fn a_declared_digest_holds_whatever_case_the_share_code_is_typed_in() {
    let server = Server::start();
    let (mut control, code) = owner(&server);
    let declared = Sha256Digest::of(b"the right bytes");
    let upper = code.to_uppercase();
    assert!(control.command(&format!("SITE DIGEST {declared} /{upper}/f")).starts_with("200 "));
    let refused = stor(&mut control, &format!("/{code}/f"), b"the wrong bytes");
    assert!(refused.starts_with("550 ") && refused.ends_with("[digest-mismatch]"), "{refused}");
    assert!(control.command("SIZE f").starts_with("550 "), "nothing was stored");
    assert!(control.command(&format!("SITE DIGEST {declared} /{code}/g")).starts_with("200 "));
    let stored = stor(&mut control, &format!("/{upper}/g"), b"the right bytes");
    assert!(stored.starts_with("226 "), "{stored}");
}

#[test]
fn hostile_paths_stay_inside_their_share() {
    let server = Server::start_with(&["--max-share-misses", "10000"]);
    let dir = TempDir::new();
    dir.file("inside.txt", b"inside");
    let url = upload(&server, dir.path(), &["inside.txt"]);
    let code = code_of(&url);
    let mut reader = Control::login(&server.addr);
    let escapes = [
        "../../../../etc/passwd",
        "/../../etc/passwd",
        &format!("/{code}/../../../etc/passwd"),
        &format!("/{code}/a/../../../tmp"),
        "\\..\\..\\etc\\passwd",
        &format!("/{code}/%2e%2e/%2e%2e/etc/passwd"),
        "/etc/passwd",
        "/shares",
        "/tmp",
        "/..",
    ];
    for path in escapes {
        for verb in ["RETR", "SIZE", "HASH", "MDTM"] {
            let reply = reader.command(&format!("{verb} {path}"));
            assert!(reply.starts_with("550 "), "{verb} {path}: {reply}");
        }
        let reply = reader.command(&format!("CWD {path}"));
        assert!(reply.starts_with("550 ") || reply == "250 Folder is now /", "CWD {path}: {reply}");
    }
    let (mut writer, own) = owner(&server);
    let long = "n".repeat(300);
    let bad_names = [
        "..",
        "../escape",
        "a\\b",
        "con",
        "LPT1.txt",
        "nul.tar.gz",
        "trailing.",
        "colon:name",
        "tab\there",
        "bell\u{7}",
        "nul\u{0}byte",
        long.as_str(),
    ];
    for name in bad_names {
        let reply = stor(&mut writer, &format!("/{own}/{name}"), b"x");
        assert!(reply.starts_with("553 ") || reply.starts_with("550 "), "STOR {name:?}: {reply}");
        let reply = writer.command(&format!("MKD /{own}/{name}"));
        assert!(reply.starts_with("553 ") || reply.starts_with("550 "), "MKD {name:?}: {reply}");
    }
    assert_eq!(stored_files(&server, &own), (0, 0));
    assert!(stor(&mut writer, &format!("/{own}/fine name \u{e9}.txt"), b"ok").starts_with("226 "));
    assert!(
        reader.command(&format!("SIZE /{code}/inside.txt")).starts_with("213 6"),
        "others are still served"
    );
}

#[test]
fn protocol_abuse_gets_replies_and_others_are_served() {
    // 40 short-lived connections and a few reconnects, all from 127.0.0.1, within its limit.
    let server = Server::start_with(&["--max-per-ip", "60"]);
    // Garbage, unknown verbs, missing and malformed arguments, commands before login.
    let mut control = Control::connect(&server.addr);
    assert!(control.reply()[0].starts_with("220 "));
    for (line, code) in [
        (&b"LIST\r\n"[..], "530"),
        (b"STOR x\r\n", "530"),
        (b"\x00\x01\x02\xfe\r\n", "50"),
        (b"\r\n", "500"),
        (b"XYZZY plugh\r\n", "500"),
        (b"USER\r\n", "501"),
        (b"USER anonymous\r\n", "230"),
        (b"PASS\r\n", "230"),
        (b"REST -5\r\n", "501"),
        (b"REST 99999999999999999999999\r\n", "501"),
        (b"TYPE X\r\n", "504"),
        (b"MODE Z\r\n", "504"),
        (b"SITE\r\n", "501"),
        (b"SITE MKSHARE -1\r\n", "501"),
        (b"SITE DIGEST nothex name\r\n", "501"),
        (b"SITE EXEC rm -rf /\r\n", "502"),
        (b"OPTS\r\n", "501"),
        (b"RETR\r\n", "501"),
    ] {
        control.send(line);
        let reply = control.reply().remove(0);
        assert!(reply.starts_with(code), "{:?} -> {reply}", String::from_utf8_lossy(line));
    }
    // A client that connects and resets at once, and one that sends half a line and leaves.
    // Each holds one of the address's slots until the server has seen it go, which under load
    // can be after the reconnects below: the address may hold all of them at once.
    for _ in 0..20 {
        let stream = TcpStream::connect(&server.addr).unwrap();
        drop(stream);
        let mut half = TcpStream::connect(&server.addr).unwrap();
        let _ = half.write_all(b"USER anon");
        let _ = half.shutdown(Shutdown::Both);
    }
    // Random bytes, line after line: every reply is well formed and the server lives.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..300 {
        let mut line = Vec::new();
        for _ in 0..(state % 64) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let byte = (state >> 24) as u8;
            if byte != b'\n' {
                line.push(byte);
            }
        }
        line.extend_from_slice(b"\r\n");
        control.send(&line);
        let reply = control.reply();
        let first = reply[0].as_bytes();
        assert!(first.len() >= 3 && first[..3].iter().all(u8::is_ascii_digit), "{reply:?}");
        if reply[0].starts_with("221") || reply[0].starts_with("421") {
            control = Control::login(&server.addr);
        }
    }
    let mut fresh = Control::login(&server.addr);
    assert!(fresh.command("NOOP").starts_with("200 "));
}

#[test]
fn a_client_trickling_bytes_is_cut_off_at_the_idle_timeout() {
    let server = Server::start_with(&["--idle-timeout", "2s"]);
    let mut control = Control::login_at_once(&server.addr);
    // One byte every 200 ms, for as long as a test may wait, never completes a line; each byte
    // alone would reset a naive timer, which would then never fire.
    let mut closed_by_server = false;
    let trickle = DEADLINE.as_millis() / 200;
    for byte in std::iter::once(b'N').chain(std::iter::repeat_n(b'O', trickle as usize)) {
        if control.stream.write_all(&[byte]).is_err() {
            closed_by_server = true;
            break;
        }
        let mut peek = [0u8; 1];
        control.stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        if control.stream.peek(&mut peek).is_ok() {
            closed_by_server = true;
            break;
        }
    }
    assert!(closed_by_server, "the trickle was cut off");
    control.stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let goodbye = control.reply();
    // The line's own idle timeout cut it, though bytes kept coming well within it.
    assert!(goodbye[0].starts_with("421 Idle for 2s"), "{goodbye:?}");
}

#[test]
fn abor_mid_upload_gets_426_then_226_and_stores_nothing() {
    let server = Server::start();
    let (mut control, code) = owner(&server);
    let mut data = data_connection(&mut control);
    assert!(control.command("STOR aborted.bin").starts_with("150 "));
    data.write_all(&random_bytes(1 << 20, 5)).unwrap();
    wait_until("the upload is being written", || stored_files(&server, &code).1 == 1);
    control.send(b"ABOR\r\n");
    // Keep the data flowing until the server hangs up on it.
    let chunk = vec![0u8; 64 << 10];
    let deadline = Instant::now() + Duration::from_secs(20);
    while data.write_all(&chunk).is_ok() {
        assert!(Instant::now() < deadline, "the server never stopped reading");
    }
    assert!(control.reply()[0].starts_with("426 "));
    assert!(control.reply()[0].starts_with("226 "));
    assert_eq!(stored_files(&server, &code), (0, 0));
    assert!(control.command("NOOP").starts_with("200 "));
}

#[test]
fn abor_sent_with_a_one_slice_retr_lets_the_file_finish_and_is_answered_next() {
    let server = Server::start();
    let (mut control, code) = owner(&server);
    let bytes = random_bytes(4096, 6);
    assert!(store(&mut control, "small.bin", &bytes).starts_with("226 "));
    assert!(control.command("SITE SEAL").starts_with("200 "));
    let mut data = data_connection(&mut control);
    // Both lines in one write: the server holds the ABOR before the file's one slice goes.
    control.send(format!("RETR /{code}/small.bin\r\nABOR\r\n").as_bytes());
    let mut received = Vec::new();
    data.set_read_timeout(Some(DEADLINE)).unwrap();
    data.read_to_end(&mut received).unwrap();
    assert_eq!(received, bytes, "the whole file came");
    assert!(control.reply()[0].starts_with("150 "));
    let done = control.reply().remove(0);
    assert!(done.starts_with("226 "), "{done}");
    let abor = control.reply().remove(0);
    assert!(abor.starts_with("225 "), "no transfer left to abort: {abor}");
}

#[test]
fn ftplib_abort_stops_a_download_and_the_connection_goes_on() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("large.bin", &random_bytes(64 << 20, 6));
    let url = upload(&server, dir.path(), &["large.bin"]);
    let script = r#"
import ftplib, sys
host, port = sys.argv[1].rsplit(':', 1)
ftp = ftplib.FTP()
ftp.connect(host, int(port), timeout=20)
ftp.login()
ftp.cwd('/' + sys.argv[2])
conn = ftp.transfercmd('RETR large.bin')
conn.recv(65536)
# RFC 959: the aborted transfer gets 426, then ABOR itself gets 226.
print(ftp.abort()[:3])
print(ftp.voidresp()[:3])
conn.close()
print(ftp.sendcmd('NOOP')[:3])
print(ftp.size('large.bin'))
ftp.quit()
"#;
    let run = python(script, &[&server.addr, &code_of(&url)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.split_whitespace().collect::<Vec<_>>(), ["426", "226", "200", "67108864"]);
}

#[test]
fn quit_during_an_upload_lets_it_finish_then_says_goodbye() {
    let server = Server::start();
    let (mut control, code) = owner(&server);
    let bytes = random_bytes(3 << 20, 7);
    assert!(control.command(&format!("SITE DIGEST {} q.bin", Sha256Digest::of(&bytes))).starts_with("200 "));
    let mut data = data_connection(&mut control);
    assert!(control.command("STOR q.bin").starts_with("150 "));
    data.write_all(&bytes[..1 << 20]).unwrap();
    control.send(b"QUIT\r\n");
    data.write_all(&bytes[1 << 20..]).unwrap();
    data.shutdown(Shutdown::Write).unwrap();
    let done = control.reply()[0].clone();
    assert!(done.starts_with("226 "), "the transfer completes first (RFC 959 QUIT): {done}");
    assert!(control.reply()[0].starts_with("221 "));
    assert!(control.is_closed());
    // QUIT sealed the share, so anyone can fetch the file now.
    let mut reader = Control::login(&server.addr);
    let hash = reader.command(&format!("HASH /{code}/q.bin"));
    assert!(hash.contains(&Sha256Digest::of(&bytes).to_string()), "{hash}");
}

#[test]
fn an_uploader_that_dies_mid_file_publishes_nothing() {
    let server = Server::start();
    let (mut control, code) = owner(&server);
    let mut data = data_connection(&mut control);
    assert!(control.command("STOR cut.bin").starts_with("150 "));
    data.write_all(&random_bytes(500_000, 8)).unwrap();
    // The process dies: both connections close, data first.
    drop(data);
    drop(control);
    let mut reader = Control::login(&server.addr);
    wait_until("the server noticed", || server.log().contains("event=disconnect"));
    assert!(reader.command(&format!("CWD /{code}")).starts_with("550 "), "an unsealed share stays unseen");
    assert!(reader.command(&format!("SIZE /{code}/cut.bin")).starts_with("550 "));
}

#[test]
fn passive_ports_are_not_predictable() {
    let server = Server::start();
    let mut control = Control::login(&server.addr);
    let ports: Vec<u16> = (0..20)
        .map(|_| {
            let reply = control.command("EPSV");
            parse_epsv_reply(&reply[4..]).unwrap()
        })
        .collect();
    let steps: Vec<i32> = ports.windows(2).map(|w| i32::from(w[1]) - i32::from(w[0])).collect();
    assert!(steps.windows(2).any(|w| w[0] != w[1]), "ports follow a fixed step: {ports:?}");
    // Named ports of the dynamic range (RFC 6335), not port 0's search of the ephemeral range.
    assert!(ports.iter().all(|&port| port >= 49152), "ports outside 49152-65535: {ports:?}");
}

#[test]
fn the_listener_waits_for_the_real_client_after_a_stranger() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("f.txt", b"for me");
    let url = upload(&server, dir.path(), &["f.txt"]);
    let mut control = Control::login(&server.addr);
    let reply = control.command("EPSV");
    let port = parse_epsv_reply(&reply[4..]).unwrap();
    let script = r#"
import socket, sys
s = socket.socket()
s.bind(('127.0.0.2', 0))
s.settimeout(20)
s.connect(('127.0.0.1', int(sys.argv[1])))
print(repr(s.recv(100)))
"#;
    assert!(control.command(&format!("RETR /{}/f.txt", code_of(&url))).starts_with("150 "));
    let stranger = python(script, &[&port.to_string()]);
    assert_eq!(stranger.stdout.trim(), "b''", "{}", stranger.stderr);
    let mut data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"for me");
    assert!(control.reply()[0].starts_with("226 "));
}

#[test]
fn name_digest_and_held_command_bounds_have_flags() {
    let server = Server::start_with(&[
        "--max-name-bytes",
        "10",
        "--max-path-depth",
        "2",
        "--max-pending-digests",
        "2",
        "--max-held-commands",
        "1",
    ]);
    let (mut control, _) = owner(&server);
    let long = stor(&mut control, "eleven.char", b"x");
    assert!(long.starts_with("553 ") && long.contains("longer than 10 bytes"), "{long}");
    assert!(control.command("MKD a").starts_with("257 "));
    assert!(control.command("MKD a/b/c").starts_with("553 "), "deeper than 2");
    let digest = Sha256Digest::of(b"x");
    assert!(control.command(&format!("SITE DIGEST {digest} one")).starts_with("200 "));
    assert!(control.command(&format!("SITE DIGEST {digest} two")).starts_with("200 "));
    assert!(control.command(&format!("SITE DIGEST {digest} three")).starts_with("452 "));
    // Commands sent during a transfer wait, in order, until it ends.
    let mut data = data_connection(&mut control);
    assert!(control.command("STOR one").starts_with("150 "));
    control.send(b"NOOP\r\nPWD\r\nNOOP\r\n");
    data.write_all(b"x").unwrap();
    drop(data);
    let replies: Vec<String> = (0..4).map(|_| control.reply().remove(0)).collect();
    assert!(replies[0].starts_with("226 "), "{replies:?}");
    assert!(
        replies[1].starts_with("200 ") && replies[2].starts_with("257 ") && replies[3].starts_with("200 "),
        "{replies:?}"
    );
}

#[test]
fn running_out_of_file_descriptors_pauses_the_accept_loop_instead_of_spinning() {
    let server = Server::start_with_open_files(32, &["--workers", "100", "--max-per-ip", "100"]);
    // Connections held open until the server has no descriptor left to accept the next one.
    let mut held = Vec::new();
    for _ in 0..60 {
        held.push(TcpStream::connect(&server.addr).unwrap());
    }
    wait_until("accept fails", || events(&server.log(), "accept-error") > 0);
    drop(held);
    // Once they left, the server serves again; it logged the failures once, not per try.
    let mut fresh = Control::login(&server.addr);
    assert!(fresh.command("NOOP").starts_with("200 "));
    let log = server.log();
    assert!(events(&log, "accept-error") <= 3, "{} accept-error lines", events(&log, "accept-error"));
    assert!(log.contains("Too many open files") || log.contains("os error 24"), "{log}");
}

/// Each budgeted share a server downloads from has budget lock files it keeps open: with few
/// descriptors to spare, downloads from many shares one after another go on being served.
#[test]
fn budget_lock_files_kept_open_never_starve_the_server_of_descriptors() {
    let server = Server::start_with_open_files(48, &["--reserve-below", "0"]);
    let mut owner = Control::login(&server.addr);
    assert!(owner.command("TYPE I").starts_with("200 "));
    let mut reader = Control::login(&server.addr);
    assert!(reader.command("TYPE I").starts_with("200 "));
    for i in 0..80u64 {
        let created = owner.command("SITE MKSHARE 600 DOWNLOADS=5");
        assert!(created.starts_with("257 "), "share {i}: {created}");
        let code = created.split('"').nth(1).unwrap().trim_start_matches('/').to_owned();
        let bytes = random_bytes(100, i);
        assert!(store(&mut owner, &format!("/{code}/f.bin"), &bytes).starts_with("226 "));
        let sealed = owner.command("SITE SEAL");
        assert!(sealed.starts_with("200 "), "share {i}: {sealed}");
        let got = fetch(&mut reader, &format!("/{code}/f.bin"));
        assert!(got.as_ref() == Ok(&bytes), "download {i}: {got:?}\n{}", server.log());
    }
}
