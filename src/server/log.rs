//! The server's event log: one line per event on stderr, each starting with an RFC 3339 UTC time
//! and then `key=value` fields (docs/LOG.md). A share code is a capability, so it never appears
//! in a line: [`ShareTag`] stands for it, and [`LoggedPath`] writes a path with the tag in place
//! of the code. Owner tokens are never logged at all.

use std::fmt;
use std::io::Write;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::common::digest::Sha256Digest;
use crate::server::vpath::VirtualPath;

/// Hex digits of a [`ShareTag`]: 32 bits tell a server's shares apart in a log, and give no
/// help to anyone guessing a 128-bit code.
const SHARE_TAG_HEX: usize = 8;

/// Writes one event line to stderr.
pub fn event(args: fmt::Arguments<'_>) {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let stamp = now.format(&Rfc3339).unwrap_or_default();
    let line = format!("{stamp} {args}\n");
    // One write per line keeps lines whole when threads log at once.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `log_event!("conn={} ...", id)`: formats and writes one event line.
#[macro_export]
macro_rules! log_event {
    ($($arg:tt)*) => { $crate::server::log::event(format_args!($($arg)*)) };
}

/// What the log writes for a share: the first hex digits of the SHA-256 of its code (in lower
/// case, as codes are compared), the same on every line about that share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareTag(String);

impl ShareTag {
    pub fn of(code: &(impl AsRef<str> + ?Sized)) -> ShareTag {
        let digest = Sha256Digest::of(code.as_ref().to_ascii_lowercase().as_bytes()).to_string();
        ShareTag(digest[..SHARE_TAG_HEX].to_owned())
    }
}

impl fmt::Display for ShareTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A virtual path as the log writes it: `share=<tag> path="<path inside the share>"`, or
/// `path="/"`.
pub struct LoggedPath<'p>(pub &'p VirtualPath);

impl fmt::Display for LoggedPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            VirtualPath::Root => f.write_str("path=\"/\""),
            VirtualPath::Share { code, rel } => {
                write!(f, "share={} path={:?}", ShareTag::of(code), format!("/{}", rel.join("/")))
            }
            // A name that is no code may still be a mistyped one: it is tagged too.
            VirtualPath::Nowhere { name, rel } => {
                write!(f, "share={} path={:?}", ShareTag::of(name), format!("/{}", rel.join("/")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_tag_is_short_stable_and_hides_the_code() {
        let code = "abcdefghijklmnopqrstuvwxyz";
        let tag = ShareTag::of(code).to_string();
        assert_eq!(tag.len(), SHARE_TAG_HEX);
        assert_eq!(ShareTag::of(&code.to_ascii_uppercase()).to_string(), tag, "codes compare without case");
        assert_ne!(ShareTag::of("abcdefghijklmnopqrstuvwxy2").to_string(), tag);
        assert!(!tag.contains(code));
    }

    #[test]
    fn a_logged_path_names_the_share_by_its_tag() {
        let code: crate::common::secret::ShareCode = "abcdefghijklmnopqrstuvwxyz".parse().unwrap();
        let path = VirtualPath::Share { code: code.clone(), rel: vec!["a b".into(), "c.txt".into()] };
        let shown = LoggedPath(&path).to_string();
        assert_eq!(shown, format!("share={} path=\"/a b/c.txt\"", ShareTag::of(&code)));
        assert!(!shown.contains(code.as_str()));
        assert_eq!(LoggedPath(&VirtualPath::Root).to_string(), "path=\"/\"");
    }
}
