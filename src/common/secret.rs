//! Share codes and owner tokens: 128-bit secrets from the operating system's random source,
//! written in lowercase base32 so they are safe in a URL and in a file name on any filesystem,
//! case-insensitive ones included.

use std::fmt;
use std::str::FromStr;

/// Random bytes in every secret.
pub const SECRET_BYTES: usize = 16;
/// Characters in the text form of a secret: ceil(128 / 5).
pub const SECRET_CHARS: usize = 26;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The capability that names a share: whoever holds it can list and download.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShareCode(String);

/// The second secret of a share: whoever holds it may change or delete the share.
#[derive(Clone, PartialEq, Eq)]
pub struct OwnerToken(String);

/// Text that is not a well-formed secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSecret(pub String);

impl fmt::Display for BadSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid share code '{}': expected {SECRET_CHARS} characters of a-z and 2-7", self.0)
    }
}

impl std::error::Error for BadSecret {}

/// Fresh random bytes from the OS, in base32.
fn random_secret() -> std::io::Result<String> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|err| std::io::Error::other(err.to_string()))?;
    Ok(base32(&bytes))
}

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = buffer << 8 | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[(buffer >> bits) as usize & 31] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[(buffer << (5 - bits)) as usize & 31] as char);
    }
    out
}

fn is_well_formed(text: &str) -> bool {
    text.len() == SECRET_CHARS && text.bytes().all(|b| ALPHABET.contains(&b))
}

impl ShareCode {
    pub fn generate() -> std::io::Result<ShareCode> {
        random_secret().map(ShareCode)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl OwnerToken {
    pub fn generate() -> std::io::Result<OwnerToken> {
        random_secret().map(OwnerToken)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ShareCode {
    type Err = BadSecret;

    /// Base32 is case-insensitive: a code typed in capitals names the same share.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.to_ascii_lowercase();
        if is_well_formed(&text) {
            Ok(ShareCode(text))
        } else {
            Err(BadSecret(text.chars().take(80).collect()))
        }
    }
}

impl FromStr for OwnerToken {
    type Err = BadSecret;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if is_well_formed(text) {
            Ok(OwnerToken(text.to_owned()))
        } else {
            Err(BadSecret(text.chars().take(80).collect()))
        }
    }
}

impl AsRef<str> for ShareCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for ShareCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ShareCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShareCode({})", self.0)
    }
}

impl fmt::Display for OwnerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OwnerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnerToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors_in_lowercase() {
        assert_eq!(base32(b"f"), "my");
        assert_eq!(base32(b"foobar"), "mzxw6ytboi");
    }

    #[test]
    fn generated_codes_are_well_formed_and_distinct() {
        let a = ShareCode::generate().unwrap();
        let b = ShareCode::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), SECRET_CHARS);
        assert_eq!(a.as_str().parse::<ShareCode>().unwrap(), a);
    }

    #[test]
    fn malformed_codes_are_refused() {
        let upper: ShareCode = "ABCDEFGHIJKLMNOPQRSTUVWXYZ".parse().unwrap();
        assert_eq!(upper.as_str(), "abcdefghijklmnopqrstuvwxyz");
        for bad in ["", "..", "abcdefghijklmnopqrstuvwxy1", "a/bcdefghijklmnopqrstuvwxy", "abc"] {
            assert!(bad.parse::<ShareCode>().is_err(), "{bad:?}");
        }
    }
}
