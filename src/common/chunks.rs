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
}
