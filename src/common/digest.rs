//! SHA-256 digests: computing them while bytes stream past (on a thread of their own when
//! there are many), and their lowercase hex form. Knows nothing of files or sockets; callers
//! feed it bytes.

use std::fmt;
use std::io;
use std::ops::Range;
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
    /// Lowercase hex in one write: the server names claims, partial files and records by it
    /// several times per stored file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 64];
        for (pair, byte) in text.chunks_exact_mut(2).zip(self.0) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0xf)];
        }
        f.write_str(std::str::from_utf8(&text).expect("hex digits are ASCII"))
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

/// Buffers a background hasher holds at most (queued, being hashed, or spare): with 64 KiB
/// chunks, 256 KiB per stream; with an upload's or a download's 1 MiB ones, 4 MiB.
const BACKGROUND_BUFFERS: usize = 4;

/// A running SHA-256 of a stream whose bytes the caller also moves somewhere (a socket, a
/// file). For a long stream the hashing runs on a second thread, so that on a machine with
/// two cores it costs the mover no time. Bytes reach it two ways: [`update`](Self::update)
/// copies a chunk into a buffer handed over a channel; [`buffer`](Self::buffer) lends a buffer
/// to read into, and [`hash_filled`](Self::hash_filled) hands it over as it is, without a copy.
/// Buffers come back for reuse, so memory stays bounded.
pub enum StreamHasher {
    /// Hashes in the caller's thread, keeping the buffer it lends.
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

    /// A buffer of at least `size` bytes to read the stream's next bytes into, then to give to
    /// [`hash_filled`](Self::hash_filled). It is zeroed only when first made; waits only when
    /// every buffer is in use.
    pub fn buffer(&mut self, size: usize) -> Vec<u8> {
        let mut buffer = match self {
            StreamHasher::Inline(_, spare) => std::mem::take(spare),
            StreamHasher::Background(background) => background.spare_buffer(),
        };
        if buffer.len() < size {
            buffer.resize(size, 0);
        }
        buffer
    }

    /// Hashes the first `len` bytes of `buffer`, one that [`buffer`](Self::buffer) lent.
    pub fn hash_filled(&mut self, buffer: Vec<u8>, len: usize) {
        self.hash_part(buffer, 0..len);
    }

    /// Hashes the bytes `part` of `buffer`, one that [`buffer`](Self::buffer) lent: a reader
    /// that needs its bytes at an aligned address fills them from past its start.
    pub fn hash_part(&mut self, buffer: Vec<u8>, part: Range<usize>) {
        match self {
            StreamHasher::Inline(hasher, spare) => {
                hasher.update(&buffer[part]);
                *spare = buffer;
            }
            StreamHasher::Background(background) => background.hand_over(buffer, part),
        }
    }

    /// A handle through which another thread hands this stream's buffers to its hashing
    /// thread, when it hashes on one. While a relay is in use, every buffer must go through it,
    /// in order, each counted here with [`relayed`](Self::relayed) when it is handed to that
    /// thread; the stream finishes only once every relay is dropped.
    pub fn relay(&self) -> Option<Relay> {
        match self {
            StreamHasher::Inline(..) => None,
            StreamHasher::Background(background) => background.chunks.clone().map(Relay),
        }
    }

    /// Counts the `len` bytes of a buffer this stream lent that goes to its hashing thread
    /// through a [`Relay`].
    pub fn relayed(&mut self, len: usize) {
        if let StreamHasher::Background(background) = self {
            background.len += len as u64;
            background.with_thread += 1;
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

/// A buffer and which of its bytes are the stream's.
type Filled = (Vec<u8>, Range<usize>);

/// Hands buffers of a [`StreamHasher`] to its hashing thread from another thread: one that
/// first writes them somewhere, for instance.
pub struct Relay(Sender<Filled>);

impl Relay {
    /// Hashes the bytes `part` of `buffer`, one its stream lent and counted as
    /// [`relayed`](StreamHasher::relayed).
    pub fn hash_part(&self, buffer: Vec<u8>, part: Range<usize>) {
        // The thread is gone only once its stream finished, which waits for every relay.
        let _ = self.0.send((buffer, part));
    }
}

/// A [`Hasher`] fed on a thread of its own.
pub struct BackgroundHasher {
    chunks: Option<Sender<Filled>>,
    spare: Receiver<Vec<u8>>,
    /// Buffers made so far, at most [`BACKGROUND_BUFFERS`] unless a lent one was dropped.
    buffers: usize,
    /// Buffers with the thread, not yet given back.
    with_thread: usize,
    /// Bytes handed over so far, those of the hasher it continues included.
    len: u64,
    thread: Option<JoinHandle<Hasher>>,
}

impl BackgroundHasher {
    /// Starts the thread that continues `hasher`.
    pub fn start(mut hasher: Hasher) -> io::Result<BackgroundHasher> {
        let len = hasher.len();
        let (chunks, incoming) = channel::<Filled>();
        let (give_back, spare) = channel();
        let thread = thread::Builder::new().name("sha256".into()).spawn(move || {
            for (chunk, part) in incoming {
                hasher.update(&chunk[part]);
                // The other end is gone only once the stream is finished.
                let _ = give_back.send(chunk);
            }
            hasher
        })?;
        Ok(BackgroundHasher {
            chunks: Some(chunks),
            spare,
            buffers: 0,
            with_thread: 0,
            len,
            thread: Some(thread),
        })
    }

    /// Hands a copy of `bytes` to the thread; waits only when every buffer is in use.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut buffer = self.spare_buffer();
        if buffer.len() < bytes.len() {
            buffer.resize(bytes.len(), 0);
        }
        buffer[..bytes.len()].copy_from_slice(bytes);
        self.hand_over(buffer, 0..bytes.len());
    }

    /// A buffer back from the thread, or a new one while fewer than [`BACKGROUND_BUFFERS`]
    /// exist (or none is with the thread: a lent one was dropped), or else the next one the
    /// thread gives back.
    fn spare_buffer(&mut self) -> Vec<u8> {
        let buffer = match self.spare.try_recv() {
            Ok(buffer) => buffer,
            Err(_) if self.buffers < BACKGROUND_BUFFERS || self.with_thread == 0 => {
                self.buffers += 1;
                return Vec::new();
            }
            // The thread gives every buffer back unless it died, which `finish` reports.
            Err(_) => self.spare.recv().unwrap_or_default(),
        };
        self.with_thread -= 1;
        buffer
    }

    /// Gives the thread the bytes `part` of `buffer` to hash.
    fn hand_over(&mut self, buffer: Vec<u8>, part: Range<usize>) {
        self.len += part.len() as u64;
        if let Some(chunks) = &self.chunks {
            self.with_thread += 1;
            let _ = chunks.send((buffer, part));
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

    /// Feeds `bytes` through buffers the stream lends, each filled with up to `size` bytes;
    /// every third buffer is dropped unhashed once, as a failed write drops it.
    fn hash_through_lent_buffers(mut stream: StreamHasher, bytes: &[u8], size: usize) -> Hasher {
        for (i, chunk) in bytes.chunks(size).enumerate() {
            if i % 3 == 1 {
                drop(stream.buffer(size));
            }
            let mut buffer = stream.buffer(size);
            assert!(buffer.len() >= size);
            buffer[..chunk.len()].copy_from_slice(chunk);
            stream.hash_filled(buffer, chunk.len());
        }
        stream.into_hasher()
    }

    #[test]
    fn lent_buffers_hash_what_was_read_into_them() {
        let bytes: Vec<u8> = (0..3 * BACKGROUND_HASH_BYTES + 7).map(|i| (i * 31 % 251) as u8).collect();
        let background = StreamHasher::new(Hasher::new(), bytes.len() as u64);
        assert!(matches!(background, StreamHasher::Background(_)));
        let hasher = hash_through_lent_buffers(background, &bytes, 100_000);
        assert_eq!(hasher.len(), bytes.len() as u64);
        assert_eq!(hasher.finish(), Sha256Digest::of(&bytes));
        let inline = StreamHasher::new(Hasher::new(), 10);
        assert!(matches!(inline, StreamHasher::Inline(..)));
        assert_eq!(
            hash_through_lent_buffers(inline, &bytes[..10_000], 999).finish(),
            Sha256Digest::of(&bytes[..10_000])
        );
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
                stream.hash_filled(buffer, chunk.len());
            }
            assert!(seen.len() <= most_buffers, "{} buffers for {to_come} bytes to come", seen.len());
            assert_eq!(stream.len(), bytes.len() as u64);
            assert_eq!(stream.into_hasher().finish(), Sha256Digest::of(&bytes));
        }
    }

    #[test]
    fn buffers_relayed_from_another_thread_are_hashed_in_order() {
        let bytes: Vec<u8> = (0..3 * BACKGROUND_HASH_BYTES + 7).map(|i| (i * 13 % 251) as u8).collect();
        let mut stream = StreamHasher::new(Hasher::new(), bytes.len() as u64);
        let relay = stream.relay().expect("a long stream hashes on a thread of its own");
        let (to_relay, relaying) = channel::<(Vec<u8>, usize)>();
        let relayer = thread::spawn(move || {
            for (buffer, len) in relaying {
                relay.hash_part(buffer, 0..len);
            }
        });
        for chunk in bytes.chunks(100_000) {
            let mut buffer = stream.buffer(chunk.len());
            buffer[..chunk.len()].copy_from_slice(chunk);
            stream.relayed(chunk.len());
            to_relay.send((buffer, chunk.len())).unwrap();
        }
        drop(to_relay);
        relayer.join().unwrap();
        assert_eq!(stream.len(), bytes.len() as u64);
        assert_eq!(stream.into_hasher().finish(), Sha256Digest::of(&bytes));
        assert!(StreamHasher::new(Hasher::new(), 3).relay().is_none(), "an inline stream has no thread");
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
