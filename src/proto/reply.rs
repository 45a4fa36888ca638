//! Replies as RFC 959 §4.2 frames them: [`Reply`] renders a code and its lines, multi-line
//! included, and [`ReplyParser`] assembles them back from control lines. Pure.

use std::fmt;

use crate::proto::command::clip;

/// A reply from the server: a three-digit code and one or more lines of text (RFC 959 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply { code, lines: vec![text.into()] }
    }

    /// A multi-line reply: `first`, the `body` lines, and a closing `last` line.
    pub fn multi(code: u16, first: impl Into<String>, body: Vec<String>, last: impl Into<String>) -> Reply {
        let mut lines = vec![first.into()];
        lines.extend(body);
        lines.push(last.into());
        Reply { code, lines }
    }

    /// All lines joined with newlines, for messages.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// 1yz: another reply follows.
    pub fn is_preliminary(&self) -> bool {
        (100..200).contains(&self.code)
    }

    /// 2yz: the action is done.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

/// A reply line with its control characters replaced, so echoed input cannot break the
/// reply's framing.
fn printable(line: &str) -> std::borrow::Cow<'_, str> {
    if line.chars().any(char::is_control) {
        line.chars().map(|c| if c.is_control() { '?' } else { c }).collect::<String>().into()
    } else {
        line.into()
    }
}

impl fmt::Display for Reply {
    /// The reply as it goes on the wire, CRLFs included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code;
        let lines: Vec<_> = self.lines.iter().map(|line| printable(line)).collect();
        match lines.as_slice() {
            [] => write!(f, "{code} \r\n"),
            [only] => write!(f, "{code} {only}\r\n"),
            [first, body @ .., last] => {
                write!(f, "{code}-{first}\r\n")?;
                for line in body {
                    // A body line that starts with digits could end the reply early; indent it.
                    if line.starts_with(|c: char| c.is_ascii_digit()) {
                        write!(f, " {line}\r\n")?;
                    } else {
                        write!(f, "{line}\r\n")?;
                    }
                }
                write!(f, "{code} {last}\r\n")
            }
        }
    }
}

/// A reply line that does not fit RFC 959's grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadReply(pub String);

impl fmt::Display for BadReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed reply line '{}': expected a three-digit code", clip(&self.0))
    }
}

impl std::error::Error for BadReply {}

/// Assembles replies from control lines, one line at a time (the client's side of RFC 959 §4.2).
#[derive(Debug, Default)]
pub struct ReplyParser {
    pending: Option<Reply>,
}

impl ReplyParser {
    pub fn new() -> ReplyParser {
        ReplyParser::default()
    }

    /// Feeds one line without its CRLF; returns the reply once its last line has arrived.
    pub fn feed(&mut self, line: &str) -> Result<Option<Reply>, BadReply> {
        let code = reply_code_prefix(line);
        if let Some(pending) = &mut self.pending {
            if code == Some(pending.code) && line.as_bytes().get(3) != Some(&b'-') {
                pending.lines.push(line.get(4..).unwrap_or("").to_owned());
                return Ok(self.pending.take());
            }
            pending.lines.push(line.strip_prefix(' ').unwrap_or(line).to_owned());
            return Ok(None);
        }
        let code = code.ok_or_else(|| BadReply(line.to_owned()))?;
        let text = line.get(4..).unwrap_or("").to_owned();
        match line.as_bytes().get(3) {
            Some(b'-') => {
                self.pending = Some(Reply { code, lines: vec![text] });
                Ok(None)
            }
            None | Some(b' ') => Ok(Some(Reply { code, lines: vec![text] })),
            Some(_) => Err(BadReply(line.to_owned())),
        }
    }
}

fn reply_code_prefix(line: &str) -> Option<u16> {
    let digits = line.get(..3)?;
    if digits.bytes().all(|b| b.is_ascii_digit()) && (b'1'..=b'5').contains(&digits.as_bytes()[0]) {
        digits.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_render_rfc959_4_2() {
        assert_eq!(Reply::new(200, "ok").to_string(), "200 ok\r\n");
        let multi = Reply::multi(211, "Features:", vec![" EPSV".into(), "123 tricky".into()], "End");
        assert_eq!(multi.to_string(), "211-Features:\r\n EPSV\r\n 123 tricky\r\n211 End\r\n");
    }

    #[test]
    fn reply_parser_reads_single_and_multi_line_replies() {
        let mut parser = ReplyParser::new();
        assert_eq!(parser.feed("220 hi").unwrap(), Some(Reply::new(220, "hi")));
        assert_eq!(parser.feed("211-Features:").unwrap(), None);
        assert_eq!(parser.feed(" EPSV").unwrap(), None);
        assert_eq!(parser.feed("211-not the end").unwrap(), None);
        let reply = parser.feed("211 End").unwrap().unwrap();
        assert_eq!(reply.lines, ["Features:", "EPSV", "211-not the end", "End"]);
        assert!(parser.feed("hello").is_err());
        assert_eq!(parser.feed("200").unwrap(), Some(Reply::new(200, "")));
    }

    #[test]
    fn rendered_replies_parse_back() {
        let reply = Reply::multi(211, "a", vec!["b".into(), "c".into()], "d");
        let mut parser = ReplyParser::new();
        let mut parsed = None;
        for line in reply.to_string().split("\r\n").filter(|l| !l.is_empty()) {
            parsed = parser.feed(line).unwrap();
        }
        assert_eq!(parsed, Some(reply));
    }
}
