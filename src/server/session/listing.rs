//! The commands that describe what is stored: `LIST`, `NLST` and `MLSD` (RFC 3659 §7) over the
//! data connection, and `MLST`, `SIZE`, `MDTM` (RFC 3659 §3, §4) and `HASH` on the control
//! connection. The store's records become `proto::ListingEntry` only in [`listed`] and in
//! `Session::mlst`. It never writes to a share, and `/` never lists the shares.

use std::io;

use crate::proto::{ListingEntry, Reason, Refusal, Reply, list_line, mlsx_line};
use crate::server::session::{Next, Session};
use crate::server::store::{Child, FileEntry, Manifest, Node, StoreError, unix_now};
use crate::server::vpath::VirtualPath;

/// What a listing of the data connection shows of each entry.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ListingKind {
    /// LIST: `ls -l` lines.
    List,
    /// NLST: names only.
    Names,
    /// MLSD: RFC 3659 facts.
    Facts,
}

/// The entries a listing of `rel` in `manifest` shows: a folder's children, or a file alone
/// (as `ls` shows it; `MLSD` of a file is refused as [`StoreError::NotAFolder`]). The one place
/// where a listing turns the store's records into `ListingEntry`s.
fn listed(
    manifest: &Manifest,
    path: &VirtualPath,
    rel: &[String],
    kind: ListingKind,
) -> Result<Vec<ListingEntry>, StoreError> {
    match manifest.lookup(rel) {
        Some(Node::Folder) => Ok(manifest.children(rel).into_iter().map(listing_entry).collect()),
        Some(Node::File(_)) if kind == ListingKind::Facts => Err(StoreError::NotAFolder),
        Some(Node::File(file)) => Ok(vec![ListingEntry {
            name: path.file_name().unwrap_or_default().to_owned(),
            is_dir: false,
            size: file.size,
            modified: file.modified,
            sha256: Some(file.sha256),
        }]),
        None => Err(StoreError::NotFound),
    }
}

/// A folder's entry as a listing shows it.
fn listing_entry(child: Child) -> ListingEntry {
    let Child { name, is_dir, size, modified, sha256 } = child;
    ListingEntry { name, is_dir, size, modified, sha256 }
}

impl Session<'_> {
    pub(super) fn listing(&mut self, argument: Option<&str>, kind: ListingKind) -> io::Result<Next> {
        let path = argument.map(|a| self.resolve(a)).unwrap_or_else(|| self.cwd.clone());
        let entries = match &path {
            VirtualPath::Root => Ok(Vec::new()),
            _ => self.lookup(&path).and_then(|(_, manifest, rel)| listed(&manifest, &path, &rel, kind)),
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err(StoreError::NotAFolder) => {
                let text = "MLSD needs a folder; use MLST for a file";
                return self.refuse(Refusal::new(Reason::BadArgument, text));
            }
            Err(err) => return self.store_error(err),
        };
        let now = unix_now();
        let mut text = String::new();
        for entry in &entries {
            let line = match kind {
                ListingKind::List => list_line(entry, now),
                ListingKind::Names => entry.name.clone(),
                ListingKind::Facts => mlsx_line(entry),
            };
            text.push_str(&line);
            text.push_str("\r\n");
        }
        let count = entries.len();
        self.with_data(format!("Listing {path}"), move |data, watch| {
            watch.write_all(data, text.as_bytes())?;
            Ok(Reply::new(226, format!("Listing sent, {count} entries")))
        })
    }

    pub(super) fn mlst(&mut self, argument: Option<&str>) -> io::Result<Next> {
        let path = argument.map(|a| self.resolve(a)).unwrap_or_else(|| self.cwd.clone());
        let entry = match &path {
            VirtualPath::Root => {
                Ok(ListingEntry { name: "/".into(), is_dir: true, size: 0, modified: 0, sha256: None })
            }
            _ => self.lookup(&path).and_then(|(share, manifest, rel)| match manifest.lookup(&rel) {
                Some(Node::Folder) => Ok(ListingEntry {
                    name: String::new(),
                    is_dir: true,
                    size: 0,
                    modified: share.meta.created,
                    sha256: None,
                }),
                Some(Node::File(file)) => Ok(ListingEntry {
                    name: String::new(),
                    is_dir: false,
                    size: file.size,
                    modified: file.modified,
                    sha256: Some(file.sha256),
                }),
                None => Err(StoreError::NotFound),
            }),
        };
        match entry {
            Ok(mut entry) => {
                entry.name = path.to_string();
                let facts = format!(" {}", mlsx_line(&entry));
                self.answer(Reply::multi(250, format!("Listing {path}"), vec![facts], "End"))
            }
            Err(err) => self.store_error(err),
        }
    }

    pub(super) fn with_file(
        &mut self,
        argument: &str,
        make: impl FnOnce(String, &FileEntry) -> Reply,
    ) -> io::Result<Next> {
        let path = self.resolve(argument);
        match self.lookup_file(&path) {
            Ok((_, entry)) => self.answer(make(argument.to_owned(), &entry)),
            Err(err) => self.store_error(err),
        }
    }
}
