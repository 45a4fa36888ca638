//! What a person sees on stderr while the command line or the shell works: [`Console`], the
//! client library's [`Observer`] for both. Retries and resumes become lines such as
//! `anonshare: resuming big.iso at byte 1048576`; a transfer's progress is one self-rewriting
//! line, drawn only when stderr is a terminal.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::client::observer::Observer;

/// The observer of the command line and the shell.
pub struct Console {
    /// Each file's progress, drawn when there is one.
    progress: Option<TerminalProgress>,
}

impl Console {
    /// Retries and resumes on stderr, and progress too when stderr is a terminal.
    pub fn for_terminal() -> Console {
        Console { progress: io::stderr().is_terminal().then(TerminalProgress::default) }
    }

    /// Retries and resumes on stderr, and no progress.
    pub fn without_progress() -> Console {
        Console { progress: None }
    }

    /// Ends the progress line, if one was drawn.
    pub fn end(&self) {
        self.progress.iter().for_each(TerminalProgress::end);
    }
}

impl Observer for Console {
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
        eprintln!("anonshare: resuming {path} at byte {offset}");
    }
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
        let (done, size) = tally.files.values().fold((0, 0), |(d, s), (done, size)| (d + done, s + size));
        let percent = (done * 100).checked_div(size).unwrap_or(100);
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let files = tally.files.len();
        eprint!(
            "\r\x1b[K{}/{files} files  {:.1}/{:.1} MiB  {percent}%  {}",
            tally.finished,
            mib(done),
            mib(size),
            tally.latest
        );
    }

    /// Ends the progress line.
    pub fn end(&self) {
        if !self.0.lock().unwrap_or_else(PoisonError::into_inner).files.is_empty() {
            eprintln!();
        }
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
    fn a_retry_reads_as_before() {
        assert_eq!(
            retry_line("greeting: server closed the connection", 1, 5, Duration::from_millis(250)),
            "greeting: server closed the connection; retry 1 of 5 in 0.2s"
        );
        assert_eq!(retry_line("x", 3, 3, Duration::from_secs(1)), "x; retry 3 of 3 in 1.0s");
    }
}
