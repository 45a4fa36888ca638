//! The two loops that fill a [`LineBuffer`] from a stream: blocking ([`read_line`]) or with one
//! look that does not wait ([`poll_line`]). The splitting itself is sans-IO, in `proto::line`.

use std::io::{self, Read};
use std::net::TcpStream;

use crate::common::platform::read_now;
use crate::proto::line::{Line, LineBuffer};

/// Bytes read from the stream at a time.
const READ_BYTES: usize = 4096;

/// Reads until a whole line is there. Timeouts are the stream's.
pub fn read_line(stream: &mut impl Read, buffer: &mut LineBuffer) -> io::Result<Line> {
    let mut bytes = [0u8; READ_BYTES];
    loop {
        if let Some(line) = buffer.next_line() {
            return Ok(line);
        }
        match stream.read(&mut bytes) {
            Ok(0) => return Ok(Line::Closed),
            Ok(n) => buffer.feed(&bytes[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// Returns a whole line if one is buffered or waiting on the socket, without blocking: one
/// system call when nothing is waiting.
pub fn poll_line(stream: &TcpStream, buffer: &mut LineBuffer) -> io::Result<Option<Line>> {
    if let Some(line) = buffer.next_line() {
        return Ok(Some(line));
    }
    let mut bytes = [0u8; READ_BYTES];
    looked(read_now(stream, &mut bytes), &bytes, buffer)
}

/// Like [`poll_line`], reading through `reader` (a TLS stream, say) over `socket`, which is
/// made non-blocking for that one look.
pub fn poll_line_through(
    socket: &TcpStream,
    reader: &mut impl Read,
    buffer: &mut LineBuffer,
) -> io::Result<Option<Line>> {
    if let Some(line) = buffer.next_line() {
        return Ok(Some(line));
    }
    let mut bytes = [0u8; READ_BYTES];
    socket.set_nonblocking(true)?;
    let result = reader.read(&mut bytes);
    socket.set_nonblocking(false)?;
    looked(result, &bytes, buffer)
}

/// What one read that does not wait brought: a whole line, nothing yet, or the end.
fn looked(result: io::Result<usize>, bytes: &[u8], buffer: &mut LineBuffer) -> io::Result<Option<Line>> {
    match result {
        Ok(0) => Ok(Some(Line::Closed)),
        Ok(n) => {
            buffer.feed(&bytes[..n]);
            Ok(buffer.next_line())
        }
        Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(None),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Line {
        Line::Text(s.as_bytes().to_vec())
    }

    #[test]
    fn reading_stops_at_a_partial_last_line() {
        let mut buffer = LineBuffer::new(100);
        let mut input: &[u8] = b"NOOP\r\nQUI";
        assert_eq!(read_line(&mut input, &mut buffer).unwrap(), text("NOOP"));
        assert_eq!(read_line(&mut input, &mut buffer).unwrap(), Line::Closed);
    }
}
