//! Writes of a large upload into its partial file: whole aligned buffers go from memory straight
//! to the disk (`O_DIRECT`), without the copy into the page cache that was a third of the
//! server's CPU for a big upload; a tail, bytes after a pause, and every byte on a filesystem
//! that refuses such writes go through the page cache. It decides neither what is written nor
//! when it is durable: the upload's syncs do, the same either way.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

use crate::common::platform::{DIRECT_ALIGN, open_direct, write_at};

/// An upload announced at this size or more writes its whole buffers past the page cache.
pub(super) const DIRECT_MIN_BYTES: u64 = 1 << 20;

/// A partial file's second descriptor, for writes past the page cache, if it has one.
#[derive(Default)]
pub(super) struct DirectWrites {
    file: Option<File>,
    /// A direct write left the first descriptor's position behind what was written.
    behind: bool,
}

impl DirectWrites {
    /// Opens `path` for direct writes when `to_come` bytes make it worth a second descriptor
    /// and the filesystem takes them.
    pub(super) fn open(path: &Path, to_come: u64) -> DirectWrites {
        let file = if to_come >= DIRECT_MIN_BYTES { open_direct(path) } else { None };
        DirectWrites { file, behind: false }
    }

    pub(super) fn is_on(&self) -> bool {
        self.file.is_some()
    }

    /// Whether the last bytes written went past the page cache.
    #[cfg(test)]
    pub(super) fn last_went_direct(&self) -> bool {
        self.behind
    }

    /// Writes `bytes`, the file's bytes from `offset`: as many as one aligned direct write
    /// takes, the rest through `file`, whose position ends after them.
    pub(super) fn write(&mut self, file: &mut File, bytes: &[u8], offset: u64) -> io::Result<()> {
        let direct = self.write_direct(bytes, offset);
        if direct > 0 {
            self.behind = true;
        }
        if direct < bytes.len() {
            if std::mem::take(&mut self.behind) {
                file.seek(SeekFrom::Start(offset + direct as u64))?;
            }
            file.write_all(&bytes[direct..])?;
        }
        Ok(())
    }

    /// Writes as many of `bytes` as one direct write takes: none when they are not aligned in
    /// memory, in length and in the file. A direct write that fails (a filesystem that refuses
    /// them says `EINVAL`, a network one may say more) loses the descriptor, and this and every
    /// later byte go through the page cache, whose write reports a failure that is the disk's.
    fn write_direct(&mut self, bytes: &[u8], offset: u64) -> usize {
        let Some(file) = &self.file else { return 0 };
        let aligned = |n: usize| n.is_multiple_of(DIRECT_ALIGN);
        if bytes.is_empty()
            || !aligned(bytes.len())
            || !aligned(bytes.as_ptr() as usize)
            || !offset.is_multiple_of(DIRECT_ALIGN as u64)
        {
            return 0;
        }
        match write_at(file, bytes, offset) {
            Ok(written) => written,
            Err(_) => {
                self.file = None;
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Read;

    use super::*;
    use crate::common::digest::Sha256Digest;
    use crate::server::store::test_support::{rel, temp_store};
    use crate::server::store::{Expected, Limits, Start, Upload, unix_now};

    /// Whether the filesystem under `probe` takes an aligned write past the page cache.
    fn takes_direct_writes(probe: &Path) -> bool {
        fs::write(probe, b"").unwrap();
        let block = vec![7u8; 2 * DIRECT_ALIGN];
        let start = block.as_ptr().align_offset(DIRECT_ALIGN);
        open_direct(probe).is_some_and(|file| write_at(&file, &block[start..start + DIRECT_ALIGN], 0).is_ok())
    }

    /// Fills buffers the upload lends with `bytes`, `size` at a time, and hands them back as
    /// the session does; returns whether the last whole buffer went past the page cache.
    fn write_lent(upload: &mut Upload, bytes: &[u8], size: usize) -> bool {
        let mut direct = false;
        for part in bytes.chunks(size) {
            let (mut buffer, start) = upload.buffer(size);
            buffer[start..start + part.len()].copy_from_slice(part);
            upload.write_buffer(buffer, start..start + part.len()).unwrap();
            if part.len() == size {
                direct = upload.last_went_direct();
            }
        }
        direct
    }

    #[test]
    fn a_large_announced_upload_writes_whole_buffers_past_the_page_cache() {
        let (store, _root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        let takes_direct = takes_direct_writes(&share.dir.join("probe"));
        let size = 1 << 20;
        let whole: Vec<u8> = (0..3 * size + 4321).map(|i| (i * 7 % 251) as u8).collect();
        let expected = Expected { sha256: Some(Sha256Digest::of(&whole)), size: Some(whole.len() as u64) };
        let mut upload = share.begin_upload(&rel("big"), expected, Start::Fresh).unwrap();
        assert_eq!(upload.writes_direct(), takes_direct);
        // Three whole buffers, then a tail of 4321 bytes through the page cache.
        let direct = write_lent(&mut upload, &whole[..3 * size], size);
        assert_eq!(direct, takes_direct, "whole aligned buffers go straight to the disk");
        write_lent(&mut upload, &whole[3 * size..], size);
        let entry = upload.commit().unwrap();
        assert_eq!((entry.size, entry.sha256), (whole.len() as u64, Sha256Digest::of(&whole)));
        let stored = |entry| {
            let (file, start) = share.open_file(entry).unwrap();
            assert_eq!(start, 0, "a large file is a blob");
            let mut bytes = Vec::new();
            (&file).read_to_end(&mut bytes).unwrap();
            bytes
        };
        assert_eq!(stored(&entry), whole);
        // A cut one resumes at an unaligned byte: the rest goes through the page cache, whole.
        let mut cut = share.begin_upload(&rel("cut"), expected, Start::Fresh).unwrap();
        write_lent(&mut cut, &whole[..size], size);
        cut.write_chunk(&whole[size..size + 99]).unwrap();
        drop(cut);
        let mut resumed = share.begin_upload(&rel("cut"), expected, Start::Append).unwrap();
        assert_eq!(resumed.offset(), size as u64 + 99);
        assert!(!write_lent(&mut resumed, &whole[size + 99..], size), "no aligned place in the file");
        let entry = resumed.commit().unwrap();
        assert_eq!(stored(&entry), whole);
        // A small announced upload does not open its file twice.
        let small = Expected { sha256: None, size: Some(DIRECT_MIN_BYTES - 1) };
        assert!(!share.begin_upload(&rel("small"), small, Start::Fresh).unwrap().writes_direct());
    }

    #[test]
    fn a_refused_direct_write_goes_through_the_page_cache_and_loses_nothing() {
        let (_store, root) = temp_store(Limits::default());
        let path = root.0.join("file");
        let mut file =
            fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        // A descriptor that cannot write stands for a filesystem that refuses direct writes.
        let mut direct = DirectWrites { file: Some(File::open(&path).unwrap()), behind: false };
        let bytes: Vec<u8> = (0..3 * DIRECT_ALIGN).map(|i| (i % 13) as u8).collect();
        let start = bytes.as_ptr().align_offset(DIRECT_ALIGN);
        let block = &bytes[start..start + DIRECT_ALIGN];
        direct.write(&mut file, block, 0).unwrap();
        assert!(!direct.is_on(), "the refusing descriptor is dropped");
        direct.write(&mut file, block, DIRECT_ALIGN as u64).unwrap();
        assert_eq!(fs::read(&path).unwrap(), [block, block].concat());
    }
}
