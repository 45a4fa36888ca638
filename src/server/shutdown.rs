//! [`Shutdown`]: whether the server is stopping, and since when. The signal watcher (or a
//! test) starts it; the accept loop then closes its listener, idle sessions say `421` and
//! leave, and transfers run until the grace is over. It counts the sessions still running, so
//! the accept loop can wait for the last one. It touches no socket itself.

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The server's stop state, shared by the accept loop, the sessions and the signal watcher.
pub struct Shutdown {
    grace: Duration,
    begun: OnceLock<Instant>,
    sessions: Mutex<usize>,
    changed: Condvar,
}

/// A running session, counted until dropped.
pub struct SessionGuard(Arc<Shutdown>);

impl Shutdown {
    pub fn new(grace: Duration) -> Shutdown {
        Shutdown { grace, begun: OnceLock::new(), sessions: Mutex::new(0), changed: Condvar::new() }
    }

    /// Starts the shutdown; `false` if it had already started.
    pub fn begin(&self) -> bool {
        let first = self.begun.set(Instant::now()).is_ok();
        self.changed.notify_all();
        first
    }

    /// Whether the server is stopping: no new connection, no new command.
    pub fn is_draining(&self) -> bool {
        self.begun.get().is_some()
    }

    /// Whether transfers in flight have had their grace and must now be cut.
    pub fn past_grace(&self) -> bool {
        self.begun.get().is_some_and(|begun| begun.elapsed() >= self.grace)
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Counts a session until the guard is dropped.
    pub fn enter(self: &Arc<Self>) -> SessionGuard {
        *self.sessions.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        SessionGuard(Arc::clone(self))
    }

    /// Sessions running now.
    pub fn sessions(&self) -> usize {
        *self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until no session runs or `deadline` passes; returns how many still run.
    pub fn wait_for_sessions(&self, deadline: Instant) -> usize {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if *sessions == 0 || left.is_zero() {
                return *sessions;
            }
            sessions = self.changed.wait_timeout(sessions, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        *self.0.sessions.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.0.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draining_then_past_grace() {
        let shutdown = Shutdown::new(Duration::ZERO);
        assert!(!shutdown.is_draining() && !shutdown.past_grace());
        assert!(shutdown.begin());
        assert!(!shutdown.begin(), "a second start is not a first");
        assert!(shutdown.is_draining() && shutdown.past_grace());
        let long = Shutdown::new(Duration::from_secs(3600));
        long.begin();
        assert!(long.is_draining() && !long.past_grace());
    }

    #[test]
    fn the_wait_ends_with_the_last_session() {
        let shutdown = Arc::new(Shutdown::new(Duration::ZERO));
        let (entered, go) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let worker = {
            let guard = shutdown.enter();
            std::thread::spawn(move || {
                let _guard = guard;
                entered.send(()).unwrap();
                let _ = released.recv();
            })
        };
        go.recv().unwrap();
        assert_eq!(shutdown.wait_for_sessions(Instant::now()), 1, "the deadline passed");
        drop(release);
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(shutdown.wait_for_sessions(far), 0);
        worker.join().unwrap();
    }
}
