//! One store, several servers: two processes on the same store stay consistent. In `make test`
//! both run on one local folder; `make test-cluster` names two mounts of one GlusterFS volume in
//! `ANONSHARE_CLUSTER_MOUNTS` (`/mount/a:/mount/b`), and each server runs on its own mount, as on
//! two machines.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use anonshare::common::digest::Sha256Digest;
use anonshare::common::expiry::parse_rfc3339;
use anonshare::common::secret::ShareCode;
use anonshare::server::store::{Limits, Store, unix_now};

use crate::support::{
    Control, DEADLINE, Server, TempDir, announce, client, code_of, curl, fetch, fetch_or_refusal,
    files_under, hash_reply, info_value, listing, make_share, manifest_files, open_upload, part_files,
    random_bytes, site_info, store, upload, wait_until,
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
    let roots = Roots::new();
    let (a, b) = roots.servers(&[]);
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
    let roots = Roots::new();
    let (a, b) = roots.servers(&[]);
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
    wait_until_sealed(&mut other, code);
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
    wait_until_sealed(&mut other, &brief.code);
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
    let roots = Roots::new();
    let (a, b) = roots.servers(&["--sweep-interval", "1s"]);
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
        for control in &mut controls {
            wait_until_sealed(control, code);
        }
        let mut expected: Vec<String> = files
            .iter()
            .map(|f| format!("{}\t{}\t{}", f.bytes.len(), Sha256Digest::of(&f.bytes), f.path))
            .collect();
        expected.sort();
        for addr in addrs {
            // Records appended through the other server may show a moment later.
            let url = format!("ftp://{addr}/{code}/");
            wait_until("the share lists every acknowledged file through both servers", || {
                let run = client(addr, Path::new("."), &["list", &url], b"");
                // Empty folders are listed as `-<TAB>-<TAB>PATH/`; only files are compared here.
                let mut listed: Vec<&str> =
                    run.stdout.lines().filter(|line| !line.starts_with("-\t")).collect();
                listed.sort();
                run.code == 0 && listed == expected
            });
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
    let roots = Roots::new();
    let (a, b) = roots.servers(&[]);
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

    let a = a.restart(&[]);
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
    wait_until_sealed(&mut via_a, &share.code);
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

/// Where a test's two servers keep their store: with `ANONSHARE_CLUSTER_MOUNTS=/mount/a:/mount/b`
/// (two mounts of one distributed filesystem), a fresh folder seen through each mount; else one
/// local folder, twice. The folder is removed when dropped, after the servers.
struct Roots {
    a: PathBuf,
    b: PathBuf,
    /// The test's folder through the first mount, removed on drop.
    mounted: Option<PathBuf>,
    _local: Option<TempDir>,
}

impl Roots {
    fn new() -> Roots {
        let mounts = std::env::var("ANONSHARE_CLUSTER_MOUNTS").unwrap_or_default();
        let Some((mount_a, mount_b)) = mounts.split_once(':') else {
            assert!(mounts.is_empty(), "ANONSHARE_CLUSTER_MOUNTS is /mount/a:/mount/b, not {mounts:?}");
            let local = TempDir::new();
            let root = local.path().join("root");
            return Roots { a: root.clone(), b: root, mounted: None, _local: Some(local) };
        };
        let name = format!("anonshare-it-{}", ShareCode::generate().unwrap());
        let through_a = Path::new(mount_a).join(&name);
        fs::create_dir(&through_a).unwrap();
        let through_b = Path::new(mount_b).join(&name);
        wait_until("the test's folder shows through the second mount", || through_b.is_dir());
        Roots { a: through_a.join("root"), b: through_b.join("root"), mounted: Some(through_a), _local: None }
    }

    /// A server on each root, both with the flags `extra`.
    fn servers(&self, extra: &[&str]) -> (Server, Server) {
        let a = Server::start_on(&self.a, extra);
        let b = Server::start_on(&self.b, extra);
        (a, b)
    }
}

impl Drop for Roots {
    fn drop(&mut self) {
        if let Some(dir) = &self.mounted {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// Waits until a share sealed through one server is seen sealed through `other`: on a
/// distributed filesystem the other server may see the share's old `meta` for about a second.
fn wait_until_sealed(other: &mut Control, code: &str) {
    wait_until("the other server sees the share sealed", || {
        site_info(other, code).is_ok_and(|info| info_value(&info, "sealed") == "yes")
    });
}

/// Small files uploaded into one share by connections on both servers at once.
const SMALL_WRITERS_PER_SERVER: usize = 2;
/// Files each of those connections stores.
const SMALL_FILES_EACH: usize = 12;

#[test]
fn small_files_stored_through_both_servers_into_one_share_all_verify() {
    let roots = Roots::new();
    let (a, b) = roots.servers(&[]);
    let addrs = [a.addr.as_str(), b.addr.as_str()];
    let mut maker = Control::login(&a.addr);
    assert!(maker.command("TYPE I").starts_with("200 "));
    let share = make_share(&mut maker, 600);
    let code = share.code.as_str();
    let token = share.token.as_str();
    let acknowledged: Vec<Acknowledged> = thread::scope(|scope| {
        let writers: Vec<_> = (0..2 * SMALL_WRITERS_PER_SERVER)
            .map(|writer| {
                let via = writer % 2;
                let store_small_files = move || {
                    let mut control = Control::login(addrs[via]);
                    assert!(control.command("TYPE I").starts_with("200 "));
                    let joined = control.command(&format!("SITE OWNER {code} {token}"));
                    assert!(joined.starts_with("200 "), "{joined}");
                    let mut stored = Vec::new();
                    for file in 0..SMALL_FILES_EACH {
                        let path = format!("w{writer}/f{file}.bin");
                        let bytes = random_bytes(
                            1000 + (writer * 7919 + file * 104_729) % 30_000,
                            seed(writer, file),
                        );
                        // Announced small files go to a pack.
                        announce(&mut control, &bytes);
                        let reply = store(&mut control, &format!("/{code}/{path}"), &bytes);
                        assert!(reply.starts_with("226 "), "{path} through {}: {reply}", addrs[via]);
                        stored.push(Acknowledged { code: code.to_owned(), path, bytes, via });
                    }
                    stored
                };
                thread::Builder::new()
                    .name(format!("small-{writer}"))
                    .spawn_scoped(scope, store_small_files)
                    .unwrap()
            })
            .collect();
        writers.into_iter().flat_map(|writer| writer.join().expect("writer thread")).collect()
    });
    assert!(maker.command("SITE SEAL").starts_with("200 "));
    assert_every_file_verifies_through_both(addrs, code, &acknowledged);
}

/// The seed of file `file` of writer `writer`.
fn seed(writer: usize, file: usize) -> u64 {
    (writer * 1000 + file + 1) as u64
}

/// Every file of sealed share `code` lists, hashes and downloads byte-exact through both servers,
/// and the share holds no other file.
fn assert_every_file_verifies_through_both(addrs: [&str; 2], code: &str, files: &[Acknowledged]) {
    let mut expected: Vec<String> = files
        .iter()
        .map(|f| format!("{}\t{}\t{}", f.bytes.len(), Sha256Digest::of(&f.bytes), f.path))
        .collect();
    expected.sort();
    for addr in addrs {
        let mut control = Control::login(addr);
        assert!(control.command("TYPE I").starts_with("200 "));
        wait_until_sealed(&mut control, code);
        // Records appended through the other server may show a moment later: a delay, never a
        // wrong listing (a wrong one never turns right, and this wait times out).
        let url = format!("ftp://{addr}/{code}/");
        wait_until("the share lists every acknowledged file, once", || {
            let run = client(addr, Path::new("."), &["list", &url], b"");
            let mut listed: Vec<&str> = run.stdout.lines().collect();
            listed.sort();
            run.code == 0 && listed == expected
        });
        let mut wrong = Vec::new();
        for file in files {
            let path = format!("/{code}/{}", file.path);
            let hash = control.command(&format!("HASH {path}"));
            let fetched = fetch(&mut control, &path);
            if hash != hash_reply(&path, &file.bytes) || fetched.as_deref() != Ok(&file.bytes[..]) {
                wrong.push(path);
            }
        }
        assert!(
            wrong.is_empty(),
            "{} of {} files read back wrong through {addr}: {wrong:?}",
            wrong.len(),
            files.len()
        );
    }
}

/// Files the real client uploads through the balancer.
const BALANCED_FILES: usize = 24;

#[test]
fn an_upload_whose_connections_alternate_between_the_servers_verifies() {
    let roots = Roots::new();
    let (a, b) = roots.servers(&[]);
    let addrs = [a.addr.as_str(), b.addr.as_str()];
    let balancer = Balancer::start([a.addr.clone(), b.addr.clone()]);
    let dir = TempDir::new();
    let files: Vec<(String, Vec<u8>)> = (0..BALANCED_FILES)
        .map(|file| {
            let size = [0, 1, 700, 20_000, 65_536, 200_000][file % 6];
            (format!("tree/d{}/f{file}.bin", file % 3), random_bytes(size, seed(99, file)))
        })
        .collect();
    for (path, bytes) in &files {
        dir.file(path, bytes);
    }
    let run = client(&balancer.addr, dir.path(), &["upload", "--parallel", "4", "tree"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let code = code_of(run.stdout.trim());
    assert!(balancer.connections() >= 2, "the client's connections went to both servers");
    let acknowledged: Vec<Acknowledged> = files
        .into_iter()
        .map(|(path, bytes)| Acknowledged { code: code.clone(), path, bytes, via: 0 })
        .collect();
    assert_every_file_verifies_through_both(addrs, &code, &acknowledged);
    for addr in addrs {
        let out = TempDir::new();
        let url = format!("ftp://{addr}/{code}/");
        let get = client(addr, out.path(), &["download", &url, "--dir", "got"], b"");
        assert_eq!(get.code, 0, "download through {addr}: {}", get.stderr);
        for file in &acknowledged {
            let got = fs::read(out.path().join("got").join(&file.path)).unwrap();
            assert!(got == file.bytes, "{} through {addr} is byte-exact", file.path);
        }
    }
}

/// A TCP balancer on 127.0.0.1:0 that sends each new connection to the next of two servers.
/// Data connections go straight to the server that opened the port.
struct Balancer {
    addr: String,
    accepted: Arc<AtomicUsize>,
}

impl Balancer {
    fn start(servers: [String; 2]) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        // The accept loop lives as long as the test binary; nothing connects once the test ends.
        thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&servers[n % 2]) else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                for (mut from, mut to) in
                    [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    thread::spawn(move || {
                        let _ = io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        Balancer { addr, accepted }
    }

    /// Connections passed on so far.
    fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Rounds of two STORs of one name, one through each server.
const CONTESTED_ROUNDS: usize = 6;

#[test]
fn two_stors_of_one_path_through_both_servers_store_it_once() {
    let roots = Roots::new();
    let (a, b) = roots.servers(&[]);
    let mut sides = [Control::login(&a.addr), Control::login(&b.addr)];
    for side in &mut sides {
        assert!(side.command("TYPE I").starts_with("200 "));
    }
    let share = make_share(&mut sides[0], 600);
    let code = share.code.as_str();
    let joined = sides[1].command(&format!("SITE OWNER {code} {}", share.token));
    assert!(joined.starts_with("200 "), "{joined}");
    let mut stored = Vec::new();
    for round in 0..CONTESTED_ROUNDS {
        // Small (packed) and large (a blob) in turn.
        let size = if round % 2 == 0 { 5_000 } else { 300_000 };
        let path = format!("same-{round}.bin");
        let bytes: [Vec<u8>; 2] = [random_bytes(size, seed(round, 1)), random_bytes(size, seed(round, 2))];
        // Both begin before either ends.
        let mut opened = Vec::new();
        for (side, control) in sides.iter_mut().enumerate() {
            announce(control, &bytes[side]);
            opened.push(open_upload(control, &format!("/{code}/{path}"), &bytes[side]));
        }
        let mut winners = Vec::new();
        for (side, opened) in opened.into_iter().enumerate() {
            let reply = match opened {
                Ok(mut data) => {
                    data.write_all(&bytes[side]).unwrap();
                    drop(data);
                    sides[side].reply().remove(0)
                }
                Err(refusal) => refusal,
            };
            if reply.starts_with("226 ") {
                winners.push(side);
            } else {
                let refused = reply.starts_with("550 ") || reply.starts_with("450 ");
                assert!(refused, "{path} through server {side}: {reply}");
            }
        }
        assert_eq!(winners.len(), 1, "{path}: exactly one of the two STORs is stored");
        let winner = winners[0];
        // Once stored, a STOR of the name through either server gets 550 at once.
        for (side, control) in sides.iter_mut().enumerate() {
            announce(control, b"late");
            let late = store(control, &format!("/{code}/{path}"), b"late");
            assert!(late.starts_with("550 "), "{path} again through server {side}: {late}");
        }
        stored.push(Acknowledged { code: code.to_owned(), path, bytes: bytes[winner].clone(), via: winner });
    }
    assert!(sides[0].command("SITE SEAL").starts_with("200 "));
    assert_every_file_verifies_through_both([a.addr.as_str(), b.addr.as_str()], code, &stored);
    let recorded = manifest_files(&roots.a.join("shares").join(code), false);
    assert_eq!(recorded.files.len(), CONTESTED_ROUNDS, "one record per name: {:?}", recorded.files);
}

#[test]
fn killing_either_server_mid_upload_loses_nothing_acknowledged() {
    let roots = Roots::new();
    let (a, b) = roots.servers(&[]);
    let mut servers = [a, b];
    for victim in 0..2 {
        let survivor = 1 - victim;
        let mut owner = Control::login(&servers[victim].addr);
        assert!(owner.command("TYPE I").starts_with("200 "));
        let share = make_share(&mut owner, 600);
        let code = share.code.clone();
        let small = random_bytes(3000, seed(victim, 50));
        announce(&mut owner, &small);
        assert!(store(&mut owner, &format!("/{code}/small.bin"), &small).starts_with("226 "));
        let big = random_bytes((2 << 20) + 11, seed(victim, 51));
        let path = format!("/{code}/big.bin");
        let mut data = open_upload(&mut owner, &path, &big).unwrap();
        let half = big.len() / 2;
        data.write_all(&big[..half]).unwrap();
        let root = if victim == 0 { roots.a.clone() } else { roots.b.clone() };
        wait_until("the first half is kept in a .part file", || {
            part_files(&root).iter().any(|(_, len)| *len == half as u64)
        });
        // SIGKILL mid-upload, then the same server again on the same root.
        let [first, second] = servers;
        servers = if victim == 0 { [first.restart(&[]), second] } else { [first, second.restart(&[])] };
        drop(data);
        // The upload goes on through the other server from the kept bytes.
        let mut resumer = Control::login(&servers[survivor].addr);
        assert!(resumer.command("TYPE I").starts_with("200 "));
        let joined = resumer.command(&format!("SITE OWNER {code} {}", share.token));
        assert!(joined.starts_with("200 "), "{joined}");
        let mut kept = 0;
        wait_until("the dead server's lock on the kept bytes is gone", || {
            let reply = resumer.command(&format!("SITE PARTIAL {path}"));
            kept = reply.strip_prefix("213 ").and_then(|n| n.trim().parse().ok()).unwrap_or(0);
            kept == half
        });
        let rest = resumer.command(&format!("REST {kept}"));
        assert!(rest.starts_with("350 "), "{rest}");
        let mut data = open_upload(&mut resumer, &path, &big).unwrap();
        data.write_all(&big[kept..]).unwrap();
        drop(data);
        let done = resumer.reply().remove(0);
        assert!(done.starts_with("226 "), "the upload completes through the other server: {done}");
        assert!(resumer.command(&format!("CWD /{code}")).starts_with("250 "));
        assert!(resumer.command("SITE SEAL").starts_with("200 "));
        let files = [("small.bin", small), ("big.bin", big)].map(|(path, bytes)| Acknowledged {
            code: code.clone(),
            path: path.to_owned(),
            bytes,
            via: victim,
        });
        assert_every_file_verifies_through_both(
            [servers[0].addr.as_str(), servers[1].addr.as_str()],
            &code,
            &files,
        );
    }
}

/// Downloaders racing for a budgeted file, half through each server.
const RACING_DOWNLOADERS: usize = 8;

/// Each budget raced with its places claimed before the `150`, then counted at the end
/// (`--reserve-below 0`), where the refused downloads are those that reach their end last; and
/// a small file in a pack, whose last count punches its bytes out of the pack another server
/// may be sending them from.
#[test]
fn download_budgets_raced_over_both_servers_are_exact() {
    let roots = Roots::new();
    let modes: [&[&str]; 2] = [&[], &["--reserve-below", "0"]];
    let (big, small) = (150_000, 4_000);
    let races = [
        (1, modes[0], big),
        (3, modes[0], big),
        (1, modes[1], big),
        (3, modes[1], big),
        (3, modes[0], small),
    ];
    for (budget, mode, size) in races {
        let (a, b) = roots.servers(mode);
        let addrs = [a.addr.as_str(), b.addr.as_str()];
        let mut maker = Control::login(&a.addr);
        assert!(maker.command("TYPE I").starts_with("200 "));
        let created = maker.command(&format!("SITE MKSHARE 600 DOWNLOADS={budget}"));
        assert!(created.starts_with("257 "), "{created}");
        let code = created.split('"').nth(1).unwrap().trim_start_matches('/').to_owned();
        let bytes = random_bytes(size, seed(budget as usize, 60));
        let path = format!("/{code}/budgeted.bin");
        if size == small {
            announce(&mut maker, &bytes);
        }
        assert!(store(&mut maker, &path, &bytes).starts_with("226 "));
        assert!(maker.command("SITE SEAL").starts_with("200 "));
        let blobs = fs::read_dir(a.root.join("shares").join(&code).join("blobs")).unwrap().count();
        assert_eq!(blobs, usize::from(size == big), "{size} B: a blob, or a stretch of the pack");
        for addr in addrs {
            let mut control = Control::login(addr);
            wait_until_sealed(&mut control, &code);
        }
        let completed = thread::scope(|scope| {
            let downloaders: Vec<_> = (0..RACING_DOWNLOADERS)
                .map(|n| {
                    let (path, bytes, servers) = (&path, &bytes, [&a, &b]);
                    scope.spawn(move || {
                        // One download after another, each through the other server than the
                        // last, until the file is gone: a count read back stale would let one more.
                        let mut completed = 0;
                        for attempt in 0..=budget as usize {
                            let mut control = Control::login(addrs[(n + attempt) % 2]);
                            assert!(control.command("TYPE I").starts_with("200 "));
                            match fetch_or_refusal(&mut control, path) {
                                Ok(got) => {
                                    assert!(got == *bytes, "a download that completes is byte-exact");
                                    completed += 1;
                                }
                                Err((refusal, received)) => {
                                    let logs = || format!("{}\n{}", servers[0].log(), servers[1].log());
                                    assert!(refusal.starts_with("550 "), "{refusal}\n{}", logs());
                                    assert!(
                                        received < bytes.len(),
                                        "a refused download never gets every byte"
                                    );
                                    break;
                                }
                            }
                        }
                        completed
                    })
                })
                .collect();
            downloaders.into_iter().map(|d| d.join().expect("downloader thread")).sum::<u64>()
        });
        assert_eq!(
            completed, budget,
            "DOWNLOADS={budget} {mode:?} {size} B: completed downloads over both servers"
        );
    }
}

/// Clients (addresses) racing for a `--once` file in segments, and rounds of it.
const SEGMENTED_CLIENTS: usize = 4;
const SEGMENTED_ROUNDS: usize = 2;

#[test]
fn a_once_file_fetched_in_segments_through_both_servers_goes_to_one_client_whole() {
    let roots = Roots::new();
    let (a, b) = roots.servers(&[]);
    let servers = [&a, &b];
    // Larger than the socket buffers hold past the head segment: its sender cannot hand the
    // whole file to the network while curl reads only the head.
    let bytes = random_bytes(16 << 20, seed(70, 70));
    let head = 1 << 20;
    for round in 0..SEGMENTED_ROUNDS {
        let mut maker = Control::login(&a.addr);
        assert!(maker.command("TYPE I").starts_with("200 "));
        let created = maker.command("SITE MKSHARE 600 DOWNLOADS=1");
        let code = created.split('"').nth(1).unwrap().trim_start_matches('/').to_owned();
        assert!(store(&mut maker, &format!("/{code}/once.bin"), &bytes).starts_with("226 "));
        assert!(maker.command("SITE SEAL").starts_with("200 "));
        for server in servers {
            wait_until_sealed(&mut Control::login(&server.addr), &code);
        }
        // Each client asks for the head through one server and the tail through the other,
        // both at once, as a balancer would spread its connections.
        let got: Vec<[Vec<u8>; 2]> = thread::scope(|scope| {
            let clients: Vec<_> = (0..SEGMENTED_CLIENTS)
                .map(|client| {
                    let (code, servers) = (&code, servers);
                    scope.spawn(move || {
                        let from = format!("127.0.0.{}", 2 + client);
                        let segment = |side: usize, range: String| {
                            let url = format!("ftp://{}/{code}/once.bin", servers[(client + side) % 2].addr);
                            curl(&["--interface", &from, "--range", &range, &url]).1
                        };
                        thread::scope(|inner| {
                            let first = inner.spawn(|| segment(0, format!("0-{}", head - 1)));
                            let second = inner.spawn(|| segment(1, format!("{head}-")));
                            [first.join().unwrap(), second.join().unwrap()]
                        })
                    })
                })
                .collect();
            clients.into_iter().map(|c| c.join().expect("client thread")).collect()
        });
        let whole: Vec<usize> = (0..SEGMENTED_CLIENTS)
            .filter(|&c| got[c][0] == bytes[..head] && got[c][1] == bytes[head..])
            .collect();
        assert_eq!(whole.len(), 1, "round {round}: one client gets the file whole");
        for (client, segments) in got.iter().enumerate().filter(|(c, _)| *c != whole[0]) {
            assert!(segments.iter().all(Vec::is_empty), "round {round}: client {client} gets no byte");
        }
        let counted: usize = servers.iter().map(|s| s.downloads_counted()).sum();
        assert_eq!(counted, round + 1, "one download a round, over both servers");
        for server in servers {
            let mut control = Control::login(&server.addr);
            wait_until("the spent file is gone through both servers", || {
                control.command(&format!("SIZE /{code}/once.bin")).starts_with("550 ")
            });
        }
    }
}
