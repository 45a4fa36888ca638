//! The session's streams, each plain TCP or TLS over it (RFC 4217), so the session reads and
//! writes the same way either way: [`ControlStream`] (commands in, replies out, and the look
//! for `ABOR` that does not wait) and [`DataStream`] (a transfer's bytes, with `sendfile` when
//! plain). It makes no TLS decision: the session and `server::tls` do.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;
#[cfg(feature = "tls")]
use std::time::Instant;

#[cfg(feature = "tls")]
use rustls::{ServerConnection, StreamOwned};

use crate::common::line_io::poll_line;
#[cfg(feature = "tls")]
use crate::common::line_io::poll_line_through;
use crate::common::platform::send_file;
#[cfg(feature = "tls")]
use crate::common::platform::{peek_nowait, read_at};
use crate::proto::line::{Line, LineBuffer};

/// Bytes of a file read and encrypted at a time when a download goes through TLS.
#[cfg(feature = "tls")]
const TLS_SEND_BYTES: usize = 256 * 1024;

/// The control connection.
pub enum ControlStream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl ControlStream {
    /// The TCP socket under it, for timeouts and options.
    pub fn socket(&self) -> &TcpStream {
        match self {
            ControlStream::Plain(stream) => stream,
            #[cfg(feature = "tls")]
            ControlStream::Tls(stream) => &stream.sock,
        }
    }

    pub fn is_tls(&self) -> bool {
        !matches!(self, ControlStream::Plain(_))
    }

    /// Writes `bytes` and pushes them onto the wire.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes)?;
        self.flush()
    }

    /// A whole line if one is buffered or waiting, without blocking.
    pub fn poll_line(&mut self, lines: &mut LineBuffer) -> io::Result<Option<Line>> {
        match self {
            ControlStream::Plain(socket) => poll_line(socket, lines),
            #[cfg(feature = "tls")]
            ControlStream::Tls(stream) => {
                // Nothing decrypted and waiting, nothing on the socket: one look says so,
                // without making the socket non-blocking and back.
                let decrypted =
                    stream.conn.process_new_packets().map_or(true, |io| io.plaintext_bytes_to_read() > 0);
                let quiet =
                    matches!(peek_nowait(&stream.sock), Err(err) if err.kind() == io::ErrorKind::WouldBlock);
                if !decrypted && quiet && !lines.has_buffered() {
                    return Ok(None);
                }
                let socket = self.socket().try_clone()?;
                poll_line_through(&socket, self, lines)
            }
        }
    }

    /// Turns the plain connection into TLS with `connection` as the server, and completes the
    /// handshake before `deadline`.
    #[cfg(feature = "tls")]
    pub fn start_tls(&mut self, mut connection: ServerConnection, deadline: Instant) -> io::Result<()> {
        let mut socket = self.socket().try_clone()?;
        handshake(&mut connection, &mut socket, deadline)?;
        *self = ControlStream::Tls(Box::new(StreamOwned::new(connection, socket)));
        Ok(())
    }
}

impl Read for ControlStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ControlStream::Plain(stream) => stream.read(buf),
            #[cfg(feature = "tls")]
            ControlStream::Tls(stream) => end_is_end(stream.read(buf)),
        }
    }
}

impl Write for ControlStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ControlStream::Plain(stream) => stream.write(buf),
            #[cfg(feature = "tls")]
            ControlStream::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ControlStream::Plain(stream) => stream.flush(),
            #[cfg(feature = "tls")]
            ControlStream::Tls(stream) => stream.flush(),
        }
    }
}

/// A data connection.
pub enum DataStream {
    Plain(TcpStream),
    /// With the buffer a download's bytes are read into before they are encrypted, made at the
    /// first and kept for the next.
    #[cfg(feature = "tls")]
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>, Vec<u8>),
}

impl DataStream {
    /// Makes `socket` a TLS data connection with `connection` as the server, handshake done
    /// before `deadline`.
    #[cfg(feature = "tls")]
    pub fn tls(
        mut connection: ServerConnection,
        mut socket: TcpStream,
        deadline: Instant,
    ) -> io::Result<DataStream> {
        handshake(&mut connection, &mut socket, deadline)?;
        Ok(DataStream::Tls(Box::new(StreamOwned::new(connection, socket)), Vec::new()))
    }

    /// The TCP socket under it, for options.
    pub fn socket(&self) -> &TcpStream {
        match self {
            DataStream::Plain(stream) => stream,
            #[cfg(feature = "tls")]
            DataStream::Tls(stream, _) => &stream.sock,
        }
    }

    /// Whether the connection is protected by TLS.
    pub fn is_tls(&self) -> bool {
        !matches!(self, DataStream::Plain(_))
    }

    /// The TLS state of a protected connection.
    #[cfg(feature = "tls")]
    pub fn tls_connection(&self) -> Option<&ServerConnection> {
        match self {
            DataStream::Plain(_) => None,
            DataStream::Tls(stream, _) => Some(&stream.conn),
        }
    }

    /// Sends up to `count` bytes of `file` from `*offset`, advancing `*offset` by what was sent
    /// and returning it: zero-copy `sendfile` when plain, read and encrypted under TLS.
    pub fn send_file(&mut self, file: &File, offset: &mut u64, count: usize) -> io::Result<usize> {
        match self {
            DataStream::Plain(stream) => send_file(file, offset, count, stream),
            #[cfg(feature = "tls")]
            DataStream::Tls(stream, buffer) => {
                let size = count.min(TLS_SEND_BYTES);
                if buffer.len() < size {
                    buffer.resize(size, 0);
                }
                let read = read_at(file, &mut buffer[..size], *offset)?;
                let mut sent = 0;
                while sent < read {
                    match stream.write(&buffer[sent..read]) {
                        Ok(0) => break,
                        Ok(n) => sent += n,
                        Err(_) if sent > 0 => break,
                        Err(err) => return Err(err),
                    }
                }
                *offset += sent as u64;
                Ok(sent)
            }
        }
    }

    /// Ends the connection: under TLS with a `close_notify` first (clients such as ftplib wait
    /// for it), given up to `patience` to leave.
    pub fn close(self, patience: Duration) {
        match self {
            // A plain connection has nothing to say before it goes.
            DataStream::Plain(stream) => {
                let _ = (stream.shutdown(Shutdown::Both), patience);
            }
            #[cfg(feature = "tls")]
            DataStream::Tls(mut stream, _) => {
                stream.conn.send_close_notify();
                let deadline = Instant::now() + patience;
                while stream.conn.wants_write() && Instant::now() < deadline {
                    match stream.conn.write_tls(&mut stream.sock) {
                        Ok(_) => {}
                        Err(err) if is_timeout(&err) => {}
                        Err(_) => break,
                    }
                }
                let _ = stream.sock.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Read for DataStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            DataStream::Plain(stream) => stream.read(buf),
            // An upload that ends without close_notify is still judged by its size and SHA-256.
            #[cfg(feature = "tls")]
            DataStream::Tls(stream, _) => end_is_end(stream.read(buf)),
        }
    }
}

impl Write for DataStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            DataStream::Plain(stream) => stream.write(buf),
            #[cfg(feature = "tls")]
            DataStream::Tls(stream, _) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            DataStream::Plain(stream) => stream.flush(),
            #[cfg(feature = "tls")]
            DataStream::Tls(stream, _) => stream.flush(),
        }
    }
}

#[cfg(feature = "tls")]
fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// A TLS peer that closed the TCP connection without `close_notify` has ended the stream.
#[cfg(feature = "tls")]
fn end_is_end(result: io::Result<usize>) -> io::Result<usize> {
    match result {
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
        other => other,
    }
}

/// Runs a TLS handshake as the server to its end, waiting out the socket's timeouts until
/// `deadline`.
#[cfg(feature = "tls")]
fn handshake(connection: &mut ServerConnection, socket: &mut TcpStream, deadline: Instant) -> io::Result<()> {
    while connection.is_handshaking() {
        match connection.complete_io(socket) {
            Ok(_) => {}
            Err(err) if is_timeout(&err) && Instant::now() < deadline => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
