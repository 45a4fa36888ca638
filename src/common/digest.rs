//! SHA-256 digests: computing them while bytes stream past (on a thread of their own when
//! there are many), and their lowercase hex form. Knows nothing of files or sockets; callers
//! feed it bytes.

use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::{self, JoinHandle};

use sha2::{Digest as _, Sha256};

/// A SHA-256 digest of a whole file.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

/// The error for text that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadDigest(pub String);

impl fmt::Display for BadDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid SHA-256 '{}': expected 64 hex digits", self.0)
    }
}

impl std::error::Error for BadDigest {}

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256Digest {
        let mut hasher = Hasher::new();
        hasher.update(bytes);
        hasher.finish()
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

impl FromStr for Sha256Digest {
    type Err = BadDigest;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadDigest(text.chars().take(80).collect());
        if text.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let high = hex_value(pair[0]).ok_or_else(bad)?;
            let low = hex_value(pair[1]).ok_or_else(bad)?;
            out[i] = high << 4 | low;
        }
        Ok(Sha256Digest(out))
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// A running SHA-256 over bytes fed in order.
#[derive(Clone, Default)]
pub struct Hasher {
    inner: Sha256,
    len: u64,
}

impl Hasher {
    pub fn new() -> Hasher {
        Hasher::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// How many bytes have been fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Sha256Digest {
        Sha256Digest(self.inner.finalize().into())
    }
}

/// Bytes still to come from which a [`StreamHasher`] hashes on a thread of its own: below this,
/// starting the thread costs more than it saves.
pub const BACKGROUND_HASH_BYTES: u64 = 1 << 20;

/// Buffers a background hasher's thread holds at most (queued or being hashed); the caller
/// fills one more. With 64 KiB chunks that is 320 KiB per stream, with 256 KiB ones 1.25 MiB.
const BACKGROUND_BUFFERS: usize = 4;

/// A running SHA-256 of a stream whose bytes the caller also moves somewhere (a socket, a
/// file). For a long stream the hashing runs on a second thread, so that on a machine with
/// two cores it costs the mover no time. The caller either hands over a copy of each chunk
/// ([`StreamHasher::update`]) or, better, fills the hasher's own buffers
/// ([`StreamHasher::buffer`], [`StreamHasher::update_buffer`]), which then cross to the thread
/// without a copy and come back for reuse, so memory stays bounded.
pub enum StreamHasher {
    /// Hashes in the caller's thread; keeps one buffer for the caller to fill.
    Inline(Hasher, Vec<u8>),
    /// Hashes on its own thread.
    Background(BackgroundHasher),
}

impl StreamHasher {
    /// Continues `hasher` over `to_come` more bytes: in the background when they are many and a
    /// thread can be started, in the caller's thread otherwise.
    pub fn new(hasher: Hasher, to_come: u64) -> StreamHasher {
        let mut stream = StreamHasher::Inline(hasher, Vec::new());
        if to_come >= BACKGROUND_HASH_BYTES {
            stream.go_background();
        }
        stream
    }

    /// Hashes on a thread of its own from now on, if one can be started: for a stream whose
    /// length was not known and that turned out long.
    pub fn go_background(&mut self) {
        if let StreamHasher::Inline(hasher, _) = self
            && let Ok(background) = BackgroundHasher::start(hasher.clone())
        {
            *self = StreamHasher::Background(background);
        }
    }

    pub fn is_background(&self) -> bool {
        matches!(self, StreamHasher::Background(_))
    }

    /// Bytes fed so far, those of the hasher it continues included.
    pub fn len(&self) -> u64 {
        match self {
            StreamHasher::Inline(hasher, _) => hasher.len(),
            StreamHasher::Background(background) => background.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hashes a copy of `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            StreamHasher::Inline(hasher, _) => hasher.update(bytes),
            StreamHasher::Background(background) => background.update(bytes),
        }
    }

    /// A buffer of `size` bytes for the caller to fill and hand back to
    /// [`StreamHasher::update_buffer`]; waits while the thread holds every buffer.
    pub fn buffer(&mut self, size: usize) -> Vec<u8> {
        let mut buffer = match self {
            StreamHasher::Inline(_, spare) => std::mem::take(spare),
            StreamHasher::Background(background) => background.spare(),
        };
        buffer.resize(size, 0);
        buffer
    }

    /// Hashes the first `len` bytes of `buffer`, which the hasher keeps for reuse.
    pub fn update_buffer(&mut self, buffer: Vec<u8>, len: usize) {
        match self {
            StreamHasher::Inline(hasher, spare) => {
                hasher.update(&buffer[..len]);
                *spare = buffer;
            }
            StreamHasher::Background(background) => background.hand_over(buffer, len),
        }
    }

    /// The hasher once every byte fed so far is in it.
    pub fn into_hasher(self) -> Hasher {
        match self {
            StreamHasher::Inline(hasher, _) => hasher,
            StreamHasher::Background(background) => background.finish(),
        }
    }
}

/// A [`Hasher`] fed on a thread of its own.
pub struct BackgroundHasher {
    chunks: Option<Sender<(Vec<u8>, usize)>>,
    spare: Receiver<Vec<u8>>,
    /// Buffers the thread holds, at most [`BACKGROUND_BUFFERS`].
    with_thread: usize,
    /// Bytes handed over so far, those of the hasher it continues included.
    len: u64,
    thread: Option<JoinHandle<Hasher>>,
}

impl BackgroundHasher {
    /// Starts the thread that continues `hasher`.
    pub fn start(mut hasher: Hasher) -> io::Result<BackgroundHasher> {
        let len = hasher.len();
        let (chunks, incoming) = channel::<(Vec<u8>, usize)>();
        let (give_back, spare) = channel();
        let thread = thread::Builder::new().name("sha256".into()).spawn(move || {
            for (chunk, len) in incoming {
                hasher.update(&chunk[..len]);
                // The other end is gone only once the stream is finished.
                let _ = give_back.send(chunk);
            }
            hasher
        })?;
        Ok(BackgroundHasher { chunks: Some(chunks), spare, with_thread: 0, len, thread: Some(thread) })
    }

    /// Hands a copy of `bytes` to the thread; waits only when every buffer is in use.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut buffer = self.spare();
        buffer.clear();
        buffer.extend_from_slice(bytes);
        self.hand_over(buffer, bytes.len());
    }

    /// A buffer the thread gave back, or a new one while it holds fewer than its share.
    fn spare(&mut self) -> Vec<u8> {
        let given_back = match self.spare.try_recv() {
            Ok(buffer) => Some(buffer),
            Err(_) if self.with_thread < BACKGROUND_BUFFERS => None,
            // The thread gives every buffer back unless it died, which `finish` reports.
            Err(_) => self.spare.recv().ok(),
        };
        match given_back {
            Some(buffer) => {
                self.with_thread -= 1;
                buffer
            }
            None => Vec::new(),
        }
    }

    /// Hands `buffer` to the thread, to hash its first `len` bytes.
    fn hand_over(&mut self, buffer: Vec<u8>, len: usize) {
        self.len += len as u64;
        if let Some(chunks) = &self.chunks
            && chunks.send((buffer, len)).is_ok()
        {
            self.with_thread += 1;
        }
    }

    /// Waits until every byte handed over is hashed, and returns the hasher.
    pub fn finish(mut self) -> Hasher {
        self.stop().expect("the hashing thread finished")
    }

    fn stop(&mut self) -> Option<Hasher> {
        drop(self.chunks.take());
        let thread = self.thread.take()?;
        Some(thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    }
}

impl Drop for BackgroundHasher {
    /// An abandoned stream still ends its thread.
    fn drop(&mut self) {
        if !thread::panicking() {
            self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[u8], expected_hex: &str) {
        let digest = Sha256Digest::of(input);
        assert_eq!(digest.to_string(), expected_hex);
        assert_eq!(expected_hex.parse::<Sha256Digest>().unwrap(), digest);
    }

    #[test]
    fn known_vectors() {
        check(b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        check(b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        let upper = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
        assert_eq!(upper.parse::<Sha256Digest>().unwrap(), Sha256Digest::of(b"abc"));
    }

    #[test]
    fn bad_hex_is_refused_with_the_input() {
        let err = "xyz".parse::<Sha256Digest>().unwrap_err();
        assert_eq!(err.to_string(), "invalid SHA-256 'xyz': expected 64 hex digits");
        assert!("g".repeat(64).parse::<Sha256Digest>().is_err());
    }

    #[test]
    fn hashing_in_pieces_matches_hashing_at_once() {
        let mut hasher = Hasher::new();
        hasher.update(b"a");
        hasher.update(b"bc");
        assert_eq!(hasher.len(), 3);
        assert_eq!(hasher.finish(), Sha256Digest::of(b"abc"));
    }

    #[test]
    fn hashing_in_the_background_matches_hashing_at_once() {
        let bytes: Vec<u8> = (0..3 * BACKGROUND_HASH_BYTES + 7).map(|i| (i * 31 % 251) as u8).collect();
        let mut first = Hasher::new();
        first.update(&bytes[..5]);
        let mut stream = StreamHasher::new(first, bytes.len() as u64 - 5);
        assert!(stream.is_background());
        for chunk in bytes[5..].chunks(64 * 1024 - 3) {
            stream.update(chunk);
        }
        let hasher = stream.into_hasher();
        assert_eq!(hasher.len(), bytes.len() as u64);
        assert_eq!(hasher.finish(), Sha256Digest::of(&bytes));
    }

    #[test]
    fn filled_buffers_are_hashed_up_to_their_length_and_reused() {
        let bytes: Vec<u8> = (0..3 * BACKGROUND_HASH_BYTES + 7).map(|i| (i * 17 % 253) as u8).collect();
        for (to_come, most_buffers) in [(0, 1), (bytes.len() as u64, BACKGROUND_BUFFERS + 1)] {
            let mut stream = StreamHasher::new(Hasher::new(), to_come);
            let mut seen = std::collections::HashSet::new();
            for chunk in bytes.chunks(100_000) {
                let mut buffer = stream.buffer(128 * 1024);
                assert_eq!(buffer.len(), 128 * 1024);
                buffer[..chunk.len()].copy_from_slice(chunk);
                seen.insert(buffer.as_ptr() as usize);
                stream.update_buffer(buffer, chunk.len());
            }
            assert!(seen.len() <= most_buffers, "{} buffers for {to_come} bytes to come", seen.len());
            assert_eq!(stream.len(), bytes.len() as u64);
            assert_eq!(stream.into_hasher().finish(), Sha256Digest::of(&bytes));
        }
    }

    #[test]
    fn a_stream_moves_to_the_background_midway() {
        let mut stream = StreamHasher::new(Hasher::new(), 0);
        stream.update(b"ab");
        stream.go_background();
        assert!(stream.is_background());
        stream.update(b"c");
        assert_eq!(stream.len(), 3);
        assert_eq!(stream.into_hasher().finish(), Sha256Digest::of(b"abc"));
    }

    #[test]
    fn a_short_stream_is_hashed_inline() {
        let mut stream = StreamHasher::new(Hasher::new(), 3);
        assert!(!stream.is_background());
        stream.update(b"abc");
        assert_eq!(stream.into_hasher().finish(), Sha256Digest::of(b"abc"));
    }
}
