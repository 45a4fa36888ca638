//! Listing a share and saving its files verified. A download is written beside its target and
//! renamed into place only once its SHA-256 matches, so a cut or corrupt file never sits under
//! its final name, and it never replaces a file it did not create unless asked to. It resumes
//! through a [`Link`] when the connection drops, and tells its [`Observer`] so.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::client::link::{Attempt, Link};
use crate::client::observer::Observer;
use crate::client::transfer::{hash_file, in_parallel};
use crate::client::words::printable;
use crate::client::{ClientError, Connection, RemoteFile, Result, ShareInfo};
use crate::common::chunks::{RECEIVE_BYTES, chunk_size, for_each_chunk};
use crate::common::digest::{Hasher, StreamHasher};
use crate::common::names::check_path;
use crate::common::platform::{free_space, rename_no_replace};

/// Suffix of a download in progress, beside its final name.
pub const PARTIAL_SUFFIX: &str = ".anonshare-part";

/// What a share holds: its facts from `SITE INFO`, its files with their SHA-256, and its empty
/// folders (a folder with a file below it is in that file's path).
#[derive(Debug, Clone)]
pub struct Listing {
    pub info: ShareInfo,
    pub files: Vec<RemoteFile>,
    pub folders: Vec<String>,
}

/// Lists share `code`: `SITE INFO` for its expiry and size, then a walk of its folders with
/// `MLSD`, and `HASH` for each file. A dropped connection starts the listing again.
pub fn list_share(link: &mut Link, code: &str, observer: &dyn Observer) -> Result<Listing> {
    link.run(observer, |connection, _| {
        let info = connection.info(code)?;
        let (files, folders) = connection.walk_share(code)?;
        let empty = folders
            .iter()
            .filter(|folder| {
                let below = format!("{folder}/");
                !files.iter().any(|f| f.path.starts_with(&below))
                    && !folders.iter().any(|f| f.starts_with(&below))
            })
            .cloned()
            .collect();
        Ok(Listing { info, files, folders: empty })
    })
}

/// How many complete downloads each listed file has left, in the listing's order; `None` for
/// every file of a share without a download budget, which asks the server nothing.
pub fn downloads_left(
    link: &mut Link,
    code: &str,
    listing: &Listing,
    observer: &dyn Observer,
) -> Result<Vec<Option<u64>>> {
    if listing.info.downloads.is_none() {
        return Ok(vec![None; listing.files.len()]);
    }
    link.run(observer, |connection, _| {
        let mut left = Vec::with_capacity(listing.files.len());
        for file in &listing.files {
            left.push(connection.info_of(&format!("/{code}/{}", file.path))?.downloads_left);
        }
        Ok(left)
    })
}

/// What a download fetches: files, and empty folders to make.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub files: Vec<RemoteFile>,
    pub folders: Vec<String>,
}

/// The files and empty folders of `listing` that `wanted` names, by exact path or by a folder
/// that holds them. Nothing wanted means everything; a name that matches nothing is an error.
pub fn select(listing: &Listing, wanted: &[String]) -> Result<Selection> {
    if wanted.is_empty() {
        return Ok(Selection { files: listing.files.clone(), folders: listing.folders.clone() });
    }
    let names: Vec<&str> = wanted.iter().map(|name| name.trim_matches('/')).collect();
    let named = |path: &str, name: &str| {
        path == name || path.strip_prefix(name).is_some_and(|rest| rest.starts_with('/'))
    };
    for name in &names {
        let any =
            listing.files.iter().map(|f| f.path.as_str()).chain(listing.folders.iter().map(String::as_str));
        if !any.clone().any(|path| named(path, name)) {
            return Err(ClientError::NotFound(format!(
                "no file or folder '{}' in this share",
                printable(name)
            )));
        }
    }
    let chosen = |path: &str| names.iter().any(|name| named(path, name));
    let files: BTreeSet<usize> =
        (0..listing.files.len()).filter(|&i| chosen(&listing.files[i].path)).collect();
    Ok(Selection {
        files: files.into_iter().map(|i| listing.files[i].clone()).collect(),
        folders: listing.folders.iter().filter(|folder| chosen(folder)).cloned().collect(),
    })
}

/// What a download does with a file that is already where a downloaded file would go. A file
/// with the very bytes of the share's (same size and SHA-256) is always kept as it is, as done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Existing {
    /// Download nothing, and say which file is in the way.
    #[default]
    Refuse,
    /// Replace it, once the download is verified.
    Overwrite,
    /// Keep it, and download the others.
    Skip,
}

/// A downloaded, verified file.
#[derive(Debug, Clone)]
pub struct SavedFile {
    pub file: RemoteFile,
    pub local: PathBuf,
}

/// Where `path` of the share goes under `dir`. The server names the files; a hostile one must
/// not write outside `dir`.
fn local_path(dir: &Path, path: &str) -> Result<PathBuf> {
    let parts: Vec<String> = path.split('/').map(str::to_owned).collect();
    check_path(&parts).map_err(|err| {
        ClientError::Integrity(format!("server listed an unsafe path '{}': {err}", printable(path)))
    })?;
    let mut target = dir.to_path_buf();
    target.extend(&parts);
    Ok(target)
}

/// Downloads the files of `selection` from share `code` under `dir`, each verified against its
/// SHA-256, and makes its empty folders. A file already in a target's place is dealt with as
/// `existing` says, before any byte moves. A dropped connection is taken up again, and a cut
/// file resumes from the bytes already saved.
pub fn download(
    link: &mut Link,
    code: &str,
    selection: &Selection,
    dir: &Path,
    existing: Existing,
    observer: &dyn Observer,
) -> Result<Vec<SavedFile>> {
    let mut wanted = Vec::with_capacity(selection.files.len());
    let mut in_place = Vec::new();
    let mut in_the_way = Vec::new();
    for file in &selection.files {
        let target = local_path(dir, &file.path)?;
        match fs::symlink_metadata(&target) {
            Err(_) => wanted.push((file, target)),
            Ok(meta) if meta.is_file() && meta.len() == file.size && hash_file(&target)? == file.sha256 => {
                in_place.push(SavedFile { file: file.clone(), local: target });
            }
            Ok(_) => match existing {
                Existing::Overwrite => wanted.push((file, target)),
                Existing::Skip => observer.skipped(
                    &target.display().to_string(),
                    "it exists, with other bytes than the share's; kept",
                ),
                Existing::Refuse => in_the_way.push(target),
            },
        }
    }
    if let Some(first) = in_the_way.first() {
        return Err(ClientError::WouldReplace { path: first.clone(), more: in_the_way.len() - 1 });
    }
    let (files, targets): (Vec<&RemoteFile>, Vec<PathBuf>) = wanted.into_iter().unzip();
    check_room(dir, &files, &targets)?;
    for folder in &selection.folders {
        let target = local_path(dir, folder)?;
        fs::create_dir_all(&target).map_err(|err| {
            ClientError::Usage(format!(
                "cannot make the folder '{}': {err}",
                printable(&target.display().to_string())
            ))
        })?;
    }
    observer.planned(files.len(), files.iter().map(|file| file.size).sum());
    let mut saved = in_parallel(link, files.len(), |link, index| {
        let (file, target) = (files[index], &targets[index]);
        observer.start(&file.path, file.size);
        let mut partial = Partial::new(target, existing == Existing::Overwrite);
        let result = link
            .run(observer, |connection, attempt| partial.fetch(connection, attempt, code, file, observer));
        observer.finish(&file.path);
        result?;
        Ok(SavedFile { file: file.clone(), local: target.clone() })
    })?;
    saved.extend(in_place);
    saved.sort_by(|a, b| a.file.path.cmp(&b.file.path));
    Ok(saved)
}

/// Refuses a download that cannot fit: the bytes still to come must fit in the free space of
/// the disk that holds `dir`, where the platform can tell.
fn check_room(dir: &Path, files: &[&RemoteFile], targets: &[PathBuf]) -> Result<()> {
    let needed: u64 = files
        .iter()
        .zip(targets)
        .map(|(file, target)| {
            file.size.saturating_sub(fs::metadata(partial_path(target)).map_or(0, |m| m.len()))
        })
        .sum();
    // The folder may not exist yet: its nearest existing parent tells the disk.
    let existing = dir.ancestors().find(|p| p.exists()).unwrap_or(Path::new("."));
    match free_space(existing) {
        Some(free) if needed > free => Err(ClientError::Refused(format!(
            "not enough room in '{}': the download needs {needed} bytes, {free} are free",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// `NAME.anonshare-part` beside `target`.
fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_owned();
    name.push(PARTIAL_SUFFIX);
    target.with_file_name(name)
}

/// A download in progress beside its target, and the running SHA-256 of what it holds.
struct Partial<'t> {
    target: &'t Path,
    path: PathBuf,
    /// Whether a file at the target may be replaced (`--overwrite`); else one that appeared
    /// there during the download is kept, and the download is not put in place.
    replace: bool,
    /// The digest of the partial file's bytes, carried from one attempt to the next.
    hasher: Option<Hasher>,
}

impl<'t> Partial<'t> {
    fn new(target: &'t Path, replace: bool) -> Partial<'t> {
        Partial { target, path: partial_path(target), replace, hasher: None }
    }

    fn local_error(&self) -> impl Fn(io::Error) -> ClientError + '_ {
        |err| {
            ClientError::Usage(format!(
                "cannot write '{}': {err}",
                printable(&self.target.display().to_string())
            ))
        }
    }

    /// One attempt: continues the partial file from its end, verifies the whole file, and
    /// renames it into place. A cut leaves the partial file for the next attempt.
    fn fetch(
        &mut self,
        connection: &mut Connection,
        attempt: &mut Attempt,
        code: &str,
        file: &RemoteFile,
        observer: &dyn Observer,
    ) -> Result<()> {
        let open = |new: bool| {
            OpenOptions::new().read(true).append(true).create(!new).create_new(new).open(&self.path)
        };
        // A partial file made now holds nothing: only one an earlier attempt left is measured.
        let open_partial = || match open(true) {
            Ok(file) => Ok((file, true)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => open(false).map(|file| (file, false)),
            Err(err) => Err(err),
        };
        // The folder is made when the file is its first: most files need no look at it.
        let (mut sink, made) = match open_partial() {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let parent = self.target.parent().unwrap_or(Path::new("."));
                fs::create_dir_all(parent).and_then(|()| open_partial())
            }
            opened => opened,
        }
        .map_err(self.local_error())?;
        let mut kept = if made { 0 } else { sink.metadata().map_err(self.local_error())?.len() };
        if kept > file.size {
            sink.set_len(0).map_err(self.local_error())?;
            kept = 0;
        }
        let hasher = match self.hasher.take() {
            Some(hasher) if hasher.len() == kept => hasher,
            _ => hash_prefix(&mut sink, kept).map_err(self.local_error())?,
        };
        if kept > 0 {
            observer.resuming(&file.path, kept);
        }
        observer.restart(&file.path, kept);
        let remote = format!("/{code}/{}", file.path);
        // Hashed on a second thread while this one receives and writes, in buffers handed over
        // without a copy; big reads, because on loopback they cost the kernel half as much.
        let mut stream = StreamHasher::new(hasher, file.size - kept);
        let read_size = chunk_size(file.size - kept, RECEIVE_BYTES);
        let received = if kept < file.size || file.size == 0 {
            let first = stream.buffer(read_size);
            connection.retrieve(&remote, kept, first, |buffer, len| {
                sink.write_all(&buffer[..len]).map_err(self.local_error())?;
                stream.hash_filled(buffer, len);
                attempt.moved += len as u64;
                observer.advance(&file.path, len as u64);
                if observer.cancelled() { Err(ClientError::Cancelled) } else { Ok(stream.buffer(read_size)) }
            })
        } else {
            Ok(())
        };
        let hasher = stream.into_hasher();
        let size = hasher.len();
        if let Err(err) = received {
            self.hasher = Some(hasher);
            return Err(err);
        }
        if size < file.size {
            self.hasher = Some(hasher);
            return Err(ClientError::Connection(format!(
                "{}: transfer cut at byte {size} of {}",
                file.path, file.size
            )));
        }
        let sha256 = hasher.finish();
        if sha256 != file.sha256 || size != file.size {
            let _ = fs::remove_file(&self.path);
            // Bytes kept from an earlier attempt are not trusted: they may be what went wrong.
            if kept > 0 {
                return Err(ClientError::Connection(format!(
                    "{}: the resumed file does not match its SHA-256; downloading it again from the start",
                    file.path
                )));
            }
            return Err(ClientError::Integrity(format!(
                "{}: received {size} bytes with SHA-256 {sha256}, expected {} bytes with SHA-256 {}; not saved",
                file.path, file.size, file.sha256
            )));
        }
        sink.sync_all().map_err(self.local_error())?;
        if self.replace {
            return fs::rename(&self.path, self.target).map_err(self.local_error());
        }
        match rename_no_replace(&self.path, self.target) {
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                Err(ClientError::WouldReplace { path: self.target.to_path_buf(), more: 0 })
            }
            other => other.map_err(self.local_error()),
        }
    }
}

/// The running SHA-256 of the first `len` bytes of `file`.
fn hash_prefix(file: &mut File, len: u64) -> io::Result<Hasher> {
    let mut hasher = Hasher::new();
    if len == 0 {
        return Ok(hasher);
    }
    file.seek(SeekFrom::Start(0))?;
    for_each_chunk(
        &mut file.take(len),
        len,
        |chunk| {
            hasher.update(chunk);
            Ok(())
        },
        |err| err,
    )?;
    Ok(hasher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::digest::Sha256Digest;

    fn remote(path: &str) -> RemoteFile {
        RemoteFile { path: path.into(), size: 1, sha256: Sha256Digest::of(path.as_bytes()) }
    }

    fn listing() -> Listing {
        Listing {
            info: ShareInfo::default(),
            files: vec![remote("a.txt"), remote("dir/b"), remote("dir/sub/c"), remote("dirty")],
            folders: vec!["dir/empty".into(), "hollow".into()],
        }
    }

    fn check(wanted: &[&str], expected: Result<Vec<&str>, u8>) {
        let wanted: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
        let got = select(&listing(), &wanted)
            .map(|chosen| chosen.files.into_iter().map(|f| f.path).chain(chosen.folders).collect::<Vec<_>>());
        match expected {
            Ok(paths) => assert_eq!(got.unwrap(), paths),
            Err(code) => assert_eq!(got.unwrap_err().exit_code(), code),
        }
    }

    #[test]
    fn selecting_files() {
        check(&[], Ok(vec!["a.txt", "dir/b", "dir/sub/c", "dirty", "dir/empty", "hollow"]));
        check(&["a.txt"], Ok(vec!["a.txt"]));
        check(&["dir"], Ok(vec!["dir/b", "dir/sub/c", "dir/empty"]));
        check(&["hollow/"], Ok(vec!["hollow"]));
        check(&["dir/sub/", "a.txt"], Ok(vec!["a.txt", "dir/sub/c"]));
        check(&["missing"], Err(3));
    }
}
