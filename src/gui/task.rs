//! Background work for the desktop client. A [`Task`] runs one piece of work on a thread of its
//! own, so the window never waits on the network or the disk. The work reports each file's
//! progress through a [`Reporter`], the library's [`Observer`], into state the window reads when
//! it draws, and hands its result back over a channel. A cancel flag stops a transfer between
//! chunks. This module draws nothing and speaks no FTP: the work it runs goes through the client
//! library, and it wakes the window through a plain callback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

use crate::client::observer::Observer;

/// One file of a transfer, as far as it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProgress {
    /// Path inside the share.
    pub path: String,
    pub size: u64,
    /// Bytes moved or verified so far, counting bytes kept from an earlier attempt.
    pub done: u64,
    /// The file is through: moved and verified, or failed.
    pub finished: bool,
}

impl FileProgress {
    /// The share of the file that is done, from 0 to 1; an empty file is done once it finished.
    pub fn fraction(&self) -> f32 {
        match self.size {
            0 if self.finished => 1.0,
            0 => 0.0,
            size => (self.done.min(size) as f64 / size as f64) as f32,
        }
    }
}

/// What a task's thread and the window share: the files' progress and the cancel flag.
#[derive(Clone)]
struct Shared {
    files: Arc<Mutex<Vec<FileProgress>>>,
    cancel: Arc<AtomicBool>,
}

impl Shared {
    fn files(&self) -> MutexGuard<'_, Vec<FileProgress>> {
        // A panic while the lock was held leaves numbers that are still fine to draw.
        self.files.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Work running on its own thread, with its progress and, once it ends, its result.
pub struct Task<T> {
    shared: Shared,
    outcome: Receiver<T>,
}

/// Where a task stands.
#[derive(Debug)]
pub enum Poll<T> {
    Running,
    Done(T),
    /// The thread ended without a result: the work panicked.
    Lost,
}

impl<T: Send + 'static> Task<T> {
    /// Starts `work` on a new thread named `name`. `files` are the files it will move, in
    /// order, so that every one has a progress bar from the start. `wake` is called whenever
    /// there is something new to draw, from the task's thread.
    pub fn spawn(
        name: &str,
        files: Vec<(String, u64)>,
        wake: impl Fn() + Send + Sync + 'static,
        work: impl FnOnce(&mut Reporter) -> T + Send + 'static,
    ) -> std::io::Result<Task<T>> {
        let files =
            files.into_iter().map(|(path, size)| FileProgress { path, size, done: 0, finished: false });
        let shared =
            Shared { files: Arc::new(Mutex::new(files.collect())), cancel: Arc::new(AtomicBool::new(false)) };
        let (send, outcome) = mpsc::channel();
        let mut reporter = Reporter { shared: shared.clone(), wake: Box::new(wake) };
        thread::Builder::new().name(name.to_owned()).spawn(move || {
            let result = work(&mut reporter);
            // The window may have let go of the task (a cancelled connect): nobody to tell.
            let _ = send.send(result);
            (reporter.wake)();
        })?;
        Ok(Task { shared, outcome })
    }

    /// The result, once the work ended.
    pub fn poll(&self) -> Poll<T> {
        match self.outcome.try_recv() {
            Ok(result) => Poll::Done(result),
            Err(TryRecvError::Empty) => Poll::Running,
            Err(TryRecvError::Disconnected) => Poll::Lost,
        }
    }
}

impl<T> Task<T> {
    /// Asks the work to stop after the chunk in flight; the result then says it was cancelled.
    pub fn cancel(&self) {
        self.shared.cancel.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelling(&self) -> bool {
        self.shared.cancel.load(Ordering::Relaxed)
    }

    /// A copy of every file's progress, in order.
    pub fn progress(&self) -> Vec<FileProgress> {
        self.shared.files().clone()
    }
}

/// The task's side: the [`Observer`] a transfer reports to. Several files may move at once.
pub struct Reporter {
    shared: Shared,
    wake: Box<dyn Fn() + Send + Sync>,
}

impl Reporter {
    fn update(&self, path: &str, change: impl FnOnce(&mut FileProgress)) {
        if let Some(file) = self.shared.files().iter_mut().find(|file| file.path == path) {
            change(file);
        }
        (self.wake)();
    }
}

impl Observer for Reporter {
    fn start(&self, path: &str, size: u64) {
        let mut files = self.shared.files();
        match files.iter_mut().find(|file| file.path == path) {
            Some(file) => file.size = size,
            None => files.push(FileProgress { path: path.to_owned(), size, done: 0, finished: false }),
        }
        drop(files);
        (self.wake)();
    }

    fn advance(&self, path: &str, bytes: u64) {
        self.update(path, |file| file.done += bytes);
    }

    fn restart(&self, path: &str, done: u64) {
        self.update(path, |file| file.done = done);
    }

    fn finish(&self, path: &str) {
        self.update(path, |file| file.finished = true);
    }

    fn cancelled(&self) -> bool {
        self.shared.cancel.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    use super::*;

    /// Polls until the task ends; tasks here finish at once, so the deadline only catches a hang.
    fn wait<T: Send + 'static>(task: &Task<T>) -> Poll<T> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match task.poll() {
                Poll::Running => assert!(Instant::now() < deadline, "the task never ended"),
                other => return other,
            }
            thread::yield_now();
        }
    }

    #[test]
    fn progress_follows_the_observer_calls() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = wakes.clone();
        let (go, gate) = mpsc::channel::<()>();
        let task = Task::spawn(
            "test",
            vec![("a".into(), 10), ("b".into(), 0)],
            move || {
                counter.fetch_add(1, Ordering::Relaxed);
            },
            move |reporter| {
                reporter.start("a", 10);
                reporter.advance("a", 4);
                reporter.restart("a", 2);
                reporter.advance("a", 8);
                reporter.finish("a");
                reporter.start("b", 0);
                reporter.finish("b");
                gate.recv().unwrap();
                reporter.cancelled()
            },
        )
        .unwrap();
        task.cancel();
        go.send(()).unwrap();
        assert!(matches!(wait(&task), Poll::Done(true)), "the work saw the cancel flag");
        let files = task.progress();
        assert_eq!(files[0], FileProgress { path: "a".into(), size: 10, done: 10, finished: true });
        assert_eq!(files[1].fraction(), 1.0, "an empty file is done once it finished");
        assert!(wakes.load(Ordering::Relaxed) >= 7, "every change wakes the window");
    }

    #[test]
    fn a_panicking_task_is_lost_not_hung() {
        let task: Task<()> = Task::spawn("test", Vec::new(), || {}, |_| panic!("boom")).unwrap();
        assert!(matches!(wait(&task), Poll::Lost));
    }

    #[test]
    fn fractions() {
        let file = |size, done, finished| FileProgress { path: "f".into(), size, done, finished };
        assert_eq!(file(0, 0, false).fraction(), 0.0);
        assert_eq!(file(4, 1, false).fraction(), 0.25);
        assert_eq!(file(4, 9, false).fraction(), 1.0);
    }
}
