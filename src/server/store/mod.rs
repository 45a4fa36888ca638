//! The on-disk store of shares. Knows nothing of sockets or FTP: it creates shares, takes file
//! uploads through [`Upload`], lists what a share holds, and sweeps expired shares away.
//!
//! Layout under the root:
//!
//! ```text
//! shares/<code>/meta        expiry, sealed flag, owner token digest (replaced atomically)
//! shares/<code>/manifest    one record per finished file or folder (append-only)
//! shares/<code>/lock        held while the share's meta or manifest changes
//! shares/<code>/claims/     one name per recorded path, created exclusively: a hard link
//!                           to the share's empty `claims/anchor`
//! shares/<code>/sealed      created by the seal, before meta says so
//! shares/<code>/blobs/<id>  file contents under random names; names live in the manifest
//! shares/<code>/pack.<instance>  small files' contents, appended one after another by the one
//!                           server `instance` (append-only); `pack` in older stores
//! shares/<code>/partial/    uploads in progress or cut, kept for resuming until the seal;
//!                           named by the SHA-256 of their path, locked while written
//! shares/<code>/budget/     download budgets in names created exclusively, never changed:
//!                           per budgeted file its claims (one per client), the ranges each was
//!                           sent, and the finished and released ones, numbered without gaps;
//!                           a spent file's mark, and the share's spent count (`spent.<j>`)
//! shares/<code>/downloads, reading/  finished downloads counted by older servers (read only)
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
//!
//! Each part keeps one rule: `meta` is only replaced whole; `manifest` is only appended to;
//! `contents` never changes a stored file's bytes; `upload` keeps bytes unseen until their
//! commit; `live` keeps uploads in flight from outgrowing a share together; `ledger` never lets
//! downloads pass a budget; `spent` never counts a file spent twice; `view` never copies the
//! records a reader sees; `sync` makes written bytes durable and decides nothing; `sweep`
//! removes shares only whole, and only dead servers' folders.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::digest::Sha256Digest;
use crate::common::names::{BadName, NameRules};
use crate::common::platform::{free_space, sync_dir};
use crate::common::secret::{OwnerToken, ShareCode};

mod claims;
mod contents;
mod direct;
mod ledger;
mod live;
mod manifest;
mod meta;
mod spent;
mod sweep;
mod sync;
#[cfg(test)]
mod test_support;
mod upload;
mod view;

pub use crate::common::names::{MAX_NAME_BYTES, MAX_PATH_BYTES, MAX_PATH_DEPTH};
pub use contents::{KeptPack, PACK_MAX_BYTES};
pub use ledger::{
    COUNTED_TAIL_BYTES, DEFAULT_CLAIM_HOLD, DEFAULT_MAX_CLAIM_SEGMENTS, DEFAULT_MAX_COUNTER_HINTS,
    DEFAULT_MAX_OPEN_BUDGET_LOCKS, DEFAULT_RESERVE_BELOW, DownloadClaim,
};
pub use manifest::{Child, DEFAULT_MANIFEST_CACHE_RECORDS, DEFAULT_MANIFEST_CACHE_SHARES, FileEntry, Node};
pub use meta::ShareMeta;
pub use sweep::{Removal, Sweep};
pub use upload::{Expected, Start, Upload};
pub use view::Manifest;

use live::{Disk, LiveShare};
use manifest::{ManifestCache, Records, append_line};
use meta::{read_meta, write_meta};
use sweep::{Instance, clean_dead_instances};

/// Largest file a share takes (`--max-file-size`).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 8 << 30;
/// Largest total size of one share (`--max-share-size`).
pub const DEFAULT_MAX_SHARE_SIZE: u64 = 16 << 30;
/// Most files and folders in one share (`--max-files-per-share`).
pub const DEFAULT_MAX_FILES_PER_SHARE: usize = 10_000;
/// Free disk space uploads always leave (`--min-free-disk`).
pub const DEFAULT_MIN_FREE_DISK: u64 = 64 << 20;
/// How long a cut upload is kept for a resume after its last byte arrived
/// (`--partial-lifetime`).
pub const DEFAULT_PARTIAL_LIFETIME: Duration = Duration::from_secs(86_400);

/// Why a store operation did not happen.
#[derive(Debug)]
pub enum StoreError {
    /// No such share, or no such path in it.
    NotFound,
    /// The share existed, but expired or had every file downloaded as often as its budget
    /// allows. A client is answered exactly as for [`StoreError::NotFound`]; only the count of
    /// guesses tells the two apart.
    Gone,
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
            StoreError::Gone => f.write_str("the share expired or was spent"),
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
    /// How long a cut upload is kept after its last byte; older ones are swept.
    pub partial_lifetime: Duration,
    /// How long a budgeted download's claim keeps its place after its last `RETR`.
    pub claim_hold: Duration,
    /// Most `RETR`s one claim records before it counts as a whole download.
    pub max_claim_segments: u64,
    /// Downloads left to a budgeted file at or below which each download claims its place
    /// before its `150`; above it, downloads from byte 0 are counted at their end.
    pub reserve_below: u64,
    /// Budget counters whose count the server keeps in memory.
    pub max_counter_hints: usize,
    /// Budget lock files the server keeps open.
    pub max_open_budget_locks: usize,
    /// Most shares' manifests kept in memory.
    pub manifest_cache_shares: usize,
    /// Most manifest records kept in memory over the shares cached; one share's are kept whole.
    pub manifest_cache_records: usize,
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
            partial_lifetime: DEFAULT_PARTIAL_LIFETIME,
            claim_hold: ledger::DEFAULT_CLAIM_HOLD,
            max_claim_segments: ledger::DEFAULT_MAX_CLAIM_SEGMENTS,
            reserve_below: ledger::DEFAULT_RESERVE_BELOW,
            max_counter_hints: ledger::DEFAULT_MAX_COUNTER_HINTS,
            max_open_budget_locks: ledger::DEFAULT_MAX_OPEN_BUDGET_LOCKS,
            manifest_cache_shares: manifest::DEFAULT_MANIFEST_CACHE_SHARES,
            manifest_cache_records: manifest::DEFAULT_MANIFEST_CACHE_RECORDS,
            free_space,
        }
    }
}

impl Limits {
    /// The claim hold in whole seconds, as the ledger's times are.
    pub fn claim_hold_secs(&self) -> i64 {
        i64::try_from(self.claim_hold.as_secs()).unwrap_or(i64::MAX)
    }

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

/// An empty file in a sealed share's folder, created by the seal under the share's lock.
const SEALED_MARK: &str = "sealed";

/// The store rooted at one folder, as one running server sees it.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    limits: Limits,
    instance: Arc<Instance>,
    manifests: Arc<ManifestCache>,
    /// Per share, what this server keeps of it while it is written.
    live: Arc<Mutex<HashMap<String, Arc<LiveShare>>>>,
    /// The disk under the root, as this server's uploads see it.
    disk: Arc<Disk>,
    /// How many names budget counters were seen to hold.
    counter_hints: Arc<ledger::CounterHints>,
    /// The budget lock files this server keeps open.
    budget_locks: Arc<ledger::LockFiles>,
}

/// A share that exists and has not expired, as of the moment it was opened.
#[derive(Debug, Clone)]
pub struct Share {
    pub code: ShareCode,
    pub meta: ShareMeta,
    dir: PathBuf,
    store: Store,
    legacy: ledger::LegacyCell,
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
        Ok(Store {
            root,
            limits,
            instance,
            manifests: Arc::default(),
            live: Arc::default(),
            disk: Arc::default(),
            counter_hints: Arc::default(),
            budget_locks: Arc::new(ledger::LockFiles::new(limits.max_open_budget_locks)),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The name of this running server's own folder under `tmp/`, which also names its packs.
    fn instance_id(&self) -> String {
        self.instance.dir.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
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
        File::create(staging.join("manifest"))?.sync_all()?;
        File::create(staging.join("lock"))?;
        write_meta(&staging, &meta)?;
        sync_dir(&staging)?;
        let dir = self.shares_dir().join(code.as_str());
        fs::rename(&staging, &dir)?;
        sync_dir(&self.shares_dir())?;
        let share = Share { code, meta, dir, store: self.clone(), legacy: Default::default() };
        Ok((share, token))
    }

    /// Opens the share named `code` if it exists and has not expired at `now`: `NotFound`
    /// when there never was such a share (or it was removed), `Gone` when it expired or was
    /// spent.
    pub fn share(&self, code: &ShareCode, now: i64) -> Result<Share> {
        let code = code.clone();
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
            return Err(StoreError::Gone);
        }
        Ok(Share { code, meta, dir, store: self.clone(), legacy: Default::default() })
    }

    /// Opens again a share this connection opened before as `kept`, as [`Store::share`] would
    /// answer now. A sealed share's `meta` never changes (the expiry is fixed when it is made,
    /// the seal is the last change), so it is not read again: a look at the share's folder
    /// finds a share deleted or swept since (both move the folder away), and the expiry and the
    /// download budget decide as before. An unsealed share is read again whole.
    pub fn share_again(&self, kept: &Share, now: i64) -> Result<Share> {
        if !kept.meta.sealed {
            return self.share(&kept.code, now);
        }
        if !is_plain_dir(&kept.dir) {
            return Err(StoreError::NotFound);
        }
        if kept.meta.expires <= now || self.is_spent(kept.code.as_str(), &kept.meta) {
            return Err(StoreError::Gone);
        }
        Ok(kept.clone())
    }
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

impl Share {
    /// Whether `token` is this share's owner token.
    pub fn is_owner(&self, token: &str) -> bool {
        Sha256Digest::of(token.as_bytes()) == self.meta.owner
    }

    /// Takes the share's lock: held while meta, manifest, partial uploads or download counts
    /// change; released when dropped.
    fn lock(&self) -> Result<File> {
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(self.dir.join("lock"))?;
        lock.lock()?;
        Ok(lock)
    }

    /// Whether the share still takes files: under the share's lock, the `sealed` mark decides,
    /// which the seal creates and which no cache can hide once it exists. `meta` is not read
    /// again: the seal is the only change to it after the share is made, and the mark comes
    /// first.
    fn ensure_writable(&self) -> Result<()> {
        if self.meta.sealed || self.dir.join(SEALED_MARK).exists() {
            return Err(StoreError::Sealed);
        }
        if self.meta.expires <= unix_now() {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Checks that `rel` can be created: a valid name whose parents are not files.
    fn check_new_path(&self, rel: &[String], manifest: &Records) -> Result<()> {
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
        // Not held past the checks: see `begin_upload`.
        drop(manifest);
        self.claim_folder(rel)?;
        let manifest =
            append_line(&self.dir.join("manifest"), &format!("D\t{}\t{}", unix_now(), rel.join("/")))?;
        Ok(manifest.sync_data()?)
    }

    /// Seals the share: from now on it is read-only for everyone, and uploads kept for
    /// resuming are deleted.
    pub fn seal(&mut self) -> Result<()> {
        let _lock = self.lock()?;
        // First the mark, which every server's commit looks for under this lock: a `meta`
        // replaced by rename may look unchanged through another server's mount for a moment.
        File::create(self.dir.join(SEALED_MARK))?.sync_all()?;
        sync_dir(&self.dir)?;
        let mut meta = read_meta(&self.dir)?;
        meta.sealed = true;
        write_meta(&self.dir, &meta)?;
        self.meta = meta;
        remove_any(&self.dir.join("partial"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{rel, temp_store, upload};
    use super::*;

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
        let reopened = store.share(&share.code, unix_now()).unwrap();
        assert!(reopened.meta.sealed);
    }

    #[test]
    fn capital_letters_name_the_same_share() {
        let (store, _root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        let upper: ShareCode = share.code.as_str().to_ascii_uppercase().parse().unwrap();
        assert!(store.share(&upper, unix_now()).is_ok());
    }
}
