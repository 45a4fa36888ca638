//! What the store's unit tests share: a store in a fresh temporary folder, and uploads in one
//! call. Only tests use it.

use std::fs;
use std::path::PathBuf;

use super::{Expected, FileEntry, Limits, Result, Share, Start, Store};
use crate::common::digest::Sha256Digest;
use crate::common::secret::ShareCode;

pub(super) struct TempRoot(pub(super) PathBuf);

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(super) fn temp_root() -> TempRoot {
    TempRoot(std::env::temp_dir().join(format!("anonshare-store-{}", ShareCode::generate().unwrap())))
}

pub(super) fn temp_store(limits: Limits) -> (Store, TempRoot) {
    let root = temp_root();
    (Store::open(&root.0, limits).unwrap(), root)
}

pub(super) fn rel(path: &str) -> Vec<String> {
    path.split('/').map(str::to_owned).collect()
}

/// Uploads `bytes` to a blob of its own: without a size announced, nothing is packed.
pub(super) fn upload(share: &Share, path: &str, bytes: &[u8]) -> Result<FileEntry> {
    upload_as(share, path, bytes, None)
}

/// Uploads `bytes` with their size announced, as `ALLO` does: a small file goes to the pack.
pub(super) fn upload_announced(share: &Share, path: &str, bytes: &[u8]) -> Result<FileEntry> {
    upload_as(share, path, bytes, Some(bytes.len() as u64))
}

fn upload_as(share: &Share, path: &str, bytes: &[u8], size: Option<u64>) -> Result<FileEntry> {
    let expected = Expected { sha256: Some(Sha256Digest::of(bytes)), size };
    let mut upload = share.begin_upload(&rel(path), expected, Start::Fresh)?;
    upload.write_chunk(bytes)?;
    upload.commit()
}

/// Uploads kept in the share's partial folder.
pub(super) fn leftovers(share: &Share) -> usize {
    fs::read_dir(share.dir.join("partial")).map_or(0, |entries| entries.count())
}
