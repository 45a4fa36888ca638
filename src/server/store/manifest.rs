//! The manifest of a share: one line per finished file (`F`) or folder (`D`), only ever
//! appended to, its [`Records`], and the [`ManifestCache`] that depends on it. A last line
//! without its newline was torn by a crash and never counts; the next append cuts it off. It
//! never writes a file's contents, and never rewrites or removes a record.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Result, Share, StoreError};
use crate::common::digest::Sha256Digest;

/// Every record of a share's manifest: its files and folders, spent files included, with their
/// totals kept as records are applied.
#[derive(Debug, Clone, Default)]
pub struct Records {
    pub(super) files: BTreeMap<Vec<String>, FileEntry>,
    folders: BTreeMap<Vec<String>, i64>,
    /// Bytes of all files.
    bytes: u64,
}

/// What a path inside a share names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node<'a> {
    File(&'a FileEntry),
    Folder,
}

/// One entry directly inside a folder of a share, as [`Manifest::children`](super::Manifest::children) lists it.
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

/// A finished file, as its manifest record describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Components of the path inside the share.
    pub path: Vec<String>,
    pub size: u64,
    pub sha256: Sha256Digest,
    /// Unix seconds when the file was stored.
    pub modified: i64,
    pub(super) place: Place,
}

impl FileEntry {
    /// The path inside the share, `/`-separated.
    pub fn path_text(&self) -> String {
        self.path.join("/")
    }
}

/// Where a file's contents are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Place {
    /// A file of its own under `blobs/`, by name.
    Blob(String),
    /// The file's bytes in a pack, from `offset`: `pack.<instance>`, which only the server
    /// `instance` ever writes, or the share's one `pack` of older stores (`instance` is `None`).
    Packed { instance: Option<String>, offset: u64 },
}

impl Place {
    /// Reads the manifest's form back: a blob's name, `@<offset>` (the old shared pack) or
    /// `@<instance>:<offset>`.
    fn parse(field: &str) -> Place {
        let Some(packed) = field.strip_prefix('@') else {
            return Place::Blob(field.to_owned());
        };
        let (instance, offset) = match packed.split_once(':') {
            Some((instance, offset)) => (Some(instance.to_owned()), offset),
            None => (None, packed),
        };
        match offset.parse() {
            Ok(offset) => Place::Packed { instance, offset },
            Err(_) => Place::Blob(field.to_owned()),
        }
    }

    /// The name of the pack file holding packed bytes written by `instance`.
    pub(super) fn pack_file(instance: Option<&str>) -> String {
        match instance {
            Some(instance) => format!("pack.{instance}"),
            None => "pack".to_owned(),
        }
    }
}

impl fmt::Display for Place {
    /// The manifest's form, which also names the file in the downloads ledger.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Blob(name) => f.write_str(name),
            Place::Packed { instance: Some(instance), offset } => write!(f, "@{instance}:{offset}"),
            Place::Packed { instance: None, offset } => write!(f, "@{offset}"),
        }
    }
}

/// Manifests already read, by share code, with how many of the file's bytes they hold. A
/// manifest only ever grows, so the bytes read stay what they were, also when another server on
/// the same root appended after them: only what follows needs reading. Past its bounds
/// (`--manifest-cache-shares`, `--manifest-cache-records`) it starts over.
#[derive(Debug, Default)]
pub(super) struct ManifestCache(Mutex<HashMap<String, Cached>>);

/// One share's entry of the [`ManifestCache`].
#[derive(Debug, Default)]
pub(super) struct Cached {
    /// Bytes of the manifest read.
    read: u64,
    pub(super) records: Arc<Records>,
    /// The spent files counted so far.
    pub(super) spent: SpentTally,
    /// What the last check of every file found: whether all were spent (a spent share never
    /// comes back), and else the spent count and the files it was made at.
    pub(super) checked: Checked,
}

/// Files of a share known spent, from its numbered spent marks: how many marks were read, and
/// the files and bytes they name.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct SpentTally {
    pub(super) marks: u64,
    pub(super) files: usize,
    pub(super) bytes: u64,
}

/// What the last check of a budgeted share's every file found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum Checked {
    #[default]
    Never,
    /// Some file had downloads left, when the spent count and the files were these.
    Unspent {
        spent: u64,
        files: usize,
    },
    AllSpent,
}

/// Most manifests kept in memory; past it the cache starts over (`--manifest-cache-shares`).
pub const DEFAULT_MANIFEST_CACHE_SHARES: usize = 256;
/// Most records kept in memory over all cached manifests; past it the cache starts over
/// (`--manifest-cache-records`). One share's records are kept whole however many it has.
pub const DEFAULT_MANIFEST_CACHE_RECORDS: usize = 200_000;

impl ManifestCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Cached>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets every manifest read.
    #[cfg(test)]
    pub(super) fn clear(&self) {
        self.lock().clear();
    }
}

impl Share {
    /// Every record of the manifest, spent files included. The manifest only grows, so only
    /// the records after the ones already read are read and parsed, in place unless a reader
    /// still holds the older version.
    pub(super) fn read_records(&self) -> Result<Arc<Records>> {
        self.cached(|cached| cached.records.clone())
    }

    /// Runs `then` on this share's cache entry, its records brought up to date.
    pub(super) fn cached<T>(&self, then: impl FnOnce(&mut Cached) -> T) -> Result<T> {
        let path = self.dir.join("manifest");
        // Every share is made with its manifest: none means a deletion or the sweep took the
        // share away since it was opened, and it answers like one that is gone.
        let len = match fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(StoreError::Gone),
            Err(err) => return Err(err.into()),
        };
        let limits = &self.store.limits;
        let mut cache = self.store.manifests.lock();
        if !cache.contains_key(self.code.as_str()) {
            let records: usize = cache.values().map(|cached| cached.records.entries()).sum();
            if cache.len() >= limits.manifest_cache_shares || records >= limits.manifest_cache_records {
                cache.clear();
            }
        }
        let cached = cache.entry(self.code.to_string()).or_default();
        if cached.read > len {
            *cached = Cached::default();
        }
        if cached.read < len {
            let mut file = File::open(&path)?;
            file.seek(SeekFrom::Start(cached.read))?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            // Only whole lines count: a torn last record is cut off by the next append.
            if let Some(end) = bytes.iter().rposition(|&b| b == b'\n') {
                let records = Arc::make_mut(&mut cached.records);
                for record in whole_lines(&bytes[..=end]) {
                    records.apply(record);
                }
                cached.read += end as u64 + 1;
            }
        }
        Ok(then(cached))
    }
}

impl Records {
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
                self.bytes += size;
                if let Some(old) =
                    self.files.insert(path.clone(), FileEntry { path, size, sha256, modified, place })
                {
                    self.bytes -= old.size;
                }
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

    /// What is directly inside the folder `rel`, sorted by name: each name with what it names.
    /// Costs a map lookup per entry, whatever else the share holds.
    pub(super) fn child_nodes(&self, rel: &[String]) -> Vec<(&str, Inside<'_>)> {
        let mut entries: Vec<(&str, Inside<'_>)> = Vec::new();
        children_of(&self.folders, rel, |name, modified| entries.push((name, Inside::Folder(*modified))));
        let folders = entries.len();
        children_of(&self.files, rel, |name, file| {
            if entries[..folders].binary_search_by(|(other, _)| (*other).cmp(name)).is_err() {
                entries.push((name, Inside::File(file)));
            }
        });
        entries.sort_by(|a, b| a.0.cmp(b.0));
        entries
    }

    /// Files and folders recorded, which `--max-files-per-share` bounds.
    pub fn entries(&self) -> usize {
        self.files.len() + self.folders.len()
    }

    /// Number of files and their total size.
    pub fn totals(&self) -> (usize, u64) {
        (self.files.len(), self.bytes)
    }
}

/// What a name directly inside a folder names.
#[derive(Debug, Clone, Copy)]
pub(super) enum Inside<'a> {
    /// A folder, recorded (or first implied) at these Unix seconds.
    Folder(i64),
    File(&'a FileEntry),
}

impl Child {
    /// The entry `name` of a folder, naming `inside`.
    pub(super) fn of(name: &str, inside: Inside<'_>) -> Child {
        match inside {
            Inside::Folder(modified) => {
                Child { name: name.to_owned(), is_dir: true, size: 0, modified, sha256: None }
            }
            Inside::File(file) => Child {
                name: name.to_owned(),
                is_dir: false,
                size: file.size,
                modified: file.modified,
                sha256: Some(file.sha256),
            },
        }
    }
}

/// Calls `found` with the name and value of each key of `map` directly inside `rel`, in order.
/// Keys deeper inside are skipped a subtree at a time: a map lookup per entry found.
fn children_of<'a, V>(
    map: &'a BTreeMap<Vec<String>, V>,
    rel: &[String],
    mut found: impl FnMut(&'a str, &'a V),
) {
    let mut from = Bound::Excluded(rel.to_vec());
    while let Some((key, value)) = map.range((from, Bound::Unbounded)).next() {
        if key.len() <= rel.len() || !key.starts_with(rel) {
            return;
        }
        let name = &key[rel.len()];
        if key.len() == rel.len() + 1 {
            found(name, value);
        }
        // The least name after `name`: every key below `name` sorts before it.
        let mut next = rel.to_vec();
        next.push(format!("{name}\0"));
        from = Bound::Included(next);
    }
}

/// The complete lines of an append-only file's bytes; a last line without its newline was torn
/// by a crash and does not count.
pub(super) fn whole_lines(bytes: &[u8]) -> impl Iterator<Item = &str> {
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
pub(super) fn append_line(path: &Path, line: &str) -> Result<File> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::test_support::{rel, temp_root, temp_store, upload};
    use crate::server::store::{Limits, Store, unix_now};

    #[test]
    fn a_cached_manifest_sees_what_another_server_added() {
        let root = temp_root();
        let first = Store::open(&root.0, Limits::default()).unwrap();
        let second = Store::open(&root.0, Limits::default()).unwrap();
        let (share, _) = first.create_share(unix_now() + 60, None).unwrap();
        upload(&share, "a", b"1").unwrap();
        assert_eq!(share.manifest().unwrap().totals().unwrap(), (1, 1));
        let again = share.read_records().unwrap();
        assert!(Arc::ptr_eq(&again, &share.read_records().unwrap()), "unchanged: read once");
        let through_second = second.share(&share.code, unix_now()).unwrap();
        upload(&through_second, "b", b"22").unwrap();
        assert_eq!(share.manifest().unwrap().totals().unwrap(), (2, 3), "grown: read again");
    }

    #[test]
    fn a_torn_manifest_record_is_ignored() {
        let (store, _root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        upload(&share, "a", b"1").unwrap();
        let mut manifest = OpenOptions::new().append(true).open(share.dir.join("manifest")).unwrap();
        manifest.write_all(b"F\tdeadbeef").unwrap();
        assert_eq!(share.manifest().unwrap().totals().unwrap(), (1, 1));
        upload(&share, "b", b"22").unwrap();
        assert_eq!(share.manifest().unwrap().totals().unwrap(), (2, 3));
        // A record torn inside its path is cut off, never read as a file at a shorter path.
        let sha = Sha256Digest::of(b"x");
        manifest.write_all(format!("F\t{sha}\t1\t0\tblob\tdocs/no").as_bytes()).unwrap();
        upload(&share, "c", b"333").unwrap();
        let records = share.manifest().unwrap();
        assert_eq!(records.totals().unwrap(), (3, 6));
        assert!(records.lookup(&rel("docs/no")).is_none() && records.lookup(&rel("docs")).is_none());
    }

    #[test]
    fn a_folder_lists_only_what_is_directly_inside_it() {
        let (store, _root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        for path in ["a/x", "a/y/z", "a b", "ab", "a/y/w", "b", "a0/q"] {
            upload(&share, path, path.as_bytes()).unwrap();
        }
        share.make_folder(&rel("a/e")).unwrap();
        let names = |folder: &str| {
            let folder = if folder.is_empty() { Vec::new() } else { rel(folder) };
            let children = share.manifest().unwrap().children(&folder);
            children
                .into_iter()
                .map(|c| format!("{}{}", c.name, if c.is_dir { "/" } else { "" }))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(""), ["a/", "a b", "a0/", "ab", "b"]);
        assert_eq!(names("a"), ["e/", "x", "y/"]);
        assert_eq!(names("a/y"), ["w", "z"]);
        assert!(names("a/e").is_empty() && names("b").is_empty());
        assert_eq!(share.manifest().unwrap().totals().unwrap(), (7, 3 + 5 + 3 + 2 + 5 + 1 + 4));
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
