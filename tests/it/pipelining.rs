//! The client sends a transfer command in the same write as its EPSV: against servers that
//! refuse a part of it (EPSV itself, a command queued ahead), the transfer it meant still
//! happens exactly, or not at all, and no reply is left unread.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anonshare::client::tls::{ClientStream, Trust};
use anonshare::client::{ClientError, Connection, Outgoing};
use anonshare::common::digest::Sha256Digest;

use crate::support::{random_bytes, wait_until};

/// How a scripted server answers `ALLO` and `EPSV`.
#[derive(Clone, Copy)]
struct Script {
    /// `ALLO` refused with 552, as a server short of space may refuse it.
    refuse_allo: bool,
    /// No EPSV (500): PASV only, as some older servers.
    no_epsv: bool,
    /// `EPSV` answered `421` and the connection closed, as a server that stops does.
    closing: bool,
    /// A transfer command without PASV tries the default data port (RFC 959 §3.2): `150`,
    /// then `425` when no one is there.
    default_port: bool,
}

const PLAIN: Script = Script { refuse_allo: false, no_epsv: false, closing: false, default_port: false };

/// An FTP server as stock servers behave where RFC 959 leaves them free: a `REST` is used up by
/// the next `RETR` or `STOR`, even one refused for want of a data connection. It serves `file`
/// as every path, takes one connection, and records every command it got.
fn scripted_server(script: Script, file: Vec<u8>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&heard);
    std::thread::spawn(move || {
        let Ok((mut control, _)) = listener.accept() else { return };
        let _ = control.write_all(b"220 ready\r\n");
        let reader = BufReader::new(control.try_clone().unwrap());
        let (mut rest, mut passive): (usize, Option<TcpListener>) = (0, None);
        for line in reader.lines() {
            let Ok(line) = line else { break };
            log.lock().unwrap().push(line.clone());
            let (verb, argument) = line.split_once(' ').unwrap_or((&line, ""));
            let reply = match verb.to_ascii_uppercase().as_str() {
                "USER" => "230 logged in".to_owned(),
                "TYPE" => "200 type set".to_owned(),
                "ALLO" if script.refuse_allo => "552 not enough space".to_owned(),
                "ALLO" => "202 no allocation needed".to_owned(),
                "REST" => {
                    rest = argument.parse().unwrap();
                    "350 restarting".to_owned()
                }
                "EPSV" if script.no_epsv => "500 unknown command".to_owned(),
                "EPSV" if script.closing => {
                    let _ = control.write_all(b"421 shutting down\r\n");
                    break;
                }
                "EPSV" | "PASV" => {
                    let bound = TcpListener::bind("127.0.0.1:0").unwrap();
                    let port = bound.local_addr().unwrap().port();
                    passive = Some(bound);
                    match verb {
                        "EPSV" => format!("229 Entering Extended Passive Mode (|||{port}|)"),
                        _ => format!("227 Entering Passive Mode (127,0,0,1,{},{})", port >> 8, port & 0xff),
                    }
                }
                "RETR" | "STOR" => {
                    let offset = std::mem::take(&mut rest);
                    match passive.take() {
                        None if script.default_port => {
                            "150 opening data connection\r\n425 no data connection".to_owned()
                        }
                        None => "425 use PASV first".to_owned(),
                        Some(bound) => {
                            let _ = control.write_all(b"150 opening data connection\r\n");
                            let (mut data, _) = bound.accept().unwrap();
                            if verb == "RETR" {
                                let _ = data.write_all(&file[offset.min(file.len())..]);
                            }
                            drop(data);
                            "226 done".to_owned()
                        }
                    }
                }
                "QUIT" => {
                    let _ = control.write_all(b"221 bye\r\n");
                    break;
                }
                _ => "502 command not implemented".to_owned(),
            };
            if control.write_all(format!("{reply}\r\n").as_bytes()).is_err() {
                break;
            }
        }
    });
    (addr, heard)
}

fn connect(addr: &str) -> Connection {
    Connection::open(addr, Duration::from_secs(20), &Trust::default()).unwrap()
}

/// Every byte it is asked for, from `bytes`.
fn download(connection: &mut Connection, offset: u64) -> Result<Vec<u8>, ClientError> {
    let mut got = Vec::new();
    connection.retrieve("/f", offset, vec![0; 4096], |buffer, len| {
        got.extend_from_slice(&buffer[..len]);
        Ok(buffer)
    })?;
    Ok(got)
}

#[test]
fn a_resumed_download_from_a_server_without_epsv_starts_at_its_offset() {
    let file = random_bytes(50_000, 91);
    for default_port in [false, true] {
        let (addr, heard) = scripted_server(Script { no_epsv: true, default_port, ..PLAIN }, file.clone());
        let mut connection = connect(&addr);
        let got = download(&mut connection, 12_345).unwrap();
        assert!(got == file[12_345..], "{} bytes from the offset, got {}", file.len() - 12_345, got.len());
        // The connection goes on in step: each download's replies are its own.
        for _ in 0..2 {
            assert_eq!(Sha256Digest::of(&download(&mut connection, 0).unwrap()), Sha256Digest::of(&file));
        }
        connection.quit();
        wait_until("the server heard QUIT", || heard.lock().unwrap().last().is_some_and(|l| l == "QUIT"));
    }
}

/// An upload's bytes, which are never asked for here.
struct NoBytes;

impl Outgoing for NoBytes {
    fn send_chunk(&mut self, _data: &mut ClientStream) -> anonshare::client::Result<bool> {
        Ok(false)
    }
}

#[test]
fn an_upload_whose_allo_is_refused_sends_no_stor() {
    let (addr, heard) = scripted_server(Script { refuse_allo: true, ..PLAIN }, Vec::new());
    let mut connection = connect(&addr);
    // Past the size sent before the server's go-ahead, so STOR would go with its EPSV.
    let err = connection.store("/big", 1 << 20, None, 0, &mut NoBytes).unwrap_err();
    assert!(matches!(&err, ClientError::Server { refusal, .. } if refusal.code == 552), "{err:?}");
    // In step: the next reply read is the next command's own.
    assert_eq!(download(&mut connection, 0).unwrap(), Vec::<u8>::new());
    connection.quit();
    wait_until("the server heard QUIT", || heard.lock().unwrap().last().is_some_and(|l| l == "QUIT"));
    let heard = heard.lock().unwrap();
    assert!(!heard.iter().any(|line| line.starts_with("STOR")), "no STOR after a refused ALLO: {heard:?}");
}

#[test]
fn epsv_refused_by_a_server_that_closes_is_that_refusal() {
    let (addr, _) = scripted_server(Script { closing: true, ..PLAIN }, Vec::new());
    let mut connection = connect(&addr);
    let err = download(&mut connection, 0).unwrap_err();
    assert_eq!(err.reason(), Some(anonshare::proto::Reason::Closing), "{err:?}");
}
