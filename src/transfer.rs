//! Whole-share work on top of a [`Connection`]: planning an upload from local files and folders,
//! uploading the plan into a new share, choosing files of a share, and saving them verified.
//! A download is written beside its target and renamed into place only once its SHA-256
//! matches, so a cut or corrupt file never sits under its final name.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use walkdir::WalkDir;

use crate::chunks::for_each_chunk;
use crate::client::{ClientError, Connection, CreatedShare, RemoteFile, Result};
use crate::digest::{Hasher, Sha256Digest};
use crate::store::check_path;

/// Suffix of a download in progress, beside its final name.
pub const PARTIAL_SUFFIX: &str = ".anonshare-part";

/// Told about each file as it moves, to draw progress.
pub trait Observer {
    /// A file of `size` bytes starts moving.
    fn start(&mut self, _path: &str, _size: u64) {}
    /// `bytes` more bytes moved.
    fn advance(&mut self, _bytes: u64) {}
    /// The file is done (or failed).
    fn finish(&mut self) {}
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {}

/// One local file and where it goes in the share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    pub source: PathBuf,
    /// Path components inside the share.
    pub remote: Vec<String>,
    pub size: u64,
}

/// What an upload will create, in order: folders (parents first), then files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadPlan {
    pub folders: Vec<Vec<String>>,
    pub files: Vec<LocalFile>,
}

/// A file as the server stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedFile {
    pub path: String,
    pub size: u64,
    pub sha256: Sha256Digest,
}

/// The result of an upload: the sealed share and its files.
#[derive(Debug, Clone)]
pub struct UploadReport {
    pub share: CreatedShare,
    pub files: Vec<UploadedFile>,
}

fn local_name(path: &Path) -> Result<String> {
    let name = match path.file_name() {
        Some(name) => name.to_owned(),
        // `.` or `dir/..` name the folder itself: use its real name.
        None => fs::canonicalize(path).ok().and_then(|p| p.file_name().map(|n| n.to_owned())).ok_or_else(
            || {
                ClientError::Usage(format!(
                    "cannot upload '{}': it has no name to share it under",
                    path.display()
                ))
            },
        )?,
    };
    name.into_string().map_err(|name| {
        ClientError::Usage(format!("cannot upload '{}': its name is not UTF-8", name.to_string_lossy()))
    })
}

/// Turns files and folders given on the command line into an upload plan. Folders keep their
/// name and their relative paths, like `cp -r`. Symbolic links are followed.
pub fn plan_upload(paths: &[PathBuf]) -> Result<UploadPlan> {
    let mut plan = UploadPlan::default();
    let mut seen = BTreeSet::new();
    for path in paths {
        let meta = fs::metadata(path)
            .map_err(|err| ClientError::Usage(format!("cannot read '{}': {err}", path.display())))?;
        let base = local_name(path)?;
        if meta.is_file() {
            add_file(&mut plan, &mut seen, path.clone(), vec![base], meta.len())?;
            continue;
        }
        for entry in WalkDir::new(path).follow_links(true).sort_by_file_name() {
            let entry = entry
                .map_err(|err| ClientError::Usage(format!("cannot read '{}': {err}", path.display())))?;
            let mut remote = vec![base.clone()];
            for part in entry.path().strip_prefix(path).unwrap_or(entry.path()).iter() {
                let part = part.to_str().ok_or_else(|| {
                    ClientError::Usage(format!(
                        "cannot upload '{}': its name is not UTF-8",
                        entry.path().display()
                    ))
                })?;
                remote.push(part.to_owned());
            }
            if entry.file_type().is_dir() {
                check_remote(entry.path(), &remote)?;
                if seen.insert(remote.clone()) {
                    plan.folders.push(remote);
                }
            } else if entry.file_type().is_file() {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                add_file(&mut plan, &mut seen, entry.into_path(), remote, size)?;
            }
        }
    }
    if plan.files.is_empty() && plan.folders.is_empty() {
        return Err(ClientError::Usage("nothing to upload: give files or folders".into()));
    }
    Ok(plan)
}

fn check_remote(source: &Path, remote: &[String]) -> Result<()> {
    check_path(remote)
        .map_err(|err| ClientError::Usage(format!("cannot upload '{}': {err}", source.display())))
}

fn add_file(
    plan: &mut UploadPlan,
    seen: &mut BTreeSet<Vec<String>>,
    source: PathBuf,
    remote: Vec<String>,
    size: u64,
) -> Result<()> {
    check_remote(&source, &remote)?;
    if !seen.insert(remote.clone()) {
        return Err(ClientError::Usage(format!(
            "two uploads would both be named '{}'; rename one or put them in folders",
            remote.join("/")
        )));
    }
    plan.files.push(LocalFile { source, remote, size });
    Ok(())
}

/// SHA-256 of a local file.
pub fn hash_file(path: &Path) -> Result<Sha256Digest> {
    let unreadable = |err: io::Error| ClientError::Usage(format!("cannot read '{}': {err}", path.display()));
    let mut file = File::open(path).map_err(unreadable)?;
    let mut hasher = Hasher::new();
    for_each_chunk(
        &mut file,
        |chunk| {
            hasher.update(chunk);
            Ok(())
        },
        unreadable,
    )?;
    Ok(hasher.finish())
}

/// Creates a share living `lifetime` (or the server default), uploads the plan with every
/// file's SHA-256 declared first, and seals the share.
pub fn upload(
    connection: &mut Connection,
    plan: &UploadPlan,
    lifetime: Option<Duration>,
    observer: &mut dyn Observer,
) -> Result<UploadReport> {
    let share = connection.create_share(lifetime)?;
    let remote = |parts: &[String]| format!("/{}/{}", share.code, parts.join("/"));
    for folder in &plan.folders {
        connection.make_folder(&remote(folder))?;
    }
    let mut files = Vec::with_capacity(plan.files.len());
    for file in &plan.files {
        let path = file.remote.join("/");
        let sha256 = hash_file(&file.source)?;
        let mut source = File::open(&file.source)
            .map_err(|err| ClientError::Usage(format!("cannot read '{}': {err}", file.source.display())))?;
        observer.start(&path, file.size);
        let mut sent = 0;
        let result = connection.store(&remote(&file.remote), sha256, &mut source, &mut |n| {
            sent += n;
            observer.advance(n);
        });
        observer.finish();
        result?;
        files.push(UploadedFile { path, size: sent, sha256 });
    }
    connection.change_folder(&format!("/{}", share.code))?;
    connection.seal()?;
    Ok(UploadReport { share, files })
}

/// The files of `all` that `wanted` names, by exact path or by a folder that holds them.
/// Nothing wanted means everything; a name that matches nothing is an error.
pub fn select(all: &[RemoteFile], wanted: &[String]) -> Result<Vec<RemoteFile>> {
    if wanted.is_empty() {
        return Ok(all.to_vec());
    }
    let mut chosen = BTreeSet::new();
    for name in wanted {
        let name = name.trim_matches('/');
        let before = chosen.len();
        for (index, file) in all.iter().enumerate() {
            let inside = file.path.strip_prefix(name).is_some_and(|rest| rest.starts_with('/'));
            if file.path == name || inside {
                chosen.insert(index);
            }
        }
        if chosen.len() == before && !all.iter().any(|f| f.path == name) {
            return Err(ClientError::NotFound(format!("no file or folder '{name}' in this share")));
        }
    }
    Ok(chosen.into_iter().map(|i| all[i].clone()).collect())
}

/// A downloaded, verified file.
#[derive(Debug, Clone)]
pub struct SavedFile {
    pub file: RemoteFile,
    pub local: PathBuf,
}

/// Downloads `files` of share `code` under `dir`, each verified against its SHA-256.
pub fn download(
    connection: &mut Connection,
    code: &str,
    files: &[RemoteFile],
    dir: &Path,
    observer: &mut dyn Observer,
) -> Result<Vec<SavedFile>> {
    let mut saved = Vec::with_capacity(files.len());
    for file in files {
        let parts: Vec<String> = file.path.split('/').map(str::to_owned).collect();
        // The server names the files; a hostile one must not write outside `dir`.
        check_path(&parts).map_err(|err| {
            ClientError::Integrity(format!("server listed an unsafe path '{}': {err}", file.path))
        })?;
        let mut target = dir.to_path_buf();
        target.extend(&parts);
        observer.start(&file.path, file.size);
        let result = download_one(connection, code, file, &target, observer);
        observer.finish();
        result?;
        saved.push(SavedFile { file: file.clone(), local: target });
    }
    Ok(saved)
}

fn download_one(
    connection: &mut Connection,
    code: &str,
    file: &RemoteFile,
    target: &Path,
    observer: &mut dyn Observer,
) -> Result<()> {
    let local_error =
        |err: io::Error| ClientError::Usage(format!("cannot write '{}': {err}", target.display()));
    let parent = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(local_error)?;
    let mut partial_name = target.file_name().unwrap_or_default().to_owned();
    partial_name.push(PARTIAL_SUFFIX);
    let partial = parent.join(partial_name);
    let mut sink = File::create(&partial).map_err(local_error)?;
    let outcome = connection
        .retrieve(&format!("/{code}/{}", file.path), &mut sink, &mut |n| observer.advance(n))
        .and_then(|(sha256, size)| {
            if sha256 != file.sha256 || size != file.size {
                return Err(ClientError::Integrity(format!(
                    "{}: received {size} bytes with SHA-256 {sha256}, expected {} bytes with SHA-256 {}; not saved",
                    file.path, file.size, file.sha256
                )));
            }
            sink.sync_all().map_err(local_error)?;
            fs::rename(&partial, target).map_err(local_error)
        });
    if outcome.is_err() {
        let _ = fs::remove_file(&partial);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(path: &str) -> RemoteFile {
        RemoteFile { path: path.into(), size: 1, sha256: Sha256Digest::of(path.as_bytes()) }
    }

    fn check(wanted: &[&str], expected: Result<Vec<&str>, u8>) {
        let all = [remote("a.txt"), remote("dir/b"), remote("dir/sub/c"), remote("dirty")];
        let wanted: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
        let got = select(&all, &wanted).map(|files| files.into_iter().map(|f| f.path).collect::<Vec<_>>());
        match expected {
            Ok(paths) => assert_eq!(got.unwrap(), paths),
            Err(code) => assert_eq!(got.unwrap_err().exit_code(), code),
        }
    }

    #[test]
    fn selecting_files() {
        check(&[], Ok(vec!["a.txt", "dir/b", "dir/sub/c", "dirty"]));
        check(&["a.txt"], Ok(vec!["a.txt"]));
        check(&["dir"], Ok(vec!["dir/b", "dir/sub/c"]));
        check(&["dir/sub/", "a.txt"], Ok(vec!["a.txt", "dir/sub/c"]));
        check(&["missing"], Err(3));
    }
}
