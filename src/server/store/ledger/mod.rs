//! The download budget of a share, kept in names only: `budget/` holds, per budgeted file, the
//! claims of the clients downloading it, the byte ranges each was sent, and the finished
//! downloads. Every entry is created exclusively and never changed: symbolic links whose target
//! is their payload, and the empty `head` and `tail` files that connections lock. Counters
//! (claims, finished and released ones, one address's claims, one claim's segments) are names
//! numbered from 0 with no gaps, counted by looking names up. So no decision rests on a read of
//! a file that another server may have changed, and several servers on one root (also on a
//! distributed filesystem whose reads may be a second stale) keep a budget exact. Every name is
//! created, and every decision made, under the file's budget lock (the disk's free space is asked
//! before a claim). It never reads a stored file's contents.
//!
//! While more downloads than `--reserve-below` are left to a file, a `RETR` from byte 0 of an
//! address with no claim of the file makes no claim: before its last bytes
//! ([`COUNTED_TAIL_BYTES`]), under the file's budget lock, it is counted with one name, `u<i>`
//! (numbered without gaps), if the finished downloads and the claims that keep a place leave
//! room, and else refused those bytes. That
//! name is a hard link to one of 16 anchors, `budget/anchor.<n>`: it costs a directory entry,
//! no inode, which on ext4 is most of a name's cost (past the anchor's most links, 65,000 on ext4, a symbolic link
//! instead). Such a download cut short makes a claim then, holding its bytes' place for the
//! resume. A crash before the count leaves nothing; a resume past byte 0 with no record of the
//! bytes before it (a crash cut the first `RETR`, or its claim gave its place up, or it took
//! none) records them as its client's, so that it counts when it reaches the end.
//!
//! A download that claims its place and one `RETR` from byte 0 sends whole makes five names:
//! `head`, the claim, the address's claim number, the finished number and `done`; four
//! inodes, as the finished number, never read, is a link to the anchor. What it no longer
//! makes, and why each was not needed:
//! - The claim was a 4 KiB file `fdatasync`ed under a temporary name, hard-linked into place
//!   and unlinked, so that its contents were whole before its name existed, and a full disk
//!   refused the download before its `150`. A link's payload is whole once its name exists, on
//!   every server, with nothing to flush; a fresh `statvfs` refuses the same full disk (less
//!   than 4 KiB free) before the `150`. The 4 KiB reserved no room for later names, and the
//!   sync bought nothing against a power loss: no name here, nor `budget/`, is synced, so a
//!   power loss may lose the claim's name and any count however its bytes were written.
//! - A connection used to hold a shared lock on the claim file and, from byte 0, on `head`: a
//!   link cannot be locked. Now a connection from byte 0 locks `head` and one past byte 0 locks
//!   `tail` (made by the first of them, under the file's budget lock): "held" is either locked, "being
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
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

#[cfg(test)]
use names::locked;
pub(super) use names::{CounterHints, LockFiles, Names, append, count, create_link, exists, read_number};
pub use names::{DEFAULT_MAX_COUNTER_HINTS, DEFAULT_MAX_OPEN_BUDGET_LOCKS};
use names::{covers, fewer_than};

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
/// While more downloads than this are left to a budgeted file, a download from byte 0 takes no
/// place before its `150`: it is counted before its last bytes ([`COUNTED_TAIL_BYTES`]) are
/// sent, with one name and no inode, if a place is still left then. At or below it, each download claims
/// its place first, so a client that was answered `150` is never refused at its end when the
/// downloads in flight are fewer than this (`--reserve-below`).
pub const DEFAULT_RESERVE_BELOW: u64 = 64;
/// Most bytes at a budgeted file's end that leave only once its download counted, sent then
/// in one go: a file this small is counted before its first byte, and its client gets its
/// bytes in one piece rather than all but the last and then the last.
pub const COUNTED_TAIL_BYTES: u64 = 64 * 1024;

/// Whether a download from byte 0 takes its place before its `150`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reserve {
    /// Only when few places are left ([`DEFAULT_RESERVE_BELOW`]).
    WhenFewLeft,
    /// Always: a download counted at its end that was cut short keeps its bytes' place.
    Now,
}

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
        self.claim_or_reserve(entry, client, offset, now, Reserve::WhenFewLeft)
    }

    fn claim_or_reserve(
        &self,
        entry: &FileEntry,
        client: &str,
        offset: u64,
        now: i64,
        reserve: Reserve,
    ) -> Result<Option<DownloadClaim>> {
        let Some(budget) = self.meta.downloads else {
            return Ok(None);
        };
        let names = Names::of(self, &entry.place);
        // What older servers counted is read once: only they add to it.
        let room = budget.saturating_sub(self.legacy_downloads()?.of(&entry.place));
        // A RETR from byte 0 that takes no place makes no name before its end. One that does
        // most likely makes a new claim: the disk is asked before the lock.
        if offset == 0 {
            if reserve == Reserve::WhenFewLeft && self.counts_at_end(&names, client, room)? {
                return Ok(Some(DownloadClaim::at_end(self, entry, room, client)));
            }
            self.claim_room()?;
        }
        let _lock = names.lock()?;
        let unreserved = count(|i| names.unreserved(i))?;
        if unreserved + count(|j| names.finished(j))? >= room {
            // Spent: a crash may have kept the download that spent it from marking it, or
            // from deleting its bytes. Either is done here if it can be; the answer is the
            // same as for a file that never existed whatever happens.
            let _ = self.mark_spent(entry);
            let _ = self.delete_contents(entry);
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
                // Made from byte 0, nothing of it recorded, and nobody sending it: the RETR
                // that made it ended in a crash, after sending the bytes this one resumes from.
                if offset > 0 && !late && !names.has_ranges(number)? && !names.is_held(number)? {
                    names.record_held_before(number, offset, now)?;
                }
                return Ok(Some(DownloadClaim::held(self, entry, room, client, number, &names, offset)?));
            }
        }
        if !self.has_place(&names, room.saturating_sub(unreserved), now)? {
            return Err(StoreError::NotFound);
        }
        if offset > 0 {
            self.claim_room()?;
        }
        // A resume whose bytes before no claim holds: its client's claim gave its place up, or
        // the download went without one (many places left) and a crash kept it from counting.
        let resumed = offset > 0
            && (own > 0 && names.is_released(read_number(&names.of_client(client, own - 1))?)
                || self.counts_at_end(&names, client, room)?);
        let number = names.make_claim(client, now)?;
        append(|g| names.of_client(client, g), &number.to_string())?;
        if resumed {
            names.record_held_before(number, offset, now)?;
        }
        Ok(Some(DownloadClaim::held(self, entry, room, client, number, &names, offset)?))
    }

    /// Whether a download from byte 0 by `client` goes without a place until its end: its
    /// address has no claim of the file to join, and more than `--reserve-below` of the `room`
    /// the file's budget has are left. Asked without the lock: the count at the end decides.
    fn counts_at_end(&self, names: &Names, client: &str, room: u64) -> Result<bool> {
        let Some(bound) = room.checked_sub(self.store.limits.reserve_below) else {
            return Ok(false);
        };
        // No claim of the file was ever made (most budgeted files): none of the address's.
        if !exists(&names.claim(0)) {
            return Ok(fewer_than(bound, &[&|i| names.unreserved(i)])?);
        }
        if exists(&names.of_client(client, 0)) {
            return Ok(false);
        }
        if fewer_than(bound, &[&|k| names.claim(k), &|i| names.unreserved(i)])? {
            return Ok(true);
        }
        let claims = count(|k| names.claim(k))?.saturating_sub(count(|m| names.released(m))?);
        Ok(claims + count(|i| names.unreserved(i))? < bound)
    }

    /// Whether claims that keep a place leave one of `room` free, releasing claims whose hold
    /// is over when they do not. Claims made, released or not, are looked up first.
    fn has_place(&self, names: &Names, room: u64, now: i64) -> Result<bool> {
        Ok(fewer_than(room, &[&|k| names.claim(k)])? || self.places_taken(names, room, now)? < room)
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
        let room = budget.saturating_sub(self.legacy_downloads()?.of(&entry.place));
        Ok(Some(room.saturating_sub(names.finished_downloads()?)))
    }

    /// Finished downloads of budgeted files: the lines of the `downloads` file and the `.done`
    /// claims under `reading/` of older servers, and the numbered finished downloads.
    pub(super) fn finished_downloads(&self) -> Result<Finished> {
        Ok(Finished {
            share: self.clone(),
            legacy: self.legacy_downloads()?,
            may_have_spent: OnceLock::new(),
        })
    }

    /// What servers before `budget/` left: one line per finished download in `downloads`, and
    /// one `reading/<place>.<id>.done` per counted claim. Read once per opened share (a
    /// session keeps its share): only those servers add to it, and the servers on one root
    /// run one version.
    fn legacy_downloads(&self) -> Result<Arc<Legacy>> {
        if let Some(legacy) = self.legacy.0.get() {
            return Ok(legacy.clone());
        }
        let legacy = Arc::new(self.read_legacy_downloads()?);
        Ok(self.legacy.0.get_or_init(|| legacy).clone())
    }

    fn read_legacy_downloads(&self) -> Result<Legacy> {
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
/// releases it. A download counted at its end has no claim yet, and holds nothing.
#[derive(Debug)]
pub struct DownloadClaim {
    share: Share,
    entry: FileEntry,
    /// Downloads the file's budget allows beyond those older servers counted.
    room: u64,
    client: String,
    /// The claim's number; `None` while the download goes without a place until its end.
    number: Option<u64>,
    _lock: Option<File>,
}

impl DownloadClaim {
    fn held(
        share: &Share,
        entry: &FileEntry,
        room: u64,
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
            room,
            client: client.to_owned(),
            number: Some(number),
            _lock: Some(lock),
        })
    }

    fn at_end(share: &Share, entry: &FileEntry, room: u64, client: &str) -> DownloadClaim {
        DownloadClaim {
            share: share.clone(),
            entry: entry.clone(),
            room,
            client: client.to_owned(),
            number: None,
            _lock: None,
        }
    }

    /// Credits the bytes `start..end` as sent to this client. The download counts (once) when
    /// the claim's ranges cover the file, or when the ranges of all the address's claims that
    /// keep a place do (its other claims then give their places up); the last download a
    /// budget allows deletes the file's contents. Returns whether this credit counted it. A
    /// share deleted or swept meanwhile has nothing left to count: a download that kept a
    /// place is done, one that took none is `NotFound`, and gets no last bytes (it would be a
    /// download past the budget that swept the share).
    pub fn credit(&self, start: u64, end: u64) -> Result<bool> {
        match self.count(start, end, unix_now()) {
            Err(StoreError::Io(err)) if err.kind() == io::ErrorKind::NotFound => match self.number {
                Some(_) => Ok(false),
                None => Err(StoreError::NotFound),
            },
            other => other,
        }
    }

    fn count(&self, start: u64, end: u64, now: i64) -> Result<bool> {
        let Some(number) = self.number else {
            return self.count_at_end(start, end, now);
        };
        let names = Names::of(&self.share, &self.entry.place);
        let _lock = names.lock()?;
        if !names.is_live(number) {
            return Ok(false);
        }
        // An empty file has no bytes to cover: the RETR that ran counts it.
        let size = self.entry.size;
        if start >= end && size > 0 {
            return Ok(false);
        }
        let segments = count(|i| names.segment(number, i))?;
        if segments >= self.share.store.limits.max_claim_segments {
            return self.finish(&names, number, now);
        }
        // A range that completes the claim needs no record: a counted claim's ranges are never
        // read again, and `done` says when it counted.
        let mut ranges = names.ranges(number, segments)?;
        ranges.push((start, end));
        if covers(&ranges, size) {
            return self.finish(&names, number, now);
        }
        if start < end {
            append(|i| names.segment(number, i), &format!("{start}-{end}@{now}"))?;
        }
        let mut together = Vec::new();
        let mut others = Vec::new();
        for g in 0..count(|g| names.of_client(&self.client, g))? {
            let other = read_number(&names.of_client(&self.client, g))?;
            if names.is_live(other) {
                together.extend(names.ranges(other, count(|i| names.segment(other, i))?)?);
                if other != number {
                    others.push(other);
                }
            }
        }
        if others.is_empty() || !covers(&together, size) {
            return Ok(false);
        }
        for other in others {
            names.release(other)?;
        }
        self.finish(&names, number, now)
    }

    /// Counts claim `number` as one finished download at `now`: numbered first, then marked, so
    /// a crash between the two may count it twice but never lets it pass uncounted.
    fn finish(&self, names: &Names, number: u64, now: i64) -> Result<bool> {
        let finished = names.append_to_anchor(|j| names.finished(j))?;
        create_link(&names.done(number), &format!("{finished}@{now}"))?;
        self.spend_if_last(finished + 1, &|i| names.unreserved(i))?;
        Ok(true)
    }

    /// Counts a download that took no place, once it was sent every byte but its last ones, if
    /// a place is left then (past the budget it is `NotFound`, and those bytes are never sent).
    /// One cut short takes a place now, as a claim with its range recorded, so that its
    /// client's resume joins it; with no place left its bytes stay uncounted, and its resume
    /// is refused.
    fn count_at_end(&self, start: u64, end: u64, now: i64) -> Result<bool> {
        if start > 0 || end < self.entry.size {
            if start >= end {
                return Ok(false);
            }
            return match self.share.claim_or_reserve(&self.entry, &self.client, start, now, Reserve::Now) {
                Ok(Some(claim)) => claim.count(start, end, now),
                Ok(None) | Err(StoreError::NotFound) => Ok(false),
                Err(err) => Err(err),
            };
        }
        let names = Names::of(&self.share, &self.entry.place);
        let _lock = names.lock()?;
        let hints = &self.share.store.counter_hints;
        let first = names.unreserved(0);
        let mut number = match hints.get(&first) {
            Some(seen) => seen,
            None => count(|i| names.unreserved(i))?,
        };
        let roomy = loop {
            // Every number below ours is a download counted: a name found made by another
            // server is one more.
            let left = self.room.saturating_sub(number);
            // Claims, finished ones among them, fewer than the places left but one: one is
            // this download's, and it is not the last. Else they are counted. (A crash that
            // counted a claim twice leaves more finished downloads than claims: then the file
            // may miss its spent mark, never go past its budget.)
            let roomy = fewer_than(left.saturating_sub(1), &[&|k| names.claim(k)])?;
            if !roomy && !self.share.has_place(&names, left, now)? {
                return Err(StoreError::NotFound);
            }
            match names.link_to_anchor(&names.unreserved(number)) {
                Err(StoreError::Io(err)) if err.kind() == io::ErrorKind::AlreadyExists => number += 1,
                other => break other.map(|()| roomy)?,
            }
        };
        hints.set(first, number + 1, self.share.store.limits.max_counter_hints);
        if !roomy {
            self.spend_if_last(number + 1, &|j| names.finished(j))?;
        }
        Ok(true)
    }

    /// After a download counted, `known` of the file's downloads and those of the counter
    /// `rest`: the one that used the budget up marks the file spent and deletes its contents.
    fn spend_if_last(&self, known: u64, rest: &dyn Fn(u64) -> PathBuf) -> Result<()> {
        if !fewer_than(self.room.saturating_sub(known), &[rest])? && self.share.mark_spent(&self.entry)? {
            self.share.delete_contents(&self.entry)?;
        }
        Ok(())
    }
}

/// Finished downloads by older servers, by blob.
#[derive(Debug)]
pub(super) struct Legacy(BTreeMap<String, u64>);

/// A share's [`Legacy`] downloads, once read.
#[derive(Debug, Default, Clone)]
pub(super) struct LegacyCell(Arc<OnceLock<Arc<Legacy>>>);

impl Legacy {
    fn of(&self, place: &Place) -> u64 {
        self.0.get(&place.to_string()).copied().unwrap_or(0)
    }
}

/// Finished downloads of a share's budgeted files.
pub(super) struct Finished {
    share: Share,
    legacy: Arc<Legacy>,
    /// Whether a file of the share may be spent, asked once.
    may_have_spent: OnceLock<bool>,
}

impl Finished {
    /// Whether the file stored at `place` is spent, as readers see it: with no file of the
    /// share marked spent, none is (one name lookup for the share), unless a crash kept the
    /// download that spent it from marking it; its next download marks it.
    pub(super) fn is_spent(&self, place: &Place, budget: u64) -> bool {
        let room = budget.saturating_sub(self.legacy.of(place));
        room == 0
            || *self.may_have_spent.get_or_init(|| self.share.may_have_spent())
                && self.is_spent_exactly(place, budget)
    }

    /// Whether the file stored at `place` was downloaded completely `budget` times, asked
    /// with a name lookup per counter while it is far from it; one that cannot be looked up
    /// is not spent.
    pub(super) fn is_spent_exactly(&self, place: &Place, budget: u64) -> bool {
        let names = Names::of(&self.share, place);
        let room = budget.saturating_sub(self.legacy.of(place));
        !fewer_than(room, &[&|j| names.finished(j), &|i| names.unreserved(i)]).unwrap_or(true)
    }
}

#[cfg(test)]
mod tests;
