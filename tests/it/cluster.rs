//! One store, several servers: two processes on the same --root stay consistent.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use anonshare::common::digest::Sha256Digest;
use anonshare::common::expiry::parse_rfc3339;
use anonshare::server::store::{Limits, Store, unix_now};

use crate::support::{
    Control, DEADLINE, Server, TempDir, client, code_of, fetch, files_under, hash_reply, info_value, listing,
    make_share, manifest_files, open_upload, part_files, random_bytes, site_info, store, upload, wait_until,
};

/// Writer pairs in the concurrency test: one thread on each server per pair.
const PAIRS: usize = 3;
/// Shares each pair fills together.
const SHARES_PER_PAIR: usize = 3;
/// Files each thread stores into each of its pair's shares, besides the contested one.
const FILES_EACH: usize = 3;
/// Server processes started one after another while in-process openers race them.
const RACING_STARTS: usize = 400;
/// Threads opening the store over and over meanwhile.
const OPENERS: usize = 8;
/// Most Store::open calls one opener makes; it stops when the starts are done.
const MAX_OPENS: usize = 1_000_000;
/// Sizes the writers cycle through.
const SIZES: [usize; 6] = [0, 1, 1000, 65_537, 300_000, 1 << 20];

#[test]
fn a_share_made_through_one_server_is_served_by_the_other() {
    let a = Server::start();
    let b = Server::start_on(&a.root, &[]);
    let dir = TempDir::new();
    let big = random_bytes((3 << 20) + 5, 61);
    let files: [(&str, &[u8]); 3] =
        [("docs/big.bin", &big), ("docs/empty", b""), ("docs/sub/note.txt", b"served by the other one")];
    for (path, bytes) in files {
        dir.file(path, bytes);
    }
    let code = code_of(&upload(&a, dir.path(), &["docs"]));

    let url = format!("ftp://{}/{code}/", b.addr);
    let list = client(&b.addr, dir.path(), &["list", &url], b"");
    assert_eq!(list.code, 0, "{}", list.stderr);
    let mut expected: Vec<String> = files
        .iter()
        .map(|(path, bytes)| format!("{}\t{}\t{path}", bytes.len(), Sha256Digest::of(bytes)))
        .collect();
    expected.sort();
    let mut listed: Vec<&str> = list.stdout.lines().collect();
    listed.sort();
    assert_eq!(listed, expected);
    let get = client(&b.addr, dir.path(), &["download", &url, "--dir", "out"], b"");
    assert_eq!(get.code, 0, "{}", get.stderr);
    for (path, bytes) in files {
        assert!(fs::read(dir.path().join("out").join(path)).unwrap() == bytes, "{path} is byte-exact");
    }
    let mut via_a = Control::login(&a.addr);
    let mut via_b = Control::login(&b.addr);
    for (path, bytes) in files {
        let path = format!("/{code}/{path}");
        assert_eq!(via_b.command(&format!("HASH {path}")), hash_reply(&path, bytes));
        assert_eq!(via_a.command(&format!("HASH {path}")), hash_reply(&path, bytes));
    }
}

#[test]
fn sealing_and_expiry_hold_across_servers() {
    let a = Server::start();
    let b = Server::start_on(&a.root, &[]);
    let mut maker = Control::login(&a.addr);
    assert!(maker.command("TYPE I").starts_with("200 "));
    let share = make_share(&mut maker, 600);
    let code = share.code.as_str();
    let bytes = random_bytes(200_000, 71);
    let path = format!("/{code}/kept.bin");
    assert!(store(&mut maker, &path, &bytes).starts_with("226 "));

    let mut other = Control::login(&b.addr);
    assert!(other.command("TYPE I").starts_with("200 "));
    for line in
        [format!("SITE INFO /{code}"), format!("CWD /{code}"), format!("SIZE {path}"), format!("HASH {path}")]
    {
        let reply = other.command(&line);
        assert!(reply.starts_with("550 "), "unsealed, so unseen from the other server: {line}: {reply}");
    }
    assert!(listing(&mut other, &format!("NLST /{code}")).unwrap_err().starts_with("550 "));
    assert!(fetch(&mut other, &path).unwrap_err().starts_with("550 "));
    assert!(store(&mut other, &format!("/{code}/intruder.bin"), b"no").starts_with("550 "));

    assert!(maker.command("SITE SEAL").starts_with("200 "));
    let info = site_info(&mut other, code).expect("sealed, so seen from the other server");
    assert_eq!(info_value(&info, "sealed"), "yes");
    assert!(fetch(&mut other, &path).unwrap() == bytes, "the other server serves it byte-exact");
    assert_eq!(other.command(&format!("HASH {path}")), hash_reply(&path, &bytes));
    let stor = store(&mut other, &format!("/{code}/late.bin"), b"late");
    assert!(stor.starts_with("550 "), "sealed shares take no files on any server: {stor}");
    assert!(other.command(&format!("MKD /{code}/late")).starts_with("550 "));
    let claim = other.command(&format!("SITE OWNER {code} {}", share.token));
    assert!(claim.starts_with("550 "), "not even its owner token opens a sealed share: {claim}");
    let info = site_info(&mut other, code).unwrap();
    assert_eq!(info_value(&info, "files"), "1", "{info:?}");

    let brief = make_share(&mut maker, 2);
    let brief_path = format!("/{}/brief.txt", brief.code);
    assert!(store(&mut maker, &brief_path, b"brief").starts_with("226 "));
    assert!(maker.command("SITE SEAL").starts_with("200 "));
    let info = site_info(&mut other, &brief.code).expect("seen from the other server before it expires");
    let expires = parse_rfc3339(&info_value(&info, "expires")).unwrap();
    wait_until("the wall clock passes the share's expiry", || unix_now() >= expires);
    // Sweeps fall due only every minute: the 550s come from the expiry itself.
    assert!(site_info(&mut other, &brief.code).unwrap_err().starts_with("550 "));
    assert!(other.command(&format!("SIZE {brief_path}")).starts_with("550 "));
    assert!(fetch(&mut other, &brief_path).unwrap_err().starts_with("550 "));
    assert!(listing(&mut other, &format!("NLST /{}", brief.code)).unwrap_err().starts_with("550 "));
    assert!(fetch(&mut maker, &brief_path).unwrap_err().starts_with("550 "), "nor on its own server");
}

#[test]
fn concurrent_writers_on_two_servers_keep_metadata_whole() {
    let a = Server::start_with(&["--sweep-interval", "1s"]);
    let b = Server::start_on(&a.root, &["--sweep-interval", "1s"]);
    let addrs = [a.addr.as_str(), b.addr.as_str()];
    let (acknowledged, brief_codes) = thread::scope(|scope| {
        let mut writers = Vec::new();
        for pair in 0..PAIRS {
            let (to_b, from_a) = mpsc::channel();
            let (to_a, from_b) = mpsc::channel();
            for (side, to_partner, from_partner) in [(0, to_b, from_b), (1, to_a, from_a)] {
                let writer = thread::Builder::new()
                    .name(format!("pair{pair}-side{side}"))
                    .spawn_scoped(scope, move || pair_writer(addrs, pair, side, to_partner, from_partner))
                    .unwrap();
                writers.push(writer);
            }
        }
        let client_writers: Vec<_> = (0..2)
            .map(|side| {
                let name = format!("client-side{side}");
                thread::Builder::new()
                    .name(name)
                    .spawn_scoped(scope, move || client_writer(addrs, side))
                    .unwrap()
            })
            .collect();
        let mut acknowledged: Vec<Acknowledged> =
            writers.into_iter().flat_map(|writer| writer.join().expect("writer thread")).collect();
        let mut brief_codes = Vec::new();
        for writer in client_writers {
            let (files, briefs) = writer.join().expect("client thread");
            acknowledged.extend(files);
            brief_codes.extend(briefs);
        }
        (acknowledged, brief_codes)
    });

    let winners = acknowledged.iter().filter(|f| f.path == "contested.bin").count();
    assert_eq!(winners, PAIRS * SHARES_PER_PAIR, "each race for contested.bin has one winner");
    let mut by_share: BTreeMap<&str, Vec<&Acknowledged>> = BTreeMap::new();
    for file in &acknowledged {
        by_share.entry(file.code.as_str()).or_default().push(file);
    }
    let lasting: Vec<&str> = by_share.keys().copied().collect();
    let shares_dir = a.root.join("shares");
    let on_disk = || {
        let mut codes: Vec<String> = fs::read_dir(&shares_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        codes.sort();
        codes
    };
    wait_until("the sweepers removed every expired share", || {
        on_disk().iter().all(|code| lasting.contains(&code.as_str()))
    });
    assert_eq!(on_disk(), lasting, "every lasting share is still on disk");
    for code in &brief_codes {
        for addr in addrs {
            let run = client(addr, Path::new("."), &["list", &format!("ftp://{addr}/{code}/")], b"");
            assert_eq!(run.code, 3, "expired share {code} through {addr}: {}", run.stderr);
        }
    }

    let mut controls = addrs.map(|addr| {
        let mut control = Control::login(addr);
        assert!(control.command("TYPE I").starts_with("200 "));
        control
    });
    for (code, files) in &by_share {
        let mut expected: Vec<String> = files
            .iter()
            .map(|f| format!("{}\t{}\t{}", f.bytes.len(), Sha256Digest::of(&f.bytes), f.path))
            .collect();
        expected.sort();
        for addr in addrs {
            let run = client(addr, Path::new("."), &["list", &format!("ftp://{addr}/{code}/")], b"");
            assert_eq!(run.code, 0, "{code} through {addr}: {}", run.stderr);
            // Empty folders are listed as `-<TAB>-<TAB>PATH/`; only files are compared here.
            let mut listed: Vec<&str> = run.stdout.lines().filter(|line| !line.starts_with("-\t")).collect();
            listed.sort();
            assert_eq!(listed, expected, "{code} through {addr} lists every acknowledged file");
        }
        let contested = files.iter().filter(|f| f.path == "contested.bin").count();
        assert!(contested <= 1, "{code}: both servers stored contested.bin");
        let share_dir = shares_dir.join(code);
        let recorded = manifest_files(&share_dir, false);
        let blobs = fs::read_dir(share_dir.join("blobs")).unwrap().count();
        assert_eq!(blobs, recorded.blobs, "{code}: a blob for each file not packed, and no other");
        let mut recorded = recorded.files;
        recorded.sort();
        let mut paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        paths.sort();
        assert_eq!(recorded, paths, "{code}: one manifest record per acknowledged file");
        let meta = fs::read_to_string(share_dir.join("meta")).unwrap();
        let keys: Vec<&str> = meta.lines().filter_map(|l| l.split_once(' ')).map(|(k, _)| k).collect();
        assert_eq!(keys, ["created", "expires", "sealed", "owner"], "{code}: meta is whole: {meta:?}");
        assert!(meta.contains("\nsealed 1\n"), "{code}: sealed: {meta:?}");
        for file in files {
            let other = &mut controls[1 - file.via];
            let path = format!("/{code}/{}", file.path);
            assert_eq!(other.command(&format!("HASH {path}")), hash_reply(&path, &file.bytes));
            assert!(fetch(other, &path).unwrap() == file.bytes, "{path} through the other server");
        }
    }
    let tmp = a.root.join("tmp");
    assert_eq!(files_under(&tmp), ["lock", "lock"], "nothing but the two servers' locks in tmp/");
}

#[test]
fn restarting_one_server_leaves_the_others_uploads_alone() {
    let a = Server::start();
    let b = Server::start_on(&a.root, &[]);
    let tmp = a.root.join("tmp");
    let mut control = Control::login(&b.addr);
    assert!(control.command("TYPE I").starts_with("200 "));
    let share = make_share(&mut control, 600);
    let path = format!("/{}/through-a-restart.bin", share.code);
    let bytes = random_bytes((3 << 20) + 17, 81);
    let mut data = open_upload(&mut control, &path, &bytes).unwrap();
    let half = bytes.len() / 2;
    data.write_all(&bytes[..half]).unwrap();
    wait_until("B has the first half in a .part file", || {
        part_files(&a.root).iter().any(|(_, len)| *len == half as u64)
    });
    let part = part_files(&a.root).remove(0).0;
    let before: Vec<PathBuf> = fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(before.len(), 2, "{before:?}");

    let a = Server::start_in(a.kill(), &[]);
    let after: Vec<PathBuf> = fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().path()).collect();
    let kept: Vec<&PathBuf> = before.iter().filter(|dir| after.contains(dir)).collect();
    assert_eq!(
        kept.len(),
        1,
        "the new A removed the dead A's folder at start, B's stays: {before:?} {after:?}"
    );
    assert!(kept[0].join("lock").exists(), "B's folder is left alone");
    assert_eq!(fs::metadata(&part).map(|m| m.len()).ok(), Some(half as u64), "B's .part is left alone");
    data.write_all(&bytes[half..]).unwrap();
    drop(data);
    let stored = control.reply().remove(0);
    assert!(stored.starts_with("226 "), "B's upload completes: {stored}\n{}", b.log());
    assert_eq!(control.command(&format!("HASH {path}")), hash_reply(&path, &bytes));
    assert!(control.command("SITE SEAL").starts_with("200 "));
    let mut via_a = Control::login(&a.addr);
    assert!(via_a.command("TYPE I").starts_with("200 "));
    assert!(fetch(&mut via_a, &path).unwrap() == bytes, "the file is byte-exact through the new A");
    assert_eq!(files_under(&tmp), ["lock", "lock"], "only the two live servers' locks, no .part");
}

#[test]
fn a_server_starts_while_another_server_is_starting_on_the_same_root() {
    let a = Server::start();
    let root = a.root.as_path();
    let stop = AtomicBool::new(false);
    let failures = thread::scope(|scope| {
        // Other servers starting over and over, in-process: Store::open makes its folder in
        // tmp/ as <id>.new and renames it into place, while the servers below clean tmp/.
        let openers: Vec<_> = (0..OPENERS)
            .map(|i| {
                let open_until_stopped = || {
                    let mut failures = Vec::new();
                    for _ in 0..MAX_OPENS {
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        if let Err(err) = Store::open(root, Limits::default()) {
                            failures.push(format!("in-process Store::open: {err}"));
                        }
                    }
                    failures
                };
                thread::Builder::new()
                    .name(format!("opener-{i}"))
                    .spawn_scoped(scope, open_until_stopped)
                    .unwrap()
            })
            .collect();
        let mut failures = Vec::new();
        for _ in 0..RACING_STARTS {
            match Server::try_start_on(root, &[]) {
                Ok(peer) => drop(peer),
                Err(err) => failures.push(format!("anonshare-server: {err}")),
            }
        }
        stop.store(true, Ordering::Release);
        for opener in openers {
            failures.extend(opener.join().expect("opener thread"));
        }
        failures
    });
    let shown = &failures[..failures.len().min(3)];
    assert!(failures.is_empty(), "{} of the starts failed, e.g. {shown:#?}", failures.len());
}

/// A file whose 226 (or the client's exit 0) arrived: `path` inside share `code` holds
/// `bytes`, stored through server `via` (0 is A, 1 is B).
struct Acknowledged {
    code: String,
    path: String,
    bytes: Vec<u8>,
    via: usize,
}

/// What the two threads of a pair tell each other.
enum Handoff {
    /// The maker made this share; its partner claims it with the token.
    Share { code: String, token: String },
    /// This side sent its STOR for the contested name.
    Started,
    /// The partner stored all its files; the maker may seal.
    Done,
    /// The maker sealed the share.
    Sealed,
}

/// One thread of a pair: for each share, the maker (alternating) creates it and the partner
/// claims it on the other server; both store files into it at once, race for one name, and
/// the maker seals it once both are done.
fn pair_writer(
    addrs: [&str; 2],
    pair: usize,
    side: usize,
    to_partner: Sender<Handoff>,
    from_partner: Receiver<Handoff>,
) -> Vec<Acknowledged> {
    let mut control = Control::login(addrs[side]);
    assert!(control.command("TYPE I").starts_with("200 "));
    let mut acknowledged = Vec::new();
    for round in 0..SHARES_PER_PAIR {
        let maker = (pair + round) % 2 == side;
        let code = if maker {
            let share = make_share(&mut control, 600);
            assert!(control.command(&format!("MKD /{}/empty-{side}", share.code)).starts_with("257 "));
            to_partner.send(Handoff::Share { code: share.code.clone(), token: share.token }).unwrap();
            share.code
        } else {
            let Ok(Handoff::Share { code, token }) = from_partner.recv_timeout(DEADLINE) else {
                panic!("pair {pair}: no share from the maker");
            };
            let claimed = control.command(&format!("SITE OWNER {code} {token}"));
            assert!(claimed.starts_with("200 "), "{claimed}");
            code
        };
        let seed = |file: usize| (((pair * 16 + round) * 2 + side) * 16 + file + 1) as u64;
        for file in 0..FILES_EACH {
            let path = format!("d{}/side{side}-{file}.bin", file % 2);
            let bytes = random_bytes(SIZES[(pair + round * 2 + side * 3 + file) % SIZES.len()], seed(file));
            let reply = store(&mut control, &format!("/{code}/{path}"), &bytes);
            assert!(reply.starts_with("226 "), "pair {pair}, {code}/{path}: {reply}");
            acknowledged.push(Acknowledged { code: code.clone(), path, bytes, via: side });
        }
        // Files are never replaced: both servers start storing one name before either
        // finishes, and exactly one of them wins.
        let bytes = random_bytes(100_000, seed(15));
        // One name is uploaded by one connection at a time: the later STOR gets 450 at once.
        let opened = open_upload(&mut control, &format!("/{code}/contested.bin"), &bytes);
        to_partner.send(Handoff::Started).unwrap();
        let Ok(Handoff::Started) = from_partner.recv_timeout(DEADLINE) else {
            panic!("pair {pair}: the partner did not try storing contested.bin");
        };
        match opened {
            Ok(mut data) => {
                data.write_all(&bytes).unwrap();
                drop(data);
                let reply = control.reply().remove(0);
                if reply.starts_with("226 ") {
                    let path = "contested.bin".to_owned();
                    acknowledged.push(Acknowledged { code: code.clone(), path, bytes, via: side });
                } else {
                    assert!(reply.starts_with("550 "), "pair {pair}, {code}/contested.bin: {reply}");
                }
            }
            Err(refusal) => {
                let busy_or_exists = refusal.starts_with("450 ") || refusal.starts_with("550 ");
                assert!(busy_or_exists, "pair {pair}, {code}/contested.bin: {refusal}");
            }
        }
        if maker {
            let Ok(Handoff::Done) = from_partner.recv_timeout(DEADLINE) else {
                panic!("pair {pair}: the partner did not finish");
            };
            assert!(control.command(&format!("CWD /{code}")).starts_with("250 "));
            let sealed = control.command("SITE SEAL");
            assert!(sealed.starts_with("200 "), "{sealed}");
            to_partner.send(Handoff::Sealed).unwrap();
        } else {
            // Wait for the seal: the partner's QUIT would seal the share under the maker.
            to_partner.send(Handoff::Done).unwrap();
            let Ok(Handoff::Sealed) = from_partner.recv_timeout(DEADLINE) else {
                panic!("pair {pair}: the maker did not seal");
            };
        }
    }
    assert!(control.command("QUIT").starts_with("221 "));
    acknowledged
}

/// The real client on one server: shares that expire within seconds, while the others run,
/// and lasting folder uploads. Returns the lasting files and the codes of the brief shares.
fn client_writer(addrs: [&str; 2], side: usize) -> (Vec<Acknowledged>, Vec<String>) {
    let dir = TempDir::new();
    let mut brief = Vec::new();
    let mut lasting = Vec::new();
    for round in 0..2 {
        let name = format!("brief-{round}.txt");
        dir.file(&name, format!("brief {side} {round}").as_bytes());
        let run = client(addrs[side], dir.path(), &["upload", "--expires", "2s", &name], b"");
        // A two-second share may expire before its upload ends (exit 3); the sweepers remove
        // it all the same.
        match run.code {
            0 => brief.push(code_of(run.stdout.trim())),
            3 => {}
            _ => panic!("brief upload through {}: exit {}: {}", addrs[side], run.code, run.stderr),
        }
        let folder = format!("tree-{round}");
        let files: Vec<(String, Vec<u8>)> = (0..3)
            .map(|file| {
                let seed = (1000 + side * 100 + round * 10 + file) as u64;
                let bytes = random_bytes(SIZES[(side + round + file * 2) % SIZES.len()], seed);
                (format!("{folder}/sub{}/f{file}.bin", file % 2), bytes)
            })
            .collect();
        for (path, bytes) in &files {
            dir.file(path, bytes);
        }
        let run = client(addrs[side], dir.path(), &["upload", "--expires", "1h", &folder], b"");
        assert_eq!(run.code, 0, "{}", run.stderr);
        let code = code_of(run.stdout.trim());
        for (path, bytes) in files {
            lasting.push(Acknowledged { code: code.clone(), path, bytes, via: side });
        }
    }
    (lasting, brief)
}
