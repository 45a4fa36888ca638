//! The client library: one control connection to an anonshare server (or any FTP server that
//! speaks the same subset), typed operations on it, share URLs, and the errors a caller
//! branches on. Used by the `anonshare` command line and its interactive shell.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::client::tls::{ClientStream, Trust};
use crate::common::chunks::for_each_chunk;
use crate::common::digest::Sha256Digest;
use crate::common::line_io::read_line;
use crate::common::pin::Pin;
use crate::proto::line::{Line, LineBuffer};
use crate::proto::{
    Command, ListingEntry, Reason, Refusal, Reply, ReplyParser, SiteCommand, TransferType, parse_epsv_reply,
    parse_hash_reply, parse_mlsx_line, parse_pasv_reply, parse_stored_reply,
};
pub use crate::proto::{CreatedShare, ShareInfo};

/// Time a connect, a reply, or the next bytes of a transfer may take (the `--timeout` default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for the server's reason after a data connection failed.
const REPLY_AFTER_DATA_FAILURE: Duration = Duration::from_secs(2);
/// Longest reply line accepted from a server.
pub const MAX_REPLY_LINE: usize = 8192;
/// Most lines in one multi-line reply.
pub const MAX_REPLY_LINES: usize = 1000;
/// Longest listing accepted from a server, in bytes.
pub const MAX_LISTING_BYTES: u64 = 64 * 1024 * 1024;
/// FTP port assumed when a URL names none.
pub const FTP_DEFAULT_PORT: u16 = 21;

/// What went wrong, sorted the way the exit code needs.
#[derive(Debug)]
pub enum ClientError {
    /// Bad arguments or an unusable local path (exit 1).
    Usage(String),
    /// The server cannot be reached, or the connection broke or timed out (exit 2).
    Connection(String),
    /// The server refused a command: what the client was doing, and the server's refusal,
    /// classified by `proto` (exit code by its reason).
    Server { doing: String, refusal: Refusal },
    /// A file or folder the user named is not in the share (exit 3).
    NotFound(String),
    /// Bytes that do not match their SHA-256 (exit 4).
    Integrity(String),
    /// The work would break a local limit, such as the room on the local disk (exit 5).
    Refused(String),
    /// The user stopped the transfer (exit 1); nothing is retried.
    Cancelled,
}

impl ClientError {
    /// The process exit code for this error, as documented in `--help`.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Usage(_) | ClientError::Cancelled => 1,
            ClientError::Connection(_) => 2,
            ClientError::Server { refusal, .. } => match refusal.reason {
                // A path that names no share is a share that is not there.
                Reason::NotFound | Reason::OutsideShare => 3,
                Reason::DigestMismatch => 4,
                Reason::Closing
                | Reason::NoDataConnection
                | Reason::TransferCut
                | Reason::Busy
                | Reason::StorageError => 2,
                _ => 5,
            },
            ClientError::NotFound(_) => 3,
            ClientError::Integrity(_) => 4,
            ClientError::Refused(_) => 5,
        }
    }

    /// Why the server refused, when it did.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            ClientError::Server { refusal, .. } => Some(refusal.reason),
            _ => None,
        }
    }

    /// Whether the share or file is missing: named by the user and not listed, or not found
    /// by the server (or expired).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::NotFound(_))
            || matches!(self.reason(), Some(Reason::NotFound | Reason::OutsideShare))
    }

    /// Whether running the same work again may succeed: the connection failed, or the server
    /// refused for now (4yz, RFC 959 §4.2.1). A permanent refusal (5yz) never is. Neither is a
    /// limit or a full disk, which do not clear within the seconds retries take.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Connection(_) => true,
            ClientError::Server { refusal, .. } => {
                refusal.is_transient() && !matches!(refusal.reason, Reason::LimitReached | Reason::DiskFull)
            }
            _ => false,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Usage(text)
            | ClientError::Connection(text)
            | ClientError::NotFound(text)
            | ClientError::Integrity(text)
            | ClientError::Refused(text) => f.write_str(text),
            ClientError::Server { doing, refusal } => {
                write!(f, "{doing}: server said {} {}", refusal.code, refusal.text)
            }
            ClientError::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl std::error::Error for ClientError {}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Turns an I/O error on the wire into a connection error that names what was being done.
fn wire(doing: &str) -> impl FnOnce(io::Error) -> ClientError + '_ {
    move |err| match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            ClientError::Connection(format!("{doing}: timed out waiting for the server"))
        }
        _ => ClientError::Connection(format!("{doing}: {err}")),
    }
}

/// A refusal from the server, typed once here: callers branch on its reason, never its words.
pub fn reply_error(command: &str, reply: &Reply) -> ClientError {
    ClientError::Server { doing: command.to_owned(), refusal: Refusal::from_reply(reply) }
}

/// A share's address: `ftp://HOST:PORT/CODE/`, with the server's key pin in the fragment
/// (`#pin=sha256//BASE64`) when it speaks TLS. A fragment never goes to a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareUrl {
    /// Host name or address as written; IPv6 without brackets.
    pub host: String,
    pub port: u16,
    pub code: String,
    /// The SHA-256 of the server's public key: a server that shows another key, or no TLS,
    /// is refused.
    pub pin: Option<Pin>,
}

impl ShareUrl {
    /// Parses `ftp://HOST[:PORT]/CODE[/][#pin=sha256//BASE64]`.
    pub fn parse(text: &str) -> Result<ShareUrl> {
        let bad = || {
            ClientError::Usage(format!(
                "invalid share URL '{text}': expected ftp://HOST:PORT/CODE/ as printed by upload"
            ))
        };
        let (text, pin) = match text.split_once('#') {
            Some((before, fragment)) => {
                let pin = fragment.strip_prefix("pin=").ok_or_else(bad)?;
                let pin = pin.parse::<Pin>().map_err(|err| ClientError::Usage(err.to_string()))?;
                (before, Some(pin))
            }
            None => (text, None),
        };
        let rest = text.strip_prefix("ftp://").ok_or_else(bad)?;
        let (authority, path) = rest.split_once('/').ok_or_else(bad)?;
        let (host, port) = split_host_port(authority, FTP_DEFAULT_PORT).ok_or_else(bad)?;
        let code = path.trim_end_matches('/');
        if code.is_empty() || code.contains('/') {
            return Err(bad());
        }
        Ok(ShareUrl { host, port, code: code.to_owned(), pin })
    }

    /// `HOST:PORT` for connecting, brackets around IPv6.
    pub fn address(&self) -> String {
        join_host_port(&self.host, self.port)
    }
}

impl fmt::Display for ShareUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ftp://{}/{}/", self.address(), self.code)?;
        match &self.pin {
            Some(pin) => write!(f, "#pin={pin}"),
            None => Ok(()),
        }
    }
}

/// Splits `host:port`, `[v6]:port` or a bare host (taking `default_port`).
pub fn split_host_port(text: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host.to_owned(), port.parse().ok()?)),
        Some(_) => None,
        None if text.is_empty() => None,
        None => Some((text.to_owned(), default_port)),
    }
    .filter(|(host, _)| !host.is_empty())
}

/// `host:port`, with brackets around an IPv6 host.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// One file of a share, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// Path inside the share, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: Sha256Digest,
}

/// An upload this small goes without waiting for the `150`: it fits in the kernel's buffers even
/// if the server refuses it and never takes the data connection.
const BYTES_BEFORE_REPLY: u64 = 64 * 1024;

/// Whether an upload of `bytes` more goes before the server's go-ahead; those bytes may go
/// nowhere, so they are not progress.
pub fn sent_before_reply(bytes: u64) -> bool {
    bytes <= BYTES_BEFORE_REPLY
}

/// A logged-in control connection.
pub struct Connection {
    /// Commands and replies, in TLS once the server took `AUTH TLS`.
    stream: ClientStream,
    lines: LineBuffer,
    /// The TCP socket under `stream`, for its timeouts.
    socket: TcpStream,
    /// The TLS session data connections resume, when the server offered TLS.
    #[cfg(feature = "tls")]
    tls: Option<crate::client::tls::Session>,
    server: SocketAddr,
    /// Commands to send ahead of the next one, in the same write, and the codes each must get.
    queued: Vec<(Command, &'static [u16])>,
}

impl Connection {
    /// Connects to `address` (`HOST:PORT`), turns on TLS when the server offers it (it must,
    /// when `trust` holds a pin), logs in anonymously and selects binary mode.
    pub fn open(address: &str, timeout: Duration, trust: &Trust) -> Result<Connection> {
        let unreachable = |why: String| ClientError::Connection(format!("cannot reach {address}: {why}"));
        let candidates: Vec<SocketAddr> =
            address.to_socket_addrs().map_err(|err| unreachable(err.to_string()))?.collect();
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address found");
        let mut stream = None;
        for candidate in candidates {
            match TcpStream::connect_timeout(&candidate, timeout) {
                Ok(connected) => {
                    stream = Some(connected);
                    break;
                }
                Err(err) => last_error = err,
            }
        }
        let stream = stream.ok_or_else(|| unreachable(last_error.to_string()))?;
        stream.set_read_timeout(Some(timeout)).map_err(wire("connect"))?;
        stream.set_write_timeout(Some(timeout)).map_err(wire("connect"))?;
        stream.set_nodelay(true).map_err(wire("connect"))?;
        let server = stream.peer_addr().map_err(wire("connect"))?;
        let socket = stream.try_clone().map_err(wire("connect"))?;
        let lines = LineBuffer::new(MAX_REPLY_LINE);
        let mut connection = Connection {
            stream: ClientStream::Plain(stream),
            lines,
            socket,
            #[cfg(feature = "tls")]
            tls: None,
            server,
            queued: Vec::new(),
        };
        let greeting = connection.read_reply("greeting")?;
        if greeting.code != 220 {
            return Err(reply_error("connect", &greeting));
        }
        connection.secure(address, trust)?;
        connection.expect(&Command::User("anonymous".into()), &[230, 331]).and_then(|reply| {
            match reply.code {
                331 => connection.expect(&Command::Pass("anonshare@".into()), &[230]),
                _ => Ok(reply),
            }
        })?;
        connection.expect(&Command::Type(TransferType::Image), &[200])?;
        Ok(connection)
    }

    /// `AUTH TLS`, then `PBSZ 0` and `PROT P` (RFC 4217). A server that does not take it is
    /// spoken to in the clear, unless the URL pins its key: then it is not the server the URL
    /// names, and nothing more is sent.
    #[cfg(feature = "tls")]
    fn secure(&mut self, address: &str, trust: &Trust) -> Result<()> {
        let reply = self.send(&Command::Auth("TLS".into()))?;
        if reply.code != 234 {
            return match trust.pin {
                Some(_) => Err(ClientError::Integrity(format!(
                    "{address} offers no TLS, but the share URL pins its key; refusing to go on in the clear"
                ))),
                None => Ok(()),
            };
        }
        let host = split_host_port(address, FTP_DEFAULT_PORT).map(|(host, _)| host).unwrap_or_default();
        let session = crate::client::tls::Session::new(&host, self.server.ip(), trust)
            .map_err(|why| ClientError::Connection(format!("TLS with {address}: {why}")))?;
        let socket = self.socket.try_clone().map_err(wire("AUTH TLS"))?;
        self.stream =
            session.connect(socket).map_err(|err| match err.get_ref().map(|inner| inner.to_string()) {
                // A key the URL does not pin, or a certificate the system does not trust, is not
                // fixed by trying again.
                Some(why) if err.kind() == io::ErrorKind::InvalidData => {
                    ClientError::Integrity(format!("TLS with {address}: {why}"))
                }
                _ => wire("TLS handshake")(err),
            })?;
        self.lines = LineBuffer::new(MAX_REPLY_LINE);
        self.tls = Some(session);
        self.send_ahead(Command::Pbsz("0".into()), &[200]);
        self.expect(&Command::Prot("P".into()), &[200])?;
        Ok(())
    }

    #[cfg(not(feature = "tls"))]
    fn secure(&mut self, address: &str, trust: &Trust) -> Result<()> {
        match trust.pin {
            Some(_) => Err(ClientError::Integrity(format!(
                "the share URL pins the key of {address}, and this anonshare was built without TLS"
            ))),
            None => Ok(()),
        }
    }

    /// The pin of the key the server showed, when it speaks TLS.
    pub fn server_pin(&self) -> Option<Pin> {
        #[cfg(feature = "tls")]
        if let Some(session) = &self.tls {
            return session.server_pin();
        }
        None
    }

    fn read_reply(&mut self, doing: &str) -> Result<Reply> {
        let mut parser = ReplyParser::new();
        for _ in 0..MAX_REPLY_LINES {
            let line = match read_line(&mut self.stream, &mut self.lines).map_err(wire(doing))? {
                Line::Text(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Line::TooLong => {
                    return Err(ClientError::Connection(format!(
                        "{doing}: reply line over {MAX_REPLY_LINE} bytes"
                    )));
                }
                Line::Closed => {
                    return Err(ClientError::Connection(format!("{doing}: server closed the connection")));
                }
            };
            match parser.feed(&line) {
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => {}
                Err(err) => return Err(ClientError::Connection(format!("{doing}: {err}"))),
            }
        }
        Err(ClientError::Connection(format!("{doing}: reply longer than {MAX_REPLY_LINES} lines")))
    }

    /// Whether the connection is still good for a command: the server has neither closed it
    /// nor said anything unasked (such as `421` before it closes an idle connection). Looks
    /// without waiting.
    pub fn is_open(&self) -> bool {
        if self.lines.has_buffered() || self.socket.set_nonblocking(true).is_err() {
            return false;
        }
        let looked = self.socket.peek(&mut [0u8; 1]);
        let restored = self.socket.set_nonblocking(false).is_ok();
        restored && matches!(looked, Err(err) if err.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends one command and returns its reply, whatever the code.
    pub fn send(&mut self, command: &Command) -> Result<Reply> {
        let verb = verb_of(command);
        let queued = std::mem::take(&mut self.queued);
        let mut lines = String::new();
        for (ahead, _) in &queued {
            lines.push_str(&format!("{ahead}\r\n"));
        }
        lines.push_str(&format!("{command}\r\n"));
        self.stream.write_all(lines.as_bytes()).and_then(|()| self.stream.flush()).map_err(wire(&verb))?;
        let mut refused = None;
        for (ahead, accepted) in queued {
            let reply = self.read_reply(&verb_of(&ahead))?;
            if !accepted.contains(&reply.code) && refused.is_none() {
                refused = Some(reply_error(&command_for_humans(&ahead), &reply));
            }
        }
        let reply = self.read_reply(&verb)?;
        refused.map_or(Ok(reply), Err)
    }

    /// Sends `command` with the next one, in one write, and checks its reply when that one's is
    /// read: a round trip less. The server answers commands in order, so this changes nothing
    /// else; a refusal is reported instead of the next command's reply.
    fn send_ahead(&mut self, command: Command, accepted: &'static [u16]) {
        self.queued.push((command, accepted));
    }

    /// Sends one command and insists on one of the `accepted` codes.
    pub fn expect(&mut self, command: &Command, accepted: &[u16]) -> Result<Reply> {
        let reply = self.send(command)?;
        if accepted.contains(&reply.code) {
            Ok(reply)
        } else {
            Err(reply_error(&command_for_humans(command), &reply))
        }
    }

    /// Opens a data connection: EPSV first (RFC 2428), PASV if the server lacks it.
    fn open_data(&mut self) -> Result<ClientStream> {
        let reply = self.send(&Command::Epsv(None))?;
        let address = match reply.code {
            229 => {
                let port = parse_epsv_reply(&reply.text()).ok_or_else(|| {
                    ClientError::Connection(format!("EPSV: unreadable reply '{}'", reply.text()))
                })?;
                SocketAddr::new(self.server.ip(), port)
            }
            500 | 502 => {
                let reply = self.expect(&Command::Pasv, &[227])?;
                let address = parse_pasv_reply(&reply.text()).ok_or_else(|| {
                    ClientError::Connection(format!("PASV: unreadable reply '{}'", reply.text()))
                })?;
                // Trust only the port: the address is where the control connection already goes.
                SocketAddr::new(self.server.ip(), address.port())
            }
            _ => return Err(reply_error("EPSV", &reply)),
        };
        let timeout = self.socket.read_timeout().map_err(wire("data connection"))?;
        let data = TcpStream::connect_timeout(&address, timeout.unwrap_or(DEFAULT_TIMEOUT))
            .map_err(wire("data connection"))?;
        data.set_read_timeout(timeout).map_err(wire("data connection"))?;
        data.set_write_timeout(timeout).map_err(wire("data connection"))?;
        #[cfg(feature = "tls")]
        if let Some(session) = &self.tls {
            return session.wrap_data(data).map_err(wire("data connection"));
        }
        Ok(ClientStream::Plain(data))
    }

    /// Runs a command that moves bytes on a data connection, handing the connection to `body`.
    fn transfer<T>(
        &mut self,
        command: &Command,
        body: impl FnOnce(&mut ClientStream) -> Result<T>,
    ) -> Result<T> {
        self.transfer_ordered(command, false, body).map(|(outcome, _)| outcome)
    }

    /// A transfer, also giving the final reply, whose body runs once the server said `150`, or with `bytes_first` (an upload)
    /// right after the command is sent, saving a round trip: the server reads the bytes once it
    /// takes the data connection, and a refusal shows as that connection closing.
    fn transfer_ordered<T>(
        &mut self,
        command: &Command,
        bytes_first: bool,
        body: impl FnOnce(&mut ClientStream) -> Result<T>,
    ) -> Result<(T, Reply)> {
        let doing = command_for_humans(command);
        // A TLS data connection's handshake needs the server to have taken it: wait for the 150.
        let bytes_first = bytes_first && self.server_pin().is_none();
        let mut data = self.open_data()?;
        let outcome = if bytes_first {
            let line = format!("{command}\r\n");
            self.stream
                .write_all(line.as_bytes())
                .and_then(|()| self.stream.flush())
                .map_err(wire(&doing))?;
            let outcome = body(&mut data);
            data.finish();
            let first = self.read_reply(&doing)?;
            if !first.is_preliminary() {
                return Err(reply_error(&doing, &first));
            }
            outcome
        } else {
            let first = self.send(command)?;
            if !first.is_preliminary() {
                return Err(reply_error(&doing, &first));
            }
            body(&mut data)
        };
        data.finish();
        drop(data);
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(err) => return Err(self.why_data_failed(&doing, err)),
        };
        let last = self.read_reply(&doing)?;
        if last.code == 226 || last.code == 250 {
            Ok((outcome, last))
        } else {
            Err(reply_error(&doing, &last))
        }
    }

    /// After the data connection failed: the server may have closed it on purpose (a limit, a
    /// full disk) and said why. Its reply, if one comes soon, decides the error; else `err`.
    fn why_data_failed(&mut self, doing: &str, err: ClientError) -> ClientError {
        if !matches!(err, ClientError::Connection(_)) {
            return err;
        }
        let timeout = self.socket.read_timeout().ok().flatten();
        if self.socket.set_read_timeout(Some(REPLY_AFTER_DATA_FAILURE)).is_err() {
            return err;
        }
        let reply = self.read_reply(doing);
        let _ = self.socket.set_read_timeout(timeout);
        match reply {
            Ok(reply) if reply.code >= 400 && reply.code != 426 => reply_error(doing, &reply),
            _ => err,
        }
    }

    /// Creates a share that lives for `lifetime` (or the server's default), each of whose files
    /// may be downloaded completely `downloads` times (or without limit); the connection's
    /// folder becomes the share.
    pub fn create_share(
        &mut self,
        lifetime: Option<Duration>,
        downloads: Option<u64>,
    ) -> Result<CreatedShare> {
        let seconds = lifetime.map(|d| d.as_secs());
        let command = Command::Site(SiteCommand::Mkshare { seconds, downloads });
        let reply = self.expect(&command, &[257])?;
        CreatedShare::parse(&reply.text()).ok_or_else(|| {
            ClientError::Connection(format!("SITE MKSHARE: unreadable reply '{}'", reply.text()))
        })
    }

    /// Proves with the owner token that this connection may add to unsealed share `code`.
    pub fn claim(&mut self, code: &str, token: &str) -> Result<()> {
        self.expect(&Command::Site(SiteCommand::Owner(code.into(), token.into())), &[200]).map(drop)
    }

    /// Deletes share `code` at once.
    pub fn delete_share(&mut self, code: &str, token: &str) -> Result<()> {
        self.expect(&Command::Site(SiteCommand::Delete(code.into(), token.into())), &[250]).map(drop)
    }

    /// Bytes the server kept of a cut upload of `path`, where a resumed upload starts.
    pub fn kept_bytes(&mut self, path: &str) -> Result<u64> {
        let reply = self.expect(&Command::Site(SiteCommand::Partial(path.into())), &[213])?;
        reply.text().trim().parse().map_err(|_| {
            ClientError::Connection(format!("SITE PARTIAL: unreadable reply '{}'", reply.text()))
        })
    }

    pub fn change_folder(&mut self, path: &str) -> Result<()> {
        self.expect(&Command::Cwd(path.into()), &[250]).map(drop)
    }

    pub fn make_folder(&mut self, path: &str) -> Result<()> {
        self.expect(&Command::Mkd(path.into()), &[257]).map(drop)
    }

    /// Sends `source` as `path`, a file of `size` bytes, from byte `offset` on, handing each
    /// chunk to `each` as it goes. `declared` is the file's SHA-256 when it is known before the
    /// bytes (a resume), and the server then refuses a file that does not match. Returns the
    /// SHA-256 the server computed over the whole file it stored.
    pub fn store(
        &mut self,
        path: &str,
        size: u64,
        declared: Option<Sha256Digest>,
        offset: u64,
        source: &mut impl Read,
        each: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<Sha256Digest> {
        if let Some(digest) = declared {
            self.send_ahead(Command::Site(SiteCommand::Digest(digest, path.into())), &[200]);
        }
        self.send_ahead(Command::Allo(Some(size)), &[200, 202]);
        if offset > 0 {
            self.send_ahead(Command::Rest(offset), &[350]);
        }
        let bytes_first = sent_before_reply(size - offset.min(size));
        let ((), reply) = self.transfer_ordered(&Command::Stor(path.into()), bytes_first, |data| {
            for_each_chunk(
                source,
                size - offset.min(size),
                |chunk| {
                    data.write_all(chunk).map_err(wire("STOR"))?;
                    each(chunk)
                },
                |err| ClientError::Usage(format!("cannot read the file for {path}: {err}")),
            )?;
            data.end_upload().map_err(wire("STOR"))
        })?;
        match parse_stored_reply(&reply.text()) {
            Some((stored, digest)) if stored == size => Ok(digest),
            Some((stored, _)) => {
                Err(ClientError::Integrity(format!("{path}: the server stored {stored} bytes of {size}")))
            }
            // Another server's wording: ask it.
            None => self.hash(path),
        }
    }

    /// Seals the share the connection is in.
    pub fn seal(&mut self) -> Result<()> {
        self.expect(&Command::Site(SiteCommand::Seal), &[200]).map(drop)
    }

    /// Expiry, totals and budget of share `code`.
    pub fn info(&mut self, code: &str) -> Result<ShareInfo> {
        self.info_of(&format!("/{code}"))
    }

    /// What SITE INFO says of `path`: its share, and for a file its downloads left.
    pub fn info_of(&mut self, path: &str) -> Result<ShareInfo> {
        let reply = self.expect(&Command::Site(SiteCommand::Info(Some(path.into()))), &[211])?;
        ShareInfo::parse(&reply.lines)
            .ok_or_else(|| ClientError::Connection(format!("SITE INFO: unreadable reply '{}'", reply.text())))
    }

    /// The entries of one folder (MLSD).
    pub fn list_folder(&mut self, path: &str) -> Result<Vec<ListingEntry>> {
        let text = self.transfer(&Command::Mlsd(Some(path.into())), |data| {
            let mut bytes = Vec::new();
            data.take(MAX_LISTING_BYTES).read_to_end(&mut bytes).map_err(wire("MLSD"))?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        })?;
        Ok(text.lines().filter_map(parse_mlsx_line).filter(|e| e.name != "." && e.name != "..").collect())
    }

    /// The SHA-256 the server holds for `path` (the HASH draft).
    pub fn hash(&mut self, path: &str) -> Result<Sha256Digest> {
        let reply = self.expect(&Command::Hash(path.into()), &[213])?;
        parse_hash_reply(&reply.text())
            .map(|(digest, _, _)| digest)
            .ok_or_else(|| ClientError::Connection(format!("HASH: unreadable reply '{}'", reply.text())))
    }

    /// Every file of share `code`, with size and SHA-256, in path order. The SHA-256 comes
    /// with the listing (the `X.sha256` fact); a server that does not send it is asked with HASH.
    pub fn walk_share(&mut self, code: &str) -> Result<Vec<RemoteFile>> {
        let mut files = Vec::new();
        let mut folders = vec![String::new()];
        while let Some(folder) = folders.pop() {
            let remote = if folder.is_empty() { format!("/{code}") } else { format!("/{code}/{folder}") };
            for entry in self.list_folder(&remote)? {
                let path =
                    if folder.is_empty() { entry.name.clone() } else { format!("{folder}/{}", entry.name) };
                if entry.is_dir {
                    folders.push(path);
                } else {
                    files.push((path, entry.size, entry.sha256));
                }
            }
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = Vec::with_capacity(files.len());
        for (path, size, listed) in files {
            let sha256 = match listed {
                Some(sha256) => sha256,
                None => self.hash(&format!("/{code}/{path}"))?,
            };
            out.push(RemoteFile { path, size, sha256 });
        }
        Ok(out)
    }

    /// Downloads `path` from byte `offset` on, handing each chunk to `each` as it arrives.
    pub fn retrieve(&mut self, path: &str, offset: u64, each: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        if offset > 0 {
            self.expect(&Command::Rest(offset), &[350])?;
        }
        self.transfer(&Command::Retr(path.into()), |data| for_each_chunk(data, u64::MAX, each, wire("RETR")))
    }

    /// Says goodbye; errors are ignored because the work is done.
    pub fn quit(mut self) {
        let _ = self.send(&Command::Quit);
    }

    /// The server's address.
    pub fn server_ip(&self) -> IpAddr {
        self.server.ip()
    }
}

/// The verb of a command, for error messages that must not echo secrets.
fn verb_of(command: &Command) -> String {
    command.to_string().split(' ').next().unwrap_or_default().to_owned()
}

fn command_for_humans(command: &Command) -> String {
    match command {
        Command::Pass(_) => "PASS".into(),
        Command::Site(site) => format!("SITE {}", site.to_string().split(' ').next().unwrap_or_default()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Option<(String, u16, String)> {
        ShareUrl::parse(text).ok().map(|u| (u.host, u.port, u.code))
    }

    #[test]
    fn share_urls() {
        assert_eq!(url("ftp://127.0.0.1:2121/abc/"), Some(("127.0.0.1".into(), 2121, "abc".into())));
        assert_eq!(url("ftp://h/abc"), Some(("h".into(), 21, "abc".into())));
        assert_eq!(url("ftp://[::1]:9/abc/"), Some(("::1".into(), 9, "abc".into())));
        assert_eq!(url("http://h/abc"), None);
        assert_eq!(url("ftp://h/"), None);
        assert_eq!(url("ftp://h/a/b"), None);
        let parsed = ShareUrl::parse("ftp://[::1]:9/abc").unwrap();
        assert_eq!(parsed.to_string(), "ftp://[::1]:9/abc/");
    }

    #[test]
    fn host_and_port() {
        assert_eq!(split_host_port("localhost:2121", 1), Some(("localhost".into(), 2121)));
        assert_eq!(split_host_port("localhost", 1), Some(("localhost".into(), 1)));
        assert_eq!(split_host_port("[::1]", 1), Some(("::1".into(), 1)));
        assert_eq!(split_host_port(":80", 1), None);
        assert_eq!(split_host_port("::1", 1), None);
        assert_eq!(split_host_port("h:port", 1), None);
    }

    #[test]
    fn refusals_sort_into_exit_codes_by_reason() {
        let error = |reason, text: &str| reply_error("X", &Refusal::new(reason, text).to_reply());
        let code = |reason| error(reason, "words").exit_code();
        assert_eq!(code(Reason::NotFound), 3);
        assert_eq!(code(Reason::DigestMismatch), 4);
        assert_eq!(code(Reason::TransferCut), 2);
        assert_eq!(code(Reason::Busy), 2);
        assert_eq!(code(Reason::Sealed), 5);
        assert_eq!(code(Reason::NotImplemented), 5);
        assert_eq!(error(Reason::LimitReached, "Too many connections").exit_code(), 5);
        // The words decide nothing.
        assert_eq!(error(Reason::NotFound, "SHA-256 mismatch: declared a").exit_code(), 3);
        assert_eq!(error(Reason::Exists, "/code/sealed").reason(), Some(Reason::Exists));
        // Another server's reply, without a tag, by its code.
        assert_eq!(reply_error("X", &Reply::new(550, "SHA-256 mismatch")).exit_code(), 3);
    }

    #[test]
    fn only_transient_refusals_are_retried_rfc959_4_2_1() {
        let transient = |refusal: Refusal| reply_error("X", &refusal.to_reply()).is_transient();
        assert!(transient(Refusal::new(Reason::Busy, "x")));
        assert!(transient(Refusal::new(Reason::TransferCut, "x")));
        assert!(transient(Refusal::new(Reason::StorageError, "x")));
        assert!(!transient(Refusal::new(Reason::NotImplemented, "x")), "502 is permanent");
        assert!(!transient(Refusal::new(Reason::BadCommand, "x")), "500 is permanent");
        assert!(!transient(Refusal::new(Reason::Unspecified, "x").with_code(503)), "503 is permanent");
        assert!(!transient(Refusal::new(Reason::NotFound, "x")));
        assert!(
            !transient(Refusal::new(Reason::LimitReached, "x").with_code(421)),
            "a limit does not clear in seconds"
        );
        assert!(!transient(Refusal::new(Reason::DiskFull, "x")));
        assert!(ClientError::Connection("cut".into()).is_transient());
    }
}
