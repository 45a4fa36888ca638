//! Taking shares away: expired shares, spent shares and deleted ones are moved into this
//! server's `trash/` and deleted there, so a crash midway leaves nothing half-visible; and the
//! temporary folders of servers that no longer run are removed. It only ever removes a share
//! whole, and never a folder whose server still holds its lock.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::meta::read_meta;
use super::{Result, Store, StoreError, is_plain_dir, remove_any, unix_now};
use crate::common::secret::ShareCode;

/// A half-made instance folder older than this belongs to a server that died starting.
const STALE_STAGING: Duration = Duration::from_secs(3600);

/// This server's own temporary folder, locked for as long as the server runs.
#[derive(Debug)]
pub(super) struct Instance {
    pub(super) dir: PathBuf,
    pub(super) _lock: File,
}

impl Store {
    /// Removes every share that expired at or before `now`, and every sealed share whose files
    /// have all used their download budget; returns their codes.
    pub fn sweep(&self, now: i64) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for entry in fs::read_dir(self.shares_dir())? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let done = match read_meta(&entry.path()) {
                Ok(meta) => meta.expires <= now || self.is_spent(&name, &meta),
                Err(err) => matches!(err.kind(), io::ErrorKind::NotFound | io::ErrorKind::InvalidData),
            };
            if done && self.remove_share(&name)? {
                removed.push(name);
            }
        }
        Ok(removed)
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
    /// half-visible. False when another server removed it first.
    fn remove_share(&self, name: &str) -> Result<bool> {
        let doomed = self.instance.dir.join("trash").join(name);
        match fs::rename(self.shares_dir().join(name), &doomed) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(err.into()),
        }
        remove_any(&doomed)?;
        Ok(true)
    }
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
        assert!(store.sweep(now).unwrap().is_empty());
        assert_eq!(store.sweep(now + 10).unwrap(), vec![code.clone()]);
        assert!(!root.0.join("shares").join(&code).exists());
        assert_eq!(fs::read_dir(store.instance.dir.join("trash")).unwrap().count(), 0);
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
