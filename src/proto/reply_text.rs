//! The small grammars inside replies that carry values: the passive address of `229` and
//! `227`, the `213` of `HASH`, and the `226` that ends an upload with its size and SHA-256.
//! Each has a render and a parse. Pure.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::common::digest::Sha256Digest;

/// The text of a 229 reply (RFC 2428 §3).
pub fn epsv_reply_text(port: u16) -> String {
    format!("Entering Extended Passive Mode (|||{port}|)")
}

/// The port in a 229 reply's text.
pub fn parse_epsv_reply(text: &str) -> Option<u16> {
    let start = text.find('(')?;
    let inner = &text[start + 1..text[start..].find(')')? + start];
    let delimiter = inner.chars().next()?;
    let parts: Vec<&str> = inner.split(delimiter).collect();
    match parts.as_slice() {
        ["", "", "", port, ""] => port.parse().ok(),
        _ => None,
    }
}

/// The text of a 227 reply (RFC 959 §4.1.2).
pub fn pasv_reply_text(address: SocketAddrV4) -> String {
    let [a, b, c, d] = address.ip().octets();
    let port = address.port();
    format!("Entering Passive Mode ({a},{b},{c},{d},{},{}).", port >> 8, port & 0xff)
}

/// The address in a 227 reply's text.
pub fn parse_pasv_reply(text: &str) -> Option<SocketAddrV4> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let numbers: Vec<u8> = text[start..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(6)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [a, b, c, d, p1, p2] = numbers.as_slice().try_into().ok()?;
    Some(SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), u16::from(p1) << 8 | u16::from(p2)))
}

/// A file's SHA-256 as the HASH draft reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashReply {
    pub digest: Sha256Digest,
    /// Bytes covered, which is the file's size (the range `0-<size-1>`; `0-0` for an empty file).
    pub size: u64,
    pub path: String,
}

impl fmt::Display for HashReply {
    /// The text of the 213 reply: `SHA-256 0-<last byte> <hex> <path>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.size.saturating_sub(1);
        write!(f, "SHA-256 0-{last} {} {}", self.digest, self.path)
    }
}

/// Parses the text of a 213 HASH reply into the digest, the range's last byte, and the path.
/// `0-0` stands for both an empty and a one-byte file; the size comes from elsewhere.
pub fn parse_hash_reply(text: &str) -> Option<(Sha256Digest, u64, String)> {
    let mut parts = text.splitn(4, ' ');
    if !parts.next()?.eq_ignore_ascii_case("SHA-256") {
        return None;
    }
    let (start, end) = parts.next()?.split_once('-')?;
    if start != "0" {
        return None;
    }
    let end: u64 = end.parse().ok()?;
    let digest = parts.next()?.parse().ok()?;
    let path = parts.next()?.to_owned();
    Some((digest, end, path))
}

/// What the `226` after a `STOR` or `APPE` says of the file stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReply {
    pub path: String,
    pub size: u64,
    /// SHA-256 of the bytes stored, as the server computed it while they arrived.
    pub digest: Sha256Digest,
}

impl fmt::Display for StoredReply {
    /// `Stored <path>, <size> bytes, SHA-256 <hex>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Stored {}, {} bytes, SHA-256 {}", self.path, self.size, self.digest)
    }
}

/// Parses the text of a `226` after an upload into its size and SHA-256. The path may hold
/// commas and spaces, so the fields are read from the end.
pub fn parse_stored_reply(text: &str) -> Option<(u64, Sha256Digest)> {
    let (rest, digest) = text.rsplit_once(" SHA-256 ")?;
    let digest = digest.parse().ok()?;
    let size = rest.strip_suffix(" bytes,")?.rsplit_once(", ")?.1.parse().ok()?;
    Some((size, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passive_replies_round_trip_rfc2428() {
        assert_eq!(parse_epsv_reply(&epsv_reply_text(50123)), Some(50123));
        assert_eq!(parse_epsv_reply("Entering Extended Passive Mode (!!!80!)"), Some(80));
        assert_eq!(parse_epsv_reply("nonsense"), None);
        let address: SocketAddrV4 = "127.0.0.1:50123".parse().unwrap();
        assert_eq!(parse_pasv_reply(&pasv_reply_text(address)), Some(address));
    }

    #[test]
    fn a_stored_reply_parses_back_whatever_its_path_holds() {
        for path in ["/c/a.bin", "/c/a, 7 bytes, b.bin", "/c/SHA-256 x"] {
            let reply =
                StoredReply { path: path.into(), size: 12345, digest: Sha256Digest::of(path.as_bytes()) };
            assert_eq!(parse_stored_reply(&reply.to_string()), Some((12345, reply.digest)));
        }
        assert_eq!(parse_stored_reply("Transfer complete"), None);
        assert_eq!(parse_stored_reply("Stored /c/a, many bytes, SHA-256 00"), None);
    }

    #[test]
    fn hash_reply_follows_the_draft() {
        let reply = HashReply { digest: Sha256Digest::of(b"abc"), size: 3, path: "a b".into() };
        let text = reply.to_string();
        assert_eq!(text, "SHA-256 0-2 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad a b");
        assert_eq!(parse_hash_reply(&text), Some((reply.digest, 2, "a b".into())));
    }
}
