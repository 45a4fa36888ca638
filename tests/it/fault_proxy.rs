//! `FaultProxy`: a TCP proxy between the real `anonshare` client and a real server that cuts a
//! chosen connection after an exact number of bytes, as a lost network would, and counts what it
//! forwards. It owns the client's side of every connection: control connections are relayed
//! line-aware so that passive replies (`229`, `227`) point at data ports of the proxy, and each
//! data connection is relayed to the server's real passive port. It never changes a byte it
//! forwards other than the port in a passive reply, never forwards a byte twice, and never
//! retries anything itself. It keeps the order the server gave: data for a client waits until
//! that client was sent the `150` of its transfer, so a cut never loses a `150` that the server
//! sent before the data the client got. It can also hold a group of data connections until all
//! of them are open ([`SideBySide`]). Its tests, and the client's retries through it, are in
//! `proxy.rs`.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anonshare::proto::{epsv_reply_text, parse_epsv_reply, parse_pasv_reply, pasv_reply_text};

use crate::support::{DEADLINE, wait_until};

/// Longest a blocked proxy thread goes without checking whether it should stop.
const POLL: Duration = Duration::from_millis(20);
/// Time allowed to connect to the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a data port of the proxy waits for the client after a passive reply.
pub const DATA_ACCEPT_WINDOW: Duration = DEADLINE;
/// Longest reply line held back while looking for its end; a longer one is forwarded as is.
const MAX_REPLY_LINE: usize = 8192;
/// Most bytes read at once.
const CHUNK_BYTES: usize = 64 * 1024;
/// Most bytes of each direction of a control connection kept for `control_transcript`.
const MAX_TRANSCRIPT_BYTES: usize = 1 << 20;

/// Which kind of connection a fault cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Control,
    Data,
}

/// Which way bytes travel through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ToClient,
    ToServer,
}

/// One cut: connection `nth` of `channel` is cut once `after_bytes` have been forwarded on it in
/// `direction`. Exactly `after_bytes` get through; then both of its sockets are shut down and
/// dropped. The receiving end sees its stream end cleanly (FIN) right after those bytes; a
/// sender with more to send sees a broken pipe or a reset. Cutting a control connection also
/// cuts every data connection opened through it that is still open, like a client losing its
/// network. Each fault fires at most once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub channel: Channel,
    /// 0-based index among the proxy's connections of `channel`, in the order it accepted them.
    pub nth: usize,
    pub direction: Direction,
    /// 0 cuts the connection as soon as the proxy has both of its ends.
    pub after_bytes: u64,
    /// For a data fault: cut its control connection too, first, so nothing the server says
    /// after the cut reaches the client. A reply it forwarded earlier, such as a 226 sent once
    /// the server's last byte was buffered, is already with the client. A control fault always
    /// takes its data connections along.
    pub with_control: bool,
    /// Instead of cutting, flip the bits of the byte at offset `after_bytes` and go on: a
    /// corruption that TCP's checksum missed.
    pub flip: bool,
}

impl Fault {
    pub fn data_to_client(nth: usize, after_bytes: u64) -> Fault {
        Fault {
            channel: Channel::Data,
            nth,
            direction: Direction::ToClient,
            after_bytes,
            with_control: false,
            flip: false,
        }
    }

    pub fn data_to_server(nth: usize, after_bytes: u64) -> Fault {
        Fault { direction: Direction::ToServer, ..Fault::data_to_client(nth, after_bytes) }
    }

    pub fn control_to_client(nth: usize, after_bytes: u64) -> Fault {
        Fault { channel: Channel::Control, ..Fault::data_to_client(nth, after_bytes) }
    }

    pub fn control_to_server(nth: usize, after_bytes: u64) -> Fault {
        Fault { channel: Channel::Control, ..Fault::data_to_server(nth, after_bytes) }
    }

    /// Byte `at` of data connection `nth` reaches the server with its bits flipped.
    pub fn flip_data_to_server(nth: usize, at: u64) -> Fault {
        Fault { flip: true, ..Fault::data_to_server(nth, at) }
    }

    /// The same cut, taking the control connection down with it: a network loss mid-transfer.
    pub fn and_control(self) -> Fault {
        Fault { with_control: true, ..self }
    }
}

/// A group of data connections, `first..first + count` in the order the proxy accepted them,
/// that move no byte until all of them are open: `count` transfers then run side by side, each
/// from a different worker of the client, however its threads are scheduled. After
/// [`DEADLINE`] they go on regardless, so a client that never opens them all fails its test
/// instead of hanging it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideBySide {
    pub first: usize,
    pub count: usize,
}

/// A running proxy on `127.0.0.1:0`. Dropping it cuts every connection and joins every thread.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`, where the client connects instead of the server.
    pub addr: String,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy in front of the server at `server_addr` that will inject `faults`.
    pub fn start(server_addr: &str, faults: Vec<Fault>) -> FaultProxy {
        FaultProxy::start_with(server_addr, faults, Vec::new())
    }

    /// Starts a clean proxy whose data connections open side by side in `groups`, each
    /// `(first, count)`.
    pub fn side_by_side(server_addr: &str, groups: &[(usize, usize)]) -> FaultProxy {
        let groups = groups.iter().map(|&(first, count)| SideBySide { first, count }).collect();
        FaultProxy::start_with(server_addr, Vec::new(), groups)
    }

    fn start_with(server_addr: &str, faults: Vec<Fault>, side_by_side: Vec<SideBySide>) -> FaultProxy {
        let server = server_addr.to_socket_addrs().expect("a server address").next().expect("one address");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the proxy");
        listener.set_nonblocking(true).expect("a nonblocking listener");
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared::new(server, faults, side_by_side));
        let for_acceptor = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name("proxy-accept".into())
            .spawn(move || accept_clients(&for_acceptor, listener))
            .expect("spawn the proxy's acceptor");
        FaultProxy { addr, shared, acceptor: Some(acceptor) }
    }

    /// The URL of share `code` through this proxy.
    pub fn url(&self, code: &str) -> String {
        format!("ftp://{}/{code}/", self.addr)
    }

    /// Bytes the proxy wrote to clients on data connections (listings and RETR alike). Each
    /// write is counted just after it returns, so a peer may hold bytes a moment before they
    /// count: assert exact values after [`FaultProxy::wait_idle`].
    pub fn data_bytes_to_client(&self) -> u64 {
        self.shared.data_bytes_to_client.load(Ordering::SeqCst)
    }

    /// Bytes the proxy wrote to the server on data connections, counted like
    /// [`FaultProxy::data_bytes_to_client`].
    pub fn data_bytes_to_server(&self) -> u64 {
        self.shared.data_bytes_to_server.load(Ordering::SeqCst)
    }

    /// Control connections accepted from clients.
    pub fn control_connections(&self) -> usize {
        self.shared.control_connections.load(Ordering::SeqCst)
    }

    /// Data connections accepted from clients.
    pub fn data_connections(&self) -> usize {
        self.shared.data_connections.load(Ordering::SeqCst)
    }

    /// Faults that have cut their connection; each is counted before its cut, so anyone who
    /// saw a cut sees it counted.
    pub fn faults_fired(&self) -> usize {
        self.shared.faults_fired.load(Ordering::SeqCst)
    }

    /// The bytes forwarded so far on control connection `nth` in `direction`, after rewriting.
    /// Handy to find the offset of a command for a `Fault::control_to_server` in a later run.
    pub fn control_transcript(&self, nth: usize, direction: Direction) -> Vec<u8> {
        let transcripts = lock(&self.shared.transcripts);
        transcripts.get(nth).map(|pair| pair[direction as usize].clone()).unwrap_or_default()
    }

    /// Waits until every connection through the proxy has closed at both ends and no data port
    /// is waiting; after that the counters no longer move.
    pub fn wait_idle(&self) {
        wait_until("every connection through the proxy has closed", || {
            self.shared.busy_threads.load(Ordering::SeqCst) == 0
        });
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for session in lock(&self.shared.sessions).iter() {
            session.cut_all();
        }
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        // Every thread sees `stopping` within POLL; a thread may spawn another before it does.
        loop {
            let threads = std::mem::take(&mut *lock(&self.shared.threads));
            if threads.is_empty() {
                break;
            }
            for thread in threads {
                let _ = thread.join();
            }
        }
    }
}

/// What the proxy's threads share.
struct Shared {
    server: SocketAddr,
    faults: Vec<Fault>,
    side_by_side: Vec<SideBySide>,
    stopping: AtomicBool,
    control_connections: AtomicUsize,
    data_connections: AtomicUsize,
    data_bytes_to_client: AtomicU64,
    data_bytes_to_server: AtomicU64,
    faults_fired: AtomicUsize,
    /// Threads that serve a connection or wait for one on a data port.
    busy_threads: AtomicUsize,
    threads: Mutex<Vec<JoinHandle<()>>>,
    sessions: Mutex<Vec<Arc<Session>>>,
    /// Per control connection, what went each way (indexed by `Direction as usize`).
    transcripts: Mutex<Vec<[Vec<u8>; 2]>>,
}

impl Shared {
    fn new(server: SocketAddr, faults: Vec<Fault>, side_by_side: Vec<SideBySide>) -> Shared {
        Shared {
            server,
            faults,
            side_by_side,
            stopping: AtomicBool::new(false),
            control_connections: AtomicUsize::new(0),
            data_connections: AtomicUsize::new(0),
            data_bytes_to_client: AtomicU64::new(0),
            data_bytes_to_server: AtomicU64::new(0),
            faults_fired: AtomicUsize::new(0),
            busy_threads: AtomicUsize::new(0),
            threads: Mutex::new(Vec::new()),
            sessions: Mutex::new(Vec::new()),
            transcripts: Mutex::new(Vec::new()),
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The fault for this side of this connection; of several, the one that fires first.
    fn fault_for(&self, link: &Link, direction: Direction) -> Option<Fault> {
        self.faults
            .iter()
            .filter(|f| f.channel == link.channel && f.nth == link.nth && f.direction == direction)
            .min_by_key(|f| f.after_bytes)
            .copied()
    }

    /// Counts `bytes` as forwarded on `link` in `direction`.
    fn record(&self, link: &Link, direction: Direction, bytes: &[u8]) {
        match (link.channel, direction) {
            (Channel::Data, Direction::ToClient) => {
                self.data_bytes_to_client.fetch_add(bytes.len() as u64, Ordering::SeqCst);
            }
            (Channel::Data, Direction::ToServer) => {
                self.data_bytes_to_server.fetch_add(bytes.len() as u64, Ordering::SeqCst);
            }
            (Channel::Control, _) => {
                let mut transcripts = lock(&self.transcripts);
                let kept = &mut transcripts[link.nth][direction as usize];
                let room = MAX_TRANSCRIPT_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
        }
    }
}

/// Runs `work` on a new thread, counted busy until it returns and joined when the proxy drops.
fn spawn(shared: &Arc<Shared>, name: &str, work: impl FnOnce(&Arc<Shared>) + Send + 'static) {
    struct Busy(Arc<Shared>);
    impl Drop for Busy {
        fn drop(&mut self) {
            self.0.busy_threads.fetch_sub(1, Ordering::SeqCst);
        }
    }
    shared.busy_threads.fetch_add(1, Ordering::SeqCst);
    let busy = Busy(Arc::clone(shared));
    let thread = thread::Builder::new().name(name.into()).spawn(move || work(&busy.0));
    // A failed spawn drops the closure, and with it `busy`.
    if let Ok(thread) = thread {
        let mut threads = lock(&shared.threads);
        threads.retain(|t| !t.is_finished());
        threads.push(thread);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A read, write or accept that found nothing to do yet: look up, then try again.
fn is_transient(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted)
}

/// Accepts from a nonblocking listener, polling with a growing pause until `give_up` says so.
fn accept_until(listener: &TcpListener, mut give_up: impl FnMut() -> bool) -> Option<TcpStream> {
    let mut pause = Duration::from_millis(1);
    loop {
        if give_up() {
            return None;
        }
        match listener.accept() {
            Ok((stream, _)) => return Some(stream),
            Err(err) if is_transient(&err) => {
                thread::sleep(pause);
                pause = (pause * 2).min(POLL);
            }
            Err(_) => return None,
        }
    }
}

/// The proxy's main loop: one session per client control connection.
fn accept_clients(shared: &Arc<Shared>, listener: TcpListener) {
    while let Some(client) = accept_until(&listener, || shared.stopping()) {
        let nth = shared.control_connections.fetch_add(1, Ordering::SeqCst);
        lock(&shared.transcripts).push(Default::default());
        // A server that cannot be reached shows as a control connection closed at once.
        let Ok(server) = TcpStream::connect_timeout(&shared.server, CONNECT_TIMEOUT) else { continue };
        let Ok(link) = Link::new(Channel::Control, nth, client, server, None) else { continue };
        let link = Arc::new(link);
        let session = Arc::new(Session::new(&link));
        lock(&shared.sessions).push(Arc::clone(&session));
        start_pumps(shared, &session, link);
    }
}

/// One client control connection and the data connections opened through it.
struct Session {
    /// The control link first, then data links in the order they opened.
    links: Mutex<Vec<Weak<Link>>>,
    /// The control connection closed or was cut: no more data connections.
    ended: AtomicBool,
    /// Counts passive replies; a data port gives up once a newer one was announced.
    passive_replies: AtomicU64,
    /// Counts preliminary replies (`150`, `125`) written to the client.
    preliminary_replies: AtomicU64,
}

impl Session {
    fn new(control: &Arc<Link>) -> Session {
        Session {
            links: Mutex::new(vec![Arc::downgrade(control)]),
            ended: AtomicBool::new(false),
            passive_replies: AtomicU64::new(0),
            preliminary_replies: AtomicU64::new(0),
        }
    }

    fn ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    fn end(&self) {
        let _links = lock(&self.links);
        self.ended.store(true, Ordering::SeqCst);
    }

    /// Adds a data link, unless the session already ended.
    fn adopt(&self, link: &Arc<Link>) -> bool {
        let mut links = lock(&self.links);
        if self.ended() {
            return false;
        }
        links.push(Arc::downgrade(link));
        true
    }

    /// Cuts the control connection, then every data connection of this session.
    fn cut_all(&self) {
        let links = lock(&self.links);
        self.ended.store(true, Ordering::SeqCst);
        for link in links.iter().filter_map(Weak::upgrade) {
            link.cut();
        }
    }
}

/// One relayed TCP connection: the socket from the client and the proxy's socket to the server.
/// Both close when the last of its two pumps lets go of it.
struct Link {
    channel: Channel,
    nth: usize,
    client: TcpStream,
    server: TcpStream,
    cut: AtomicBool,
    /// For a data link: how many preliminary replies the client had been sent when its passive
    /// reply went out. Bytes to the client wait until one more has been sent: its transfer's.
    preliminary_before: Option<u64>,
}

impl Link {
    fn new(
        channel: Channel,
        nth: usize,
        client: TcpStream,
        server: TcpStream,
        preliminary_before: Option<u64>,
    ) -> io::Result<Link> {
        for socket in [&client, &server] {
            socket.set_nonblocking(false)?;
            socket.set_nodelay(true)?;
            // Blocked reads and writes wake up this often to look for a cut or a stop.
            socket.set_read_timeout(Some(POLL))?;
            socket.set_write_timeout(Some(POLL))?;
        }
        Ok(Link { channel, nth, client, server, cut: AtomicBool::new(false), preliminary_before })
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }

    fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    /// Where bytes going in `direction` come from, and where they go.
    fn ends(&self, direction: Direction) -> (&TcpStream, &TcpStream) {
        match direction {
            Direction::ToClient => (&self.server, &self.client),
            Direction::ToServer => (&self.client, &self.server),
        }
    }
}

/// Starts one thread per direction of `link`.
fn start_pumps(shared: &Arc<Shared>, session: &Arc<Session>, link: Arc<Link>) {
    for direction in [Direction::ToServer, Direction::ToClient] {
        let (session, link) = (Arc::clone(session), Arc::clone(&link));
        spawn(shared, "proxy-pump", move |shared| {
            Pump::new(shared, &session, &link, direction).run();
            if link.channel == Channel::Control {
                session.end();
            }
        });
    }
}

/// A data port announced to the client in place of the server's passive port `server_port`, in
/// a passive reply written after `preliminary_before` preliminary replies.
fn open_data_port(
    shared: &Arc<Shared>,
    session: &Arc<Session>,
    server_port: u16,
    preliminary_before: u64,
) -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let reply = session.passive_replies.fetch_add(1, Ordering::SeqCst) + 1;
    let server = SocketAddr::new(shared.server.ip(), server_port);
    let session = Arc::clone(session);
    spawn(shared, "proxy-data-port", move |shared| {
        let deadline = Instant::now() + DATA_ACCEPT_WINDOW;
        let superseded = || session.passive_replies.load(Ordering::SeqCst) != reply;
        let give_up = || shared.stopping() || session.ended() || superseded() || Instant::now() >= deadline;
        let Some(client) = accept_until(&listener, give_up) else { return };
        drop(listener);
        let nth = shared.data_connections.fetch_add(1, Ordering::SeqCst);
        // If the server's port is gone the client just sees its data connection close.
        let Ok(upstream) = TcpStream::connect_timeout(&server, CONNECT_TIMEOUT) else { return };
        let Ok(link) = Link::new(Channel::Data, nth, client, upstream, Some(preliminary_before)) else {
            return;
        };
        let link = Arc::new(link);
        if session.adopt(&link) {
            start_pumps(shared, &session, link);
        }
    });
    Ok(port)
}

/// A pump is done: its link closed or was cut, or the proxy is stopping.
struct Stopped;

/// One direction of one link: reads, forwards, counts, and cuts when its fault says so.
struct Pump<'a> {
    shared: &'a Arc<Shared>,
    session: &'a Arc<Session>,
    link: &'a Link,
    direction: Direction,
    fault: Option<Fault>,
    forwarded: u64,
    /// Server replies on a control connection pass whole lines, so that passive ones can be
    /// rewritten; this holds the start of a line whose end has not arrived.
    partial_line: Option<Vec<u8>>,
    /// Preliminary replies among the lines reframed but not yet written to the client.
    preliminary_pending: u64,
    /// For data to a client: the count of preliminary replies its first byte waits to exceed.
    wait_for_preliminary: Option<u64>,
    /// This data link's group of [`SideBySide`] links is open, or was waited for long enough.
    side_by_side_met: bool,
}

impl<'a> Pump<'a> {
    fn new(shared: &'a Arc<Shared>, session: &'a Arc<Session>, link: &'a Link, direction: Direction) -> Self {
        let replies = link.channel == Channel::Control && direction == Direction::ToClient;
        Pump {
            shared,
            session,
            link,
            direction,
            fault: shared.fault_for(link, direction),
            forwarded: 0,
            partial_line: replies.then(Vec::new),
            preliminary_pending: 0,
            wait_for_preliminary: link.preliminary_before.filter(|_| direction == Direction::ToClient),
            side_by_side_met: false,
        }
    }

    fn run(mut self) {
        if self.check_fault().is_err() {
            return;
        }
        let (from, to) = self.link.ends(self.direction);
        let mut buffer = vec![0; CHUNK_BYTES];
        while !self.shared.stopping() && !self.link.is_cut() {
            match (&*from).read(&mut buffer) {
                Ok(0) => {
                    let rest = self.partial_line.take().unwrap_or_default();
                    if !self.link.is_cut() && self.forward(&rest).is_ok() {
                        let _ = to.shutdown(Shutdown::Write);
                    }
                    return;
                }
                Ok(n) => {
                    let bytes = match self.reframe(&buffer[..n]) {
                        Ok(bytes) => bytes,
                        Err(_) => {
                            self.link.cut();
                            return;
                        }
                    };
                    if self.forward(&bytes).is_err() {
                        return;
                    }
                    let sent = std::mem::take(&mut self.preliminary_pending);
                    self.session.preliminary_replies.fetch_add(sent, Ordering::SeqCst);
                }
                Err(err) if is_transient(&err) => {}
                // A reset from either peer: pass the failure on to the other.
                Err(_) => {
                    self.link.cut();
                    return;
                }
            }
        }
    }

    /// What to forward for `bytes` just read: themselves, or for server replies the lines now
    /// complete, with passive replies pointed at a data port of the proxy.
    fn reframe(&mut self, bytes: &[u8]) -> io::Result<Vec<u8>> {
        let Some(partial) = self.partial_line.as_mut() else { return Ok(bytes.to_vec()) };
        partial.extend_from_slice(bytes);
        let mut out = Vec::with_capacity(partial.len());
        while let Some(end) = partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = partial.drain(..=end).collect();
            let before = self.session.preliminary_replies.load(Ordering::SeqCst) + self.preliminary_pending;
            let open_port = |server_port| open_data_port(self.shared, self.session, server_port, before);
            let preliminary = is_preliminary_reply(&line);
            out.extend(rewrite_passive_reply(&line, open_port)?.unwrap_or(line));
            self.preliminary_pending += u64::from(preliminary);
        }
        if partial.len() > MAX_REPLY_LINE {
            out.append(partial);
        }
        Ok(out)
    }

    /// Writes `bytes` on, but no further than the fault allows, then fires the fault if due.
    fn forward(&mut self, bytes: &[u8]) -> Result<(), Stopped> {
        if !bytes.is_empty() {
            self.wait_for_preliminary_reply()?;
            self.wait_for_side_by_side()?;
        }
        let flipped = self.flip(bytes);
        let bytes = flipped.as_deref().unwrap_or(bytes);
        let allowed = self.fault.map_or(u64::MAX, |f| f.after_bytes - self.forwarded);
        let mut rest = &bytes[..bytes.len().min(usize::try_from(allowed).unwrap_or(usize::MAX))];
        let (_, to) = self.link.ends(self.direction);
        while !rest.is_empty() {
            match (&*to).write(rest) {
                Ok(0) => {
                    self.link.cut();
                    return Err(Stopped);
                }
                Ok(n) => {
                    self.shared.record(self.link, self.direction, &rest[..n]);
                    self.forwarded += n as u64;
                    rest = &rest[n..];
                }
                Err(err) if is_transient(&err) => {
                    if self.shared.stopping() || self.link.is_cut() {
                        return Err(Stopped);
                    }
                }
                Err(_) => {
                    self.link.cut();
                    return Err(Stopped);
                }
            }
        }
        self.check_fault()
    }

    /// Data to a client waits until the client was sent its transfer's `150`, which the server
    /// sent first; else, on a busy machine, the data pump could run ahead of the control pump.
    fn wait_for_preliminary_reply(&mut self) -> Result<(), Stopped> {
        let Some(before) = self.wait_for_preliminary else { return Ok(()) };
        let mut pause = Duration::from_millis(1);
        while self.session.preliminary_replies.load(Ordering::SeqCst) <= before {
            if self.shared.stopping() || self.link.is_cut() || self.session.ended() {
                self.link.cut();
                return Err(Stopped);
            }
            thread::sleep(pause);
            pause = (pause * 2).min(POLL);
        }
        self.wait_for_preliminary = None;
        Ok(())
    }

    /// A data link among those that open side by side waits until they are all open, or
    /// [`DEADLINE`] passed.
    fn wait_for_side_by_side(&mut self) -> Result<(), Stopped> {
        let nth = self.link.nth;
        let group = self
            .shared
            .side_by_side
            .iter()
            .find(|group| (group.first..group.first + group.count).contains(&nth));
        let Some(group) = group.filter(|_| self.link.channel == Channel::Data && !self.side_by_side_met)
        else {
            return Ok(());
        };
        let last = group.first + group.count;
        let deadline = Instant::now() + DEADLINE;
        let mut pause = Duration::from_millis(1);
        while self.shared.data_connections.load(Ordering::SeqCst) < last && Instant::now() < deadline {
            if self.shared.stopping() || self.link.is_cut() {
                return Err(Stopped);
            }
            thread::sleep(pause);
            pause = (pause * 2).min(POLL);
        }
        self.side_by_side_met = true;
        Ok(())
    }

    /// `bytes` with the byte a flip fault names flipped, if it is among them; the fault is then
    /// spent.
    fn flip(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let fault = self.fault.filter(|f| f.flip)?;
        let at = usize::try_from(fault.after_bytes.checked_sub(self.forwarded)?).ok()?;
        let mut flipped = bytes.to_vec();
        *flipped.get_mut(at)? ^= 0xff;
        self.fault = None;
        self.shared.faults_fired.fetch_add(1, Ordering::SeqCst);
        Some(flipped)
    }

    /// Cuts, if the fault's byte count has been reached.
    fn check_fault(&self) -> Result<(), Stopped> {
        let Some(fault) = self.fault else { return Ok(()) };
        if fault.flip || self.forwarded < fault.after_bytes {
            return Ok(());
        }
        // Counted first: whoever sees the cut also sees the count.
        self.shared.faults_fired.fetch_add(1, Ordering::SeqCst);
        if self.link.channel == Channel::Control || fault.with_control {
            self.session.cut_all();
        }
        self.link.cut();
        Err(Stopped)
    }
}

/// Whether `line` ends a preliminary reply (`150 ...`, `125 ...`).
fn is_preliminary_reply(line: &[u8]) -> bool {
    matches!(line, [b'1', tens, units, b' ', ..] if tens.is_ascii_digit() && units.is_ascii_digit())
}

/// `line` with the port of a `229` or `227` reply replaced by the one `open_port` gives for it;
/// `None` for any other line.
pub fn rewrite_passive_reply(
    line: &[u8],
    mut open_port: impl FnMut(u16) -> io::Result<u16>,
) -> io::Result<Option<Vec<u8>>> {
    let Ok(text) = std::str::from_utf8(line) else { return Ok(None) };
    let text = text.trim_end_matches(['\r', '\n']);
    let rewritten = if let Some(port) = text.strip_prefix("229 ").and_then(parse_epsv_reply) {
        format!("229 {}\r\n", epsv_reply_text(open_port(port)?))
    } else if let Some(address) = text.strip_prefix("227 ").and_then(parse_pasv_reply) {
        let ours = SocketAddrV4::new(Ipv4Addr::LOCALHOST, open_port(address.port())?);
        format!("227 {}\r\n", pasv_reply_text(ours))
    } else {
        return Ok(None);
    };
    Ok(Some(rewritten.into_bytes()))
}
