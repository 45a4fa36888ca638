//! Where a finished file's bytes are: a blob of its own under `blobs/`, or a stretch of a pack,
//! which small files are appended to one after another. Each server appends only to its own
//! pack, `pack.<instance>`, and knows where it ends from its own writes: it never takes an offset
//! from a size another server may have changed. Opens them for reading, appends to the pack, and
//! deletes a file's bytes (a blob, or a hole punched in the pack). It never changes the bytes of
//! a file that is stored, and never follows a planted link.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::rc::Rc;

use std::sync::PoisonError;

use super::live::LiveShare;
use super::manifest::{FileEntry, Place};
use super::{Result, Share, StoreError, remove_any};
use crate::common::digest::Sha256Digest;
use crate::common::platform::{open_plain_file, punch_hole, read_at, sync_dir};

/// A pack a connection opened for a sealed share, kept for the next files it reads from it.
#[derive(Debug)]
pub struct KeptPack {
    path: PathBuf,
    file: Rc<File>,
}

/// Opens the blob or pack at `path` for reading. One that is not a plain file (a planted
/// symbolic link, say) is treated as missing.
fn open_contents(path: PathBuf) -> Result<File> {
    // Blobs and packs are never replaced: `ESTALE` means another server removed the file
    // (its last budgeted download, or its share's deletion) since this name was looked up.
    match open_plain_file(&path) {
        Ok(Some(file)) => Ok(file),
        Ok(None) => Err(StoreError::NotFound),
        Err(err) if matches!(err.kind(), io::ErrorKind::NotFound | io::ErrorKind::StaleNetworkFileHandle) => {
            Err(StoreError::NotFound)
        }
        Err(err) => Err(err.into()),
    }
}

/// A fresh upload announced with `ALLO` at no more than this size is held in memory and
/// appended to the share's pack: no file of its own to create, and the commits to one share
/// that wait at once share one sync of the pack.
pub const PACK_MAX_BYTES: u64 = 64 * 1024;

impl Share {
    /// Opens a finished file for reading: the file that holds its bytes, and the offset of its
    /// first byte in it. A blob or pack that is not a plain file (a planted symbolic link, say)
    /// is treated as missing.
    pub fn open_file(&self, entry: &FileEntry) -> Result<(File, u64)> {
        let (path, offset) = self.contents_path(entry);
        Ok((open_contents(path)?, offset))
    }

    /// Opens a finished file as [`Share::open_file`] does, but a pack of a sealed share is
    /// opened once and kept in `kept` for the next files read from it: a sealed share's packs
    /// take no more bytes, and packs are never replaced (a budget's last download punches a
    /// hole in the same file). Whether the share is still there is the caller's look, made
    /// before this one, as it is before [`Share::open_file`].
    pub fn open_file_keeping(
        &self,
        entry: &FileEntry,
        kept: &mut Option<KeptPack>,
    ) -> Result<(Rc<File>, u64)> {
        let (path, offset) = self.contents_path(entry);
        if !self.meta.sealed || !matches!(entry.place, Place::Packed { .. }) {
            return Ok((Rc::new(open_contents(path)?), offset));
        }
        if let Some(pack) = kept.as_ref().filter(|pack| pack.path == path) {
            return Ok((Rc::clone(&pack.file), offset));
        }
        let file = Rc::new(open_contents(path.clone())?);
        *kept = Some(KeptPack { path, file: Rc::clone(&file) });
        Ok((file, offset))
    }

    /// The bytes of a budgeted file kept in a pack, from byte `offset` of it to its end, read
    /// now from `file` (its first byte at `start`) and checked against the file's SHA-256;
    /// `None` for any other file. The count that uses a budget up punches the file's bytes out
    /// of the pack, which may be while another download still sends them (a blob's pages
    /// outlive its name; a hole's do not), so such a download sends this copy. Bytes already
    /// punched out are `NotFound`, as the file is; other bytes that do not match the record are
    /// an error of the store.
    pub fn read_if_punchable(
        &self,
        entry: &FileEntry,
        file: &File,
        start: u64,
        offset: u64,
    ) -> Result<Option<Vec<u8>>> {
        if self.meta.downloads.is_none() || !matches!(entry.place, Place::Packed { .. }) {
            return Ok(None);
        }
        if entry.size > PACK_MAX_BYTES {
            return Err(
                io::Error::other(format!("a packed file of {} bytes in its record", entry.size)).into()
            );
        }
        let mut bytes = vec![0; entry.size as usize];
        let mut read = 0;
        while read < bytes.len() {
            match read_at(file, &mut bytes[read..], start + read as u64) {
                Ok(0) => {
                    return Err(
                        io::Error::new(io::ErrorKind::UnexpectedEof, "pack shorter than its record").into()
                    );
                }
                Ok(n) => read += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err.into()),
            }
        }
        if Sha256Digest::of(&bytes) != entry.sha256 {
            return match bytes.iter().all(|&byte| byte == 0) {
                true => Err(StoreError::NotFound),
                false => Err(io::Error::other("a packed file's bytes differ from its record").into()),
            };
        }
        bytes.drain(..offset.min(entry.size) as usize);
        Ok(Some(bytes))
    }

    /// The file that holds `entry`'s bytes, and the offset of its first byte in it.
    fn contents_path(&self, entry: &FileEntry) -> (PathBuf, u64) {
        match &entry.place {
            Place::Blob(name) => (self.dir.join("blobs").join(name), 0),
            Place::Packed { instance, offset } => {
                (self.dir.join(Place::pack_file(instance.as_deref())), *offset)
            }
        }
    }

    /// Deletes a file's contents: its blob, or its bytes in the pack, which become a hole.
    pub(super) fn delete_contents(&self, entry: &FileEntry) -> Result<()> {
        match &entry.place {
            Place::Blob(name) => Ok(remove_any(&self.dir.join("blobs").join(name))?),
            Place::Packed { instance, offset } => {
                let path = self.dir.join(Place::pack_file(instance.as_deref()));
                let pack = OpenOptions::new().write(true).open(path)?;
                Ok(punch_hole(&pack, *offset, entry.size)?)
            }
        }
    }

    /// Appends `bytes` to this server's pack, under the share's lock, once `check` passed;
    /// returns the pack and where the bytes are. The offset comes from this server's own writes,
    /// never from a size another server's mount may show stale. The pack is not synced here.
    pub(super) fn append_to_pack(
        &self,
        bytes: &[u8],
        live: &LiveShare,
        check: impl FnOnce() -> Result<()>,
    ) -> Result<(File, Place)> {
        let _lock = self.lock()?;
        check()?;
        let instance = self.store.instance_id();
        let path = self.dir.join(Place::pack_file(Some(&instance)));
        let mut end = live.pack_end.lock().unwrap_or_else(PoisonError::into_inner);
        let made = !path.exists();
        let mut pack = OpenOptions::new().append(true).create(true).open(&path)?;
        if made {
            // The new pack must be durable under its name.
            sync_dir(&self.dir)?;
        }
        // Only this server writes its pack: its length here is what this server wrote.
        let offset = match *end {
            Some(offset) => offset,
            None => pack.metadata()?.len(),
        };
        // Unknown again until the write is known whole.
        *end = None;
        pack.write_all(bytes)?;
        *end = Some(offset + bytes.len() as u64);
        Ok((pack, Place::Packed { instance: Some(instance), offset }))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::server::store::test_support::{temp_store, upload, upload_announced};
    use crate::server::store::{Limits, unix_now};

    #[cfg(unix)]
    #[test]
    fn planted_symbolic_links_are_not_followed() {
        let (store, root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        let entry = upload(&share, "a", b"mine").unwrap();
        let packed = upload_announced(&share, "b", b"mine too").unwrap();
        let outside = root.0.join("outside.txt");
        fs::write(&outside, b"secret").unwrap();
        let Place::Blob(blob) = &entry.place else { panic!("{:?}", entry.place) };
        let Place::Packed { instance, .. } = &packed.place else { panic!("{:?}", packed.place) };
        let pack = share.dir.join(Place::pack_file(instance.as_deref()));
        for planted in [share.dir.join("blobs").join(blob), pack] {
            fs::remove_file(&planted).unwrap();
            std::os::unix::fs::symlink(&outside, &planted).unwrap();
        }
        assert!(matches!(share.open_file(&entry), Err(StoreError::NotFound)));
        assert!(matches!(share.open_file(&packed), Err(StoreError::NotFound)));
        // A share folder that is a link is no share.
        let (other, _) = store.create_share(unix_now() + 60, None).unwrap();
        let fake = root.0.join("shares").join("abcdefghijklmnopqrstuvwxyz");
        std::os::unix::fs::symlink(&other.dir, &fake).unwrap();
        assert!(matches!(
            store.share(&"abcdefghijklmnopqrstuvwxyz".parse().unwrap(), unix_now()),
            Err(StoreError::NotFound)
        ));
    }
}
