//! The session's decisions that need no socket and no disk: which commands may come before
//! login, which share a path names and who may write it, and what `REST`, `ALLO` and
//! `SITE DIGEST` leave for the next transfer. Each takes plain values and returns a decision or
//! the [`Refusal`] to send; the session does the I/O around them. Nothing here reads a socket,
//! opens a share or looks at the clock.

use std::collections::HashMap;

use crate::common::digest::Sha256Digest;
use crate::proto::{Command, Reason, Refusal};
use crate::server::session::replies::store_refusal;
use crate::server::store::{Expected, Start, StoreError};
use crate::server::vpath::VirtualPath;

/// Whether `command` may be sent before `USER` and `PASS` succeeded: logging in itself, leaving,
/// and asking what the server is and can do (RFC 959 §5.4, RFC 2389 §3).
pub fn allowed_before_login(command: &Command) -> bool {
    matches!(
        command,
        Command::User(_)
            | Command::Pass(_)
            | Command::Quit
            | Command::Feat
            | Command::Syst
            | Command::Opts(_)
            | Command::Noop
            | Command::Help
            | Command::Auth(_)
            | Command::Pbsz(_)
            | Command::Prot(_)
    )
}

/// The login gate: `command` runs, or is refused with `530` until the connection logged in.
pub fn login_gate(logged_in: bool, command: &Command) -> Result<(), Refusal> {
    if logged_in || allowed_before_login(command) {
        return Ok(());
    }
    Err(Refusal::new(Reason::NotLoggedIn, "Log in first: USER anonymous, then PASS with anything"))
}

/// What a connection may do with a share that exists and has not expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Unsealed and not owned here: the share is not found, as if it never existed.
    Hidden,
    /// Sealed: anyone may read it, nobody may write.
    Read,
    /// Unsealed and owned by this connection: it may read and add to it.
    Write,
}

/// The access to a share that is `sealed` or not, from a connection that `owns` it or not.
pub fn access(sealed: bool, owns: bool) -> Access {
    match (sealed, owns) {
        (true, _) => Access::Read,
        (false, true) => Access::Write,
        (false, false) => Access::Hidden,
    }
}

/// Whether a connection with `access` may add to the share: only an owner, and only until the
/// seal. A hidden share is refused as not found, never as someone else's.
pub fn write_access(access: Access) -> Result<(), Refusal> {
    match access {
        Access::Write => Ok(()),
        Access::Read => Err(store_refusal(&StoreError::Sealed)),
        Access::Hidden => Err(store_refusal(&StoreError::NotFound)),
    }
}

/// The share code and the path inside it that a file or folder at `path` goes to. `/` and a
/// share's own folder hold no files of their own: files go inside a share.
pub fn write_target(path: &VirtualPath) -> Result<(&str, &[String]), Refusal> {
    match path {
        VirtualPath::Share { code, rel } if !rel.is_empty() => Ok((code, rel)),
        _ => Err(Refusal::new(
            Reason::OutsideShare,
            "Files go inside a share: create one with SITE MKSHARE, then use /<code>/<name>",
        )),
    }
}

/// The share the current folder is in, for a command about "this share" (`SITE SEAL`):
/// `550` at `/`, with `text` saying what to do.
pub fn current_share<'p>(cwd: &'p VirtualPath, text: &str) -> Result<&'p str, Refusal> {
    match cwd {
        VirtualPath::Share { code, .. } => Ok(code),
        VirtualPath::Root => Err(Refusal::new(Reason::OutsideShare, text).with_code(550)),
    }
}

/// Which upload verb a transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadVerb {
    /// `STOR`: from byte 0, or from the `REST` offset.
    Stor,
    /// `APPE`: at the end of the bytes kept of a cut upload; `REST` does not apply.
    Appe,
}

/// What `REST`, `ALLO` and `SITE DIGEST` set aside for the transfers that follow. `REST` and
/// `ALLO` are for the next transfer only, taken whether it then runs or is refused; a declared
/// digest waits for the upload of its path that actually begins.
#[derive(Debug, Default)]
pub struct Pending {
    /// The `REST` offset for the next `RETR`, `STOR` or `APPE`.
    restart_at: u64,
    /// The size `ALLO` announced for the next upload.
    allocated: Option<u64>,
    /// SHA-256 declared with `SITE DIGEST`, by the path's full form.
    declared: HashMap<String, Sha256Digest>,
    /// Most digests waiting for their upload (`--max-pending-digests`).
    max_declared: usize,
}

impl Pending {
    /// Nothing pending; at most `max_declared` digests may wait at once.
    pub fn new(max_declared: usize) -> Pending {
        Pending { max_declared, ..Pending::default() }
    }

    /// `REST offset` (RFC 3659 §5): where the next transfer starts.
    pub fn restart(&mut self, offset: u64) {
        self.restart_at = offset;
    }

    /// `ALLO size` (RFC 959 §4.1.3): the size of the next upload.
    pub fn allocate(&mut self, size: u64) {
        self.allocated = Some(size);
    }

    /// `SITE DIGEST`: the SHA-256 the next upload of `path` must have. Refused with `452`
    /// while as many digests as allowed wait for their upload.
    pub fn declare(&mut self, path: String, digest: Sha256Digest) -> Result<(), Refusal> {
        let limit = self.max_declared;
        if self.declared.len() >= limit {
            let text = format!("Too many declared digests (limit {limit}); STOR some first");
            return Err(Refusal::new(Reason::LimitReached, text));
        }
        self.declared.insert(path, digest);
        Ok(())
    }

    /// `RETR`: the byte to start at, which the next transfer no longer sees.
    pub fn take_download_offset(&mut self) -> u64 {
        std::mem::take(&mut self.restart_at)
    }

    /// `STOR` or `APPE`: where the upload starts and the size `ALLO` announced for it. Both
    /// are used up now, even if the upload is then refused.
    pub fn take_upload(&mut self, verb: UploadVerb) -> (Start, Option<u64>) {
        let offset = std::mem::take(&mut self.restart_at);
        let start = match (verb, offset) {
            (UploadVerb::Appe, _) => Start::Append,
            (UploadVerb::Stor, 0) => Start::Fresh,
            (UploadVerb::Stor, offset) => Start::At(offset),
        };
        (start, self.allocated.take())
    }

    /// What the upload of `path` that begins now must be: the digest declared for it (used up)
    /// and the size taken with [`Pending::take_upload`].
    pub fn expected(&mut self, path: &str, size: Option<u64>) -> Expected {
        Expected { sha256: self.declared.remove(path), size }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(line: &str) -> Command {
        crate::proto::parse_command(line.as_bytes()).unwrap()
    }

    fn share(code: &str, rel: &[&str]) -> VirtualPath {
        VirtualPath::Share { code: code.into(), rel: rel.iter().map(|s| s.to_string()).collect() }
    }

    fn digest(byte: u8) -> Sha256Digest {
        Sha256Digest::of(&[byte])
    }

    #[test]
    fn only_login_and_greeting_commands_come_before_login_rfc959_5_4() {
        let check = |line: &str, allowed: bool| {
            assert_eq!(allowed_before_login(&command(line)), allowed, "{line}");
            assert_eq!(login_gate(false, &command(line)).is_ok(), allowed, "{line}");
            assert!(login_gate(true, &command(line)).is_ok(), "{line} after login");
        };
        for line in [
            "USER anonymous",
            "PASS x",
            "QUIT",
            "FEAT",
            "SYST",
            "OPTS UTF8 ON",
            "NOOP",
            "HELP",
            "AUTH TLS",
            "PBSZ 0",
            "PROT P",
        ] {
            check(line, true);
        }
        for line in ["RETR a", "STOR a", "LIST", "CWD /", "PWD", "EPSV", "TYPE I", "SITE MKSHARE", "REST 5"] {
            check(line, false);
        }
        let refusal = login_gate(false, &command("RETR a")).unwrap_err();
        assert_eq!((refusal.code, refusal.reason), (530, Reason::NotLoggedIn));
    }

    #[test]
    fn an_unsealed_share_is_seen_only_by_its_owners() {
        assert_eq!(access(false, false), Access::Hidden);
        assert_eq!(access(false, true), Access::Write);
        assert_eq!(access(true, false), Access::Read);
        assert_eq!(access(true, true), Access::Read, "sealing is for good, also for the owner");
        let reason = |access| write_access(access).map_err(|refusal| (refusal.code, refusal.reason));
        assert_eq!(reason(Access::Write), Ok(()));
        assert_eq!(reason(Access::Read), Err((550, Reason::Sealed)));
        assert_eq!(reason(Access::Hidden), Err((550, Reason::NotFound)), "hidden looks missing");
    }

    #[test]
    fn files_go_inside_a_share() {
        let path = share("abc", &["folder", "a.txt"]);
        assert_eq!(write_target(&path), Ok(("abc", &["folder".to_string(), "a.txt".to_string()][..])));
        for outside in [VirtualPath::Root, share("abc", &[])] {
            let refusal = write_target(&outside).unwrap_err();
            assert_eq!((refusal.code, refusal.reason), (553, Reason::OutsideShare), "{outside}");
        }
        assert_eq!(current_share(&share("abc", &["d"]), "CWD first"), Ok("abc"));
        let refusal = current_share(&VirtualPath::Root, "CWD first").unwrap_err();
        assert_eq!(
            (refusal.code, refusal.reason, refusal.text.as_str()),
            (550, Reason::OutsideShare, "CWD first")
        );
    }

    #[test]
    fn rest_applies_only_to_the_next_transfer_rfc3659_5() {
        let mut pending = Pending::new(4);
        pending.restart(100);
        assert_eq!(pending.take_download_offset(), 100);
        assert_eq!(pending.take_download_offset(), 0, "used up by the RETR");
        pending.restart(7);
        assert_eq!(pending.take_upload(UploadVerb::Stor), (Start::At(7), None));
        assert_eq!(pending.take_upload(UploadVerb::Stor), (Start::Fresh, None), "used up by the STOR");
        pending.restart(0);
        assert_eq!(pending.take_upload(UploadVerb::Stor), (Start::Fresh, None), "REST 0 is the start");
    }

    #[test]
    fn appe_resumes_at_the_kept_end_and_drops_rest_rfc959_4_1_3() {
        let mut pending = Pending::new(4);
        pending.restart(7);
        assert_eq!(pending.take_upload(UploadVerb::Appe), (Start::Append, None));
        assert_eq!(pending.take_download_offset(), 0, "APPE used the REST up");
    }

    #[test]
    fn allo_announces_the_next_upload_only_rfc959_4_1_3() {
        let mut pending = Pending::new(4);
        pending.allocate(4096);
        assert_eq!(pending.take_download_offset(), 0, "a RETR leaves the ALLO for the upload");
        assert_eq!(pending.take_upload(UploadVerb::Stor), (Start::Fresh, Some(4096)));
        assert_eq!(pending.take_upload(UploadVerb::Stor), (Start::Fresh, None));
        pending.allocate(10);
        pending.restart(3);
        assert_eq!(pending.take_upload(UploadVerb::Stor), (Start::At(3), Some(10)));
    }

    #[test]
    fn a_declared_digest_waits_for_the_upload_of_its_path() {
        let mut pending = Pending::new(4);
        pending.declare("/abc/a".into(), digest(1)).unwrap();
        pending.declare("/abc/b".into(), digest(2)).unwrap();
        assert_eq!(pending.expected("/abc/c", Some(5)), Expected { sha256: None, size: Some(5) });
        assert_eq!(pending.expected("/abc/a", None), Expected { sha256: Some(digest(1)), size: None });
        assert_eq!(pending.expected("/abc/a", None).sha256, None, "used up by its upload");
        assert_eq!(pending.expected("/abc/b", None).sha256, Some(digest(2)));
    }

    #[test]
    fn declared_digests_are_bounded() {
        let mut pending = Pending::new(2);
        pending.declare("/abc/a".into(), digest(1)).unwrap();
        pending.declare("/abc/b".into(), digest(2)).unwrap();
        let refusal = pending.declare("/abc/c".into(), digest(3)).unwrap_err();
        assert_eq!((refusal.code, refusal.reason), (452, Reason::LimitReached));
        assert!(refusal.text.contains("limit 2"), "{}", refusal.text);
        assert!(
            pending.declare("/abc/a".into(), digest(4)).is_err(),
            "at the limit, even a path declared before"
        );
        pending.expected("/abc/a", None);
        assert!(pending.declare("/abc/c".into(), digest(3)).is_ok(), "an upload makes room");
    }
}
