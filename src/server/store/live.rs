//! What this server keeps in memory of a share while uploads to it run: the syncs its commits
//! share, the bytes uploads announced with `ALLO` and have not received yet, and the paths of
//! the uploads held in memory. Uploads running at once see each other here, so together they
//! never outgrow the share and never write one path twice. It touches no file.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::manifest::MANIFEST_CACHE_SHARES;
use super::sync::GroupSync;
use super::{Result, Share, StoreError};

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

/// An upload's announced bytes that have not arrived, counted in [`LiveShare::coming`] until they
/// arrive or the upload ends.
#[derive(Debug)]
pub(super) struct Reservation {
    pub(super) live: Arc<LiveShare>,
    bytes: u64,
}

impl Reservation {
    pub(super) fn new(live: Arc<LiveShare>, bytes: u64) -> Reservation {
        live.coming.fetch_add(bytes, Ordering::SeqCst);
        Reservation { live, bytes }
    }

    /// `bytes` more arrived.
    pub(super) fn arrived(&mut self, bytes: u64) {
        let used = bytes.min(self.bytes);
        self.live.coming.fetch_sub(used, Ordering::SeqCst);
        self.bytes -= used;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.live.coming.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

impl Share {
    /// What this server keeps of this share while uploads to it run, shared by all of them.
    pub(super) fn live(&self) -> Arc<LiveShare> {
        let mut live = self.store.live.lock().unwrap_or_else(PoisonError::into_inner);
        if live.len() >= MANIFEST_CACHE_SHARES && !live.contains_key(self.code.as_str()) {
            // Only shares with uploads in flight need theirs; the others start over.
            live.retain(|_, share| Arc::strong_count(share) > 1);
        }
        live.entry(self.code.to_string()).or_default().clone()
    }
}
