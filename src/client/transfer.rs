//! Whole-share work on top of a [`Connection`]: planning an upload from local files and folders,
//! publishing the plan as a new share, listing a share, choosing its files, and saving them
//! verified. A download is written beside its target and renamed into place only once its
//! SHA-256 matches, so a cut or corrupt file never sits under its final name. Both directions
//! resume through a [`Link`] when the connection drops, and tell their [`Observer`] so.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use walkdir::WalkDir;

use crate::client::link::{Attempt, Link};
use crate::client::observer::Observer;
use crate::client::{
    ClientError, Connection, CreatedShare, RemoteFile, Result, ShareInfo, sent_before_reply,
};
use crate::common::chunks::for_each_chunk;
use crate::common::digest::{Hasher, Sha256Digest};
use crate::common::names::check_path;
use crate::common::platform::free_space;
use crate::proto::Reason;

/// Suffix of a download in progress, beside its final name.
pub const PARTIAL_SUFFIX: &str = ".anonshare-part";

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
    /// The pin of the server's key, when it spoke TLS: the share URL carries it.
    pub pin: Option<crate::common::pin::Pin>,
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
    let size = file.metadata().map_err(unreadable)?.len();
    let mut hasher = Hasher::new();
    for_each_chunk(
        &mut file,
        size,
        |chunk| {
            hasher.update(chunk);
            Ok(())
        },
        unreadable,
    )?;
    Ok(hasher.finish())
}

/// What a new share asks of the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShareOptions {
    /// How long it lives; the server's default when `None`.
    pub lifetime: Option<Duration>,
    /// Complete downloads each file allows; no limit when `None`.
    pub downloads: Option<u64>,
}

/// Publishes files and folders as a new share: plans the upload, creates the share, uploads
/// every file and checks its SHA-256 against the server's, seals the share, and only then says
/// goodbye with `QUIT`. `link` is the upload's own, since every connection it opens owns the new
/// share. A failed or cancelled upload deletes the share and hangs up without `QUIT`, which
/// would seal it: it publishes nothing. This is the one place that decides so.
pub fn publish(
    mut link: Link,
    paths: &[PathBuf],
    options: ShareOptions,
    observer: &dyn Observer,
) -> Result<UploadReport> {
    let plan = plan_upload(paths)?;
    let report = upload(&mut link, &plan, options, observer)?;
    link.quit();
    Ok(report)
}

/// Creates a share, uploads the plan, checks every file's SHA-256 against the server's, and
/// seals the share. A dropped connection is taken up again: files already stored are not sent
/// again, and a file that was cut resumes from the bytes the server kept.
fn upload(
    link: &mut Link,
    plan: &UploadPlan,
    options: ShareOptions,
    observer: &dyn Observer,
) -> Result<UploadReport> {
    let share =
        link.run(observer, |connection, _| connection.create_share(options.lifetime, options.downloads))?;
    link.own(&share.code, &share.owner_token);
    match fill_and_seal(link, plan, &share, observer) {
        Ok(files) => Ok(UploadReport { share, files, pin: link.server_pin() }),
        Err(err) => {
            // Nothing is published, and the bytes that did arrive go now rather than at expiry.
            let _ = link.run_once(|connection| connection.delete_share(&share.code, &share.owner_token));
            Err(err)
        }
    }
}

/// Makes the plan's folders and files in the new share, then seals it.
fn fill_and_seal(
    link: &mut Link,
    plan: &UploadPlan,
    share: &CreatedShare,
    observer: &dyn Observer,
) -> Result<Vec<UploadedFile>> {
    let remote = |parts: &[String]| format!("/{}/{}", share.code, parts.join("/"));
    for folder in &plan.folders {
        link.run(observer, |connection, attempt| match connection.make_folder(&remote(folder)) {
            // Made before the connection dropped.
            Err(err) if attempt.is_retry() && err.reason() == Some(Reason::Exists) => Ok(()),
            other => other,
        })?;
    }
    let files = in_parallel(link, plan.files.len(), |link, index| {
        let file = &plan.files[index];
        let path = file.remote.join("/");
        observer.start(&path, file.size);
        let result = link.run(observer, |connection, attempt| {
            upload_one(connection, attempt, &remote(&file.remote), file, observer)
        });
        observer.finish(&path);
        Ok(UploadedFile { path, size: file.size, sha256: result? })
    })?;
    link.run(observer, |connection, _| {
        connection.change_folder(&format!("/{}", share.code))?;
        match connection.seal() {
            // The seal went through before the connection dropped.
            Err(err) if err.reason() == Some(Reason::Sealed) => Ok(()),
            other => other,
        }
    })?;
    Ok(files)
}

/// Sends one file and returns its SHA-256. A first attempt hashes the bytes as they go and
/// compares with the SHA-256 the server reports: the share is sealed only after every file
/// matched, so nobody sees a file that arrived wrong. A retry hashes the whole file first, to
/// tell whether the server has it already, and declares it so the server checks the bytes it
/// kept together with the rest.
fn upload_one(
    connection: &mut Connection,
    attempt: &mut Attempt,
    remote: &str,
    file: &LocalFile,
    observer: &dyn Observer,
) -> Result<Sha256Digest> {
    let unreadable =
        |err: io::Error| ClientError::Usage(format!("cannot read '{}': {err}", file.source.display()));
    let path = file.remote.join("/");
    let mut offset = 0;
    let mut declared = None;
    if attempt.is_retry() {
        let sha256 = hash_file(&file.source)?;
        // The 226 may have been lost on the way: then the file is stored already.
        if connection.hash(remote).is_ok_and(|stored| stored == sha256) {
            return Ok(sha256);
        }
        offset = connection.kept_bytes(remote)?;
        if offset > file.size {
            offset = 0;
        }
        observer.resuming(&path, offset);
        declared = Some(sha256);
    }
    let mut source = File::open(&file.source).map_err(unreadable)?;
    source.seek(SeekFrom::Start(offset)).map_err(unreadable)?;
    observer.restart(&path, offset);
    let mut sent = Hasher::new();
    let counts = !sent_before_reply(file.size - offset);
    let stored = connection.store(remote, file.size, declared, offset, &mut source, &mut |chunk| {
        if declared.is_none() {
            sent.update(chunk);
        }
        if counts {
            attempt.moved += chunk.len() as u64;
        }
        observer.advance(&path, chunk.len() as u64);
        if observer.cancelled() { Err(ClientError::Cancelled) } else { Ok(()) }
    })?;
    let local = declared.unwrap_or_else(|| sent.finish());
    if stored != local {
        return Err(ClientError::Integrity(format!(
            "{path}: the server stored SHA-256 {stored}, but the bytes sent have SHA-256 {local}"
        )));
    }
    Ok(local)
}

/// What a share holds: its facts from `SITE INFO`, and its files with their SHA-256.
#[derive(Debug, Clone)]
pub struct Listing {
    pub info: ShareInfo,
    pub files: Vec<RemoteFile>,
}

/// Lists share `code`: `SITE INFO` for its expiry and size, then a walk of its folders with
/// `MLSD`, and `HASH` for each file. A dropped connection starts the listing again.
pub fn list_share(link: &mut Link, code: &str, observer: &dyn Observer) -> Result<Listing> {
    link.run(observer, |connection, _| {
        Ok(Listing { info: connection.info(code)?, files: connection.walk_share(code)? })
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

/// Downloads `files` of share `code` under `dir`, each verified against its SHA-256. A dropped
/// connection is taken up again, and a cut file resumes from the bytes already saved.
pub fn download(
    link: &mut Link,
    code: &str,
    files: &[RemoteFile],
    dir: &Path,
    observer: &dyn Observer,
) -> Result<Vec<SavedFile>> {
    let mut targets = Vec::with_capacity(files.len());
    for file in files {
        let parts: Vec<String> = file.path.split('/').map(str::to_owned).collect();
        // The server names the files; a hostile one must not write outside `dir`.
        check_path(&parts).map_err(|err| {
            ClientError::Integrity(format!("server listed an unsafe path '{}': {err}", file.path))
        })?;
        let mut target = dir.to_path_buf();
        target.extend(&parts);
        targets.push(target);
    }
    check_room(dir, files, &targets)?;
    in_parallel(link, files.len(), |link, index| {
        let (file, target) = (&files[index], &targets[index]);
        observer.start(&file.path, file.size);
        let mut partial = Partial::new(target);
        let result = link
            .run(observer, |connection, attempt| partial.fetch(connection, attempt, code, file, observer));
        observer.finish(&file.path);
        result?;
        Ok(SavedFile { file: file.clone(), local: target.clone() })
    })
}

/// Runs `job` for every index in `0..jobs`, on as many connections at once as the link allows
/// (`--parallel`): the link itself and copies of it. Results come back in index order. The first
/// failure stops the others from taking new jobs and is what returns.
fn in_parallel<T: Send>(
    link: &mut Link,
    jobs: usize,
    job: impl Fn(&mut Link, usize) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let workers = link.parallel().min(jobs);
    if workers <= 1 {
        return (0..jobs).map(|index| job(link, index)).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<T>>>> = Mutex::new((0..jobs).map(|_| None).collect());
    let work = |link: &mut Link| {
        while !failed.load(Ordering::Relaxed) {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= jobs {
                break;
            }
            let result = job(link, index);
            failed.fetch_or(result.is_err(), Ordering::Relaxed);
            results.lock().unwrap_or_else(PoisonError::into_inner)[index] = Some(result);
        }
    };
    let mut helpers: Vec<Link> = (1..workers).map(|_| link.fork()).collect();
    thread::scope(|scope| {
        for helper in &mut helpers {
            scope.spawn(|| work(helper));
        }
        work(link);
    });
    helpers.iter_mut().for_each(Link::quit);
    let results = results.into_inner().unwrap_or_else(PoisonError::into_inner);
    let mut done = Vec::with_capacity(jobs);
    let mut skipped = false;
    for result in results {
        match result {
            Some(Ok(value)) => done.push(value),
            Some(Err(err)) => return Err(err),
            None => skipped = true,
        }
    }
    assert!(!skipped, "a job is skipped only after another failed");
    Ok(done)
}

/// Refuses a download that cannot fit: the bytes still to come must fit in the free space of
/// the disk that holds `dir`, where the platform can tell.
fn check_room(dir: &Path, files: &[RemoteFile], targets: &[PathBuf]) -> Result<()> {
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
    /// The digest of the partial file's bytes, carried from one attempt to the next.
    hasher: Option<Hasher>,
}

impl<'t> Partial<'t> {
    fn new(target: &'t Path) -> Partial<'t> {
        Partial { target, path: partial_path(target), hasher: None }
    }

    fn local_error(&self) -> impl Fn(io::Error) -> ClientError + '_ {
        |err| ClientError::Usage(format!("cannot write '{}': {err}", self.target.display()))
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
        let parent = self.target.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(self.local_error())?;
        let mut sink = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(self.local_error())?;
        let mut kept = sink.metadata().map_err(self.local_error())?.len();
        if kept > file.size {
            sink.set_len(0).map_err(self.local_error())?;
            kept = 0;
        }
        let mut hasher = match self.hasher.take() {
            Some(hasher) if hasher.len() == kept => hasher,
            _ => hash_prefix(&mut sink, kept).map_err(self.local_error())?,
        };
        if kept > 0 {
            observer.resuming(&file.path, kept);
        }
        observer.restart(&file.path, kept);
        let remote = format!("/{code}/{}", file.path);
        let received = if kept < file.size || file.size == 0 {
            connection.retrieve(&remote, kept, |chunk| {
                sink.write_all(chunk).map_err(self.local_error())?;
                hasher.update(chunk);
                attempt.moved += chunk.len() as u64;
                observer.advance(&file.path, chunk.len() as u64);
                if observer.cancelled() { Err(ClientError::Cancelled) } else { Ok(()) }
            })
        } else {
            Ok(())
        };
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
        fs::rename(&self.path, self.target).map_err(self.local_error())
    }
}

/// The running SHA-256 of the first `len` bytes of `file`.
fn hash_prefix(file: &mut File, len: u64) -> io::Result<Hasher> {
    let mut hasher = Hasher::new();
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
