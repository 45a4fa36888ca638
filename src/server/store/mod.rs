//! The on-disk store of shares. Knows nothing of sockets or FTP: it creates shares, takes file
//! uploads through [`Upload`], lists what a share holds, and sweeps expired shares away.
//!
//! Layout under the root:
//!
//! ```text
//! shares/<code>/meta        expiry, sealed flag, owner token digest (replaced atomically)
//! shares/<code>/manifest    one record per finished file or folder (append-only)
//! shares/<code>/lock        held while the share's meta or manifest changes
//! shares/<code>/blobs/<id>  file contents under random names; names live in the manifest
//! shares/<code>/pack        small files' contents, appended one after another (append-only)
//! shares/<code>/partial/    uploads in progress or cut, kept for resuming until the seal;
//!                           named by the SHA-256 of their path, locked while written
//! shares/<code>/downloads   one line per finished download of a budgeted file (append-only)
//! shares/<code>/reading/    one locked file per download in flight of a budgeted file
//! tmp/<instance>/           one per running server: shares being made, expired or deleted
//!                           shares on their way out; its `lock` is held while it runs
//! ```
//!
//! A file becomes visible only through its manifest record, which is appended after the file was
//! synced and renamed into place, or appended to the pack and synced: nobody sees a half-written
//! file, and a crash leaves at most an unlisted blob, unlisted bytes at the end of the pack, a
//! kept partial upload or a torn last record, none of them ever listed. Names chosen by
//! uploaders never reach the filesystem, so no name can escape a share or collide on a
//! case-insensitive disk. Several servers may share one root: every change happens under the
//! share's lock, and each server cleans up only the temporary folders of servers that are no
//! longer running.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::digest::{Hasher, Sha256Digest};
use crate::common::names::{BadName, NameRules};
use crate::common::platform::{free_space, punch_hole, sync_dir};
use crate::common::secret::{OwnerToken, ShareCode};

pub use crate::common::names::{MAX_NAME_BYTES, MAX_PATH_BYTES, MAX_PATH_DEPTH};
/// Largest file a share takes (`--max-file-size`).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 8 << 30;
/// Largest total size of one share (`--max-share-size`).
pub const DEFAULT_MAX_SHARE_SIZE: u64 = 16 << 30;
/// Most files and folders in one share (`--max-files-per-share`).
pub const DEFAULT_MAX_FILES_PER_SHARE: usize = 10_000;
/// Free disk space uploads always leave (`--min-free-disk`).
pub const DEFAULT_MIN_FREE_DISK: u64 = 64 << 20;
/// A fresh upload announced with `ALLO` at no more than this size is held in memory and
/// appended to the share's pack: no file of its own to create, and the commits to one share
/// that wait at once share one sync of the pack.
pub const PACK_MAX_BYTES: u64 = 64 * 1024;
/// A large upload starts writing its bytes to disk each time this many more arrived.
const FLUSH_BYTES: u64 = 32 << 20;
/// An upload looks at the free disk space again after this many bytes.
const FREE_SPACE_CHECK_BYTES: u64 = 16 << 20;
/// A half-made instance folder older than this belongs to a server that died starting.
const STALE_STAGING: Duration = Duration::from_secs(3600);

/// Why a store operation did not happen.
#[derive(Debug)]
pub enum StoreError {
    /// No such share (or it expired), or no such path in it.
    NotFound,
    /// The path names a folder where a file was needed.
    IsAFolder,
    /// The path names a file where a folder was needed.
    NotAFolder,
    /// The name is not allowed; the text says why.
    BadName(String),
    /// Something is already there.
    Exists,
    /// The share is sealed: nothing can be added any more.
    Sealed,
    /// The file or the share would grow past a limit; nothing was stored.
    TooLarge { what: &'static str, limit: u64 },
    /// The share already holds as many files as it may.
    TooManyFiles(usize),
    /// Storing more would leave less free disk space than the floor.
    DiskFull { floor: u64 },
    /// The received bytes do not have the declared SHA-256; nothing was stored.
    DigestMismatch { expected: Sha256Digest, actual: Sha256Digest },
    /// Another connection is uploading the same file right now.
    Busy,
    /// A resumed upload asked to start past the bytes kept for it.
    BadOffset { offset: u64, kept: u64 },
    /// The disk said no.
    Io(io::Error),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotFound => f.write_str("no such share or file"),
            StoreError::IsAFolder => f.write_str("is a folder"),
            StoreError::NotAFolder => f.write_str("not a folder"),
            StoreError::BadName(why) => write!(f, "name not allowed: {why}"),
            StoreError::Exists => f.write_str("already exists"),
            StoreError::Sealed => f.write_str("share is sealed and read-only"),
            StoreError::TooLarge { what, limit } => {
                write!(f, "{what} would exceed the limit of {limit} bytes; nothing was stored")
            }
            StoreError::TooManyFiles(limit) => {
                write!(f, "share already holds the most files and folders allowed ({limit})")
            }
            StoreError::DiskFull { floor } => {
                write!(f, "not enough disk space: the server keeps {floor} bytes free; nothing was stored")
            }
            StoreError::DigestMismatch { expected, actual } => {
                write!(f, "SHA-256 mismatch: declared {expected}, received {actual}; file not stored")
            }
            StoreError::Busy => f.write_str("another upload of this file is in progress"),
            StoreError::BadOffset { offset, kept } => {
                write!(f, "cannot resume at byte {offset}: {kept} bytes of this upload are kept")
            }
            StoreError::Io(err) => write!(f, "storage error: {err}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<io::Error> for StoreError {
    fn from(err: io::Error) -> Self {
        StoreError::Io(err)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The limits uploads and names are held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_name_bytes: usize,
    pub max_path_bytes: usize,
    pub max_path_depth: usize,
    pub max_file_size: u64,
    pub max_share_size: u64,
    pub max_files_per_share: usize,
    pub min_free_disk: u64,
    /// Free bytes on the disk holding a path; `None` when the platform cannot tell.
    pub free_space: fn(&Path) -> Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_name_bytes: MAX_NAME_BYTES,
            max_path_bytes: MAX_PATH_BYTES,
            max_path_depth: MAX_PATH_DEPTH,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            max_share_size: DEFAULT_MAX_SHARE_SIZE,
            max_files_per_share: DEFAULT_MAX_FILES_PER_SHARE,
            min_free_disk: DEFAULT_MIN_FREE_DISK,
            free_space,
        }
    }
}

impl Limits {
    /// The name rules these limits hold uploads to.
    pub fn names(&self) -> NameRules {
        NameRules {
            max_name_bytes: self.max_name_bytes,
            max_path_bytes: self.max_path_bytes,
            max_path_depth: self.max_path_depth,
        }
    }

    /// Checks a whole relative path, given as its components.
    pub fn check_path(&self, rel: &[String]) -> Result<(), StoreError> {
        self.names().check_path(rel).map_err(|BadName(why)| StoreError::BadName(why))
    }
}

/// The store rooted at one folder, as one running server sees it.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    limits: Limits,
    instance: Arc<Instance>,
    manifests: Arc<ManifestCache>,
    /// Per share, what this server keeps of it while it is written.
    live: Arc<Mutex<HashMap<String, Arc<LiveShare>>>>,
}

/// What this server keeps of a share while uploads to it run: the syncs every commit waits for
/// (the blob's folder or the pack, then the manifest), each shared by the commits that wait at
/// the same time, and the bytes uploads announced and have not received yet.
#[derive(Debug, Default)]
struct LiveShare {
    blobs: GroupSync,
    pack: GroupSync,
    manifest: GroupSync,
    /// Announced with `ALLO` by uploads in flight, not arrived yet: counted against the share's
    /// size limit, so that uploads running at once cannot together outgrow it.
    coming: AtomicU64,
    /// Paths of the uploads held in memory here: they have no partial file to lock.
    receiving: Mutex<HashSet<Vec<String>>>,
}

/// The one upload of a path held in memory, until it ends.
#[derive(Debug)]
struct Receiving {
    live: Arc<LiveShare>,
    rel: Vec<String>,
}

impl Receiving {
    /// Claims `rel`; `Busy` while another upload of it is held in memory here.
    fn claim(live: &Arc<LiveShare>, rel: &[String]) -> Result<Receiving> {
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
struct Reservation {
    live: Arc<LiveShare>,
    bytes: u64,
}

impl Reservation {
    fn new(live: Arc<LiveShare>, bytes: u64) -> Reservation {
        live.coming.fetch_add(bytes, Ordering::SeqCst);
        Reservation { live, bytes }
    }

    /// `bytes` more arrived.
    fn arrived(&mut self, bytes: u64) {
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

/// A sync that commits running at once share: while one sync runs, the commits that arrive
/// wait for the next one, and that one covers them all. A commit asks only after its own write,
/// so the sync that answers it started after the write.
#[derive(Debug, Default)]
struct GroupSync {
    state: Mutex<GroupState>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct GroupState {
    /// Requests so far; each caller's ticket is the count when it asked.
    asked: u64,
    /// Every ticket up to this one is covered by a finished sync.
    synced: u64,
    running: bool,
}

impl GroupSync {
    /// Returns once a call of `sync` that started after this call began has succeeded.
    fn sync(&self, sync: impl Fn() -> io::Result<()>) -> io::Result<()> {
        let lock = || self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut state = lock();
        state.asked += 1;
        let ticket = state.asked;
        while state.synced < ticket {
            if state.running {
                state = self.done.wait(state).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.running = true;
            let covered = state.asked;
            drop(state);
            let result = sync();
            state = lock();
            state.running = false;
            if result.is_ok() {
                state.synced = covered;
            }
            self.done.notify_all();
            result?;
        }
        Ok(())
    }
}

/// Manifests already read, by share code, with how many of the file's bytes they hold. A
/// manifest only ever grows, so the bytes read stay what they were, also when another server on
/// the same root appended after them: only what follows needs reading.
#[derive(Debug, Default)]
struct ManifestCache(Mutex<HashMap<String, (u64, Arc<Manifest>)>>);

/// Most manifests kept in memory; past it the cache starts over.
const MANIFEST_CACHE_SHARES: usize = 256;
/// Most records kept in memory over all cached manifests; past it the cache starts over.
const MANIFEST_CACHE_RECORDS: usize = 200_000;

/// This server's own temporary folder, locked for as long as the server runs.
#[derive(Debug)]
struct Instance {
    dir: PathBuf,
    _lock: File,
}

/// What `meta` records about a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareMeta {
    pub created: i64,
    pub expires: i64,
    pub sealed: bool,
    /// SHA-256 of the owner token; the token itself is never stored.
    pub owner: Sha256Digest,
    /// How many times each file may be downloaded completely; `None` is no limit.
    pub downloads: Option<u64>,
}

/// A share that exists and has not expired, as of the moment it was opened.
#[derive(Debug, Clone)]
pub struct Share {
    pub code: ShareCode,
    pub meta: ShareMeta,
    dir: PathBuf,
    store: Store,
}

/// A finished file, as its manifest record describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Components of the path inside the share.
    pub path: Vec<String>,
    pub size: u64,
    pub sha256: Sha256Digest,
    /// Unix seconds when the file was stored.
    pub modified: i64,
    place: Place,
}

/// Where a file's contents are.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// A file of its own under `blobs/`, by name.
    Blob(String),
    /// The file's bytes in the share's `pack`, from this offset.
    Packed(u64),
}

impl Place {
    /// Reads the manifest's form back.
    fn parse(field: &str) -> Place {
        match field.strip_prefix('@').map(str::parse) {
            Some(Ok(offset)) => Place::Packed(offset),
            _ => Place::Blob(field.to_owned()),
        }
    }
}

impl fmt::Display for Place {
    /// The manifest's form, which also names the file in the downloads ledger: the blob's name,
    /// or `@<offset>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Blob(name) => f.write_str(name),
            Place::Packed(offset) => write!(f, "@{offset}"),
        }
    }
}

impl FileEntry {
    /// The path inside the share, `/`-separated.
    pub fn path_text(&self) -> String {
        self.path.join("/")
    }
}

/// Everything a share holds: its files and folders.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    files: BTreeMap<Vec<String>, FileEntry>,
    folders: BTreeMap<Vec<String>, i64>,
}

/// One entry directly inside a folder of a share, as [`Manifest::children`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub name: String,
    pub is_dir: bool,
    /// 0 for a folder.
    pub size: u64,
    /// Unix seconds when the file was stored, or the folder recorded.
    pub modified: i64,
    /// `None` for a folder.
    pub sha256: Option<Sha256Digest>,
}

/// What a path inside a share names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node<'a> {
    File(&'a FileEntry),
    Folder,
}

impl Store {
    /// Opens (creating if needed) the store at `root`, takes a temporary folder of its own, and
    /// removes what crashed servers left behind.
    pub fn open(root: impl Into<PathBuf>, limits: Limits) -> Result<Store> {
        let root = root.into();
        let tmp = root.join("tmp");
        fs::create_dir_all(root.join("shares"))?;
        fs::create_dir_all(&tmp)?;
        clean_dead_instances(&tmp)?;
        let id = ShareCode::generate()?;
        let staging = tmp.join(format!("{id}.new"));
        fs::create_dir(&staging)?;
        let lock = File::create(staging.join("lock"))?;
        lock.lock()?;
        fs::create_dir(staging.join("trash"))?;
        let dir = tmp.join(id.as_str());
        fs::rename(&staging, &dir)?;
        let instance = Arc::new(Instance { dir, _lock: lock });
        Ok(Store { root, limits, instance, manifests: Arc::default(), live: Arc::default() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn shares_dir(&self) -> PathBuf {
        self.root.join("shares")
    }

    /// Creates an empty, unsealed share that expires at `expires` (Unix seconds), whose files
    /// may each be downloaded completely `downloads` times (`None`: without limit).
    pub fn create_share(&self, expires: i64, downloads: Option<u64>) -> Result<(Share, OwnerToken)> {
        let code = ShareCode::generate()?;
        let token = OwnerToken::generate()?;
        let meta = ShareMeta {
            created: unix_now(),
            expires,
            sealed: false,
            owner: Sha256Digest::of(token.as_str().as_bytes()),
            downloads,
        };
        // Build the share aside and rename it in whole, so a share is never half-made.
        let staging = self.instance.dir.join(format!("{code}.new"));
        fs::create_dir(&staging)?;
        fs::create_dir(staging.join("blobs"))?;
        File::create(staging.join("pack"))?.sync_all()?;
        File::create(staging.join("manifest"))?.sync_all()?;
        File::create(staging.join("lock"))?;
        write_meta(&staging, &meta)?;
        sync_dir(&staging)?;
        let dir = self.shares_dir().join(code.as_str());
        fs::rename(&staging, &dir)?;
        sync_dir(&self.shares_dir())?;
        let share = Share { code, meta, dir, store: self.clone() };
        Ok((share, token))
    }

    /// Opens the share named `code` if it exists and has not expired at `now`.
    pub fn share(&self, code: &str, now: i64) -> Result<Share> {
        let code: ShareCode = code.parse().map_err(|_| StoreError::NotFound)?;
        let dir = self.shares_dir().join(code.as_str());
        if !is_plain_dir(&dir) {
            return Err(StoreError::NotFound);
        }
        let meta = match read_meta(&dir) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(StoreError::NotFound),
            Err(err) => return Err(err.into()),
        };
        // A share whose every file was downloaded as often as allowed is gone, like an expired one.
        if meta.expires <= now || self.is_spent(code.as_str(), &meta) {
            return Err(StoreError::NotFound);
        }
        Ok(Share { code, meta, dir, store: self.clone() })
    }

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

    /// Whether a sealed share with a download budget has had all its files downloaded up to it.
    fn is_spent(&self, name: &str, meta: &ShareMeta) -> bool {
        let (Some(budget), true, Ok(code)) = (meta.downloads, meta.sealed, name.parse::<ShareCode>()) else {
            return false;
        };
        let dir = self.shares_dir().join(name);
        let share = Share { code, meta: meta.clone(), dir, store: self.clone() };
        match (share.read_records(), share.finished_downloads()) {
            (Ok(records), Ok(finished)) => records.files.values().all(|f| finished.of(&f.place) >= budget),
            _ => false,
        }
    }

    /// Deletes share `code` at once, when `token` is its owner token. A wrong token gets the same
    /// answer as a missing share. Downloads in flight finish from the files they opened.
    pub fn delete_share(&self, code: &str, token: &str) -> Result<()> {
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
fn clean_dead_instances(tmp: &Path) -> io::Result<()> {
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

/// A real folder, not a symbolic link to one.
fn is_plain_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

fn remove_any(path: &Path) -> io::Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(err) => Err(err),
    };
    match result {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn write_meta(dir: &Path, meta: &ShareMeta) -> io::Result<()> {
    let mut text = format!(
        "created {}\nexpires {}\nsealed {}\nowner {}\n",
        meta.created, meta.expires, meta.sealed as u8, meta.owner
    );
    if let Some(downloads) = meta.downloads {
        text.push_str(&format!("downloads {downloads}\n"));
    }
    let tmp = dir.join("meta.tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join("meta"))?;
    sync_dir(dir)
}

fn read_meta(dir: &Path) -> io::Result<ShareMeta> {
    let text = fs::read_to_string(dir.join("meta"))?;
    let invalid = || io::Error::new(io::ErrorKind::InvalidData, format!("corrupt meta in {}", dir.display()));
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let (key, value) = line.split_once(' ').ok_or_else(invalid)?;
        fields.insert(key, value);
    }
    let field = |key: &str| fields.get(key).copied().ok_or_else(invalid);
    Ok(ShareMeta {
        created: field("created")?.parse().map_err(|_| invalid())?,
        expires: field("expires")?.parse().map_err(|_| invalid())?,
        sealed: field("sealed")? == "1",
        owner: field("owner")?.parse().map_err(|_| invalid())?,
        downloads: match fields.get("downloads") {
            Some(value) => Some(value.parse().map_err(|_| invalid())?),
            None => None,
        },
    })
}

impl Share {
    /// Whether `token` is this share's owner token.
    pub fn is_owner(&self, token: &str) -> bool {
        Sha256Digest::of(token.as_bytes()) == self.meta.owner
    }

    /// What a reader sees: every finished file and folder, except files whose download budget
    /// is used up, which answer like files that never existed.
    pub fn manifest(&self) -> Result<Arc<Manifest>> {
        let records = self.read_records()?;
        let Some(budget) = self.meta.downloads else {
            return Ok(records);
        };
        let finished = self.finished_downloads()?;
        let mut manifest = Manifest::clone(&records);
        manifest.files.retain(|_, file| finished.of(&file.place) < budget);
        Ok(Arc::new(manifest))
    }

    /// Every record of the manifest, spent files included. The manifest only grows, so only
    /// the records after the ones already read are read and parsed, in place unless a reader
    /// still holds the older version.
    fn read_records(&self) -> Result<Arc<Manifest>> {
        let path = self.dir.join("manifest");
        let len = fs::metadata(&path)?.len();
        let mut cache = self.store.manifests.0.lock().unwrap_or_else(PoisonError::into_inner);
        let records: usize = cache.values().map(|(_, manifest)| manifest.entries()).sum();
        if !cache.contains_key(self.code.as_str())
            && (cache.len() >= MANIFEST_CACHE_SHARES || records >= MANIFEST_CACHE_RECORDS)
        {
            cache.clear();
        }
        let (read, manifest) = cache.entry(self.code.to_string()).or_default();
        if *read > len {
            *read = 0;
            *manifest = Arc::default();
        }
        if *read == len {
            return Ok(manifest.clone());
        }
        let mut file = File::open(&path)?;
        file.seek(SeekFrom::Start(*read))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        // Only whole lines count: a torn last record is cut off by the next append.
        if let Some(end) = bytes.iter().rposition(|&b| b == b'\n') {
            let records = Arc::make_mut(manifest);
            for record in whole_lines(&bytes[..=end]) {
                records.apply(record);
            }
            *read += end as u64 + 1;
        }
        Ok(manifest.clone())
    }

    /// What this server keeps of this share while uploads to it run, shared by all of them.
    fn live(&self) -> Arc<LiveShare> {
        let mut live = self.store.live.lock().unwrap_or_else(PoisonError::into_inner);
        if live.len() >= MANIFEST_CACHE_SHARES && !live.contains_key(self.code.as_str()) {
            // Only shares with uploads in flight need theirs; the others start over.
            live.retain(|_, share| Arc::strong_count(share) > 1);
        }
        live.entry(self.code.to_string()).or_default().clone()
    }

    /// Finished downloads of budgeted files, by blob.
    fn finished_downloads(&self) -> Result<Finished> {
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

    /// How many more complete downloads `entry` allows; `None` when the share has no budget.
    pub fn downloads_left(&self, entry: &FileEntry) -> Result<Option<u64>> {
        let Some(budget) = self.meta.downloads else {
            return Ok(None);
        };
        let finished = self.finished_downloads()?.of(&entry.place);
        Ok(Some(budget.saturating_sub(finished)))
    }

    /// Opens a finished file for reading: the file that holds its bytes, and the offset of its
    /// first byte in it. A blob or pack that is not a plain file (a planted symbolic link, say)
    /// is treated as missing.
    pub fn open_file(&self, entry: &FileEntry) -> Result<(File, u64)> {
        let (path, offset) = match &entry.place {
            Place::Blob(name) => (self.dir.join("blobs").join(name), 0),
            Place::Packed(offset) => (self.dir.join("pack"), *offset),
        };
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return Err(StoreError::NotFound),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(StoreError::NotFound),
            Err(err) => return Err(err.into()),
        }
        let file = File::open(path).map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound,
            _ => StoreError::Io(err),
        })?;
        Ok((file, offset))
    }

    /// Deletes a file's contents: its blob, or its bytes in the pack, which become a hole.
    fn delete_contents(&self, entry: &FileEntry) -> Result<()> {
        match &entry.place {
            Place::Blob(name) => Ok(remove_any(&self.dir.join("blobs").join(name))?),
            Place::Packed(offset) => {
                let pack = OpenOptions::new().write(true).open(self.dir.join("pack"))?;
                Ok(punch_hole(&pack, *offset, entry.size)?)
            }
        }
    }

    /// Appends `bytes` to the pack, under the share's lock, once `check` passed; returns the
    /// pack and the offset the bytes start at. The pack is not synced here.
    fn append_to_pack(&self, bytes: &[u8], check: impl FnOnce() -> Result<()>) -> Result<(File, u64)> {
        let _lock = self.lock()?;
        check()?;
        let path = self.dir.join("pack");
        let made = !path.exists();
        let mut pack = OpenOptions::new().append(true).create(true).open(&path)?;
        if made {
            // A share made before packs existed: its new pack must be durable under its name.
            sync_dir(&self.dir)?;
        }
        let offset = pack.metadata()?.len();
        pack.write_all(bytes)?;
        Ok((pack, offset))
    }

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

    /// Takes the share's lock: held while meta, manifest, partial uploads or download counts
    /// change; released when dropped.
    fn lock(&self) -> Result<File> {
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(self.dir.join("lock"))?;
        lock.lock()?;
        Ok(lock)
    }

    fn ensure_writable(&self) -> Result<()> {
        let meta = read_meta(&self.dir)?;
        if meta.sealed {
            return Err(StoreError::Sealed);
        }
        if meta.expires <= unix_now() {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Checks that `rel` can be created: a valid name whose parents are not files.
    fn check_new_path(&self, rel: &[String], manifest: &Manifest) -> Result<()> {
        self.store.limits.check_path(rel)?;
        if rel.is_empty() {
            return Err(StoreError::Exists);
        }
        for depth in 1..rel.len() {
            if manifest.files.contains_key(&rel[..depth]) {
                return Err(StoreError::NotAFolder);
            }
        }
        Ok(())
    }

    /// Records a folder (MKD). Parents are implied.
    pub fn make_folder(&self, rel: &[String]) -> Result<()> {
        let _lock = self.lock()?;
        self.ensure_writable()?;
        let manifest = self.read_records()?;
        self.check_new_path(rel, &manifest)?;
        if manifest.lookup(rel).is_some() {
            return Err(StoreError::Exists);
        }
        if manifest.entries() >= self.store.limits.max_files_per_share {
            return Err(StoreError::TooManyFiles(self.store.limits.max_files_per_share));
        }
        let manifest =
            append_line(&self.dir.join("manifest"), &format!("D\t{}\t{}", unix_now(), rel.join("/")))?;
        Ok(manifest.sync_data()?)
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
        let path = self.partial_path(rel);
        let limits = self.store.limits;
        let (partials, partial_bytes) = self.partial_totals(&path)?;
        if manifest.entries() + partials >= limits.max_files_per_share {
            return Err(StoreError::TooManyFiles(limits.max_files_per_share));
        }
        let live = self.live();
        let taken = manifest.totals().1 + partial_bytes + live.coming.load(Ordering::SeqCst);
        let share_room = limits.max_share_size.saturating_sub(taken);
        let room = if share_room < limits.max_file_size {
            (share_room, ("the share", limits.max_share_size))
        } else {
            (limits.max_file_size, ("the file", limits.max_file_size))
        };
        let packed = start == Start::Fresh
            && expected.size.is_some_and(|size| size <= PACK_MAX_BYTES)
            // A budgeted file's bytes go once its last download is counted, which can be before
            // sendfile has sent them all: such a file gets a blob, whose pages outlive its name.
            && self.meta.downloads.is_none()
            // A plain STOR starts a kept upload over, under that upload's lock.
            && !path.exists();
        if packed {
            let receiving = Receiving::claim(&live, rel)?;
            let reservation = Reservation::new(live, expected.size.unwrap_or(0));
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
        let reservation = Reservation::new(live, expected.size.unwrap_or(0).saturating_sub(kept));
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
        let sink = Sink::Partial { file, path, flusher: None };
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
            next_space_check: 0,
            reservation,
        };
        upload.check_free_space(0)?;
        Ok(upload)
    }

    /// Seals the share: from now on it is read-only for everyone, and uploads kept for
    /// resuming are deleted.
    pub fn seal(&mut self) -> Result<()> {
        let _lock = self.lock()?;
        let mut meta = read_meta(&self.dir)?;
        meta.sealed = true;
        write_meta(&self.dir, &meta)?;
        self.meta = meta;
        remove_any(&self.dir.join("partial"))?;
        Ok(())
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

/// What the uploader said the file will be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expected {
    /// SHA-256 of the whole file (`SITE DIGEST`).
    pub sha256: Option<Sha256Digest>,
    /// Size of the whole file (`ALLO`): fewer bytes mean the upload was cut.
    pub size: Option<u64>,
}

/// Finished downloads of a share's budgeted files, by where their contents are.
struct Finished(BTreeMap<String, u64>);

impl Finished {
    /// How many times the file stored at `place` was downloaded completely.
    fn of(&self, place: &Place) -> u64 {
        self.0.get(&place.to_string()).copied().unwrap_or(0)
    }
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
    /// contents from disk.
    pub fn finish(self) -> Result<()> {
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

/// The complete lines of an append-only file's bytes; a last line without its newline was torn
/// by a crash and does not count.
fn whole_lines(bytes: &[u8]) -> impl Iterator<Item = &str> {
    let whole = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => &bytes[..end],
        None => &[][..],
    };
    whole
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .filter_map(|line| std::str::from_utf8(line).ok())
}

/// Appends one line to an append-only file; the caller holds the share's lock and syncs the
/// file when the line must be durable. A torn tail left by a crash is closed off first so it
/// cannot swallow the new line.
fn append_line(path: &Path, line: &str) -> Result<File> {
    let mut file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
    let len = file.metadata()?.len();
    let mut last = [b'\n'];
    if len > 0 {
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
    }
    if last != [b'\n'] {
        // A torn last line is cut off, not closed off: closed, a record torn inside its path
        // would name a file at a shorter path.
        let tail = len.saturating_sub(TORN_TAIL_SEARCH);
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(tail))?;
        file.read_to_end(&mut bytes)?;
        if bytes.last() != Some(&b'\n') {
            let whole = match bytes.iter().rposition(|&b| b == b'\n') {
                Some(end) => tail + end as u64 + 1,
                None if tail == 0 => 0,
                None => {
                    return Err(StoreError::Io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "torn line too long",
                    )));
                }
            };
            file.set_len(whole)?;
        }
    }
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    file.write_all(text.as_bytes())?;
    Ok(file)
}

/// How far back from the end a torn last line is looked for: longer than any record.
const TORN_TAIL_SEARCH: u64 = 64 * 1024;

impl Manifest {
    /// Applies one record; malformed ones are skipped.
    fn apply(&mut self, record: &str) {
        let fields: Vec<&str> = record.split('\t').collect();
        match fields.as_slice() {
            ["F", sha256, size, modified, blob, path] => {
                let (Ok(sha256), Ok(size), Ok(modified)) = (sha256.parse(), size.parse(), modified.parse())
                else {
                    return;
                };
                let path: Vec<String> = path.split('/').map(str::to_owned).collect();
                self.add_parents(&path, modified);
                let place = Place::parse(blob);
                self.files.insert(path.clone(), FileEntry { path, size, sha256, modified, place });
            }
            ["D", modified, path] => {
                let Ok(modified) = modified.parse() else {
                    return;
                };
                let path: Vec<String> = path.split('/').map(str::to_owned).collect();
                self.add_parents(&path, modified);
                self.folders.insert(path, modified);
            }
            _ => {}
        }
    }

    fn add_parents(&mut self, path: &[String], modified: i64) {
        for depth in 1..path.len() {
            self.folders.entry(path[..depth].to_vec()).or_insert(modified);
        }
    }

    /// What `rel` names; the empty path is the share's own folder.
    pub fn lookup(&self, rel: &[String]) -> Option<Node<'_>> {
        if rel.is_empty() || self.folders.contains_key(rel) {
            return Some(Node::Folder);
        }
        self.files.get(rel).map(Node::File)
    }

    /// Every file, in path order.
    pub fn files(&self) -> impl Iterator<Item = &FileEntry> {
        self.files.values()
    }

    /// The entries directly inside the folder `rel`, sorted by name.
    pub fn children(&self, rel: &[String]) -> Vec<Child> {
        let is_child = |path: &[String]| path.len() == rel.len() + 1 && path.starts_with(rel);
        let mut names = BTreeSet::new();
        let mut entries = Vec::new();
        for (path, modified) in &self.folders {
            if is_child(path) && names.insert(path[rel.len()].clone()) {
                entries.push(Child {
                    name: path[rel.len()].clone(),
                    is_dir: true,
                    size: 0,
                    modified: *modified,
                    sha256: None,
                });
            }
        }
        for (path, file) in &self.files {
            if is_child(path) && names.insert(path[rel.len()].clone()) {
                entries.push(Child {
                    name: path[rel.len()].clone(),
                    is_dir: false,
                    size: file.size,
                    modified: file.modified,
                    sha256: Some(file.sha256),
                });
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries
    }

    /// Files and folders recorded, which `--max-files-per-share` bounds.
    pub fn entries(&self) -> usize {
        self.files.len() + self.folders.len()
    }

    /// Number of files and their total size.
    pub fn totals(&self) -> (usize, u64) {
        (self.files.len(), self.files.values().map(|f| f.size).sum())
    }
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
    hasher: Hasher,
    /// The byte this upload started at; earlier bytes were kept from a cut upload.
    offset: u64,
    /// Bytes this file may have before a limit is crossed.
    allowance: u64,
    /// What the allowance protects, and that limit, for the error.
    limit: (&'static str, u64),
    /// When `received` passes this, free disk space is checked again.
    next_space_check: u64,
    reservation: Reservation,
}

/// Where an upload's bytes go while they arrive.
enum Sink {
    /// A file under `partial/`, locked while the upload lives and kept for a resume if it is cut.
    Partial {
        file: File,
        path: PathBuf,
        /// Writes a large upload's bytes to disk while more arrive, so the sync before its
        /// `226` has little left to do.
        flusher: Option<Flusher>,
    },
    /// A small file, held until it is appended to the pack. A cut loses it; sending it again
    /// costs little.
    Memory { bytes: Vec<u8>, _receiving: Receiving },
    /// Committed or discarded.
    Done,
}

/// A thread that syncs an upload's file each time it is asked, while the upload goes on.
struct Flusher {
    ask: mpsc::SyncSender<()>,
    thread: thread::JoinHandle<()>,
}

impl Flusher {
    fn start(file: &File) -> io::Result<Flusher> {
        let file = file.try_clone()?;
        let (ask, asked) = mpsc::sync_channel::<()>(1);
        let thread = thread::Builder::new().name("flusher".into()).spawn(move || {
            while asked.recv().is_ok() {
                let _ = file.sync_data();
            }
        })?;
        Ok(Flusher { ask, thread })
    }

    /// Asks for a sync, unless one is already waiting to start.
    fn flush(&self) {
        let _ = self.ask.try_send(());
    }

    /// Waits for the sync under way, if any.
    fn stop(self) {
        drop(self.ask);
        let _ = self.thread.join();
    }
}

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

    /// Whether fewer bytes came than the uploader announced: the upload was cut.
    pub fn is_short(&self) -> bool {
        self.size.is_some_and(|size| self.received() < size)
    }

    fn check_free_space(&mut self, incoming: u64) -> Result<()> {
        if self.received() + incoming < self.next_space_check {
            return Ok(());
        }
        let limits = self.share.store.limits;
        if let Some(free) = (limits.free_space)(&self.share.dir)
            && free.saturating_sub(incoming.max(1)) < limits.min_free_disk
        {
            return Err(StoreError::DiskFull { floor: limits.min_free_disk });
        }
        self.next_space_check = self.received() + FREE_SPACE_CHECK_BYTES;
        Ok(())
    }

    /// Takes the next bytes of the file.
    pub fn write_chunk(&mut self, bytes: &[u8]) -> Result<()> {
        let incoming = bytes.len() as u64;
        if self.received() + incoming > self.allowance {
            let (what, limit) = self.limit;
            return Err(StoreError::TooLarge { what, limit });
        }
        self.check_free_space(incoming)?;
        let before = self.received();
        match &mut self.sink {
            Sink::Partial { file, flusher, .. } => {
                file.write_all(bytes)?;
                if (before + incoming) / FLUSH_BYTES != before / FLUSH_BYTES {
                    if flusher.is_none() {
                        *flusher = Some(Flusher::start(file)?);
                    }
                    flusher.as_ref().expect("flusher just started").flush();
                }
            }
            // Held bytes are on no disk yet: their reservation stays until the upload ends.
            Sink::Memory { bytes: held, .. } => held.extend_from_slice(bytes),
            Sink::Done => panic!("upload not committed"),
        }
        if let Sink::Partial { .. } = self.sink {
            self.reservation.arrived(incoming);
        }
        self.hasher.update(bytes);
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
        let sha256 = self.hasher.clone().finish();
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
            // Another upload of this path may have been recorded since the contents were stored.
            self.check_room_to_commit().and_then(|()| append_line(&manifest, &record))
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
        let Sink::Partial { file, path, flusher } = &mut self.sink else { panic!("a partial file") };
        if let Some(flusher) = flusher.take() {
            flusher.stop();
        }
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
        let (pack, offset) = self.share.append_to_pack(bytes, || self.check_room_to_commit())?;
        syncs.pack.sync(|| pack.sync_data())?;
        Ok(Place::Packed(offset))
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
        if let Sink::Partial { path, .. } = &self.sink {
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
        if let Sink::Partial { file, flusher, .. } = &mut self.sink {
            if let Some(flusher) = flusher.take() {
                flusher.stop();
            }
            let _ = file.sync_data();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    struct TempRoot(PathBuf);

    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn temp_root() -> TempRoot {
        TempRoot(std::env::temp_dir().join(format!("anonshare-store-{}", ShareCode::generate().unwrap())))
    }

    fn temp_store(limits: Limits) -> (Store, TempRoot) {
        let root = temp_root();
        (Store::open(&root.0, limits).unwrap(), root)
    }

    fn rel(path: &str) -> Vec<String> {
        path.split('/').map(str::to_owned).collect()
    }

    /// Uploads `bytes` to a blob of its own: without a size announced, nothing is packed.
    fn upload(share: &Share, path: &str, bytes: &[u8]) -> Result<FileEntry> {
        upload_as(share, path, bytes, None)
    }

    /// Uploads `bytes` with their size announced, as `ALLO` does: a small file goes to the pack.
    fn upload_announced(share: &Share, path: &str, bytes: &[u8]) -> Result<FileEntry> {
        upload_as(share, path, bytes, Some(bytes.len() as u64))
    }

    fn upload_as(share: &Share, path: &str, bytes: &[u8], size: Option<u64>) -> Result<FileEntry> {
        let expected = Expected { sha256: Some(Sha256Digest::of(bytes)), size };
        let mut upload = share.begin_upload(&rel(path), expected, Start::Fresh)?;
        upload.write_chunk(bytes)?;
        upload.commit()
    }

    /// The bytes the store keeps for `entry`, read from where they are.
    fn stored_bytes(share: &Share, entry: &FileEntry) -> Vec<u8> {
        let (file, start) = share.open_file(entry).unwrap();
        let mut bytes = Vec::new();
        (&file).seek(SeekFrom::Start(start)).unwrap();
        (&file).take(entry.size).read_to_end(&mut bytes).unwrap();
        bytes
    }

    /// Uploads kept in the share's partial folder.
    fn leftovers(share: &Share) -> usize {
        fs::read_dir(share.dir.join("partial")).map_or(0, |entries| entries.count())
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
        assert_eq!((&one.place, &two.place), (&Place::Packed(0), &Place::Packed(3)));
        assert!(matches!(big.place, Place::Blob(_)) && matches!(unannounced.place, Place::Blob(_)));
        assert_eq!(fs::read_dir(share.dir.join("blobs")).unwrap().count(), 2);
        // Read back through a fresh parse of the manifest, not the cached one.
        store.manifests.0.lock().unwrap().clear();
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
        assert!(store.sweep(unix_now()).unwrap().is_empty(), "g and h have downloads left");
        for entry in [&small, &empty] {
            for _ in 0..2 {
                share.reserve_download(entry).unwrap().unwrap().finish().unwrap();
            }
        }
        assert_eq!(store.sweep(unix_now()).unwrap(), vec![share.code.to_string()], "a spent share is swept");
    }

    #[test]
    fn deleting_needs_the_owner_token() {
        let (store, _root) = temp_store(Limits::default());
        let (share, token) = store.create_share(unix_now() + 60, None).unwrap();
        let code = share.code.to_string();
        assert!(matches!(store.delete_share(&code, "wrong"), Err(StoreError::NotFound)));
        store.delete_share(&code, token.as_str()).unwrap();
        assert!(matches!(store.share(&code, unix_now()), Err(StoreError::NotFound)));
        assert!(matches!(store.delete_share(&code, token.as_str()), Err(StoreError::NotFound)));
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
        assert_eq!(share.manifest().unwrap().totals(), (2, 6));
    }

    #[test]
    fn sealed_shares_take_no_files() {
        let (store, _root) = temp_store(Limits::default());
        let (mut share, token) = store.create_share(unix_now() + 60, None).unwrap();
        assert!(share.is_owner(token.as_str()));
        assert!(!share.is_owner("someone else"));
        upload(&share, "a", b"1").unwrap();
        let mut late = share.begin_upload(&rel("late"), Expected::default(), Start::Fresh).unwrap();
        late.write_chunk(b"late").unwrap();
        share.seal().unwrap();
        assert!(matches!(late.commit(), Err(StoreError::Sealed)), "sealing wins over an upload in flight");
        assert!(matches!(upload(&share, "b", b"2"), Err(StoreError::Sealed)));
        let reopened = store.share(share.code.as_str(), unix_now()).unwrap();
        assert!(reopened.meta.sealed);
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

    #[test]
    fn expired_shares_are_not_found_and_swept() {
        let (store, root) = temp_store(Limits::default());
        let now = unix_now();
        let (share, _) = store.create_share(now + 10, None).unwrap();
        upload(&share, "a", b"1").unwrap();
        let code = share.code.to_string();
        assert!(store.share(&code, now).is_ok());
        assert!(matches!(store.share(&code, now + 10), Err(StoreError::NotFound)));
        assert!(store.sweep(now).unwrap().is_empty());
        assert_eq!(store.sweep(now + 10).unwrap(), vec![code.clone()]);
        assert!(!root.0.join("shares").join(&code).exists());
        assert_eq!(fs::read_dir(store.instance.dir.join("trash")).unwrap().count(), 0);
    }

    #[test]
    fn malformed_codes_are_not_found_without_touching_the_disk() {
        let (store, _root) = temp_store(Limits::default());
        for code in ["..", "../tmp", "", "shares"] {
            assert!(matches!(store.share(code, 0), Err(StoreError::NotFound)), "{code}");
        }
    }

    #[test]
    fn capital_letters_name_the_same_share() {
        let (store, _root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        assert!(store.share(&share.code.as_str().to_ascii_uppercase(), unix_now()).is_ok());
    }

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
        for planted in [share.dir.join("blobs").join(blob), share.dir.join("pack")] {
            fs::remove_file(&planted).unwrap();
            std::os::unix::fs::symlink(&outside, &planted).unwrap();
        }
        assert!(matches!(share.open_file(&entry), Err(StoreError::NotFound)));
        assert!(matches!(share.open_file(&packed), Err(StoreError::NotFound)));
        // A share folder that is a link is no share.
        let (other, _) = store.create_share(unix_now() + 60, None).unwrap();
        let fake = root.0.join("shares").join("abcdefghijklmnopqrstuvwxyz");
        std::os::unix::fs::symlink(&other.dir, &fake).unwrap();
        assert!(matches!(store.share("abcdefghijklmnopqrstuvwxyz", unix_now()), Err(StoreError::NotFound)));
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

    #[test]
    fn a_cached_manifest_sees_what_another_server_added() {
        let root = temp_root();
        let first = Store::open(&root.0, Limits::default()).unwrap();
        let second = Store::open(&root.0, Limits::default()).unwrap();
        let (share, _) = first.create_share(unix_now() + 60, None).unwrap();
        upload(&share, "a", b"1").unwrap();
        assert_eq!(share.manifest().unwrap().totals(), (1, 1));
        let again = share.manifest().unwrap();
        assert!(Arc::ptr_eq(&again, &share.manifest().unwrap()), "unchanged: read once");
        let through_second = second.share(share.code.as_str(), unix_now()).unwrap();
        upload(&through_second, "b", b"22").unwrap();
        assert_eq!(share.manifest().unwrap().totals(), (2, 3), "grown: read again");
    }

    #[test]
    fn a_group_sync_covers_every_write_made_before_it_was_asked() {
        let group = GroupSync::default();
        let written = AtomicU64::new(0);
        let durable = AtomicU64::new(0);
        let syncs = AtomicU64::new(0);
        thread::scope(|scope| {
            for _ in 0..16 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        let mine = written.fetch_add(1, Ordering::SeqCst) + 1;
                        group
                            .sync(|| {
                                syncs.fetch_add(1, Ordering::SeqCst);
                                durable.fetch_max(written.load(Ordering::SeqCst), Ordering::SeqCst);
                                Ok(())
                            })
                            .unwrap();
                        assert!(durable.load(Ordering::SeqCst) >= mine, "write {mine} was not covered");
                    }
                });
            }
        });
        assert!(syncs.load(Ordering::SeqCst) <= 16 * 50);
        // A failed sync is reported to the caller that ran it, and the next caller runs its own.
        assert!(group.sync(|| Err(io::ErrorKind::Other.into())).is_err());
        assert!(group.sync(|| Ok(())).is_ok());
    }

    #[test]
    fn a_torn_manifest_record_is_ignored() {
        let (store, _root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        upload(&share, "a", b"1").unwrap();
        let mut manifest = OpenOptions::new().append(true).open(share.dir.join("manifest")).unwrap();
        manifest.write_all(b"F\tdeadbeef").unwrap();
        assert_eq!(share.manifest().unwrap().totals(), (1, 1));
        upload(&share, "b", b"22").unwrap();
        assert_eq!(share.manifest().unwrap().totals(), (2, 3));
        // A record torn inside its path is cut off, never read as a file at a shorter path.
        let sha = Sha256Digest::of(b"x");
        manifest.write_all(format!("F\t{sha}\t1\t0\tblob\tdocs/no").as_bytes()).unwrap();
        upload(&share, "c", b"333").unwrap();
        let records = share.manifest().unwrap();
        assert_eq!(records.totals(), (3, 6));
        assert!(records.lookup(&rel("docs/no")).is_none() && records.lookup(&rel("docs")).is_none());
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
            matches!(pending.sink, Sink::Partial { flusher: Some(_), .. }),
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
        assert_eq!(manifest.totals(), (1, 5));
    }

    #[test]
    fn files_and_folders_do_not_collide() {
        let (store, _root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        upload(&share, "f", b"1").unwrap();
        assert!(matches!(upload(&share, "f/g", b"2"), Err(StoreError::NotAFolder)));
        share.make_folder(&rel("d")).unwrap();
        assert!(matches!(share.make_folder(&rel("d")), Err(StoreError::Exists)));
        assert!(matches!(upload(&share, "d", b"3"), Err(StoreError::IsAFolder)));
        let children = share.manifest().unwrap().children(&[]);
        let names: Vec<_> = children.iter().map(|e| (e.name.as_str(), e.is_dir)).collect();
        assert_eq!(names, [("d", true), ("f", false)]);
    }
}
