//! Whole-share uploads on top of a [`Connection`]: planning an upload from local files and
//! folders, and publishing the plan as a new share. The share's owner token is told to the
//! [`Observer`] before the first byte, and a failed or cancelled upload deletes the half-made
//! share. It resumes through a [`Link`] when the connection drops, and tells its observer so.
//! Listing and downloading a share are in [`download`](crate::client::download), re-exported
//! here.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use walkdir::WalkDir;

pub use crate::client::download::*;
use crate::client::link::{Attempt, Link};
use crate::client::observer::Observer;
use crate::client::tls::ClientStream;
use crate::client::words::printable;
use crate::client::{ClientError, Connection, CreatedShare, Outgoing, Result, sent_before_reply, wire};
use crate::common::chunks::{chunk_size, for_each_chunk};
use crate::common::digest::{Hasher, Sha256Digest, StreamHasher};
use crate::common::names::check_path;
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

/// What an upload will create, in order: folders (parents first), then files; and what inside
/// the folders it leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadPlan {
    pub folders: Vec<Vec<String>>,
    pub files: Vec<LocalFile>,
    pub skipped: Vec<Skipped>,
}

/// Something inside a folder that an upload leaves out, and why: a name a share cannot hold,
/// a link to nothing, a file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub why: String,
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
/// name and their relative paths, like `cp -r`; symbolic links are followed. A file or folder
/// named on the command line must be uploadable, else nothing is; inside a folder, what cannot
/// be (a name a share cannot hold, a broken link) is left out and listed in the plan's
/// `skipped`, so one odd name does not stop a whole folder.
pub fn plan_upload(paths: &[PathBuf]) -> Result<UploadPlan> {
    let mut plan = UploadPlan::default();
    let mut seen = BTreeSet::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|err| {
            ClientError::Usage(format!("cannot read '{}': {err}", printable(&path.display().to_string())))
        })?;
        let base = local_name(path)?;
        if meta.is_file() {
            check_remote(path, std::slice::from_ref(&base))?;
            add_file(&mut plan, &mut seen, path.clone(), vec![base], meta.len())?;
            continue;
        }
        check_remote(path, std::slice::from_ref(&base))?;
        let mut walk = WalkDir::new(path).follow_links(true).sort_by_file_name().into_iter();
        while let Some(entry) = walk.next() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    let at = err.path().unwrap_or(path).to_owned();
                    let why = match err.io_error() {
                        Some(io) if io.kind() == io::ErrorKind::NotFound => "a link to nothing".to_owned(),
                        Some(io) => io.to_string(),
                        None => err.to_string(),
                    };
                    plan.skipped.push(Skipped { path: at, why });
                    continue;
                }
            };
            let mut remote = vec![base.clone()];
            let mut bad = None;
            for part in entry.path().strip_prefix(path).unwrap_or(entry.path()).iter() {
                match part.to_str() {
                    Some(part) => remote.push(part.to_owned()),
                    None => bad = Some("its name is not UTF-8".to_owned()),
                }
            }
            if let Some(why) = bad.or_else(|| check_path(&remote).err().map(|err| err.to_string())) {
                if entry.file_type().is_dir() {
                    walk.skip_current_dir();
                }
                plan.skipped.push(Skipped { path: entry.into_path(), why });
                continue;
            }
            if entry.file_type().is_dir() {
                if seen.insert(remote.clone()) {
                    plan.folders.push(remote);
                }
            } else if entry.file_type().is_file() {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                add_file(&mut plan, &mut seen, entry.into_path(), remote, size)?;
            } else {
                let why = "not a file or folder (a device, socket or pipe)".to_owned();
                plan.skipped.push(Skipped { path: entry.into_path(), why });
            }
        }
    }
    if plan.files.is_empty() && plan.folders.is_empty() {
        return Err(ClientError::Usage("nothing to upload: give files or folders".into()));
    }
    Ok(plan)
}

fn check_remote(source: &Path, remote: &[String]) -> Result<()> {
    check_path(remote).map_err(|err| {
        ClientError::Usage(format!(
            "cannot upload '{}': {err}; a share's names must work on every system, so rename it",
            printable(&source.display().to_string())
        ))
    })
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
    for skipped in &plan.skipped {
        observer.skipped(&skipped.path.display().to_string(), &skipped.why);
    }
    observer.planned(plan.files.len(), plan.files.iter().map(|file| file.size).sum());
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
    observer.created(&share);
    match fill_and_seal(link, plan, &share, observer) {
        Ok(files) => Ok(UploadReport { share, files, pin: link.server_pin() }),
        Err(err) => {
            // Nothing is published, and the bytes that did arrive go now rather than at expiry.
            let deleted = delete_unfinished(link, &share);
            observer.abandoned(&share, deleted);
            Err(err)
        }
    }
}

/// Deletes a share this upload created and did not finish, on a connection of its own (the
/// upload's may be in the middle of a command); whether it is gone.
pub fn delete_unfinished(link: &Link, share: &CreatedShare) -> bool {
    let mut fresh = link.fork();
    let mut delete = || fresh.run_once(|connection| connection.delete_share(&share.code, &share.owner_token));
    let deleted = match delete() {
        Ok(()) => true,
        // The connection was lost on the way: one more try on a new one.
        Err(err) if err.is_connection() => delete().is_ok(),
        Err(_) => false,
    };
    fresh.quit();
    deleted
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
    let shown = printable(&file.source.display().to_string());
    let unreadable = |err: io::Error| ClientError::Usage(format!("cannot read '{shown}': {err}"));
    let changed = || {
        ClientError::Usage(format!(
            "'{shown}' changed while it was being uploaded; upload it again once it is complete"
        ))
    };
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
    if source.metadata().map_err(unreadable)?.len() != file.size {
        return Err(changed());
    }
    source.seek(SeekFrom::Start(offset)).map_err(unreadable)?;
    observer.restart(&path, offset);
    let counts = !sent_before_reply(file.size - offset);
    let mut progress = |moved: u64| {
        if counts {
            attempt.moved += moved;
        }
        observer.advance(&path, moved);
        if observer.cancelled() { Err(ClientError::Cancelled) } else { Ok(()) }
    };
    let mut sending = SentFile {
        source: Exactly::new(source, file.size - offset.min(file.size)),
        // Hashed on a second thread while this one reads and sends.
        digest: declared.is_none().then(|| StreamHasher::new(Hasher::new(), file.size)),
        spare: Vec::new(),
        remote,
        progress: &mut progress,
    };
    let stored = connection.store(remote, file.size, declared, offset, &mut sending);
    if sending.source.changed {
        return Err(changed());
    }
    let stored = stored?;
    let local = match sending.digest {
        Some(digest) => digest.into_hasher().finish(),
        None => declared.expect("a file is hashed as it goes unless its digest was declared"),
    };
    if stored != local {
        return Err(ClientError::Integrity(format!(
            "{path}: the server stored SHA-256 {stored}, but the bytes sent have SHA-256 {local}"
        )));
    }
    Ok(local)
}

/// Bytes per read and send of an upload: a chunk crosses to the digest's thread without a copy,
/// so larger chunks only mean fewer calls, and the digest's 4 buffers let the sender run 4 MiB
/// ahead of the hashing. A server that receives as the bytes come is woken once per send
/// (measured: a 1 GiB upload's client and server take less CPU than with 64 KiB, and less
/// time than with 256 KiB).
const SEND_CHUNK_BYTES: usize = 1024 * 1024;

/// A local file being sent by `STOR`. Each chunk is read once, into the digest's own buffer,
/// sent from it, and then hashed from it on the digest's thread: the digest is of exactly the
/// bytes sent, and no chunk is copied for it.
struct SentFile<'u> {
    source: Exactly<File>,
    /// The digest of the bytes sent, unless the file's digest was declared before them.
    digest: Option<StreamHasher>,
    /// The buffer chunks are read into when nothing is hashed.
    spare: Vec<u8>,
    remote: &'u str,
    /// Told how many bytes each chunk held, once it went; an error stops the upload.
    progress: &'u mut dyn FnMut(u64) -> Result<()>,
}

impl Outgoing for SentFile<'_> {
    fn send_chunk(&mut self, data: &mut ClientStream) -> Result<bool> {
        let size = chunk_size(self.source.left, SEND_CHUNK_BYTES);
        let mut buffer = match &mut self.digest {
            Some(digest) => digest.buffer(size),
            None => std::mem::take(&mut self.spare),
        };
        buffer.resize(size, 0);
        let read = loop {
            match self.source.read(&mut buffer) {
                Ok(read) => break read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    return Err(ClientError::Usage(format!(
                        "cannot read the file for {}: {err}",
                        self.remote
                    )));
                }
            }
        };
        if read == 0 {
            return Ok(false);
        }
        data.write_all(&buffer[..read]).map_err(wire("STOR"))?;
        match &mut self.digest {
            Some(digest) => digest.hash_filled(buffer, read),
            None => self.spare = buffer,
        }
        (self.progress)(read as u64)?;
        Ok(true)
    }
}

/// A file read for upload that must hold exactly the bytes planned: one that ends early or
/// goes on past them changed while it was read, and reading it fails (and says so in
/// `changed`) rather than sending other bytes than the size announced.
struct Exactly<R> {
    inner: R,
    left: u64,
    changed: bool,
}

impl<R: Read> Exactly<R> {
    fn new(inner: R, left: u64) -> Exactly<R> {
        Exactly { inner, left, changed: false }
    }

    fn fail(&mut self) -> io::Result<usize> {
        self.changed = true;
        Err(io::Error::other("the file changed while it was read"))
    }
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // The planned end: the file must end here too.
            return match self.inner.read(&mut [0u8; 1])? {
                0 => Ok(0),
                _ => self.fail(),
            };
        }
        let most = buffer.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        match self.inner.read(&mut buffer[..most])? {
            0 if most > 0 => self.fail(),
            n => {
                self.left -= n as u64;
                Ok(n)
            }
        }
    }
}

/// Runs `job` for every index in `0..jobs`, on as many connections at once as the link allows
/// (`--parallel`): the link itself and copies of it. Results come back in index order. The first
/// failure stops the others from taking new jobs and is what returns.
pub(crate) fn in_parallel<T: Send>(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], planned: u64) -> (io::Result<Vec<u8>>, bool) {
        let mut source = Exactly::new(bytes, planned);
        let mut out = Vec::new();
        let result = source.read_to_end(&mut out).map(|_| out);
        (result, source.changed)
    }

    #[test]
    fn a_file_read_for_upload_must_hold_exactly_the_planned_bytes() {
        let (read, changed) = read_all(b"abc", 3);
        assert_eq!((read.unwrap(), changed), (b"abc".to_vec(), false));
        assert!(read_all(b"ab", 3).1, "a file that shrank");
        assert!(read_all(b"abcd", 3).1, "a file that grew");
        assert!(read_all(b"x", 0).1, "a file that said it was empty");
    }

    #[test]
    fn odd_names_inside_a_folder_are_skipped_not_fatal() {
        let dir = std::env::temp_dir().join(format!("anonshare-plan-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("logs/bad:dir")).unwrap();
        fs::write(dir.join("logs/good.txt"), b"1").unwrap();
        fs::write(dir.join("logs/2026-01-01T10:00:00.txt"), b"2").unwrap();
        fs::write(dir.join("logs/bad:dir/inside.txt"), b"3").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.join("nowhere"), dir.join("logs/dangling")).unwrap();
        let plan = plan_upload(&[dir.join("logs")]).unwrap();
        let _ = fs::remove_dir_all(&dir);
        let files: Vec<String> = plan.files.iter().map(|f| f.remote.join("/")).collect();
        assert_eq!(files, ["logs/good.txt"]);
        let skipped: Vec<String> =
            plan.skipped.iter().map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned()).collect();
        let mut expected = vec!["2026-01-01T10:00:00.txt", "bad:dir"];
        if cfg!(unix) {
            expected.insert(1, "dangling");
        }
        let mut skipped = skipped;
        skipped.sort();
        expected.sort();
        assert_eq!(skipped, expected);
        assert!(plan.skipped.iter().all(|s| !s.why.is_empty()));
    }
}
