//! The server's accept loop: it binds, admits or refuses each connection (`421`), hands the
//! admitted ones to the worker pool, and runs the sweeper that removes expired shares. On a
//! shutdown it closes the listener and waits for the sessions to end (`signals` starts it). It
//! never speaks to a client past that one refusal: the conversation lives in `session`, which
//! knows only `config` and `shared`, never this module. The flags live in `config`.

pub mod admission;
pub mod config;
pub mod log;
pub mod passive;
pub mod pool;
pub mod public;
pub mod session;
pub mod shared;
pub mod shutdown;
pub mod signals;
pub mod store;
pub mod stream;
#[cfg(feature = "tls")]
pub mod tls;
pub mod vpath;

pub use config::{
    Config, DEFAULT_DATA_TIMEOUT, DEFAULT_EXPIRY, DEFAULT_IDLE_TIMEOUT, DEFAULT_LISTEN,
    DEFAULT_MAX_DOWNLOAD_BUDGET, DEFAULT_MAX_EXPIRY, DEFAULT_MAX_HELD_COMMANDS, DEFAULT_MAX_LIST_ENTRIES,
    DEFAULT_MAX_PENDING_DIGESTS, DEFAULT_PASSIVE_TIMEOUT, DEFAULT_ROOT, DEFAULT_SHUTDOWN_GRACE,
    DEFAULT_SWEEP_INTERVAL, DEFAULT_WORKERS, Invocation, format_bytes, parse_args, parse_bytes, usage,
};
pub use shared::Shared;

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::platform::{make_accepted_blocking, wait_for_connection};
use crate::log_event;
use crate::proto::{Reason, Refusal};
use crate::server::admission::TooManyConnections;
use crate::server::config::TlsPolicy;
use crate::server::pool::ThreadPool;
use crate::server::public::PublicAddress;
use crate::server::session::Session;
use crate::server::store::{Limits, Removal, Store, unix_now};

/// Connections the kernel may hold before the accept loop takes them (at least `--max-clients`):
/// a burst of clients waits in the queue, and the ones over a limit get their `421` at once.
const LISTEN_BACKLOG: u32 = 1024;
/// Longest the accept loop waits for a connection before it looks whether to stop.
const SHUTDOWN_POLL: Duration = Duration::from_millis(200);
/// After the grace, how long cut transfers have to send their replies before the process ends
/// without them.
const SHUTDOWN_CUT_MARGIN: Duration = Duration::from_secs(5);

/// A bound, ready server.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    /// What resolving `--public-host` found, for the start line of the log.
    public_note: String,
}

impl Server {
    /// Opens the store (cleaning leftovers of a crash) and binds the listening socket.
    pub fn bind(config: Config) -> anyhow::Result<Server> {
        use anyhow::Context as _;
        let limits = limits_of(&config);
        let store = Store::open(&config.root, limits)
            .with_context(|| format!("cannot open store at {}", config.root.display()))?;
        let backlog = LISTEN_BACKLOG.max(u32::try_from(config.max_clients).unwrap_or(u32::MAX));
        let listener = crate::common::platform::listen(&config.listen, backlog)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let mut config = config;
        let loopback = listener.local_addr()?.ip().is_loopback();
        let policy = match config.tls.policy {
            Some(policy) => policy,
            None if cfg!(feature = "tls") => TlsPolicy::default_for(loopback),
            None if loopback => TlsPolicy::Off,
            None => anyhow::bail!(
                "this anonshare-server was built without TLS (cargo feature tls): to serve shares \
                 in the clear on {}, say --tls off",
                config.listen
            ),
        };
        config.tls.policy = Some(policy);
        #[cfg(feature = "tls")]
        let tls = match policy {
            TlsPolicy::Off => None,
            _ => Some(Arc::new(tls::Tls::open(&config.tls, &config.root)?)),
        };
        let public = PublicAddress::new(config.public_host.clone());
        let public_note = public.reload();
        let shared = Shared::new(config, store, public);
        #[cfg(feature = "tls")]
        let shared = shared.with_tls(tls);
        Ok(Server { listener, shared: Arc::new(shared), public_note })
    }

    /// The lines the server prints after its address: the TLS policy and, with TLS, the
    /// certificate's SHA-256 fingerprint and its pin (what curl's `--pinnedpubkey` takes).
    pub fn start_lines(&self) -> Vec<String> {
        let policy = self.shared.config.tls.policy.unwrap_or(TlsPolicy::Off);
        let first = format!("anonshare-server tls {}", policy.name());
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.shared.tls {
            let identity = tls.identity();
            let made = if identity.generated { " (made by this server)" } else { "" };
            return vec![
                first,
                format!("anonshare-server certificate sha256 {}{made}", identity.fingerprint),
                format!("anonshare-server pin {}", identity.pin),
            ];
        }
        vec![first]
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What the signal watcher steers: the shutdown state and what SIGHUP reloads.
    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Serves until a shutdown starts, then closes the listener and waits for the sessions.
    pub fn run(self) -> anyhow::Result<()> {
        let config = &self.shared.config;
        let pool = ThreadPool::new(config.workers, "session")?;
        let _sweeper = Sweeper::start(Arc::clone(&self.shared))?;
        let active = Arc::new(AtomicUsize::new(0));
        log_event!(
            "event=start listen={} root={} workers={} max_clients={} passive_ports={} {}",
            self.local_addr()?,
            config.root.display(),
            config.workers,
            config.max_clients,
            config.passive_ports.map_or("any".into(), |r| format!("{}-{}", r.min, r.max)),
            self.public_note,
        );
        self.listener.set_nonblocking(true)?;
        let mut trouble = AcceptTrouble::default();
        while !self.shared.shutdown.is_draining() {
            match wait_for_connection(&self.listener, SHUTDOWN_POLL) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(err) => {
                    trouble.failed(&err);
                    continue;
                }
            }
            let (stream, peer) = match self.listener.accept() {
                Ok(accepted) => {
                    trouble.passed();
                    accepted
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                // Resets before accept and running out of descriptors pass; until they do,
                // the loop pauses instead of spinning, and logs once in a while.
                Err(err) => {
                    trouble.failed(&err);
                    continue;
                }
            };
            // Some systems hand out accepted sockets as non-blocking as their listener.
            if make_accepted_blocking(&stream).is_err() {
                continue;
            }
            let id = self.shared.next_connection_id();
            if active.load(Ordering::Acquire) >= config.max_clients {
                let text = format!(
                    "Too many connections ({}); try again when one ends, in a few seconds",
                    config.max_clients
                );
                refuse(stream, id, "max-clients", &text);
                continue;
            }
            let ticket = match self.shared.admission.admit(peer.ip(), Instant::now()) {
                Ok(ticket) => ticket,
                Err(TooManyConnections(limit)) => {
                    let text = format!(
                        "Too many connections from your address ({limit} at once); try again when one of them ends"
                    );
                    refuse(stream, id, "max-per-ip", &text);
                    continue;
                }
            };
            active.fetch_add(1, Ordering::AcqRel);
            let shared = Arc::clone(&self.shared);
            let active = Arc::clone(&active);
            let counted = self.shared.shutdown.enter();
            pool.execute(move || {
                let _counted = counted;
                let _slot = ActiveSlot(active);
                let _ticket = ticket;
                Session::run(stream, peer, id, &shared);
            });
        }
        let Server { listener, shared, .. } = self;
        drop(listener);
        drain(&shared, pool);
        Ok(())
    }
}

/// The first pause after `accept` failed; it doubles while `accept` keeps failing.
const ACCEPT_PAUSE_FIRST: Duration = Duration::from_millis(5);
/// The longest pause between two tries of a failing `accept`.
const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(1);
/// A failing `accept` is logged at most once per this interval, with how often it failed.
const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What the accept loop remembers of `accept` failing: with no file descriptor left
/// (`EMFILE`) it fails at once every time, so the loop pauses, longer each time, and logs the
/// failures once per interval with their count.
struct AcceptTrouble {
    pause: Duration,
    logged_at: Option<Instant>,
    unlogged: u64,
}

impl Default for AcceptTrouble {
    fn default() -> Self {
        AcceptTrouble { pause: ACCEPT_PAUSE_FIRST, logged_at: None, unlogged: 0 }
    }
}

impl AcceptTrouble {
    fn failed(&mut self, err: &io::Error) {
        self.unlogged += 1;
        let now = Instant::now();
        if self.logged_at.is_none_or(|at| now.duration_since(at) >= ACCEPT_ERROR_LOG_INTERVAL) {
            log_event!("event=accept-error error=\"{err}\" times={}", self.unlogged);
            self.logged_at = Some(now);
            self.unlogged = 0;
        }
        thread::sleep(self.pause);
        self.pause = (self.pause * 2).min(ACCEPT_PAUSE_MAX);
    }

    fn passed(&mut self) {
        self.pause = ACCEPT_PAUSE_FIRST;
    }
}

/// Waits for the sessions of a stopping server: idle ones leave at once with a `421`, transfers
/// have the grace and then are cut. Sessions that still run after the margin (a client that
/// reads no reply) are left to end with the process.
fn drain(shared: &Shared, pool: ThreadPool) {
    let shutdown = &shared.shutdown;
    let grace = shutdown.grace();
    log_event!("event=shutdown phase=draining sessions={} grace={}s", shutdown.sessions(), grace.as_secs());
    let left = shutdown.wait_for_sessions(Instant::now() + grace + SHUTDOWN_CUT_MARGIN);
    log_event!("event=shutdown phase=done sessions_left={left}");
    if left > 0 {
        // Dropping the pool would join workers that may never end.
        std::mem::forget(pool);
    }
}

/// The store's limits, as the flags set them.
fn limits_of(config: &Config) -> Limits {
    Limits {
        max_name_bytes: config.max_name_bytes,
        max_path_bytes: config.max_path_bytes,
        max_path_depth: config.max_path_depth,
        max_file_size: config.max_file_size,
        max_share_size: config.max_share_size,
        max_files_per_share: config.max_files_per_share,
        min_free_disk: config.min_free_disk,
        partial_lifetime: config.partial_lifetime,
        claim_hold: config.claim_hold,
        max_claim_segments: config.max_claim_segments,
        reserve_below: config.reserve_below,
        max_counter_hints: config.max_counter_hints,
        max_open_budget_locks: config.max_open_budget_locks,
        manifest_cache_shares: config.manifest_cache_shares,
        manifest_cache_records: config.manifest_cache_records,
        ..Limits::default()
    }
}

/// Gives a connection slot back when a session ends, however it ends.
struct ActiveSlot(Arc<AtomicUsize>);

impl Drop for ActiveSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn refuse(mut stream: TcpStream, id: u64, limit: &str, text: &str) {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let refusal = Refusal::new(Reason::LimitReached, text).with_code(421);
    log_event!("conn={id} peer={peer} event=refused code=421 reason={} limit={limit}", refusal.reason);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(refusal.to_reply().to_string().as_bytes());
    let _ = stream.shutdown(Shutdown::Both);
}

/// Deletes expired and spent shares, and cut uploads past their lifetime, at start and then
/// every sweep interval, until dropped.
struct Sweeper {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Sweeper {
    fn start(shared: Arc<Shared>) -> io::Result<Sweeper> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new().name("sweeper".into()).spawn(move || {
            loop {
                let sweep = shared.store.sweep(unix_now());
                for (code, why) in sweep.removed {
                    let event = match why {
                        Removal::Expired => "expired",
                        Removal::Spent => "spent",
                        Removal::Damaged => "damaged",
                    };
                    log_event!("event={event} share={}", crate::server::log::ShareTag::of(&code));
                }
                if sweep.partials > 0 {
                    log_event!("event=partials-swept count={}", sweep.partials);
                }
                for (what, err) in sweep.failed {
                    log_event!("event=sweep-error about={what} error=\"{err}\"");
                }
                match stopped.recv_timeout(shared.config.sweep_interval) {
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
        })?;
        Ok(Sweeper { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_store_limit_comes_from_its_flag() {
        let flags = [
            "--max-file-size",
            "1M",
            "--max-share-size",
            "2M",
            "--max-files-per-share",
            "3",
            "--min-free-disk",
            "4M",
            "--partial-lifetime",
            "5s",
            "--claim-hold",
            "6s",
            "--max-claim-segments",
            "7",
            "--reserve-below",
            "13",
            "--max-counter-hints",
            "14",
            "--max-open-budget-locks",
            "15",
            "--max-name-bytes",
            "8",
            "--max-path-bytes",
            "90",
            "--max-path-depth",
            "10",
            "--manifest-cache-shares",
            "11",
            "--manifest-cache-records",
            "12",
        ];
        let Invocation::Serve(config) = parse_args(flags.iter().map(std::ffi::OsString::from)).unwrap()
        else {
            panic!("flags of a server to run");
        };
        let limits = limits_of(&config);
        assert_eq!(
            (limits.max_file_size, limits.max_share_size, limits.max_files_per_share),
            (1 << 20, 2 << 20, 3)
        );
        assert_eq!((limits.min_free_disk, limits.partial_lifetime), (4 << 20, Duration::from_secs(5)));
        assert_eq!((limits.claim_hold, limits.max_claim_segments), (Duration::from_secs(6), 7));
        assert_eq!((limits.max_name_bytes, limits.max_path_bytes, limits.max_path_depth), (8, 90, 10));
        assert_eq!((limits.manifest_cache_shares, limits.manifest_cache_records), (11, 12));
        assert_eq!(
            (limits.reserve_below, limits.max_counter_hints, limits.max_open_budget_locks),
            (13, 14, 15)
        );
    }
}

/// Rules of the server's code that a compiler does not check, checked by reading the code.
#[cfg(test)]
mod tidy {
    use std::path::Path;

    /// Every `.rs` file under `src/server/<folder>`, with its text.
    fn sources(folder: &str) -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server").join(folder);
        let mut found = Vec::new();
        let mut folders = vec![root];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                } else if path.extension().is_some_and(|ext| ext == "rs") {
                    found.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        assert!(!found.is_empty(), "no sources under src/server/{folder}");
        found
    }

    #[test]
    fn every_refusal_the_server_sends_is_a_typed_refusal() {
        for (path, text) in sources("") {
            for (number, line) in text.lines().enumerate() {
                for call in ["Reply::new(", "say("] {
                    let by_hand = line
                        .match_indices(call)
                        .any(|(at, _)| matches!(line[at + call.len()..].chars().next(), Some('4' | '5')));
                    assert!(!by_hand, "{path}:{}: build it from a Refusal: {line}", number + 1);
                }
            }
        }
    }

    #[test]
    fn the_session_does_not_import_the_accept_loop() {
        let allowed = [
            "admission",
            "config",
            "log",
            "passive",
            "session",
            "shared",
            "shutdown",
            "store",
            "stream",
            "tls",
            "vpath",
        ];
        for (path, text) in sources("session") {
            for (at, _) in text.match_indices("crate::server::") {
                let rest = &text[at + "crate::server::".len()..];
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                assert!(allowed.contains(&name.as_str()), "{path}: imports crate::server::{name}");
            }
            assert!(!text.contains("super::super"), "{path}: reaches the accept loop through super");
        }
    }
}
