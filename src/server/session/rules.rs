//! The session's decisions that need no socket and no disk: which commands may come before
//! login, which share a path names and who may write it, and what `REST`, `ALLO` and
//! `SITE DIGEST` leave for the next transfer. Each takes plain values and returns a decision or
//! the [`Refusal`] to send; the session does the I/O around them. Nothing here reads a socket,
//! opens a share or looks at the clock.

use std::collections::{HashMap, HashSet};

use crate::common::digest::Sha256Digest;
use crate::common::secret::ShareCode;
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

/// What a write makes: `STOR`/`APPE` a file, `MKD` a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    File,
    Folder,
}

/// The share code and the path inside it that a file or folder at `path` goes to. `/` and a
/// share's own folder hold no files of their own, and no write makes a share: that is
/// `SITE MKSHARE`'s, which the refusal names, since a stock client that tries `MKD CODE` (as
/// rclone does) shows it to its user. Under a name that is no share code, nothing is found.
pub fn write_target(path: &VirtualPath, what: Written) -> Result<(&ShareCode, &[String]), Refusal> {
    let text = match (path, what) {
        (VirtualPath::Share { code, rel }, _) if !rel.is_empty() => return Ok((code, rel)),
        (VirtualPath::Nowhere { rel, .. }, _) if !rel.is_empty() => {
            return Err(store_refusal(&StoreError::NotFound));
        }
        (_, Written::Folder) => {
            "MKD makes no share: shares are made with SITE MKSHARE; folders go inside one, as /<code>/<folder>"
                .to_owned()
        }
        (VirtualPath::Share { code, .. }, Written::File) => {
            format!("/{code} is a share, a folder: files go inside it, as /{code}/<name>")
        }
        (_, Written::File) => {
            "Files go inside a share: shares are made with SITE MKSHARE, then STOR /<code>/<name>".to_owned()
        }
    };
    Err(Refusal::new(Reason::OutsideShare, text))
}

/// The refusal of `RETR`, `SIZE`, `MDTM` or `HASH` of a folder. A share's own folder asked for
/// as a file is a share URL that lost its trailing slash (curl, wget and tnftp then fetch it
/// as a file): the reply says to add it, with the share's URL (`url`).
pub fn folder_asked_as_file(path: &VirtualPath, url: &str) -> Refusal {
    let text = match path {
        VirtualPath::Share { rel, .. } if rel.is_empty() => {
            format!("{path} is a share, a folder: add the trailing slash to list it, as {url}")
        }
        _ => format!("{path} is a folder: add a trailing slash to list it"),
    };
    Refusal::new(Reason::IsAFolder, text)
}

/// What a goodbye must not hide: the writes of this connection that failed and were not done
/// since, by the share it created that they were meant for, and the first command that named
/// a path outside every share (a client that lost track of its folder, as lftp does after
/// `SITE MKSHARE`, writes into nowhere). `QUIT` seals only a share with neither.
#[derive(Debug, Default)]
pub struct Mishaps {
    /// Per created share: the paths inside it whose write failed, with the words of the failure.
    failed: HashMap<ShareCode, Failed>,
    /// The first command that named a path outside every share, in words.
    astray: Option<String>,
    /// Most failed paths remembered per share (`--max-files-per-share`); past it, the share's
    /// failures are never undone.
    max_paths: usize,
}

#[derive(Debug, Default)]
struct Failed {
    paths: HashMap<Vec<String>, String>,
    overflowed: Option<String>,
}

/// What `QUIT` does with the shares a connection created.
#[derive(Debug, PartialEq, Eq)]
pub struct QuitPlan {
    /// Shares to seal.
    pub seal: Vec<ShareCode>,
    /// Shares left unsealed, each with why.
    pub hold: Vec<(ShareCode, String)>,
}

impl Mishaps {
    /// Nothing went wrong yet; at most `max_paths` failed paths are remembered per share.
    pub fn new(max_paths: usize) -> Mishaps {
        Mishaps { max_paths, ..Mishaps::default() }
    }

    /// A write to `path` failed (`what` says how). A share in `created` keeps it; a share the
    /// connection only joined (in `owned`) is its creator's business; a path outside every share
    /// the connection owns makes it astray.
    pub fn write_failed(
        &mut self,
        path: &VirtualPath,
        created: &HashSet<ShareCode>,
        owned: &HashSet<ShareCode>,
        what: String,
    ) {
        match path {
            VirtualPath::Share { code, rel } if created.contains(code) => {
                let failed = self.failed.entry(code.clone()).or_default();
                if failed.paths.len() < self.max_paths || failed.paths.contains_key(rel) {
                    failed.paths.insert(rel.clone(), what);
                } else {
                    failed.overflowed.get_or_insert(what);
                }
            }
            VirtualPath::Share { code, .. } if owned.contains(code) => {}
            _ => self.went_astray(what),
        }
    }

    /// A write to `path` succeeded: an earlier failure of it is made good.
    pub fn write_done(&mut self, path: &VirtualPath) {
        if let VirtualPath::Share { code, rel } = path
            && let Some(failed) = self.failed.get_mut(code)
        {
            failed.paths.remove(rel);
        }
    }

    /// A command named a path outside every share (`what` says which).
    pub fn went_astray(&mut self, what: String) {
        self.astray.get_or_insert(what);
    }

    /// The goodbye's plan for the shares in `created`: those with a failure not made good, or
    /// all of them once the connection went astray, stay unsealed.
    pub fn quit_plan(&self, created: &HashSet<ShareCode>) -> QuitPlan {
        let mut codes: Vec<&ShareCode> = created.iter().collect();
        codes.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let mut plan = QuitPlan { seal: Vec::new(), hold: Vec::new() };
        for code in codes {
            let failed = self.failed.get(code).and_then(|failed| {
                let mut paths: Vec<_> = failed.paths.iter().collect();
                paths.sort();
                paths.first().map(|(_, what)| what.to_string()).or_else(|| failed.overflowed.clone())
            });
            match failed.or_else(|| self.astray.clone()) {
                Some(why) => plan.hold.push((code.clone(), why)),
                None => plan.seal.push(code.clone()),
            }
        }
        plan
    }
}

/// The reply to a `QUIT` that left `held` unsealed (one share and why, and how many in all):
/// the uploader learns that nothing was published and how to finish.
pub fn held_refusal(held: &[(ShareCode, String)]) -> Option<Refusal> {
    let (code, why) = held.first()?;
    let more = match held.len() {
        1 => String::new(),
        n => format!(" (and {} more of this connection's shares)", n - 1),
    };
    let text = format!(
        "Share /{code} left unsealed and unseen, since {why}{more}; to publish it, SITE OWNER {code} \
         <token>, add what is missing, then SITE SEAL"
    );
    Some(Refusal::new(Reason::Unfinished, text))
}

/// The share the current folder is in, for a command about "this share" (`SITE SEAL`):
/// `550` at `/`, with `text` saying what to do; not found under a name that is no share code.
pub fn current_share<'p>(cwd: &'p VirtualPath, text: &str) -> Result<&'p ShareCode, Refusal> {
    match cwd {
        VirtualPath::Share { code, .. } => Ok(code),
        VirtualPath::Nowhere { .. } => Err(store_refusal(&StoreError::NotFound)),
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
    /// SHA-256 declared with `SITE DIGEST`, by the path it was declared for.
    declared: HashMap<VirtualPath, Sha256Digest>,
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
    pub fn declare(&mut self, path: VirtualPath, digest: Sha256Digest) -> Result<(), Refusal> {
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
    pub fn expected(&mut self, path: &VirtualPath, size: Option<u64>) -> Expected {
        Expected { sha256: self.declared.remove(path), size }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(line: &str) -> Command {
        crate::proto::parse_command(line.as_bytes()).unwrap()
    }

    const CODE: &str = "abcdefghijklmnopqrstuvwxyz";

    fn path(text: &str) -> VirtualPath {
        VirtualPath::resolve(&VirtualPath::Root, text)
    }

    fn share(rel: &[&str]) -> VirtualPath {
        path(&format!("/{CODE}/{}", rel.join("/")))
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
        let code: ShareCode = CODE.parse().unwrap();
        let target = share(&["folder", "a.txt"]);
        let rel = ["folder".to_string(), "a.txt".to_string()];
        assert_eq!(write_target(&target, Written::File), Ok((&code, &rel[..])));
        assert_eq!(write_target(&target, Written::Folder), Ok((&code, &rel[..])));
        for outside in [VirtualPath::Root, share(&[]), path("/abc")] {
            for what in [Written::File, Written::Folder] {
                let refusal = write_target(&outside, what).unwrap_err();
                assert_eq!((refusal.code, refusal.reason), (553, Reason::OutsideShare), "{outside}");
            }
        }
        let nowhere = write_target(&path("/abc/x"), Written::File).unwrap_err();
        assert_eq!((nowhere.code, nowhere.reason), (550, Reason::NotFound), "no share code, no share");
        assert_eq!(current_share(&share(&["d"]), "CWD first"), Ok(&code));
        assert_eq!(current_share(&path("/abc/d"), "CWD first").unwrap_err().reason, Reason::NotFound);
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
        pending.declare(share(&["a"]), digest(1)).unwrap();
        pending.declare(share(&["b"]), digest(2)).unwrap();
        assert_eq!(pending.expected(&share(&["c"]), Some(5)), Expected { sha256: None, size: Some(5) });
        assert_eq!(pending.expected(&share(&["a"]), None), Expected { sha256: Some(digest(1)), size: None });
        assert_eq!(pending.expected(&share(&["a"]), None).sha256, None, "used up by its upload");
        assert_eq!(pending.expected(&share(&["b"]), None).sha256, Some(digest(2)));
    }

    #[test]
    fn a_declared_digest_holds_whatever_case_the_code_was_typed_in() {
        let mut pending = Pending::new(4);
        pending.declare(path(&format!("/{}/a", CODE.to_ascii_uppercase())), digest(1)).unwrap();
        assert_eq!(pending.expected(&share(&["a"]), None).sha256, Some(digest(1)));
    }

    #[test]
    fn declared_digests_are_bounded() {
        let mut pending = Pending::new(2);
        pending.declare(share(&["a"]), digest(1)).unwrap();
        pending.declare(share(&["b"]), digest(2)).unwrap();
        let refusal = pending.declare(share(&["c"]), digest(3)).unwrap_err();
        assert_eq!((refusal.code, refusal.reason), (452, Reason::LimitReached));
        assert!(refusal.text.contains("limit 2"), "{}", refusal.text);
        assert!(
            pending.declare(share(&["a"]), digest(4)).is_err(),
            "at the limit, even a path declared before"
        );
        pending.expected(&share(&["a"]), None);
        assert!(pending.declare(share(&["c"]), digest(3)).is_ok(), "an upload makes room");
    }

    #[test]
    fn a_write_at_the_top_says_that_shares_are_made_with_site_mkshare() {
        // rclone's MKD CODE at the root: 553, which it shows, naming the way that works.
        let mkd = write_target(&path("/photos"), Written::Folder).unwrap_err();
        assert_eq!((mkd.code, mkd.reason), (553, Reason::OutsideShare));
        assert!(mkd.text.contains("SITE MKSHARE"), "{}", mkd.text);
        let stor = write_target(&VirtualPath::Root, Written::File).unwrap_err();
        assert!(stor.text.contains("SITE MKSHARE"), "{}", stor.text);
        let into_share = write_target(&share(&[]), Written::File).unwrap_err();
        assert_eq!(
            into_share.text,
            format!("/{CODE} is a share, a folder: files go inside it, as /{CODE}/<name>")
        );
    }

    #[test]
    fn a_folder_asked_for_as_a_file_says_to_add_the_slash() {
        let url = format!("ftp://h:21/{CODE}/");
        let refusal = folder_asked_as_file(&share(&[]), &url);
        assert_eq!((refusal.code, refusal.reason), (550, Reason::IsAFolder));
        assert_eq!(
            refusal.text,
            format!("/{CODE} is a share, a folder: add the trailing slash to list it, as {url}")
        );
        let sub = folder_asked_as_file(&share(&["d"]), &url);
        assert_eq!(sub.text, format!("/{CODE}/d is a folder: add a trailing slash to list it"));
    }

    fn codes(names: &[&str]) -> HashSet<ShareCode> {
        names.iter().map(|name| name.parse().unwrap()).collect()
    }

    #[test]
    fn quit_seals_only_a_share_whose_writes_all_succeeded() {
        const OTHER: &str = "bbcdefghijklmnopqrstuvwxyz";
        let created = codes(&[CODE, OTHER]);
        let code: ShareCode = CODE.parse().unwrap();
        let other: ShareCode = OTHER.parse().unwrap();
        let mut mishaps = Mishaps::new(2);
        assert_eq!(
            mishaps.quit_plan(&created),
            QuitPlan { seal: vec![code.clone(), other.clone()], hold: vec![] }
        );

        // A failed STOR holds its share until the same path is stored after all.
        mishaps.write_failed(&share(&["a"]), &created, &created, "STOR a failed".into());
        assert_eq!(mishaps.quit_plan(&created).hold, vec![(code.clone(), "STOR a failed".to_string())]);
        assert_eq!(mishaps.quit_plan(&created).seal, vec![other.clone()], "the other share is sealed");
        mishaps.write_done(&share(&["a"]));
        assert!(mishaps.quit_plan(&created).hold.is_empty(), "made good");

        // A share the connection only joined is its creator's business.
        let joined_code = "c".repeat(26);
        let owned = codes(&[CODE, OTHER, &joined_code]);
        let joined = path(&format!("/{joined_code}/x"));
        mishaps.write_failed(&joined, &created, &owned, "STOR x failed".into());
        assert!(mishaps.quit_plan(&created).hold.is_empty());

        // Past the bound, failures are never undone.
        for name in ["a", "b", "c"] {
            mishaps.write_failed(&share(&[name]), &created, &created, format!("STOR {name} failed"));
        }
        for name in ["a", "b", "c"] {
            mishaps.write_done(&share(&[name]));
        }
        assert_eq!(mishaps.quit_plan(&created).hold, vec![(code.clone(), "STOR c failed".to_string())]);

        // A path outside every share (lftp's CWD /nested) holds every share it created.
        let mut astray = Mishaps::new(2);
        astray.went_astray("CWD /nested named no share".into());
        astray.went_astray("a later one".into());
        let plan = astray.quit_plan(&created);
        assert!(plan.seal.is_empty());
        assert_eq!(plan.hold.len(), 2);
        assert!(plan.hold.iter().all(|(_, why)| why == "CWD /nested named no share"), "the first one");
        let mut outside = Mishaps::new(2);
        outside.write_failed(&path("/nested/x"), &created, &created, "STOR /nested/x".into());
        assert_eq!(outside.quit_plan(&created).hold.len(), 2);
        // So does a write into a share it does not own (another connection's, as lftp's extra
        // connections try): the file went nowhere.
        let mut elsewhere = Mishaps::new(2);
        elsewhere.write_failed(&joined, &created, &created, "STOR x failed".into());
        assert_eq!(elsewhere.quit_plan(&created).hold.len(), 2);

        let refusal = held_refusal(&plan.hold).unwrap();
        assert_eq!((refusal.code, refusal.reason), (550, Reason::Unfinished));
        assert!(refusal.text.contains("and 1 more of"), "{}", refusal.text);
        assert_eq!(held_refusal(&[]), None);
    }
}
