//! What a reader sees of a share: every finished file and folder, except files whose download
//! budget is used up, which answer like files that never existed. A reader's [`Manifest`]
//! shares the cached records and never copies them, and it asks the ledger about a file only
//! when a command touches that file: a lookup costs a few name lookups (about 2 log2 of the
//! file's finished downloads), a listing that many per file listed, whatever else the share
//! holds.

use std::sync::Arc;

use super::ledger::Finished;
use super::manifest::{Child, FileEntry, Inside, Node, Records};
use super::{Result, Share};

/// A share's files and folders as a reader sees them, as of when it was taken.
pub struct Manifest {
    records: Arc<Records>,
    budget: Option<Budget>,
}

/// What tells a budgeted share's spent files apart.
struct Budget {
    downloads: u64,
    finished: Finished,
    share: Share,
}

impl Share {
    /// What a reader sees now.
    pub fn manifest(&self) -> Result<Manifest> {
        let records = self.read_records()?;
        let budget = match self.meta.downloads {
            Some(downloads) => {
                Some(Budget { downloads, finished: self.finished_downloads()?, share: self.clone() })
            }
            None => None,
        };
        Ok(Manifest { records, budget })
    }
}

impl Manifest {
    /// Whether `file`'s budget is used up.
    fn is_spent(&self, file: &FileEntry) -> bool {
        self.budget.as_ref().is_some_and(|budget| budget.finished.is_spent(&file.place, budget.downloads))
    }

    /// What `rel` names; the empty path is the share's own folder.
    pub fn lookup(&self, rel: &[String]) -> Option<Node<'_>> {
        match self.records.lookup(rel) {
            Some(Node::File(file)) if self.is_spent(file) => None,
            other => other,
        }
    }

    /// What `rel` names for a download, a spent file too: a download's claim refuses a spent
    /// file under the file's lock, so a lookup here would only ask twice.
    pub fn lookup_to_download(&self, rel: &[String]) -> Option<Node<'_>> {
        self.records.lookup(rel)
    }

    /// The entries directly inside the folder `rel`, sorted by name.
    pub fn children(&self, rel: &[String]) -> Vec<Child> {
        let nodes = self.records.child_nodes(rel).into_iter();
        let shown = nodes.filter(|(_, inside)| !matches!(inside, Inside::File(file) if self.is_spent(file)));
        shown.map(|(name, inside)| Child::of(name, inside)).collect()
    }

    /// Number of files and their total size. A budgeted share's spent files do not count: the
    /// ones its spent marks name (a crash between a file's last download and its mark leaves
    /// that file counted here, though no reader sees it).
    pub fn totals(&self) -> Result<(usize, u64)> {
        let (files, bytes) = self.records.totals();
        let Some(budget) = &self.budget else {
            return Ok((files, bytes));
        };
        let spent = budget.share.spent_tally()?;
        Ok((files.saturating_sub(spent.files), bytes.saturating_sub(spent.bytes)))
    }
}
