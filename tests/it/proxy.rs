//! `FaultProxy`: a TCP proxy between the real `anonshare` client and a real server that cuts a
//! chosen connection after an exact number of bytes, as a lost network would, and counts what it
//! forwards. It owns the client's side of every connection: control connections are relayed
//! line-aware so that passive replies (`229`, `227`) point at data ports of the proxy, and each
//! data connection is relayed to the server's real passive port. It never changes a byte it
//! forwards other than the port in a passive reply, never forwards a byte twice, and never
//! retries anything itself.
//!
//! Also here: the client's retries through it. Cut data and control connections, and a network
//! loss, are taken up again; every file arrives byte-exact, and the counters show that only the
//! bytes the other side lost cross again.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anonshare::proto::{epsv_reply_text, parse_epsv_reply, parse_pasv_reply, pasv_reply_text};

use crate::support::{
    Control, DEADLINE, Server, TempDir, client, code_of, curl, data_connection, files_under, random_bytes,
    receive, upload, wait_until,
};

/// The proxy reads and rewrites the control connection (the passive ports), which TLS would
/// hide from it: its servers speak in the clear. FTPS is tested in `ftps.rs`.
const PLAINTEXT: &[&str] = &["--tls", "off"];

/// Longest a blocked proxy thread goes without checking whether it should stop.
const POLL: Duration = Duration::from_millis(20);
/// Time allowed to connect to the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a data port of the proxy waits for the client after a passive reply.
const DATA_ACCEPT_WINDOW: Duration = DEADLINE;
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
        let server = server_addr.to_socket_addrs().expect("a server address").next().expect("one address");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the proxy");
        listener.set_nonblocking(true).expect("a nonblocking listener");
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared::new(server, faults));
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
    fn new(server: SocketAddr, faults: Vec<Fault>) -> Shared {
        Shared {
            server,
            faults,
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
        let Ok(link) = Link::new(Channel::Control, nth, client, server) else { continue };
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
}

impl Session {
    fn new(control: &Arc<Link>) -> Session {
        Session {
            links: Mutex::new(vec![Arc::downgrade(control)]),
            ended: AtomicBool::new(false),
            passive_replies: AtomicU64::new(0),
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
}

impl Link {
    fn new(channel: Channel, nth: usize, client: TcpStream, server: TcpStream) -> io::Result<Link> {
        for socket in [&client, &server] {
            socket.set_nonblocking(false)?;
            socket.set_nodelay(true)?;
            // Blocked reads and writes wake up this often to look for a cut or a stop.
            socket.set_read_timeout(Some(POLL))?;
            socket.set_write_timeout(Some(POLL))?;
        }
        Ok(Link { channel, nth, client, server, cut: AtomicBool::new(false) })
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

/// A data port announced to the client in place of the server's passive port `server_port`.
fn open_data_port(shared: &Arc<Shared>, session: &Arc<Session>, server_port: u16) -> io::Result<u16> {
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
        let Ok(link) = Link::new(Channel::Data, nth, client, upstream) else { return };
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
            let open_port = |server_port| open_data_port(self.shared, self.session, server_port);
            out.extend(rewrite_passive_reply(&line, open_port)?.unwrap_or(line));
        }
        if partial.len() > MAX_REPLY_LINE {
            out.append(partial);
        }
        Ok(out)
    }

    /// Writes `bytes` on, but no further than the fault allows, then fires the fault if due.
    fn forward(&mut self, bytes: &[u8]) -> Result<(), Stopped> {
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

/// `line` with the port of a `229` or `227` reply replaced by the one `open_port` gives for it;
/// `None` for any other line.
fn rewrite_passive_reply(
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

// The smoke tests: the proxy against today's client, which does not retry. The cut tests pin
// down today's failure; they change once the client resumes.

const MIB: usize = 1 << 20;

#[test]
fn passive_replies_point_at_the_proxy() {
    let mut asked = Vec::new();
    let mut check = |line: &str, expected: Option<&str>| {
        let got = rewrite_passive_reply(line.as_bytes(), |port| {
            asked.push(port);
            Ok(4242)
        });
        assert_eq!(got.unwrap().map(|b| String::from_utf8(b).unwrap()).as_deref(), expected, "{line:?}");
    };
    check(
        "229 Entering Extended Passive Mode (|||40001|)\r\n",
        Some("229 Entering Extended Passive Mode (|||4242|)\r\n"),
    );
    check(
        "227 Entering Passive Mode (127,0,0,1,156,65).\r\n",
        Some("227 Entering Passive Mode (127,0,0,1,16,146).\r\n"),
    );
    check("229 no port here\r\n", None);
    check("150 Sending /x (229 bytes)\r\n", None);
    check("226 Transfer complete\r\n", None);
    assert_eq!(asked, [40001, 156 * 256 + 65]);
}

#[test]
fn a_clean_proxy_passes_every_byte() {
    let server = Server::start_with(PLAINTEXT);
    let proxy = FaultProxy::start(&server.addr, Vec::new());
    let dir = TempDir::new();
    let files = [
        ("big.bin", random_bytes(5 * MIB + 3, 1)),
        ("notes.txt", random_bytes(1000, 2)),
        ("photos/a.jpg", random_bytes(70_001, 3)),
    ];
    for (path, bytes) in &files {
        dir.file(path, bytes);
    }
    let total: u64 = files.iter().map(|(_, bytes)| bytes.len() as u64).sum();

    let up = client(
        &proxy.addr,
        dir.path(),
        &["--parallel", "1", "upload", "big.bin", "notes.txt", "photos"],
        b"",
    );
    assert_eq!(up.code, 0, "upload through the proxy: {}", up.stderr);
    let url = up.stdout.trim().to_owned();
    assert!(url.starts_with(&format!("ftp://{}/", proxy.addr)), "the URL names the proxy: {url}");
    proxy.wait_idle();
    // An upload opens one data connection per STOR and sends each file exactly once.
    assert_eq!((proxy.control_connections(), proxy.data_connections()), (1, 3));
    assert_eq!(proxy.data_bytes_to_server(), total);
    assert_eq!(proxy.data_bytes_to_client(), 0);

    let out = TempDir::new();
    let down = client(&proxy.addr, out.path(), &["--parallel", "1", "download", &url, "--dir", "."], b"");
    assert_eq!(down.code, 0, "download through the proxy: {}", down.stderr);
    for (path, bytes) in &files {
        assert_same_bytes(&out.path().join(path), bytes);
    }
    proxy.wait_idle();
    // A download lists each folder (MLSD) and then opens one RETR per file. Listings are data
    // too, so the exact count adds the listings the server gives for the same folders.
    let code = code_of(&url);
    let listings = mlsd_bytes(&server, &[&format!("/{code}"), &format!("/{code}/photos")]);
    assert_eq!((proxy.control_connections(), proxy.data_connections()), (2, 3 + 2 + 3));
    assert_eq!(proxy.data_bytes_to_client(), total + listings);
    assert_eq!(proxy.data_bytes_to_server(), total, "a download sends nothing on data connections");
    assert_eq!(proxy.faults_fired(), 0);
}

#[test]
fn a_pasv_client_goes_through_the_proxy_too() {
    let server = Server::start_with(PLAINTEXT);
    let dir = TempDir::new();
    let bytes = random_bytes(300_001, 9);
    dir.file("f.bin", &bytes);
    let code = code_of(&upload(&server, dir.path(), &["f.bin"]));
    let proxy = FaultProxy::start(&server.addr, Vec::new());
    let (run, got) = curl(&["--disable-epsv", &format!("{}f.bin", proxy.url(&code))]);
    assert_eq!(run.code, 0, "curl over PASV: {}", run.stderr);
    assert!(got == bytes, "curl got {} bytes, not the {} stored", got.len(), bytes.len());
    proxy.wait_idle();
    assert_eq!((proxy.data_connections(), proxy.data_bytes_to_client()), (1, bytes.len() as u64));
    let replies = String::from_utf8(proxy.control_transcript(0, Direction::ToClient)).unwrap();
    assert!(replies.contains("\r\n227 Entering Passive Mode (127,0,0,1,"), "{replies}");
}

#[test]
fn cut_data_connections_are_resumed_and_no_byte_is_sent_twice() {
    let (server, code, files) = share_with_big_file(UNBUFFERABLE_BYTES);
    // Data connection 0 is the MLSD of the share, 1 the RETR of big.bin (files go in path order),
    // 2 its first resume, 3 its second.
    let cuts = vec![Fault::data_to_client(1, MIB as u64), Fault::data_to_client(2, 5 * MIB as u64)];
    let proxy = FaultProxy::start(&server.addr, cuts);
    let (run, out) = download_through(&proxy, &code);
    assert_eq!(run.code, 0, "a cut download resumes: {}", run.stderr);
    assert!(run.stderr.contains("was cut") && run.stderr.contains("retry 1 of 5"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("resuming big.bin at byte {MIB}\n")), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("resuming big.bin at byte {}\n", 6 * MIB)), "{}", run.stderr);
    assert_eq!(proxy.faults_fired(), 2);
    check_downloaded_once(&proxy, &server, &code, out.path(), &files);
}

#[test]
fn a_cut_control_connection_is_taken_up_again() {
    let (server, code, files) = share_with_big_file(3 * MIB);
    // Where the client's RETR ends on its control connection, from a clean run.
    let clean = FaultProxy::start(&server.addr, Vec::new());
    let out = TempDir::new();
    let run = client(
        &clean.addr,
        out.path(),
        &["--parallel", "1", "download", &clean.url(&code), "--dir", "."],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    clean.wait_idle();
    let commands = clean.control_transcript(0, Direction::ToServer);
    let retr = format!("RETR /{code}/big.bin\r\n");
    let at = find(&commands, retr.as_bytes()).expect("the client sent RETR") + retr.len();

    // The control connection goes down just after the RETR got through, and its data with it.
    let proxy = FaultProxy::start(&server.addr, vec![Fault::control_to_server(0, at as u64)]);
    let (run, out) = download_through(&proxy, &code);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The client sees the cut on either connection first: the control connection's close while
    // it waits for the 150, or the data connection's close or reset.
    assert!(
        run.stderr.contains("anonshare: RETR") && run.stderr.contains("; retry 1 of 5"),
        "{}",
        run.stderr
    );
    assert_eq!(proxy.faults_fired(), 1);
    assert_eq!(proxy.control_connections(), 2);
    check_downloaded(out.path(), &files);
    // The 150 never arrived, so the client never read that RETR's data connection: what the
    // proxy had passed on there before the cut was lost at the client, and crosses again. No
    // more than that: the file is not fetched a third time.
    proxy.wait_idle();
    let once = mlsd_bytes(&server, &[&format!("/{code}")]) + total(&files);
    let sent = proxy.data_bytes_to_client();
    assert!(sent >= once && sent <= once + 3 * MIB as u64, "{sent} bytes for {once}");
}

#[test]
fn a_network_loss_mid_download_is_resumed() {
    let (server, code, files) = share_with_big_file(UNBUFFERABLE_BYTES);
    let cut = Fault::data_to_client(1, MIB as u64 + 17).and_control();
    let proxy = FaultProxy::start(&server.addr, vec![cut]);
    let (run, out) = download_through(&proxy, &code);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("resuming big.bin at byte {}\n", MIB + 17)), "{}", run.stderr);
    assert_eq!(proxy.faults_fired(), 1);
    check_downloaded_once(&proxy, &server, &code, out.path(), &files);
}

#[test]
fn spent_retries_end_in_exit_2_and_keep_the_partial_file() {
    let (server, code, _) = share_with_big_file(UNBUFFERABLE_BYTES);
    let cuts = (1..=3).map(|nth| Fault::data_to_client(nth, 0)).collect();
    let proxy = FaultProxy::start(&server.addr, cuts);
    let out = TempDir::new();
    let run = client(
        &proxy.addr,
        out.path(),
        &["--parallel", "1", "--retries", "2", "download", &proxy.url(&code), "--dir", "."],
        b"",
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("gave up after 2 retries"), "{}", run.stderr);
    assert_eq!(run.stderr.matches("; retry ").count(), 2, "{}", run.stderr);
    assert!(!out.path().join("big.bin").exists(), "nothing under the final name");
}

#[test]
fn cut_uploads_resume_from_the_bytes_the_server_kept() {
    let server = Server::start_with(PLAINTEXT);
    let cuts = vec![Fault::data_to_server(0, MIB as u64), Fault::control_to_server(1, 0)];
    let proxy = FaultProxy::start(&server.addr, cuts);
    let dir = TempDir::new();
    let bytes = random_bytes(UNBUFFERABLE_BYTES, 8);
    dir.file("big.bin", &bytes);
    dir.file("small.txt", b"after the big one");
    let run = client(&proxy.addr, dir.path(), &["--parallel", "1", "upload", "big.bin", "small.txt"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The server keeps what it had read when the cut reset the connection; bytes still in its
    // socket buffer were lost with it, and only those cross again.
    let kept: u64 = run
        .stderr
        .split("resuming big.bin at byte ")
        .nth(1)
        .and_then(|rest| rest.lines().next()?.parse().ok())
        .unwrap_or_else(|| panic!("the upload resumed: {}", run.stderr));
    assert!(kept <= MIB as u64, "{kept}");
    assert_eq!(proxy.faults_fired(), 2);
    proxy.wait_idle();
    let sent = bytes.len() as u64 + (MIB as u64 - kept) + 17;
    assert_eq!(proxy.data_bytes_to_server(), sent, "only bytes the server lost cross again");
    let out = TempDir::new();
    let got = client(
        &server.addr,
        out.path(),
        &["--parallel", "1", "download", &server.url(&code_of(run.stdout.trim())), "--dir", "."],
        b"",
    );
    assert_eq!(got.code, 0, "{}", got.stderr);
    assert_same_bytes(&out.path().join("big.bin"), &bytes);
    assert!(crate::support::part_files(&server.root).is_empty(), "nothing kept after the seal");
}

#[test]
fn a_small_upload_cut_every_time_spends_the_retries() {
    // A small file's bytes go before the server's go-ahead and nothing of it is kept when it is
    // cut: sending it again from its first byte is no progress, so the retries run out.
    let server = Server::start_with(PLAINTEXT);
    let cuts = (0..10).map(|nth| Fault::data_to_server(nth, 100)).collect();
    let proxy = FaultProxy::start(&server.addr, cuts);
    let dir = TempDir::new();
    dir.file("small.bin", &random_bytes(5000, 10));
    let run =
        client(&proxy.addr, dir.path(), &["--retries", "2", "--parallel", "1", "upload", "small.bin"], b"");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("gave up after 2 retries"), "{}", run.stderr);
    assert_eq!(proxy.data_connections(), 3, "the first try and two retries");
}

#[test]
fn bytes_corrupted_on_the_way_up_are_caught_and_nothing_is_published() {
    let server = Server::start_with(PLAINTEXT);
    let proxy = FaultProxy::start(&server.addr, vec![Fault::flip_data_to_server(0, 5000)]);
    let dir = TempDir::new();
    dir.file("precious.bin", &random_bytes(100_000, 9));
    let run = client(&proxy.addr, dir.path(), &["--parallel", "1", "upload", "precious.bin"], b"");
    assert_eq!(proxy.faults_fired(), 1);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("SHA-256"), "{}", run.stderr);
    assert_eq!(run.stdout, "", "no share path is printed");
    proxy.wait_idle();
    let shares = fs::read_dir(server.root.join("shares")).unwrap().count();
    assert_eq!(shares, 0, "the unsealed share was deleted, never published");
}

#[test]
fn dropping_the_proxy_ends_every_connection_at_once() {
    let (server, code, _) = share_with_big_file(3 * MIB);
    let proxy = FaultProxy::start(&server.addr, Vec::new());
    let mut control = Control::login(&proxy.addr);
    let mut data = data_connection(&mut control);
    let sending = control.command(&format!("RETR /{code}/big.bin"));
    assert!(sending.starts_with("150 "), "{sending}");
    data.set_read_timeout(Some(DEADLINE)).unwrap();
    data.read_exact(&mut [0; 1000]).unwrap();
    let dropped = Instant::now();
    drop(proxy);
    assert!(dropped.elapsed() < Duration::from_secs(2), "the proxy's threads took {:?}", dropped.elapsed());
    assert!(data.read_to_end(&mut Vec::new()).is_ok(), "the data connection was closed");
    assert!(control.is_closed(), "the control connection was closed");
}

/// A server holding a share (uploaded directly) with `big.bin` of `size` bytes and a small file
/// after it; the share's code and its files.
fn share_with_big_file(size: usize) -> (Server, String, Vec<(&'static str, Vec<u8>)>) {
    let server = Server::start_with(PLAINTEXT);
    let dir = TempDir::new();
    let files = vec![("big.bin", random_bytes(size, 7)), ("small.txt", b"after the big one".to_vec())];
    for (name, bytes) in &files {
        dir.file(name, bytes);
    }
    let code = code_of(&upload(&server, dir.path(), &["big.bin", "small.txt"]));
    (server, code, files)
}

fn total(files: &[(&str, Vec<u8>)]) -> u64 {
    files.iter().map(|(_, bytes)| bytes.len() as u64).sum()
}

/// Downloads the share through the proxy, one file at a time so data connections come in path
/// order; the run and the folder it saved into.
fn download_through(proxy: &FaultProxy, code: &str) -> (crate::support::Run, TempDir) {
    let out = TempDir::new();
    let args = ["--parallel", "1", "download", &proxy.url(code), "--dir", "."];
    (client(&proxy.addr, out.path(), &args, b""), out)
}

/// Every file arrived byte-exact, none is left partial, and every byte crossed the proxy once:
/// the files and the share's one listing, exactly.
fn check_downloaded_once(
    proxy: &FaultProxy,
    server: &Server,
    code: &str,
    dir: &Path,
    files: &[(&str, Vec<u8>)],
) {
    check_downloaded(dir, files);
    proxy.wait_idle();
    let listing = mlsd_bytes(server, &[&format!("/{code}")]);
    assert_eq!(proxy.data_bytes_to_client(), listing + total(files), "every byte crossed once");
}

/// Every file arrived byte-exact, and no partial file is left.
fn check_downloaded(dir: &Path, files: &[(&str, Vec<u8>)]) {
    for (name, bytes) in files {
        assert_same_bytes(&dir.join(name), bytes);
    }
    let mut names: Vec<String> = files.iter().map(|(name, _)| name.to_string()).collect();
    names.sort();
    assert_eq!(files_under(dir), names, "no .anonshare-part left");
}

/// Size of a file cut after 1 MiB: far more than the socket buffers between the proxy and the
/// sender hold (a few MiB here), so the sender is still sending at the cut. With 2 MiB, a server
/// cut after 1 MiB had already sent everything and said 226.
const UNBUFFERABLE_BYTES: usize = 24 * MIB + 5;

/// Bytes the server sends for `MLSD` of each folder, straight from the server.
fn mlsd_bytes(server: &Server, folders: &[&str]) -> u64 {
    let mut control = Control::login(&server.addr);
    folders.iter().map(|folder| receive(&mut control, &format!("MLSD {folder}")).unwrap().len() as u64).sum()
}

fn assert_same_bytes(path: &Path, expected: &[u8]) {
    let got = fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    assert!(
        got == expected,
        "{}: {} bytes differ from the {} sent",
        path.display(),
        got.len(),
        expected.len()
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[test]
fn a_control_connection_cut_mid_greeting_is_retried() {
    let server = Server::start_with(PLAINTEXT);
    let proxy = FaultProxy::start(&server.addr, vec![Fault::control_to_client(0, 3)]);
    let dir = TempDir::new();
    dir.file("a.txt", b"sent on the second try");
    let run = client(&proxy.addr, dir.path(), &["--parallel", "1", "upload", "a.txt"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("greeting: server closed the connection; retry 1 of 5"), "{}", run.stderr);
    proxy.wait_idle();
    assert_eq!(proxy.control_transcript(0, Direction::ToClient), b"220", "a reply split mid-line");
    assert_eq!(proxy.control_transcript(0, Direction::ToServer), b"");
    assert_eq!((proxy.faults_fired(), proxy.data_connections()), (1, 1));
}

#[test]
fn many_files_move_on_parallel_connections_and_arrive_whole() {
    let server = Server::start_with(PLAINTEXT);
    let proxy = FaultProxy::start(&server.addr, Vec::new());
    let dir = TempDir::new();
    let files: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| (format!("many/f{i:02}.bin"), random_bytes(1000 + i * 7919, 60 + i as u64)))
        .collect();
    for (path, bytes) in &files {
        dir.file(path, bytes);
    }
    let up = client(&proxy.addr, dir.path(), &["--parallel", "4", "upload", "many"], b"");
    assert_eq!(up.code, 0, "{}", up.stderr);
    proxy.wait_idle();
    // One connection makes and seals the share; three more join it with the owner token.
    assert_eq!((proxy.control_connections(), proxy.data_connections()), (4, 12));
    let out = TempDir::new();
    let down = client(
        &proxy.addr,
        out.path(),
        &["--parallel", "4", "download", up.stdout.trim(), "--dir", "."],
        b"",
    );
    assert_eq!(down.code, 0, "{}", down.stderr);
    for (path, bytes) in &files {
        assert_same_bytes(&out.path().join(path), bytes);
    }
    assert_eq!(down.stdout.lines().count(), files.len(), "one saved path per file: {}", down.stdout);
    proxy.wait_idle();
    assert_eq!(proxy.control_connections(), 4 + 4);
}

#[test]
fn a_wrong_token_is_refused_even_after_a_reconnect() {
    let (server, code, _) = share_with_big_file(1000);
    // The first connection dies in its greeting, before SITE DELETE was ever sent.
    let proxy = FaultProxy::start(&server.addr, vec![Fault::control_to_client(0, 3)]);
    let dir = TempDir::new();
    let wrong = "aaaaaaaaaaaaaaaaaaaaaaaaaa";
    let run = client(&proxy.addr, dir.path(), &["delete", "--token", wrong, &proxy.url(&code)], b"");
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("retry 1 of 5"), "{}", run.stderr);
    assert!(server.root.join("shares").join(&code).exists(), "the share is still there");
}
