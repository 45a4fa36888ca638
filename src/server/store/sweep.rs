//! Taking shares away: expired shares, spent shares and deleted ones are moved into this
//! server's `trash/` and deleted there, so a crash midway leaves nothing half-visible; and the
//! temporary folders of servers that no longer run are removed. It only ever removes a share
//! whole, and never a folder whose server still holds its lock.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::meta::read_meta;
use super::{Result, Share, Store, StoreError, is_plain_dir, remove_any, unix_now};
use crate::common::secret::ShareCode;

/// A half-made instance folder older than this belongs to a server that died starting.
const STALE_STAGING: Duration = Duration::from_secs(3600);

/// This server's own temporary folder, locked for as long as the server runs.
#[derive(Debug)]
pub(super) struct Instance {
    pub(super) dir: PathBuf,
    pub(super) _lock: File,
}

/// Why a sweep removed a share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// It passed its expiry.
    Expired,
    /// Every file of it was downloaded as often as its budget allows.
    Spent,
    /// Its `meta` is missing or unreadable: a share that was never whole.
    Damaged,
}

/// What one sweep did, and what it could not do; what failed is tried again by the next one.
#[derive(Debug, Default)]
pub struct Sweep {
    /// The shares removed, by code, and why.
    pub removed: Vec<(String, Removal)>,
    /// Cut uploads deleted because nothing was added to them for the partial lifetime.
    pub partials: usize,
    /// What failed, with the share or folder it was about.
    pub failed: Vec<(String, StoreError)>,
}

impl Sweep {
    /// The codes of the shares removed.
    pub fn codes(&self) -> Vec<String> {
        self.removed.iter().map(|(code, _)| code.clone()).collect()
    }
}

impl Store {
    /// Removes every share that expired at or before `now`, and every sealed share whose files
    /// have all used their download budget; deletes cut uploads older than the partial
    /// lifetime; and empties this server's trash, so what an earlier sweep could not delete is
    /// tried again. An error stops only the share it is about.
    pub fn sweep(&self, now: i64) -> Sweep {
        let mut sweep = Sweep::default();
        let entries = match fs::read_dir(self.shares_dir()) {
            Ok(entries) => entries,
            Err(err) => {
                sweep.failed.push(("shares".into(), err.into()));
                return sweep;
            }
        };
        for entry in entries {
            let name = match entry {
                Ok(entry) => entry.file_name().to_string_lossy().into_owned(),
                Err(err) => {
                    sweep.failed.push(("shares".into(), err.into()));
                    continue;
                }
            };
            match self.sweep_share(&name, now) {
                Ok(Swept::Removed(why)) => sweep.removed.push((name, why)),
                Ok(Swept::Kept { partials }) => sweep.partials += partials,
                Err(err) => sweep.failed.push((name, err)),
            }
        }
        self.empty_trash(&mut sweep);
        sweep
    }

    fn sweep_share(&self, name: &str, now: i64) -> Result<Swept> {
        let dir = self.shares_dir().join(name);
        let why = match read_meta(&dir) {
            Ok(meta) if meta.expires <= now => Some(Removal::Expired),
            Ok(meta) if self.is_spent_exactly(name, &meta) => Some(Removal::Spent),
            Ok(meta) if meta.sealed => None,
            Ok(_) => return Ok(Swept::Kept { partials: self.sweep_partials(name, &dir)? }),
            Err(err) if matches!(err.kind(), io::ErrorKind::NotFound | io::ErrorKind::InvalidData) => {
                Some(Removal::Damaged)
            }
            Err(err) => return Err(err.into()),
        };
        match why {
            Some(why) if self.remove_share(name)? => Ok(Swept::Removed(why)),
            _ => Ok(Swept::Kept { partials: 0 }),
        }
    }

    /// Deletes the cut uploads of an unsealed share that nothing was added to for the partial
    /// lifetime, and that no upload holds; returns how many.
    fn sweep_partials(&self, name: &str, dir: &Path) -> Result<usize> {
        let entries = match fs::read_dir(dir.join("partial")) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(err) => return Err(err.into()),
        };
        let lifetime = self.limits.partial_lifetime;
        let mut removed = 0;
        for entry in entries {
            let path = entry?.path();
            let age = fs::metadata(&path).and_then(|m| m.modified()).map(|t| t.elapsed().unwrap_or_default());
            if !age.is_ok_and(|age| age >= lifetime) {
                continue;
            }
            // Under the share's lock, as an upload takes a partial file, and only when no
            // upload holds it.
            let code = name.parse().map_err(|_| StoreError::NotFound)?;
            let share = Share {
                code,
                meta: read_meta(dir)?,
                dir: dir.to_owned(),
                store: self.clone(),
                legacy: Default::default(),
            };
            let _lock = share.lock()?;
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err.into()),
            };
            if file.try_lock().is_ok() {
                remove_any(&path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Deletes what is left in this server's trash: shares an earlier removal moved there but
    /// could not delete whole.
    fn empty_trash(&self, sweep: &mut Sweep) {
        let trash = self.instance.dir.join("trash");
        let entries = match fs::read_dir(&trash) {
            Ok(entries) => entries,
            Err(err) => {
                sweep.failed.push(("trash".into(), err.into()));
                return;
            }
        };
        for entry in entries {
            let done = entry.and_then(|entry| remove_any(&entry.path()));
            if let Err(err) = done {
                sweep.failed.push(("trash".into(), err.into()));
            }
        }
    }

    /// Deletes share `code` at once, when `token` is its owner token. A wrong token gets the same
    /// answer as a missing share. Downloads in flight finish from the files they opened.
    pub fn delete_share(&self, code: &ShareCode, token: &str) -> Result<()> {
        let share = self.share(code, unix_now())?;
        if !share.is_owner(token) {
            return Err(StoreError::NotFound);
        }
        match self.remove_share(share.code.as_str())? {
            true => Ok(()),
            false => Err(StoreError::NotFound),
        }
    }

    /// Moves a share out of sight, then deletes it, so a crash midway leaves nothing
    /// half-visible; what cannot be deleted now stays in the trash for the next sweep. False
    /// when another server removed it first.
    fn remove_share(&self, name: &str) -> Result<bool> {
        let doomed = self.instance.dir.join("trash").join(name);
        match fs::rename(self.shares_dir().join(name), &doomed) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(err.into()),
        }
        let _ = remove_any(&doomed);
        Ok(true)
    }
}

/// What a sweep did with one share.
enum Swept {
    Removed(Removal),
    Kept { partials: usize },
}

/// Removes the temporary folders of servers that no longer run: their lock is free.
pub(super) fn clean_dead_instances(tmp: &Path) -> io::Result<()> {
    for entry in fs::read_dir(tmp)? {
        // Other servers start and clean at the same time: what vanished meanwhile is fine.
        match entry.and_then(|entry| clean_if_dead(&entry.path())) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

fn clean_if_dead(path: &Path) -> io::Result<()> {
    if !is_plain_dir(path) {
        return remove_any(path);
    }
    if path.extension().is_some_and(|e| e == "new") {
        let age = fs::metadata(path)?.modified()?.elapsed().unwrap_or_default();
        return if age > STALE_STAGING { remove_any(path) } else { Ok(()) };
    }
    let dead = match File::open(path.join("lock")) {
        Ok(lock) => lock.try_lock().is_ok(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => true,
        Err(err) => return Err(err),
    };
    if dead { remove_any(path) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::test_support::{leftovers, rel, temp_root, temp_store, upload};
    use crate::server::store::{Expected, Limits, Start};

    #[test]
    fn deleting_needs_the_owner_token() {
        let (store, _root) = temp_store(Limits::default());
        let (share, token) = store.create_share(unix_now() + 60, None).unwrap();
        let code = share.code.clone();
        assert!(matches!(store.delete_share(&code, "wrong"), Err(StoreError::NotFound)));
        store.delete_share(&code, token.as_str()).unwrap();
        assert!(matches!(store.share(&code, unix_now()), Err(StoreError::NotFound)));
        assert!(matches!(store.delete_share(&code, token.as_str()), Err(StoreError::NotFound)));
    }

    #[test]
    fn expired_shares_are_not_found_and_swept() {
        let (store, root) = temp_store(Limits::default());
        let now = unix_now();
        let (share, _) = store.create_share(now + 10, None).unwrap();
        upload(&share, "a", b"1").unwrap();
        let code = share.code.to_string();
        assert!(store.share(&share.code, now).is_ok());
        assert!(matches!(store.share(&share.code, now + 10), Err(StoreError::Gone)), "known to have been");
        assert!(store.sweep(now).removed.is_empty());
        assert_eq!(store.sweep(now + 10).removed, vec![(code.clone(), Removal::Expired)]);
        assert!(!root.0.join("shares").join(&code).exists());
        assert_eq!(fs::read_dir(store.instance.dir.join("trash")).unwrap().count(), 0);
    }

    #[test]
    fn a_sweep_goes_on_past_an_error_and_retries_what_its_trash_kept() {
        let (store, _root) = temp_store(Limits::default());
        let now = unix_now();
        let (stuck, _) = store.create_share(now + 10, None).unwrap();
        let (other, _) = store.create_share(now + 10, None).unwrap();
        // What an earlier removal left in the trash under the same name: moving the share
        // there fails until it is gone.
        let trash = store.instance.dir.join("trash");
        fs::create_dir_all(trash.join(stuck.code.as_str()).join("blobs")).unwrap();
        let first = store.sweep(now + 10);
        assert_eq!(
            first.removed,
            vec![(other.code.to_string(), Removal::Expired)],
            "the error stops one share"
        );
        assert_eq!(first.failed.len(), 1, "{:?}", first.failed);
        assert_eq!(first.failed[0].0, stuck.code.as_str());
        assert_eq!(fs::read_dir(&trash).unwrap().count(), 0, "the trash is emptied");
        let second = store.sweep(now + 10);
        assert_eq!(second.codes(), vec![stuck.code.to_string()]);
        assert!(second.failed.is_empty(), "{:?}", second.failed);
    }

    #[test]
    fn a_budgeted_share_with_no_files_stays_until_it_expires() {
        let (store, _root) = temp_store(Limits::default());
        let now = unix_now();
        let (mut share, _) = store.create_share(now + 10, Some(1)).unwrap();
        share.seal().unwrap();
        assert!(store.share(&share.code, now).is_ok(), "nothing was spent");
        assert!(store.sweep(now).removed.is_empty());
        assert_eq!(store.sweep(now + 10).removed, vec![(share.code.to_string(), Removal::Expired)]);
    }

    #[test]
    fn cut_uploads_are_swept_after_their_lifetime_unless_one_is_being_written() {
        let limits = Limits { partial_lifetime: Duration::ZERO, ..Limits::default() };
        let (store, _root) = temp_store(limits);
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        let mut cut = share.begin_upload(&rel("cut"), Expected::default(), Start::Fresh).unwrap();
        cut.write_chunk(b"kept for a resume").unwrap();
        drop(cut);
        let mut writing = share.begin_upload(&rel("writing"), Expected::default(), Start::Fresh).unwrap();
        writing.write_chunk(b"in flight").unwrap();
        assert_eq!(leftovers(&share), 2);
        let sweep = store.sweep(unix_now());
        assert_eq!((sweep.partials, sweep.removed.len()), (1, 0), "{:?}", sweep.failed);
        assert_eq!(share.partial_size(&rel("cut")).unwrap(), 0);
        assert_eq!(leftovers(&share), 1, "the upload in flight keeps its bytes");
        writing.commit().unwrap();
    }

    #[test]
    fn only_dead_servers_temporary_folders_are_cleaned() {
        let root = temp_root();
        let first = Store::open(&root.0, Limits::default()).unwrap();
        let (share, _) = first.create_share(unix_now() + 60, None).unwrap();
        let mut pending = share.begin_upload(&rel("x"), Expected::default(), Start::Fresh).unwrap();
        pending.write_chunk(b"in flight").unwrap();
        // A second server on the same root leaves the first one's upload alone.
        let second = Store::open(&root.0, Limits::default()).unwrap();
        assert_eq!(leftovers(&share), 1);
        pending.commit().unwrap();
        // Once the first server is gone, the next start removes its folder.
        let first_dir = first.instance.dir.clone();
        drop(share);
        drop(first);
        let _third = Store::open(&root.0, Limits::default()).unwrap();
        assert!(!first_dir.exists());
        assert!(second.instance.dir.exists());
    }
}
