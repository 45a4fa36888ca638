//! One control connection, from greeting to goodbye: the [`Session`] and its state (login,
//! current folder, `TYPE`, passive listener, what `REST`, `ALLO` and `SITE DIGEST` left for the
//! next transfer, the shares it owns), the loop that reads commands through `proto`, and
//! `dispatch`, the table from verb to handler. The handlers live beside it by concern: `data`
//! (the data connection and transfers), `listing`, `site`; `rules` makes the decisions that
//! need no socket, and `replies` holds the words, with the one mapping from store errors to
//! refusals. It imports the server's `config` and `shared` state, never the accept loop.

mod data;
mod ftps;
mod listing;
mod replies;
mod rules;
mod site;

pub use replies::store_refusal;

use std::collections::{HashSet, VecDeque};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use crate::common::expiry::format_duration;
use crate::common::line_io::read_line;
use crate::common::platform::keep_urgent_data_inline;
use crate::log_event;
use crate::proto::line::{Line, LineBuffer};
use crate::proto::{
    self, Command, HashReply, ProtoError, Reason, Refusal, Reply, TransferType, listing_path,
};
use crate::server::session::listing::ListingKind;
use crate::server::session::replies::{FEATURES, HELP};
use crate::server::session::rules::{Access, Pending, UploadVerb};
use crate::server::shared::Shared;
use crate::server::store::{FileEntry, Manifest, Node, Share, StoreError, unix_now};
use crate::server::stream::ControlStream;
use crate::server::vpath::{VirtualPath, quote_path};

/// What a command handler asks of the loop after replying.
enum Next {
    Continue,
    /// End the connection, for the reason given (logged).
    Close(&'static str),
}

pub struct Session<'a> {
    shared: &'a Shared,
    id: u64,
    peer: SocketAddr,
    local: SocketAddr,
    control: ControlStream,
    lines: LineBuffer,
    held: VecDeque<Line>,
    user_ok: bool,
    logged_in: bool,
    cwd: VirtualPath,
    transfer_type: TransferType,
    passive: Option<TcpListener>,
    epsv_all: bool,
    /// What REST, ALLO and SITE DIGEST left for the transfers that follow.
    pending: Pending,
    owned: HashSet<String>,
    /// The shares this connection created: its QUIT seals them.
    created: HashSet<String>,
    /// What AUTH, PBSZ and PROT agreed (RFC 4217).
    protection: ftps::Protection,
}

/// A reader that gives each control line at most the idle timeout in total, so a client that
/// trickles one byte at a time cannot hold a worker forever.
struct LineDeadline<'s> {
    stream: &'s mut ControlStream,
    deadline: Instant,
}

impl Read for LineDeadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.socket().set_read_timeout(Some(left))?;
        self.stream.read(buf)
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
            control: ControlStream::Plain(control),
            lines: LineBuffer::new(shared.config.max_line),
            held: VecDeque::new(),
            user_ok: false,
            logged_in: false,
            cwd: VirtualPath::Root,
            transfer_type: TransferType::Image,
            passive: None,
            epsv_all: false,
            pending: Pending::new(shared.config.max_pending_digests),
            owned: HashSet::new(),
            created: HashSet::new(),
            protection: ftps::Protection::default(),
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
        self.control.socket().set_write_timeout(Some(idle))?;
        self.control.socket().set_nodelay(true)?;
        keep_urgent_data_inline(self.control.socket())?;
        self.reply(Reply::new(220, "anonshare ready; log in as anonymous"))?;
        loop {
            let line = match self.held.pop_front() {
                Some(line) => line,
                None => {
                    let mut reader =
                        LineDeadline { stream: &mut self.control, deadline: Instant::now() + idle };
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
        self.control.send(reply.to_string().as_bytes())
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
        if let Err(refusal) = rules::login_gate(self.logged_in, &command) {
            return self.refuse(refusal);
        }
        if let Err(refusal) = self.check_tls_gate(&command) {
            return self.refuse(refusal);
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
                let body = FEATURES.iter().chain(self.tls_features()).map(|f| format!(" {f}")).collect();
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
                self.pending.restart(offset);
                self.say(350, format!("Restarting at {offset}; send RETR or STOR"))
            }
            Command::Retr(path) => self.retr(&path),
            Command::Stor(path) => self.stor(&path, UploadVerb::Stor),
            Command::Appe(path) => self.stor(&path, UploadVerb::Appe),
            Command::Mkd(path) => self.mkd(&path),
            Command::Abor => self.say(225, "No transfer to abort"),
            Command::Allo(None) => self.say(202, "No storage allocation necessary"),
            Command::Allo(Some(size)) => {
                self.pending.allocate(size);
                self.say(
                    200,
                    format!("The next upload is {size} bytes; fewer is a cut upload, kept to resume"),
                )
            }
            Command::Help => self.help(),
            Command::Site(site) => self.site(site),
            Command::Auth(mechanism) => self.auth(&mechanism),
            Command::Pbsz(size) => self.pbsz(&size),
            Command::Prot(level) => self.prot(&level),
            Command::Ccc => self.ccc(),
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
        let body = HELP.iter().map(|line| line.to_string()).collect();
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
            Ok(share) => match self.access(&share) {
                Access::Hidden => Err(StoreError::NotFound),
                Access::Read | Access::Write => Ok(share),
            },
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

    /// What this connection may do with `share`.
    fn access(&self, share: &Share) -> Access {
        rules::access(share.meta.sealed, self.owned.contains(share.code.as_str()))
    }

    /// The share of `path`, if this connection may add to it, and the path inside it.
    fn writable(&self, path: &VirtualPath) -> Result<(Share, Vec<String>), Refusal> {
        let (code, rel) = rules::write_target(path)?;
        let share = self.owned_share(code)?;
        self.shared.store.limits().check_path(rel).map_err(|err| store_refusal(&err))?;
        Ok((share, rel.to_vec()))
    }

    /// Share `code`, if it is not sealed and this connection owns it. Others cannot even see
    /// an unsealed share, so to them it is not found.
    fn owned_share(&self, code: &str) -> Result<Share, Refusal> {
        let share = self.open_share(code).map_err(|err| store_refusal(&err))?;
        rules::write_access(self.access(&share))?;
        Ok(share)
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
}
