//! Names claimed in a share: under `claims/`, one name per recorded path, `f-<sha256>` for a
//! file and `d-<sha256>` for a folder (the SHA-256 of the path). A file's claim is created
//! exclusively before its record is appended, so of two servers that store one path, the
//! filesystem itself lets exactly one win, even when neither has read the other's record yet.
//! A claim is a hard link to the share's one empty `claims/anchor`: a link fails when its name
//! exists, as an `O_CREAT|O_EXCL` create does, and allocates no inode (ext4 spent most of a small
//! upload's CPU finding a free inode). Where the filesystem takes no more links, a claim is an
//! empty file of its own, created exclusively. Claims are made and looked at under the share's
//! lock; a claim is never removed once its record was appended. It never reads a file's
//! contents or size.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::{Result, Share, StoreError};
use crate::common::digest::Sha256Digest;

/// The empty file every claim is a hard link to; no claim's name (`f-`, `d-`) can be it.
const ANCHOR: &str = "anchor";

/// What a claim says a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Folder,
}

/// A file's claim, made for a commit; [`FileClaim::release`] takes it back when the record was
/// not appended after all.
#[derive(Debug)]
pub(super) struct FileClaim(PathBuf);

impl FileClaim {
    /// Takes the claim back: the record it was made for was not appended.
    pub(super) fn release(self) {
        let _ = fs::remove_file(&self.0);
    }
}

impl Share {
    fn claim_path(&self, kind: Kind, rel: &[String]) -> PathBuf {
        let prefix = match kind {
            Kind::File => "f",
            Kind::Folder => "d",
        };
        let key = Sha256Digest::of(rel.join("/").as_bytes());
        self.dir.join("claims").join(format!("{prefix}-{key}"))
    }

    /// Whether a claim exists. A name that does not exist is looked up at the filesystem's
    /// servers, not in a cache, on the filesystems the store runs on (see ARCHITECTURE.md).
    fn is_claimed(&self, kind: Kind, rel: &[String]) -> Result<bool> {
        match fs::symlink_metadata(self.claim_path(kind, rel)) {
            Ok(_) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Creates a claim; false when it already exists.
    fn create_claim(&self, kind: Kind, rel: &[String]) -> Result<bool> {
        let path = self.claim_path(kind, rel);
        let anchor = self.dir.join("claims").join(ANCHOR);
        let linked = match fs::hard_link(&anchor, &path) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                // The share's first claim, or a share made before claims were links.
                self.make_anchor(&anchor)?;
                fs::hard_link(&anchor, &path)
            }
            other => other,
        };
        let created = match linked {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            // Past the anchor's most links (65,000 on ext4), or no hard links on this
            // filesystem: the name is as exclusive when created as a file of its own.
            Err(_) => OpenOptions::new().write(true).create_new(true).open(&path).map(drop),
        };
        match created {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Creates `claims/` and its anchor, unless another commit or server already did.
    fn make_anchor(&self, anchor: &Path) -> Result<()> {
        fs::create_dir_all(self.dir.join("claims"))?;
        match OpenOptions::new().write(true).create_new(true).open(anchor) {
            Ok(_) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Refuses at once a path another server already stored or recorded as a folder, before any
    /// bytes come; [`Share::claim_file`] decides for sure at the commit.
    pub(super) fn check_unclaimed(&self, rel: &[String]) -> Result<()> {
        if self.is_claimed(Kind::File, rel)? {
            return Err(StoreError::Exists);
        }
        if self.is_claimed(Kind::Folder, rel)? {
            return Err(StoreError::IsAFolder);
        }
        Ok(())
    }

    /// Claims the parents of `rel` as folders; `NotAFolder` when one is a file.
    fn claim_parents(&self, rel: &[String]) -> Result<()> {
        for depth in 1..rel.len() {
            if self.is_claimed(Kind::File, &rel[..depth])? {
                return Err(StoreError::NotAFolder);
            }
            self.create_claim(Kind::Folder, &rel[..depth])?;
        }
        Ok(())
    }

    /// Claims `rel` for a file about to be recorded, under the share's lock. `Exists` when any
    /// server claimed it first, also one whose record this server has not read yet.
    pub(super) fn claim_file(&self, rel: &[String]) -> Result<FileClaim> {
        self.claim_parents(rel)?;
        if self.is_claimed(Kind::Folder, rel)? {
            return Err(StoreError::IsAFolder);
        }
        if !self.create_claim(Kind::File, rel)? {
            return Err(StoreError::Exists);
        }
        Ok(FileClaim(self.claim_path(Kind::File, rel)))
    }

    /// Claims `rel` for a folder about to be recorded (MKD), under the share's lock.
    pub(super) fn claim_folder(&self, rel: &[String]) -> Result<()> {
        self.claim_parents(rel)?;
        if self.is_claimed(Kind::File, rel)? || !self.create_claim(Kind::Folder, rel)? {
            return Err(StoreError::Exists);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::test_support::{rel, temp_store, upload};
    use crate::server::store::{Expected, Limits, Start, unix_now};

    #[test]
    fn a_path_is_stored_once_even_when_the_other_record_is_not_read_yet() {
        let (store, _root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        let mut mine = share.begin_upload(&rel("d/x"), Expected::default(), Start::Fresh).unwrap();
        mine.write_chunk(b"mine").unwrap();
        // Another server claimed d/x, and its record is not seen here yet.
        let theirs = share.claim_file(&rel("d/x")).unwrap();
        assert!(matches!(mine.commit(), Err(StoreError::Exists)));
        assert!(share.manifest().unwrap().lookup(&rel("d/x")).is_none(), "no record of the loser");
        assert!(matches!(share.check_unclaimed(&rel("d/x")), Err(StoreError::Exists)));
        assert!(matches!(share.claim_folder(&rel("d/x")), Err(StoreError::Exists)));
        assert!(matches!(share.claim_file(&rel("d/x/y")), Err(StoreError::NotAFolder)));
        assert!(matches!(share.claim_file(&rel("d")), Err(StoreError::IsAFolder)));
        // A claim taken back frees the name.
        theirs.release();
        upload(&share, "d/x", b"now").unwrap();
        assert!(matches!(upload(&share, "d/x", b"again"), Err(StoreError::Exists)));
    }

    #[cfg(unix)]
    #[test]
    fn claims_are_links_to_one_file_and_stay_exclusive_without_links() {
        use std::os::unix::fs::MetadataExt;
        let (store, _root) = temp_store(Limits::default());
        let (share, _) = store.create_share(unix_now() + 60, None).unwrap();
        for name in ["a/x", "a/y", "b"] {
            upload(&share, name, name.as_bytes()).unwrap();
        }
        let claims = share.dir.join("claims");
        let inodes: Vec<u64> =
            fs::read_dir(&claims).unwrap().map(|e| e.unwrap().metadata().unwrap().ino()).collect();
        // The anchor, and the claims of a/x, a/y, b and the folder a: one inode, no new one each.
        assert_eq!(inodes.len(), 5);
        assert!(inodes.iter().all(|&inode| inode == inodes[0]), "{inodes:?}");
        assert_eq!(fs::metadata(claims.join(ANCHOR)).unwrap().nlink(), 5);
        // Where no link can be made (here the anchor is a folder), a claim is a file of its own,
        // and a path is still stored once.
        let (other, _) = store.create_share(unix_now() + 60, None).unwrap();
        fs::create_dir_all(other.dir.join("claims").join(ANCHOR)).unwrap();
        upload(&other, "c/z", b"1").unwrap();
        assert!(matches!(upload(&other, "c/z", b"2"), Err(StoreError::Exists)));
        assert!(matches!(other.claim_file(&rel("c")), Err(StoreError::IsAFolder)));
        assert!(fs::metadata(other.claim_path(Kind::File, &rel("c/z"))).unwrap().is_file());
    }
}
