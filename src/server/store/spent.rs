//! Which budgeted files and shares are spent. The download that uses a file's budget up makes
//! the file's spent mark, exclusively, and only its maker then appends to the share's spent
//! count (`budget/spent.<j>`, numbered without gaps, each holding the file's size). So a share
//! is known spent from a count of names rather than by asking the ledger about every file; a
//! crash between the mark and the count leaves the count short, never long, and the sweep's
//! check of every file ([`Store::is_spent_exactly`]) finds such a share.

use std::io;
use std::path::{Path, PathBuf};

use super::ledger::{Names, append, count, exists, read_number};
use super::manifest::{Checked, FileEntry, SpentTally};
use super::{Result, Share, ShareMeta, Store, StoreError};
use crate::common::secret::ShareCode;

impl Share {
    /// Marks `entry` spent, once, and counts it among the share's spent files: whether this
    /// call marked it. The share's mark that some file may be spent comes first, so a file
    /// marked or counted spent is never in a share without it.
    pub(super) fn mark_spent(&self, entry: &FileEntry) -> Result<bool> {
        let names = Names::of(self, &entry.place);
        let share_budget = self.dir.join("budget");
        match names.link_to_anchor(&some_spent_mark(&share_budget)) {
            Err(StoreError::Io(err)) if err.kind() == io::ErrorKind::AlreadyExists => {}
            other => other?,
        }
        match names.link_to_anchor(&names.spent_mark()) {
            Err(StoreError::Io(err)) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            other => other?,
        }
        append(|j| spent_count(&share_budget, j), &entry.size.to_string())?;
        Ok(true)
    }

    /// Whether a file of the share may be spent: it has the mark that comes before any file's,
    /// or a spent count (servers before the mark made only the count). Without either no file
    /// is spent, but one whose last download a crash kept from being marked (its next download
    /// refused marks it).
    pub(super) fn may_have_spent(&self) -> bool {
        let dir = self.dir.join("budget");
        exists(&some_spent_mark(&dir)) || exists(&spent_count(&dir, 0))
    }

    /// The files the share's spent count names, and their bytes: the tally kept with the
    /// cached manifest, brought up to date by reading only the counted names made since.
    pub(super) fn spent_tally(&self) -> Result<SpentTally> {
        let dir = self.dir.join("budget");
        let marks = count(|j| spent_count(&dir, j))?;
        let mut tally = self.cached(|cached| cached.spent)?;
        while tally.marks < marks {
            // Read until one cannot be: the rest is read next time.
            let Ok(bytes) = read_number(&spent_count(&dir, tally.marks)) else { break };
            tally = SpentTally { marks: tally.marks + 1, files: tally.files + 1, bytes: tally.bytes + bytes };
        }
        self.cached(|cached| {
            if cached.spent.marks < tally.marks {
                cached.spent = tally;
            }
        })?;
        Ok(tally)
    }
}

/// The `j`-th spent file of a share, under its `budget/`: the file's size.
fn spent_count(dir: &Path, j: u64) -> PathBuf {
    dir.join(format!("spent.{j}"))
}

/// Made, under its `budget/`, before the first file of a share is marked spent.
fn some_spent_mark(dir: &Path) -> PathBuf {
    dir.join("spent.some")
}

impl Store {
    /// Whether a sealed share with a download budget has had all its files downloaded up to it.
    /// A share with no files has spent nothing: it stays until it expires. The share's spent
    /// count decides first, in a few name lookups: short of its files, the share is not known
    /// spent here (the sweep's [`Store::is_spent_exactly`] finds one whose count a crash left
    /// short). When it reaches them, every file is checked, as the sweep does, and the answer
    /// kept until the count or the files change: the count alone could name a file that a
    /// stale manifest does not show yet.
    pub(super) fn is_spent(&self, name: &str, meta: &ShareMeta) -> bool {
        if meta.downloads.is_none() || !meta.sealed {
            return false;
        }
        let budget = self.shares_dir().join(name).join("budget");
        let counted = count(|j| spent_count(&budget, j));
        // No file counted spent, none ever was: a share judged spent had its count then.
        if let Ok(0) = counted {
            return false;
        }
        let Some(share) = self.spendable(name, meta) else {
            return false;
        };
        let known = share.cached(|cached| (cached.checked, cached.records.files.len()));
        match (counted, known) {
            (_, Ok((Checked::AllSpent, _))) => true,
            (Ok(spent), Ok((checked, files)))
                if files > 0 && spent >= files as u64 && checked != (Checked::Unspent { spent, files }) =>
            {
                let verdict = match share.every_file_spent() {
                    true => Checked::AllSpent,
                    false => Checked::Unspent { spent, files },
                };
                let _ = share.cached(|cached| cached.checked = verdict);
                verdict == Checked::AllSpent
            }
            _ => false,
        }
    }

    /// Whether a sealed share with a download budget has had all its files downloaded up to
    /// it, asking about every file: the sweep's check.
    pub(super) fn is_spent_exactly(&self, name: &str, meta: &ShareMeta) -> bool {
        self.spendable(name, meta).is_some_and(|share| share.every_file_spent())
    }

    /// The share `name` if it is sealed and has a download budget.
    fn spendable(&self, name: &str, meta: &ShareMeta) -> Option<Share> {
        let (Some(_), true, Ok(code)) = (meta.downloads, meta.sealed, name.parse::<ShareCode>()) else {
            return None;
        };
        let dir = self.shares_dir().join(name);
        Some(Share { code, meta: meta.clone(), dir, store: self.clone(), legacy: Default::default() })
    }
}

impl Share {
    /// Whether the share has files and every one of them was downloaded as often as its budget
    /// allows.
    fn every_file_spent(&self) -> bool {
        let Some(budget) = self.meta.downloads else {
            return false;
        };
        match (self.read_records(), self.finished_downloads()) {
            (Ok(records), Ok(finished)) => {
                !records.files.is_empty()
                    && records.files.values().all(|f| finished.is_spent_exactly(&f.place, budget))
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::server::store::test_support::{rel, temp_store, upload_announced};
    use crate::server::store::{Limits, unix_now};

    #[test]
    fn a_share_is_known_spent_from_its_spent_count_and_the_sweep_finds_a_count_left_short() {
        let (store, _root) = temp_store(Limits::default());
        let (mut share, _) = store.create_share(unix_now() + 60, Some(1)).unwrap();
        let one = upload_announced(&share, "one", b"1").unwrap();
        let two = upload_announced(&share, "d/two", b"22").unwrap();
        share.seal().unwrap();
        let spent = |j: u64| spent_count(&share.dir.join("budget"), j);
        let open = || store.share(&share.code, unix_now());
        share.claim_download(&one, "10.0.0.1", 0).unwrap().unwrap().credit(0, 1).unwrap();
        assert_eq!(count(spent).unwrap(), 1);
        assert!(open().is_ok(), "d/two has a download left");
        assert_eq!(open().unwrap().manifest().unwrap().totals().unwrap(), (1, 2), "one is spent");
        // A count that names a file this manifest does not show yet never passes for spent:
        // every file is asked about first.
        append(spent, "0").unwrap();
        assert!(open().is_ok());
        let checked = share.cached(|cached| cached.checked).unwrap();
        assert_eq!(checked, Checked::Unspent { spent: 2, files: 2 }, "checked once, and kept");
        assert!(store.sweep(unix_now()).removed.is_empty());
        share.claim_download(&two, "10.0.0.1", 0).unwrap().unwrap().credit(0, 2).unwrap();
        assert_eq!(count(spent).unwrap(), 3);
        assert!(matches!(open(), Err(StoreError::Gone)), "the last file spent the share");
        // A crash between the last file's mark and its count: the share is not known spent when
        // opened, its files answer like ones that never existed, and the sweep removes it.
        fs::remove_file(spent(2)).unwrap();
        fs::remove_file(spent(1)).unwrap();
        let store = Store::open(store.root(), Limits::default()).unwrap();
        let reopened = store.share(&share.code, unix_now()).unwrap();
        let manifest = reopened.manifest().unwrap();
        assert!(manifest.lookup(&rel("one")).is_none() && manifest.lookup(&rel("d/two")).is_none());
        assert!(manifest.children(&rel("d")).is_empty());
        assert_eq!(store.sweep(unix_now()).codes(), vec![share.code.to_string()]);
    }
}
