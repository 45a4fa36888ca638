//! Syncs to disk that run beside the uploads: a [`GroupSync`] lets the commits that wait at the
//! same time share one sync, and a [`Flusher`] thread syncs a large upload's file while more of
//! it arrives. Neither decides what is written; each only makes written bytes durable.

use std::fs::File;
use std::io;
use std::sync::{Condvar, Mutex, PoisonError, mpsc};
use std::thread;

/// A sync that commits running at once share: while one sync runs, the commits that arrive
/// wait for the next one, and that one covers them all. A commit asks only after its own write,
/// so the sync that answers it started after the write.
#[derive(Debug, Default)]
pub(super) struct GroupSync {
    state: Mutex<GroupState>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct GroupState {
    /// Requests so far; each caller's ticket is the count when it asked.
    asked: u64,
    /// Every ticket up to this one is covered by a finished sync.
    synced: u64,
    running: bool,
}

impl GroupSync {
    /// Returns once a call of `sync` that started after this call began has succeeded.
    pub(super) fn sync(&self, sync: impl Fn() -> io::Result<()>) -> io::Result<()> {
        let lock = || self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut state = lock();
        state.asked += 1;
        let ticket = state.asked;
        while state.synced < ticket {
            if state.running {
                state = self.done.wait(state).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.running = true;
            let covered = state.asked;
            drop(state);
            let result = sync();
            state = lock();
            state.running = false;
            if result.is_ok() {
                state.synced = covered;
            }
            self.done.notify_all();
            result?;
        }
        Ok(())
    }
}

/// A thread that syncs an upload's file each time it is asked, while the upload goes on.
pub(super) struct Flusher {
    ask: mpsc::SyncSender<()>,
    thread: thread::JoinHandle<()>,
}

impl Flusher {
    pub(super) fn start(file: &File) -> io::Result<Flusher> {
        let file = file.try_clone()?;
        let (ask, asked) = mpsc::sync_channel::<()>(1);
        let thread = thread::Builder::new().name("flusher".into()).spawn(move || {
            while asked.recv().is_ok() {
                let _ = file.sync_data();
            }
        })?;
        Ok(Flusher { ask, thread })
    }

    /// Asks for a sync, unless one is already waiting to start.
    pub(super) fn flush(&self) {
        let _ = self.ask.try_send(());
    }

    /// Waits for the sync under way, if any.
    pub(super) fn stop(self) {
        drop(self.ask);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn a_group_sync_covers_every_write_made_before_it_was_asked() {
        let group = GroupSync::default();
        let written = AtomicU64::new(0);
        let durable = AtomicU64::new(0);
        let syncs = AtomicU64::new(0);
        thread::scope(|scope| {
            for _ in 0..16 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        let mine = written.fetch_add(1, Ordering::SeqCst) + 1;
                        group
                            .sync(|| {
                                syncs.fetch_add(1, Ordering::SeqCst);
                                durable.fetch_max(written.load(Ordering::SeqCst), Ordering::SeqCst);
                                Ok(())
                            })
                            .unwrap();
                        assert!(durable.load(Ordering::SeqCst) >= mine, "write {mine} was not covered");
                    }
                });
            }
        });
        assert!(syncs.load(Ordering::SeqCst) <= 16 * 50);
        // A failed sync is reported to the caller that ran it, and the next caller runs its own.
        assert!(group.sync(|| Err(io::ErrorKind::Other.into())).is_err());
        assert!(group.sync(|| Ok(())).is_ok());
    }
}
