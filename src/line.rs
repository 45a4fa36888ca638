//! Reads CRLF- (or LF-) terminated control lines with a hard length cap: a line over the cap
//! is discarded as it streams past, never buffered whole.

use std::io::{self, BufRead};

/// What one read produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its line ending.
    Text(Vec<u8>),
    /// A line longer than the cap; its bytes were discarded up to and including its newline.
    TooLong,
    /// The peer closed the connection (a partial last line is dropped).
    Closed,
}

/// Reads the next line of at most `max` bytes, line ending included.
pub fn read_line(reader: &mut impl BufRead, max: usize) -> io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if available.is_empty() {
            return Ok(Line::Closed);
        }
        let (chunk, found_end) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..=end], true),
            None => (available, false),
        };
        let used = chunk.len();
        if !too_long {
            if line.len() + used > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        reader.consume(used);
        if found_end {
            if too_long {
                return Ok(Line::TooLong);
            }
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Line::Text(line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn lines(input: &[u8], max: usize) -> Vec<Line> {
        // A tiny buffer makes the reader cross chunk boundaries.
        let mut reader = BufReader::with_capacity(3, input);
        let mut out = Vec::new();
        loop {
            let line = read_line(&mut reader, max).unwrap();
            let closed = line == Line::Closed;
            out.push(line);
            if closed {
                return out;
            }
        }
    }

    #[test]
    fn splits_crlf_and_lf_lines() {
        assert_eq!(
            lines(b"USER a\r\nPASS\nQUIT\r\n", 100),
            [
                Line::Text(b"USER a".to_vec()),
                Line::Text(b"PASS".to_vec()),
                Line::Text(b"QUIT".to_vec()),
                Line::Closed
            ]
        );
    }

    #[test]
    fn long_lines_are_discarded_and_the_next_line_is_read() {
        let mut input = vec![b'x'; 50];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        assert_eq!(
            lines(&input, 10),
            [Line::TooLong, Line::Text(b"NOOP".to_vec()), Line::Closed]
        );
    }

    #[test]
    fn the_cap_counts_the_line_ending() {
        assert_eq!(
            lines(b"12345678\r\n", 10)[0],
            Line::Text(b"12345678".to_vec())
        );
        assert_eq!(lines(b"123456789\r\n", 10)[0], Line::TooLong);
    }

    #[test]
    fn a_partial_last_line_is_dropped() {
        assert_eq!(
            lines(b"NOOP\r\nQUI", 100),
            [Line::Text(b"NOOP".to_vec()), Line::Closed]
        );
    }
}
