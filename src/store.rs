//! The on-disk store of shares. Knows nothing of sockets or FTP: it creates shares, takes file
//! uploads through [`Upload`], lists what a share holds, and sweeps expired shares away.
//!
//! Layout under the root:
//!
//! ```text
//! shares/<code>/meta        expiry, sealed flag, owner token digest (replaced atomically)
//! shares/<code>/manifest    one record per finished file or folder (append-only)
//! shares/<code>/files/...   the files, under their relative paths
//! tmp/                      uploads in progress and shares being created
//! trash/                    expired shares on their way out
//! ```
//!
//! A file becomes visible only through its manifest record, which is appended after the file was
//! synced and renamed into place: nobody sees a half-written file, and a crash leaves at most an
//! unlisted file or a torn last record, both ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::digest::{Hasher, Sha256Digest};
use crate::platform::sync_dir;
use crate::proto::ListingEntry;
use crate::secret::{OwnerToken, ShareCode};

/// Longest file or folder name, in bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// Longest path inside a share, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Deepest folder nesting inside a share.
pub const MAX_PATH_DEPTH: usize = 32;

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
    /// The received bytes do not have the declared SHA-256; nothing was stored.
    DigestMismatch {
        expected: Sha256Digest,
        actual: Sha256Digest,
    },
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
            StoreError::DigestMismatch { expected, actual } => {
                write!(
                    f,
                    "SHA-256 mismatch: declared {expected}, received {actual}; file not stored"
                )
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
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Checks one file or folder name: printable, portable to Windows, not a path trick.
pub fn check_name(name: &str) -> Result<(), StoreError> {
    const RESERVED: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];
    const FORBIDDEN: &[char] = &['/', '\\', '<', '>', ':', '"', '|', '?', '*'];
    let bad = |why: &str| Err(StoreError::BadName(why.to_owned()));
    if name.is_empty() || name == "." || name == ".." {
        return bad("empty, '.' or '..'");
    }
    if name.len() > MAX_NAME_BYTES {
        return bad(&format!("longer than {MAX_NAME_BYTES} bytes"));
    }
    if name.chars().any(char::is_control) {
        return bad("control character");
    }
    if let Some(c) = name.chars().find(|c| FORBIDDEN.contains(c)) {
        return bad(&format!("'{c}' is not allowed in names"));
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return bad("ends with '.' or a space");
    }
    let stem = name.split('.').next().unwrap_or(name).to_ascii_uppercase();
    let device = RESERVED.contains(&stem.as_str())
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if device {
        return bad("reserved device name on Windows");
    }
    Ok(())
}

/// Checks a whole relative path, given as its components.
pub fn check_path(rel: &[String]) -> Result<(), StoreError> {
    if rel.len() > MAX_PATH_DEPTH {
        return Err(StoreError::BadName(format!(
            "deeper than {MAX_PATH_DEPTH} folders"
        )));
    }
    if rel.iter().map(|part| part.len() + 1).sum::<usize>() > MAX_PATH_BYTES {
        return Err(StoreError::BadName(format!(
            "path longer than {MAX_PATH_BYTES} bytes"
        )));
    }
    rel.iter().try_for_each(|part| check_name(part))
}

/// The store rooted at one folder.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// What `meta` records about a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareMeta {
    pub created: i64,
    pub expires: i64,
    pub sealed: bool,
    /// SHA-256 of the owner token; the token itself is never stored.
    pub owner: Sha256Digest,
}

/// A share that exists and has not expired, as of the moment it was opened.
#[derive(Debug, Clone)]
pub struct Share {
    pub code: ShareCode,
    pub meta: ShareMeta,
    dir: PathBuf,
    tmp: PathBuf,
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

/// What a path inside a share names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node<'a> {
    File(&'a FileEntry),
    Folder,
}

impl Store {
    /// Opens (creating if needed) the store at `root`, and removes leftovers of uploads and
    /// deletions that a crash interrupted.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let store = Store { root: root.into() };
        for dir in [store.shares_dir(), store.tmp_dir(), store.trash_dir()] {
            fs::create_dir_all(&dir)?;
        }
        for dir in [store.tmp_dir(), store.trash_dir()] {
            for entry in fs::read_dir(&dir)? {
                remove_any(&entry?.path())?;
            }
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn shares_dir(&self) -> PathBuf {
        self.root.join("shares")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn trash_dir(&self) -> PathBuf {
        self.root.join("trash")
    }

    /// Creates an empty, unsealed share that expires at `expires` (Unix seconds).
    pub fn create_share(&self, expires: i64) -> Result<(Share, OwnerToken)> {
        let code = ShareCode::generate()?;
        let token = OwnerToken::generate()?;
        let meta = ShareMeta {
            created: unix_now(),
            expires,
            sealed: false,
            owner: Sha256Digest::of(token.as_str().as_bytes()),
        };
        // Build the share aside and rename it in whole, so a share is never half-made.
        let staging = self.tmp_dir().join(format!("{code}.new"));
        fs::create_dir(&staging)?;
        fs::create_dir(staging.join("files"))?;
        File::create(staging.join("manifest"))?.sync_all()?;
        write_meta(&staging, &meta)?;
        sync_dir(&staging)?;
        let dir = self.shares_dir().join(code.as_str());
        fs::rename(&staging, &dir)?;
        sync_dir(&self.shares_dir())?;
        Ok((
            Share {
                code,
                meta,
                dir,
                tmp: self.tmp_dir(),
            },
            token,
        ))
    }

    /// Opens the share named `code` if it exists and has not expired at `now`.
    pub fn share(&self, code: &str, now: i64) -> Result<Share> {
        let code: ShareCode = code.parse().map_err(|_| StoreError::NotFound)?;
        let dir = self.shares_dir().join(code.as_str());
        let meta = match read_meta(&dir) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(StoreError::NotFound),
            Err(err) => return Err(err.into()),
        };
        if meta.expires <= now {
            return Err(StoreError::NotFound);
        }
        Ok(Share {
            code,
            meta,
            dir,
            tmp: self.tmp_dir(),
        })
    }

    /// Removes every share that expired at or before `now`; returns their codes.
    pub fn sweep(&self, now: i64) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for entry in fs::read_dir(self.shares_dir())? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let expired = match read_meta(&entry.path()) {
                Ok(meta) => meta.expires <= now,
                Err(err) => {
                    err.kind() == io::ErrorKind::NotFound
                        || err.kind() == io::ErrorKind::InvalidData
                }
            };
            if expired {
                // Move it out of sight first, so a crash mid-delete leaves nothing half-visible.
                let doomed = self
                    .trash_dir()
                    .join(format!("{name}.{}", ShareCode::generate()?));
                match fs::rename(entry.path(), &doomed) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(err.into()),
                }
                remove_any(&doomed)?;
                removed.push(name);
            }
        }
        Ok(removed)
    }
}

fn remove_any(path: &Path) -> io::Result<()> {
    let result = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match result {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn write_meta(dir: &Path, meta: &ShareMeta) -> io::Result<()> {
    let text = format!(
        "created {}\nexpires {}\nsealed {}\nowner {}\n",
        meta.created, meta.expires, meta.sealed as u8, meta.owner
    );
    let tmp = dir.join("meta.tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join("meta"))?;
    sync_dir(dir)
}

fn read_meta(dir: &Path) -> io::Result<ShareMeta> {
    let text = fs::read_to_string(dir.join("meta"))?;
    let invalid = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("corrupt meta in {}", dir.display()),
        )
    };
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
    })
}

impl Share {
    /// Whether `token` is this share's owner token.
    pub fn is_owner(&self, token: &str) -> bool {
        Sha256Digest::of(token.as_bytes()) == self.meta.owner
    }

    /// Reads the manifest: every finished file and folder.
    pub fn manifest(&self) -> Result<Manifest> {
        let bytes = fs::read(self.manifest_path())?;
        // A record without its newline was torn by a crash: only whole lines count.
        let whole = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(end) => &bytes[..end],
            None => &[][..],
        };
        let mut manifest = Manifest::default();
        for line in whole.split(|&b| b == b'\n') {
            if let Ok(text) = std::str::from_utf8(line) {
                manifest.apply(text);
            }
        }
        Ok(manifest)
    }

    fn manifest_path(&self) -> PathBuf {
        self.dir.join("manifest")
    }

    fn file_path(&self, rel: &[String]) -> PathBuf {
        let mut path = self.dir.join("files");
        path.extend(rel);
        path
    }

    /// Opens a finished file for reading.
    pub fn open_file(&self, entry: &FileEntry) -> Result<File> {
        File::open(self.file_path(&entry.path)).map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound,
            _ => StoreError::Io(err),
        })
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
        check_path(rel)?;
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

    /// Records a folder (MKD). Parents are created as needed.
    pub fn make_folder(&self, rel: &[String]) -> Result<()> {
        self.ensure_writable()?;
        let manifest = self.manifest()?;
        self.check_new_path(rel, &manifest)?;
        if manifest.lookup(rel).is_some() {
            return Err(StoreError::Exists);
        }
        fs::create_dir_all(self.file_path(rel))?;
        self.append_record(&format!("D\t{}\t{}\n", unix_now(), rel.join("/")))
    }

    /// Starts receiving the file `rel`; if `expected` is given, the bytes must have that SHA-256.
    pub fn begin_upload(&self, rel: &[String], expected: Option<Sha256Digest>) -> Result<Upload> {
        self.ensure_writable()?;
        let manifest = self.manifest()?;
        self.check_new_path(rel, &manifest)?;
        if manifest.lookup(rel) == Some(Node::Folder) {
            return Err(StoreError::IsAFolder);
        }
        let tmp_path = self.tmp.join(format!("{}.part", ShareCode::generate()?));
        let file = File::create(&tmp_path)?;
        Ok(Upload {
            share: self.clone(),
            rel: rel.to_vec(),
            expected,
            file: Some(file),
            tmp_path,
            hasher: Hasher::new(),
        })
    }

    /// Seals the share: from now on it is read-only for everyone.
    pub fn seal(&mut self) -> Result<()> {
        let mut meta = read_meta(&self.dir)?;
        meta.sealed = true;
        write_meta(&self.dir, &meta)?;
        self.meta = meta;
        Ok(())
    }

    /// Appends one manifest record durably. Records are small single writes to an O_APPEND
    /// file, so readers see whole records or a torn tail they ignore; a torn tail left by a
    /// crash is closed off first so it cannot swallow the new record.
    fn append_record(&self, record: &str) -> Result<()> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(self.manifest_path())?;
        let len = file.metadata()?.len();
        let mut text = String::with_capacity(record.len() + 1);
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                text.push('\n');
            }
        }
        text.push_str(record);
        file.write_all(text.as_bytes())?;
        file.sync_data()?;
        Ok(())
    }
}

impl Manifest {
    /// Applies one record; malformed ones are skipped.
    fn apply(&mut self, record: &str) {
        let fields: Vec<&str> = record.split('\t').collect();
        match fields.as_slice() {
            ["F", sha256, size, modified, path] => {
                let (Ok(sha256), Ok(size), Ok(modified)) =
                    (sha256.parse(), size.parse(), modified.parse())
                else {
                    return;
                };
                let path: Vec<String> = path.split('/').map(str::to_owned).collect();
                self.add_parents(&path, modified);
                self.files.insert(
                    path.clone(),
                    FileEntry {
                        path,
                        size,
                        sha256,
                        modified,
                    },
                );
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
            self.folders
                .entry(path[..depth].to_vec())
                .or_insert(modified);
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
    pub fn children(&self, rel: &[String]) -> Vec<ListingEntry> {
        let is_child = |path: &[String]| path.len() == rel.len() + 1 && path.starts_with(rel);
        let mut names = BTreeSet::new();
        let mut entries = Vec::new();
        for (path, modified) in &self.folders {
            if is_child(path) && names.insert(path[rel.len()].clone()) {
                entries.push(ListingEntry {
                    name: path[rel.len()].clone(),
                    is_dir: true,
                    size: 0,
                    modified: *modified,
                });
            }
        }
        for (path, file) in &self.files {
            if is_child(path) && names.insert(path[rel.len()].clone()) {
                entries.push(ListingEntry {
                    name: path[rel.len()].clone(),
                    is_dir: false,
                    size: file.size,
                    modified: file.modified,
                });
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries
    }

    /// Number of files and their total size.
    pub fn totals(&self) -> (usize, u64) {
        (self.files.len(), self.files.values().map(|f| f.size).sum())
    }
}

/// A file being received. Bytes go to a temporary file and into the digest in the same pass;
/// [`Upload::commit`] makes it visible, and dropping it without a commit leaves nothing behind.
pub struct Upload {
    share: Share,
    rel: Vec<String>,
    expected: Option<Sha256Digest>,
    file: Option<File>,
    tmp_path: PathBuf,
    hasher: Hasher,
}

impl Upload {
    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.hasher.len()
    }

    /// Checks the digest, syncs, renames into place and records the file. Only after this
    /// returns is the file on disk and visible.
    pub fn commit(mut self) -> Result<FileEntry> {
        let file = self.file.take().expect("upload committed once");
        let sha256 = self.hasher.clone().finish();
        if let Some(expected) = self.expected
            && expected != sha256
        {
            return Err(StoreError::DigestMismatch {
                expected,
                actual: sha256,
            });
        }
        file.sync_all()?;
        drop(file);
        self.share.ensure_writable()?;
        let target = self.share.file_path(&self.rel);
        let parent = target.parent().expect("file path has a parent");
        fs::create_dir_all(parent)?;
        fs::rename(&self.tmp_path, &target)?;
        sync_dir(parent)?;
        let entry = FileEntry {
            path: self.rel.clone(),
            size: self.hasher.len(),
            sha256,
            modified: unix_now(),
        };
        let record = format!(
            "F\t{}\t{}\t{}\t{}\n",
            entry.sha256,
            entry.size,
            entry.modified,
            entry.path_text()
        );
        self.share.append_record(&record)?;
        Ok(entry)
    }
}

impl Write for Upload {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let file = self.file.as_mut().expect("upload not committed");
        let written = file.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // Committed uploads were renamed away; anything else is an abandoned partial file.
        self.file.take();
        let _ = fs::remove_file(&self.tmp_path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store() -> (Store, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "anonshare-store-{}",
            ShareCode::generate().unwrap()
        ));
        (Store::open(&dir).unwrap(), dir)
    }

    fn rel(path: &str) -> Vec<String> {
        path.split('/').map(str::to_owned).collect()
    }

    fn upload(share: &Share, path: &str, bytes: &[u8]) -> Result<FileEntry> {
        let mut upload = share.begin_upload(&rel(path), Some(Sha256Digest::of(bytes)))?;
        upload.write_all(bytes)?;
        upload.commit()
    }

    #[test]
    fn files_are_visible_only_after_commit() {
        let (store, dir) = temp_store();
        let (share, _) = store.create_share(unix_now() + 60).unwrap();
        let mut pending = share.begin_upload(&rel("a/b.txt"), None).unwrap();
        pending.write_all(b"hello").unwrap();
        assert!(share.manifest().unwrap().lookup(&rel("a/b.txt")).is_none());
        let entry = pending.commit().unwrap();
        assert_eq!(entry.sha256, Sha256Digest::of(b"hello"));
        let manifest = share.manifest().unwrap();
        assert_eq!(manifest.lookup(&rel("a/b.txt")), Some(Node::File(&entry)));
        assert_eq!(manifest.lookup(&rel("a")), Some(Node::Folder));
        assert_eq!(fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_digest_mismatch_stores_nothing() {
        let (store, dir) = temp_store();
        let (share, _) = store.create_share(unix_now() + 60).unwrap();
        let mut pending = share
            .begin_upload(&rel("x"), Some(Sha256Digest::of(b"other")))
            .unwrap();
        pending.write_all(b"bytes").unwrap();
        assert!(matches!(
            pending.commit(),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert!(share.manifest().unwrap().lookup(&rel("x")).is_none());
        assert_eq!(fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_abandoned_upload_leaves_nothing() {
        let (store, dir) = temp_store();
        let (share, _) = store.create_share(unix_now() + 60).unwrap();
        let mut pending = share.begin_upload(&rel("x"), None).unwrap();
        pending.write_all(b"half").unwrap();
        drop(pending);
        assert_eq!(fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
        assert!(share.manifest().unwrap().lookup(&rel("x")).is_none());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn sealed_shares_take_no_files() {
        let (store, dir) = temp_store();
        let (mut share, token) = store.create_share(unix_now() + 60).unwrap();
        assert!(share.is_owner(token.as_str()));
        assert!(!share.is_owner("someone else"));
        upload(&share, "a", b"1").unwrap();
        share.seal().unwrap();
        assert!(matches!(upload(&share, "b", b"2"), Err(StoreError::Sealed)));
        let reopened = store.share(share.code.as_str(), unix_now()).unwrap();
        assert!(reopened.meta.sealed);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn expired_shares_are_not_found_and_swept() {
        let (store, dir) = temp_store();
        let now = unix_now();
        let (share, _) = store.create_share(now + 10).unwrap();
        upload(&share, "a", b"1").unwrap();
        let code = share.code.to_string();
        assert!(store.share(&code, now).is_ok());
        assert!(matches!(
            store.share(&code, now + 10),
            Err(StoreError::NotFound)
        ));
        assert!(store.sweep(now).unwrap().is_empty());
        assert_eq!(store.sweep(now + 10).unwrap(), vec![code.clone()]);
        assert!(!dir.join("shares").join(&code).exists());
        assert_eq!(fs::read_dir(dir.join("trash")).unwrap().count(), 0);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn malformed_codes_are_not_found_without_touching_the_disk() {
        let (store, dir) = temp_store();
        for code in ["..", "../tmp", "", "shares"] {
            assert!(
                matches!(store.share(code, 0), Err(StoreError::NotFound)),
                "{code}"
            );
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn files_and_folders_do_not_collide() {
        let (store, dir) = temp_store();
        let (share, _) = store.create_share(unix_now() + 60).unwrap();
        upload(&share, "f", b"1").unwrap();
        assert!(matches!(
            upload(&share, "f/g", b"2"),
            Err(StoreError::NotAFolder)
        ));
        share.make_folder(&rel("d")).unwrap();
        assert!(matches!(
            share.make_folder(&rel("d")),
            Err(StoreError::Exists)
        ));
        assert!(matches!(
            upload(&share, "d", b"3"),
            Err(StoreError::IsAFolder)
        ));
        let children = share.manifest().unwrap().children(&[]);
        let names: Vec<_> = children
            .iter()
            .map(|e| (e.name.as_str(), e.is_dir))
            .collect();
        assert_eq!(names, [("d", true), ("f", false)]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_torn_manifest_record_is_ignored() {
        let (store, dir) = temp_store();
        let (share, _) = store.create_share(unix_now() + 60).unwrap();
        upload(&share, "a", b"1").unwrap();
        share.append_record("F\tdeadbeef").unwrap();
        assert_eq!(share.manifest().unwrap().totals(), (1, 1));
        upload(&share, "b", b"22").unwrap();
        assert_eq!(share.manifest().unwrap().totals(), (2, 3));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn names_are_checked() {
        for good in [
            "a b.txt",
            "\u{e9}t\u{e9}",
            "\u{65e5}\u{672c}",
            ".hidden",
            "CONSOLE",
            "com10",
        ] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "", ".", "..", "a/b", "a\\b", "nul\0", "tab\t", "CON", "con.txt", "LPT1", "a:b", "end.",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"x".repeat(MAX_NAME_BYTES + 1)).is_err());
        assert!(check_path(&vec!["d".to_owned(); MAX_PATH_DEPTH + 1]).is_err());
    }
}
