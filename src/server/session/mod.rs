//! One control connection, from greeting to goodbye: reads commands through `proto`, keeps the
//! connection's state (login, current folder, passive listener, restart offset, the shares it
//! owns), runs transfers on the data connection while watching the control connection for ABOR
//! and QUIT, and maps store errors to FTP replies in one place ([`store_refusal`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::chunks::chunk_size;
use crate::common::digest::Sha256Digest;
use crate::common::expiry::{format_duration, rfc3339};
use crate::common::line_io::{poll_line, read_line};
use crate::common::platform::{keep_urgent_data_inline, send_file};
use crate::log_event;
use crate::proto::line::{Line, LineBuffer};
use crate::proto::{
    self, Command, CreatedShare, HashReply, ListingEntry, ProtoError, Reason, Refusal, Reply, ShareInfo,
    SiteCommand, StoredReply, TransferType, epsv_reply_text, list_line, listing_path, mlsx_line,
    pasv_reply_text,
};
use crate::server::shared::Shared;
use crate::server::store::{Expected, FileEntry, Manifest, Node, Share, Start, StoreError, Upload, unix_now};
use crate::server::vpath::{VirtualPath, quote_path};

/// Bytes per read of an upload: larger than the client's chunks, so the server, which also
/// writes and hashes them, makes fewer calls.
const RECEIVE_BYTES: usize = 256 * 1024;
/// Longest wait between two looks at a passive listener.
const ACCEPT_POLL_MAX: Duration = Duration::from_millis(20);
/// Bytes sent between two looks at the control connection during a download.
const RETR_SLICE_BYTES: usize = 1 << 20;
/// How long a transfer may block on its data connection before it looks at the control
/// connection again; `--data-timeout` counts how long it may go without progress.
const WATCH_INTERVAL: Duration = Duration::from_millis(200);

/// Why a transfer in ASCII is refused.
const BINARY_ONLY: &str = "File transfers need TYPE I (binary); ASCII mode could alter bytes";

/// The lines of FEAT (RFC 2389), each sent after one space.
const FEATURES: &[&str] = &[
    "EPSV",
    "PASV",
    "SIZE",
    "MDTM",
    "REST STREAM",
    "MLST type*;size*;modify*;perm*;X.sha256*;",
    "UTF8",
    "TVFS",
    "HASH SHA-256*",
];

/// What a command handler asks of the loop after replying.
enum Next {
    Continue,
    /// End the connection, for the reason given (logged).
    Close(&'static str),
}

/// Why a transfer stopped before its end.
enum Stop {
    /// The data connection failed or stalled.
    Data(io::Error),
    /// The store refused the bytes (a limit, the disk).
    Store(StoreError),
    /// The client sent ABOR.
    Abort,
    /// The control connection closed without QUIT: the client is gone.
    ClientGone,
}

/// The control connection as a transfer sees it: between chunks it looks for ABOR and holds
/// any other command (QUIT included, as RFC 959 asks) until the transfer is over.
struct ControlWatch<'s> {
    control: &'s TcpStream,
    lines: &'s mut LineBuffer,
    held: &'s mut VecDeque<Line>,
    /// QUIT arrived: the client meant to leave, so a close after it is not a crash.
    quit_seen: bool,
    /// How long the transfer may go without progress.
    data_timeout: Duration,
    /// Most commands held until the transfer ends; past that the control connection waits.
    max_held: usize,
}

impl ControlWatch<'_> {
    fn check(&mut self) -> Result<(), Stop> {
        while self.held.len() < self.max_held {
            let line = match poll_line(self.control, self.lines) {
                Ok(None) => return Ok(()),
                Err(_) | Ok(Some(Line::Closed)) if self.quit_seen => return Ok(()),
                Err(_) | Ok(Some(Line::Closed)) => return Err(Stop::ClientGone),
                Ok(Some(line)) => line,
            };
            match &line {
                Line::Closed => unreachable!("handled above"),
                Line::Text(bytes) => match proto::parse_command(bytes) {
                    Ok(Command::Abor) => return Err(Stop::Abort),
                    Ok(Command::Quit) => self.quit_seen = true,
                    _ => {}
                },
                Line::TooLong => {}
            }
            self.held.push_back(line);
        }
        Ok(())
    }

    /// The data connection blocked: looks at the control connection, and gives up once
    /// nothing has moved for the data timeout.
    fn stalled(&mut self, last_progress: Instant) -> Result<(), Stop> {
        self.check()?;
        if last_progress.elapsed() >= self.data_timeout {
            return Err(Stop::Data(io::ErrorKind::TimedOut.into()));
        }
        Ok(())
    }

    /// Writes all of `bytes`, patiently: a slow reader is waited for, ABOR is heard.
    fn write_all(&mut self, data: &mut TcpStream, mut bytes: &[u8]) -> Result<(), Stop> {
        let mut last_progress = Instant::now();
        while !bytes.is_empty() {
            match data.write(bytes) {
                Ok(0) => return Err(Stop::Data(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    bytes = &bytes[n..];
                    last_progress = Instant::now();
                }
                Err(err) if is_timeout(&err) => self.stalled(last_progress)?,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(Stop::Data(err)),
            }
        }
        Ok(())
    }
}

/// Reads an upload's bytes from the data connection to its end, into the store.
fn receive(data: &mut TcpStream, watch: &mut ControlWatch<'_>, upload: &mut Upload) -> Result<(), Stop> {
    let mut buffer = vec![0u8; chunk_size(upload.to_come().unwrap_or(u64::MAX), RECEIVE_BYTES)];
    let mut last_progress = Instant::now();
    loop {
        match data.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                last_progress = Instant::now();
                watch.check()?;
                upload.write_chunk(&buffer[..n]).map_err(Stop::Store)?;
            }
            Err(err) if is_timeout(&err) => watch.stalled(last_progress)?,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(Stop::Data(err)),
        }
    }
    // End of data in stream mode can also mean the client died: a gone control connection
    // says so, and then nothing is stored.
    watch.check()
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

pub struct Session<'a> {
    shared: &'a Shared,
    id: u64,
    peer: SocketAddr,
    local: SocketAddr,
    control: TcpStream,
    lines: LineBuffer,
    held: VecDeque<Line>,
    user_ok: bool,
    logged_in: bool,
    cwd: VirtualPath,
    transfer_type: TransferType,
    passive: Option<TcpListener>,
    epsv_all: bool,
    restart_at: u64,
    owned: HashSet<String>,
    /// The shares this connection created: its QUIT seals them.
    created: HashSet<String>,
    declared: HashMap<String, Sha256Digest>,
    /// The size ALLO announced for the next upload.
    allocated: Option<u64>,
}

/// A reader that gives each control line at most the idle timeout in total, so a client that
/// trickles one byte at a time cannot hold a worker forever.
struct LineDeadline<'s> {
    stream: &'s TcpStream,
    deadline: Instant,
}

impl Read for LineDeadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        (&*self.stream).read(buf)
    }
}

impl<'a> Session<'a> {
    /// Serves one connection to its end; every error ends in a log line, never a panic.
    pub fn run(control: TcpStream, id: u64, shared: &'a Shared) {
        let (Ok(peer), Ok(local)) = (control.peer_addr(), control.local_addr()) else {
            return;
        };
        let mut session = Session {
            shared,
            id,
            peer,
            local,
            control,
            lines: LineBuffer::new(shared.config.max_line),
            held: VecDeque::new(),
            user_ok: false,
            logged_in: false,
            cwd: VirtualPath::Root,
            transfer_type: TransferType::Image,
            passive: None,
            epsv_all: false,
            restart_at: 0,
            owned: HashSet::new(),
            created: HashSet::new(),
            declared: HashMap::new(),
            allocated: None,
        };
        log_event!("conn={id} peer={peer} event=connect");
        match session.serve() {
            Ok(reason) => log_event!("conn={id} peer={peer} event=disconnect reason={reason}"),
            Err(err) => {
                log_event!("conn={id} peer={peer} event=disconnect reason=error error={:?}", err.to_string())
            }
        }
    }

    fn serve(&mut self) -> io::Result<&'static str> {
        let idle = self.shared.config.idle_timeout;
        self.control.set_write_timeout(Some(idle))?;
        self.control.set_nodelay(true)?;
        keep_urgent_data_inline(&self.control)?;
        self.reply(Reply::new(220, "anonshare ready; log in as anonymous"))?;
        loop {
            let line = match self.held.pop_front() {
                Some(line) => line,
                None => {
                    let mut reader = LineDeadline { stream: &self.control, deadline: Instant::now() + idle };
                    match read_line(&mut reader, &mut self.lines) {
                        Ok(line) => line,
                        Err(err)
                            if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
                        {
                            let text = format!("Idle for {}; closing the connection", format_duration(idle));
                            let _ = self.reply(Refusal::new(Reason::Closing, text).to_reply());
                            return Ok("idle-timeout");
                        }
                        Err(err) => return Err(err),
                    }
                }
            };
            let command = match line {
                Line::Closed => return Ok("closed-by-peer"),
                Line::TooLong => Err(ProtoError::LineTooLong(self.shared.config.max_line)),
                Line::Text(bytes) => proto::parse_command(&bytes),
            };
            let next = match command {
                Ok(command) => self.dispatch(command)?,
                Err(err) => self.refuse(err.refusal())?,
            };
            if let Next::Close(reason) = next {
                return Ok(reason);
            }
        }
    }

    fn reply(&mut self, reply: Reply) -> io::Result<()> {
        (&self.control).write_all(reply.to_string().as_bytes())
    }

    /// Sends `reply` and carries on with the next command.
    fn answer(&mut self, reply: Reply) -> io::Result<Next> {
        self.reply(reply)?;
        Ok(Next::Continue)
    }

    fn say(&mut self, code: u16, text: impl Into<String>) -> io::Result<Next> {
        self.answer(Reply::new(code, text))
    }

    /// Sends `refusal` and carries on with the next command.
    fn refuse(&mut self, refusal: Refusal) -> io::Result<Next> {
        self.answer(refusal.to_reply())
    }

    /// Sends `refusal` (a 421) and ends the connection.
    fn close_with(&mut self, reason: &'static str, refusal: Refusal) -> io::Result<Next> {
        self.reply(refusal.to_reply())?;
        Ok(Next::Close(reason))
    }

    fn dispatch(&mut self, command: Command) -> io::Result<Next> {
        let before_login = matches!(
            command,
            Command::User(_)
                | Command::Pass(_)
                | Command::Quit
                | Command::Feat
                | Command::Syst
                | Command::Opts(_)
                | Command::Noop
                | Command::Help
        );
        if !self.logged_in && !before_login {
            return self.refuse(Refusal::new(
                Reason::NotLoggedIn,
                "Log in first: USER anonymous, then PASS with anything",
            ));
        }
        let leaving = matches!(command, Command::Quit);
        if self.logged_in && !leaving && self.shared.admission.is_guessing(self.peer.ip(), Instant::now()) {
            let limit = self.shared.config.max_share_misses;
            let text = format!("Too many lookups of shares that do not exist (limit {limit} per hour)");
            return self.close_with("share-misses", Refusal::new(Reason::LimitReached, text).with_code(421));
        }
        match command {
            Command::User(name) => self.user(&name),
            Command::Pass(_) => self.pass(),
            Command::Syst => self.say(215, "UNIX Type: L8"),
            Command::Feat => {
                let body = FEATURES.iter().map(|f| format!(" {f}")).collect();
                self.answer(Reply::multi(211, "Extensions supported:", body, "End"))
            }
            Command::Opts(option) => self.opts(&option),
            Command::Noop => self.say(200, "OK"),
            Command::Quit => self.quit(),
            Command::Type(kind) => {
                self.transfer_type = kind;
                match kind {
                    TransferType::Image => self.say(200, "Type set to I (binary)"),
                    TransferType::Ascii => self.say(200, "Type set to A; file transfers need TYPE I"),
                }
            }
            Command::Mode(_) => self.say(200, "Mode set to S"),
            Command::Stru(_) => self.say(200, "Structure set to F"),
            Command::Pwd => {
                let text = format!("{} is the current folder", quote_path(&self.cwd.to_string()));
                self.say(257, text)
            }
            Command::Cwd(path) => self.cwd(&path),
            Command::Cdup => self.cwd(".."),
            Command::Pasv => self.pasv(),
            Command::Epsv(argument) => self.epsv(argument.as_deref()),
            Command::List(argument) => self.listing(listing_path(argument.as_deref()), ListingKind::List),
            Command::Nlst(argument) => self.listing(listing_path(argument.as_deref()), ListingKind::Names),
            Command::Mlsd(argument) => self.listing(argument.as_deref(), ListingKind::Facts),
            Command::Mlst(argument) => self.mlst(argument.as_deref()),
            Command::Size(path) => self.with_file(&path, |_, entry| Reply::new(213, entry.size.to_string())),
            Command::Mdtm(path) => {
                self.with_file(&path, |_, entry| Reply::new(213, proto::ftp_time(entry.modified)))
            }
            Command::Hash(path) => self.with_file(&path, |shown, entry| {
                Reply::new(213, HashReply { digest: entry.sha256, size: entry.size, path: shown }.to_string())
            }),
            Command::Rest(offset) => {
                self.restart_at = offset;
                self.say(350, format!("Restarting at {offset}; send RETR or STOR"))
            }
            Command::Retr(path) => self.retr(&path),
            Command::Stor(path) => {
                let start = match std::mem::take(&mut self.restart_at) {
                    0 => Start::Fresh,
                    offset => Start::At(offset),
                };
                self.stor(&path, start)
            }
            Command::Appe(path) => {
                self.restart_at = 0;
                self.stor(&path, Start::Append)
            }
            Command::Mkd(path) => self.mkd(&path),
            Command::Abor => self.say(225, "No transfer to abort"),
            Command::Allo(None) => self.say(202, "No storage allocation necessary"),
            Command::Allo(Some(size)) => {
                self.allocated = Some(size);
                self.say(
                    200,
                    format!("The next upload is {size} bytes; fewer is a cut upload, kept to resume"),
                )
            }
            Command::Help => self.help(),
            Command::Site(site) => self.site(site),
        }
    }

    fn user(&mut self, name: &str) -> io::Result<Next> {
        self.logged_in = false;
        self.user_ok = name.eq_ignore_ascii_case("anonymous") || name.eq_ignore_ascii_case("ftp");
        if self.user_ok {
            self.say(331, "Anonymous login ok; send any password")
        } else {
            self.refuse(Refusal::new(Reason::NotLoggedIn, "Only anonymous login is allowed: USER anonymous"))
        }
    }

    fn pass(&mut self) -> io::Result<Next> {
        if !self.user_ok {
            return self
                .refuse(Refusal::new(Reason::NotLoggedIn, "Send USER anonymous first").with_code(503));
        }
        if !self.logged_in {
            self.logged_in = true;
            log_event!("conn={} peer={} event=login", self.id, self.peer);
        }
        self.say(230, "Logged in; binary mode (TYPE I)")
    }

    /// QUIT: a goodbye also seals the shares this connection created, since their uploader is
    /// done with them (shares it only joined with SITE OWNER are left to their creator). A
    /// connection that drops without QUIT leaves its shares unsealed and unseen.
    fn quit(&mut self) -> io::Result<Next> {
        for code in std::mem::take(&mut self.created) {
            if let Ok(mut share) = self.shared.store.share(&code, unix_now())
                && share.seal().is_ok()
            {
                log_event!("conn={} peer={} event=sealed share={code} by=quit", self.id, self.peer);
            }
        }
        self.reply(Reply::new(221, "Goodbye"))?;
        Ok(Next::Close("quit"))
    }

    fn opts(&mut self, option: &str) -> io::Result<Next> {
        let upper = option.to_ascii_uppercase();
        let words: Vec<&str> = upper.split_whitespace().collect();
        match words.as_slice() {
            ["UTF8", "ON"] | ["UTF-8", "ON"] => self.say(200, "UTF8 is always on"),
            ["HASH"] | ["HASH", "SHA-256"] => self.say(200, "SHA-256"),
            ["HASH", _] => {
                self.refuse(Refusal::new(Reason::Unsupported, "Only SHA-256 is supported").with_code(501))
            }
            ["MLST", ..] => self.say(200, "MLST OPTS type;size;modify;perm;X.sha256;"),
            _ => {
                let text = format!("Unknown option '{}'", option.chars().take(64).collect::<String>());
                self.refuse(Refusal::new(Reason::BadArgument, text))
            }
        }
    }

    fn help(&mut self) -> io::Result<Next> {
        let body = [
            " USER PASS SYST FEAT OPTS NOOP QUIT TYPE MODE STRU PWD CWD CDUP",
            " PASV EPSV LIST NLST MLSD MLST SIZE MDTM REST RETR STOR APPE MKD HASH ABOR ALLO HELP",
            " SITE MKSHARE [SECONDS] [DOWNLOADS=N]  create a share; the current folder becomes it",
            " SITE DIGEST <SHA256> <PATH>  declare the SHA-256 the next STOR of PATH must have",
            " SITE PARTIAL <PATH>          bytes kept of a cut upload, where REST/APPE resumes",
            " SITE SEAL                    make the current share read-only and visible",
            " SITE OWNER <CODE> <TOKEN>    write to an unsealed share from another connection",
            " SITE DELETE <CODE> <TOKEN>   delete a share at once",
            " SITE INFO [PATH]             expiry, state and totals of a share; downloads left",
        ];
        let body = body.iter().map(|line| line.to_string()).collect();
        self.answer(Reply::multi(214, "Commands recognised:", body, "See docs/PROTOCOL.md"))
    }

    fn resolve(&self, argument: &str) -> VirtualPath {
        VirtualPath::resolve(&self.cwd, argument)
    }

    /// Opens share `code` as this connection may see it: a share that does not exist, has
    /// expired, or is unsealed and not ours is not found, and the miss is counted against the
    /// client's address.
    fn open_share(&self, code: &str) -> Result<Share, StoreError> {
        let found = self.shared.store.share(code, unix_now());
        let visible = match found {
            Ok(share) if share.meta.sealed || self.owned.contains(share.code.as_str()) => Ok(share),
            Ok(_) | Err(StoreError::NotFound) => Err(StoreError::NotFound),
            Err(err) => Err(err),
        };
        if matches!(visible, Err(StoreError::NotFound)) {
            self.shared.admission.record_miss(self.peer.ip(), Instant::now());
            log_event!("conn={} peer={} event=share-miss", self.id, self.peer);
        }
        visible
    }

    /// Opens the share of `path` and its manifest, or says why not.
    fn lookup(&self, path: &VirtualPath) -> Result<(Share, Arc<Manifest>, Vec<String>), StoreError> {
        let VirtualPath::Share { code, rel } = path else {
            return Err(StoreError::NotFound);
        };
        let share = self.open_share(code)?;
        let manifest = share.manifest()?;
        Ok((share, manifest, rel.clone()))
    }

    /// The file at `path`, or why there is none.
    fn lookup_file(&self, path: &VirtualPath) -> Result<(Share, FileEntry), StoreError> {
        let (share, manifest, rel) = self.lookup(path)?;
        match manifest.lookup(&rel) {
            Some(Node::File(entry)) => Ok((share, entry.clone())),
            Some(Node::Folder) => Err(StoreError::IsAFolder),
            None => Err(StoreError::NotFound),
        }
    }

    fn cwd(&mut self, argument: &str) -> io::Result<Next> {
        let path = self.resolve(argument);
        let result = match &path {
            VirtualPath::Root => Ok(()),
            _ => self.lookup(&path).and_then(|(_, manifest, rel)| match manifest.lookup(&rel) {
                Some(Node::Folder) => Ok(()),
                Some(Node::File(_)) => Err(StoreError::NotAFolder),
                None => Err(StoreError::NotFound),
            }),
        };
        match result {
            Ok(()) => {
                let text = format!("Folder is now {path}");
                self.cwd = path;
                self.say(250, text)
            }
            Err(err) => self.store_error(err),
        }
    }

    fn with_file(
        &mut self,
        argument: &str,
        make: impl FnOnce(String, &FileEntry) -> Reply,
    ) -> io::Result<Next> {
        let path = self.resolve(argument);
        match self.lookup_file(&path) {
            Ok((_, entry)) => self.answer(make(argument.to_owned(), &entry)),
            Err(err) => self.store_error(err),
        }
    }

    fn store_error(&mut self, err: StoreError) -> io::Result<Next> {
        if let StoreError::Io(io_err) = &err {
            log_event!(
                "conn={} peer={} event=store-error error={:?}",
                self.id,
                self.peer,
                io_err.to_string()
            );
        }
        self.refuse(store_refusal(&err))
    }

    fn pasv(&mut self) -> io::Result<Next> {
        if self.epsv_all {
            return self
                .refuse(Refusal::new(Reason::Unsupported, "EPSV ALL was sent; use EPSV").with_code(503));
        }
        let IpAddr::V4(ip) = self.local.ip() else {
            return self.refuse(Refusal::new(Reason::NoDataConnection, "PASV needs IPv4; use EPSV"));
        };
        match self.open_passive() {
            Ok(port) => self.say(227, pasv_reply_text(SocketAddrV4::new(ip, port))),
            Err(err) => self
                .refuse(Refusal::new(Reason::NoDataConnection, format!("Cannot open a passive port: {err}"))),
        }
    }

    fn epsv(&mut self, argument: Option<&str>) -> io::Result<Next> {
        match argument.map(str::to_ascii_uppercase).as_deref() {
            None => {}
            Some("ALL") => {
                self.epsv_all = true;
                return self.say(200, "EPSV ALL ok");
            }
            Some("1") if self.local.is_ipv4() => {}
            Some("2") if self.local.is_ipv6() => {}
            Some(number) if number.bytes().all(|b| b.is_ascii_digit()) => {
                let protocol = if self.local.is_ipv4() { 1 } else { 2 };
                let text = format!("Network protocol not supported, use ({protocol})");
                return self.refuse(Refusal::new(Reason::Unsupported, text).with_code(522));
            }
            Some(_) => {
                return self.refuse(Refusal::new(Reason::BadArgument, "EPSV takes no argument, 1, 2 or ALL"));
            }
        }
        match self.open_passive() {
            Ok(port) => self.say(229, epsv_reply_text(port)),
            Err(err) => self
                .refuse(Refusal::new(Reason::NoDataConnection, format!("Cannot open a passive port: {err}"))),
        }
    }

    /// Listens on a fresh port the OS picks, on the address the client reached us on.
    fn open_passive(&mut self) -> io::Result<u16> {
        self.passive = None;
        let listener = TcpListener::bind(SocketAddr::new(self.local.ip(), 0))?;
        let port = listener.local_addr()?.port();
        self.passive = Some(listener);
        Ok(port)
    }

    /// Takes the client's data connection on the passive port. Connections from any other
    /// address are dropped unanswered and the wait goes on (RFC 2577 port stealing).
    fn accept_data(&mut self) -> Result<TcpStream, Refusal> {
        let refused = |text: String| Refusal::new(Reason::NoDataConnection, text);
        let listener = self.passive.take().ok_or_else(|| refused("Use PASV or EPSV first".into()))?;
        let limit = self.shared.config.passive_timeout;
        let deadline = Instant::now() + limit;
        let mut pause = Duration::from_millis(1);
        let fail = |err: io::Error| refused(format!("Cannot open data connection: {err}"));
        listener.set_nonblocking(true).map_err(fail)?;
        loop {
            match listener.accept() {
                Ok((stream, from)) if from.ip() == self.peer.ip() => {
                    stream.set_nonblocking(false).map_err(fail)?;
                    stream.set_read_timeout(Some(WATCH_INTERVAL)).map_err(fail)?;
                    stream.set_write_timeout(Some(WATCH_INTERVAL)).map_err(fail)?;
                    return Ok(stream);
                }
                Ok((stream, from)) => {
                    log_event!("conn={} peer={} event=data-refused from={from}", self.id, self.peer);
                    drop(stream);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        let waited = format_duration(limit);
                        return Err(refused(format!("No data connection within {waited}")));
                    }
                    thread::sleep(pause);
                    pause = (pause * 2).min(ACCEPT_POLL_MAX);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(fail(err)),
            }
        }
    }

    /// Sends `preliminary`, opens the data connection and hands it, with a watch on the
    /// control connection, to `transfer`; then sends the final reply `transfer` chose, or the
    /// replies for however it was stopped.
    fn with_data(
        &mut self,
        preliminary: String,
        transfer: impl FnOnce(&mut TcpStream, &mut ControlWatch<'_>) -> Result<Reply, Stop>,
    ) -> io::Result<Next> {
        if self.passive.is_none() {
            return self.refuse(Refusal::new(Reason::NoDataConnection, "Use PASV or EPSV first"));
        }
        self.reply(Reply::new(150, preliminary))?;
        let mut data = match self.accept_data() {
            Ok(data) => data,
            Err(refusal) => return self.refuse(refusal),
        };
        let mut watch = ControlWatch {
            control: &self.control,
            lines: &mut self.lines,
            held: &mut self.held,
            quit_seen: false,
            data_timeout: self.shared.config.data_timeout,
            max_held: self.shared.config.max_held_commands,
        };
        let outcome = transfer(&mut data, &mut watch);
        let _ = data.shutdown(Shutdown::Both);
        drop(data);
        let (id, peer) = (self.id, self.peer);
        match outcome {
            Ok(reply) => self.answer(reply),
            Err(Stop::Store(err)) => {
                log_event!("conn={id} peer={peer} event=transfer-refused reason={:?}", err.to_string());
                self.store_error(err)
            }
            Err(Stop::Data(err)) => {
                let reason = match err.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        format!("no progress for {}", format_duration(self.shared.config.data_timeout))
                    }
                    _ => err.to_string(),
                };
                log_event!("conn={id} peer={peer} event=transfer-aborted reason={reason:?}");
                let text = format!("Data connection failed: {reason}; transfer aborted");
                self.refuse(Refusal::new(Reason::TransferCut, text))
            }
            Err(Stop::Abort) => {
                log_event!("conn={id} peer={peer} event=transfer-aborted reason=\"ABOR\"");
                self.reply(
                    Refusal::new(Reason::TransferCut, "Transfer aborted; an upload is not stored").to_reply(),
                )?;
                self.say(226, "ABOR successful")
            }
            Err(Stop::ClientGone) => {
                log_event!(
                    "conn={id} peer={peer} event=transfer-aborted reason=\"control connection closed\""
                );
                Ok(Next::Close("closed-by-peer"))
            }
        }
    }

    fn listing(&mut self, argument: Option<&str>, kind: ListingKind) -> io::Result<Next> {
        let path = argument.map(|a| self.resolve(a)).unwrap_or_else(|| self.cwd.clone());
        let entries = match &path {
            VirtualPath::Root => Ok(Vec::new()),
            _ => self.lookup(&path).and_then(|(_, manifest, rel)| match manifest.lookup(&rel) {
                Some(Node::Folder) => Ok(manifest.children(&rel)),
                Some(Node::File(_)) if kind == ListingKind::Facts => Err(StoreError::NotAFolder),
                Some(Node::File(file)) => Ok(vec![ListingEntry {
                    name: path.file_name().unwrap_or_default().to_owned(),
                    is_dir: false,
                    size: file.size,
                    modified: file.modified,
                    sha256: Some(file.sha256),
                }]),
                None => Err(StoreError::NotFound),
            }),
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err(StoreError::NotAFolder) => {
                let text = "MLSD needs a folder; use MLST for a file";
                return self.refuse(Refusal::new(Reason::BadArgument, text));
            }
            Err(err) => return self.store_error(err),
        };
        let now = unix_now();
        let mut text = String::new();
        for entry in &entries {
            let line = match kind {
                ListingKind::List => list_line(entry, now),
                ListingKind::Names => entry.name.clone(),
                ListingKind::Facts => mlsx_line(entry),
            };
            text.push_str(&line);
            text.push_str("\r\n");
        }
        let count = entries.len();
        self.with_data(format!("Listing {path}"), move |data, watch| {
            watch.write_all(data, text.as_bytes())?;
            Ok(Reply::new(226, format!("Listing sent, {count} entries")))
        })
    }

    fn mlst(&mut self, argument: Option<&str>) -> io::Result<Next> {
        let path = argument.map(|a| self.resolve(a)).unwrap_or_else(|| self.cwd.clone());
        let entry = match &path {
            VirtualPath::Root => {
                Ok(ListingEntry { name: "/".into(), is_dir: true, size: 0, modified: 0, sha256: None })
            }
            _ => self.lookup(&path).and_then(|(share, manifest, rel)| match manifest.lookup(&rel) {
                Some(Node::Folder) => Ok(ListingEntry {
                    name: String::new(),
                    is_dir: true,
                    size: 0,
                    modified: share.meta.created,
                    sha256: None,
                }),
                Some(Node::File(file)) => Ok(ListingEntry {
                    name: String::new(),
                    is_dir: false,
                    size: file.size,
                    modified: file.modified,
                    sha256: Some(file.sha256),
                }),
                None => Err(StoreError::NotFound),
            }),
        };
        match entry {
            Ok(mut entry) => {
                entry.name = path.to_string();
                let facts = format!(" {}", mlsx_line(&entry));
                self.answer(Reply::multi(250, format!("Listing {path}"), vec![facts], "End"))
            }
            Err(err) => self.store_error(err),
        }
    }

    fn retr(&mut self, argument: &str) -> io::Result<Next> {
        let offset = std::mem::take(&mut self.restart_at);
        let path = self.resolve(argument);
        let found =
            self.lookup_file(&path).and_then(|(share, entry)| Ok((share.open_file(&entry)?, share, entry)));
        let (file, share, entry) = match found {
            Ok(found) => found,
            Err(err) => return self.store_error(err),
        };
        if self.transfer_type == TransferType::Ascii {
            return self.refuse(Refusal::new(Reason::BinaryOnly, BINARY_ONLY));
        }
        if offset > entry.size {
            let text = format!("REST {offset} is past the end of the file ({} bytes)", entry.size);
            return self.refuse(Refusal::new(Reason::BadOffset, text));
        }
        let slot = match share.reserve_download(&entry) {
            Ok(slot) => slot,
            Err(err) => return self.store_error(err),
        };
        let remaining = entry.size - offset;
        let (id, peer) = (self.id, self.peer);
        let (file, start) = file;
        self.with_data(format!("Sending {path} ({remaining} bytes)"), move |data, watch| {
            let end = start + entry.size;
            let mut position = start + offset;
            let mut last_progress = Instant::now();
            while position < end {
                watch.check()?;
                let slice = RETR_SLICE_BYTES.min((end - position) as usize);
                match send_file(&file, &mut position, slice, data) {
                    Ok(0) => {
                        let short =
                            io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than its record");
                        return Err(Stop::Data(short));
                    }
                    Ok(_) => last_progress = Instant::now(),
                    Err(err) if is_timeout(&err) => watch.stalled(last_progress)?,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => return Err(Stop::Data(err)),
                }
            }
            let sent = position - start - offset;
            // A download spends the budget once its last byte went out, whatever the client
            // does next: a client could otherwise read it all and then reset the connection.
            if let Some(slot) = slot {
                slot.finish().map_err(Stop::Store)?;
            }
            log_event!(
                "conn={id} peer={peer} event=retr path={:?} offset={offset} bytes={sent}",
                path.to_string()
            );
            Ok(Reply::new(226, format!("Transfer complete, {sent} bytes, SHA-256 {}", entry.sha256)))
        })
    }

    /// The share of `path`, if this connection may add to it, and the path inside it.
    fn writable(&self, path: &VirtualPath) -> Result<(Share, Vec<String>), Refusal> {
        let (code, rel) = match path {
            VirtualPath::Share { code, rel } if !rel.is_empty() => (code, rel),
            _ => {
                let text = "Files go inside a share: create one with SITE MKSHARE, then use /<code>/<name>";
                return Err(Refusal::new(Reason::OutsideShare, text));
            }
        };
        let share = self.owned_share(code)?;
        self.shared.store.limits().check_path(rel).map_err(|err| store_refusal(&err))?;
        Ok((share, rel.clone()))
    }

    /// Share `code`, if it is not sealed and this connection owns it. Others cannot even see
    /// an unsealed share, so to them it is not found.
    fn owned_share(&self, code: &str) -> Result<Share, Refusal> {
        let share = self.open_share(code).map_err(|err| store_refusal(&err))?;
        if share.meta.sealed {
            return Err(store_refusal(&StoreError::Sealed));
        }
        Ok(share)
    }

    /// STOR and APPE: receives a file, from its first byte or resuming a cut upload.
    fn stor(&mut self, argument: &str, start: Start) -> io::Result<Next> {
        let path = self.resolve(argument);
        let allocated = self.allocated.take();
        let (share, rel) = match self.writable(&path) {
            Ok(found) => found,
            Err(refusal) => return self.refuse(refusal),
        };
        if self.transfer_type == TransferType::Ascii {
            return self.refuse(Refusal::new(Reason::BinaryOnly, BINARY_ONLY));
        }
        let expected = Expected { sha256: self.declared.remove(&path.to_string()), size: allocated };
        let upload = match share.begin_upload(&rel, expected, start) {
            Ok(upload) => upload,
            Err(err) => return self.store_error(err),
        };
        let offset = upload.offset();
        let (id, peer) = (self.id, self.peer);
        let preliminary = match offset {
            0 => format!("Receiving {path}"),
            _ => format!("Receiving {path} from byte {offset}"),
        };
        self.with_data(preliminary, move |data, watch| {
            let mut upload = upload;
            match receive(data, watch, &mut upload) {
                Ok(()) => {}
                // A refused or aborted upload leaves nothing; a cut one keeps its bytes for a resume.
                Err(stop @ (Stop::Store(_) | Stop::Abort)) => {
                    upload.discard();
                    return Err(stop);
                }
                Err(stop) => return Err(stop),
            }
            if upload.is_short() {
                let cut = format!("connection closed after {} of the announced bytes", upload.received());
                return Err(Stop::Data(io::Error::new(io::ErrorKind::UnexpectedEof, cut)));
            }
            let received = upload.received();
            match upload.commit() {
                Ok(entry) => {
                    log_event!(
                        "conn={id} peer={peer} event=stor path={:?} offset={offset} bytes={} sha256={}",
                        path.to_string(),
                        entry.size,
                        entry.sha256
                    );
                    let stored =
                        StoredReply { path: path.to_string(), size: entry.size, digest: entry.sha256 };
                    Ok(Reply::new(226, stored.to_string()))
                }
                Err(err) => {
                    log_event!(
                        "conn={id} peer={peer} event=stor-rejected path={:?} bytes={received} reason={:?}",
                        path.to_string(),
                        err.to_string()
                    );
                    Ok(store_refusal(&err).to_reply())
                }
            }
        })
    }

    fn mkd(&mut self, argument: &str) -> io::Result<Next> {
        let path = self.resolve(argument);
        let (share, rel) = match self.writable(&path) {
            Ok(found) => found,
            Err(refusal) => return self.refuse(refusal),
        };
        match share.make_folder(&rel) {
            Ok(()) => self.say(257, format!("{} created", quote_path(&path.to_string()))),
            Err(err) => self.store_error(err),
        }
    }

    fn site(&mut self, command: SiteCommand) -> io::Result<Next> {
        match command {
            SiteCommand::Mkshare { seconds, downloads } => self.mkshare(seconds, downloads),
            SiteCommand::Digest(digest, argument) => {
                let limit = self.shared.config.max_pending_digests;
                if self.declared.len() >= limit {
                    let text = format!("Too many declared digests (limit {limit}); STOR some first");
                    return self.refuse(Refusal::new(Reason::LimitReached, text));
                }
                let path = self.resolve(&argument);
                let text = format!("SHA-256 for {path} noted; the next STOR of it must match");
                self.declared.insert(path.to_string(), digest);
                self.say(200, text)
            }
            SiteCommand::Seal => self.seal(),
            SiteCommand::Owner(code, token) => self.claim(&code, &token),
            SiteCommand::Info(argument) => self.info(argument.as_deref()),
            SiteCommand::Delete(code, token) => self.delete(&code, &token),
            SiteCommand::Partial(argument) => {
                let path = self.resolve(&argument);
                let kept = self
                    .writable(&path)
                    .and_then(|(share, rel)| share.partial_size(&rel).map_err(|err| store_refusal(&err)));
                match kept {
                    Ok(kept) => self.say(213, kept.to_string()),
                    Err(refusal) => self.refuse(refusal),
                }
            }
            SiteCommand::Help => self.help(),
        }
    }

    fn mkshare(&mut self, seconds: Option<u64>, downloads: Option<u64>) -> io::Result<Next> {
        let config = &self.shared.config;
        let lifetime = seconds.map(Duration::from_secs).unwrap_or(config.default_expiry);
        if lifetime.is_zero() {
            return self.refuse(Refusal::new(Reason::BadArgument, "Expiry must be at least one second"));
        }
        if lifetime > config.max_expiry {
            let text = format!(
                "Expiry {} is longer than this server allows ({})",
                format_duration(lifetime),
                format_duration(config.max_expiry)
            );
            return self.refuse(Refusal::new(Reason::Unsupported, text));
        }
        if let Some(budget) = downloads
            && budget > config.max_download_budget
        {
            let limit = config.max_download_budget;
            let text = format!("DOWNLOADS={budget} is more than this server allows ({limit})");
            return self.refuse(Refusal::new(Reason::Unsupported, text));
        }
        if !self.shared.admission.allow_share(self.peer.ip(), Instant::now()) {
            let limit = config.max_shares_per_hour;
            log_event!("conn={} peer={} event=refused reason=shares-per-hour", self.id, self.peer);
            let text = format!("Too many shares created from your address (limit {limit} per hour)");
            return self.refuse(Refusal::new(Reason::LimitReached, text));
        }
        let expires = unix_now() + lifetime.as_secs() as i64;
        match self.shared.store.create_share(expires, downloads) {
            Ok((share, token)) => {
                let code = share.code.to_string();
                let budget = downloads.map_or("unlimited".into(), |n| n.to_string());
                log_event!(
                    "conn={} peer={} event=share-created share={code} expires={} downloads={budget}",
                    self.id,
                    self.peer,
                    rfc3339(expires)
                );
                self.owned.insert(code.clone());
                self.created.insert(code.clone());
                self.cwd = VirtualPath::Share { code: code.clone(), rel: Vec::new() };
                let created =
                    CreatedShare { code, owner_token: token.to_string(), expires: rfc3339(expires) };
                self.answer(created.to_reply())
            }
            Err(err) => self.store_error(err),
        }
    }

    /// SITE OWNER: proves with the owner token that this connection may write to the share.
    fn claim(&mut self, code: &str, token: &str) -> io::Result<Next> {
        let share = match self.shared.store.share(code, unix_now()) {
            Ok(share) if share.is_owner(token) => share,
            Ok(_) | Err(StoreError::NotFound) => {
                self.shared.admission.record_miss(self.peer.ip(), Instant::now());
                return self.store_error(StoreError::NotFound);
            }
            Err(err) => return self.store_error(err),
        };
        if share.meta.sealed {
            return self.store_error(StoreError::Sealed);
        }
        self.owned.insert(share.code.to_string());
        self.cwd = VirtualPath::Share { code: share.code.to_string(), rel: Vec::new() };
        log_event!("conn={} peer={} event=owner share={}", self.id, self.peer, share.code);
        self.say(200, format!("You own /{} until it is sealed", share.code))
    }

    /// SITE DELETE: removes a share at once for whoever holds its owner token.
    fn delete(&mut self, code: &str, token: &str) -> io::Result<Next> {
        match self.shared.store.delete_share(code, token) {
            Ok(()) => {
                self.owned.remove(code);
                self.created.remove(code);
                log_event!("conn={} peer={} event=deleted share={code}", self.id, self.peer);
                self.say(250, format!("Share /{code} deleted"))
            }
            Err(StoreError::NotFound) => {
                self.shared.admission.record_miss(self.peer.ip(), Instant::now());
                self.store_error(StoreError::NotFound)
            }
            Err(err) => self.store_error(err),
        }
    }

    fn seal(&mut self) -> io::Result<Next> {
        let VirtualPath::Share { code, .. } = &self.cwd else {
            let text = "Not inside a share: CWD /<code> first";
            return self.refuse(Refusal::new(Reason::OutsideShare, text).with_code(550));
        };
        let mut share = match self.owned_share(code) {
            Ok(found) => found,
            Err(refusal) => return self.refuse(refusal),
        };
        match share.seal() {
            Ok(()) => {
                self.owned.remove(share.code.as_str());
                self.created.remove(share.code.as_str());
                log_event!("conn={} peer={} event=sealed share={}", self.id, self.peer, share.code);
                self.say(200, format!("Share /{} sealed; it is read-only now", share.code))
            }
            Err(err) => self.store_error(err),
        }
    }

    /// SITE INFO: expiry, state, totals and download budget of a share; for a file, also how
    /// many complete downloads it has left.
    fn info(&mut self, argument: Option<&str>) -> io::Result<Next> {
        let path = argument.map(|a| self.resolve(a)).unwrap_or_else(|| self.cwd.clone());
        if path == VirtualPath::Root {
            let text = "Not inside a share; give SITE INFO /<code>";
            return self.refuse(Refusal::new(Reason::OutsideShare, text).with_code(550));
        }
        let described = self.lookup(&path).and_then(|(share, manifest, rel)| {
            let (files, bytes) = manifest.totals();
            let mut info = ShareInfo {
                code: share.code.to_string(),
                expires: rfc3339(share.meta.expires),
                sealed: share.meta.sealed,
                files: files as u64,
                bytes,
                downloads: share.meta.downloads,
                downloads_left: None,
                is_file: false,
            };
            match manifest.lookup(&rel) {
                Some(Node::Folder) => {}
                Some(Node::File(entry)) => {
                    info.downloads_left = share.downloads_left(entry)?;
                    info.is_file = true;
                }
                None => return Err(StoreError::NotFound),
            }
            Ok(info)
        });
        match described {
            Ok(info) => self.answer(info.to_reply()),
            Err(err) => self.store_error(err),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ListingKind {
    /// LIST: `ls -l` lines.
    List,
    /// NLST: names only.
    Names,
    /// MLSD: RFC 3659 facts.
    Facts,
}

/// The one place where store errors become refusals: each [`StoreError`] has its [`Reason`],
/// and the reason's usual code.
pub fn store_refusal(err: &StoreError) -> Refusal {
    let text = capitalise(&err.to_string());
    match err {
        StoreError::NotFound => Refusal::new(Reason::NotFound, "No such share or file (or it has expired)"),
        StoreError::Exists => Refusal::new(Reason::Exists, text),
        StoreError::Sealed => Refusal::new(Reason::Sealed, text),
        StoreError::IsAFolder => Refusal::new(Reason::IsAFolder, text),
        StoreError::NotAFolder => Refusal::new(Reason::NotAFolder, text),
        StoreError::DigestMismatch { .. } => Refusal::new(Reason::DigestMismatch, text),
        StoreError::BadName(_) => Refusal::new(Reason::BadName, text),
        StoreError::TooLarge { .. } => Refusal::new(Reason::TooLarge, text),
        StoreError::TooManyFiles(_) => Refusal::new(Reason::TooManyFiles, text),
        StoreError::DiskFull { .. } => Refusal::new(Reason::DiskFull, text),
        StoreError::Busy => Refusal::new(Reason::Busy, text),
        StoreError::BadOffset { .. } => Refusal::new(Reason::BadOffset, text),
        StoreError::Io(io) if io.kind() == io::ErrorKind::StorageFull => Refusal::new(Reason::DiskFull, text),
        StoreError::Io(_) => Refusal::new(Reason::StorageError, "Local storage error; nothing was stored"),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
