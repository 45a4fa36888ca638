//! What an eavesdropper on the path sees: a recording relay on 127.0.0.2 carries a share's whole
//! life (upload, download, delete) to the real server on 127.0.0.1, control and data
//! connections alike, and keeps every byte that crossed. Over FTPS the record holds neither the
//! share code, nor the owner token, nor any run of the file; in the clear it holds all three,
//! which shows the relay records what crosses.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use crate::support::{DEADLINE, Server, TempDir, client, code_of, random_bytes, wait_until};

/// Where the relay listens; the server listens on 127.0.0.1 (Linux routes all of 127/8).
const RELAY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// How many passive ports the relay carries (the server skips those taken on 127.0.0.1).
const PASSIVE_PORTS: u16 = 8;

/// The bytes of one relayed connection, each way.
#[derive(Default)]
struct Recorded {
    to_server: Vec<u8>,
    to_client: Vec<u8>,
}

/// Each relayed connection: the server port it went to, and its bytes, filled as they cross.
type Records = Arc<Mutex<Vec<(u16, Arc<Mutex<Recorded>>)>>>;

/// A relay that forwards each connection to its control port to the server, and each one to a
/// passive port P of its range to the server's 127.0.0.1:P, recording both ways.
struct Relay {
    control: SocketAddr,
    passive: (u16, u16),
    listening: Vec<SocketAddr>,
    records: Records,
    open: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    /// Listens on 127.0.0.2: one port for control, and a run of [`PASSIVE_PORTS`] consecutive
    /// free ports for data, whose range the server is then started with.
    fn listen() -> (Relay, Vec<TcpListener>) {
        let control = TcpListener::bind(SocketAddr::new(RELAY_IP, 0)).unwrap();
        let passive = (0..20)
            .find_map(|_| {
                // The OS hands out a free port; the run starts just past it.
                let probe = TcpListener::bind(SocketAddr::new(RELAY_IP, 0)).ok()?;
                let base = probe.local_addr().ok()?.port().checked_add(1)?;
                base.checked_add(PASSIVE_PORTS)?;
                (base..base + PASSIVE_PORTS)
                    .map(|port| TcpListener::bind(SocketAddr::new(RELAY_IP, port)).ok())
                    .collect::<Option<Vec<_>>>()
            })
            .expect("a run of free ports on 127.0.0.2");
        let port_of = |listener: &TcpListener| listener.local_addr().unwrap().port();
        let relay = Relay {
            control: control.local_addr().unwrap(),
            passive: (port_of(&passive[0]), port_of(&passive[passive.len() - 1])),
            listening: Vec::new(),
            records: Arc::default(),
            open: Arc::default(),
            stop: Arc::default(),
            threads: Arc::default(),
        };
        let mut listeners = vec![control];
        listeners.extend(passive);
        (relay, listeners)
    }

    /// Starts relaying: the control port to the server's port, each passive port P to the
    /// server's 127.0.0.1:P.
    fn forward_to(&mut self, server: &str, listeners: Vec<TcpListener>) {
        let server_port: u16 = server.rsplit(':').next().unwrap().parse().unwrap();
        for listener in listeners {
            let port = listener.local_addr().unwrap().port();
            let target = if listener.local_addr().unwrap() == self.control { server_port } else { port };
            self.accept_on(listener, target);
        }
    }

    /// Forwards every connection `listener` accepts to the server's `port`.
    fn accept_on(&mut self, listener: TcpListener, port: u16) {
        self.listening.push(listener.local_addr().unwrap());
        let (records, open, stop, threads) = (
            Arc::clone(&self.records),
            Arc::clone(&self.open),
            Arc::clone(&self.stop),
            Arc::clone(&self.threads),
        );
        let accepting = thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect_timeout(&SocketAddr::new(SERVER_IP, port), DEADLINE)
                else {
                    continue;
                };
                let record = Arc::new(Mutex::new(Recorded::default()));
                records.lock().unwrap().push((port, Arc::clone(&record)));
                let pumps = [
                    pump(&client, &server, Arc::clone(&record), true, Arc::clone(&open)),
                    pump(&server, &client, record, false, Arc::clone(&open)),
                ];
                threads.lock().unwrap().extend(pumps);
            }
        });
        self.threads.lock().unwrap().push(accepting);
    }

    /// The connections relayed to passive ports so far.
    fn data_connections(&self) -> usize {
        self.records
            .lock()
            .unwrap()
            .iter()
            .filter(|(port, _)| (self.passive.0..=self.passive.1).contains(port))
            .count()
    }

    /// Waits until every relayed connection has closed, stops listening, joins every thread and
    /// gives what crossed, each connection each way.
    fn finish(self) -> Vec<Vec<u8>> {
        wait_until("every relayed connection closed", || self.open.load(Ordering::SeqCst) == 0);
        self.stop.store(true, Ordering::SeqCst);
        for addr in &self.listening {
            // Wakes the accept loop, which sees the stop.
            let _ = TcpStream::connect_timeout(addr, DEADLINE);
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap());
        for thread in threads {
            thread.join().expect("a relay thread ran to its end");
        }
        let records = std::mem::take(&mut *self.records.lock().unwrap());
        records
            .into_iter()
            .flat_map(|(_, record)| {
                let record = std::mem::take(&mut *record.lock().unwrap());
                [record.to_server, record.to_client]
            })
            .collect()
    }
}

/// Copies `from` to `to` until either end closes, recording every byte.
fn pump(
    from: &TcpStream,
    to: &TcpStream,
    record: Arc<Mutex<Recorded>>,
    to_server: bool,
    open: Arc<AtomicUsize>,
) -> JoinHandle<()> {
    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
    from.set_read_timeout(Some(DEADLINE)).unwrap();
    open.fetch_add(1, Ordering::SeqCst);
    thread::spawn(move || {
        let mut buffer = vec![0; 64 * 1024];
        let outcome: io::Result<()> = loop {
            let read = match from.read(&mut buffer) {
                Ok(0) => break Ok(()),
                Ok(read) => read,
                Err(err) => break Err(err),
            };
            let mut record = record.lock().unwrap();
            let side = if to_server { &mut record.to_server } else { &mut record.to_client };
            side.extend_from_slice(&buffer[..read]);
            drop(record);
            if let Err(err) = to.write_all(&buffer[..read]) {
                break Err(err);
            }
        };
        // A clean end passes on as a half-close; a cut one cuts both ways.
        match outcome {
            Ok(()) => {
                let _ = to.shutdown(Shutdown::Write);
            }
            Err(_) => {
                let _ = to.shutdown(Shutdown::Both);
                let _ = from.shutdown(Shutdown::Both);
            }
        }
        open.fetch_sub(1, Ordering::SeqCst);
    })
}

/// Whether `haystack` holds any 64-byte run of `file`: such a run always holds a whole 32-byte
/// block of the file at an offset that is a multiple of 32.
fn holds_a_run_of(haystack: &[u8], file: &[u8]) -> bool {
    let blocks: HashSet<&[u8]> = file.chunks_exact(32).collect();
    haystack.windows(32).any(|window| blocks.contains(window))
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// The string value of `field` in the client's `--json` line.
fn json_field(json: &str, field: &str) -> String {
    let value = json.split(&format!("\"{field}\":\"")).nth(1).unwrap_or_else(|| panic!("{field} in {json}"));
    value.split('"').next().unwrap().to_owned()
}

/// What one share's life through the relay left: the file, its code, its owner token, how many
/// data connections the relay carried, and every byte that crossed.
struct Life {
    file: Vec<u8>,
    code: String,
    token: String,
    data_connections: usize,
    captured: Vec<Vec<u8>>,
}

/// Uploads a file of random bytes, downloads it (byte-exact, with the pin the upload's URL
/// carries) and deletes the share, each through the relay to a server started with `extra`.
fn share_life_through_a_relay(extra: &[&str]) -> Life {
    let (mut relay, listeners) = Relay::listen();
    let range = format!("{}-{}", relay.passive.0, relay.passive.1);
    let mut args = vec!["--passive-ports", &range];
    args.extend_from_slice(extra);
    let server = Server::start_with(&args);
    relay.forward_to(&server.addr, listeners);
    let via = relay.control.to_string();

    let dir = TempDir::new();
    let file = random_bytes(256 * 1024, 31);
    dir.file("secret.bin", &file);
    let made = client(&via, dir.path(), &["upload", "--json", "secret.bin"], b"");
    assert_eq!(made.code, 0, "{}", made.stderr);
    let (code, token) = (code_of(&json_field(&made.stdout, "url")), json_field(&made.stdout, "owner_token"));
    let pin = json_field(&made.stdout, "url").split_once('#').map(|(_, pin)| format!("#{pin}"));
    let url = format!("ftp://{via}/{code}/{}", pin.unwrap_or_default());
    let got = client(&via, dir.path(), &["download", "--dir", "got", &url], b"");
    assert_eq!(got.code, 0, "{}", got.stderr);
    assert!(fs::read(dir.path().join("got/secret.bin")).unwrap() == file, "the download is byte-exact");
    let share = server.root.join("shares").join(&code);
    assert!(share.is_dir(), "the share is on disk until deleted");
    let deleted = client(&via, dir.path(), &["delete", "--token", &token, &url], b"");
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    assert!(!share.exists(), "the share is gone");

    let data_connections = relay.data_connections();
    Life { file, code, token, data_connections, captured: relay.finish() }
}

#[test]
fn a_capture_of_a_share_over_ftps_holds_neither_its_code_nor_its_token_nor_its_bytes() {
    let seen = |life: &Life| {
        let all = |needle: &[u8]| life.captured.iter().any(|bytes| holds(bytes, needle));
        (
            all(life.code.as_bytes()),
            all(life.token.as_bytes()),
            life.captured.iter().any(|bytes| holds_a_run_of(bytes, &life.file)),
        )
    };

    let private = share_life_through_a_relay(&["--tls", "required"]);
    assert!(private.data_connections >= 2, "the upload's and the download's data crossed the relay");
    assert_eq!(seen(&private), (false, false, false), "code, token, a run of the file: none in the capture");

    // The same life in the clear shows all three: the relay records what crosses.
    let clear = share_life_through_a_relay(&["--tls", "off"]);
    assert!(clear.data_connections >= 2, "the upload's and the download's data crossed the relay");
    assert_eq!(seen(&clear), (true, true, true), "code, token, a run of the file: all in the capture");
}
