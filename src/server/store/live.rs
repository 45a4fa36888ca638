//! What this server keeps in memory of a share while uploads to it run: the syncs its commits
//! share, the bytes uploads announced with `ALLO` and have not received yet, and the paths of
//! the uploads held in memory; and, for the whole disk, the bytes every upload in flight
//! announced and what was written since free space was last measured. Uploads running at once
//! see each other here, so together they never outgrow the share, never write one path twice
//! and never take the disk below `--min-free-disk`. It writes no file.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::sync::GroupSync;
use super::{Limits, Result, Share, StoreError};

/// Free space is measured again once this many bytes were written since, by all uploads.
pub(super) const FREE_SPACE_CHECK_BYTES: u64 = 16 << 20;
/// Free space is measured again when the last measure is this old: deletions free space
/// without telling.
const FREE_SPACE_MAX_AGE: Duration = Duration::from_secs(1);

/// The disk under the store's root as this server's uploads see it: the bytes every upload in
/// flight announced and has not received yet, across shares, and the free space measured last.
#[derive(Debug, Default)]
pub(super) struct Disk {
    pub(super) coming: AtomicU64,
    /// Free bytes when last measured, when, and the bytes written since.
    measured: Mutex<Option<(u64, Instant, u64)>>,
}

impl Disk {
    /// Counts `written` bytes that were announced, so room was made for them already.
    pub(super) fn wrote(&self, written: u64) {
        if let Some((_, _, since)) = self.measured.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            *since += written;
        }
    }

    /// Takes `written` more bytes on the disk of `dir` and makes room for `needed` that no
    /// upload announced: refused when they, with every announcement, would leave less free
    /// space than the floor.
    pub(super) fn take(&self, written: u64, needed: u64, limits: &Limits, dir: &Path) -> Result<()> {
        let mut measured = self.measured.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = match *measured {
            Some((free, at, since))
                if since < FREE_SPACE_CHECK_BYTES && at.elapsed() < FREE_SPACE_MAX_AGE =>
            {
                Some(free.saturating_sub(since))
            }
            _ => {
                // Without a way to tell, the floor is not enforced.
                let free = (limits.free_space)(dir);
                *measured = free.map(|free| (free, Instant::now(), 0));
                free
            }
        };
        if let Some(free) = fresh {
            let promised = self.coming.load(Ordering::SeqCst).saturating_add(needed);
            if free.saturating_sub(promised) < limits.min_free_disk {
                return Err(StoreError::DiskFull { floor: limits.min_free_disk });
            }
        }
        if let Some((_, _, since)) = measured.as_mut() {
            *since += written;
        }
        Ok(())
    }
}

/// What this server keeps of a share while uploads to it run: the syncs every commit waits for
/// (the blob's folder or the pack, then the manifest), each shared by the commits that wait at
/// the same time, and the bytes uploads announced and have not received yet.
#[derive(Debug, Default)]
pub(super) struct LiveShare {
    pub(super) blobs: GroupSync,
    pub(super) pack: GroupSync,
    pub(super) manifest: GroupSync,
    /// Announced with `ALLO` by uploads in flight, not arrived yet: counted against the share's
    /// size limit, so that uploads running at once cannot together outgrow it.
    pub(super) coming: AtomicU64,
    /// Paths of the uploads held in memory here: they have no partial file to lock.
    pub(super) receiving: Mutex<HashSet<Vec<String>>>,
    /// Where this server's pack of the share ends, as its own appends left it; `None` until the
    /// first append here, or after one that failed.
    pub(super) pack_end: Mutex<Option<u64>>,
}

/// The one upload of a path held in memory, until it ends.
#[derive(Debug)]
pub(super) struct Receiving {
    live: Arc<LiveShare>,
    rel: Vec<String>,
}

impl Receiving {
    /// Claims `rel`; `Busy` while another upload of it is held in memory here.
    pub(super) fn claim(live: &Arc<LiveShare>, rel: &[String]) -> Result<Receiving> {
        if !live.receiving.lock().unwrap_or_else(PoisonError::into_inner).insert(rel.to_vec()) {
            return Err(StoreError::Busy);
        }
        Ok(Receiving { live: Arc::clone(live), rel: rel.to_vec() })
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        self.live.receiving.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.rel);
    }
}

/// An upload's announced bytes that have not arrived, counted in [`LiveShare::coming`] and
/// [`Disk::coming`] until they arrive or the upload ends.
#[derive(Debug)]
pub(super) struct Reservation {
    pub(super) live: Arc<LiveShare>,
    pub(super) disk: Arc<Disk>,
    bytes: u64,
}

impl Reservation {
    pub(super) fn new(live: Arc<LiveShare>, disk: Arc<Disk>, bytes: u64) -> Reservation {
        live.coming.fetch_add(bytes, Ordering::SeqCst);
        disk.coming.fetch_add(bytes, Ordering::SeqCst);
        Reservation { live, disk, bytes }
    }

    /// Announced bytes that have not arrived yet.
    pub(super) fn left(&self) -> u64 {
        self.bytes
    }

    /// `bytes` more arrived.
    pub(super) fn arrived(&mut self, bytes: u64) {
        let used = bytes.min(self.bytes);
        self.live.coming.fetch_sub(used, Ordering::SeqCst);
        self.disk.coming.fetch_sub(used, Ordering::SeqCst);
        self.bytes -= used;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.live.coming.fetch_sub(self.bytes, Ordering::SeqCst);
        self.disk.coming.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

impl Share {
    /// What this server keeps of this share while uploads to it run, shared by all of them.
    pub(super) fn live(&self) -> Arc<LiveShare> {
        let mut live = self.store.live.lock().unwrap_or_else(PoisonError::into_inner);
        if live.len() >= self.store.limits.manifest_cache_shares && !live.contains_key(self.code.as_str()) {
            // Only shares with uploads in flight need theirs; the others start over.
            live.retain(|_, share| Arc::strong_count(share) > 1);
        }
        live.entry(self.code.to_string()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::test_support::{leftovers, rel, temp_store};
    use crate::server::store::{Expected, Start, unix_now};

    #[test]
    fn the_free_disk_floor_is_kept() {
        fn tiny_disk(_: &Path) -> Option<u64> {
            Some(1000)
        }
        let limits = Limits { min_free_disk: 900, free_space: tiny_disk, ..Limits::default() };
        let (store, _root) = temp_store(limits);
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        let mut pending = share.begin_upload(&rel("x"), Expected::default(), Start::Fresh).unwrap();
        let chunk = vec![0; 1 << 20];
        let mut written = 0;
        let err = loop {
            match pending.write_chunk(&chunk) {
                Ok(()) => written += chunk.len() as u64,
                Err(err) => break err,
            }
            assert!(written <= 2 * FREE_SPACE_CHECK_BYTES, "the floor was never enforced");
        };
        assert!(matches!(err, StoreError::DiskFull { floor: 900 }), "{err}");
        pending.discard();
        assert_eq!(leftovers(&share), 0);
        let full = Limits { min_free_disk: 1000, free_space: tiny_disk, ..Limits::default() };
        let (store, _root) = temp_store(full);
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        assert!(
            matches!(
                share.begin_upload(&rel("x"), Expected::default(), Start::Fresh),
                Err(StoreError::DiskFull { .. })
            ),
            "refused before writing"
        );
    }
}
