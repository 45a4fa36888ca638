//! Moving a stream in big chunks: the one read loop shared by uploads, downloads and hashing.

use std::io::{self, Read};

/// Bytes per read when the client moves or hashes file contents: small enough that a chunk is
/// still in the CPU's cache when it is hashed and sent on (measured: a 1 GiB upload's client
/// takes a quarter less CPU than with 256 KiB).
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Reads `source` to its end, handing each chunk to `each`. `expected` is how many bytes the
/// source should hold, so that a small file gets a small buffer; more still arrive whole. Read
/// errors go through `read_error`, so the caller can say which side failed.
pub fn for_each_chunk<E>(
    source: &mut impl Read,
    expected: u64,
    mut each: impl FnMut(&[u8]) -> Result<(), E>,
    read_error: impl FnOnce(io::Error) -> E,
) -> Result<(), E> {
    let mut buffer = vec![0u8; chunk_size(expected, CHUNK_BYTES)];
    loop {
        match source.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => each(&buffer[..n])?,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(read_error(err)),
        }
    }
}

/// Bytes per read when the client receives a download: on loopback a read of 512 KiB or more
/// costs the kernel half of what reads of 64 KiB or 256 KiB do for the same bytes (measured
/// receiving 1 GiB into tmpfs: 0.6 s of system time against 1.1 s).
pub const RECEIVE_BYTES: usize = 1 << 20;

/// Reads `source` to its end, each read into a buffer of the consumer's, without a copy in
/// between: `each` takes the buffer just filled with how many bytes the read put at its start,
/// and gives back the buffer for the next read (starting with `first`).
pub fn for_each_filled<E>(
    source: &mut impl Read,
    first: Vec<u8>,
    mut each: impl FnMut(Vec<u8>, usize) -> Result<Vec<u8>, E>,
    read_error: impl FnOnce(io::Error) -> E,
) -> Result<(), E> {
    let mut buffer = first;
    loop {
        match source.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => buffer = each(buffer, n)?,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(read_error(err)),
        }
    }
}

/// The buffer for `expected` bytes: room for all of them and the end of the stream in one read
/// each, up to `most`.
pub fn chunk_size(expected: u64, most: usize) -> usize {
    usize::try_from(expected.saturating_add(1)).unwrap_or(most).clamp(MIN_CHUNK_BYTES, most)
}

/// Smallest buffer, for sources expected to be empty or tiny.
const MIN_CHUNK_BYTES: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_arrives_in_order() {
        let input: Vec<u8> = (0..CHUNK_BYTES * 2 + 5).map(|i| i as u8).collect();
        let mut out = Vec::new();
        let result: Result<(), io::Error> = for_each_chunk(
            &mut input.as_slice(),
            10,
            |chunk| {
                out.extend_from_slice(chunk);
                Ok(())
            },
            |err| err,
        );
        result.unwrap();
        assert_eq!(out, input);
    }

    #[test]
    fn filled_buffers_carry_every_byte_in_order() {
        let input: Vec<u8> = (0..CHUNK_BYTES * 2 + 5).map(|i| i as u8).collect();
        let mut out = Vec::new();
        let mut lent = 0;
        let result: Result<(), io::Error> = for_each_filled(
            &mut input.as_slice(),
            vec![0; 1000],
            |buffer, n| {
                out.extend_from_slice(&buffer[..n]);
                lent += 1;
                Ok(vec![7; 999 + lent % 3])
            },
            |err| err,
        );
        result.unwrap();
        assert_eq!(out, input);
    }
}
