//! The names of the download budget's entries under a share's `budget/`, and the counters
//! made of them: names numbered from 0 with no gaps, each created exclusively and never
//! changed, counted by looking names up.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use super::super::manifest::Place;
use super::super::{Result, Share, StoreError};
use crate::common::platform::{create_marker, is_out_of_descriptors, open_files_limit, read_marker};

/// The names of one budgeted file's entries under `budget/`.
pub(in crate::server::store) struct Names {
    pub(in crate::server::store) dir: PathBuf,
    place: String,
    locks: Arc<LockFiles>,
    /// The file's lock file, once asked for.
    lock_file: OnceLock<Arc<LockFile>>,
}

impl Names {
    pub(in crate::server::store) fn of(share: &Share, place: &Place) -> Names {
        Names {
            dir: share.dir.join("budget"),
            place: place.to_string(),
            locks: share.store.budget_locks.clone(),
            lock_file: OnceLock::new(),
        }
    }

    pub(in crate::server::store) fn name(&self, rest: &str) -> PathBuf {
        self.dir.join(format!("{}.{rest}", self.place))
    }

    /// Makes `budget/` if it is not there. Never `create_dir_all`: a share removed meanwhile
    /// must not come back as a folder.
    fn make_folder(&self) -> io::Result<()> {
        match fs::create_dir(&self.dir) {
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    }

    /// Claim `k`: `client@made` (servers before it wrote a file of two lines).
    pub(in crate::server::store) fn claim(&self, k: u64) -> PathBuf {
        self.name(&format!("c{k}"))
    }

    /// Locked (shared) while a connection sends claim `k` from byte 0.
    pub(in crate::server::store) fn head(&self, k: u64) -> PathBuf {
        self.name(&format!("c{k}.head"))
    }

    /// Locked (shared) while a connection sends claim `k` from past byte 0; made by the first.
    pub(in crate::server::store) fn tail(&self, k: u64) -> PathBuf {
        self.name(&format!("c{k}.tail"))
    }

    /// The `i`-th `RETR` of claim `k`: `start-end@time`.
    pub(in crate::server::store) fn segment(&self, k: u64, i: u64) -> PathBuf {
        self.name(&format!("c{k}.s{i}"))
    }

    /// Claim `k` counted: `finished@time`, its finished download's number and when it counted
    /// (servers before it wrote the number alone).
    pub(in crate::server::store) fn done(&self, k: u64) -> PathBuf {
        self.name(&format!("c{k}.done"))
    }

    /// The file's budget is used up: made once, by the download that used it up.
    pub(in crate::server::store) fn spent_mark(&self) -> PathBuf {
        self.name("spent")
    }

    /// Claim `k` gave its place up.
    pub(in crate::server::store) fn released_mark(&self, k: u64) -> PathBuf {
        self.name(&format!("c{k}.released"))
    }

    /// Locks (exclusively) the file's budget: one of [`BUDGET_LOCKS`] lock files, picked by
    /// the file's place alike on every server, so that decisions about different files seldom
    /// wait for each other. The first to need one makes it (and `budget/`).
    pub(in crate::server::store) fn lock(&self) -> Result<BudgetLock<'_>> {
        let lock = match self.lock_file.get() {
            Some(lock) => lock,
            None => {
                let path = self.dir.join(format!("lock.{}", self.stripe()));
                let opened = self.locks.open(path, || self.make_folder())?;
                self.lock_file.get_or_init(|| opened)
            }
        };
        let turn = lock.turn.lock().unwrap_or_else(PoisonError::into_inner);
        lock.file.lock()?;
        Ok(BudgetLock { lock, files: &self.locks, _turn: turn })
    }

    /// Which of the [`BUDGET_LOCKS`] locks and anchors the file's names use.
    pub(in crate::server::store) fn stripe(&self) -> u64 {
        let hash = self
            .place
            .bytes()
            .fold(FNV_OFFSET, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME));
        hash % BUDGET_LOCKS
    }

    /// The `i`-th download counted at its end, having taken no place before: a link to the
    /// budget's anchor.
    pub(in crate::server::store) fn unreserved(&self, i: u64) -> PathBuf {
        self.name(&format!("u{i}"))
    }

    /// Creates `path` exclusively as a hard link to the file's `budget/anchor.<n>`, made by the first: a
    /// name that needs no payload costs no inode.
    pub(in crate::server::store) fn link_to_anchor(&self, path: &Path) -> Result<()> {
        // One anchor per lock: 16 times the links one file takes (65,000 on ext4).
        let anchor = self.dir.join(format!("anchor.{}", self.stripe()));
        let mut made = false;
        loop {
            match fs::hard_link(&anchor, path) {
                Err(err) if err.kind() == io::ErrorKind::NotFound && !made => {
                    self.make_folder()?;
                    OpenOptions::new().create(true).truncate(false).write(true).open(&anchor)?;
                    made = true;
                }
                Ok(()) => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Err(err.into()),
                // Past the anchor's most links (65,000 on ext4), or no hard links on this
                // filesystem: a symbolic link is the name, as exclusive, at the cost of an inode.
                Err(_) => return create_link(path, "anchor"),
            }
        }
    }

    /// The `j`-th finished download: a link to the anchor (servers before it wrote its claim's
    /// number).
    pub(in crate::server::store) fn finished(&self, j: u64) -> PathBuf {
        self.name(&format!("d{j}"))
    }

    /// Downloads counted here: finished claims and downloads counted at their end.
    pub(in crate::server::store) fn finished_downloads(&self) -> io::Result<u64> {
        Ok(count(|j| self.finished(j))? + count(|i| self.unreserved(i))?)
    }

    /// The `m`-th claim that gave its place up: a link to the anchor (servers before it wrote
    /// its number).
    pub(in crate::server::store) fn released(&self, m: u64) -> PathBuf {
        self.name(&format!("r{m}"))
    }

    /// The `g`-th claim of address `client`: its number.
    pub(in crate::server::store) fn of_client(&self, client: &str, g: u64) -> PathBuf {
        self.name(&format!("a{client}.{g}"))
    }

    /// Whether claim `k` gave its place up.
    pub(in crate::server::store) fn is_released(&self, k: u64) -> bool {
        exists(&self.released_mark(k))
    }

    /// Whether claim `k` has a range recorded, or a connection past byte 0 joined it.
    pub(in crate::server::store) fn has_ranges(&self, k: u64) -> Result<bool> {
        Ok(exists(&self.segment(k, 0)) || exists(&self.tail(k)))
    }

    /// Records that claim `k`'s client holds the bytes before `offset`: the range a `RETR` past
    /// byte 0 says it resumes from, when no record shows who sent them.
    pub(in crate::server::store) fn record_held_before(&self, k: u64, offset: u64, now: i64) -> Result<()> {
        append(|i| self.segment(k, i), &format!("0-{offset}@{now}"))?;
        Ok(())
    }

    /// Whether claim `k` neither counted nor gave its place up.
    pub(in crate::server::store) fn is_live(&self, k: u64) -> bool {
        !exists(&self.done(k)) && !exists(&self.released_mark(k))
    }

    /// Whether a connection sends claim `k` from byte 0 now.
    pub(in crate::server::store) fn sent_from_start(&self, k: u64) -> Result<bool> {
        locked(&self.head(k))
    }

    /// Whether a connection sends bytes of claim `k` now. A claim file (made by servers before
    /// `head` and `tail` held every connection) is locked by every connection.
    pub(in crate::server::store) fn is_held(&self, k: u64) -> Result<bool> {
        Ok(locked(&self.head(k))? || locked(&self.tail(k))? || locked(&self.claim(k))?)
    }

    /// Makes the next claim of `client`, made at `now`: a link created exclusively, after its
    /// head file so that a claim is never seen without one. Its number.
    pub(in crate::server::store) fn make_claim(&self, client: &str, now: i64) -> Result<u64> {
        let mut number = count(|k| self.claim(k))?;
        loop {
            let head = OpenOptions::new().create(true).truncate(false).write(true).open(self.head(number));
            if let Err(err) = head {
                if err.kind() != io::ErrorKind::NotFound {
                    return Err(err.into());
                }
                // The share's first claim makes the folder.
                self.make_folder()?;
                continue;
            }
            match create_link(&self.claim(number), &format!("{client}@{now}")) {
                Err(StoreError::Io(err)) if err.kind() == io::ErrorKind::AlreadyExists => number += 1,
                other => return other.map(|()| number),
            }
        }
    }

    /// The byte ranges recorded for claim `k`, which has `segments`.
    pub(in crate::server::store) fn ranges(&self, k: u64, segments: u64) -> Result<Vec<(u64, u64)>> {
        let mut ranges = Vec::new();
        for i in 0..segments {
            let (range, _) = read_segment(&self.segment(k, i))?;
            ranges.push(range);
        }
        Ok(ranges)
    }

    /// When claim `k` counted, if it did and its `done` says so.
    pub(in crate::server::store) fn counted_at(&self, k: u64) -> Result<Option<i64>> {
        match payload(&self.done(k)) {
            Ok(text) => Ok(text.split_once('@').and_then(|(_, time)| time.parse().ok())),
            Err(StoreError::Io(err)) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// When claim `k` was made.
    pub(in crate::server::store) fn made(&self, k: u64) -> Result<i64> {
        let text = match read_marker(&self.claim(k)) {
            Ok(text) => text.rsplit_once('@').map(|(_, made)| made.to_owned()),
            // A claim file of servers before: its client, then when it was made.
            Err(err) if err.kind() == io::ErrorKind::InvalidInput => {
                let mut text = String::new();
                File::open(self.claim(k))?.read_to_string(&mut text)?;
                text.lines().nth(1).map(str::to_owned)
            }
            Err(err) => return Err(err.into()),
        };
        Ok(text.and_then(|made| made.trim().parse().ok()).unwrap_or(0))
    }

    /// When claim `k` was made or its last recorded `RETR` ended, whichever is later.
    pub(in crate::server::store) fn last_activity(&self, k: u64) -> Result<i64> {
        let made = self.made(k)?;
        let segments = count(|i| self.segment(k, i))?;
        match segments {
            0 => Ok(made),
            n => Ok(read_segment(&self.segment(k, n - 1))?.1.max(made)),
        }
    }

    /// Gives claim `k`'s place up, once: whether this call did.
    pub(in crate::server::store) fn release(&self, k: u64) -> Result<bool> {
        match self.link_to_anchor(&self.released_mark(k)) {
            Err(StoreError::Io(err)) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            other => other?,
        }
        self.append_to_anchor(|m| self.released(m))?;
        Ok(true)
    }

    /// Creates the next of `name(0)`, `name(1)`, ... as a link to the anchor: its number.
    /// For counters only counted, never read.
    pub(in crate::server::store) fn append_to_anchor(&self, name: impl Fn(u64) -> PathBuf) -> Result<u64> {
        append_made_by(name, |path| self.link_to_anchor(path))
    }
}

/// Lock files a share's budget decisions are spread over.
const BUDGET_LOCKS: u64 = 16;
/// FNV-1a, which picks a file's lock the same on every server and every version.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Counters whose count a server keeps; past it, all are forgotten at once
/// (`--max-counter-hints`).
pub const DEFAULT_MAX_COUNTER_HINTS: usize = 16_384;

/// Budget lock files this server keeps open, by path: most budget decisions then take a lock
/// with one `flock` and no `open`. At most `--max-open-budget-locks` (and an eighth of the
/// process's descriptors); past it, or when the
/// process runs out of descriptors, all are closed at once (one still held stays open until
/// released: another open of the same file waits for its `flock` like another server's would).
#[derive(Debug)]
pub(in crate::server::store) struct LockFiles {
    open: Mutex<HashMap<PathBuf, Arc<LockFile>>>,
    most: usize,
}

/// Budget lock files a server keeps open by default (`--max-open-budget-locks`): a share's
/// budget has 16.
pub const DEFAULT_MAX_OPEN_BUDGET_LOCKS: usize = 64;

/// One open lock file. A `flock` is held by an open file description, which this server's
/// threads share: `turn` keeps them to one at a time.
#[derive(Debug)]
pub(in crate::server::store) struct LockFile {
    path: PathBuf,
    file: File,
    turn: Mutex<()>,
}

impl LockFiles {
    /// At most `most`, and never more than an eighth of the descriptors the process may open.
    pub(in crate::server::store) fn new(most: usize) -> LockFiles {
        let spare =
            open_files_limit().map_or(usize::MAX, |limit| usize::try_from(limit / 8).unwrap_or(usize::MAX));
        LockFiles { open: Mutex::default(), most: most.min(spare) }
    }

    fn files(&self) -> MutexGuard<'_, HashMap<PathBuf, Arc<LockFile>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock file at `path`, opened (and made) the first time; `make_folder` when its
    /// folder is not there yet.
    fn open(&self, path: PathBuf, make_folder: impl Fn() -> io::Result<()>) -> io::Result<Arc<LockFile>> {
        if let Some(open) = self.files().get(&path) {
            return Ok(open.clone());
        }
        let open = || OpenOptions::new().create(true).truncate(false).write(true).open(&path);
        let opened = match open() {
            Err(err) if err.kind() == io::ErrorKind::NotFound => make_folder().and_then(|()| open()),
            Err(err) if is_out_of_descriptors(&err) => {
                self.close_all();
                open()
            }
            other => other,
        };
        let made = Arc::new(LockFile { path: path.clone(), file: opened?, turn: Mutex::new(()) });
        let mut files = self.files();
        // Closed outside the lock: a close may wait on a distributed filesystem.
        let mut closed = match files.len() >= self.most && !files.contains_key(&path) {
            true => std::mem::take(&mut *files),
            false => HashMap::new(),
        };
        let kept = files.entry(path).or_insert_with(|| made.clone()).clone();
        drop(files);
        closed.clear();
        Ok(kept)
    }

    /// Closes every lock file not held now.
    fn close_all(&self) {
        let closed = std::mem::take(&mut *self.files());
        drop(closed);
    }

    /// Forgets `lock`, closed once no thread uses it.
    fn forget(&self, lock: &LockFile) {
        let mut files = self.files();
        let forgotten = match files.get(&lock.path) {
            Some(open) if std::ptr::eq(&**open, lock) => files.remove(&lock.path),
            _ => None,
        };
        drop(files);
        drop(forgotten);
    }
}

/// A budget lock held: by this thread among the server's, by this server among those on the
/// root. Released when dropped, the `flock` first.
pub(in crate::server::store) struct BudgetLock<'a> {
    lock: &'a LockFile,
    files: &'a LockFiles,
    _turn: MutexGuard<'a, ()>,
}

impl Drop for BudgetLock<'_> {
    fn drop(&mut self) {
        // A file whose lock could not be released (its filesystem went away) is closed, which
        // releases it, once nobody uses it.
        if self.lock.file.unlock().is_err() {
            self.files.forget(self.lock);
        }
    }
}

/// Whether another open file description holds a lock on `path` (a missing file, or a link
/// to none, holds none).
pub(in crate::server::store) fn locked(path: &Path) -> Result<bool> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err.into()),
    };
    match file.try_lock() {
        Ok(()) => Ok(false),
        Err(fs::TryLockError::WouldBlock) => Ok(true),
        Err(fs::TryLockError::Error(err)) => Err(err.into()),
    }
}

/// Whether the sorted union of `ranges` is `0..size`.
pub(in crate::server::store) fn covers(ranges: &[(u64, u64)], size: u64) -> bool {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    let mut covered = 0;
    for (start, end) in sorted {
        if start > covered {
            break;
        }
        covered = covered.max(end);
    }
    covered >= size
}

pub(in crate::server::store) fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Whether `path` names an entry; an error other than a missing name is an error.
fn present(path: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// How many names `name(0)`, `name(1)`, ... exist; they never have gaps. Looks up about
/// 2 log2(n) names.
pub(in crate::server::store) fn count(name: impl Fn(u64) -> PathBuf) -> io::Result<u64> {
    let present = |n: u64| present(&name(n));
    if !present(0)? {
        return Ok(0);
    }
    // present(low) and !present(high).
    let (mut low, mut high) = (0, 1);
    while present(high)? {
        low = high;
        high = high * 2 + 1;
    }
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if present(middle)? {
            low = middle;
        } else {
            high = middle;
        }
    }
    Ok(high)
}

/// Whether the counters `counters` hold fewer than `bound` names together. Asked first with
/// one lookup each: a counter whose name `p` is missing holds at most `p`, and the names looked
/// up (each the largest `2^k - 1` within its share of the bound) add up to less than `bound`.
/// Only when one of them is there are the counters counted.
pub(in crate::server::store) fn fewer_than(
    bound: u64,
    counters: &[&dyn Fn(u64) -> PathBuf],
) -> io::Result<bool> {
    if bound == 0 {
        return Ok(false);
    }
    // The name looked up changes only when the bound halves, so it is one the kernel keeps.
    let share = (bound - 1) / counters.len() as u64;
    let each = (1u64 << (u64::BITS - 1 - (share + 1).leading_zeros())) - 1;
    let mut probed = true;
    for name in counters {
        if present(&name(each))? {
            probed = false;
            break;
        }
    }
    if probed {
        return Ok(true);
    }
    let mut total = 0;
    for name in counters {
        total += count(name)?;
    }
    Ok(total < bound)
}

/// How many names counters were seen to hold, by the path of their first name: a count only
/// grows (names are never removed but with their share), so a count seen is where the next
/// name of the counter is tried, with no lookups. At most `--max-counter-hints` are kept.
#[derive(Debug, Default)]
pub(in crate::server::store) struct CounterHints(Mutex<HashMap<PathBuf, u64>>);

impl CounterHints {
    /// The count of the counter whose first name is `first`, once seen.
    pub(in crate::server::store) fn get(&self, first: &Path) -> Option<u64> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(first).copied()
    }

    /// Keeps `count` for the counter whose first name is `first`, among at most `most`.
    pub(in crate::server::store) fn set(&self, first: PathBuf, count: u64, most: usize) {
        let mut hints = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if hints.len() >= most && !hints.contains_key(&first) {
            hints.clear();
        }
        let kept = hints.entry(first).or_insert(count);
        *kept = (*kept).max(count);
    }
}

/// Creates the next of `name(0)`, `name(1)`, ... holding `payload`: its number.
pub(in crate::server::store) fn append(name: impl Fn(u64) -> PathBuf, payload: &str) -> Result<u64> {
    append_made_by(name, |path| create_link(path, payload))
}

/// Creates the next of `name(0)`, `name(1)`, ... with `make`, which fails with `AlreadyExists`
/// where another made that number first: its number.
fn append_made_by(name: impl Fn(u64) -> PathBuf, make: impl Fn(&Path) -> Result<()>) -> Result<u64> {
    let mut number = count(&name)?;
    loop {
        match make(&name(number)) {
            Err(StoreError::Io(err)) if err.kind() == io::ErrorKind::AlreadyExists => number += 1,
            other => return other.map(|()| number),
        }
    }
}

/// Creates `path` holding `payload`, at once and exclusively: a symbolic link never replaced.
pub(in crate::server::store) fn create_link(path: &Path, payload: &str) -> Result<()> {
    Ok(create_marker(path, payload)?)
}

pub(in crate::server::store) fn payload(path: &Path) -> Result<String> {
    Ok(read_marker(path)?)
}

pub(in crate::server::store) fn unreadable(path: &Path) -> StoreError {
    StoreError::Io(io::Error::other(format!("unreadable budget entry {}", path.display())))
}

pub(in crate::server::store) fn read_number(path: &Path) -> Result<u64> {
    payload(path)?.parse().map_err(|_| unreadable(path))
}

/// A segment's range and when it was recorded.
pub(in crate::server::store) fn read_segment(path: &Path) -> Result<((u64, u64), i64)> {
    let text = payload(path)?;
    let parsed = text.split_once('@').and_then(|(range, time)| {
        let (start, end) = range.split_once('-')?;
        Some(((start.parse().ok()?, end.parse().ok()?), time.parse().ok()?))
    });
    parsed.ok_or_else(|| unreadable(path))
}
