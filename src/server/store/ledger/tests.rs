//! The download budget's behaviour, on a store in a temporary folder.

use super::*;
use crate::server::store::test_support::{rel, temp_root, temp_store, upload, upload_announced};
use crate::server::store::{Limits, Store, unix_now};

#[test]
fn a_download_counts_once_one_client_was_sent_every_byte() {
    let (store, _root) = temp_store(Limits::default());
    let (mut share, _) = store.create_share(unix_now() + 60, Some(2)).unwrap();
    let entry = upload(&share, "f", b"budgeted").unwrap();
    // Announced small files go to the pack, budget or not (a download reads them before its
    // claim: `Share::read_if_punchable`), but for an empty one: it would have the place of the
    // next file in the pack, and a budget is kept by place.
    let small = upload_announced(&share, "g", b"small").unwrap();
    let empty = upload_announced(&share, "h", b"").unwrap();
    assert!(matches!((&small.place, &empty.place), (Place::Packed { .. }, Place::Blob(_))));
    share.seal().unwrap();
    let lookup = |share: &Share| share.manifest().unwrap().lookup(&rel("f")).is_some();
    let (one, two, three) = ("10.0.0.1", "10.0.0.2", "10.0.0.3");
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(2));
    // Segments of one client: the first from byte 0, the others join it.
    let first = share.claim_download(&entry, one, 0).unwrap().unwrap();
    let second = share.claim_download(&entry, one, 4).unwrap().unwrap();
    let other = share.claim_download(&entry, two, 0).unwrap().unwrap();
    assert!(
        matches!(share.claim_download(&entry, three, 0), Err(StoreError::NotFound)),
        "two clients in flight"
    );
    let written: Vec<_> =
        fs::read_dir(share.dir.join("budget")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!written.iter().any(|name| name.to_string_lossy().starts_with("tmp.")), "{written:?}");
    assert!(!second.credit(4, 8).unwrap(), "a segment alone does not count");
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(2));
    assert!(first.credit(0, 5).unwrap(), "the segments together cover the file");
    assert!(!second.credit(0, 8).unwrap(), "a claim counts once");
    let late = share.claim_download(&entry, one, 6).unwrap().unwrap();
    assert!(!late.credit(6, 8).unwrap(), "a late segment joins the download that counted");
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(1));
    assert!(lookup(&share));
    drop((first, second, late));
    assert!(other.credit(0, 8).unwrap());
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(0));
    assert!(!lookup(&share), "a spent file answers like one that never existed");
    let Place::Blob(blob) = &entry.place else { panic!("{:?}", entry.place) };
    assert!(!share.dir.join("blobs").join(blob).exists(), "its bytes are gone");
    assert!(store.sweep(unix_now()).removed.is_empty(), "g and h have downloads left");
    // A client that left keeps its claim's bytes: its resume joins them, also when the
    // segment past byte 0 came first.
    let tail = share.claim_download(&small, one, 3).unwrap().unwrap();
    assert!(!tail.credit(3, 5).unwrap());
    drop(tail);
    let resumed = share.claim_download(&small, one, 0).unwrap().unwrap();
    assert!(resumed.credit(0, 3).unwrap());
    share.claim_download(&small, two, 0).unwrap().unwrap().credit(0, 5).unwrap();
    assert!(store.sweep(unix_now()).removed.is_empty(), "h has downloads left");
    for _ in 0..2 {
        let claim = share.claim_download(&empty, one, 0).unwrap().unwrap();
        assert!(claim.credit(0, 0).unwrap(), "an empty file counts when it was sent");
    }
    assert_eq!(store.sweep(unix_now()).codes(), vec![share.code.to_string()], "a spent share is swept");
}

#[test]
fn a_client_that_left_keeps_its_place_for_a_while_and_then_spent_nothing() {
    let (store, _root) = temp_store(Limits::default());
    let (share, entry) = budgeted_file(&store, 1);
    let now = unix_now();
    let claim = |client: &str, offset: u64, at: i64| share.claim_download_at(&entry, client, offset, at);
    // The client was sent half and its connections all left (a pget segment reconnecting).
    let cut = claim("10.0.0.1", 0, now).unwrap().unwrap();
    assert!(!cut.count(0, 4, now).unwrap());
    drop(cut);
    assert!(
        matches!(
            claim("10.0.0.2", 0, now + DEFAULT_CLAIM_HOLD.as_secs() as i64 - 1),
            Err(StoreError::NotFound)
        ),
        "its place is kept"
    );
    let back = claim("10.0.0.1", 4, now + 10).unwrap().unwrap();
    assert!(!back.count(4, 6, now + 10).unwrap());
    drop(back);
    assert!(matches!(
        claim("10.0.0.2", 0, now + DEFAULT_CLAIM_HOLD.as_secs() as i64),
        Err(StoreError::NotFound)
    ));
    // Gone for longer than the hold: it spent nothing, and another client takes the place.
    let later = now + 10 + DEFAULT_CLAIM_HOLD.as_secs() as i64;
    let taker = claim("10.0.0.2", 0, later).unwrap().unwrap();
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(1));
    assert!(matches!(claim("10.0.0.1", 6, later), Err(StoreError::NotFound)), "its place is gone");
    assert!(taker.count(0, 8, later).unwrap());
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(0));
}

#[test]
fn two_claims_of_one_address_that_cover_the_file_together_count_once() {
    let (store, _root) = temp_store(Limits::default());
    let (share, entry) = budgeted_file(&store, 2);
    let one = "10.0.0.1";
    // Two connections from byte 0 at once: two claims (two people behind one address).
    let first = share.claim_download(&entry, one, 0).unwrap().unwrap();
    let retry = share.claim_download(&entry, one, 0).unwrap().unwrap();
    assert_ne!(first.number, retry.number);
    assert!(!first.credit(0, 5).unwrap());
    assert!(!retry.credit(0, 2).unwrap());
    drop(first);
    // The rest joins the newest claim; together they cover the file: one download, and
    // the other claim gives its place up.
    let rest = share.claim_download(&entry, one, 5).unwrap().unwrap();
    assert!(rest.credit(5, 8).unwrap());
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(1));
    let two = share.claim_download(&entry, "10.0.0.2", 0).unwrap().unwrap();
    assert!(two.credit(0, 8).unwrap());
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(0));
}

#[test]
fn a_connection_past_byte_0_keeps_its_claims_place_while_it_sends() {
    let (store, _root) = temp_store(Limits::default());
    let (share, entry) = budgeted_file(&store, 1);
    let now = unix_now();
    let hold = DEFAULT_CLAIM_HOLD.as_secs() as i64;
    let claim = |client: &str, offset: u64, at: i64| share.claim_download_at(&entry, client, offset, at);
    let cut = claim("10.0.0.1", 0, now).unwrap().unwrap();
    assert!(!cut.count(0, 4, now).unwrap());
    drop(cut);
    // Its client comes back past byte 0 and is still being sent long after the hold.
    let back = claim("10.0.0.1", 4, now + 10).unwrap().unwrap();
    assert!(
        matches!(claim("10.0.0.2", 0, now + 10 + 2 * hold), Err(StoreError::NotFound)),
        "a claim held by a connection keeps its place"
    );
    assert!(back.count(4, 8, now + 10 + 2 * hold).unwrap());
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(0));
}

#[test]
fn a_retr_that_completes_its_claim_records_no_segment_and_late_segments_join_it() {
    let (store, _root) = temp_store(Limits::default());
    let (share, entry) = budgeted_file(&store, 2);
    let now = unix_now();
    let hold = DEFAULT_CLAIM_HOLD.as_secs() as i64;
    let whole = share.claim_download_at(&entry, "10.0.0.1", 0, now).unwrap().unwrap();
    // Sent for longer than the hold, in one RETR.
    let counted = now + 2 * hold;
    assert!(whole.count(0, 8, counted).unwrap());
    let names = Names::of(&share, &entry.place);
    assert_eq!(count(|i| names.segment(whole.number.unwrap(), i)).unwrap(), 0, "no segment recorded");
    drop(whole);
    // A segment that comes late joins the download that counted, judged from when it counted.
    let late = share.claim_download_at(&entry, "10.0.0.1", 4, counted + hold - 1).unwrap().unwrap();
    assert!(!late.count(4, 8, counted + hold - 1).unwrap());
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(1), "it spent nothing more");
    assert_eq!(count(|k| names.claim(k)).unwrap(), 1, "it made no claim");
}

#[test]
fn a_claim_file_of_servers_before_is_read_and_its_lock_seen() {
    let (store, _root) = temp_store(Limits::default());
    let (share, entry) = budgeted_file(&store, 1);
    let names = Names::of(&share, &entry.place);
    fs::create_dir(&names.dir).unwrap();
    let made = unix_now() - 5;
    File::create(names.head(0)).unwrap();
    fs::write(names.claim(0), format!("10.0.0.1\n{made}\n")).unwrap();
    append(|g| names.of_client("10.0.0.1", g), "0").unwrap();
    assert_eq!(names.made(0).unwrap(), made);
    assert!(!names.is_held(0).unwrap());
    let held = File::open(names.claim(0)).unwrap();
    held.lock_shared().unwrap();
    assert!(names.is_held(0).unwrap(), "its connections lock the claim file");
    let later = made + 2 * DEFAULT_CLAIM_HOLD.as_secs() as i64;
    assert!(matches!(share.claim_download_at(&entry, "10.0.0.2", 0, later), Err(StoreError::NotFound)));
    drop(held);
    assert!(
        share.claim_download_at(&entry, "10.0.0.2", 0, later).unwrap().unwrap().count(0, 8, later).unwrap()
    );
}

#[test]
fn counters_are_names_without_gaps() {
    let root = temp_root();
    fs::create_dir_all(&root.0).unwrap();
    let name = |n: u64| root.0.join(format!("x{n}"));
    for expected in 0..40 {
        assert_eq!(count(name).unwrap(), expected);
        assert_eq!(append(name, &expected.to_string()).unwrap(), expected);
        assert_eq!(read_number(&name(expected)).unwrap(), expected);
    }
    assert!(covers(&[(5, 8), (0, 3), (2, 6)], 8));
    assert!(!covers(&[(0, 3), (4, 8)], 8));
    assert!(covers(&[], 0));
}

/// A sealed share of one file, `f`, that may be downloaded `downloads` times.
fn budgeted_file(store: &Store, downloads: u64) -> (Share, FileEntry) {
    let (mut share, _) = store.create_share(unix_now() + 60, Some(downloads)).unwrap();
    let entry = upload_announced(&share, "f", b"budgeted").unwrap();
    share.seal().unwrap();
    (share, entry)
}

/// Whether `entry`'s bytes are deleted: its blob gone, or its stretch of the pack a hole.
fn bytes_gone(share: &Share, entry: &FileEntry) -> bool {
    match &entry.place {
        Place::Blob(blob) => !share.dir.join("blobs").join(blob).exists(),
        Place::Packed { instance, offset } => {
            let pack = fs::read(share.dir.join(Place::pack_file(instance.as_deref()))).unwrap();
            pack[*offset as usize..][..entry.size as usize].iter().all(|&byte| byte == 0)
        }
    }
}

fn budget_names(share: &Share) -> Vec<String> {
    let mut names: Vec<_> = match fs::read_dir(share.dir.join("budget")) {
        Ok(entries) => entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    // The lock files are no records.
    names.retain(|name| !name.starts_with("lock."));
    names.sort();
    names
}

#[test]
fn with_many_downloads_left_a_download_takes_no_place_and_counts_at_its_end_with_one_link() {
    let limits = Limits { reserve_below: 2, ..Limits::default() };
    let (store, _root) = temp_store(limits);
    let (share, entry) = budgeted_file(&store, 4);
    let first = share.claim_download(&entry, "10.0.0.1", 0).unwrap().unwrap();
    assert_eq!(first.number, None, "no place taken before the 150");
    assert!(budget_names(&share).is_empty(), "nothing made: {:?}", budget_names(&share));
    assert!(first.credit(0, 8).unwrap(), "counted at its end");
    let place = entry.place.to_string();
    let names = budget_names(&share);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&format!("{place}.u0")) && names.iter().any(|name| name.starts_with("anchor.")));
    let anchor = names.iter().find(|name| name.starts_with("anchor.")).unwrap();
    let anchor = fs::metadata(share.dir.join("budget").join(anchor)).unwrap();
    let counted = fs::metadata(share.dir.join(format!("budget/{place}.u0"))).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::ino(&anchor), std::os::unix::fs::MetadataExt::ino(&counted));
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(3));
    // The same address again: a second download, counted the same way.
    assert!(share.claim_download(&entry, "10.0.0.1", 0).unwrap().unwrap().credit(0, 8).unwrap());
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(2));
    // Two left, not more than --reserve-below: the place is taken before the 150.
    let reserved = share.claim_download(&entry, "10.0.0.2", 0).unwrap().unwrap();
    assert_eq!(reserved.number, Some(0));
    assert!(reserved.credit(0, 8).unwrap());
    let last = share.claim_download(&entry, "10.0.0.3", 0).unwrap().unwrap();
    assert!(last.number.is_some());
    assert!(matches!(share.claim_download(&entry, "10.0.0.4", 0), Err(StoreError::NotFound)));
    assert!(last.credit(0, 8).unwrap());
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(0));
    assert!(share.manifest().unwrap().lookup(&rel("f")).is_none(), "spent");
}

#[test]
fn a_download_counted_at_its_end_gets_no_last_byte_when_the_places_went_meanwhile() {
    let limits = Limits { reserve_below: 0, ..Limits::default() };
    let (store, _root) = temp_store(limits);
    let (share, entry) = budgeted_file(&store, 2);
    // Three clients start while two places are left; the third to reach its end is refused.
    let [one, two, three] = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        .map(|client| share.claim_download(&entry, client, 0).unwrap().unwrap());
    assert!([&one, &two, &three].iter().all(|claim| claim.number.is_none()));
    assert!(two.credit(0, 8).unwrap());
    // A claim taken meanwhile holds the other place.
    let reserved = share.claim_or_reserve(&entry, "10.0.0.4", 0, unix_now(), Reserve::Now).unwrap().unwrap();
    assert!(matches!(one.credit(0, 8), Err(StoreError::NotFound)), "no place left at its end");
    assert!(reserved.credit(0, 8).unwrap());
    assert!(matches!(three.credit(0, 8), Err(StoreError::NotFound)));
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(0));
    let names = Names::of(&share, &entry.place);
    assert_eq!((count(|i| names.unreserved(i)).unwrap(), count(|j| names.finished(j)).unwrap()), (1, 1));
}

#[test]
fn a_download_counted_at_its_end_that_was_cut_keeps_a_place_for_its_resume() {
    let limits = Limits { reserve_below: 0, ..Limits::default() };
    let (store, _root) = temp_store(limits);
    let (share, entry) = budgeted_file(&store, 1);
    let cut = share.claim_download(&entry, "10.0.0.1", 0).unwrap().unwrap();
    assert!(!cut.credit(0, 5).unwrap());
    drop(cut);
    // The bytes sent are a claim now: it holds the one place, and the resume joins it.
    assert!(matches!(share.claim_download(&entry, "10.0.0.2", 0), Err(StoreError::NotFound)));
    let resume = share.claim_download(&entry, "10.0.0.1", 5).unwrap().unwrap();
    assert_eq!(resume.number, Some(0));
    assert!(resume.credit(5, 8).unwrap(), "the claim covers the file");
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(0));
    // A download cut when no place is left keeps none: its resume is refused.
    let (mut other, _) = store.create_share(unix_now() + 60, Some(1)).unwrap();
    let entry = upload_announced(&other, "g", b"budgeted").unwrap();
    other.seal().unwrap();
    let early = other.claim_download(&entry, "10.0.0.1", 0).unwrap().unwrap();
    assert!(other.claim_download(&entry, "10.0.0.2", 0).unwrap().unwrap().credit(0, 8).unwrap());
    assert!(!early.credit(0, 5).unwrap());
    assert!(matches!(other.claim_download(&entry, "10.0.0.1", 5), Err(StoreError::NotFound)));
}

#[test]
fn counters_far_below_a_bound_are_told_so_by_one_lookup_each() {
    let root = temp_root();
    fs::create_dir_all(&root.0).unwrap();
    let a = |n: u64| root.0.join(format!("a{n}"));
    let b = |n: u64| root.0.join(format!("b{n}"));
    for _ in 0..3 {
        append(a, "x").unwrap();
    }
    append(b, "x").unwrap();
    for bound in 0..12 {
        assert_eq!(fewer_than(bound, &[&a, &b]).unwrap(), 4 < bound, "bound {bound}");
    }
    assert!(!fewer_than(3, &[&a]).unwrap());
    assert!(fewer_than(4, &[&a]).unwrap() && fewer_than(2, &[&b]).unwrap());
}

#[test]
fn downloads_counted_at_their_end_by_two_servers_number_without_gaps_and_stay_in_the_budget() {
    let limits = || Limits { reserve_below: 0, ..Limits::default() };
    let (one, root) = temp_store(limits());
    let two = Store::open(&root.0, limits()).unwrap();
    let (mut share, _) = one.create_share(unix_now() + 60, Some(5)).unwrap();
    let entry = upload_announced(&share, "f", b"budgeted").unwrap();
    share.seal().unwrap();
    let other = two.share(&share.code, unix_now()).unwrap();
    let download =
        |share: &Share, client: &str| share.claim_download(&entry, client, 0).unwrap().unwrap().credit(0, 8);
    // The first server keeps the count it saw; the second adds to it meanwhile.
    let names = Names::of(&share, &entry.place);
    assert!(download(&share, "10.0.0.1").unwrap());
    assert!(download(&share, "10.0.0.2").unwrap());
    assert_eq!(count(|i| names.unreserved(i)).unwrap(), 2, "u0 and u1");
    assert!(download(&other, "10.0.0.3").unwrap());
    assert!(download(&share, "10.0.0.4").unwrap());
    assert_eq!(count(|i| names.unreserved(i)).unwrap(), 4, "u0 to u3");
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(1));
    // A claim through the second server takes the last place: the first refuses at the end.
    let late = share.claim_download(&entry, "10.0.0.5", 0).unwrap().unwrap();
    let reserved = other.claim_or_reserve(&entry, "10.0.0.6", 0, unix_now(), Reserve::Now).unwrap().unwrap();
    assert!(matches!(late.credit(0, 8), Err(StoreError::NotFound)));
    assert!(reserved.credit(0, 8).unwrap());
    assert_eq!(count(|i| names.unreserved(i)).unwrap(), 4);
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(0));
}

#[test]
fn downloads_count_where_the_anchor_takes_no_more_links() {
    let limits = Limits { reserve_below: 0, ..Limits::default() };
    let (store, _root) = temp_store(limits);
    let (share, entry) = budgeted_file(&store, 2);
    // Past 65,000 links (ext4) no link can be made to the anchor, as here where it is a folder:
    // the share's other files' downloads linked it that often.
    for stripe in 0..16 {
        fs::create_dir_all(share.dir.join(format!("budget/anchor.{stripe}"))).unwrap();
    }
    let first = share.claim_download(&entry, "10.0.0.1", 0).unwrap().unwrap();
    assert_eq!(first.number, None);
    assert!(first.credit(0, 8).unwrap(), "counted at its end");
    // A claim cut short gives its place up once its hold is over; the place's new claim counts
    // and spends the file.
    let now = unix_now();
    let cut = share.claim_or_reserve(&entry, "10.0.0.2", 0, now, Reserve::Now).unwrap().unwrap();
    assert!(!cut.count(0, 4, now).unwrap());
    drop(cut);
    let later = now + DEFAULT_CLAIM_HOLD.as_secs() as i64;
    let last = share.claim_download_at(&entry, "10.0.0.3", 0, later).unwrap().unwrap();
    assert_eq!(last.number, Some(1), "the cut claim gave its place up");
    assert!(last.count(0, 8, later).unwrap());
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(0));
    assert!(share.manifest().unwrap().lookup(&rel("f")).is_none(), "spent");
}

#[test]
fn a_server_whose_count_is_behind_asks_for_a_place_again_at_each_name_it_finds_taken() {
    let limits = || Limits { reserve_below: 0, ..Limits::default() };
    let (one, root) = temp_store(limits());
    let two = Store::open(&root.0, limits()).unwrap();
    let (mut share, _) = one.create_share(unix_now() + 60, Some(2)).unwrap();
    let entry = upload_announced(&share, "f", b"budgeted").unwrap();
    share.seal().unwrap();
    let other = two.share(&share.code, unix_now()).unwrap();
    let start = |share: &Share, client: &str| share.claim_download(&entry, client, 0).unwrap().unwrap();
    // The first server saw one download counted; a second started there meanwhile.
    assert!(start(&share, "10.0.0.1").credit(0, 8).unwrap());
    let behind = start(&share, "10.0.0.2");
    // The second server counts the last download: u1, which the first server tries first.
    assert!(start(&other, "10.0.0.3").credit(0, 8).unwrap());
    assert!(matches!(behind.credit(0, 8), Err(StoreError::NotFound)), "no place past u1");
    let names = Names::of(&share, &entry.place);
    assert_eq!(count(|i| names.unreserved(i)).unwrap(), 2);
}

#[test]
fn a_resume_whose_first_bytes_no_record_holds_counts_when_it_reaches_the_end() {
    let (store, _root) = temp_store(Limits::default());
    let budgeted = |downloads| budgeted_file(&store, downloads);
    let one = "10.0.0.1";
    // A crash while a claim's first RETR sent: nothing recorded, and nobody holds it now.
    let (share, entry) = budgeted(1);
    drop(share.claim_download(&entry, one, 0).unwrap().unwrap());
    let resume = share.claim_download(&entry, one, 4).unwrap().unwrap();
    assert!(resume.credit(4, 8).unwrap(), "the resume sent the rest of what the crash cut");
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(0));
    // A client back after its claim gave its place up.
    let (share, entry) = budgeted(1);
    let now = unix_now();
    let cut = share.claim_download_at(&entry, one, 0, now).unwrap().unwrap();
    assert!(!cut.count(0, 4, now).unwrap());
    drop(cut);
    let later = now + DEFAULT_CLAIM_HOLD.as_secs() as i64;
    let back = share.claim_download_at(&entry, one, 4, later).unwrap().unwrap();
    assert!(back.count(4, 8, later).unwrap(), "the bytes before came under the place it gave up");
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(0));
    // A download that took no place, cut by a crash before it counted.
    let (share, entry) = budgeted(DEFAULT_RESERVE_BELOW + 5);
    drop(share.claim_download(&entry, one, 0).unwrap().unwrap());
    let resume = share.claim_download(&entry, one, 4).unwrap().unwrap();
    assert!(resume.credit(4, 8).unwrap());
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(DEFAULT_RESERVE_BELOW + 4));
    // With few places left, a segment past byte 0 that comes first waits for the bytes before
    // it (lftp `pget`), and the RETR from byte 0 that follows joins it.
    let (share, entry) = budgeted(2);
    let segment = share.claim_download(&entry, one, 4).unwrap().unwrap();
    assert!(!segment.credit(4, 8).unwrap());
    drop(segment);
    assert!(share.claim_download(&entry, one, 0).unwrap().unwrap().credit(0, 4).unwrap());
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(1));
}

#[test]
fn a_files_lock_is_one_threads_at_a_time_and_one_servers_while_held() {
    let (store, _root) = temp_store(Limits::default());
    let (share, entry) = budgeted_file(&store, 2);
    let names = Names::of(&share, &entry.place);
    let held = names.lock().unwrap();
    let path = names.dir.join(format!("lock.{}", names.stripe()));
    assert!(locked(&path).unwrap(), "another open of the file, as another server's, sees it locked");
    let (got, waiting) = std::sync::mpsc::channel();
    let other = share.clone();
    let place = entry.place.clone();
    let thread = std::thread::spawn(move || {
        let names = Names::of(&other, &place);
        let _held = names.lock().unwrap();
        got.send(()).unwrap();
    });
    let wait = std::time::Duration::from_millis(200);
    assert!(waiting.recv_timeout(wait).is_err(), "another thread waits while it is held");
    drop(held);
    waiting
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the other thread takes it once released");
    thread.join().unwrap();
    assert!(!locked(&path).unwrap(), "released, kept open");
}

#[test]
fn threads_of_one_server_counting_and_claiming_at_once_stay_in_the_budget() {
    let limits = Limits { reserve_below: 0, ..Limits::default() };
    let (store, _root) = temp_store(limits);
    let (share, entry) = budgeted_file(&store, 5);
    let counted: u64 = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (share, entry) = (&share, &entry);
                scope.spawn(move || {
                    let mut counted = 0;
                    for i in 0..4 {
                        let client = format!("10.0.{t}.{i}");
                        let reserve = if (t + i) % 2 == 0 { Reserve::Now } else { Reserve::WhenFewLeft };
                        let claim = match share.claim_or_reserve(entry, &client, 0, unix_now(), reserve) {
                            Ok(claim) => claim.unwrap(),
                            Err(StoreError::NotFound) => continue,
                            Err(err) => panic!("{err}"),
                        };
                        match claim.credit(0, 8) {
                            Ok(true) => counted += 1,
                            Ok(false) | Err(StoreError::NotFound) => {}
                            Err(err) => panic!("{err}"),
                        }
                    }
                    counted
                })
            })
            .collect();
        threads.into_iter().map(|thread| thread.join().unwrap()).sum()
    });
    assert_eq!(counted, 5, "every place used, none twice");
    assert_eq!(share.downloads_left(&entry).unwrap(), Some(0));
}

#[test]
fn a_file_a_crash_kept_from_being_marked_spent_is_marked_by_its_next_download() {
    let (store, _root) = temp_store(Limits::default());
    let (share, entry) = budgeted_file(&store, 1);
    // Its one download counted, and the server died before the mark: no file of the share is
    // marked, so readers are not told it is spent.
    let names = Names::of(&share, &entry.place);
    names.link_to_anchor(&names.unreserved(0)).unwrap();
    assert!(share.manifest().unwrap().lookup(&rel("f")).is_some());
    assert!(matches!(share.claim_download(&entry, "10.0.0.1", 0), Err(StoreError::NotFound)));
    assert!(share.manifest().unwrap().lookup(&rel("f")).is_none(), "marked by the refused download");
    assert!(bytes_gone(&share, &entry), "its bytes are gone");
    assert_eq!(share.manifest().unwrap().totals().unwrap(), (0, 0), "counted spent");
}

#[test]
fn a_download_counted_at_its_end_gets_no_last_bytes_once_its_spent_share_was_swept() {
    let limits = || Limits { reserve_below: 0, ..Limits::default() };
    let (one, root) = temp_store(limits());
    let two = Store::open(&root.0, limits()).unwrap();
    // The budget used up through another server, by a download counted at its end, and by one
    // that took its place first on this one.
    for reserve in [Reserve::WhenFewLeft, Reserve::Now] {
        let (share, entry) = budgeted_file(&one, 1);
        let slow = share.claim_download(&entry, "10.0.0.1", 0).unwrap().unwrap();
        assert_eq!(slow.number, None, "counted at its end");
        let spender = match reserve {
            Reserve::WhenFewLeft => two.share(&share.code, unix_now()).unwrap(),
            Reserve::Now => share.clone(),
        };
        let fast = spender.claim_or_reserve(&entry, "10.0.0.2", 0, unix_now(), reserve).unwrap().unwrap();
        assert!(fast.credit(0, entry.size).unwrap());
        drop(fast);
        assert_eq!(one.sweep(unix_now()).codes(), vec![share.code.to_string()]);
        let counted = slow.credit(0, entry.size);
        assert!(matches!(counted, Err(StoreError::NotFound)), "no last bytes past the budget: {counted:?}");
    }
}

#[test]
fn a_file_with_no_claim_asks_two_names_before_its_150_and_one_with_claims_asks_the_address() {
    let limits = Limits { reserve_below: 2, ..Limits::default() };
    let (store, _root) = temp_store(limits);
    let (share, entry) = budgeted_file(&store, 5);
    let names = Names::of(&share, &entry.place);
    // No claim ever: counted at its end.
    assert!(share.counts_at_end(&names, "10.0.0.1", 5).unwrap());
    assert!(!share.counts_at_end(&names, "10.0.0.1", 2).unwrap(), "at --reserve-below: a place first");
    // A claim of one address: that address joins it, another is counted at its end.
    let now = unix_now();
    let claim = share.claim_or_reserve(&entry, "10.0.0.1", 0, now, Reserve::Now).unwrap().unwrap();
    assert!(!claim.count(0, 4, now).unwrap());
    assert!(!share.counts_at_end(&names, "10.0.0.1", 5).unwrap(), "its address has a claim");
    assert!(share.counts_at_end(&names, "10.0.0.2", 5).unwrap());
    // Downloads counted at their end up to the bound: no more.
    for i in 0..2 {
        names.link_to_anchor(&names.unreserved(i)).unwrap();
    }
    assert!(!share.counts_at_end(&names, "10.0.0.2", 5).unwrap(), "one claim and two counted leave 2");
}

#[test]
fn a_packed_file_read_before_its_claim_is_sent_whole_though_its_last_count_punched_it_out() {
    let (store, _root) = temp_store(Limits::default());
    let (mut share, _) = store.create_share(unix_now() + 60, Some(2)).unwrap();
    let bytes = b"packed and budgeted";
    let size = bytes.len() as u64;
    let entry = upload_announced(&share, "p", bytes).unwrap();
    let blob = upload(&share, "b", bytes).unwrap();
    assert!(matches!(entry.place, Place::Packed { .. }), "{:?}", entry.place);
    share.seal().unwrap();
    let (file, start) = share.open_file(&entry).unwrap();
    let (blob_file, blob_start) = share.open_file(&blob).unwrap();
    assert!(
        share.read_if_punchable(&blob, &blob_file, blob_start, 0).unwrap().is_none(),
        "a blob is sent itself"
    );
    assert_eq!(share.read_if_punchable(&entry, &file, start, 5).unwrap().unwrap(), &bytes[5..]);
    // The last of two downloads reads the bytes, claims, and is counted after the other.
    let held = share.read_if_punchable(&entry, &file, start, 0).unwrap().unwrap();
    let last = share.claim_download(&entry, "10.0.0.1", 0).unwrap().unwrap();
    let other = share.claim_download(&entry, "10.0.0.2", 0).unwrap().unwrap();
    assert!(other.credit(0, size).unwrap());
    assert!(last.credit(0, size).unwrap(), "the last place");
    let mut stored = vec![1; bytes.len()];
    crate::common::platform::read_at(&file, &mut stored, start).unwrap();
    assert!(stored.iter().all(|&b| b == 0), "its bytes are punched out of the pack: {stored:?}");
    assert_eq!(held, bytes, "the copy read before the claim is the file's");
    // A download after it finds the hole before its claim: the copy is checked.
    assert!(matches!(share.read_if_punchable(&entry, &file, start, 0), Err(StoreError::NotFound)));
    assert!(matches!(share.claim_download(&entry, "10.0.0.3", 0), Err(StoreError::NotFound)));
    // Without a budget nothing is read ahead.
    let (mut free, _) = store.create_share(unix_now() + 60, None).unwrap();
    let unbudgeted = upload_announced(&free, "p", bytes).unwrap();
    free.seal().unwrap();
    let (file, start) = free.open_file(&unbudgeted).unwrap();
    assert!(free.read_if_punchable(&unbudgeted, &file, start, 0).unwrap().is_none());
}

#[test]
fn an_empty_file_shares_no_budget_with_the_file_after_it() {
    let (store, _root) = temp_store(Limits::default());
    let (mut share, _) = store.create_share(unix_now() + 60, Some(1)).unwrap();
    let empty = upload_announced(&share, "e", b"").unwrap();
    let next = upload_announced(&share, "n", b"not downloaded yet").unwrap();
    share.seal().unwrap();
    assert_ne!(empty.place, next.place);
    let download = share.claim_download(&empty, "10.0.0.1", 0).unwrap().unwrap();
    assert!(download.credit(0, 0).unwrap(), "the empty file counted");
    assert!(share.manifest().unwrap().lookup(&rel("n")).is_some(), "n was never downloaded");
    // Nor does a resume of n join the empty file's counted claim: it takes n's place.
    let size = next.size;
    let resume = share.claim_download(&next, "10.0.0.1", 1).unwrap().unwrap();
    assert!(!resume.credit(1, size).unwrap(), "n's bytes from 1 on wait for its first");
    assert!(matches!(share.claim_download(&next, "10.0.0.2", 0), Err(StoreError::NotFound)), "its place");
    let head = share.claim_download(&next, "10.0.0.1", 0).unwrap().unwrap();
    assert!(head.credit(0, 1).unwrap(), "n counted once it was sent whole");
}

#[test]
fn a_packed_file_punched_out_by_a_claim_a_crash_counted_twice_is_sent_to_nobody() {
    let limits = Limits { reserve_below: 0, ..Limits::default() };
    let (store, _root) = temp_store(limits);
    let (mut share, _) = store.create_share(unix_now() + 60, Some(2)).unwrap();
    let bytes = b"packed and budgeted";
    let size = bytes.len() as u64;
    let entry = upload_announced(&share, "p", bytes).unwrap();
    share.seal().unwrap();
    let names = Names::of(&share, &entry.place);
    // Client 1 takes a place and is counted; a kill -9 between its finished number and its
    // `done` leaves the number without the mark (as `finish` says it may).
    let claim = share.claim_or_reserve(&entry, "10.0.0.1", 0, unix_now(), Reserve::Now).unwrap().unwrap();
    assert!(claim.credit(0, size).unwrap());
    drop(claim);
    fs::remove_file(names.done(0)).unwrap();
    // Client 2 opened the pack meanwhile.
    let (file, start) = share.open_file(&entry).unwrap();
    // Client 1's resume of its last byte counts it again: the budget's names are used up and
    // the bytes punched out, though client 2 could still count at its end.
    let resume = share.claim_download(&entry, "10.0.0.1", size - 1).unwrap().unwrap();
    assert!(resume.credit(size - 1, size).unwrap());
    assert!(bytes_gone(&share, &entry), "punched");
    // Client 2's copy is checked against the file's SHA-256 before any claim: a hole is no file.
    assert!(matches!(share.read_if_punchable(&entry, &file, start, 0), Err(StoreError::NotFound)));
    // Bytes changed otherwise are an error of the store, not a missing file.
    let pack = share.dir.join(Place::pack_file(match &entry.place {
        Place::Packed { instance, .. } => instance.as_deref(),
        Place::Blob(_) => unreachable!(),
    }));
    crate::common::platform::write_at(&fs::OpenOptions::new().write(true).open(pack).unwrap(), b"x", start)
        .unwrap();
    assert!(matches!(share.read_if_punchable(&entry, &file, start, 0), Err(StoreError::Io(_))));
}
