//! The download budget of a share, kept in names only: `budget/` holds, per budgeted file, the
//! claims of the clients downloading it, the byte ranges each was sent, and the finished
//! downloads. Every entry is created exclusively and never changed: symbolic links whose target
//! is their payload, and the empty `head` and `tail` files that connections lock. Counters
//! (claims, finished and released ones, one address's claims, one claim's segments) are names
//! numbered from 0 with no gaps, counted by looking names up. So no decision rests on a read of
//! a file that another server may have changed, and several servers on one root (also on a
//! distributed filesystem whose reads may be a second stale) keep a budget exact. Every name is
//! created, and every decision made, under the share's lock (the disk's free space is asked
//! before it). It never reads a stored file's contents.
//!
//! A download that one `RETR` from byte 0 sends whole makes five names: `head`, the claim, the
//! address's claim number, the finished number and `done`. What it no longer makes, and why
//! each was not needed:
//! - The claim was a 4 KiB file `fdatasync`ed under a temporary name, hard-linked into place
//!   and unlinked, so that its contents were whole before its name existed, and a full disk
//!   refused the download before its `150`. A link's payload is whole once its name exists, on
//!   every server, with nothing to flush; a fresh `statvfs` refuses the same full disk (less
//!   than 4 KiB free) before the `150`. The 4 KiB reserved no room for later names, and the
//!   sync bought nothing against a power loss: no name here, nor `budget/`, is synced, so a
//!   power loss may lose the claim's name and any count however its bytes were written.
//! - A connection used to hold a shared lock on the claim file and, from byte 0, on `head`: a
//!   link cannot be locked. Now a connection from byte 0 locks `head` and one past byte 0 locks
//!   `tail` (made by the first of them, under the share's lock): "held" is either locked, "being
//!   sent from byte 0" is `head` locked, as before. A claim file of servers before still counts
//!   as held while locked.
//! - A `RETR` recorded its range as a segment before asking whether the claim covered the file.
//!   A range that completes the claim counts it without a record: a counted claim's ranges are
//!   never read again (only claims that keep a place are put together), and the one thing read
//!   of a counted claim, when it was last active (a late segment may join it for the claim
//!   hold), is in `done`'s payload, `finished@time`. A crash between the send and the count
//!   leaves the claim as it was before that `RETR`, with or without the record (which was made
//!   after the send too): holding its place until the hold ends.
//! - `budget/` was made (or found) by every claim; the share's first claim makes it now, when
//!   its `head` cannot be created for want of the folder.

mod names;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::time::Duration;

pub(super) use names::{Names, append, count, create_link, read_number};
use names::{covers, exists};

use super::manifest::{FileEntry, Place, whole_lines};
use super::{Result, Share, StoreError, unix_now};

/// Free bytes (for unprivileged users) a new claim asks the disk for before its `150`: a full
/// disk refuses the download then, and everything later only creates names.
const CLAIM_BYTES: u64 = 4096;
/// Most `RETR`s one claim records; the one past it counts the claim as a whole download
/// (`--max-claim-segments`).
pub const DEFAULT_MAX_CLAIM_SEGMENTS: u64 = 256;
/// How long a claim keeps its place in the budget after its last `RETR` ended, so that its
/// client can come back for the bytes it lacks (a `pget` segment reconnecting, a resume).
/// After that a new client may take the place, and the claim spent nothing (`--claim-hold`).
pub const DEFAULT_CLAIM_HOLD: Duration = Duration::from_secs(300);

impl Share {
    /// Claims a download of `entry` for `client` (its address, one word), starting at byte
    /// `offset`; `Ok(None)` when the share has no budget. One address is one client: a `RETR`
    /// joins the address's newest claim that has not counted and has not given its place up,
    /// unless it starts at byte 0 while another connection is being sent that claim from byte
    /// 0 (a second client behind the same address); one past byte 0 also joins a claim that
    /// counted less than the claim hold ago. A new claim needs a place: finished
    /// downloads and claims that keep a place never exceed the budget; past it the file is
    /// `NotFound`. Every name a claim needs is made here, before a byte is sent.
    pub fn claim_download(
        &self,
        entry: &FileEntry,
        client: &str,
        offset: u64,
    ) -> Result<Option<DownloadClaim>> {
        self.claim_download_at(entry, client, offset, unix_now())
    }

    fn claim_download_at(
        &self,
        entry: &FileEntry,
        client: &str,
        offset: u64,
        now: i64,
    ) -> Result<Option<DownloadClaim>> {
        let Some(budget) = self.meta.downloads else {
            return Ok(None);
        };
        let names = Names::of(self, &entry.place);
        let legacy = self.legacy_downloads()?.of(&entry.place);
        // A RETR from byte 0 most likely makes a new claim: the disk is asked before the lock.
        if offset == 0 {
            self.claim_room()?;
        }
        let _lock = self.lock()?;
        if legacy + count(|j| names.finished(j))? >= budget {
            return Err(StoreError::NotFound);
        }
        let own = count(|g| names.of_client(client, g))?;
        if own > 0 {
            let number = read_number(&names.of_client(client, own - 1))?;
            // A segment of a download that just counted (lftp opens them as it likes) joins
            // it and spends nothing more; a RETR from byte 0 is a new download.
            let late = offset > 0 && exists(&names.done(number)) && {
                let counted = names.counted_at(number)?.unwrap_or(0);
                now < names.last_activity(number)?.max(counted) + self.store.limits.claim_hold_secs()
            };
            if (late || names.is_live(number)) && (offset > 0 || !names.sent_from_start(number)?) {
                return Ok(Some(DownloadClaim::held(self, entry, budget, client, number, &names, offset)?));
            }
        }
        if legacy + self.places_taken(&names, budget.saturating_sub(legacy), now)? >= budget {
            return Err(StoreError::NotFound);
        }
        if offset > 0 {
            self.claim_room()?;
        }
        let number = names.make_claim(client, now)?;
        append(|g| names.of_client(client, g), &number.to_string())?;
        Ok(Some(DownloadClaim::held(self, entry, budget, client, number, &names, offset)?))
    }

    /// Refuses a new claim when the disk has less than [`CLAIM_BYTES`] free, asked now.
    fn claim_room(&self) -> Result<()> {
        match (self.store.limits.free_space)(&self.dir) {
            Some(free) if free < CLAIM_BYTES => Err(StoreError::DiskFull { floor: CLAIM_BYTES }),
            _ => Ok(()),
        }
    }

    /// Claims that keep a place: made and not given up. Claims whose client left more than
    /// the claim hold ago without having counted give their places up first.
    fn places_taken(&self, names: &Names, room: u64, now: i64) -> Result<u64> {
        let made = count(|k| names.claim(k))?;
        let released = count(|m| names.released(m))?;
        let taken = made.saturating_sub(released);
        if taken < room {
            return Ok(taken);
        }
        let mut freed = 0;
        for number in 0..made {
            if !names.is_live(number) || names.is_held(number)? {
                continue;
            }
            if now >= names.last_activity(number)? + self.store.limits.claim_hold_secs()
                && names.release(number)?
            {
                freed += 1;
            }
        }
        Ok(taken.saturating_sub(freed))
    }

    /// How many more complete downloads `entry` allows; `None` when the share has no budget.
    pub fn downloads_left(&self, entry: &FileEntry) -> Result<Option<u64>> {
        let Some(budget) = self.meta.downloads else {
            return Ok(None);
        };
        let names = Names::of(self, &entry.place);
        let finished = self.legacy_downloads()?.of(&entry.place) + count(|j| names.finished(j))?;
        Ok(Some(budget.saturating_sub(finished)))
    }

    /// Finished downloads of budgeted files: the lines of the `downloads` file and the `.done`
    /// claims under `reading/` of older servers, and the numbered finished downloads.
    pub(super) fn finished_downloads(&self) -> Result<Finished> {
        Ok(Finished { share: self.clone(), legacy: self.legacy_downloads()? })
    }

    /// What servers before `budget/` left: one line per finished download in `downloads`, and
    /// one `reading/<place>.<id>.done` per counted claim.
    fn legacy_downloads(&self) -> Result<Legacy> {
        let bytes = match fs::read(self.dir.join("downloads")) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(err.into()),
        };
        let mut finished = BTreeMap::new();
        for blob in whole_lines(&bytes) {
            *finished.entry(blob.to_owned()).or_insert(0) += 1;
        }
        match fs::read_dir(self.dir.join("reading")) {
            Ok(names) => {
                for name in names {
                    let name = name?.file_name().to_string_lossy().into_owned();
                    let place = name.strip_suffix(".done").and_then(|claim| claim.rsplit_once('.'));
                    if let Some((place, _)) = place {
                        *finished.entry(place.to_owned()).or_insert(0) += 1;
                    }
                }
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err.into()),
        }
        Ok(Legacy(finished))
    }
}

/// One client's download of a budgeted file, held by each connection of that client while it
/// sends bytes of it: a shared lock on the claim's `head` file while sending from byte 0, on its
/// `tail` file (made by the first such connection) while sending from further on. A crash
/// releases it.
#[derive(Debug)]
pub struct DownloadClaim {
    share: Share,
    entry: FileEntry,
    budget: u64,
    client: String,
    number: u64,
    _lock: File,
}

impl DownloadClaim {
    fn held(
        share: &Share,
        entry: &FileEntry,
        budget: u64,
        client: &str,
        number: u64,
        names: &Names,
        offset: u64,
    ) -> Result<DownloadClaim> {
        let lock = match offset {
            0 => File::open(names.head(number))?,
            _ => OpenOptions::new().create(true).truncate(false).write(true).open(names.tail(number))?,
        };
        lock.lock_shared()?;
        Ok(DownloadClaim {
            share: share.clone(),
            entry: entry.clone(),
            budget,
            client: client.to_owned(),
            number,
            _lock: lock,
        })
    }

    /// Credits the bytes `start..end` as sent to this client. The download counts (once) when
    /// the claim's ranges cover the file, or when the ranges of all the address's claims that
    /// keep a place do (its other claims then give their places up); the last download a
    /// budget allows deletes the file's contents. Returns whether this credit counted it. A
    /// share deleted or swept meanwhile has nothing left to count.
    pub fn credit(&self, start: u64, end: u64) -> Result<bool> {
        match self.count(start, end, unix_now()) {
            Err(StoreError::Io(err)) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            other => other,
        }
    }

    fn count(&self, start: u64, end: u64, now: i64) -> Result<bool> {
        let _lock = self.share.lock()?;
        let names = Names::of(&self.share, &self.entry.place);
        if !names.is_live(self.number) {
            return Ok(false);
        }
        // An empty file has no bytes to cover: the RETR that ran counts it.
        let size = self.entry.size;
        if start >= end && size > 0 {
            return Ok(false);
        }
        let segments = count(|i| names.segment(self.number, i))?;
        if segments >= self.share.store.limits.max_claim_segments {
            return self.finish(&names, self.number, now);
        }
        // A range that completes the claim needs no record: a counted claim's ranges are never
        // read again, and `done` says when it counted.
        let mut ranges = names.ranges(self.number, segments)?;
        ranges.push((start, end));
        if covers(&ranges, size) {
            return self.finish(&names, self.number, now);
        }
        if start < end {
            append(|i| names.segment(self.number, i), &format!("{start}-{end}@{now}"))?;
        }
        let mut together = Vec::new();
        let mut others = Vec::new();
        for g in 0..count(|g| names.of_client(&self.client, g))? {
            let number = read_number(&names.of_client(&self.client, g))?;
            if names.is_live(number) {
                together.extend(names.ranges(number, count(|i| names.segment(number, i))?)?);
                if number != self.number {
                    others.push(number);
                }
            }
        }
        if others.is_empty() || !covers(&together, size) {
            return Ok(false);
        }
        for number in others {
            names.release(number)?;
        }
        self.finish(&names, self.number, now)
    }

    /// Counts claim `number` as one finished download at `now`: numbered first, then marked, so
    /// a crash between the two may count it twice but never lets it pass uncounted.
    fn finish(&self, names: &Names, number: u64, now: i64) -> Result<bool> {
        let finished = append(|j| names.finished(j), &number.to_string())?;
        create_link(&names.done(number), &format!("{finished}@{now}"))?;
        let legacy = self.share.legacy_downloads()?.of(&self.entry.place);
        if legacy + finished + 1 >= self.budget {
            self.share.mark_spent(&self.entry)?;
            self.share.delete_contents(&self.entry)?;
        }
        Ok(true)
    }
}

/// Finished downloads by older servers, by blob.
struct Legacy(BTreeMap<String, u64>);

impl Legacy {
    fn of(&self, place: &Place) -> u64 {
        self.0.get(&place.to_string()).copied().unwrap_or(0)
    }
}

/// Finished downloads of a share's budgeted files.
pub(super) struct Finished {
    share: Share,
    legacy: Legacy,
}

impl Finished {
    /// How many times the file stored at `place` was downloaded completely; a name that cannot
    /// be looked up counts nothing, so an error never hides or sweeps a file.
    pub(super) fn of(&self, place: &Place) -> u64 {
        let names = Names::of(&self.share, place);
        self.legacy.of(place) + count(|j| names.finished(j)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::test_support::{rel, temp_root, temp_store, upload, upload_announced};
    use crate::server::store::{Limits, unix_now};

    #[test]
    fn a_download_counts_once_one_client_was_sent_every_byte() {
        let (store, _root) = temp_store(Limits::default());
        let (mut share, _) = store.create_share(unix_now() + 60, Some(2)).unwrap();
        let entry = upload(&share, "f", b"budgeted").unwrap();
        // Announced small files get blobs too: a spent file's bytes go while sendfile may still
        // be sending them, and only a blob's pages outlive its name.
        let small = upload_announced(&share, "g", b"small").unwrap();
        let empty = upload_announced(&share, "h", b"").unwrap();
        assert!(matches!((&small.place, &empty.place), (Place::Blob(_), Place::Blob(_))));
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
        let (mut share, _) = store.create_share(unix_now() + 60, Some(1)).unwrap();
        let entry = upload_announced(&share, "f", b"budgeted").unwrap();
        share.seal().unwrap();
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
        let (mut share, _) = store.create_share(unix_now() + 60, Some(2)).unwrap();
        let entry = upload_announced(&share, "f", b"budgeted").unwrap();
        share.seal().unwrap();
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
        let (mut share, _) = store.create_share(unix_now() + 60, Some(1)).unwrap();
        let entry = upload_announced(&share, "f", b"budgeted").unwrap();
        share.seal().unwrap();
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
        let (mut share, _) = store.create_share(unix_now() + 60, Some(2)).unwrap();
        let entry = upload_announced(&share, "f", b"budgeted").unwrap();
        share.seal().unwrap();
        let now = unix_now();
        let hold = DEFAULT_CLAIM_HOLD.as_secs() as i64;
        let whole = share.claim_download_at(&entry, "10.0.0.1", 0, now).unwrap().unwrap();
        // Sent for longer than the hold, in one RETR.
        let counted = now + 2 * hold;
        assert!(whole.count(0, 8, counted).unwrap());
        let names = Names::of(&share, &entry.place);
        assert_eq!(count(|i| names.segment(whole.number, i)).unwrap(), 0, "no segment recorded");
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
        let (mut share, _) = store.create_share(unix_now() + 60, Some(1)).unwrap();
        let entry = upload_announced(&share, "f", b"budgeted").unwrap();
        share.seal().unwrap();
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
            share
                .claim_download_at(&entry, "10.0.0.2", 0, later)
                .unwrap()
                .unwrap()
                .count(0, 8, later)
                .unwrap()
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
}
