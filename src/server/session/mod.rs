//! One control connection, from greeting to goodbye: the [`Session`] and its state (login,
//! current folder, `TYPE`, passive listener, what `REST`, `ALLO` and `SITE DIGEST` left for the
//! next transfer, the shares it owns), the loop that reads commands through `proto`, and
//! `dispatch`, the table from verb to handler. The handlers live beside it by concern: `data`
//! (the data connection and transfers), `listing`, `site`; `rules` makes the decisions that
//! need no socket, `replies` holds the words, with the one mapping from store errors to
//! refusals, and `journal` what the session writes to the log about refusals and shutdown. It
//! imports the server's `config` and `shared` state, never the accept loop.

mod data;
mod ftps;
mod journal;
mod listing;
mod replies;
mod rules;
mod site;

pub use replies::store_refusal;

use std::cell::{Cell, RefCell};
use std::collections::{HashSet, VecDeque};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::expiry::format_duration;
use crate::common::line_io::read_line;
use crate::common::platform::keep_urgent_data_inline;
use crate::common::secret::ShareCode;
use crate::log_event;
use crate::proto::line::{Line, LineBuffer};
use crate::proto::{
    self, Command, HashReply, ListingRequest, ProtoError, Reason, Refusal, Reply, TransferType,
    listing_request,
};
use crate::server::admission::Miss;
use crate::server::log::ShareTag;
use crate::server::session::listing::ListingKind;
use crate::server::session::replies::{FEATURES, HELP};
use crate::server::session::rules::{Access, Mishaps, Pending, UploadVerb, Written};
use crate::server::shared::Shared;
use crate::server::store::{FileEntry, KeptPack, Manifest, Node, Share, StoreError, unix_now};
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
    owned: HashSet<ShareCode>,
    /// The shares this connection created: its QUIT seals them, unless `mishaps` says not to.
    created: HashSet<ShareCode>,
    /// Writes that failed, and paths outside every share, since a share was created here.
    mishaps: RefCell<Mishaps>,
    /// The path of the write (`STOR`, `APPE`, `MKD`) being answered: a refusal of it is a mishap.
    writing: Option<VirtualPath>,
    /// The shares this connection created, claimed or entered with `CWD`, oldest first: `/`
    /// lists these and no other, so it reveals no code the client did not name.
    in_hand: Vec<ShareCode>,
    /// Set when this connection's lookups of missing shares would wait past the longest
    /// delay: the `421` to close with, once the current command was answered.
    guessing: Cell<Option<Refusal>>,
    /// The verb of the command being answered, for the log (`-` between commands).
    verb: String,
    /// What AUTH, PBSZ and PROT agreed (RFC 4217).
    protection: ftps::Protection,
    /// The read timeout the control socket has, when this session set it last, so that a
    /// command costs no `setsockopt` when it stays the same; `None` once something else set it.
    control_read_timeout: Cell<Option<Duration>>,
    /// The sealed share the last command opened: the next command on it opens it with
    /// [`crate::server::store::Store::share_again`], which reads no `meta`.
    kept_share: RefCell<Option<Share>>,
    /// The pack of the kept share the last `RETR` read from, open for the next one.
    kept_pack: RefCell<Option<KeptPack>>,
}

/// A reader that gives each control line at most the idle timeout in total, so a client that
/// trickles one byte at a time cannot hold a worker forever. It waits in short slices, and
/// stops with [`journal::ShuttingDown`] once the server is stopping.
struct LineDeadline<'s> {
    stream: &'s mut ControlStream,
    deadline: Instant,
    shared: &'s Shared,
    /// The socket's read timeout as last set ([`Session::control_read_timeout`]).
    timeout: &'s Cell<Option<Duration>>,
}

impl Read for LineDeadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.shared.shutdown.is_draining() {
                return Err(io::Error::other(journal::ShuttingDown));
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            let slice = Some(left.min(journal::SHUTDOWN_LOOK));
            if self.timeout.get() != slice {
                self.timeout.set(None);
                self.stream.socket().set_read_timeout(slice)?;
                self.timeout.set(slice);
            }
            match self.stream.read(buf) {
                Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                result => return result,
            }
        }
    }
}

impl<'a> Session<'a> {
    /// Serves one connection, from `peer` as `accept` said, to its end; every error ends in a
    /// log line, never a panic.
    pub fn run(control: TcpStream, peer: SocketAddr, id: u64, shared: &'a Shared) {
        let Ok(local) = control.local_addr() else {
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
            mishaps: RefCell::new(Mishaps::new(shared.config.max_files_per_share)),
            writing: None,
            in_hand: Vec::new(),
            guessing: Cell::new(None),
            verb: journal::NO_VERB.into(),
            protection: ftps::Protection::default(),
            control_read_timeout: Cell::new(None),
            kept_share: RefCell::new(None),
            kept_pack: RefCell::new(None),
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
            self.verb = journal::NO_VERB.into();
            if self.shared.shutdown.is_draining() {
                return self.leave_for_shutdown();
            }
            let line = match self.held.pop_front() {
                Some(line) => line,
                None => {
                    let mut reader = LineDeadline {
                        stream: &mut self.control,
                        deadline: Instant::now() + idle,
                        shared: self.shared,
                        timeout: &self.control_read_timeout,
                    };
                    match read_line(&mut reader, &mut self.lines) {
                        Ok(line) => line,
                        Err(err) if journal::is_shutting_down(&err) => return self.leave_for_shutdown(),
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
                Line::Text(bytes) => {
                    self.verb = journal::verb_of(&bytes);
                    proto::parse_command(&bytes)
                }
            };
            let next = match command {
                Ok(command) => self.dispatch(command)?,
                Err(err) => self.refuse(err.refusal())?,
            };
            if let Next::Close(reason) = next {
                return Ok(reason);
            }
            if let Some(refusal) = self.guessing.take() {
                self.reply(refusal.to_reply())?;
                return Ok("share-misses");
            }
        }
    }

    /// Sends `reply`; a refusal is logged too, once, here, and a refused write is a mishap.
    fn reply(&mut self, reply: Reply) -> io::Result<()> {
        if reply.code >= 400 {
            self.log_refusal(&reply);
            if let Some(path) = self.writing.take()
                && !self.created.is_empty()
            {
                let said = reply.lines.first().map(String::as_str).unwrap_or_default();
                let what = format!("{} {path} got {} {said}", self.verb, reply.code);
                self.mishaps.borrow_mut().write_failed(&path, &self.created, &self.owned, what);
            }
        }
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

    fn dispatch(&mut self, command: Command) -> io::Result<Next> {
        if let Err(refusal) = rules::login_gate(self.logged_in, &command) {
            return self.refuse(refusal);
        }
        if let Err(refusal) = self.check_tls_gate(&command) {
            return self.refuse(refusal);
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
            Command::List(argument) => self.listing(listing_request(argument.as_deref()), ListingKind::List),
            Command::Nlst(argument) => self.listing(listing_request(argument.as_deref()), ListingKind::Names),
            Command::Mlsd(argument) => {
                let request = ListingRequest { recursive: false, path: argument.as_deref() };
                self.listing(request, ListingKind::Facts)
            }
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
            Command::Stor(path) => self.write(&path, |session| session.stor(&path, UploadVerb::Stor)),
            Command::Appe(path) => self.write(&path, |session| session.stor(&path, UploadVerb::Appe)),
            Command::Mkd(path) => self.write(&path, |session| session.mkd(&path)),
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

    /// USER: an anonymous name logs in at once (`230`, which RFC 959 allows for USER): no
    /// password is asked for, which saves every connection a round trip.
    fn user(&mut self, name: &str) -> io::Result<Next> {
        self.logged_in = false;
        self.user_ok = name.eq_ignore_ascii_case("anonymous") || name.eq_ignore_ascii_case("ftp");
        if self.user_ok {
            self.logged_in = true;
            log_event!("conn={} peer={} event=login", self.id, self.peer);
            self.say(230, "Logged in as anonymous, no password needed; binary mode (TYPE I)")
        } else {
            self.refuse(Refusal::new(Reason::NotLoggedIn, "Only anonymous login is allowed: USER anonymous"))
        }
    }

    /// PASS: after USER it is not needed, and answered `230` all the same for the clients that
    /// send it anyway.
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
    /// connection that drops without QUIT leaves its shares unsealed and unseen. So does QUIT
    /// for a share that a failed write was meant for, not made good since, or for every share
    /// once a command named a path outside every share: stock clients send QUIT after a failed
    /// command too, and publishing then could hide a missing file. A share left so, or a seal
    /// that fails, is the answer instead of the goodbye, so the uploader learns its share
    /// stayed unseen; the connection closes all the same.
    fn quit(&mut self) -> io::Result<Next> {
        let plan = self.mishaps.borrow().quit_plan(&self.created);
        self.created.clear();
        let (id, peer) = (self.id, self.peer);
        for (code, why) in &plan.hold {
            let tag = ShareTag::of(code.as_str());
            log_event!("conn={id} peer={peer} event=left-unsealed share={tag} by=quit why={why:?}");
        }
        let mut failed = None;
        for code in plan.seal {
            let sealed = self.shared.store.share(&code, unix_now()).and_then(|mut share| share.seal());
            let tag = ShareTag::of(code.as_str());
            match sealed {
                Ok(()) => log_event!("conn={id} peer={peer} event=sealed share={tag} by=quit"),
                // Deleted or expired meanwhile: there is nothing left to publish.
                Err(StoreError::NotFound | StoreError::Gone) => {}
                Err(err) => {
                    let error = err.to_string();
                    log_event!("conn={id} peer={peer} event=seal-failed share={tag} by=quit error={error:?}");
                    failed.get_or_insert(err);
                }
            }
        }
        match (failed, rules::held_refusal(&plan.hold)) {
            (Some(err), _) => self.reply(store_refusal(&err).to_reply())?,
            (None, Some(held)) => self.reply(held.to_reply())?,
            (None, None) => self.reply(Reply::new(221, "Goodbye"))?,
        }
        Ok(Next::Close("quit"))
    }

    /// Runs the write `run` of `argument`: a refusal of it is a mishap (see `reply`), and its
    /// success makes good an earlier failure of the same path.
    fn write(&mut self, argument: &str, run: impl FnOnce(&mut Self) -> io::Result<Next>) -> io::Result<Next> {
        let path = self.resolve(argument);
        self.writing = Some(path.clone());
        let next = run(self);
        if self.writing.take().is_some() {
            self.mishaps.borrow_mut().write_done(&path);
        }
        next
    }

    /// Keeps `code` among the shares `/` lists for this connection, the newest last, at most
    /// `--max-list-entries` of them.
    fn take_in_hand(&mut self, code: &ShareCode) {
        self.in_hand.retain(|held| held != code);
        if self.in_hand.len() >= self.shared.config.max_list_entries.max(1) {
            self.in_hand.remove(0);
        }
        self.in_hand.push(code.clone());
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
    /// expired, or is unsealed and not ours is not found. Only a share that never existed is a
    /// guess, counted against the client's address, and it may be answered late.
    fn open_share(&self, code: &ShareCode) -> Result<Share, StoreError> {
        let store = &self.shared.store;
        let opened = match self.kept_share.take().filter(|kept| kept.code == *code) {
            Some(kept) => store.share_again(&kept, unix_now()),
            None => {
                *self.kept_pack.borrow_mut() = None;
                store.share(code, unix_now())
            }
        };
        match &opened {
            Ok(share) if share.meta.sealed => *self.kept_share.borrow_mut() = Some(share.clone()),
            // A pack is kept only with its share: it would hold a deleted share's space.
            _ => *self.kept_pack.borrow_mut() = None,
        }
        match opened {
            Ok(share) => match self.access(&share) {
                Access::Hidden => Err(StoreError::NotFound),
                Access::Read | Access::Write => Ok(share),
            },
            Err(StoreError::NotFound) => {
                self.missed();
                Err(StoreError::NotFound)
            }
            Err(err) => Err(err),
        }
    }

    /// Counts a guess at a share code or an owner token, and holds its answer as long as the
    /// address's limit says; a guess that would wait too long closes the connection instead.
    fn missed(&self) {
        let miss = self.shared.admission.record_miss(self.peer.ip(), Instant::now());
        let (id, peer) = (self.id, self.peer);
        match miss {
            Miss::Answer { wait } => {
                log_event!("conn={id} peer={peer} event=share-miss wait_ms={}", wait.as_millis());
                self.hold(wait);
            }
            Miss::Close { slowed_for } => {
                log_event!("conn={id} peer={peer} event=share-miss wait_ms=too-long");
                let text = format!(
                    "Too many lookups of shares that do not exist from your address; they are slowed \
                     for {} more; closing",
                    format_duration(Duration::from_secs(slowed_for.as_secs().div_ceil(60).max(1) * 60))
                );
                self.guessing.set(Some(Refusal::new(Reason::LimitReached, text).with_code(421)));
            }
        }
    }

    /// Waits `wait` before a miss is answered. Commands sent meanwhile wait their turn; a
    /// client that leaves ends the wait.
    fn hold(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut probe = [0u8; 1];
        loop {
            let left = until.saturating_duration_since(Instant::now());
            self.control_read_timeout.set(None);
            if left.is_zero() || self.control.socket().set_read_timeout(Some(left)).is_err() {
                return;
            }
            match self.control.socket().peek(&mut probe) {
                // Gone: the next read says so.
                Ok(0) => return,
                // More commands are waiting: a close behind them cannot be seen without
                // reading them, so the wait runs out.
                Ok(_) => {
                    thread::sleep(left);
                    return;
                }
                Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// Opens the share of `path` and its manifest, or says why not.
    fn lookup(&self, path: &VirtualPath) -> Result<(Share, Manifest, Vec<String>), StoreError> {
        let VirtualPath::Share { code, rel } = path else {
            if matches!(path, VirtualPath::Nowhere { .. }) && !self.created.is_empty() {
                self.mishaps.borrow_mut().went_astray(format!("{} {path} named no share", self.verb));
            }
            return Err(StoreError::NotFound);
        };
        let share = self.open_share(code)?;
        let manifest = share.manifest()?;
        Ok((share, manifest, rel.clone()))
    }

    /// The file at `path`, or why there is none.
    fn lookup_file(&self, path: &VirtualPath) -> Result<(Share, FileEntry), StoreError> {
        let (share, manifest, rel) = self.lookup(path)?;
        file_of(share, manifest.lookup(&rel))
    }

    /// The file at `path` for a download: a spent one too, which the download's claim refuses.
    fn lookup_file_to_download(&self, path: &VirtualPath) -> Result<(Share, FileEntry), StoreError> {
        let (share, manifest, rel) = self.lookup(path)?;
        file_of(share, manifest.lookup_to_download(&rel))
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
                if let VirtualPath::Share { code, .. } = &path {
                    self.take_in_hand(&code.clone());
                }
                self.cwd = path;
                self.say(250, text)
            }
            Err(err) => self.store_error(err),
        }
    }

    /// Refuses a command that wanted the file at `path`, for `err`; a folder there gets words
    /// that say to add the trailing slash (a share URL without it asks for a file).
    fn file_error(&mut self, path: &VirtualPath, err: StoreError) -> io::Result<Next> {
        match (err, path) {
            (StoreError::IsAFolder, VirtualPath::Share { code, .. }) => {
                let port = self.local.port();
                let url = self.shared.public.share_url(code.as_str(), port);
                let url = url.unwrap_or_else(|| format!("ftp://{}/{code}/", self.local));
                self.refuse(rules::folder_asked_as_file(path, &url))
            }
            (err, _) => self.store_error(err),
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
        rules::access(share.meta.sealed, self.owned.contains(&share.code))
    }

    /// The share of `path`, if this connection may add to it, and the path inside it.
    fn writable(&self, path: &VirtualPath, what: Written) -> Result<(Share, Vec<String>), Refusal> {
        let (code, rel) = rules::write_target(path, what)?;
        let share = self.owned_share(code)?;
        self.shared.store.limits().check_path(rel).map_err(|err| store_refusal(&err))?;
        Ok((share, rel.to_vec()))
    }

    /// Share `code`, if it is not sealed and this connection owns it. Others cannot even see
    /// an unsealed share, so to them it is not found.
    fn owned_share(&self, code: &ShareCode) -> Result<Share, Refusal> {
        let share = self.open_share(code).map_err(|err| store_refusal(&err))?;
        rules::write_access(self.access(&share))?;
        Ok(share)
    }

    fn mkd(&mut self, argument: &str) -> io::Result<Next> {
        let path = self.resolve(argument);
        let (share, rel) = match self.writable(&path, Written::Folder) {
            Ok(found) => found,
            Err(refusal) => return self.refuse(refusal),
        };
        match share.make_folder(&rel) {
            Ok(()) => self.say(257, format!("{} created", quote_path(&path.to_string()))),
            // The folder is there: nothing is missing (clients make folders that exist).
            Err(StoreError::Exists) => {
                self.mishaps.borrow_mut().write_done(&path);
                self.writing = None;
                self.store_error(StoreError::Exists)
            }
            Err(err) => self.store_error(err),
        }
    }
}

/// The file a lookup found, or why there is none.
fn file_of(share: Share, node: Option<Node<'_>>) -> Result<(Share, FileEntry), StoreError> {
    match node {
        Some(Node::File(entry)) => Ok((share, entry.clone())),
        Some(Node::Folder) => Err(StoreError::IsAFolder),
        None => Err(StoreError::NotFound),
    }
}
