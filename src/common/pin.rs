//! Certificate pins, as both ends write them: a [`Pin`] is the SHA-256 of a certificate's
//! SubjectPublicKeyInfo, printed `sha256//BASE64` as curl's `--pinnedpubkey` takes it, and
//! [`fingerprint`] is the SHA-256 of the whole certificate in colon-separated hex. Pure: it reads
//! DER bytes and touches no socket or file.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// What a pin starts with when written out.
const PREFIX: &str = "sha256//";
/// The standard base64 alphabet (RFC 4648 §4).
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The SHA-256 of a certificate's public key (its DER SubjectPublicKeyInfo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin([u8; 32]);

impl Pin {
    /// The pin of a DER SubjectPublicKeyInfo.
    pub fn of_public_key(spki: &[u8]) -> Pin {
        Pin(Sha256::digest(spki).into())
    }

    /// The pin of a DER X.509 certificate, or `None` when it is not one.
    pub fn of_certificate(der: &[u8]) -> Option<Pin> {
        public_key_info(der).map(Pin::of_public_key)
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", base64(&self.0))
    }
}

/// Why a pin did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPin(pub String);

impl fmt::Display for BadPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid pin '{}': expected sha256// and 44 base64 characters", self.0)
    }
}

impl std::error::Error for BadPin {}

impl FromStr for Pin {
    type Err = BadPin;

    /// `sha256//BASE64`, as printed.
    fn from_str(text: &str) -> Result<Pin, BadPin> {
        let bad = || BadPin(text.chars().take(64).collect());
        let encoded = text.strip_prefix(PREFIX).ok_or_else(bad)?;
        let bytes = unbase64(encoded).ok_or_else(bad)?;
        Ok(Pin(bytes.try_into().map_err(|_| bad())?))
    }
}

/// The SHA-256 of a whole DER certificate, as `AB:CD:...` (the form `openssl x509 -fingerprint`
/// prints).
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|byte| format!("{byte:02X}")).collect::<Vec<_>>().join(":")
}

fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [group[0], *group.get(1).unwrap_or(&0), *group.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(BASE64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unbase64(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for group in text.as_bytes().chunks(4) {
        let padding = group.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 || group[..4 - padding].contains(&b'=') {
            return None;
        }
        let mut n = 0u32;
        for &c in group {
            let value = if c == b'=' { 0 } else { BASE64.iter().position(|&a| a == c)? as u32 };
            n = (n << 6) | value;
        }
        out.extend_from_slice(&n.to_be_bytes()[1..4 - padding]);
    }
    Some(out)
}

/// One DER element: its tag, its contents, and the whole element with its header.
struct Element<'a> {
    tag: u8,
    contents: &'a [u8],
    whole: &'a [u8],
}

/// Splits the DER element at the start of `input` from what follows it.
fn element(input: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count].iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
        (length, &rest[count..])
    };
    if rest.len() < length {
        return None;
    }
    let header = input.len() - rest.len();
    let element = Element { tag, contents: &rest[..length], whole: &input[..header + length] };
    Some((element, &rest[length..]))
}

/// The DER SubjectPublicKeyInfo of a certificate (RFC 5280 §4.1): the seventh field of the
/// TBSCertificate, or the sixth when the version is left out.
fn public_key_info(certificate: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const VERSION: u8 = 0xa0;
    let (outer, _) = element(certificate)?;
    let (tbs, _) = element(outer.contents)?;
    if outer.tag != SEQUENCE || tbs.tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs.contents;
    let (first, after) = element(rest)?;
    if first.tag == VERSION {
        rest = after;
    }
    // serial, signature algorithm, issuer, validity, subject
    for _ in 0..5 {
        rest = element(rest)?.1;
    }
    let (spki, _) = element(rest)?;
    (spki.tag == SEQUENCE).then_some(spki.whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_test_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
            assert_eq!(unbase64(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(unbase64("Zm9"), None);
        assert_eq!(unbase64("Z=9v"), None);
        assert_eq!(unbase64("Zm9*"), None);
    }

    #[test]
    fn a_pin_round_trips_through_its_text() {
        let pin = Pin::of_public_key(b"key");
        let text = pin.to_string();
        assert!(text.starts_with("sha256//") && text.len() == 8 + 44, "{text}");
        assert_eq!(text.parse::<Pin>().unwrap(), pin);
        assert!("sha256//abc".parse::<Pin>().is_err());
        assert!(base64(&[0; 32]).parse::<Pin>().is_err(), "the prefix is required");
    }

    #[test]
    fn the_public_key_is_found_in_a_certificate() {
        // SEQUENCE { SEQUENCE { [0] v3, serial, alg, issuer, validity, subject, SPKI }, ... }
        let field = |tag: u8, body: &[u8]| [&[tag, body.len() as u8][..], body].concat();
        let spki = field(0x30, b"public key");
        let tbs = [
            field(0xa0, &field(0x02, &[2])),
            field(0x02, &[7]),
            field(0x30, b"alg"),
            field(0x30, b"issuer"),
            field(0x30, b"validity"),
            field(0x30, b"subject"),
            spki.clone(),
            field(0xa3, b"extensions"),
        ]
        .concat();
        let certificate = field(0x30, &[field(0x30, &tbs), field(0x30, b"sig-alg")].concat());
        assert_eq!(public_key_info(&certificate), Some(&spki[..]));
        assert_eq!(Pin::of_certificate(&certificate), Some(Pin::of_public_key(&spki)));
        assert_eq!(Pin::of_certificate(&certificate[..20]), None, "a cut certificate has no pin");
        assert_eq!(Pin::of_certificate(b""), None);
    }
}
