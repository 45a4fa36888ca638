//! Uploads: a file is received into the path's partial file (or, when small, into memory), its
//! digest computed as the bytes arrive, and the share's limits held as they come. Kept bytes of
//! a cut upload are never visible: only [`Upload::commit`] makes a file, after checking its
//! SHA-256 and syncing its bytes. It never replaces a stored file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use super::contents::PACK_MAX_BYTES;
use super::direct::DirectWrites;
use super::live::{LiveShare, Receiving, Reservation};
use super::manifest::{FileEntry, Node, Place, append_line};
use super::{Result, Share, StoreError, unix_now};
use crate::common::digest::{BACKGROUND_HASH_BYTES, Hasher, Sha256Digest, StreamHasher};
use crate::common::platform::{DIRECT_ALIGN, sync_dir};
use crate::common::secret::ShareCode;

/// What the uploader said the file will be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expected {
    /// SHA-256 of the whole file (`SITE DIGEST`).
    pub sha256: Option<Sha256Digest>,
    /// Size of the whole file (`ALLO`): fewer bytes mean the upload was cut.
    pub size: Option<u64>,
}

/// Where an upload starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At the first byte: anything kept of an earlier try is dropped (STOR).
    Fresh,
    /// At this byte of what an earlier, cut try kept (REST, then STOR).
    At(u64),
    /// At the end of what an earlier, cut try kept (APPE).
    Append,
}

/// A file being received. Bytes go to the path's partial file and into the digest in the same
/// pass; [`Upload::commit`] makes the file visible and [`Upload::discard`] deletes what came.
/// Dropping it otherwise (a cut connection) keeps the bytes for a resumed upload.
pub struct Upload {
    share: Share,
    rel: Vec<String>,
    expected: Option<Sha256Digest>,
    size: Option<u64>,
    sink: Sink,
    /// The digest of every byte so far; on a thread of its own for a large upload.
    hasher: StreamHasher,
    /// The byte this upload started at; earlier bytes were kept from a cut upload.
    offset: u64,
    /// Bytes this file may have before a limit is crossed.
    allowance: u64,
    /// What the allowance protects, and that limit, for the error.
    limit: (&'static str, u64),
    reservation: Reservation,
}

/// Where an upload's bytes go while they arrive.
enum Sink {
    /// A file under `partial/`, locked while the upload lives and kept for a resume if it is cut.
    Partial {
        file: File,
        path: PathBuf,
        /// Whole aligned buffers of a large announced upload go straight to the disk, and a
        /// large upload's bytes are synced while more arrive.
        direct: DirectWrites,
    },
    /// A small file, held until it is appended to the pack. A cut loses it; sending it again
    /// costs little.
    Memory { bytes: Vec<u8>, _receiving: Receiving },
    /// Committed or discarded.
    Done,
}

impl Share {
    /// Starts receiving the file `rel`, from its first byte or, for a cut upload, from `start`;
    /// if `expected` is given, the whole file must have that SHA-256. The share's limits are
    /// checked now and again as bytes arrive. Only one connection at a time uploads a path.
    pub fn begin_upload(&self, rel: &[String], expected: Expected, start: Start) -> Result<Upload> {
        let share_lock = self.lock()?;
        self.ensure_writable()?;
        let manifest = self.read_records()?;
        self.check_new_path(rel, &manifest)?;
        match manifest.lookup(rel) {
            Some(Node::Folder) => return Err(StoreError::IsAFolder),
            // Files are never replaced: what a reader verified stays what it verified.
            Some(Node::File(_)) => return Err(StoreError::Exists),
            None => {}
        }
        // Stored through another server, whose record may not show here yet.
        self.check_unclaimed(rel)?;
        let path = self.partial_path(rel);
        let limits = self.store.limits;
        let (partials, partial_bytes) = self.partial_totals(&path)?;
        if manifest.entries() + partials >= limits.max_files_per_share {
            return Err(StoreError::TooManyFiles(limits.max_files_per_share));
        }
        let live = self.live();
        let taken = manifest.totals().1 + partial_bytes + live.coming.load(Ordering::SeqCst);
        // Let go of the records at once: a commit that parses new ones meanwhile would copy
        // them all while this still holds the old version.
        drop(manifest);
        let share_room = limits.max_share_size.saturating_sub(taken);
        let room = if share_room < limits.max_file_size {
            (share_room, ("the share", limits.max_share_size))
        } else {
            (limits.max_file_size, ("the file", limits.max_file_size))
        };
        let packed = start == Start::Fresh
            && expected.size.is_some_and(|size| size <= PACK_MAX_BYTES)
            // An empty file would have the place of the next one in the pack, and a download
            // budget is kept by place: in a budgeted share it gets an (empty) blob.
            && (expected.size != Some(0) || self.meta.downloads.is_none())
            // A plain STOR starts a kept upload over, under that upload's lock.
            && !path.exists();
        if packed {
            let receiving = Receiving::claim(&live, rel)?;
            let reservation =
                Reservation::new(live, Arc::clone(&self.store.disk), expected.size.unwrap_or(0));
            drop(share_lock);
            let sink = Sink::Memory { bytes: Vec::new(), _receiving: receiving };
            return self.new_upload(rel, expected, (0, Hasher::new()), sink, (room, reservation));
        }
        if live.receiving.lock().unwrap_or_else(PoisonError::into_inner).contains(rel) {
            return Err(StoreError::Busy);
        }
        fs::create_dir_all(path.parent().expect("partial files sit in a folder"))?;
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StoreError::Busy),
            Err(fs::TryLockError::Error(err)) => return Err(err.into()),
        }
        let kept = file.metadata()?.len();
        // Reserved while the share's lock is held, so that uploads beginning at once see each
        // other. What a resume truncates of the kept bytes leaves the disk as it is reserved.
        let coming = expected.size.unwrap_or(0).saturating_sub(kept);
        let reservation = Reservation::new(live, Arc::clone(&self.store.disk), coming);
        drop(share_lock);
        let upload =
            self.resume_upload(rel, expected, start, (file, path.clone(), kept), (room, reservation));
        if upload.is_err() && kept == 0 {
            // Nothing was kept before: leave no empty partial file behind a refusal.
            let _lock = self.lock();
            let _ = fs::remove_file(&path);
        }
        upload
    }

    /// The rest of [`Share::begin_upload`], once the partial file is open and locked.
    fn resume_upload(
        &self,
        rel: &[String],
        expected: Expected,
        start: Start,
        (mut file, path, kept): (File, PathBuf, u64),
        (room, reservation): (Room, Reservation),
    ) -> Result<Upload> {
        let offset = match start {
            Start::Fresh => 0,
            Start::At(offset) if offset > kept => return Err(StoreError::BadOffset { offset, kept }),
            Start::At(offset) => offset,
            Start::Append => kept,
        };
        // Refused before the kept bytes are touched.
        allowance(offset, expected.size, room)?;
        file.set_len(offset)?;
        // The digest covers the whole file: the kept bytes are read again to resume it.
        let mut hasher = Hasher::new();
        crate::common::chunks::for_each_chunk(
            &mut (&file).take(offset),
            offset,
            |chunk| {
                hasher.update(chunk);
                Ok(())
            },
            StoreError::Io,
        )?;
        file.seek(SeekFrom::Start(offset))?;
        let to_come = expected.size.map_or(0, |size| size.saturating_sub(offset));
        let direct = DirectWrites::open(&path, to_come);
        let sink = Sink::Partial { file, path, direct };
        self.new_upload(rel, expected, (offset, hasher), sink, (room, reservation))
    }

    /// An upload of `rel` whose bytes before `offset` are already in `hasher` and `sink`.
    fn new_upload(
        &self,
        rel: &[String],
        expected: Expected,
        (offset, hasher): (u64, Hasher),
        sink: Sink,
        (room, reservation): (Room, Reservation),
    ) -> Result<Upload> {
        let (allowance, limit) = allowance(offset, expected.size, room)?;
        let to_come = expected.size.map_or(0, |size| size.saturating_sub(offset));
        let hasher = StreamHasher::new(hasher, to_come);
        let mut upload = Upload {
            share: self.clone(),
            rel: rel.to_vec(),
            expected: expected.sha256,
            size: expected.size,
            sink,
            hasher,
            offset,
            allowance,
            limit,
            reservation,
        };
        upload.check_free_space(0)?;
        Ok(upload)
    }

    /// Where the bytes of an upload of `rel` stay until it is committed: named by the SHA-256 of
    /// the path, so uploaders' names never reach the filesystem.
    fn partial_path(&self, rel: &[String]) -> PathBuf {
        let key = Sha256Digest::of(rel.join("/").as_bytes());
        self.dir.join("partial").join(format!("{key}.part"))
    }

    /// Bytes kept of a cut upload of `rel`, where a resumed upload continues; 0 when none.
    pub fn partial_size(&self, rel: &[String]) -> Result<u64> {
        match fs::metadata(self.partial_path(rel)) {
            Ok(meta) => Ok(meta.len()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(err) => Err(err.into()),
        }
    }

    /// Count and total size of the kept uploads other than `except`.
    fn partial_totals(&self, except: &Path) -> Result<(usize, u64)> {
        let mut totals = (0, 0);
        let entries = match fs::read_dir(self.dir.join("partial")) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(totals),
            Err(err) => return Err(err.into()),
        };
        for entry in entries {
            let entry = entry?;
            if entry.path() != except {
                totals.0 += 1;
                totals.1 += entry.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
        Ok(totals)
    }
}

/// The bytes an upload may have, and what that allowance protects: the room the share and the
/// file size limit leave, narrowed to the size announced with `ALLO`. An upload that could not
/// fit from `offset` is refused at once.
fn allowance(offset: u64, announced: Option<u64>, (room, limit): Room) -> Result<Room> {
    if offset.max(announced.unwrap_or(0)) > room {
        let (what, limit) = limit;
        return Err(StoreError::TooLarge { what, limit });
    }
    Ok(match announced {
        Some(size) if size < room => (size, ("the size announced with ALLO", size)),
        _ => (room, limit),
    })
}

/// Bytes an upload may have, and what protects them: the limit's name and size, for the error.
type Room = (u64, (&'static str, u64));

impl Upload {
    /// Bytes of the file so far, those kept from a cut upload included.
    pub fn received(&self) -> u64 {
        self.hasher.len()
    }

    /// The byte this upload started at.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// How many more bytes the uploader announced, if it did.
    pub fn to_come(&self) -> Option<u64> {
        self.size.map(|size| size.saturating_sub(self.received()))
    }

    /// Whether whole aligned buffers of this upload go straight to the disk, past the page cache.
    pub fn writes_direct(&self) -> bool {
        matches!(&self.sink, Sink::Partial { direct, .. } if direct.is_on())
    }

    /// Whether the last bytes written went past the page cache.
    #[cfg(test)]
    pub(super) fn last_went_direct(&mut self) -> bool {
        match &mut self.sink {
            Sink::Partial { direct, .. } => direct.last_went_direct(),
            _ => false,
        }
    }

    /// Whether fewer bytes came than the uploader announced: the upload was cut.
    pub fn is_short(&self) -> bool {
        self.size.is_some_and(|size| self.received() < size)
    }

    /// Checks that `incoming` more bytes leave the free-disk floor, counting what every upload
    /// in flight announced: only bytes beyond this upload's own announcement need room.
    fn check_free_space(&mut self, incoming: u64) -> Result<()> {
        let on_disk = if matches!(self.sink, Sink::Partial { .. }) { incoming } else { 0 };
        let unannounced = incoming.saturating_sub(self.reservation.left());
        if incoming > 0 && unannounced == 0 {
            self.share.store.disk.wrote(on_disk);
            return Ok(());
        }
        // Beginning, an upload needs room for at least one byte.
        let limits = self.share.store.limits;
        self.share.store.disk.take(on_disk, unannounced.max(1), &limits, &self.share.dir)
    }

    /// Takes the next bytes of the file.
    pub fn write_chunk(&mut self, bytes: &[u8]) -> Result<()> {
        let before = self.admit(bytes.len() as u64)?;
        self.place(bytes, before)?;
        self.arrived(bytes.len() as u64, before)?;
        self.hasher.update(bytes);
        self.hash_in_background_once_large();
        Ok(())
    }

    /// A buffer to fill with the next bytes of the file and hand to [`Upload::write_buffer`]:
    /// the digest's own, which its thread hashes without a copy. The bytes go in `size` bytes
    /// from the start returned, aligned so that a full buffer can go straight to the disk.
    pub fn buffer(&mut self, size: usize) -> (Vec<u8>, usize) {
        let buffer = self.hasher.buffer(size + DIRECT_ALIGN);
        let start = buffer.as_ptr().align_offset(DIRECT_ALIGN).min(DIRECT_ALIGN);
        (buffer, start)
    }

    /// Takes the bytes `part` of `buffer` as the next bytes of the file: they are written,
    /// then hashed, from the same memory; a large upload's by a thread that writes them while
    /// the next arrive.
    pub fn write_buffer(&mut self, buffer: Vec<u8>, part: std::ops::Range<usize>) -> Result<()> {
        let incoming = part.len() as u64;
        let before = self.admit(incoming)?;
        let left = match &mut self.sink {
            Sink::Partial { file, direct, .. } => {
                direct.write_behind(file, buffer, part.clone(), before, &mut self.hasher)?
            }
            _ => Some(buffer),
        };
        if let Some(buffer) = left {
            self.place(&buffer[part.clone()], before)?;
            self.hasher.hash_part(buffer, part);
        }
        self.arrived(incoming, before)?;
        self.hash_in_background_once_large();
        Ok(())
    }

    /// An upload whose size was not announced moves its hashing to a thread of its own once
    /// it is known to be large.
    fn hash_in_background_once_large(&mut self) {
        if self.received() >= BACKGROUND_HASH_BYTES && !self.hasher.is_background() {
            self.hasher.go_background();
        }
    }

    /// Refuses `incoming` more bytes that would cross a limit or the free-disk floor; else
    /// returns where in the file they go.
    fn admit(&mut self, incoming: u64) -> Result<u64> {
        if self.received() + incoming > self.allowance {
            let (what, limit) = self.limit;
            return Err(StoreError::TooLarge { what, limit });
        }
        self.check_free_space(incoming)?;
        Ok(self.received())
    }

    /// Writes `bytes`, the file's from `before`, in this thread; the caller hashes them.
    fn place(&mut self, bytes: &[u8], before: u64) -> Result<()> {
        match &mut self.sink {
            Sink::Partial { file, direct, .. } => direct.write(file, bytes, before)?,
            // Held bytes are on no disk yet: their reservation stays until the upload ends.
            Sink::Memory { bytes: held, .. } => held.extend_from_slice(bytes),
            Sink::Done => panic!("upload not committed"),
        }
        Ok(())
    }

    /// Counts `incoming` bytes from `before` as arrived: they leave the reservation, and every
    /// [`FLUSH_BYTES`] a sync of what was written starts.
    fn arrived(&mut self, incoming: u64, before: u64) -> Result<()> {
        if let Sink::Partial { file, direct, .. } = &mut self.sink {
            direct.arrived(file, before, incoming)?;
            self.reservation.arrived(incoming);
        }
        Ok(())
    }

    /// Checks the digest, syncs, renames into place and records the file. Only after this
    /// returns is the file on disk and visible. A file that cannot be stored is deleted.
    pub fn commit(mut self) -> Result<FileEntry> {
        let committed = self.try_commit();
        if committed.is_err() {
            self.delete_partial();
        }
        committed
    }

    /// The share's lock is held only for checks, the rename or the pack's append, and the
    /// record's append; the syncs happen outside it, so uploads to one share in parallel sync
    /// together instead of in turn.
    fn try_commit(&mut self) -> Result<FileEntry> {
        // Waits for the writes handed over, then for the hashing thread to reach the last byte.
        if let Sink::Partial { direct, .. } = &mut self.sink {
            direct.settle()?;
        }
        let hasher = std::mem::replace(&mut self.hasher, StreamHasher::new(Hasher::new(), 0)).into_hasher();
        let sha256 = hasher.clone().finish();
        self.hasher = StreamHasher::new(hasher, 0);
        if let Some(expected) = self.expected
            && expected != sha256
        {
            return Err(StoreError::DigestMismatch { expected, actual: sha256 });
        }
        let syncs = Arc::clone(&self.reservation.live);
        // The contents are durable before any record can name them.
        let place = match self.sink {
            Sink::Partial { .. } => self.store_blob(&syncs)?,
            Sink::Memory { .. } => self.store_packed(&syncs)?,
            Sink::Done => panic!("upload committed once"),
        };
        let entry =
            FileEntry { path: self.rel.clone(), size: self.received(), sha256, modified: unix_now(), place };
        let record = format!(
            "F\t{}\t{}\t{}\t{}\t{}",
            entry.sha256,
            entry.size,
            entry.modified,
            entry.place,
            entry.path_text()
        );
        let manifest = self.share.dir.join("manifest");
        let appended = {
            let _lock = self.share.lock()?;
            // Another upload of this path may have been recorded since the contents were stored,
            // through this server or another: the claim decides, not the records read here.
            self.check_room_to_commit().and_then(|()| {
                let claim = self.share.claim_file(&self.rel)?;
                append_line(&manifest, &record).inspect_err(|_| claim.release())
            })
        };
        match appended {
            // The 226 waits for the record to be durable.
            Ok(manifest) => syncs.manifest.sync(|| manifest.sync_data())?,
            Err(err) => {
                let _ = self.share.delete_contents(&entry);
                return Err(err);
            }
        }
        Ok(entry)
    }

    /// Syncs the partial file and renames it into `blobs/` under a random name.
    fn store_blob(&mut self, syncs: &LiveShare) -> Result<Place> {
        let Sink::Partial { file, path, direct } = &mut self.sink else { panic!("a partial file") };
        direct.finish()?;
        file.sync_data()?;
        let path = path.clone();
        let blob = ShareCode::generate()?.to_string();
        let blobs = self.share.dir.join("blobs");
        {
            let _lock = self.share.lock()?;
            self.check_room_to_commit()?;
            fs::rename(&path, blobs.join(&blob))?;
            self.sink = Sink::Done;
        }
        syncs.blobs.sync(|| sync_dir(&blobs))?;
        Ok(Place::Blob(blob))
    }

    /// Appends the bytes held in memory to the pack and syncs it.
    fn store_packed(&mut self, syncs: &LiveShare) -> Result<Place> {
        // The bytes, and the claim on the path, stay until the upload ends.
        let Sink::Memory { bytes, .. } = &self.sink else { panic!("held bytes") };
        let (pack, place) = self.share.append_to_pack(bytes, syncs, || self.check_room_to_commit())?;
        syncs.pack.sync(|| pack.sync_data())?;
        Ok(place)
    }

    /// Checks, under the share's lock, that the file may still be recorded.
    fn check_room_to_commit(&self) -> Result<()> {
        self.share.ensure_writable()?;
        let manifest = self.share.read_records()?;
        // A parent may have become a file since the upload began.
        self.share.check_new_path(&self.rel, &manifest)?;
        if manifest.lookup(&self.rel).is_some() {
            return Err(StoreError::Exists);
        }
        let limits = self.share.store.limits;
        if manifest.entries() >= limits.max_files_per_share {
            return Err(StoreError::TooManyFiles(limits.max_files_per_share));
        }
        if manifest.totals().1 + self.received() > limits.max_share_size {
            return Err(StoreError::TooLarge { what: "the share", limit: limits.max_share_size });
        }
        Ok(())
    }

    /// Deletes what was received, kept bytes included: the upload was refused or aborted.
    pub fn discard(mut self) {
        self.delete_partial();
    }

    fn delete_partial(&mut self) {
        if let Sink::Partial { path, direct, .. } = &mut self.sink {
            let _ = direct.settle();
            // Under the share's lock and still holding the file's own lock, so no other upload
            // of this path opens the file meanwhile.
            let _lock = self.share.lock();
            let _ = fs::remove_file(path);
            self.sink = Sink::Done;
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // Neither committed nor discarded: the connection was cut. The bytes stay for a resume.
        if let Sink::Partial { file, direct, .. } = &mut self.sink {
            let _ = direct.finish();
            let _ = file.sync_data();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::direct::FLUSH_BYTES;
    use crate::server::store::test_support::{leftovers, rel, temp_store, upload, upload_announced};
    use crate::server::store::{Limits, unix_now};

    /// The bytes the store keeps for `entry`, read from where they are.
    fn stored_bytes(share: &Share, entry: &FileEntry) -> Vec<u8> {
        let (file, start) = share.open_file(entry).unwrap();
        let mut bytes = Vec::new();
        (&file).seek(SeekFrom::Start(start)).unwrap();
        (&file).take(entry.size).read_to_end(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn small_announced_files_share_the_pack_and_large_ones_get_blobs() {
        let (store, _root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        let small = vec![7u8; PACK_MAX_BYTES as usize];
        let mut pending =
            share.begin_upload(&rel("one"), Expected { sha256: None, size: Some(3) }, Start::Fresh).unwrap();
        pending.write_chunk(b"abc").unwrap();
        assert_eq!(leftovers(&share), 0, "a small upload creates no file while it arrives");
        let one = pending.commit().unwrap();
        let two = upload_announced(&share, "two", &small).unwrap();
        let big = upload_announced(&share, "big", &[1; PACK_MAX_BYTES as usize + 1]).unwrap();
        let unannounced = upload(&share, "unannounced", b"xyz").unwrap();
        let instance = Some(store.instance_id());
        let at = |offset| Place::Packed { instance: instance.clone(), offset };
        assert_eq!((&one.place, &two.place), (&at(0), &at(3)));
        assert!(matches!(big.place, Place::Blob(_)) && matches!(unannounced.place, Place::Blob(_)));
        assert_eq!(fs::read_dir(share.dir.join("blobs")).unwrap().count(), 2);
        // Read back through a fresh parse of the manifest, not the cached one.
        store.manifests.clear();
        let manifest = share.manifest().unwrap();
        let Some(Node::File(read)) = manifest.lookup(&rel("two")) else { panic!("two is listed") };
        assert_eq!(read, &two);
        assert_eq!(stored_bytes(&share, &one), b"abc");
        assert_eq!(stored_bytes(&share, read), small);
        // A cut small upload keeps nothing, and it starts again from its first byte.
        let mut cut =
            share.begin_upload(&rel("cut"), Expected { sha256: None, size: Some(3) }, Start::Fresh).unwrap();
        cut.write_chunk(b"a").unwrap();
        drop(cut);
        assert_eq!(share.partial_size(&rel("cut")).unwrap(), 0);
        assert_eq!(leftovers(&share), 0);
    }

    #[test]
    fn one_upload_of_a_path_at_a_time_also_for_small_files() {
        let (store, _root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        let announced = |size| Expected { sha256: None, size: Some(size) };
        let small = share.begin_upload(&rel("x"), announced(3), Start::Fresh).unwrap();
        for size in [3, PACK_MAX_BYTES + 1] {
            let second = share.begin_upload(&rel("x"), announced(size), Start::Fresh);
            assert!(matches!(second, Err(StoreError::Busy)), "while x is held in memory: {size}");
        }
        drop(small);
        let mut big = share.begin_upload(&rel("y"), announced(PACK_MAX_BYTES + 1), Start::Fresh).unwrap();
        big.write_chunk(b"kept").unwrap();
        let small = share.begin_upload(&rel("y"), announced(3), Start::Fresh);
        assert!(matches!(small, Err(StoreError::Busy)), "while y is written to its partial file");
        drop(big);
        // A plain STOR of a small file starts the kept upload over, and nothing stays kept.
        let mut small = share.begin_upload(&rel("y"), announced(3), Start::Fresh).unwrap();
        small.write_chunk(b"abc").unwrap();
        assert!(matches!(small.commit().unwrap().place, Place::Blob(_)));
        assert_eq!(leftovers(&share), 0);
    }

    #[test]
    fn uploads_running_at_once_cannot_together_outgrow_the_share() {
        let big = PACK_MAX_BYTES + 1000;
        let limits = Limits { max_share_size: 2 * big + 100, ..Limits::default() };
        let (store, _root) = temp_store(limits);
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        let announced = |size| Expected { sha256: None, size: Some(size) };
        let mut first = share.begin_upload(&rel("first"), announced(big), Start::Fresh).unwrap();
        first.write_chunk(&[1; 1000]).unwrap();
        let second = share.begin_upload(&rel("second"), announced(big), Start::Fresh).unwrap();
        // Two announced files fill the share before their bytes arrive, small or large.
        for (name, size) in [("third", big), ("small", 200)] {
            let refused = share.begin_upload(&rel(name), announced(size), Start::Fresh);
            assert!(matches!(refused, Err(StoreError::TooLarge { what: "the share", .. })), "{name}");
        }
        // A cut upload gives back what did not arrive; what it kept still counts.
        drop(first);
        drop(second);
        let third = share.begin_upload(&rel("third"), announced(big), Start::Fresh);
        assert!(third.is_ok(), "room again once the others ended");
        let fourth = share.begin_upload(&rel("fourth"), announced(big), Start::Fresh);
        assert!(matches!(fourth, Err(StoreError::TooLarge { .. })), "1000 kept bytes and one more file");
        drop(third);
        assert_eq!(share.live().coming.load(Ordering::SeqCst), 0, "every reservation given back");
    }

    #[test]
    fn files_are_visible_only_after_commit() {
        let (store, _root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        let mut pending = share.begin_upload(&rel("a/b.txt"), Expected::default(), Start::Fresh).unwrap();
        pending.write_chunk(b"hello").unwrap();
        assert!(share.manifest().unwrap().lookup(&rel("a/b.txt")).is_none());
        let entry = pending.commit().unwrap();
        assert_eq!(entry.sha256, Sha256Digest::of(b"hello"));
        let manifest = share.manifest().unwrap();
        assert_eq!(manifest.lookup(&rel("a/b.txt")), Some(Node::File(&entry)));
        assert_eq!(manifest.lookup(&rel("a")), Some(Node::Folder));
        let mut text = String::new();
        share.open_file(&entry).unwrap().0.read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello");
        assert_eq!(leftovers(&share), 0);
    }

    #[test]
    fn a_digest_mismatch_stores_nothing() {
        let (store, _root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        let mut pending = share
            .begin_upload(
                &rel("x"),
                Expected { sha256: Some(Sha256Digest::of(b"other")), size: None },
                Start::Fresh,
            )
            .unwrap();
        pending.write_chunk(b"bytes").unwrap();
        assert!(matches!(pending.commit(), Err(StoreError::DigestMismatch { .. })));
        assert!(share.manifest().unwrap().lookup(&rel("x")).is_none());
        assert_eq!(leftovers(&share), 0);
        assert_eq!(fs::read_dir(share.dir.join("blobs")).unwrap().count(), 0);
    }

    #[test]
    fn a_discarded_upload_leaves_nothing() {
        let (store, _root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        let mut pending = share.begin_upload(&rel("x"), Expected::default(), Start::Fresh).unwrap();
        pending.write_chunk(b"half").unwrap();
        assert_eq!(leftovers(&share), 1);
        pending.discard();
        assert_eq!(leftovers(&share), 0);
        assert!(share.manifest().unwrap().lookup(&rel("x")).is_none());
    }

    #[test]
    fn a_cut_upload_is_kept_unseen_and_resumes_to_the_whole_digest() {
        let (store, _root) = temp_store(Limits::default());
        let (mut share, _) = store.create_share(unix_now() + 60, None).unwrap();
        // Larger than a packed file: only a file of its own is kept for a resume.
        let whole: Vec<u8> = (0..PACK_MAX_BYTES + 36).map(|i| (i % 253) as u8).collect();
        let expected = Expected { sha256: Some(Sha256Digest::of(&whole)), size: Some(whole.len() as u64) };
        let mut first = share.begin_upload(&rel("x"), expected, Start::Fresh).unwrap();
        first.write_chunk(&whole[..20]).unwrap();
        assert!(first.is_short(), "20 of the announced bytes");
        drop(first);
        assert!(share.manifest().unwrap().lookup(&rel("x")).is_none(), "kept bytes are unseen");
        assert_eq!(share.partial_size(&rel("x")).unwrap(), 20);
        // Past the kept bytes is refused; REST inside them drops the rest.
        assert!(matches!(
            share.begin_upload(&rel("x"), expected, Start::At(21)),
            Err(StoreError::BadOffset { offset: 21, kept: 20 })
        ));
        let mut second = share.begin_upload(&rel("x"), expected, Start::At(10)).unwrap();
        assert!(matches!(share.begin_upload(&rel("x"), expected, Start::Append), Err(StoreError::Busy)));
        second.write_chunk(&whole[10..30]).unwrap();
        drop(second);
        let mut third = share.begin_upload(&rel("x"), expected, Start::Append).unwrap();
        assert_eq!(third.offset(), 30);
        third.write_chunk(&whole[30..]).unwrap();
        assert!(!third.is_short());
        let entry = third.commit().unwrap();
        assert_eq!(entry.size, whole.len() as u64);
        assert_eq!(leftovers(&share), 0);
        // Sealing drops whatever is still kept.
        let mut cut = share.begin_upload(&rel("y"), Expected::default(), Start::Fresh).unwrap();
        cut.write_chunk(b"abc").unwrap();
        drop(cut);
        share.seal().unwrap();
        assert_eq!(leftovers(&share), 0);
    }

    #[test]
    fn files_are_never_replaced() {
        let (store, _root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        upload(&share, "a", b"first").unwrap();
        assert!(matches!(upload(&share, "a", b"second"), Err(StoreError::Exists)));
        // One upload of a name at a time: a second one waits its turn.
        let mut one = share.begin_upload(&rel("b"), Expected::default(), Start::Fresh).unwrap();
        assert!(matches!(
            share.begin_upload(&rel("b"), Expected::default(), Start::Fresh),
            Err(StoreError::Busy)
        ));
        one.write_chunk(b"1").unwrap();
        one.commit().unwrap();
        assert!(matches!(
            share.begin_upload(&rel("b"), Expected::default(), Start::Fresh),
            Err(StoreError::Exists)
        ));
        assert_eq!(share.manifest().unwrap().totals().unwrap(), (2, 6));
    }

    #[test]
    fn limits_stop_uploads_before_or_while_writing() {
        let limits =
            Limits { max_file_size: 10, max_share_size: 15, max_files_per_share: 3, ..Limits::default() };
        let (store, _root) = temp_store(limits);
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        let mut big = share.begin_upload(&rel("big"), Expected::default(), Start::Fresh).unwrap();
        big.write_chunk(b"0123456789").unwrap();
        assert!(matches!(big.write_chunk(b"!"), Err(StoreError::TooLarge { what: "the file", limit: 10 })));
        big.discard();
        upload(&share, "a", b"0123456789").unwrap();
        assert!(matches!(
            upload(&share, "b", b"012345"),
            Err(StoreError::TooLarge { what: "the share", limit: 15 })
        ));
        upload(&share, "b", b"01234").unwrap();
        upload(&share, "c", b"").unwrap();
        assert!(matches!(
            share.begin_upload(&rel("d"), Expected::default(), Start::Fresh),
            Err(StoreError::TooManyFiles(3))
        ));
        assert_eq!(leftovers(&share), 0);
    }

    #[test]
    fn a_large_upload_is_flushed_while_it_arrives_and_stored_whole() {
        let (store, _root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let chunks = FLUSH_BYTES as usize / chunk.len() + 1;
        let mut whole = Hasher::new();
        let mut pending = share.begin_upload(&rel("big"), Expected::default(), Start::Fresh).unwrap();
        for _ in 0..chunks {
            pending.write_chunk(&chunk).unwrap();
            whole.update(&chunk);
        }
        assert!(
            matches!(&pending.sink, Sink::Partial { direct, .. } if direct.is_flushing()),
            "past {FLUSH_BYTES} bytes a flusher runs"
        );
        let entry = pending.commit().unwrap();
        assert_eq!((entry.size, entry.sha256), ((chunks * chunk.len()) as u64, whole.finish()));
        assert_eq!(share.open_file(&entry).unwrap().0.metadata().unwrap().len(), entry.size);
    }

    #[test]
    fn a_file_committed_meanwhile_cannot_become_a_folder() {
        let (store, _root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        let mut inside = share.begin_upload(&rel("a/b"), Expected::default(), Start::Fresh).unwrap();
        inside.write_chunk(b"inner").unwrap();
        upload(&share, "a", b"outer").unwrap();
        assert!(matches!(inside.commit(), Err(StoreError::NotAFolder)));
        let manifest = share.manifest().unwrap();
        assert!(matches!(manifest.lookup(&rel("a")), Some(Node::File(_))));
        assert_eq!(manifest.totals().unwrap(), (1, 5));
    }
}
