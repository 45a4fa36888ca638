//! The download budget of a share: `reading/` holds one claim file per client downloading a
//! budgeted file, with the byte ranges that client was sent. A claim counts as one download when
//! its ranges cover the whole file (it is then marked done, and a done claim is a finished
//! download for good); the older `downloads` file, one line per finished download, is still
//! read. Claims are made, joined and credited under the share's lock, so finished downloads and
//! claims in flight never pass the budget, also across servers on one root. A claim file is
//! written whole when it is made, and every later change overwrites it in place: once a claim
//! exists, crediting and counting it need no disk space. It never reads a file's contents.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::manifest::{FileEntry, Place, whole_lines};
use super::{Result, Share, ShareMeta, Store, StoreError, remove_any};
use crate::common::secret::ShareCode;

/// Bytes of a claim file, written when it is made; its ranges must fit in them.
const CLAIM_BYTES: usize = 4096;
/// The name ending of a claim that was counted.
const DONE: &str = ".done";

impl Share {
    /// Claims a download of `entry` for the client at `peer`, starting at byte `offset`
    /// (`Ok(None)` when the share has no budget). `client` names the client: its address, one
    /// word. One address is one client: its `RETR`s join
    /// its open claim (lftp `pget` segments, aria2, curl ranges, a resume after a cut), see
    /// [`OpenClaim::joins`]. A claim that is not held by a connection now needs room in the
    /// budget: finished downloads and held claims together never exceed it; past it the file
    /// is `NotFound`.
    /// The claim file is written and synced here, before a byte is sent, so a full disk refuses
    /// the download instead of failing to count it.
    pub fn claim_download(
        &self,
        entry: &FileEntry,
        client: &str,
        offset: u64,
    ) -> Result<Option<DownloadClaim>> {
        let Some(budget) = self.meta.downloads else {
            return Ok(None);
        };
        let _lock = self.lock()?;
        let reading = self.dir.join("reading");
        fs::create_dir_all(&reading)?;
        let claims = scan_claims(&reading, &format!("{}.", entry.place))?;
        let held = claims.open.iter().filter(|c| c.held).count() as u64;
        let finished = self.legacy_downloads()?.of(&entry.place) + claims.done;
        let joined = claims
            .open
            .iter()
            .find(|c| c.state.as_ref().is_some_and(|s| s.client == client && c.joins(offset)));
        if let Some(open) = joined {
            if !open.held && finished + held >= budget {
                return Err(StoreError::NotFound);
            }
            let file = File::open(&open.path)?;
            file.lock_shared()?;
            let path = open.path.clone();
            if offset == 0
                && let Some(mut state) = open.state.clone()
            {
                // Overwritten in place: no disk space needed.
                state.from_start = true;
                OpenOptions::new().write(true).open(&path)?.write_all(&state.bytes()?)?;
            }
            return Ok(Some(DownloadClaim {
                share: self.clone(),
                entry: entry.clone(),
                budget,
                path,
                _lock: file,
            }));
        }
        if finished + held >= budget {
            return Err(StoreError::NotFound);
        }
        let path = reading.join(format!("{}.{}", entry.place, ShareCode::generate()?));
        let state = ClaimState {
            done: false,
            client: client.to_owned(),
            ranges: Vec::new(),
            from_start: offset == 0,
        };
        let mut file = File::create(&path)?;
        file.lock_shared()?;
        let written =
            state.bytes().and_then(|bytes| Ok(file.write_all(&bytes)?)).and_then(|()| Ok(file.sync_data()?));
        if let Err(err) = written {
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(err);
        }
        Ok(Some(DownloadClaim { share: self.clone(), entry: entry.clone(), budget, path, _lock: file }))
    }

    /// How many more complete downloads `entry` allows; `None` when the share has no budget.
    pub fn downloads_left(&self, entry: &FileEntry) -> Result<Option<u64>> {
        let Some(budget) = self.meta.downloads else {
            return Ok(None);
        };
        let finished = self.finished_downloads()?.of(&entry.place);
        Ok(Some(budget.saturating_sub(finished)))
    }

    /// Finished downloads of budgeted files, by blob: lines of the `downloads` file and done
    /// claims.
    pub(super) fn finished_downloads(&self) -> Result<Finished> {
        let mut finished = self.legacy_downloads()?;
        let names = match fs::read_dir(self.dir.join("reading")) {
            Ok(names) => names,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(finished),
            Err(err) => return Err(err.into()),
        };
        for name in names {
            let name = name?.file_name().to_string_lossy().into_owned();
            if let Some(place) =
                name.strip_suffix(DONE).and_then(|claim| claim.rsplit_once('.')).map(|(p, _)| p)
            {
                *finished.0.entry(place.to_owned()).or_insert(0) += 1;
            }
        }
        Ok(finished)
    }

    /// The `downloads` file of servers before claims: one line per finished download.
    fn legacy_downloads(&self) -> Result<Finished> {
        let bytes = match fs::read(self.dir.join("downloads")) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(err.into()),
        };
        let mut finished = BTreeMap::new();
        for blob in whole_lines(&bytes) {
            *finished.entry(blob.to_owned()).or_insert(0) += 1;
        }
        Ok(Finished(finished))
    }
}

/// One client's download of a budgeted file, held by each connection of that client while it
/// sends bytes of it (a shared lock on the claim file; a crash releases it).
#[derive(Debug)]
pub struct DownloadClaim {
    share: Share,
    entry: FileEntry,
    budget: u64,
    path: PathBuf,
    _lock: File,
}

impl DownloadClaim {
    /// The claim file's name once it counted.
    fn done_path(&self) -> PathBuf {
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        self.path.with_file_name(format!("{name}{DONE}"))
    }

    /// Credits the bytes `start..end` as sent to this client. Once the claim's ranges cover the
    /// file, the download counts (once), and the last download a budget allows deletes the
    /// file's contents. Ranges that no longer fit the claim file count it too: a client that
    /// cuts its download into that many pieces spends one. Returns whether this credit counted it.
    /// A share deleted or swept meanwhile has nothing left to count: the download still ends
    /// well, since its bytes were sent.
    pub fn credit(&self, start: u64, end: u64) -> Result<bool> {
        match self.count(start, end) {
            Err(StoreError::Io(err)) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            other => other,
        }
    }

    fn count(&self, start: u64, end: u64) -> Result<bool> {
        let _lock = self.share.lock()?;
        let done = self.done_path();
        if done.exists() {
            return Ok(false);
        }
        let mut state = read_claim(&self.path)?;
        // An empty file has no bytes to cover: the RETR that ran counts it.
        if state.done || (start >= end && self.entry.size > 0) {
            return Ok(false);
        }
        state.add(start, end);
        state.done = state.ranges == [(0, self.entry.size)];
        let bytes = match state.bytes() {
            Ok(bytes) => bytes,
            Err(_) => {
                state.done = true;
                state.ranges.clear();
                state.bytes()?
            }
        };
        let mut file = OpenOptions::new().write(true).open(&self.path)?;
        file.write_all(&bytes)?;
        file.sync_data()?;
        if !state.done {
            return Ok(false);
        }
        // The content says done already; the name says it too, so counting needs no reads.
        fs::rename(&self.path, &done)?;
        if self.share.finished_downloads()?.of(&self.entry.place) >= self.budget {
            self.share.delete_contents(&self.entry)?;
        }
        Ok(true)
    }
}

/// What a claim file says: whether it was counted, whose it is, and the byte ranges sent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClaimState {
    done: bool,
    client: String,
    /// Sorted, disjoint, not touching.
    ranges: Vec<(u64, u64)>,
    /// A `RETR` from byte 0 joined it.
    from_start: bool,
}

impl ClaimState {
    fn add(&mut self, start: u64, end: u64) {
        let (mut start, mut end) = (start, end);
        let mut kept = Vec::with_capacity(self.ranges.len() + 1);
        for &(a, b) in &self.ranges {
            if b < start || a > end {
                kept.push((a, b));
            } else {
                start = start.min(a);
                end = end.max(b);
            }
        }
        kept.push((start, end));
        kept.sort_unstable();
        self.ranges = kept;
    }

    /// The claim file's bytes: `open` or `done`, the address, the ranges, padded to
    /// `CLAIM_BYTES`; an error when the ranges do not fit.
    fn bytes(&self) -> Result<Vec<u8>> {
        let ranges: Vec<String> = self.ranges.iter().map(|(a, b)| format!("{a}-{b}")).collect();
        let state = if self.done { "done" } else { "open" };
        let start = if self.from_start { "from-start" } else { "" };
        let mut bytes = format!("{state}\n{}\n{}\n{start}\n", self.client, ranges.join(" ")).into_bytes();
        if bytes.len() > CLAIM_BYTES {
            return Err(StoreError::Io(io::Error::other("a claim's ranges do not fit its file")));
        }
        bytes.resize(CLAIM_BYTES, b' ');
        Ok(bytes)
    }

    fn parse(text: &str) -> Option<ClaimState> {
        let mut lines = text.lines();
        let done = match lines.next()? {
            "done" => true,
            "open" => false,
            _ => return None,
        };
        let client = lines.next()?.to_owned();
        let mut ranges = Vec::new();
        for range in lines.next()?.split_whitespace() {
            let (a, b) = range.split_once('-')?;
            ranges.push((a.parse().ok()?, b.parse().ok()?));
        }
        let from_start = lines.next()? == "from-start";
        Some(ClaimState { done, client, ranges, from_start })
    }
}

fn read_claim(path: &Path) -> Result<ClaimState> {
    let mut text = String::new();
    File::open(path)?.read_to_string(&mut text)?;
    ClaimState::parse(&text)
        .ok_or_else(|| StoreError::Io(io::Error::other(format!("unreadable claim {}", path.display()))))
}

/// A claim not counted yet.
struct OpenClaim {
    path: PathBuf,
    /// `None` when it cannot be read: while held it still takes its place in the budget.
    state: Option<ClaimState>,
    /// A connection sends bytes of it now, here or on another server.
    held: bool,
}

impl OpenClaim {
    /// Whether a `RETR` from the claim's address at `offset` is the same client: a segment
    /// past byte 0 always is (a `pget` segment, a resume), and one from byte 0 is unless the
    /// claim is being sent its first bytes right now (then it is a second client behind the
    /// same address).
    fn joins(&self, offset: u64) -> bool {
        offset > 0 || !self.held || self.state.as_ref().is_some_and(|s| !s.from_start)
    }
}

/// The claims of one file: the counted ones, and those open and held.
struct Claims {
    done: u64,
    open: Vec<OpenClaim>,
}

/// The claims in `dir` whose names start with `prefix`. An open claim that nobody holds (its
/// client left before it was sent every byte, or its server crashed) spent nothing and takes no
/// place in the budget, but stays: the same client may come back for the bytes it lacks. One
/// whose content says done (its rename did not happen) counts.
fn scan_claims(dir: &Path, prefix: &str) -> Result<Claims> {
    let mut claims = Claims { done: 0, open: Vec::new() };
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(prefix) {
            continue;
        }
        if name.ends_with(DONE) {
            claims.done += 1;
            continue;
        }
        let file = match File::open(entry.path()) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err.into()),
        };
        let state = read_claim(&entry.path()).ok();
        if state.as_ref().is_some_and(|s| s.done) {
            claims.done += 1;
            continue;
        }
        let held = match file.try_lock() {
            Ok(()) => false,
            Err(fs::TryLockError::WouldBlock) => true,
            Err(fs::TryLockError::Error(err)) => return Err(err.into()),
        };
        if !held && state.is_none() {
            remove_any(&entry.path())?;
            continue;
        }
        claims.open.push(OpenClaim { path: entry.path(), state, held });
    }
    Ok(claims)
}

/// Finished downloads of a share's budgeted files, by where their contents are.
pub(super) struct Finished(BTreeMap<String, u64>);

impl Finished {
    /// How many times the file stored at `place` was downloaded completely.
    pub(super) fn of(&self, place: &Place) -> u64 {
        self.0.get(&place.to_string()).copied().unwrap_or(0)
    }
}

impl Store {
    /// Whether a sealed share with a download budget has had all its files downloaded up to it.
    /// A share with no files has spent nothing: it stays until it expires.
    pub(super) fn is_spent(&self, name: &str, meta: &ShareMeta) -> bool {
        let (Some(budget), true, Ok(code)) = (meta.downloads, meta.sealed, name.parse::<ShareCode>()) else {
            return false;
        };
        let dir = self.shares_dir().join(name);
        let share = Share { code, meta: meta.clone(), dir, store: self.clone() };
        match (share.read_records(), share.finished_downloads()) {
            (Ok(records), Ok(finished)) => {
                !records.files.is_empty() && records.files.values().all(|f| finished.of(&f.place) >= budget)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::test_support::{rel, temp_store, upload, upload_announced};
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
        let (one, two) = ("10.0.0.1", "10.0.0.2");
        assert_eq!(share.downloads_left(&entry).unwrap(), Some(2));
        // A client that leaves before it got every byte spends nothing, and holds no place.
        let cut = share.claim_download(&entry, two, 0).unwrap().unwrap();
        assert!(!cut.credit(0, 7).unwrap());
        drop(cut);
        // Segments of one client: the first from byte 0, the others join it.
        let first = share.claim_download(&entry, one, 0).unwrap().unwrap();
        let second = share.claim_download(&entry, one, 4).unwrap().unwrap();
        let other = share.claim_download(&entry, two, 0).unwrap().unwrap();
        assert!(
            matches!(share.claim_download(&entry, two, 0), Err(StoreError::NotFound)),
            "two clients in flight"
        );
        assert!(!second.credit(4, 8).unwrap(), "a segment alone does not count");
        assert_eq!(share.downloads_left(&entry).unwrap(), Some(2));
        assert!(first.credit(0, 5).unwrap(), "the segments together cover the file");
        assert!(!second.credit(0, 8).unwrap(), "a claim counts once");
        assert_eq!(share.downloads_left(&entry).unwrap(), Some(1));
        assert!(lookup(&share));
        drop((first, second));
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
    fn claim_ranges_merge_and_round_trip() {
        let mut state = ClaimState { done: false, client: "::1".into(), ranges: vec![], from_start: true };
        for (a, b) in [(10, 20), (30, 40), (20, 25), (0, 5), (24, 31)] {
            state.add(a, b);
        }
        assert_eq!(state.ranges, [(0, 5), (10, 40)]);
        let bytes = state.bytes().unwrap();
        assert_eq!(bytes.len(), CLAIM_BYTES);
        assert_eq!(ClaimState::parse(std::str::from_utf8(&bytes).unwrap()), Some(state.clone()));
        state.ranges = (0..1000).map(|i| (i * 10, i * 10 + 1)).collect();
        assert!(state.bytes().is_err(), "too many ranges do not fit");
    }
}
