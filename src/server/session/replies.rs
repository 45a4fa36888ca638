//! The words of the session that are not decisions: the one mapping from a [`StoreError`] to
//! the [`Refusal`] that answers it ([`store_refusal`]), the lines of `FEAT` and of `HELP`, and
//! the fixed texts more than one command sends. It sends nothing and decides nothing else.

use std::io;

use crate::proto::{Reason, Refusal};
use crate::server::store::StoreError;

/// The lines of FEAT (RFC 2389), each sent after one space.
pub const FEATURES: &[&str] = &[
    "EPSV",
    "PASV",
    "SIZE",
    "MDTM",
    "REST STREAM",
    "MLST type*;size*;modify*;perm*;X.sha256*;",
    "UTF8",
    "TVFS",
    "HASH SHA-256*",
];

/// The body of HELP (RFC 959 §4.1.3), each line sent as it is.
pub const HELP: &[&str] = &[
    " USER PASS SYST FEAT OPTS NOOP QUIT TYPE MODE STRU PWD CWD CDUP",
    " PASV EPSV LIST NLST MLSD MLST SIZE MDTM REST RETR STOR APPE MKD HASH ABOR ALLO HELP",
    " SITE MKSHARE [SECONDS] [DOWNLOADS=N]  create a share; the current folder becomes it",
    " SITE DIGEST <SHA256> <PATH>  declare the SHA-256 the next STOR of PATH must have",
    " SITE PARTIAL <PATH>          bytes kept of a cut upload, where REST/APPE resumes",
    " SITE SEAL                    make the current share read-only and visible",
    " SITE OWNER <CODE> <TOKEN>    write to an unsealed share from another connection",
    " SITE DELETE <CODE> <TOKEN>   delete a share at once",
    " SITE INFO [PATH]             expiry, state and totals of a share; downloads left",
];

/// Why a transfer in ASCII is refused (`RETR`, `STOR`, `APPE`).
pub fn binary_only() -> Refusal {
    Refusal::new(Reason::BinaryOnly, "File transfers need TYPE I (binary); ASCII mode could alter bytes")
}

/// The one place where store errors become refusals: each [`StoreError`] has its [`Reason`],
/// sent with the reason's usual code.
pub fn store_refusal(err: &StoreError) -> Refusal {
    let text = capitalise(&err.to_string());
    match err {
        // An expired or spent share answers exactly like one that never existed.
        StoreError::NotFound | StoreError::Gone => {
            Refusal::new(Reason::NotFound, "No such share or file (or it has expired)")
        }
        StoreError::Exists => Refusal::new(Reason::Exists, text),
        StoreError::Sealed => Refusal::new(Reason::Sealed, text),
        StoreError::IsAFolder => Refusal::new(Reason::IsAFolder, text),
        StoreError::NotAFolder => Refusal::new(Reason::NotAFolder, text),
        StoreError::DigestMismatch { .. } => Refusal::new(Reason::DigestMismatch, text),
        StoreError::BadName(_) => Refusal::new(Reason::BadName, text),
        StoreError::TooLarge { .. } => Refusal::new(Reason::TooLarge, text),
        StoreError::TooManyFiles(_) => Refusal::new(Reason::TooManyFiles, text),
        StoreError::DiskFull { .. } => Refusal::new(Reason::DiskFull, text),
        StoreError::Busy => Refusal::new(Reason::Busy, text),
        StoreError::BadOffset { .. } => Refusal::new(Reason::BadOffset, text),
        StoreError::Io(io) if io.kind() == io::ErrorKind::StorageFull => Refusal::new(Reason::DiskFull, text),
        StoreError::Io(_) => Refusal::new(Reason::StorageError, "Local storage error; nothing was stored"),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::digest::Sha256Digest;

    fn check(err: StoreError, code: u16, reason: Reason, text: &str) {
        let refusal = store_refusal(&err);
        assert_eq!((refusal.code, refusal.reason, refusal.text.as_str()), (code, reason, text), "{err:?}");
    }

    #[test]
    fn every_store_error_has_its_reason_and_code_rfc959_4_2_1() {
        check(StoreError::NotFound, 550, Reason::NotFound, "No such share or file (or it has expired)");
        check(StoreError::Gone, 550, Reason::NotFound, "No such share or file (or it has expired)");
        check(StoreError::Exists, 550, Reason::Exists, "Already exists");
        check(StoreError::Sealed, 550, Reason::Sealed, "Share is sealed and read-only");
        check(StoreError::IsAFolder, 550, Reason::IsAFolder, "Is a folder");
        check(StoreError::NotAFolder, 550, Reason::NotAFolder, "Not a folder");
        let (expected, actual) = (Sha256Digest::of(b"a"), Sha256Digest::of(b"b"));
        let mismatch = StoreError::DigestMismatch { expected, actual };
        let text = capitalise(&mismatch.to_string());
        check(mismatch, 550, Reason::DigestMismatch, &text);
        check(StoreError::BadName("empty".into()), 553, Reason::BadName, "Name not allowed: empty");
        let too_large = StoreError::TooLarge { what: "file", limit: 10 };
        check(
            too_large,
            552,
            Reason::TooLarge,
            "File would exceed the limit of 10 bytes; nothing was stored",
        );
        let many = StoreError::TooManyFiles(3);
        let text = capitalise(&many.to_string());
        check(many, 552, Reason::TooManyFiles, &text);
        let full = StoreError::DiskFull { floor: 1 };
        let text = capitalise(&full.to_string());
        check(full, 452, Reason::DiskFull, &text);
        let text = capitalise(&StoreError::Busy.to_string());
        check(StoreError::Busy, 450, Reason::Busy, &text);
        let offset = StoreError::BadOffset { offset: 9, kept: 4 };
        let text = capitalise(&offset.to_string());
        check(offset, 554, Reason::BadOffset, &text);
    }

    #[test]
    fn a_full_disk_is_disk_full_and_other_io_errors_say_nothing_of_the_disk() {
        let full = store_refusal(&StoreError::Io(io::ErrorKind::StorageFull.into()));
        assert_eq!((full.code, full.reason), (452, Reason::DiskFull));
        let other = store_refusal(&StoreError::Io(io::Error::other("/secret/path: EIO")));
        assert_eq!(
            (other.code, other.reason, other.text.as_str()),
            (451, Reason::StorageError, "Local storage error; nothing was stored")
        );
    }

    #[test]
    fn the_tag_ends_the_reply_line() {
        let reply = store_refusal(&StoreError::Sealed).to_reply().to_string();
        assert_eq!(reply, "550 Share is sealed and read-only [sealed]\r\n");
    }
}
