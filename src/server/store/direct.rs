//! Writes of a large upload into its partial file, and their syncs while it arrives
//! ([`Flusher`]): whole aligned buffers go from memory straight to the disk (`O_DIRECT`), without
//! the copy into the page cache that was a third of the server's CPU for a big upload; a tail,
//! bytes after a pause, and every byte on a filesystem that refuses such writes go through the
//! page cache. A direct write waits for the disk, so the buffers the session hands over are
//! written by a thread of their own ([`DirectWrites::write_behind`]) while it receives the next
//! ones, and that thread then hands each buffer to the digest's. It decides neither what is
//! written nor when it is durable: the upload's syncs do, the same either way, after every write
//! handed over has ended.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::thread::{self, JoinHandle};

use super::sync::Flusher;
use crate::common::digest::{Relay, StreamHasher};
use crate::common::platform::{DIRECT_ALIGN, open_direct, write_at};

/// An upload announced at this size or more writes its whole buffers past the page cache.
pub(super) const DIRECT_MIN_BYTES: u64 = 1 << 20;

/// A large upload starts writing its bytes to disk each time this many more arrived.
pub(super) const FLUSH_BYTES: u64 = 8 << 20;

/// A partial file's second descriptor, for writes past the page cache, if it has one; the
/// thread that writes buffers handed to it; and the one that syncs what was written.
pub(super) struct DirectWrites {
    file: Option<File>,
    /// A write made past the first descriptor left its position behind what was written.
    behind: bool,
    /// Whether the last bytes written went past the page cache.
    last_direct: bool,
    writer: Option<Writer>,
    /// Syncs a large upload's bytes while more arrive, so the sync before its `226` has
    /// little left to do.
    flusher: Option<Flusher>,
}

impl DirectWrites {
    /// Opens `path` for direct writes when `to_come` bytes make it worth a second descriptor
    /// and the filesystem takes them.
    pub(super) fn open(path: &Path, to_come: u64) -> DirectWrites {
        let file = if to_come >= DIRECT_MIN_BYTES { open_direct(path) } else { None };
        DirectWrites { file, behind: false, last_direct: false, writer: None, flusher: None }
    }

    /// Writes past the page cache through `file`, for tests that pick the descriptor.
    #[cfg(test)]
    fn through(file: Option<File>) -> DirectWrites {
        DirectWrites { file, behind: false, last_direct: false, writer: None, flusher: None }
    }

    pub(super) fn is_on(&self) -> bool {
        self.file.is_some() || self.writer.is_some()
    }

    /// Whether the last bytes written went past the page cache, once written.
    #[cfg(test)]
    pub(super) fn last_went_direct(&mut self) -> bool {
        self.settle().is_ok() && self.last_direct
    }

    /// Writes `bytes`, the file's bytes from `offset`, in this thread, once every write handed
    /// to the writing thread has ended: as many as one aligned direct write takes, the rest
    /// through `file`, whose position ends after them.
    pub(super) fn write(&mut self, file: &mut File, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.settle()?;
        let direct = write_direct(&mut self.file, bytes, offset);
        self.last_direct = direct > 0;
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

    /// Hands the bytes `part` of `buffer`, the file's bytes from `offset`, to the writing
    /// thread, which writes them and then hands the buffer to `hasher`'s thread. Gives the
    /// buffer back, for the caller to write and hash itself, when no thread can take it: the
    /// file takes no direct writes, or `hasher` hashes in the caller's thread. Fails with the
    /// error of a write handed over earlier, once the thread has stopped.
    pub(super) fn write_behind(
        &mut self,
        file: &File,
        buffer: Vec<u8>,
        part: Range<usize>,
        offset: u64,
        hasher: &mut StreamHasher,
    ) -> io::Result<Option<Vec<u8>>> {
        if self.writer.as_ref().is_some_and(|writer| writer.failed.load(Ordering::Relaxed)) {
            self.settle()?;
        }
        if self.writer.is_none() {
            let Some(relay) = hasher.relay().filter(|_| self.file.is_some()) else { return Ok(Some(buffer)) };
            // A thread that cannot start takes the descriptor with it: the page cache is left.
            match Writer::start(self.file.take(), file.try_clone()?, relay) {
                Ok(writer) => self.writer = Some(writer),
                Err(_) => return Ok(Some(buffer)),
            }
        }
        let writer = self.writer.as_mut().expect("a writer was just started");
        hasher.relayed(part.len());
        writer.hand_over(Job { buffer, part, offset });
        self.behind = true;
        Ok(None)
    }

    /// Starts a sync of what was written when the bytes `before..before + incoming` of the file
    /// cross a multiple of [`FLUSH_BYTES`].
    pub(super) fn arrived(&mut self, file: &File, before: u64, incoming: u64) -> io::Result<()> {
        if (before + incoming) / FLUSH_BYTES != before / FLUSH_BYTES {
            if self.flusher.is_none() {
                self.flusher = Some(Flusher::start(file)?);
            }
            self.flusher.as_ref().expect("flusher just started").flush();
        }
        Ok(())
    }

    #[cfg(test)]
    pub(super) fn is_flushing(&self) -> bool {
        self.flusher.is_some()
    }

    /// Waits for every write handed over and for the sync under way: a sync that follows covers
    /// every byte. Fails with the first write that failed.
    pub(super) fn finish(&mut self) -> io::Result<()> {
        let written = self.settle();
        if let Some(flusher) = self.flusher.take() {
            flusher.stop();
        }
        written
    }

    /// Waits for every write handed to the writing thread, and stops it: fails with the first
    /// of them that failed.
    pub(super) fn settle(&mut self) -> io::Result<()> {
        let Some(writer) = self.writer.take() else { return Ok(()) };
        let ended = writer.stop();
        self.file = ended.direct;
        self.last_direct = ended.last_direct;
        ended.written
    }
}

impl Drop for DirectWrites {
    /// Every write handed over ends before the file is synced, kept or deleted.
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Writes as many of `bytes` as one direct write through `direct` takes: none when they are
/// not aligned in memory, in length and in the file. A direct write that fails (a filesystem
/// that refuses them says `EINVAL`, a network one may say more) loses the descriptor, and this
/// and every later byte go through the page cache, whose write reports a failure that is the
/// disk's.
fn write_direct(direct: &mut Option<File>, bytes: &[u8], offset: u64) -> usize {
    let Some(file) = direct else { return 0 };
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
            *direct = None;
            0
        }
    }
}

/// Bytes to write at a place in the file, in a buffer the digest lent.
struct Job {
    buffer: Vec<u8>,
    part: Range<usize>,
    offset: u64,
}

/// The thread that writes an upload's buffers in the order they were handed over, then hands
/// each to the digest's thread; after a failed write it writes nothing more, so the file holds
/// only bytes that came before the failure, in order.
struct Writer {
    jobs: Option<Sender<Job>>,
    /// A write failed: the session stops taking bytes.
    failed: Arc<AtomicBool>,
    thread: Option<JoinHandle<Ended>>,
}

/// What a writing thread leaves.
struct Ended {
    /// The direct descriptor, unless a direct write failed.
    direct: Option<File>,
    /// The first failure.
    written: io::Result<()>,
    /// Whether the last bytes written went past the page cache.
    last_direct: bool,
}

impl Writer {
    /// Starts the thread that writes through `direct` and `buffered`, then hands to `relay`.
    fn start(mut direct: Option<File>, buffered: File, relay: Relay) -> io::Result<Writer> {
        let (jobs, incoming) = channel::<Job>();
        let failed = Arc::new(AtomicBool::new(false));
        let failing = Arc::clone(&failed);
        let thread = thread::Builder::new().name("writer".into()).spawn(move || {
            let mut ended = Ended { direct: None, written: Ok(()), last_direct: false };
            for Job { buffer, part, offset } in incoming {
                if ended.written.is_ok() {
                    let written = write_all_at(&mut direct, &buffered, &buffer[part.clone()], offset);
                    ended.last_direct = written.as_ref().is_ok_and(|&direct| direct > 0);
                    ended.written = written.map(|_| ());
                    failing.store(ended.written.is_err(), Ordering::Relaxed);
                }
                relay.hash_part(buffer, part);
            }
            Ended { direct, ..ended }
        })?;
        Ok(Writer { jobs: Some(jobs), failed, thread: Some(thread) })
    }

    fn hand_over(&mut self, job: Job) {
        if let Some(jobs) = &self.jobs {
            // A thread that ended early gives its error at `stop`.
            let _ = jobs.send(job);
        }
    }

    /// Waits for every write handed over; gives back the direct descriptor, if it still works,
    /// and the first failure.
    fn stop(mut self) -> Ended {
        drop(self.jobs.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(ended)) => ended,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ended { direct: None, written: Ok(()), last_direct: false },
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes all of `bytes` at `offset`: directly as far as one aligned write goes, the rest
/// through the page cache, with writes that leave the descriptors' positions alone. Returns how
/// many went directly.
fn write_all_at(direct: &mut Option<File>, buffered: &File, bytes: &[u8], offset: u64) -> io::Result<usize> {
    let direct = write_direct(direct, bytes, offset);
    let mut done = direct;
    while done < bytes.len() {
        match write_at(buffered, &bytes[done..], offset + done as u64) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => done += written,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(direct)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Read;

    use super::*;
    use crate::common::digest::{Hasher, Sha256Digest};
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

    /// Hands `blocks` to the writing thread one after another, each in a buffer `hasher` lent.
    fn hand_over(direct: &mut DirectWrites, file: &File, hasher: &mut StreamHasher, blocks: &[Vec<u8>]) {
        let mut offset = 0;
        for block in blocks {
            let mut buffer = hasher.buffer(block.len() + DIRECT_ALIGN);
            let start = buffer.as_ptr().align_offset(DIRECT_ALIGN);
            buffer[start..start + block.len()].copy_from_slice(block);
            let left = direct.write_behind(file, buffer, start..start + block.len(), offset, hasher).unwrap();
            assert!(left.is_none(), "the writing thread takes every buffer");
            offset += block.len() as u64;
        }
    }

    #[test]
    fn the_writing_thread_writes_and_hashes_in_order_and_reports_a_failure() {
        let (_store, root) = temp_store(Limits::default());
        let path = root.0.join("file");
        let file =
            fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        let blocks: Vec<Vec<u8>> = (1..=9u8).map(|i| vec![i; 256 * 1024]).collect();
        let whole = blocks.concat();
        // A second plain descriptor stands for the direct one: the order is what is looked at.
        let second = || fs::OpenOptions::new().write(true).open(&path).ok();
        let mut direct = DirectWrites::through(second());
        let mut hasher = StreamHasher::new(Hasher::new(), whole.len() as u64);
        hand_over(&mut direct, &file, &mut hasher, &blocks);
        direct.settle().unwrap();
        assert_eq!(fs::read(&path).unwrap(), whole, "every buffer written, in order");
        assert_eq!(hasher.len(), whole.len() as u64);
        assert_eq!(hasher.into_hasher().finish(), Sha256Digest::of(&whole), "and hashed in order");
        // Descriptors that cannot write: the failure comes back once the thread has stopped, and
        // the buffers it was handed still reach the digest, which finishes.
        let read_only = File::open(&path).unwrap();
        let mut failing = DirectWrites::through(File::open(&path).ok());
        let mut hasher = StreamHasher::new(Hasher::new(), whole.len() as u64);
        hand_over(&mut failing, &read_only, &mut hasher, &blocks[..1]);
        assert!(failing.settle().is_err(), "the failed write is reported");
        assert!(!failing.is_on(), "the refusing direct descriptor is dropped");
        assert_eq!(hasher.into_hasher().len(), 256 * 1024);
    }

    #[test]
    fn a_refused_direct_write_goes_through_the_page_cache_and_loses_nothing() {
        let (_store, root) = temp_store(Limits::default());
        let path = root.0.join("file");
        let mut file =
            fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        // A descriptor that cannot write stands for a filesystem that refuses direct writes.
        let mut direct = DirectWrites::through(File::open(&path).ok());
        let bytes: Vec<u8> = (0..3 * DIRECT_ALIGN).map(|i| (i % 13) as u8).collect();
        let start = bytes.as_ptr().align_offset(DIRECT_ALIGN);
        let block = &bytes[start..start + DIRECT_ALIGN];
        direct.write(&mut file, block, 0).unwrap();
        assert!(!direct.is_on(), "the refusing descriptor is dropped");
        direct.write(&mut file, block, DIRECT_ALIGN as u64).unwrap();
        assert_eq!(fs::read(&path).unwrap(), [block, block].concat());
    }
}
