//! Control lines: a sans-IO splitter with a hard length cap ([`LineBuffer`]). A line over the cap
//! is discarded as it streams past, never buffered whole. `common::line_io` fills it from a stream.

use std::collections::VecDeque;

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

/// Splits bytes into CRLF- (or LF-) terminated lines of at most `max` bytes, ending included.
#[derive(Debug)]
pub struct LineBuffer {
    max: usize,
    partial: Vec<u8>,
    discarding: bool,
    ready: VecDeque<Line>,
}

impl LineBuffer {
    pub fn new(max: usize) -> LineBuffer {
        LineBuffer { max, partial: Vec::new(), discarding: false, ready: VecDeque::new() }
    }

    /// Takes bytes as they arrived.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (chunk, found_end) = match bytes.iter().position(|&b| b == b'\n') {
                Some(end) => (&bytes[..=end], true),
                None => (bytes, false),
            };
            bytes = &bytes[chunk.len()..];
            if !self.discarding {
                if self.partial.len() + chunk.len() > self.max {
                    self.discarding = true;
                    self.partial = Vec::new();
                } else {
                    self.partial.extend_from_slice(chunk);
                }
            }
            if found_end {
                let line = if std::mem::take(&mut self.discarding) {
                    Line::TooLong
                } else {
                    let mut text = std::mem::take(&mut self.partial);
                    text.pop();
                    if text.last() == Some(&b'\r') {
                        text.pop();
                    }
                    Line::Text(text)
                };
                self.ready.push_back(line);
            }
        }
    }

    /// The next complete line, if one has arrived.
    pub fn next_line(&mut self) -> Option<Line> {
        self.ready.pop_front()
    }

    /// Drops every byte not taken yet: what a client sent in plaintext after `AUTH TLS`.
    pub fn clear(&mut self) {
        self.partial.clear();
        self.discarding = false;
        self.ready.clear();
    }

    /// Whether bytes arrived that no one has taken yet.
    pub fn has_buffered(&self) -> bool {
        !self.ready.is_empty() || !self.partial.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&[u8]], max: usize) -> Vec<Line> {
        let mut buffer = LineBuffer::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            buffer.feed(chunk);
            while let Some(line) = buffer.next_line() {
                out.push(line);
            }
        }
        out
    }

    fn text(s: &str) -> Line {
        Line::Text(s.as_bytes().to_vec())
    }

    #[test]
    fn splits_crlf_and_lf_lines_across_chunks() {
        assert_eq!(
            lines(&[b"USER a\r\nPA", b"SS\nQUIT\r", b"\n"], 100),
            [text("USER a"), text("PASS"), text("QUIT")]
        );
    }

    #[test]
    fn long_lines_are_discarded_and_the_next_line_is_read() {
        let long = vec![b'x'; 50];
        assert_eq!(lines(&[&long, &long, b"\r\nNOOP\r\n"], 10), [Line::TooLong, text("NOOP")]);
    }

    #[test]
    fn the_cap_counts_the_line_ending() {
        assert_eq!(lines(&[b"12345678\r\n"], 10), [text("12345678")]);
        assert_eq!(lines(&[b"123456789\r\n"], 10), [Line::TooLong]);
    }
}
