//! The share lifecycle: download budgets (exact under races, cut downloads spend nothing),
//! one-time shares, deletion with the owner token, `info`, resumed uploads on the wire, and the
//! client's early refusal of a download that cannot fit.

use std::fs;
use std::io::{Read, Write};
use std::thread;

use anonshare::common::digest::Sha256Digest;
use anonshare::server::store::COUNTED_TAIL_BYTES;

use crate::support::{
    Control, Server, TempDir, announce, client, code_of, data_connection, events, fetch, info_value,
    random_bytes, site_info, store, upload, wait_until,
};

/// Clients racing for a file that may be downloaded once.
const RACERS: usize = 8;

#[test]
fn eight_clients_racing_for_a_once_file_and_exactly_one_gets_it() {
    let server = Server::start_with(&["--sweep-interval", "1s", "--max-per-ip", "32"]);
    let dir = TempDir::new();
    let bytes = random_bytes(4 << 20, 41);
    dir.file("once.bin", &bytes);
    let code = code_of(&upload(&server, dir.path(), &["--once", "once.bin"]));
    let path = format!("/{code}/once.bin");
    let outcomes: Vec<Result<Vec<u8>, String>> = thread::scope(|scope| {
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                scope.spawn(|| {
                    let mut control = Control::login(&server.addr);
                    assert!(control.command("TYPE I").starts_with("200 "));
                    fetch(&mut control, &path)
                })
            })
            .collect();
        racers.into_iter().map(|racer| racer.join().unwrap()).collect()
    });
    let winners: Vec<&Vec<u8>> = outcomes.iter().filter_map(|outcome| outcome.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one racer gets the file: {outcomes:?}");
    assert!(*winners[0] == bytes, "and gets it whole");
    for refusal in outcomes.iter().filter_map(|outcome| outcome.as_ref().err()) {
        assert!(refusal.starts_with("550 "), "the others get 550: {refusal}");
    }
    // Spent, the file answers like one that never existed, for our client and stock verbs alike.
    let get = client(&server.addr, dir.path(), &["download", &server.url(&code), "--dir", "out"], b"");
    assert_eq!(get.code, 3, "{}", get.stderr);
    let mut control = Control::login(&server.addr);
    assert!(control.command(&format!("SIZE {path}")).starts_with("550 "));
    // Every file spent: the sweeper removes the share, bytes and all.
    let share_dir = server.root.join("shares").join(&code);
    wait_until("the spent share is swept", || !share_dir.exists());
    assert!(site_info(&mut control, &code).unwrap_err().starts_with("550 "));
}

#[test]
fn a_cut_download_spends_nothing_and_a_resumed_one_counts_once() {
    let server = Server::start();
    let dir = TempDir::new();
    let bytes = random_bytes(8 << 20, 42);
    dir.file("big.bin", &bytes);
    let code = code_of(&upload(&server, dir.path(), &["--max-downloads", "1", "big.bin"]));
    let path = format!("/{code}/big.bin");
    let mut control = Control::login(&server.addr);
    assert!(control.command("TYPE I").starts_with("200 "));

    // Read the first MiB, then drop the data connection with bytes unread: the server is cut off.
    let mut data = data_connection(&mut control);
    assert!(control.command(&format!("RETR {path}")).starts_with("150 "));
    let mut first = vec![0u8; 1 << 20];
    data.read_exact(&mut first).unwrap();
    drop(data);
    let cut = control.reply().remove(0);
    assert!(cut.starts_with("426 "), "{cut}");
    let left = site_info(&mut control, &format!("{code}/big.bin")).unwrap();
    assert_eq!(info_value(&left, "downloads-left"), "1", "a cut download spends nothing");

    // Resume where the cut left off: this one delivers the last byte and counts.
    assert!(control.command(&format!("REST {}", first.len())).starts_with("350 "));
    let rest = fetch(&mut control, &path).unwrap();
    first.extend_from_slice(&rest);
    assert!(first == bytes, "prefix and resumed rest make the file");
    assert!(control.command(&format!("SIZE {path}")).starts_with("550 "), "the budget of one is spent");
    let info = client(&server.addr, dir.path(), &["info", &server.url(&code)], b"");
    assert_eq!(info.code, 3, "a share whose every file is spent is gone: {}", info.stderr);
}

#[test]
fn a_retr_without_a_data_connection_claims_no_place() {
    // As a client sends it whose EPSV was refused: RETR in the same write.
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("a.txt", b"alpha\n");
    let code = code_of(&upload(&server, dir.path(), &["--max-downloads", "1", "a.txt"]));
    let mut control = Control::login(&server.addr);
    let refused = control.command(&format!("RETR /{code}/a.txt"));
    assert!(refused.starts_with("425 ") && refused.ends_with("[no-data-connection]"), "{refused}");
    let budget = server.root.join("shares").join(&code).join("budget");
    let written: Vec<String> = fs::read_dir(&budget)
        .map(|entries| entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(written.is_empty(), "no claim, no temporary claim file: {written:?}");
    assert_eq!(fetch(&mut control, &format!("/{code}/a.txt")).unwrap(), b"alpha\n");
}

#[test]
fn info_shows_expiry_size_and_downloads_left() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("a.txt", b"alpha\n");
    dir.file("b.txt", b"bravo bravo\n");
    let url = upload(&server, dir.path(), &["--max-downloads", "3", "--expires", "2h", "a.txt", "b.txt"]);
    let got = client(&server.addr, dir.path(), &["download", &url, "a.txt", "--dir", "out"], b"");
    assert_eq!(got.code, 0, "{}", got.stderr);
    let info = client(&server.addr, dir.path(), &["info", &url], b"");
    assert_eq!(info.code, 0, "{}", info.stderr);
    let a = format!("6\t{}\t2\ta.txt\n", Sha256Digest::of(b"alpha\n"));
    let b = format!("12\t{}\t3\tb.txt\n", Sha256Digest::of(b"bravo bravo\n"));
    assert!(info.stdout.starts_with(&format!("url: {url}\nexpires: ")), "{}", info.stdout);
    assert!(info.stdout.contains("files: 2\nbytes: 18\ndownloads per file: 3\n"), "{}", info.stdout);
    assert!(info.stdout.ends_with(&format!("{a}{b}")), "{}", info.stdout);
    let json = client(&server.addr, dir.path(), &["info", "--json", &url], b"");
    assert!(json.stdout.contains("\"downloads\":3,"), "{}", json.stdout);
    assert!(json.stdout.contains("\"path\":\"a.txt\",\"size\":6,"), "{}", json.stdout);
    assert!(json.stdout.contains("\"downloads_left\":2}"), "{}", json.stdout);
    // Without a budget, downloads are unlimited.
    let free = upload(&server, dir.path(), &["a.txt"]);
    let info = client(&server.addr, dir.path(), &["info", &free], b"");
    assert!(info.stdout.contains("downloads per file: unlimited\n"), "{}", info.stdout);
    assert!(info.stdout.ends_with("\tunlimited\ta.txt\n"), "{}", info.stdout);
}

#[test]
fn delete_with_the_owner_token_removes_a_share_at_once() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("gone.txt", b"soon gone\n");
    let run = client(&server.addr, dir.path(), &["upload", "--json", "gone.txt"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let token = run.stdout.split("\"owner_token\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let url = run.stdout.split("\"url\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let code = code_of(&url);
    let wrong =
        client(&server.addr, dir.path(), &["delete", "--token", "aaaaaaaaaaaaaaaaaaaaaaaaaa", &url], b"");
    assert_eq!(wrong.code, 3, "a wrong token is told nothing more than a missing share: {}", wrong.stderr);
    assert_eq!(client(&server.addr, dir.path(), &["list", &url], b"").code, 0, "still there");
    let deleted = client(&server.addr, dir.path(), &["delete", "--token", &token, &url], b"");
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    assert!(deleted.stdout.is_empty(), "{}", deleted.stdout);
    assert!(!server.root.join("shares").join(&code).exists(), "gone from disk at once");
    assert_eq!(client(&server.addr, dir.path(), &["list", &url], b"").code, 3);
    let again = client(&server.addr, dir.path(), &["delete", "--token", &token, &url], b"");
    assert_eq!(again.code, 3, "{}", again.stderr);
    assert_eq!(client(&server.addr, dir.path(), &["delete", &url], b"").code, 1, "the token is required");
}

#[test]
fn a_budgeted_download_in_flight_ends_well_when_its_share_is_deleted() {
    let server = Server::start();
    let mut owner = Control::login(&server.addr);
    assert!(owner.command("TYPE I").starts_with("200 "));
    let created = owner.command("SITE MKSHARE 600 DOWNLOADS=2");
    assert!(created.starts_with("257 "), "{created}");
    let code = created.split('"').nth(1).unwrap().trim_start_matches('/').to_owned();
    let token = created.rsplit(' ').next().unwrap().to_owned();
    // Larger than the loopback buffers: the server is still sending when the share goes.
    let bytes = random_bytes(24 << 20, 7);
    assert!(store(&mut owner, "big.bin", &bytes).starts_with("226 "));
    assert!(owner.command("SITE SEAL").starts_with("200 "));
    let mut reader = Control::login(&server.addr);
    assert!(reader.command("TYPE I").starts_with("200 "));
    let mut data = data_connection(&mut reader);
    assert!(reader.command(&format!("RETR /{code}/big.bin")).starts_with("150 "));
    let mut first = [0u8; 1];
    data.read_exact(&mut first).unwrap();
    assert!(owner.command(&format!("SITE DELETE {code} {token}")).starts_with("250 "));
    let mut rest = Vec::new();
    data.read_to_end(&mut rest).unwrap();
    assert_eq!(1 + rest.len(), bytes.len(), "every byte still came");
    let done = reader.reply().remove(0);
    assert!(done.starts_with("226 "), "the download is whole: {done}");
}

#[test]
fn a_once_share_downloaded_is_logged_as_spent() {
    let server = Server::start_with(&["--sweep-interval", "1s"]);
    let dir = TempDir::new();
    dir.file("once.txt", b"once");
    let url = upload(&server, dir.path(), &["once.txt", "--once"]);
    let get = client(&server.addr, dir.path(), &["download", &url, "--dir", "out"], b"");
    assert_eq!(get.code, 0, "{}", get.stderr);
    wait_until("the sweep removed the spent share", || events(&server.log(), "spent") == 1);
    assert_eq!(events(&server.log(), "expired"), 0, "{}", server.log());
}

#[test]
fn a_cut_upload_resumes_from_another_connection_with_the_owner_token() {
    let server = Server::start();
    let bytes = random_bytes((3 << 20) + 5, 43);
    let digest = Sha256Digest::of(&bytes);
    let mut first = Control::login(&server.addr);
    assert!(first.command("TYPE I").starts_with("200 "));
    let share = crate::support::make_share(&mut first, 600);
    let path = format!("/{}/resumed.bin", share.code);
    assert!(first.command(&format!("SITE DIGEST {digest} {path}")).starts_with("200 "));
    assert!(first.command(&format!("ALLO {}", bytes.len())).starts_with("200 "));
    let mut data = data_connection(&mut first);
    assert!(first.command(&format!("STOR {path}")).starts_with("150 "));
    let half = bytes.len() / 2;
    data.write_all(&bytes[..half]).unwrap();
    drop(data);
    let cut = first.reply().remove(0);
    assert!(cut.starts_with("426 "), "fewer bytes than ALLO announced is a cut: {cut}");
    drop(first);

    let mut second = Control::login(&server.addr);
    assert!(second.command("TYPE I").starts_with("200 "));
    assert!(second.command(&format!("SITE PARTIAL {path}")).starts_with("550 "), "only the owner asks");
    assert!(second.command(&format!("SITE OWNER {} {}", share.code, share.token)).starts_with("200 "));
    assert_eq!(
        second.command(&format!("SIZE {path}")).split(' ').next(),
        Some("550"),
        "kept bytes are unseen"
    );
    assert_eq!(second.command(&format!("SITE PARTIAL {path}")), format!("213 {half}"));
    assert!(second.command(&format!("SITE DIGEST {digest} {path}")).starts_with("200 "));
    assert!(second.command(&format!("REST {}", half + 1)).starts_with("350 "));
    let mut data = data_connection(&mut second);
    let past = second.command(&format!("STOR {path}"));
    assert!(past.starts_with("554 "), "REST past the kept bytes: {past}");
    drop(data);
    // APPE continues at the end of the kept bytes; the server checks the whole file's digest.
    assert!(second.command(&format!("SITE DIGEST {digest} {path}")).starts_with("200 "));
    data = data_connection(&mut second);
    let appending = second.command(&format!("APPE {path}"));
    assert!(appending.starts_with("150 ") && appending.contains(&format!("from byte {half}")), "{appending}");
    data.write_all(&bytes[half..]).unwrap();
    drop(data);
    let stored = second.reply().remove(0);
    assert!(
        stored.starts_with(&format!("226 Stored {path}, {} bytes, SHA-256 {digest}", bytes.len())),
        "{stored}"
    );
    assert!(second.command("SITE SEAL").starts_with("200 "));
    let mut reader = Control::login(&server.addr);
    assert!(reader.command("TYPE I").starts_with("200 "));
    assert!(fetch(&mut reader, &path).unwrap() == bytes);
    assert!(crate::support::part_files(&server.root).is_empty(), "nothing kept after the seal");
}

#[test]
fn a_download_that_cannot_fit_is_refused_before_it_starts() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("huge.bin", b"small on disk, listed as huge");
    let url = upload(&server, dir.path(), &["huge.bin"]);
    // The server's record claims an exabyte: far more than any disk the download could go to.
    // Records are never rewritten while a server runs, so this one is changed between two runs.
    let manifest = server.root.join("shares").join(code_of(&url)).join("manifest");
    let folder = server.kill();
    let text = fs::read_to_string(&manifest).unwrap();
    let size = "29";
    assert!(text.contains(&format!("\t{size}\t")), "{text}");
    fs::write(&manifest, text.replace(&format!("\t{size}\t"), "\t1152921504606846976\t")).unwrap();
    let server = Server::start_in(folder, &[]);
    let url = server.url(&code_of(&url));
    let get = client(&server.addr, dir.path(), &["download", &url, "--dir", "out"], b"");
    assert_eq!(get.code, 5, "{}", get.stderr);
    assert!(get.stderr.contains("not enough room"), "{}", get.stderr);
    assert!(!dir.path().join("out").exists(), "nothing was written");
}

#[test]
fn a_download_budget_has_a_ceiling_with_a_flag() {
    let server = Server::start_with(&["--max-download-budget", "5"]);
    let mut control = Control::login(&server.addr);
    let refused = control.command("SITE MKSHARE 60 DOWNLOADS=6");
    assert!(refused.starts_with("504 ") && refused.contains("(5)"), "{refused}");
    assert!(control.command("SITE MKSHARE 60 DOWNLOADS=5").starts_with("257 "));
    let dir = TempDir::new();
    dir.file("a.txt", b"a");
    let run = client(&server.addr, dir.path(), &["upload", "--max-downloads", "9", "a.txt"], b"");
    assert_eq!(run.code, 1, "a flag the server does not take is the user's to fix: {}", run.stderr);
    assert!(run.stderr.contains("more than this server allows (5)"), "{}", run.stderr);
}

/// A sealed share `owner` made with `a.txt` and `b.txt` in its pack, and its code and owner token.
fn sealed_share(owner: &mut Control, budget: &str) -> (String, String) {
    sealed_share_of(owner, budget, &[("a.txt", b"first\n"), ("b.txt", b"other\n")])
}

/// A sealed share of `files`, each announced with `ALLO`, made with `budget` after
/// `SITE MKSHARE 600`: its code and owner token.
fn sealed_share_of(owner: &mut Control, budget: &str, files: &[(&str, &[u8])]) -> (String, String) {
    assert!(owner.command("TYPE I").starts_with("200 "));
    let created = owner.command(&format!("SITE MKSHARE 600{budget}"));
    assert!(created.starts_with("257 "), "{created}");
    let code = created.split('"').nth(1).unwrap().trim_start_matches('/').to_owned();
    let token = created.rsplit(' ').next().unwrap().to_owned();
    for (name, bytes) in files {
        announce(owner, bytes);
        assert!(store(owner, &format!("/{code}/{name}"), bytes).starts_with("226 "));
    }
    assert!(owner.command("SITE SEAL").starts_with("200 "));
    (code, token)
}

#[test]
fn a_connection_that_read_a_share_finds_it_gone_once_deleted_here_or_by_another_server() {
    let server = Server::start();
    let other = Server::start_on(&server.root, &[]);
    for deleter in [&server, &other] {
        let mut owner = Control::login(&server.addr);
        let (code, token) = sealed_share(&mut owner, "");
        let mut reader = Control::login(&server.addr);
        assert!(reader.command("TYPE I").starts_with("200 "));
        // One connection reads both files from the same pack, each from its own place.
        assert_eq!(fetch(&mut reader, &format!("/{code}/a.txt")).unwrap(), b"first\n");
        assert_eq!(fetch(&mut reader, &format!("/{code}/b.txt")).unwrap(), b"other\n");
        assert_eq!(fetch(&mut reader, &format!("/{code}/a.txt")).unwrap(), b"first\n");
        let mut remover = Control::login(&deleter.addr);
        assert!(remover.command(&format!("SITE DELETE {code} {token}")).starts_with("250 "));
        let refused = fetch(&mut reader, &format!("/{code}/b.txt")).unwrap_err();
        assert!(refused.starts_with("550 "), "a RETR after the deletion: {refused}");
        assert!(reader.command(&format!("SIZE /{code}/a.txt")).starts_with("550 "));
    }
}

#[test]
fn a_connection_that_read_a_budgeted_share_finds_it_gone_once_another_spent_it() {
    let server = Server::start();
    let mut owner = Control::login(&server.addr);
    let (code, _) = sealed_share(&mut owner, " DOWNLOADS=1");
    let mut reader = Control::login(&server.addr);
    assert!(reader.command("TYPE I").starts_with("200 "));
    assert_eq!(fetch(&mut reader, &format!("/{code}/a.txt")).unwrap(), b"first\n");
    assert!(reader.command(&format!("CWD /{code}")).starts_with("250 "));
    let mut spender = Control::login(&server.addr);
    assert!(spender.command("TYPE I").starts_with("200 "));
    assert_eq!(fetch(&mut spender, &format!("/{code}/b.txt")).unwrap(), b"other\n");
    let refused = fetch(&mut reader, &format!("/{code}/b.txt")).unwrap_err();
    assert!(refused.starts_with("550 "), "a RETR of a spent share: {refused}");
    // The share itself is gone, not only its files.
    let entered = reader.command(&format!("CWD /{code}"));
    assert!(entered.starts_with("550 "), "{entered}");
}

/// With more downloads left than `--reserve-below`, two clients start on the last download;
/// the first to reach its end has it, the other is refused there, with every byte but the last
/// ones.
#[test]
fn a_download_counted_at_its_end_is_refused_its_last_bytes_when_another_took_the_last_place() {
    let server = Server::start_with(&["--reserve-below", "0"]);
    let mut owner = Control::login(&server.addr);
    assert!(owner.command("TYPE I").starts_with("200 "));
    let created = owner.command("SITE MKSHARE 600 DOWNLOADS=1");
    assert!(created.starts_with("257 "), "{created}");
    let code = created.split('"').nth(1).unwrap().trim_start_matches('/').to_owned();
    // Larger than the loopback buffers: neither transfer can end before its client reads.
    let bytes = random_bytes(24 << 20, 8);
    assert!(store(&mut owner, "big.bin", &bytes).starts_with("226 "));
    assert!(owner.command("SITE SEAL").starts_with("200 "));
    let start = |control: &mut Control| {
        assert!(control.command("TYPE I").starts_with("200 "));
        let data = data_connection(control);
        let reply = control.command(&format!("RETR /{code}/big.bin"));
        assert!(reply.starts_with("150 "), "both start while one download is left: {reply}");
        data
    };
    let (mut first, mut second) = (Control::login(&server.addr), Control::login(&server.addr));
    let (mut first_data, mut second_data) = (start(&mut first), start(&mut second));
    let mut got = Vec::new();
    first_data.read_to_end(&mut got).unwrap();
    assert!(got == bytes, "the first to its end has every byte");
    assert!(first.reply().remove(0).starts_with("226 "));
    let mut partial = Vec::new();
    second_data.read_to_end(&mut partial).unwrap();
    let refused = second.reply().remove(0);
    assert!(refused.starts_with("550 ") && refused.ends_with("[not-found]"), "{refused}");
    let kept = bytes.len() - COUNTED_TAIL_BYTES as usize;
    assert_eq!(partial.len(), kept, "all but the bytes that leave once counted");
    assert!(partial[..] == bytes[..kept]);
    assert!(second.command(&format!("SIZE /{code}/big.bin")).starts_with("550 "), "spent");
}

/// A spent file whose bytes a crash kept (put back here, as the crash between its last count
/// and their deletion would leave them) answers like a file that never existed to every RETR,
/// also one a refusal would otherwise stop before its claim, and the next refusal deletes them.
#[test]
fn a_spent_file_whose_bytes_are_still_there_answers_like_one_that_never_existed() {
    let server = Server::start();
    let mut owner = Control::login(&server.addr);
    let (code, _) = sealed_share(&mut owner, " DOWNLOADS=1");
    // The files that hold the share's bytes: blobs, and packs (a spent file's bytes are a blob
    // deleted or a hole punched in its pack).
    let dir = server.root.join("shares").join(&code);
    let blobs = fs::read_dir(dir.join("blobs")).unwrap().map(|e| e.unwrap().path());
    let packs = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path());
    let packs = packs.filter(|path| path.file_name().unwrap().to_string_lossy().starts_with("pack."));
    let kept: Vec<_> = blobs.chain(packs).map(|path| (fs::read(&path).unwrap(), path)).collect();
    let mut reader = Control::login(&server.addr);
    assert!(reader.command("TYPE I").starts_with("200 "));
    assert_eq!(fetch(&mut reader, &format!("/{code}/a.txt")).unwrap(), b"first\n");
    let deleted = || kept.iter().filter(|(bytes, path)| fs::read(path).ok().as_ref() != Some(bytes)).count();
    assert_eq!(deleted(), 1, "the download that spent it deleted its bytes");
    for (bytes, path) in &kept {
        fs::write(path, bytes).unwrap();
    }
    let gone = |reply: &str| reply.starts_with("550 ") && reply.ends_with("[not-found]");
    let rest = |control: &mut Control, offset: &str| {
        assert!(control.command(&format!("REST {offset}")).starts_with("350 "));
        fetch(control, &format!("/{code}/a.txt")).unwrap_err()
    };
    let past_the_end = rest(&mut reader, "1000");
    assert!(gone(&past_the_end), "{past_the_end}");
    let at_the_end = rest(&mut reader, "6");
    assert!(gone(&at_the_end), "{at_the_end}");
    assert!(reader.command("TYPE A").starts_with("200 "));
    let ascii = fetch(&mut reader, &format!("/{code}/a.txt")).unwrap_err();
    assert!(gone(&ascii), "{ascii}");
    assert!(reader.command("TYPE I").starts_with("200 "));
    let whole = fetch(&mut reader, &format!("/{code}/a.txt")).unwrap_err();
    assert!(gone(&whole), "{whole}");
    assert_eq!(deleted(), 1, "the refusal deleted its bytes");
}

#[test]
fn downloading_an_empty_file_spends_no_other_file() {
    let server = Server::start();
    let mut owner = Control::login(&server.addr);
    let files: [(&str, &[u8]); 2] = [("empty", b""), ("next", b"never downloaded\n")];
    let (code, _) = sealed_share_of(&mut owner, " DOWNLOADS=1", &files);
    let mut reader = Control::login(&server.addr);
    assert!(reader.command("TYPE I").starts_with("200 "));
    assert_eq!(fetch(&mut reader, &format!("/{code}/empty")).unwrap(), b"");
    let next = fetch(&mut reader, &format!("/{code}/next"));
    assert_eq!(next.as_deref(), Ok(&b"never downloaded\n"[..]), "its one download is still there");
}
