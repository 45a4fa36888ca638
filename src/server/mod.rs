//! The server's accept loop: it binds, admits or refuses each connection (`421`), hands the
//! admitted ones to the worker pool, and runs the sweeper that removes expired shares. It never
//! speaks to a client past that one refusal: the conversation lives in `session`, which knows
//! only `config` and `shared`, never this module. The flags live in `config`.

pub mod admission;
pub mod config;
pub mod log;
pub mod pool;
pub mod session;
pub mod shared;
pub mod store;
pub mod stream;
#[cfg(feature = "tls")]
pub mod tls;
pub mod vpath;

pub use config::{
    Config, DEFAULT_DATA_TIMEOUT, DEFAULT_EXPIRY, DEFAULT_IDLE_TIMEOUT, DEFAULT_LISTEN,
    DEFAULT_MAX_DOWNLOAD_BUDGET, DEFAULT_MAX_EXPIRY, DEFAULT_MAX_HELD_COMMANDS, DEFAULT_MAX_PENDING_DIGESTS,
    DEFAULT_PASSIVE_TIMEOUT, DEFAULT_ROOT, DEFAULT_SWEEP_INTERVAL, DEFAULT_WORKERS, Invocation, format_bytes,
    parse_args, parse_bytes, usage,
};
pub use shared::Shared;

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::log_event;
use crate::proto::{Reason, Refusal};
use crate::server::admission::Refusal as Turned;
use crate::server::config::TlsPolicy;
use crate::server::pool::ThreadPool;
use crate::server::session::Session;
use crate::server::store::{Limits, Store, unix_now};

/// Connections the kernel may hold before the accept loop takes them (at least `--max-clients`):
/// a burst of clients waits in the queue, and the ones over a limit get their `421` at once.
const LISTEN_BACKLOG: u32 = 1024;

/// A bound, ready server.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    /// Opens the store (cleaning leftovers of a crash) and binds the listening socket.
    pub fn bind(config: Config) -> anyhow::Result<Server> {
        use anyhow::Context as _;
        let limits = Limits {
            max_name_bytes: config.max_name_bytes,
            max_path_bytes: config.max_path_bytes,
            max_path_depth: config.max_path_depth,
            max_file_size: config.max_file_size,
            max_share_size: config.max_share_size,
            max_files_per_share: config.max_files_per_share,
            min_free_disk: config.min_free_disk,
            ..Limits::default()
        };
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
        let shared = Shared::new(config, store);
        #[cfg(feature = "tls")]
        let shared = shared.with_tls(tls);
        Ok(Server { listener, shared: Arc::new(shared) })
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

    /// Serves until the listener fails.
    pub fn run(self) -> anyhow::Result<()> {
        let config = &self.shared.config;
        let pool = ThreadPool::new(config.workers, "session")?;
        let _sweeper = Sweeper::start(Arc::clone(&self.shared))?;
        let active = Arc::new(AtomicUsize::new(0));
        log_event!(
            "event=start listen={} root={} workers={} max_clients={}",
            self.local_addr()?,
            config.root.display(),
            config.workers,
            config.max_clients
        );
        for stream in self.listener.incoming() {
            let stream = match stream {
                Ok(stream) => stream,
                // Resets before accept and running out of descriptors are passing troubles.
                Err(err) => {
                    log_event!("event=accept-error error=\"{err}\"");
                    continue;
                }
            };
            let id = self.shared.next_connection_id();
            if active.load(Ordering::Acquire) >= config.max_clients {
                let text = format!("Too many connections ({}); try again later", config.max_clients);
                refuse(stream, id, "max-clients", &text);
                continue;
            }
            let ticket = match stream.peer_addr() {
                Ok(peer) => match self.shared.admission.admit(peer.ip(), Instant::now()) {
                    Ok(ticket) => ticket,
                    Err(Turned::TooManyConnections(limit)) => {
                        let text =
                            format!("Too many connections from your address ({limit}); try again later");
                        refuse(stream, id, "max-per-ip", &text);
                        continue;
                    }
                    Err(Turned::Guessing(limit)) => {
                        let text = format!(
                            "Too many lookups of shares that do not exist (limit {limit} per hour); try later"
                        );
                        refuse(stream, id, "share-misses", &text);
                        continue;
                    }
                },
                Err(_) => continue,
            };
            active.fetch_add(1, Ordering::AcqRel);
            let shared = Arc::clone(&self.shared);
            let active = Arc::clone(&active);
            pool.execute(move || {
                let _slot = ActiveSlot(active);
                let _ticket = ticket;
                Session::run(stream, id, &shared);
            });
        }
        Ok(())
    }
}

/// Gives a connection slot back when a session ends, however it ends.
struct ActiveSlot(Arc<AtomicUsize>);

impl Drop for ActiveSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn refuse(mut stream: TcpStream, id: u64, reason: &str, text: &str) {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    log_event!("conn={id} peer={peer} event=refused reason={reason}");
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let refusal = Refusal::new(Reason::LimitReached, text).with_code(421);
    let _ = stream.write_all(refusal.to_reply().to_string().as_bytes());
    let _ = stream.shutdown(Shutdown::Both);
}

/// Deletes expired shares at start and then every sweep interval, until dropped.
struct Sweeper {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Sweeper {
    fn start(shared: Arc<Shared>) -> io::Result<Sweeper> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new().name("sweeper".into()).spawn(move || {
            loop {
                match shared.store.sweep(unix_now()) {
                    Ok(removed) => {
                        for code in removed {
                            log_event!("event=expired share={code}");
                        }
                    }
                    Err(err) => log_event!("event=sweep-error error=\"{err}\""),
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
        let allowed = ["admission", "config", "session", "shared", "store", "stream", "tls", "vpath"];
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
