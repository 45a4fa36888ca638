//! How the shell reads a line: plainly from a pipe, or at a terminal with a small line editor
//! (arrows, Home and End, Backspace and Delete, history with Up and Down, Ctrl-A, -E, -U, -K,
//! -W, Ctrl-C to drop the line, Ctrl-D to end). [`Edit`] is the editor's state and keys, pure
//! and tested; [`Terminal`] connects it to a raw-mode terminal.

use std::io::{self, BufRead, Read, Write};

use crate::common::platform::RawTerminal;

/// Where the shell's lines come from.
pub trait LineInput {
    /// Shows `prompt` on `screen` (when a person is there) and reads one line, without its
    /// end; `None` at the end of input, after which `screen` is on a fresh line.
    fn read_line(&mut self, prompt: &str, screen: &mut dyn Write) -> io::Result<Option<String>>;
}

/// Lines read as they come, from a pipe, a file or a terminal without raw mode.
pub struct PlainInput<R> {
    reader: R,
    /// Whether a person reads the prompts.
    prompts: bool,
}

impl<R: BufRead> PlainInput<R> {
    pub fn new(reader: R, prompts: bool) -> PlainInput<R> {
        PlainInput { reader, prompts }
    }
}

impl<R: BufRead> LineInput for PlainInput<R> {
    fn read_line(&mut self, prompt: &str, screen: &mut dyn Write) -> io::Result<Option<String>> {
        if self.prompts {
            write!(screen, "{prompt}")?;
            screen.flush()?;
        }
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            if self.prompts {
                // Ctrl-D leaves the cursor after the prompt: what follows starts a line of its own.
                writeln!(screen)?;
            }
            return Ok(None);
        }
        Ok(Some(line.trim_end_matches(['\n', '\r']).to_owned()))
    }
}

/// A key, as the editor knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    Up,
    Down,
    /// Ctrl-U: drop what is before the cursor.
    KillBefore,
    /// Ctrl-K: drop what is after the cursor.
    KillAfter,
    /// Ctrl-W: drop the word before the cursor.
    KillWord,
    /// Ctrl-C: drop the whole line.
    Interrupt,
    /// Ctrl-D.
    EndOfInput,
    /// A key the editor does nothing with.
    Ignored,
}

/// Turns the bytes a terminal sends into keys: UTF-8 characters, control keys and the escape
/// sequences of arrows, Home, End and Delete.
#[derive(Default)]
pub struct KeyReader {
    pending: Vec<u8>,
}

impl KeyReader {
    /// Takes one byte; a key once the bytes make one.
    pub fn feed(&mut self, byte: u8) -> Option<Key> {
        self.pending.push(byte);
        let key = match self.pending.as_slice() {
            [0x1b] | [0x1b, b'[' | b'O'] => return None,
            [0x1b, b'[', rest @ ..] | [0x1b, b'O', rest @ ..] => match rest {
                [b'A'] => Key::Up,
                [b'B'] => Key::Down,
                [b'C'] => Key::Right,
                [b'D'] => Key::Left,
                [b'H'] => Key::Home,
                [b'F'] => Key::End,
                [b'3', b'~'] => Key::Delete,
                [b'1' | b'7', b'~'] => Key::Home,
                [b'4' | b'8', b'~'] => Key::End,
                [.., last] if last.is_ascii_digit() || *last == b';' => return None,
                _ => Key::Ignored,
            },
            [0x1b, _] => Key::Ignored,
            [b'\r' | b'\n'] => Key::Enter,
            [0x7f | 0x08] => Key::Backspace,
            [0x01] => Key::Home,
            [0x05] => Key::End,
            [0x02] => Key::Left,
            [0x06] => Key::Right,
            [0x10] => Key::Up,
            [0x0e] => Key::Down,
            [0x15] => Key::KillBefore,
            [0x0b] => Key::KillAfter,
            [0x17] => Key::KillWord,
            [0x03] => Key::Interrupt,
            [0x04] => Key::EndOfInput,
            [byte] if *byte < 0x20 => Key::Ignored,
            bytes => match std::str::from_utf8(bytes) {
                Ok(text) => text.chars().next().map_or(Key::Ignored, Key::Char),
                // A character's first bytes: wait for the rest (at most four in all).
                Err(err) if err.error_len().is_none() && bytes.len() < 4 => return None,
                Err(_) => Key::Ignored,
            },
        };
        self.pending.clear();
        Some(key)
    }
}

/// What a key did to the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Editing,
    Done(String),
    EndOfInput,
}

/// A line being edited, and the history Up and Down walk.
#[derive(Debug, Default)]
pub struct Edit {
    line: Vec<char>,
    cursor: usize,
    /// The history entry shown, counted from the newest; `None` for the line being typed.
    browsing: Option<usize>,
    typed: Vec<char>,
}

impl Edit {
    /// Applies `key`, with `history` oldest first.
    pub fn key(&mut self, key: Key, history: &[String]) -> Outcome {
        match key {
            Key::Char(c) => {
                self.line.insert(self.cursor, c);
                self.cursor += 1;
            }
            Key::Enter => {
                let line: String = std::mem::take(&mut self.line).into_iter().collect();
                *self = Edit::default();
                return Outcome::Done(line);
            }
            Key::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.line.remove(self.cursor);
            }
            Key::Delete if self.cursor < self.line.len() => {
                self.line.remove(self.cursor);
            }
            Key::Left => self.cursor = self.cursor.saturating_sub(1),
            Key::Right => self.cursor = (self.cursor + 1).min(self.line.len()),
            Key::Home => self.cursor = 0,
            Key::End => self.cursor = self.line.len(),
            Key::Up if self.browsing.map_or(0, |n| n + 1) < history.len() => {
                let next = self.browsing.map_or(0, |n| n + 1);
                if self.browsing.is_none() {
                    self.typed = self.line.clone();
                }
                self.browsing = Some(next);
                self.show(history[history.len() - 1 - next].chars().collect());
            }
            Key::Down => match self.browsing {
                Some(0) => {
                    self.browsing = None;
                    let typed = std::mem::take(&mut self.typed);
                    self.show(typed);
                }
                Some(n) => {
                    self.browsing = Some(n - 1);
                    self.show(history[history.len() - n].chars().collect());
                }
                None => {}
            },
            Key::KillBefore => {
                self.line.drain(..self.cursor);
                self.cursor = 0;
            }
            Key::KillAfter => self.line.truncate(self.cursor),
            Key::KillWord => {
                let mut start = self.cursor;
                while start > 0 && self.line[start - 1] == ' ' {
                    start -= 1;
                }
                while start > 0 && self.line[start - 1] != ' ' {
                    start -= 1;
                }
                self.line.drain(start..self.cursor);
                self.cursor = start;
            }
            Key::Interrupt => *self = Edit::default(),
            Key::EndOfInput if self.line.is_empty() => return Outcome::EndOfInput,
            Key::EndOfInput => return self.key(Key::Delete, history),
            _ => {}
        }
        Outcome::Editing
    }

    fn show(&mut self, line: Vec<char>) {
        self.cursor = line.len();
        self.line = line;
    }

    /// What redraws the prompt and the line, with the cursor in its place.
    pub fn render(&self, prompt: &str) -> String {
        let line: String = self.line.iter().collect();
        let back = self.line.len() - self.cursor;
        let mut text = format!("\r\x1b[K{prompt}{line}");
        if back > 0 {
            text.push_str(&format!("\x1b[{back}D"));
        }
        text
    }
}

/// Lines typed at a terminal, edited as they are typed, with a history.
#[derive(Default)]
pub struct Terminal {
    history: Vec<String>,
}

impl Terminal {
    /// Most lines the history keeps.
    pub const HISTORY_LINES: usize = 500;
}

impl LineInput for Terminal {
    fn read_line(&mut self, prompt: &str, screen: &mut dyn Write) -> io::Result<Option<String>> {
        let Some(_raw) = RawTerminal::enter() else {
            return PlainInput::new(io::stdin().lock(), true).read_line(prompt, screen);
        };
        let mut edit = Edit::default();
        let mut keys = KeyReader::default();
        let mut stdin = io::stdin().lock();
        write!(screen, "{}", edit.render(prompt))?;
        screen.flush()?;
        let mut byte = [0u8; 1];
        loop {
            if stdin.read(&mut byte)? == 0 {
                writeln!(screen)?;
                return Ok(None);
            }
            let Some(key) = keys.feed(byte[0]) else { continue };
            match edit.key(key, &self.history) {
                Outcome::Editing => write!(screen, "{}", edit.render(prompt))?,
                Outcome::Done(line) => {
                    write!(screen, "\r\n")?;
                    if !line.trim().is_empty() && self.history.last() != Some(&line) {
                        self.history.push(line.clone());
                        if self.history.len() > Terminal::HISTORY_LINES {
                            self.history.remove(0);
                        }
                    }
                    return Ok(Some(line));
                }
                Outcome::EndOfInput => {
                    write!(screen, "\r\n")?;
                    return Ok(None);
                }
            }
            screen.flush()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line `bytes` typed at a terminal make, with `history`.
    fn typed(bytes: &[u8], history: &[&str]) -> Outcome {
        let history: Vec<String> = history.iter().map(|s| s.to_string()).collect();
        let mut keys = KeyReader::default();
        let mut edit = Edit::default();
        for &byte in bytes {
            if let Some(key) = keys.feed(byte) {
                match edit.key(key, &history) {
                    Outcome::Editing => {}
                    done => return done,
                }
            }
        }
        Outcome::Editing
    }

    fn line(text: &str) -> Outcome {
        Outcome::Done(text.into())
    }

    #[test]
    fn arrows_move_the_cursor_instead_of_printing_escapes() {
        assert_eq!(typed(b"lst\x1b[D\x1b[Di\r", &[]), line("list"));
        assert_eq!(typed(b"ist\x1b[Hl\x1b[F!\r", &[]), line("list!"));
        assert_eq!(typed(b"abc\x1b[D\x1b[D\x1b[3~\r", &[]), line("ac"));
        assert_eq!(typed(b"abc\x7f\r", &[]), line("ab"));
        assert_eq!(typed("\u{e9}t\u{e9}\r".as_bytes(), &[]), line("\u{e9}t\u{e9}"));
    }

    #[test]
    fn up_and_down_walk_the_history() {
        let history = ["list a", "list b"];
        assert_eq!(typed(b"\x1b[A\r", &history), line("list b"));
        assert_eq!(typed(b"\x1b[A\x1b[A\x1b[A\r", &history), line("list a"));
        assert_eq!(typed(b"new\x1b[A\x1b[B\r", &history), line("new"), "down comes back to the typed line");
    }

    #[test]
    fn control_keys_edit_like_a_shell() {
        assert_eq!(typed(b"upload a b\x17c\r", &[]), line("upload a c"));
        assert_eq!(typed(b"junk\x03list\r", &[]), line("list"), "Ctrl-C drops the line");
        assert_eq!(typed(b"abc\x01\x0b\r", &[]), line(""));
        assert_eq!(typed(b"\x04", &[]), Outcome::EndOfInput, "Ctrl-D on an empty line ends");
    }

    #[test]
    fn end_of_piped_input_leaves_the_screen_on_a_fresh_line() {
        let mut screen = Vec::new();
        let mut input = PlainInput::new(&b"list x\n"[..], true);
        assert_eq!(input.read_line("> ", &mut screen).unwrap(), Some("list x".into()));
        assert_eq!(input.read_line("> ", &mut screen).unwrap(), None);
        assert_eq!(String::from_utf8(screen).unwrap(), "> > \n");
    }
}
