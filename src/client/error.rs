//! What can go wrong in the client, sorted the way a caller must branch on it: [`ClientError`],
//! its exit code, whether running the work again may help, and the one place that turns a
//! server's refusal into words for people, by its [`Reason`] and the [`Step`] the client was
//! at. Never by the server's words.

use std::fmt;

use crate::client::words::{count, printable};
use crate::proto::{Command, Reason, Refusal, Reply, SiteCommand};

/// What went wrong, sorted the way the exit code needs.
#[derive(Debug)]
pub enum ClientError {
    /// Bad arguments or an unusable local path (exit 1).
    Usage(String),
    /// The connection broke, or the server could not be reached (exit 2). Retried.
    Connection(String),
    /// The server did not answer within the timeout (exit 2). Retried, except on a first
    /// contact: a server that never answered is not waited for again.
    TimedOut(String),
    /// The server's name does not resolve (exit 2). Never retried.
    Unresolved(String),
    /// The server refused a command: the step the client was at, and the server's refusal,
    /// classified by `proto` (exit code by its reason).
    Server { step: Step, refusal: Refusal },
    /// A file or folder the user named is not in the share (exit 3).
    NotFound(String),
    /// Bytes that do not match their SHA-256 (exit 4).
    Integrity(String),
    /// The work would break a local limit, such as the room on the local disk (exit 5).
    Refused(String),
    /// A download would replace `path`, a file it did not create, and `more` others (exit 1).
    WouldReplace { path: std::path::PathBuf, more: usize },
    /// The user stopped the transfer (exit 1); nothing is retried.
    Cancelled,
    /// Already told to the user, who needs to hear it only once; the exit code stands.
    Told(u8),
}

impl ClientError {
    /// The process exit code for this error, as documented in `--help`.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Usage(_) | ClientError::Cancelled | ClientError::WouldReplace { .. } => 1,
            ClientError::Connection(_) | ClientError::TimedOut(_) | ClientError::Unresolved(_) => 2,
            ClientError::Server { step, refusal } => match (step, refusal.reason) {
                // The expiry or budget asked for is not one this server takes: fix the flag.
                (Step::CreateShare, Reason::Unsupported | Reason::BadArgument) => 1,
                // A path that names no share is a share that is not there.
                (_, Reason::NotFound | Reason::OutsideShare) => 3,
                (_, Reason::DigestMismatch) => 4,
                (
                    _,
                    Reason::Closing
                    | Reason::NoDataConnection
                    | Reason::TransferCut
                    | Reason::Busy
                    | Reason::StorageError,
                ) => 2,
                _ => 5,
            },
            ClientError::NotFound(_) => 3,
            ClientError::Integrity(_) => 4,
            ClientError::Refused(_) => 5,
            ClientError::Told(code) => *code,
        }
    }

    /// Why the server refused, when it did.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            ClientError::Server { refusal, .. } => Some(refusal.reason),
            _ => None,
        }
    }

    /// Whether the share or file is missing: named by the user and not listed, or not found
    /// by the server (or expired).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::NotFound(_))
            || matches!(self.reason(), Some(Reason::NotFound | Reason::OutsideShare))
    }

    /// Whether the connection itself failed (dropped, timed out), rather than the work.
    pub fn is_connection(&self) -> bool {
        matches!(self, ClientError::Connection(_) | ClientError::TimedOut(_))
    }

    /// Whether running the same work again may succeed: the connection failed, or the server
    /// refused for now (4yz, RFC 959 §4.2.1). A permanent refusal (5yz) never is. Neither is a
    /// limit or a full disk, which do not clear within the seconds retries take, nor a name
    /// that does not resolve.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Connection(_) | ClientError::TimedOut(_) => true,
            ClientError::Server { refusal, .. } => {
                refusal.is_transient() && !matches!(refusal.reason, Reason::LimitReached | Reason::DiskFull)
            }
            _ => false,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Usage(text)
            | ClientError::Connection(text)
            | ClientError::TimedOut(text)
            | ClientError::Unresolved(text)
            | ClientError::NotFound(text)
            | ClientError::Integrity(text)
            | ClientError::Refused(text) => f.write_str(text),
            ClientError::Server { step, refusal } => f.write_str(&refusal_words(step, refusal)),
            ClientError::WouldReplace { path, more } => {
                write!(f, "'{}' already exists, with other bytes", printable(&path.display().to_string()))?;
                if *more > 0 {
                    write!(f, " (and {} more)", count(*more as u64, "other file", "other files"))?;
                }
                f.write_str("; nothing was downloaded")
            }
            ClientError::Cancelled => f.write_str("cancelled"),
            ClientError::Told(code) => write!(f, "failed (exit {code})"),
        }
    }
}

impl std::error::Error for ClientError {}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A refusal from the server, typed once here: callers branch on its reason, never its words.
pub fn reply_error(step: Step, reply: &Reply) -> ClientError {
    ClientError::Server { step, refusal: Refusal::from_reply(reply) }
}

/// Where the client was when the server refused: what it asked, and of which path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Connecting and logging in.
    Connect,
    CreateShare,
    /// Proving it owns a share it uploads to.
    Claim,
    Delete,
    /// `SITE INFO` of a share or file.
    Info(String),
    /// Listing a folder.
    List(String),
    Hash(String),
    Store(String),
    Retrieve(String),
    MakeFolder(String),
    Seal,
    /// Any other command, by its verb (never its arguments, which may hold a secret).
    Other(String),
}

impl Step {
    /// The step a command is.
    pub fn of(command: &Command) -> Step {
        let path = |path: &Option<String>| path.clone().unwrap_or_default();
        match command {
            Command::User(_) | Command::Pass(_) | Command::Type(_) => Step::Connect,
            Command::Site(SiteCommand::Mkshare { .. }) => Step::CreateShare,
            Command::Site(SiteCommand::Owner(..)) => Step::Claim,
            Command::Site(SiteCommand::Delete(..)) => Step::Delete,
            Command::Site(SiteCommand::Info(target)) => Step::Info(path(target)),
            Command::Site(SiteCommand::Seal) => Step::Seal,
            Command::Site(SiteCommand::Digest(_, target) | SiteCommand::Partial(target))
            | Command::Stor(target)
            | Command::Appe(target) => Step::Store(target.clone()),
            Command::Mlsd(target) | Command::List(target) | Command::Nlst(target) => Step::List(path(target)),
            Command::Hash(target) => Step::Hash(target.clone()),
            Command::Retr(target) => Step::Retrieve(target.clone()),
            Command::Mkd(target) => Step::MakeFolder(target.clone()),
            other => Step::Other(other.to_string().split(' ').next().unwrap_or_default().to_owned()),
        }
    }
}

/// `/CODE/dir/file` as a person knows it: `dir/file`, or the share's code for the share itself.
fn in_share(path: &str) -> (String, Option<String>) {
    let trimmed = path.trim_matches('/');
    match trimmed.split_once('/') {
        Some((code, rest)) => (printable(code), Some(printable(rest))),
        None => (printable(trimmed), None),
    }
}

/// What a refusal means to a person, by its reason and the step the client was at: what
/// happened, to which file, and what to do. The one place that words a refusal.
pub fn refusal_words(step: &Step, refusal: &Refusal) -> String {
    let said = printable(&refusal.text);
    let path = match step {
        Step::Info(path)
        | Step::List(path)
        | Step::Hash(path)
        | Step::Store(path)
        | Step::Retrieve(path)
        | Step::MakeFolder(path) => Some(in_share(path)),
        _ => None,
    };
    let file = path.as_ref().and_then(|(_, file)| file.clone());
    let code = path.as_ref().map(|(code, _)| code.clone()).unwrap_or_default();
    match (refusal.reason, step) {
        (
            Reason::NotFound | Reason::OutsideShare,
            Step::Info(_) | Step::List(_) | Step::Hash(_) | Step::Retrieve(_),
        ) if file.is_none() => {
            format!("no share '{code}' on this server (or it has expired)")
        }
        (Reason::NotFound | Reason::OutsideShare, Step::Delete) => {
            "no such share on this server (or it has expired, or the owner token is wrong)".into()
        }
        (Reason::NotFound, Step::Info(_) | Step::List(_) | Step::Hash(_) | Step::Retrieve(_)) => format!(
            "'{}' is no longer in share '{code}': the share expired, or the file used up its downloads",
            file.unwrap_or_default()
        ),
        (Reason::Unsupported | Reason::BadArgument, Step::CreateShare) => {
            format!("the server does not take these share settings: {said}")
        }
        (Reason::TooLarge, Step::Store(_)) => {
            format!("'{}' is too large for this server: {said}", file.unwrap_or_default())
        }
        (Reason::TooLarge | Reason::TooManyFiles, _) => {
            format!("the share is too large for this server: {said}")
        }
        (Reason::DiskFull, _) => format!("the server is short of disk space; try again later ({said})"),
        (Reason::LimitReached, _) => format!("a limit of the server was reached; try again later ({said})"),
        (Reason::BadName, Step::Store(_) | Step::MakeFolder(_)) => {
            format!("the server does not take the name '{}': {said}", file.unwrap_or_default())
        }
        (Reason::DigestMismatch, _) => format!(
            "'{}': the bytes the server received do not match their SHA-256; nothing was kept",
            file.unwrap_or_default()
        ),
        (Reason::Exists, Step::Store(_) | Step::MakeFolder(_)) => {
            format!("'{}' is already in the share", file.unwrap_or_default())
        }
        (Reason::Sealed, _) => "the share is already published and takes no more files".into(),
        (Reason::Closing, _) => format!("the server closed the connection: {said}"),
        (Reason::TransferCut, _) => format!("the transfer of '{}' was cut ({said})", file.unwrap_or(code)),
        (Reason::NoDataConnection, _) => format!("no data connection could be opened ({said})"),
        (Reason::Busy, Step::Store(_)) => {
            format!("'{}' is being uploaded by another connection right now", file.unwrap_or_default())
        }
        (Reason::NotLoggedIn, _) => format!("the server refused an anonymous login: {said}"),
        (Reason::BadCommand | Reason::NotImplemented, _) => format!(
            "the server does not speak anonshare's protocol (it refused {}): is this an anonshare server?",
            step_words(step)
        ),
        _ => format!("the server refused {}: {said}", step_words(step)),
    }
}

/// A step, as the object of "the server refused ...".
fn step_words(step: &Step) -> String {
    let name = |path: &str| {
        let (code, file) = in_share(path);
        file.unwrap_or(code)
    };
    match step {
        Step::Connect => "the login".into(),
        Step::CreateShare => "to create a share".into(),
        Step::Claim => "the owner token".into(),
        Step::Delete => "to delete the share".into(),
        Step::Info(path) => format!("to describe '{}'", name(path)),
        Step::List(path) => format!("to list '{}'", name(path)),
        Step::Hash(path) => format!("the SHA-256 of '{}'", name(path)),
        Step::Store(path) => format!("to store '{}'", name(path)),
        Step::Retrieve(path) => format!("to send '{}'", name(path)),
        Step::MakeFolder(path) => format!("to make the folder '{}'", name(path)),
        Step::Seal => "to publish the share".into(),
        Step::Other(verb) => format!("the command {verb}"),
    }
}

/// "gave up after 1 retry", "after 3 retries".
pub fn gave_up(why: &str, retries: u32) -> ClientError {
    ClientError::Connection(format!("{why} (gave up after {})", count(retries as u64, "retry", "retries")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(step: Step, reason: Reason, text: &str) -> ClientError {
        reply_error(step, &Refusal::new(reason, text).to_reply())
    }

    #[test]
    fn refusals_sort_into_exit_codes_by_reason() {
        let code = |reason| error(Step::Other("X".into()), reason, "words").exit_code();
        assert_eq!(code(Reason::NotFound), 3);
        assert_eq!(code(Reason::DigestMismatch), 4);
        assert_eq!(code(Reason::TransferCut), 2);
        assert_eq!(code(Reason::Busy), 2);
        assert_eq!(code(Reason::Sealed), 5);
        assert_eq!(code(Reason::NotImplemented), 5);
        assert_eq!(code(Reason::LimitReached), 5);
        assert_eq!(error(Step::CreateShare, Reason::Unsupported, "x").exit_code(), 1, "fix the flag");
        assert_eq!(error(Step::CreateShare, Reason::BadArgument, "x").exit_code(), 1);
        // The words decide nothing.
        assert_eq!(error(Step::Other("X".into()), Reason::NotFound, "SHA-256 mismatch").exit_code(), 3);
        // Another server's reply, without a tag, by its code.
        assert_eq!(reply_error(Step::Other("X".into()), &Reply::new(550, "SHA-256 mismatch")).exit_code(), 3);
        assert_eq!(ClientError::Told(4).exit_code(), 4);
    }

    #[test]
    fn only_transient_refusals_are_retried_rfc959_4_2_1() {
        let transient = |refusal: Refusal| reply_error(Step::Seal, &refusal.to_reply()).is_transient();
        assert!(transient(Refusal::new(Reason::Busy, "x")));
        assert!(transient(Refusal::new(Reason::TransferCut, "x")));
        assert!(transient(Refusal::new(Reason::StorageError, "x")));
        assert!(!transient(Refusal::new(Reason::NotImplemented, "x")), "502 is permanent");
        assert!(!transient(Refusal::new(Reason::BadCommand, "x")), "500 is permanent");
        assert!(!transient(Refusal::new(Reason::Unspecified, "x").with_code(503)), "503 is permanent");
        assert!(!transient(Refusal::new(Reason::NotFound, "x")));
        assert!(
            !transient(Refusal::new(Reason::LimitReached, "x").with_code(421)),
            "a limit does not clear in seconds"
        );
        assert!(!transient(Refusal::new(Reason::DiskFull, "x")));
        assert!(ClientError::Connection("cut".into()).is_transient());
        assert!(ClientError::TimedOut("slow".into()).is_transient());
        assert!(!ClientError::Unresolved("no such host".into()).is_transient());
    }

    #[test]
    fn refusals_read_in_the_users_terms_without_protocol_words() {
        let code = "abcdefghijklmnopqrstuvwxyz";
        let words = |step, reason, text: &str| error(step, reason, text).to_string();
        assert_eq!(
            words(Step::Info(format!("/{code}")), Reason::NotFound, "No such share"),
            format!("no share '{code}' on this server (or it has expired)")
        );
        let stored =
            words(Step::Store(format!("/{code}/dir/big.iso")), Reason::TooLarge, "File too large (8G)");
        assert_eq!(stored, "'dir/big.iso' is too large for this server: File too large (8G)");
        let expiry = words(
            Step::CreateShare,
            Reason::Unsupported,
            "Expiry 31d is longer than this server allows (30d)",
        );
        assert!(expiry.contains("longer than this server allows"), "{expiry}");
        let named = words(Step::Store(format!("/{code}/a\nb")), Reason::BadName, "bad");
        assert!(!named.contains('\n') && named.contains("a\\nb"), "a newline is shown, not printed: {named}");
        for reason in [Reason::NotFound, Reason::TooLarge, Reason::Unsupported, Reason::Closing, Reason::Busy]
        {
            for step in [Step::Connect, Step::CreateShare, Step::Seal, Step::Retrieve(format!("/{code}/f"))] {
                let text = words(step.clone(), reason, "why");
                assert!(!text.contains("server said") && !text.contains("550"), "{step:?} {reason}: {text}");
            }
        }
    }

    #[test]
    fn retries_are_counted_in_words() {
        assert_eq!(gave_up("cut", 1).to_string(), "cut (gave up after 1 retry)");
        assert_eq!(gave_up("cut", 3).to_string(), "cut (gave up after 3 retries)");
    }
}
