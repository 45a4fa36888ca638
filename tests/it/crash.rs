//! Crash safety: real kill -9 of the server during uploads, then a restart on the same root.
//!
//! Also home to the raw-protocol helpers (store, fetch, listing, manifest checks) that
//! `cluster.rs` uses too.

use std::fs;
use std::io::{Read, Write};

use anonshare::common::expiry::parse_rfc3339;
use anonshare::proto::parse_mlsx_line;
use anonshare::server::log::ShareTag;
use anonshare::server::store::unix_now;

use crate::support::{
    Control, Server, TempDir, announce, client, code_of, fetch, files_under, hash_reply, info_value, listing,
    make_share, manifest_files, open_upload, part_files, random_bytes, site_info, store, upload, wait_until,
};

/// Seed of the kill points and file contents; a failure message names the round it hit.
const SEED: u64 = 0x5eed_c0de_0009;
/// Kill-and-restart rounds on one root.
const ROUNDS: usize = 6;
/// Sizes of the files acknowledged before a kill, some of them several MiB.
const SIZES: [usize; 6] = [0, 1, 4096, 65_537, (1 << 20) + 3, (3 << 20) + 11];
/// Sizes of the file a kill interrupts: big enough to be cut partway.
const CUT_SIZES: [usize; 4] = [4096, 300_001, (1 << 20) + 7, (3 << 20) + 1];
/// Size of the small file killed on its way to the pack.
const SMALL_CUT_SIZE: usize = 5000;

#[test]
fn kill_9_during_uploads_loses_no_acknowledged_file() {
    let mut rng = XorShift(SEED);
    let mut server = Server::start();
    let mut sealed: Vec<SealedShare> = Vec::new();
    for round in 0..ROUNDS {
        // The last two rounds kill right after the last byte was sent, before any 226 could be
        // read: first of a file of its own, then of a small file on its way to the pack.
        let cut = match ROUNDS - round {
            2 => Cut::AfterLastByte,
            1 => Cut::AfterLastSmallByte,
            _ => Cut::MidFile,
        };
        let (folder, crashed) = upload_until_killed(server, &mut rng, round, cut);
        server = Server::start_in(folder, &[]);
        assert_eq!(
            files_under(&server.root.join("tmp")),
            ["lock"],
            "round {round}: after a restart tmp/ holds only the new server's lock, no .part"
        );
        for share in &sealed {
            share.check_unchanged(&server, round);
        }
        sealed.push(check_crashed_round(&server, &crashed));
    }
}

#[test]
fn expired_shares_are_removed_at_start() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("brief.txt", b"gone by the next start");
    dir.file("lasting.txt", b"still here after the next start");
    // The expiry as the upload reported it: asked for later, the share may be gone already.
    let made = upload(&server, dir.path(), &["--json", "--expires", "2s", "brief.txt"]);
    let brief = json_field(&made, "code");
    let expires = parse_rfc3339(&json_field(&made, "expires")).expect("an RFC 3339 expiry");
    let lasting = code_of(&upload(&server, dir.path(), &["--expires", "1h", "lasting.txt"]));
    let folder = server.kill();

    wait_until("the wall clock passes the share's expiry", || unix_now() >= expires);
    // No sweep falls due for an hour: only the sweep at start can remove the share.
    let server = Server::start_in(folder, &["--sweep-interval", "1h"]);
    let share_dir = server.root.join("shares").join(&brief);
    wait_until("the sweep at start removed the expired share", || !share_dir.exists());
    let list = client(&server.addr, dir.path(), &["list", &server.url(&brief)], b"");
    assert_eq!(list.code, 3, "{}", list.stderr);
    let get = client(&server.addr, dir.path(), &["download", &server.url(&brief), "--dir", "out"], b"");
    assert_eq!(get.code, 3, "{}", get.stderr);
    let expired = format!("event=expired share={}", ShareTag::of(&brief));
    wait_until("the sweep logged the expired share", || server.log().contains(&expired));
    let kept = client(&server.addr, dir.path(), &["list", &server.url(&lasting)], b"");
    assert_eq!(kept.code, 0, "a share that has not expired survives the sweep: {}", kept.stderr);
    assert!(kept.stdout.ends_with("\tlasting.txt\n"), "{}", kept.stdout);
}

/// The string value of `"key"` in the one-line JSON object `json`.
fn json_field(json: &str, key: &str) -> String {
    let start = json.find(&format!("\"{key}\":\"")).unwrap_or_else(|| panic!("{key} in {json}"));
    let value = &json[start + key.len() + 4..];
    value[..value.find('"').unwrap()].to_owned()
}

/// Where the kill lands in the interrupted upload.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Part of the file's bytes are in its `.part` file, the data connection still open.
    MidFile,
    /// All bytes sent and the data connection closed; the server may or may not have committed.
    AfterLastByte,
    /// The same, for a small file announced with ALLO, on its way to the pack.
    AfterLastSmallByte,
}

/// One round's unsealed share as the killed server left it.
struct CrashedRound {
    round: usize,
    code: String,
    token: String,
    /// SITE INFO's expiry before the kill.
    expires: String,
    /// Files whose 226 arrived before the kill, by name.
    stored: Vec<(String, Vec<u8>)>,
    /// The file the kill interrupted.
    cut_name: String,
    cut_bytes: Vec<u8>,
    cut: Cut,
}

/// A share sealed after its round was checked, and SITE INFO at that moment.
struct SealedShare {
    code: String,
    info: Vec<String>,
    files: Vec<(String, Vec<u8>)>,
}

/// Creates a share, stores a pseudo-random number of files, starts one more and kills the
/// server with SIGKILL at the chosen cut; returns the server's folder and what was sent.
fn upload_until_killed(
    server: Server,
    rng: &mut XorShift,
    round: usize,
    cut: Cut,
) -> (TempDir, CrashedRound) {
    let mut control = Control::login(&server.addr);
    assert!(control.command("TYPE I").starts_with("200 "));
    let share = make_share(&mut control, 3600);
    let expires = info_value(&site_info(&mut control, &share.code).unwrap(), "expires");
    let mut stored = Vec::new();
    for i in 0..rng.below(4) {
        let name = format!("round{round}-{i}.bin");
        let bytes = random_bytes(SIZES[rng.below(SIZES.len())], rng.next());
        // Announced, a small file goes to the pack; unannounced, every file gets a blob.
        if rng.below(2) == 0 {
            announce(&mut control, &bytes);
        }
        let reply = store(&mut control, &format!("/{}/{name}", share.code), &bytes);
        assert!(reply.starts_with("226 "), "round {round}, {name}: {reply}");
        stored.push((name, bytes));
    }
    let cut_name = format!("round{round}-cut.bin");
    let cut_size = CUT_SIZES[rng.below(CUT_SIZES.len())];
    let cut_size = if cut == Cut::AfterLastSmallByte { SMALL_CUT_SIZE } else { cut_size };
    let cut_bytes = random_bytes(cut_size, rng.next());
    if cut == Cut::AfterLastSmallByte {
        announce(&mut control, &cut_bytes);
    }
    let mut data = open_upload(&mut control, &format!("/{}/{cut_name}", share.code), &cut_bytes)
        .unwrap_or_else(|refusal| panic!("round {round}: STOR {cut_name}: {refusal}"));
    match cut {
        Cut::MidFile => {
            let written = 1 + rng.below(cut_bytes.len() - 1);
            data.write_all(&cut_bytes[..written]).unwrap();
            wait_until(&format!("round {round}: {written} bytes of {cut_name} are in a .part file"), || {
                part_files(&server.root).iter().any(|(_, len)| *len == written as u64)
            });
        }
        Cut::AfterLastByte | Cut::AfterLastSmallByte => {
            data.write_all(&cut_bytes).unwrap();
            drop(data);
        }
    }
    let folder = server.kill();
    let crashed = CrashedRound {
        round,
        code: share.code,
        token: share.token,
        expires,
        stored,
        cut_name,
        cut_bytes,
        cut,
    };
    (folder, crashed)
}

/// Checks a crashed round's share on the restarted server and seals it.
fn check_crashed_round(server: &Server, crashed: &CrashedRound) -> SealedShare {
    let (round, code) = (crashed.round, crashed.code.as_str());
    let mut stranger = Control::login(&server.addr);
    let unseen = stranger.command(&format!("SITE INFO /{code}"));
    assert!(unseen.starts_with("550 "), "round {round}: an unsealed share stays unseen: {unseen}");
    let mut owner = Control::login(&server.addr);
    assert!(owner.command("TYPE I").starts_with("200 "));
    let claimed = owner.command(&format!("SITE OWNER {code} {}", crashed.token));
    assert!(claimed.starts_with("200 "), "round {round}: {claimed}");
    let info = site_info(&mut owner, code).unwrap();
    assert_eq!(info_value(&info, "expires"), crashed.expires, "round {round}: expiry unchanged");
    assert_eq!(info_value(&info, "sealed"), "no", "round {round}: a kill seals nothing");

    let cut_path = format!("/{code}/{}", crashed.cut_name);
    let cut_kept = match crashed.cut {
        Cut::MidFile => false,
        // The commit may have happened before the kill; then the file must be whole.
        Cut::AfterLastByte | Cut::AfterLastSmallByte => {
            owner.command(&format!("SIZE {cut_path}")).starts_with("213 ")
        }
    };
    let mut files = crashed.stored.clone();
    if cut_kept {
        files.push((crashed.cut_name.clone(), crashed.cut_bytes.clone()));
    }
    let mut names: Vec<String> = files.iter().map(|(name, _)| name.clone()).collect();
    names.sort();

    let listed = listing(&mut owner, &format!("MLSD /{code}")).unwrap();
    let mut listed: Vec<String> = listed.iter().map(|line| parse_mlsx_line(line).unwrap().name).collect();
    listed.sort();
    assert_eq!(listed, names, "round {round}: MLSD lists exactly the acknowledged files");
    let mut nlst = listing(&mut owner, &format!("NLST /{code}")).unwrap();
    nlst.sort();
    assert_eq!(nlst, names, "round {round}: NLST");
    let share_dir = server.root.join("shares").join(code);
    let torn_tail_allowed = crashed.cut != Cut::MidFile;
    let recorded = manifest_files(&share_dir, torn_tail_allowed);
    let blobs = fs::read_dir(share_dir.join("blobs")).unwrap().count();
    match crashed.cut {
        Cut::MidFile => assert_eq!(blobs, recorded.blobs, "round {round}: no blob without a record"),
        Cut::AfterLastByte => assert!(blobs <= recorded.blobs + 1, "round {round}: {blobs} blobs"),
        Cut::AfterLastSmallByte => assert_eq!(blobs, recorded.blobs, "round {round}: packed, never a blob"),
    }
    let mut recorded = recorded.files;
    recorded.sort();
    assert_eq!(recorded, names, "round {round}: the manifest records the acknowledged files");
    for (name, bytes) in &files {
        let path = format!("/{code}/{name}");
        assert_eq!(owner.command(&format!("SIZE {path}")), format!("213 {}", bytes.len()), "round {round}");
        assert_eq!(owner.command(&format!("HASH {path}")), hash_reply(&path, bytes), "round {round}");
        assert!(fetch(&mut owner, &path).unwrap() == *bytes, "round {round}: {path} downloads byte-exact");
    }
    if !cut_kept {
        for verb in ["SIZE", "HASH", "MDTM", "MLST"] {
            let reply = owner.command(&format!("{verb} {cut_path}"));
            assert!(reply.starts_with("550 "), "round {round}: the cut file is unseen by {verb}: {reply}");
        }
        let retr = fetch(&mut owner, &cut_path).unwrap_err();
        assert!(retr.starts_with("550 "), "round {round}: RETR of the cut file: {retr}");
    }

    let sealing = owner.command("SITE SEAL");
    assert!(sealing.starts_with("200 "), "round {round}: {sealing}");
    let info = site_info(&mut stranger, code).expect("a sealed share is seen by everyone");
    assert_eq!(info_value(&info, "sealed"), "yes");
    assert_eq!(info_value(&info, "expires"), crashed.expires, "round {round}: sealing keeps the expiry");
    SealedShare { code: code.to_owned(), info, files }
}

impl SealedShare {
    /// Checks that a restart changed nothing: still sealed, same expiry and totals, same files.
    fn check_unchanged(&self, server: &Server, round: usize) {
        let mut control = Control::login(&server.addr);
        assert!(control.command("TYPE I").starts_with("200 "));
        let info = site_info(&mut control, &self.code);
        assert_eq!(info.as_ref(), Ok(&self.info), "round {round}: sealed share {} unchanged", self.code);
        for (name, bytes) in &self.files {
            let path = format!("/{}/{name}", self.code);
            assert_eq!(control.command(&format!("HASH {path}")), hash_reply(&path, bytes), "round {round}");
        }
        let stor = store(&mut control, &format!("/{}/late.bin", self.code), b"late");
        assert!(stor.starts_with("550 "), "round {round}: a sealed share takes no files: {stor}");
    }
}

/// A small deterministic generator for kill points and contents, so a failure reproduces.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A download of a file that may be downloaded once, killed with SIGKILL the moment its client
/// holds every byte: the download was counted already, so after the restart the file is gone
/// (its last bytes leave only after the count). Half the rounds reserve the place before the
/// `150`, half count the download at its end (`--reserve-below 0`).
#[test]
fn a_budgeted_download_whose_client_holds_every_byte_is_counted_before_a_kill_9() {
    let mut server = Server::start();
    let dir = TempDir::new();
    for round in 0..4u64 {
        // The server restarted below runs the next round in the other mode.
        let next: &[&str] = if round % 2 == 0 { &["--reserve-below", "0"] } else { &[] };
        let bytes = random_bytes((1 << 20) + 5 + round as usize, 90 + round);
        dir.file("once.bin", &bytes);
        let code = code_of(&upload(&server, dir.path(), &["once.bin", "--once"]));
        let mut control = Control::login(&server.addr);
        let mut data = crate::support::data_connection(&mut control);
        let reply = control.command(&format!("RETR /{code}/once.bin"));
        assert!(reply.starts_with("150 "), "round {round}: {reply}");
        let mut received = vec![0; bytes.len()];
        data.read_exact(&mut received).unwrap();
        assert!(received == bytes, "round {round}: the file's bytes");
        server = server.restart(next);
        // Counted, the file is gone (and the share, spent, is swept at start).
        let mut after = Control::login(&server.addr);
        wait_until("the download sent whole was counted", || {
            after.command(&format!("SIZE /{code}/once.bin")).starts_with("550 ")
        });
    }
}

/// A budgeted download cut by a `kill -9` while it was being sent, then resumed from where its
/// client got to: the resume sends the rest, and the download counts once it reached the end,
/// although no record shows who sent the first part. Once with the place claimed before the
/// `150`, once counted at the end (`--reserve-below 0`).
#[test]
fn a_budgeted_download_cut_by_a_kill_9_and_resumed_counts_once() {
    for mode in [&[][..], &["--reserve-below", "0"][..]] {
        let mut server = Server::start_with(mode);
        let dir = TempDir::new();
        // Larger than the loopback buffers: the kill comes while the server still sends.
        let bytes = random_bytes(24 << 20, 95);
        dir.file("big.bin", &bytes);
        let code = code_of(&upload(&server, dir.path(), &["big.bin", "--max-downloads", "2"]));
        let path = format!("/{code}/big.bin");
        let mut control = Control::login(&server.addr);
        let mut data = crate::support::data_connection(&mut control);
        assert!(control.command(&format!("RETR {path}")).starts_with("150 "), "{mode:?}");
        let mut first = vec![0; 1 << 20];
        data.read_exact(&mut first).unwrap();
        server = server.restart(mode);
        let mut again = Control::login(&server.addr);
        assert!(again.command("TYPE I").starts_with("200 "));
        let mut data = crate::support::data_connection(&mut again);
        assert!(again.command(&format!("REST {}", first.len())).starts_with("350 "));
        assert!(again.command(&format!("RETR {path}")).starts_with("150 "), "{mode:?}");
        let mut rest = Vec::new();
        data.read_to_end(&mut rest).unwrap();
        assert!(again.reply()[0].starts_with("226 "), "{mode:?}");
        first.extend_from_slice(&rest);
        assert!(first == bytes, "{mode:?}: the file whole");
        let info = site_info(&mut again, &format!("{code}/big.bin")).unwrap();
        assert_eq!(info_value(&info, "downloads-left"), "1", "{mode:?}: counted once");
    }
}
