//! Why a command was refused, as both ends know it. The server builds every 4yz and 5yz reply
//! from a [`Refusal`]; the client turns every such reply back into one with
//! [`Refusal::from_reply`] and decides on its [`Reason`] and code alone, never on the words.
//!
//! On the wire a refusal is `CODE text [reason]`: the reply code of RFC 959, words for people,
//! and last the reason's tag in brackets. The tag is always the last word of the line, so text
//! before it (a path, say) cannot pass for it. A reply without a tag we know (another
//! server's) is classified by its code alone.

use std::fmt;

use crate::proto::Reply;

/// Every reason anonshare refuses a command for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No such share or file, or it expired, or a connection that does not own an unsealed
    /// share looked at it (550).
    NotFound,
    /// A file or folder of that name is already stored (550).
    Exists,
    /// The share is sealed and takes nothing more (550).
    Sealed,
    /// The path names a folder where a file was meant (550).
    IsAFolder,
    /// A part of the path is a file where a folder was meant (550).
    NotAFolder,
    /// The bytes received do not match the SHA-256 declared for them (550).
    DigestMismatch,
    /// The path is not inside a share, where files and folders go (553, or 550 for a command
    /// that needs a current share).
    OutsideShare,
    /// A name breaks the naming rules (553).
    BadName,
    /// A file or the share would outgrow its size limit (552).
    TooLarge,
    /// The share holds the most files and folders allowed (552).
    TooManyFiles,
    /// The server keeps a free-disk floor and the upload would go below it (452).
    DiskFull,
    /// Another upload of the same file is in progress (450).
    Busy,
    /// A resume starts at a byte the server did not keep (554).
    BadOffset,
    /// A per-address or per-connection limit: connections, shares per hour, share lookups,
    /// declared digests (421 or 452).
    LimitReached,
    /// Log in first (530).
    NotLoggedIn,
    /// File transfers need `TYPE I` (550).
    BinaryOnly,
    /// A line that is not a command (500).
    BadCommand,
    /// A missing or malformed argument (501).
    BadArgument,
    /// A verb anonshare does not run (502).
    NotImplemented,
    /// A parameter or value the server does not allow, such as too long an expiry (504).
    Unsupported,
    /// The data connection could not be opened (425).
    NoDataConnection,
    /// The transfer was cut or aborted (426).
    TransferCut,
    /// The server is closing the connection: idle, or shutting down (421).
    Closing,
    /// The server's own storage failed; nothing was stored (451).
    StorageError,
    /// `QUIT` left a share unsealed because a write on the connection failed and was not done
    /// since, or a command named a path outside every share: publishing it could hide a
    /// missing file (550).
    Unfinished,
    /// The server takes this command only over TLS: send `AUTH TLS` first (534, RFC 4217 §10).
    TlsRequired,
    /// A TLS handshake failed, or a protected data connection did not resume the TLS session
    /// of its control connection (522, RFC 4217 §10).
    TlsFailed,
    /// A refusal whose reason is not known: a reply from another server, or a tag from a newer
    /// one.
    Unspecified,
}

/// Each reason with its tag on the wire and its usual reply code.
const REASONS: &[(Reason, &str, u16)] = &[
    (Reason::NotFound, "not-found", 550),
    (Reason::Exists, "exists", 550),
    (Reason::Sealed, "sealed", 550),
    (Reason::IsAFolder, "is-a-folder", 550),
    (Reason::NotAFolder, "not-a-folder", 550),
    (Reason::DigestMismatch, "digest-mismatch", 550),
    (Reason::OutsideShare, "outside-share", 553),
    (Reason::BadName, "bad-name", 553),
    (Reason::TooLarge, "too-large", 552),
    (Reason::TooManyFiles, "too-many-files", 552),
    (Reason::DiskFull, "disk-full", 452),
    (Reason::Busy, "busy", 450),
    (Reason::BadOffset, "bad-offset", 554),
    (Reason::LimitReached, "limit", 452),
    (Reason::NotLoggedIn, "not-logged-in", 530),
    (Reason::BinaryOnly, "binary-only", 550),
    (Reason::BadCommand, "bad-command", 500),
    (Reason::BadArgument, "bad-argument", 501),
    (Reason::NotImplemented, "not-implemented", 502),
    (Reason::Unsupported, "unsupported", 504),
    (Reason::NoDataConnection, "no-data-connection", 425),
    (Reason::TransferCut, "transfer-cut", 426),
    (Reason::Closing, "closing", 421),
    (Reason::StorageError, "storage-error", 451),
    (Reason::Unfinished, "unfinished", 550),
    (Reason::TlsRequired, "tls-required", 534),
    (Reason::TlsFailed, "tls-failed", 522),
    (Reason::Unspecified, "unspecified", 550),
];

impl Reason {
    /// The tag that names this reason on the wire.
    pub fn tag(self) -> &'static str {
        REASONS.iter().find(|(reason, ..)| *reason == self).map_or("unspecified", |(_, tag, _)| tag)
    }

    /// The reply code this reason is usually sent with.
    pub fn code(self) -> u16 {
        REASONS.iter().find(|(reason, ..)| *reason == self).map_or(550, |(.., code)| *code)
    }

    /// The reason a tag names, if it is one we know.
    pub fn from_tag(tag: &str) -> Option<Reason> {
        REASONS.iter().find(|(_, known, _)| *known == tag).map(|(reason, ..)| *reason)
    }

    /// What a refusal with this code most likely means when it carries no tag (RFC 959 §4.2.1).
    pub fn of_code(code: u16) -> Reason {
        match code {
            421 => Reason::Closing,
            425 => Reason::NoDataConnection,
            426 => Reason::TransferCut,
            450 => Reason::Busy,
            451 => Reason::StorageError,
            452 => Reason::DiskFull,
            500 => Reason::BadCommand,
            501 => Reason::BadArgument,
            502 => Reason::NotImplemented,
            504 | 536 => Reason::Unsupported,
            522 => Reason::TlsFailed,
            534 => Reason::TlsRequired,
            530 => Reason::NotLoggedIn,
            550 => Reason::NotFound,
            552 => Reason::TooLarge,
            553 => Reason::BadName,
            554 => Reason::BadOffset,
            _ => Reason::Unspecified,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// A refused command: the reply code, the reason, and words for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A 4yz (transient) or 5yz (permanent) reply code.
    pub code: u16,
    pub reason: Reason,
    /// What happened, for people; never decided on.
    pub text: String,
}

impl Refusal {
    /// A refusal with the reason's usual code.
    pub fn new(reason: Reason, text: impl Into<String>) -> Refusal {
        Refusal { code: reason.code(), reason, text: text.into() }
    }

    /// The same refusal sent with another code, as when a limit closes the connection (421).
    pub fn with_code(mut self, code: u16) -> Refusal {
        self.code = code;
        self
    }

    /// 4yz: the same command may succeed later (RFC 959 §4.2.1), so a client may retry it.
    /// 5yz never.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// The reply that carries this refusal.
    pub fn to_reply(&self) -> Reply {
        Reply::new(self.code, format!("{} [{}]", self.text, self.reason.tag()))
    }

    /// Reads a refusal back from a 4yz or 5yz reply: the reason from its tag, or from its code
    /// when it has no tag we know. The text is the first line without the tag.
    pub fn from_reply(reply: &Reply) -> Refusal {
        let first = reply.lines.first().map(String::as_str).unwrap_or_default();
        let tagged = first
            .strip_suffix(']')
            .and_then(|rest| rest.rsplit_once(" ["))
            .and_then(|(text, tag)| Reason::from_tag(tag).map(|reason| (text, reason)));
        let (text, reason) = tagged.unwrap_or((first, Reason::of_code(reply.code)));
        Refusal { code: reply.code, reason, text: text.to_owned() }
    }
}

impl fmt::Display for Refusal {
    /// The words for people, as the server wrote them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(refusal: Refusal) {
        let wire = refusal.to_reply().to_string();
        let mut parser = crate::proto::ReplyParser::new();
        let reply = parser.feed(wire.trim_end_matches("\r\n")).unwrap().unwrap();
        assert_eq!(Refusal::from_reply(&reply), refusal, "{wire}");
    }

    #[test]
    fn every_reason_round_trips_through_a_reply() {
        for &(reason, tag, code) in REASONS {
            assert_eq!(Reason::from_tag(tag), Some(reason));
            assert_eq!((reason.tag(), reason.code()), (tag, code));
            round_trip(Refusal::new(reason, format!("words about {tag}")));
        }
        round_trip(Refusal::new(Reason::LimitReached, "too many connections").with_code(421));
    }

    #[test]
    fn tags_are_unique() {
        for (i, (_, tag, _)) in REASONS.iter().enumerate() {
            assert!(REASONS[i + 1..].iter().all(|(_, other, _)| other != tag), "{tag}");
        }
    }

    #[test]
    fn only_the_last_word_is_the_tag() {
        let refusal = Refusal::new(Reason::Exists, "/code/folder [sealed] already exists");
        round_trip(refusal.clone());
        let reply = Reply::new(550, "/code/a [exists] is not here");
        assert_eq!(Refusal::from_reply(&reply).reason, Reason::NotFound, "no tag at the end: by code");
    }

    #[test]
    fn another_servers_reply_is_classified_by_its_code_rfc959_4_2_1() {
        let check = |code, reason| {
            let refusal = Refusal::from_reply(&Reply::new(code, "Already exists, sealed, SHA-256 mismatch"));
            assert_eq!(
                (refusal.reason, refusal.text.as_str()),
                (reason, "Already exists, sealed, SHA-256 mismatch")
            );
        };
        check(550, Reason::NotFound);
        check(553, Reason::BadName);
        check(452, Reason::DiskFull);
        check(502, Reason::NotImplemented);
        check(599, Reason::Unspecified);
        check(522, Reason::TlsFailed);
        check(534, Reason::TlsRequired);
        let unknown_tag = Refusal::from_reply(&Reply::new(550, "gone [vanished]"));
        assert_eq!((unknown_tag.reason, unknown_tag.text.as_str()), (Reason::NotFound, "gone [vanished]"));
    }

    #[test]
    fn four_hundreds_are_transient_five_hundreds_permanent_rfc959_4_2_1() {
        assert!(Refusal::new(Reason::Busy, "x").is_transient());
        assert!(Refusal::new(Reason::DiskFull, "x").is_transient());
        assert!(!Refusal::new(Reason::NotImplemented, "x").is_transient());
        assert!(!Refusal::new(Reason::NotFound, "x").is_transient());
    }
}
