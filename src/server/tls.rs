//! FTPS on the server side (RFC 4217), below the protocol: the certificate (made on first start
//! and kept under `--root`, or read from `--tls-cert`/`--tls-key` and read again when they
//! change), the two rustls configurations built from it (control connections, which hand out
//! session tickets, and data connections, which never do: clients that do not read them reset
//! the end of an upload), and [`SessionStore`], which lets every data connection of a session
//! resume it for as long as a long transfer runs. It speaks no FTP and decides no reply.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::StoresServerSessions;
use rustls::{ServerConfig, ServerConnection};

use crate::common::pin::{Pin, fingerprint};
use crate::common::platform::write_private;
use crate::log_event;
use crate::server::config::TlsSettings;

/// Folder under `--root` that holds the certificate the server made itself.
pub const GENERATED_DIR: &str = "tls";
/// How long a TLS session may be resumed. Every data connection resumes its control
/// connection's session, so this must outlast the longest transfer plus what follows it; the
/// server tells clients the same (rustls' lifetime for tickets kept in a store).
pub const SESSION_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Session tickets sent on a control connection (TLS 1.3); none go on data connections.
const CONTROL_TICKETS: usize = 2;
/// Bytes of the token that ties a data connection to its control connection's session.
const TOKEN_BYTES: usize = 16;

/// Why TLS could not be set up.
#[derive(Debug)]
pub struct TlsError(String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// Who the server is to its clients: the certificate's pins, printed at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The SHA-256 of the leaf certificate's public key, `sha256//BASE64`.
    pub pin: Pin,
    /// The SHA-256 of the whole leaf certificate, colon-separated hex.
    pub fingerprint: String,
    /// Whether the server made this certificate itself.
    pub generated: bool,
}

/// A random token that only this control connection's TLS sessions carry.
pub type SessionToken = [u8; TOKEN_BYTES];

/// The server's TLS state, shared by every session.
pub struct Tls {
    cert_path: PathBuf,
    key_path: PathBuf,
    generated: bool,
    sessions: Arc<SessionStore>,
    current: RwLock<Loaded>,
}

/// What one reading of the certificate and key gave.
struct Loaded {
    control: Arc<ServerConfig>,
    data: Arc<ServerConfig>,
    identity: Identity,
    stamp: (Option<SystemTime>, Option<SystemTime>),
}

impl Tls {
    /// Reads the configured certificate and key, or the server's own under `root`, making them
    /// on first start.
    pub fn open(settings: &TlsSettings, root: &Path) -> Result<Tls, TlsError> {
        let (cert_path, key_path, generated) = match (&settings.cert, &settings.key) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone(), false),
            _ => {
                let dir = root.join(GENERATED_DIR);
                generate_if_missing(&dir)?;
                (dir.join("cert.pem"), dir.join("key.pem"), true)
            }
        };
        let sessions = Arc::new(SessionStore::new(settings.max_sessions, SESSION_LIFETIME));
        let loaded = load(&cert_path, &key_path, generated, &sessions)?;
        Ok(Tls { cert_path, key_path, generated, sessions, current: RwLock::new(loaded) })
    }

    /// Reads the certificate and key again (after a renewal, or on SIGHUP). On failure the
    /// server keeps serving the ones it had.
    pub fn reload(&self) -> Result<Identity, TlsError> {
        let loaded = load(&self.cert_path, &self.key_path, self.generated, &self.sessions)?;
        let identity = loaded.identity.clone();
        *self.current.write().unwrap_or_else(|poison| poison.into_inner()) = loaded;
        Ok(identity)
    }

    /// Reloads when either file changed since it was read; a new connection calls this.
    pub fn reload_if_changed(&self) {
        let stamp = (modified(&self.cert_path), modified(&self.key_path));
        if self.current.read().unwrap_or_else(|poison| poison.into_inner()).stamp == stamp {
            return;
        }
        match self.reload() {
            Ok(identity) => log_event!("event=tls-reloaded pin={}", identity.pin),
            Err(err) => {
                log_event!("event=tls-reload-failed error={:?}", err.to_string());
                // Do not try again on every connection until the files change once more.
                self.current.write().unwrap_or_else(|poison| poison.into_inner()).stamp = stamp;
            }
        }
    }

    pub fn identity(&self) -> Identity {
        self.current.read().unwrap_or_else(|poison| poison.into_inner()).identity.clone()
    }

    /// A TLS server for a control connection, whose sessions carry a new token.
    pub fn control_connection(&self) -> Result<(ServerConnection, SessionToken), TlsError> {
        let config = Arc::clone(&self.current.read().unwrap_or_else(|poison| poison.into_inner()).control);
        let mut connection = ServerConnection::new(config).map_err(|err| TlsError(err.to_string()))?;
        let mut token = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut token).map_err(|err| TlsError(format!("no random bytes: {err}")))?;
        connection.set_resumption_data(&token);
        Ok((connection, token))
    }

    /// A TLS server for a data connection: it resumes sessions and hands out no tickets.
    pub fn data_connection(&self) -> Result<ServerConnection, TlsError> {
        let config = Arc::clone(&self.current.read().unwrap_or_else(|poison| poison.into_inner()).data);
        ServerConnection::new(config).map_err(|err| TlsError(err.to_string()))
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|meta| meta.modified()).ok()
}

/// Reads the PEM files and builds both configurations around `sessions`.
fn load(cert: &Path, key: &Path, generated: bool, sessions: &Arc<SessionStore>) -> Result<Loaded, TlsError> {
    let stamp = (modified(cert), modified(key));
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| TlsError(format!("cannot read certificates from {}: {err}", cert.display())))?;
    let leaf = chain.first().ok_or_else(|| TlsError(format!("no certificate in {}", cert.display())))?;
    let pin = Pin::of_certificate(leaf)
        .ok_or_else(|| TlsError(format!("the first certificate in {} does not parse", cert.display())))?;
    let identity = Identity { pin, fingerprint: fingerprint(leaf), generated };
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|err| TlsError(format!("cannot read a private key from {}: {err}", key.display())))?;
    let build = |tickets: usize| -> Result<Arc<ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .and_then(|builder| {
                builder.with_no_client_auth().with_single_cert(chain.clone(), private.clone_key())
            })
            .map_err(|err| {
                TlsError(format!("{} and {} do not make a usable pair: {err}", cert.display(), key.display()))
            })?;
        config.session_storage = Arc::clone(sessions) as Arc<dyn StoresServerSessions>;
        config.send_tls13_tickets = tickets;
        Ok(Arc::new(config))
    };
    Ok(Loaded { control: build(CONTROL_TICKETS)?, data: build(0)?, identity, stamp })
}

/// Makes a self-signed ECDSA P-256 certificate and its key in `dir`, unless they are there.
/// Both are written in a folder of their own, then renamed into place whole, so two servers
/// starting on one root never pair one's certificate with the other's key.
fn generate_if_missing(dir: &Path) -> Result<(), TlsError> {
    if dir.join("cert.pem").exists() && dir.join("key.pem").exists() {
        return Ok(());
    }
    let fail =
        |what: &str, err: &dyn fmt::Display| TlsError(format!("cannot {what} in {}: {err}", dir.display()));
    let names = vec!["localhost".to_owned(), "anonshare".to_owned()];
    let made = rcgen::generate_simple_self_signed(names).map_err(|err| fail("make a certificate", &err))?;
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|err| fail("make a certificate", &err))?;
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let parent = dir.parent().unwrap_or(Path::new("."));
    let fresh = parent.join(format!("{GENERATED_DIR}.new-{suffix}"));
    fs::create_dir_all(&fresh).map_err(|err| fail("create a folder", &err))?;
    let written = write_private(&fresh.join("cert.pem"), made.cert.pem().as_bytes())
        .and_then(|()| write_private(&fresh.join("key.pem"), made.signing_key.serialize_pem().as_bytes()));
    if let Err(err) = written {
        let _ = fs::remove_dir_all(&fresh);
        return Err(fail("write the certificate", &err));
    }
    let _ = fs::remove_dir(dir); // an empty folder left by a crash
    if fs::rename(&fresh, dir).is_err() {
        // Another server made one first: use that.
        let _ = fs::remove_dir_all(&fresh);
    }
    Ok(())
}

/// TLS sessions kept for resumption, each usable many times until it expires: every data
/// connection of a control connection resumes the same session, and clients reuse a TLS 1.3
/// ticket (rustls' own store gives each ticket once). Holds at most `max` sessions; the oldest
/// go first.
pub struct SessionStore {
    max: usize,
    lifetime: Duration,
    inner: Mutex<Sessions>,
}

#[derive(Default)]
struct Sessions {
    values: HashMap<Vec<u8>, (Vec<u8>, Instant)>,
    order: VecDeque<Vec<u8>>,
}

impl SessionStore {
    pub fn new(max: usize, lifetime: Duration) -> SessionStore {
        SessionStore { max, lifetime, inner: Mutex::new(Sessions::default()) }
    }

    fn lookup(&self, key: &[u8]) -> Option<Vec<u8>> {
        let inner = self.inner.lock().unwrap_or_else(|poison| poison.into_inner());
        let (value, stored) = inner.values.get(key)?;
        (stored.elapsed() < self.lifetime).then(|| value.clone())
    }
}

impl fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore").field("max", &self.max).finish_non_exhaustive()
    }
}

impl StoresServerSessions for SessionStore {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|poison| poison.into_inner());
        while inner.values.len() >= self.max {
            let Some(oldest) = inner.order.pop_front() else { break };
            inner.values.remove(&oldest);
        }
        if inner.values.insert(key.clone(), (value, Instant::now())).is_none() {
            inner.order.push_back(key);
        }
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.lookup(key)
    }

    /// Like `get`: a session stays usable by the next data connection.
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.lookup(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_kept_for_many_uses_up_to_the_limit() {
        let store = SessionStore::new(2, SESSION_LIFETIME);
        store.put(b"a".to_vec(), b"1".to_vec());
        assert_eq!(store.take(b"a"), Some(b"1".to_vec()));
        assert_eq!(store.take(b"a"), Some(b"1".to_vec()), "a session resumes more than once");
        store.put(b"b".to_vec(), b"2".to_vec());
        store.put(b"c".to_vec(), b"3".to_vec());
        assert_eq!(store.get(b"a"), None, "the oldest went first");
        assert_eq!((store.get(b"b"), store.get(b"c")), (Some(b"2".to_vec()), Some(b"3".to_vec())));
    }

    #[test]
    fn expired_sessions_are_not_resumed() {
        let store = SessionStore::new(4, Duration::ZERO);
        store.put(b"a".to_vec(), b"1".to_vec());
        assert_eq!(store.get(b"a"), None);
    }

    #[test]
    fn the_server_makes_its_certificate_once_and_keeps_it_private() {
        let root = std::env::temp_dir().join(format!("anonshare-tls-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let first = Tls::open(&TlsSettings::default(), &root).unwrap().identity();
        let again = Tls::open(&TlsSettings::default(), &root).unwrap().identity();
        assert_eq!(first, again, "the certificate is kept across starts");
        assert!(first.generated);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(root.join("tls/key.pem")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::remove_dir_all(&root).unwrap();
    }
}
