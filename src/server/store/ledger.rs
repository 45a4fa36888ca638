//! The download budget of a share: the `downloads` file, one line per finished download of a
//! budgeted file (append-only), and `reading/`, one locked file per download in flight. Both
//! are counted under the share's lock before a download starts, so finished downloads and those
//! in flight never pass the budget, also across servers on one root. It never reads a file's
//! contents.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::manifest::{FileEntry, Place, append_line, whole_lines};
use super::{Result, Share, ShareMeta, Store, StoreError, remove_any};
use crate::common::secret::ShareCode;

impl Share {
    /// Reserves one complete download of `entry` when the share has a download budget
    /// (`Ok(None)` when it has none). Finished downloads and those in flight together never
    /// exceed the budget; past it the file is `NotFound`. A reservation that is dropped without
    /// [`DownloadSlot::finish`] (a cut download) spends nothing.
    pub fn reserve_download(&self, entry: &FileEntry) -> Result<Option<DownloadSlot>> {
        let Some(budget) = self.meta.downloads else {
            return Ok(None);
        };
        let _lock = self.lock()?;
        let finished = self.finished_downloads()?.of(&entry.place);
        let reading = self.dir.join("reading");
        fs::create_dir_all(&reading)?;
        let in_flight = held_locks(&reading, &format!("{}.", entry.place))?;
        if finished + in_flight >= budget {
            return Err(StoreError::NotFound);
        }
        let path = reading.join(format!("{}.{}", entry.place, ShareCode::generate()?));
        let lock = File::create(&path)?;
        lock.lock()?;
        Ok(Some(DownloadSlot { share: self.clone(), entry: entry.clone(), budget, path, _lock: lock }))
    }

    /// How many more complete downloads `entry` allows; `None` when the share has no budget.
    pub fn downloads_left(&self, entry: &FileEntry) -> Result<Option<u64>> {
        let Some(budget) = self.meta.downloads else {
            return Ok(None);
        };
        let finished = self.finished_downloads()?.of(&entry.place);
        Ok(Some(budget.saturating_sub(finished)))
    }

    /// Finished downloads of budgeted files, by blob.
    pub(super) fn finished_downloads(&self) -> Result<Finished> {
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

/// One complete download of a budgeted file, reserved while it is in flight.
#[derive(Debug)]
pub struct DownloadSlot {
    share: Share,
    entry: FileEntry,
    budget: u64,
    path: PathBuf,
    _lock: File,
}

impl DownloadSlot {
    /// Counts the download as complete. The last download a budget allows deletes the file's
    /// contents from disk. A share deleted or swept meanwhile has nothing left to count: the
    /// download still ends well, since every byte was sent.
    pub fn finish(self) -> Result<()> {
        match self.count() {
            Err(StoreError::Io(err)) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn count(self) -> Result<()> {
        let _lock = self.share.lock()?;
        let place = &self.entry.place;
        append_line(&self.share.dir.join("downloads"), &place.to_string())?.sync_data()?;
        if self.share.finished_downloads()?.of(place) >= self.budget {
            self.share.delete_contents(&self.entry)?;
        }
        // The reservation goes while the share's lock is held: no one sees it gone and the count not yet
        // grown.
        drop(self);
        Ok(())
    }
}

impl Drop for DownloadSlot {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
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

/// How many files in `dir` whose names start with `prefix` are locked by someone; stale ones,
/// left by a crashed server, are removed.
fn held_locks(dir: &Path, prefix: &str) -> io::Result<u64> {
    let mut held = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let file = match File::open(entry.path()) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        match file.try_lock() {
            Ok(()) => remove_any(&entry.path())?,
            Err(fs::TryLockError::WouldBlock) => held += 1,
            Err(fs::TryLockError::Error(err)) => return Err(err),
        }
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::test_support::{rel, temp_store, upload, upload_announced};
    use crate::server::store::{Limits, unix_now};

    #[test]
    fn a_download_budget_is_exact_and_cut_downloads_spend_nothing() {
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
        assert_eq!(share.downloads_left(&entry).unwrap(), Some(2));
        // A cut download gives its reservation back.
        drop(share.reserve_download(&entry).unwrap());
        let one = share.reserve_download(&entry).unwrap().unwrap();
        let two = share.reserve_download(&entry).unwrap().unwrap();
        assert!(matches!(share.reserve_download(&entry), Err(StoreError::NotFound)), "two in flight");
        one.finish().unwrap();
        assert_eq!(share.downloads_left(&entry).unwrap(), Some(1));
        assert!(lookup(&share));
        two.finish().unwrap();
        assert_eq!(share.downloads_left(&entry).unwrap(), Some(0));
        assert!(!lookup(&share), "a spent file answers like one that never existed");
        let Place::Blob(blob) = &entry.place else { panic!("{:?}", entry.place) };
        assert!(!share.dir.join("blobs").join(blob).exists(), "its bytes are gone");
        assert!(store.sweep(unix_now()).removed.is_empty(), "g and h have downloads left");
        for entry in [&small, &empty] {
            for _ in 0..2 {
                share.reserve_download(entry).unwrap().unwrap().finish().unwrap();
            }
        }
        assert_eq!(store.sweep(unix_now()).codes(), vec![share.code.to_string()], "a spent share is swept");
    }
}
