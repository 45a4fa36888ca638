//! What a person sees on stderr while the command line or the shell works: [`Console`], the
//! client library's [`Observer`] for both. Retries and resumes become lines such as
//! `anonshare: resuming big.iso at byte 1048576`, a new share's owner token is told as soon as
//! the share exists, and a transfer's progress is one self-rewriting line, drawn only when
//! stderr is a terminal. Its cancel flag is what Ctrl-C sets.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::client::observer::Observer;
use crate::client::words::{count, printable};
use crate::client::{CreatedShare, ShareUrl};

/// The observer of the command line and the shell.
pub struct Console {
    /// Each file's progress, drawn when there is one.
    progress: Option<TerminalProgress>,
    /// Set to stop the work between two chunks (Ctrl-C).
    cancel: Arc<AtomicBool>,
    /// The server uploads go to (`HOST:PORT`), for the URL of a new share.
    server: Option<(String, u16)>,
    /// The share an upload created, once it exists.
    created: Mutex<Option<CreatedShare>>,
}

impl Console {
    /// Retries and resumes on stderr, and progress too when stderr is a terminal.
    pub fn for_terminal() -> Console {
        Console::with_progress(io::stderr().is_terminal().then(TerminalProgress::default))
    }

    /// Retries and resumes on stderr, and no progress.
    pub fn without_progress() -> Console {
        Console::with_progress(None)
    }

    fn with_progress(progress: Option<TerminalProgress>) -> Console {
        Console { progress, cancel: Arc::default(), server: None, created: Mutex::new(None) }
    }

    /// Uploads go to `host:port`: a new share is told with its URL.
    pub fn uploading_to(mut self, host: &str, port: u16) -> Console {
        self.server = Some((host.to_owned(), port));
        self
    }

    /// The flag that stops the work between two chunks when set.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.cancel)
    }

    /// The share an upload created, if it did.
    pub fn created_share(&self) -> Option<CreatedShare> {
        self.created.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The URL of `share` on the server uploads go to.
    pub fn url_of(&self, share: &CreatedShare) -> String {
        match &self.server {
            Some((host, port)) => ShareUrl::of_created(share, host, *port, None).to_string(),
            None => share.code.clone(),
        }
    }

    /// How to delete `share` by hand.
    pub fn how_to_delete(&self, share: &CreatedShare) -> String {
        format!("anonshare delete --token {} {}", share.owner_token, self.url_of(share))
    }

    /// Tells whether the unfinished `share` is gone, or how to delete it.
    pub fn tell_abandoned(&self, share: &CreatedShare, deleted: bool) {
        self.end();
        match deleted {
            true => eprintln!("anonshare: the unfinished share was deleted; nothing was published"),
            false => eprintln!(
                "anonshare: the unfinished share could not be deleted; it expires at {}, or delete it now: {}",
                share.expires,
                self.how_to_delete(share)
            ),
        }
    }

    /// Ends the progress line, if one was drawn.
    pub fn end(&self) {
        self.progress.iter().for_each(TerminalProgress::end);
    }
}

impl Observer for Console {
    fn planned(&self, files: usize, bytes: u64) {
        self.progress.iter().for_each(|progress| progress.planned(files, bytes));
    }

    fn created(&self, share: &CreatedShare) {
        *self.created.lock().unwrap_or_else(PoisonError::into_inner) = Some(share.clone());
        eprintln!("owner token: {} (keep it to manage this share)", share.owner_token);
        eprintln!("expires: {}", share.expires);
        eprintln!(
            "share: {} (published once every file is uploaded; to delete it: {})",
            self.url_of(share),
            self.how_to_delete(share)
        );
    }

    fn abandoned(&self, share: &CreatedShare, deleted: bool) {
        self.tell_abandoned(share, deleted);
    }

    fn skipped(&self, path: &str, why: &str) {
        eprintln!("anonshare: skipped '{}': {why}", printable(path));
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    fn start(&self, path: &str, size: u64) {
        self.progress.iter().for_each(|progress| progress.start(path, size));
    }

    fn advance(&self, path: &str, bytes: u64) {
        self.progress.iter().for_each(|progress| progress.advance(path, bytes));
    }

    fn restart(&self, path: &str, done: u64) {
        self.progress.iter().for_each(|progress| progress.restart(path, done));
    }

    fn finish(&self, path: &str) {
        self.progress.iter().for_each(|progress| progress.finish(path));
    }

    fn retrying(&self, why: &str, attempt: u32, of: u32, pause: Duration) {
        eprintln!("anonshare: {}", retry_line(why, attempt, of, pause));
    }

    fn resuming(&self, path: &str, offset: u64) {
        eprintln!("anonshare: resuming {} at byte {offset}", printable(path));
    }
}

/// The progress line: files done of all, bytes done of all, and the latest file.
fn progress_line(tally: &Tally) -> String {
    let (done, started) = tally.files.values().fold((0, 0), |(d, s), (done, size)| (d + done, s + size));
    let (files, size) = tally.planned.unwrap_or((tally.files.len(), started));
    let percent = (done * 100).checked_div(size).unwrap_or(100).min(100);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    format!(
        "{}/{} {:.1}/{:.1} MiB  {percent}%  {}",
        tally.finished,
        count(files as u64, "file", "files"),
        mib(done),
        mib(size),
        printable(&tally.latest)
    )
}

/// `{why}; retry {attempt} of {of} in {pause}s`, the pause to a tenth of a second.
fn retry_line(why: &str, attempt: u32, of: u32, pause: Duration) -> String {
    format!("{why}; retry {attempt} of {of} in {:.1}s", pause.as_secs_f64())
}

/// One self-rewriting line on stderr for a whole transfer: files done, bytes moved of the files
/// started so far, and the file that started last. Files may move in parallel.
#[derive(Default)]
struct TerminalProgress(Mutex<Tally>);

#[derive(Default)]
struct Tally {
    /// Bytes moved and size, by file.
    files: BTreeMap<String, (u64, u64)>,
    finished: usize,
    /// The files and bytes of the whole transfer, once told.
    planned: Option<(usize, u64)>,
    latest: String,
    last_draw: Option<Instant>,
}

impl TerminalProgress {
    fn update(&self, force: bool, change: impl FnOnce(&mut Tally)) {
        let mut tally = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut tally);
        let now = Instant::now();
        if !force && tally.last_draw.is_some_and(|t| now.duration_since(t) < Duration::from_millis(100)) {
            return;
        }
        tally.last_draw = Some(now);
        eprint!("\r\x1b[K{}", progress_line(&tally));
    }

    fn planned(&self, files: usize, bytes: u64) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).planned = Some((files, bytes));
    }

    /// Ends the progress line.
    pub fn end(&self) {
        if !self.0.lock().unwrap_or_else(PoisonError::into_inner).files.is_empty() {
            eprintln!();
        }
    }
}

impl TerminalProgress {
    /// Counts `path` as started, without drawing.
    #[cfg(test)]
    fn files_started(&self, path: &str, size: u64) {
        let mut tally = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        tally.files.insert(path.to_owned(), (0, size));
        tally.latest = path.to_owned();
    }
}

impl Observer for TerminalProgress {
    fn start(&self, path: &str, size: u64) {
        self.update(true, |tally| {
            tally.files.insert(path.to_owned(), (0, size));
            tally.latest = path.to_owned();
        });
    }

    fn advance(&self, path: &str, bytes: u64) {
        self.update(false, |tally| {
            if let Some((done, _)) = tally.files.get_mut(path) {
                *done += bytes;
            }
        });
    }

    fn restart(&self, path: &str, kept: u64) {
        self.update(true, |tally| {
            if let Some((done, _)) = tally.files.get_mut(path) {
                *done = kept;
            }
        });
    }

    fn finish(&self, _path: &str) {
        self.update(true, |tally| tally.finished += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_count_is_the_whole_transfers_from_the_start() {
        let progress = TerminalProgress::default();
        progress.planned(3, 3 << 20);
        progress.files_started("a", 1 << 20);
        let tally = progress.0.lock().unwrap();
        assert_eq!(progress_line(&tally), "0/3 files 0.0/3.0 MiB  0%  a");
    }

    #[test]
    fn one_file_is_one_file() {
        let progress = TerminalProgress::default();
        progress.planned(1, 10);
        progress.files_started("a", 10);
        let mut tally = progress.0.lock().unwrap();
        tally.finished = 1;
        assert_eq!(progress_line(&tally), "1/1 file 0.0/0.0 MiB  0%  a");
    }

    #[test]
    fn a_retry_reads_as_before() {
        assert_eq!(
            retry_line("greeting: server closed the connection", 1, 5, Duration::from_millis(250)),
            "greeting: server closed the connection; retry 1 of 5 in 0.2s"
        );
        assert_eq!(retry_line("x", 3, 3, Duration::from_secs(1)), "x; retry 3 of 3 in 1.0s");
    }
}
