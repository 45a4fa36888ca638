//! The client library: one control connection to an anonshare server (or any FTP server that
//! speaks the same subset), typed operations on it, share URLs, and the errors a caller
//! branches on. Used by the `anonshare` command line and its interactive shell.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::client::tls::{ClientStream, Trust};
use crate::client::{ClientError, Result, Step, reply_error};
use crate::common::chunks::for_each_filled;
use crate::common::digest::Sha256Digest;
use crate::common::line_io::read_line;
use crate::common::pin::Pin;
use crate::common::platform::{connect_with_timeout, peek_nowait};
use crate::proto::line::{Line, LineBuffer};
use crate::proto::{
    Command, ListingEntry, Reply, ReplyParser, SiteCommand, TransferType, parse_epsv_reply, parse_hash_reply,
    parse_mlsx_line, parse_pasv_reply, parse_stored_reply,
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
/// Turns an I/O error on the wire into a connection error that names what was being done.
pub(crate) fn wire(doing: &str) -> impl FnOnce(io::Error) -> ClientError + '_ {
    move |err| match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            ClientError::TimedOut(format!("{doing}: timed out waiting for the server"))
        }
        _ => ClientError::Connection(format!("{doing}: {err}")),
    }
}

/// What a `STOR` sends: a file's bytes, a chunk at a time.
pub trait Outgoing {
    /// Sends the next chunk on `data`; `false` once every byte went.
    fn send_chunk(&mut self, data: &mut ClientStream) -> Result<bool>;
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
    /// How long a connection and each read and write of it may wait.
    timeout: Duration,
    /// A `REST` was taken for the next transfer command.
    restarting: bool,
}

impl Connection {
    /// Connects to `address` (`HOST:PORT`), turns on TLS when the server offers it (it must,
    /// when `trust` holds a pin), logs in anonymously and selects binary mode.
    pub fn open(address: &str, timeout: Duration, trust: &Trust) -> Result<Connection> {
        let unreachable = |why: String| ClientError::Connection(format!("cannot reach {address}: {why}"));
        // A name that does not resolve will not resolve in a second either.
        let candidates: Vec<SocketAddr> = address
            .to_socket_addrs()
            .map_err(|err| ClientError::Unresolved(format!("cannot find the server {address}: {err}")))?
            .collect();
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
        let stream = stream.ok_or_else(|| match last_error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::TimedOut(format!(
                "cannot reach {address}: no answer within {}s",
                timeout.as_secs()
            )),
            _ => unreachable(last_error.to_string()),
        })?;
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
            timeout,
            restarting: false,
        };
        let greeting = connection.read_reply("greeting")?;
        if greeting.code != 220 {
            return Err(reply_error(Step::Connect, &greeting));
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
        let host = crate::client::split_host_port(address, crate::client::DEFAULT_PORT)
            .map(|(host, _)| host)
            .unwrap_or_default();
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

    /// The final reply to a command: a preliminary one (1yz) is followed by another.
    fn read_final_reply(&mut self, doing: &str) -> Result<Reply> {
        let reply = self.read_reply(doing)?;
        if reply.is_preliminary() { self.read_reply(doing) } else { Ok(reply) }
    }

    /// Whether the connection is still good for a command: the server has neither closed it
    /// nor said anything unasked (such as `421` before it closes an idle connection). Looks
    /// without waiting.
    pub fn is_open(&self) -> bool {
        if self.lines.has_buffered() {
            return false;
        }
        matches!(peek_nowait(&self.socket), Err(err) if err.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends one command and returns its reply, whatever the code.
    pub fn send(&mut self, command: &Command) -> Result<Reply> {
        self.send_then(command, None)
    }

    /// Sends the commands queued ahead, `command`, and `next` if any, in one write; reads the
    /// replies up to `command`'s and returns it (`next`'s is left for the caller to read).
    fn send_then(&mut self, command: &Command, next: Option<&Command>) -> Result<Reply> {
        let verb = verb_of(command);
        let queued = std::mem::take(&mut self.queued);
        let mut lines = String::new();
        for (ahead, _) in &queued {
            lines.push_str(&format!("{ahead}\r\n"));
        }
        lines.push_str(&format!("{command}\r\n"));
        if let Some(next) = next {
            lines.push_str(&format!("{next}\r\n"));
        }
        self.stream.write_all(lines.as_bytes()).and_then(|()| self.stream.flush()).map_err(wire(&verb))?;
        let mut refused = None;
        for (ahead, accepted) in queued {
            let reply = self.read_reply(&verb_of(&ahead))?;
            if !accepted.contains(&reply.code) && refused.is_none() {
                refused = Some(reply_error(Step::of(&ahead), &reply));
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
        if accepted.contains(&reply.code) { Ok(reply) } else { Err(reply_error(Step::of(command), &reply)) }
    }

    /// Opens a data connection: EPSV first (RFC 2428), PASV if the server lacks it. With
    /// `then`, the transfer command goes in the same write as EPSV, a round trip less: the
    /// server answers in order and takes the data connection once it reaches that command. Says
    /// whether `then` was sent, so that its reply is the next to read. Nothing may be queued
    /// ahead with `then`: a refusal of it would not stop the transfer command sent behind it.
    fn open_data(&mut self, then: Option<&Command>) -> Result<(ClientStream, bool)> {
        let epsv = Command::Epsv(None);
        let reply = match then {
            Some(next) => {
                debug_assert!(self.queued.is_empty(), "a command queued ahead of a pipelined transfer");
                let reply = self.send_then(&epsv, Some(next))?;
                if reply.code != 229 {
                    // `next` went without a data connection: its reply is read, so that the
                    // next command's is the next one read, and it says nothing more.
                    match self.read_final_reply(&verb_of(next)) {
                        Ok(_) => {}
                        // A server that refused EPSV and closed (421) said why.
                        Err(_) if reply.code == 421 => {
                            return Err(reply_error(Step::Other("EPSV".into()), &reply));
                        }
                        Err(err) => return Err(err),
                    }
                }
                reply
            }
            None => self.send(&epsv)?,
        };
        let (address, sent) = match reply.code {
            229 => {
                let port = parse_epsv_reply(&reply.text()).ok_or_else(|| {
                    ClientError::Connection(format!("EPSV: unreadable reply '{}'", reply.text()))
                })?;
                (SocketAddr::new(self.server.ip(), port), then.is_some())
            }
            500 | 502 => {
                let reply = self.expect(&Command::Pasv, &[227])?;
                let address = parse_pasv_reply(&reply.text()).ok_or_else(|| {
                    ClientError::Connection(format!("PASV: unreadable reply '{}'", reply.text()))
                })?;
                // Trust only the port: the address is where the control connection already goes.
                (SocketAddr::new(self.server.ip(), address.port()), false)
            }
            _ => return Err(reply_error(Step::Other("EPSV".into()), &reply)),
        };
        let data = connect_with_timeout(&address, self.timeout).map_err(wire("data connection"))?;
        #[cfg(feature = "tls")]
        if let Some(session) = &self.tls {
            return Ok((session.wrap_data(data).map_err(wire("data connection"))?, sent));
        }
        Ok((ClientStream::Plain(data), sent))
    }

    /// Runs a command that moves bytes on a data connection, handing the connection to `body`.
    fn transfer<T>(
        &mut self,
        command: &Command,
        body: impl FnOnce(&mut ClientStream) -> Result<T>,
    ) -> Result<T> {
        self.transfer_ordered(command, false, body).map(|(outcome, _)| outcome)
    }

    /// Whether `command` may go in the same write as its EPSV: only when nothing sent before
    /// it must hold when it comes. A command queued ahead may be refused, and the transfer
    /// would still run; a `REST` may be used up by a transfer command refused for want of a
    /// data connection (a server without EPSV), so the command sent again after PASV would
    /// start at byte 0.
    fn may_pipeline(&self, bytes_first: bool) -> bool {
        !bytes_first && self.queued.is_empty() && !self.restarting
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
        let doing = verb_of(command);
        // A TLS data connection's handshake needs the server to have taken it: wait for the 150.
        let bytes_first = bytes_first && self.server_pin().is_none();
        let pipelined = self.may_pipeline(bytes_first);
        self.restarting = false;
        let (mut data, sent) = self.open_data(pipelined.then_some(command))?;
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
                return Err(reply_error(Step::of(command), &first));
            }
            outcome
        } else {
            let first = if sent { self.read_reply(&doing)? } else { self.send(command)? };
            if !first.is_preliminary() {
                return Err(reply_error(Step::of(command), &first));
            }
            body(&mut data)
        };
        data.finish();
        drop(data);
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(err) => return Err(self.why_data_failed(command, err)),
        };
        let last = self.read_reply(&doing)?;
        if last.code == 226 || last.code == 250 {
            Ok((outcome, last))
        } else {
            Err(reply_error(Step::of(command), &last))
        }
    }

    /// After the data connection failed: the server may have closed it on purpose (a limit, a
    /// full disk) and said why. Its reply, if one comes soon, decides the error; else `err`.
    fn why_data_failed(&mut self, command: &Command, err: ClientError) -> ClientError {
        if !err.is_connection() {
            return err;
        }
        let timeout = self.socket.read_timeout().ok().flatten();
        if self.socket.set_read_timeout(Some(REPLY_AFTER_DATA_FAILURE)).is_err() {
            return err;
        }
        let reply = self.read_reply(&verb_of(command));
        let _ = self.socket.set_read_timeout(timeout);
        match reply {
            Ok(reply) if reply.code >= 400 && reply.code != 426 => reply_error(Step::of(command), &reply),
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

    /// Sends `source` as `path`, a file of `size` bytes, from byte `offset` on. `declared` is
    /// the file's SHA-256 when it is known before the bytes (a resume), and the server then
    /// refuses a file that does not match. Returns the SHA-256 the server computed over the
    /// whole file it stored.
    pub fn store(
        &mut self,
        path: &str,
        size: u64,
        declared: Option<Sha256Digest>,
        offset: u64,
        source: &mut dyn Outgoing,
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
            while source.send_chunk(data)? {}
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

    /// Every file of share `code`, with size and SHA-256, in path order, and every folder. The
    /// SHA-256 comes with the listing (the `X.sha256` fact); a server that does not send it is
    /// asked with HASH.
    pub fn walk_share(&mut self, code: &str) -> Result<(Vec<RemoteFile>, Vec<String>)> {
        let mut files = Vec::new();
        let mut every_folder = Vec::new();
        let mut folders = vec![String::new()];
        while let Some(folder) = folders.pop() {
            let remote = if folder.is_empty() { format!("/{code}") } else { format!("/{code}/{folder}") };
            for entry in self.list_folder(&remote)? {
                let path =
                    if folder.is_empty() { entry.name.clone() } else { format!("{folder}/{}", entry.name) };
                if entry.is_dir {
                    every_folder.push(path.clone());
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
        every_folder.sort();
        Ok((out, every_folder))
    }

    /// Downloads `path` from byte `offset` on, each read into a buffer of the caller's: `each`
    /// takes the buffer just filled and how many bytes arrived at its start, and gives back the
    /// buffer for the next read (the first is `first`).
    pub fn retrieve(
        &mut self,
        path: &str,
        offset: u64,
        first: Vec<u8>,
        each: impl FnMut(Vec<u8>, usize) -> Result<Vec<u8>>,
    ) -> Result<()> {
        if offset > 0 {
            self.expect(&Command::Rest(offset), &[350])?;
            self.restarting = true;
        }
        self.transfer(&Command::Retr(path.into()), |data| for_each_filled(data, first, each, wire("RETR")))
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
