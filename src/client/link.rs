//! A connection to one server that comes back: work runs through [`Link::run`], and when the
//! connection drops or times out the link connects again, after a growing pause, and runs the
//! work again, as long as its retries last. The work itself decides how to resume. Each retry
//! is told to the work's [`Observer`]; the link prints nothing.

use std::thread;
use std::time::Duration;

use crate::client::observer::Observer;
use crate::client::settings::ClientSettings;
use crate::client::tls::Trust;
use crate::client::{ClientError, Connection, Result, gave_up};
use crate::common::pin::Pin;
use crate::proto::Reason;

/// Pause before the first retry; each further one doubles it.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest pause between two retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// What one run of the work knows about the runs before it.
#[derive(Debug, Default)]
pub struct Attempt {
    /// How many earlier runs of the work were cut off: 0 on the first run. A connection that
    /// failed before the work ran does not count, since nothing was done.
    pub number: u32,
    /// Bytes this run moved; a run that moved some makes the next failure count as the first.
    pub moved: u64,
}

impl Attempt {
    pub fn is_retry(&self) -> bool {
        self.number > 0
    }
}

/// A connection to one server, opened on demand and again after a failure.
pub struct Link {
    address: String,
    timeout: Duration,
    retries: u32,
    /// Connections a transfer of many files may use at once, this one included.
    parallel: usize,
    connection: Option<Connection>,
    /// A share this client is uploading to: every new connection proves it owns it.
    owner: Option<(String, String)>,
    /// Whether the server ever answered this link: until it has, a timeout is not retried.
    answered: bool,
    /// Whom the link believes is the server: a pin, `--insecure`, or the system's roots.
    trust: Trust,
    /// The pin of the key the server last showed.
    seen_pin: Option<Pin>,
}

impl Link {
    /// A link to `address` (`HOST:PORT`) with the timeout, retries and parallel connections of
    /// `settings`; nothing is connected until work runs.
    pub fn new(address: impl Into<String>, settings: &ClientSettings) -> Link {
        Link {
            address: address.into(),
            timeout: settings.timeout,
            retries: settings.retries,
            parallel: settings.parallel.max(1),
            connection: None,
            owner: None,
            answered: false,
            trust: Trust { pin: None, insecure: settings.insecure },
            seen_pin: None,
        }
    }

    /// The same link, refusing any server whose key does not have `pin` (a share URL's).
    pub fn pinned(mut self, pin: Option<Pin>) -> Link {
        self.trust.pin = pin.or(self.trust.pin);
        self
    }

    /// The pin this link holds the server to, if any.
    pub fn pin(&self) -> Option<Pin> {
        self.trust.pin
    }

    /// The pin of the key the server showed, once connected over TLS: what a share URL carries.
    pub fn server_pin(&self) -> Option<Pin> {
        self.seen_pin
    }

    pub fn parallel(&self) -> usize {
        self.parallel
    }

    /// Another link to the same server, with the same settings and share, not yet connected.
    pub fn fork(&self) -> Link {
        Link { connection: None, owner: self.owner.clone(), address: self.address.clone(), ..*self }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// From now on, every new connection sends `SITE OWNER code token` before its work.
    pub fn own(&mut self, code: &str, token: &str) {
        self.owner = Some((code.to_owned(), token.to_owned()));
    }

    /// Runs `work` on the connection; when the connection fails, connects again and runs it
    /// again, until it succeeds, fails another way, or fails `retries` times in a row without
    /// moving a byte. Each retry is told to `observer` before its pause.
    pub fn run<T>(
        &mut self,
        observer: &dyn Observer,
        mut work: impl FnMut(&mut Connection, &mut Attempt) -> Result<T>,
    ) -> Result<T> {
        let mut failures = 0;
        let mut attempt = Attempt::default();
        loop {
            attempt.moved = 0;
            let mut ran = false;
            let outcome = self.connection().and_then(|connection| {
                ran = true;
                work(connection, &mut attempt)
            });
            let err = match outcome {
                // A server that never answered is not waited for again: one timeout is enough.
                Err(err @ ClientError::TimedOut(_)) if !self.answered => return Err(err),
                Err(err) if err.is_transient() => err,
                other => return other,
            };
            let why = err.to_string();
            self.connection = None;
            failures = if attempt.moved > 0 { 1 } else { failures + 1 };
            if failures > self.retries {
                return Err(match self.retries {
                    0 => err,
                    retries => gave_up(&why, retries),
                });
            }
            let pause = backoff(failures);
            observer.retrying(&why, failures, self.retries, pause);
            thread::sleep(pause);
            // Only work that ran may have done something a retry must take into account.
            if ran {
                attempt.number += 1;
            }
        }
    }

    /// Runs `work` once, on the open connection or a new one, without retrying.
    pub fn run_once<T>(&mut self, work: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let outcome = self.connection().and_then(work);
        if outcome.as_ref().is_err_and(ClientError::is_connection) {
            self.connection = None;
        }
        outcome
    }

    /// The open connection, or a new one. A connection the server has hung up on meanwhile
    /// (an idle timeout, with its `421`) is replaced.
    fn connection(&mut self) -> Result<&mut Connection> {
        if self.connection.as_ref().is_some_and(|connection| !connection.is_open()) {
            self.connection = None;
        }
        if self.connection.is_none() {
            let mut connection = Connection::open(&self.address, self.timeout, &self.trust)?;
            self.answered = true;
            self.seen_pin = connection.server_pin().or(self.seen_pin);
            if let Some((code, token)) = &self.owner {
                match connection.claim(code, token) {
                    Ok(()) => {}
                    // Sealed while the reply was lost: what remains to do only reads.
                    Err(err) if err.reason() == Some(Reason::Sealed) => {}
                    Err(err) => return Err(err),
                }
            }
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("connection just opened"))
    }

    /// Says goodbye on the open connection, if there is one.
    pub fn quit(&mut self) {
        if let Some(connection) = self.connection.take() {
            connection.quit();
        }
    }
}

/// The pause before retry `failures` (1-based): doubling from [`FIRST_BACKOFF`] up to
/// [`MAX_BACKOFF`].
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(1), FIRST_BACKOFF);
        assert_eq!(backoff(2), FIRST_BACKOFF * 2);
        assert_eq!(backoff(3), FIRST_BACKOFF * 4);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    /// Keeps every retry it is told about.
    #[derive(Default)]
    struct Retries(Mutex<Vec<(u32, u32, Duration)>>);

    impl Observer for Retries {
        fn retrying(&self, why: &str, attempt: u32, of: u32, pause: Duration) {
            assert!(why.contains("127.0.0.1:1"), "the reason names the server: {why}");
            self.0.lock().unwrap().push((attempt, of, pause));
        }
    }

    #[test]
    fn a_server_that_refuses_is_retried_then_reported() {
        let settings = ClientSettings { timeout: Duration::from_secs(1), retries: 3, ..Default::default() };
        let mut link = Link::new("127.0.0.1:1", &settings);
        let mut runs = 0;
        let observer = Retries::default();
        // Port 1 refuses: the connection error is retried, then reported.
        let err = link
            .run(&observer, |_, _| -> Result<()> {
                runs += 1;
                Ok(())
            })
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("gave up after 3 retries"), "{err}");
        assert_eq!(runs, 0, "work never ran without a connection");
        let told = observer.0.into_inner().unwrap();
        assert_eq!(told, [(1, 3, backoff(1)), (2, 3, backoff(2)), (3, 3, backoff(3))], "each retry is told");
    }

    #[test]
    fn a_link_takes_its_settings() {
        let settings = ClientSettings { parallel: 3, ..Default::default() };
        assert_eq!(Link::new("h:1", &settings).parallel(), 3);
        assert_eq!(Link::new("h:1", &settings).fork().parallel(), 3, "a fork keeps them");
        assert_eq!(Link::new("h:1", &ClientSettings { parallel: 0, ..settings }).parallel(), 1);
    }
}
