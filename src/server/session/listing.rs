//! The commands that describe what is stored: `LIST`, `NLST` and `MLSD` (RFC 3659 §7) over the
//! data connection, and `MLST`, `SIZE`, `MDTM` (RFC 3659 §3, §4) and `HASH` on the control
//! connection. The store's records become `proto::ListingEntry` only here: in
//! [`listed_entries`], [`matching`] (wildcards), [`recursive`] (`-R`) and `Session::mlst`. It
//! never writes to a share, and `/` lists only the shares the connection itself named.

use std::io;

use crate::proto::{
    ListingEntry, ListingRequest, Reason, Refusal, Reply, has_wildcard, list_line, mlsx_line, wildcard_match,
};
use crate::server::session::rules::Access;
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
fn listed_entries(
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

/// What one listing sends: sections, each with the folder it shows (a `LIST -R` header) and its
/// entries, whose names may carry a path (the folder part of a wildcard, a recursive NLST).
#[derive(Default)]
struct Listed {
    sections: Vec<(Option<String>, Vec<ListingEntry>)>,
    count: usize,
}

impl Listed {
    fn add(&mut self, header: Option<String>, entries: Vec<ListingEntry>, limit: usize) -> Result<(), usize> {
        self.count += entries.len();
        if self.count > limit {
            return Err(limit);
        }
        self.sections.push((header, entries));
        Ok(())
    }
}

/// Why a listing is not sent.
enum Unlisted {
    Store(StoreError),
    /// More entries than `--max-list-entries`.
    TooMany(usize),
}

impl From<StoreError> for Unlisted {
    fn from(err: StoreError) -> Self {
        Unlisted::Store(err)
    }
}

/// A folder and every folder below it, as `LIST -R` shows them: one section per folder, headed
/// `shown/sub:`; `NLST -R` gets one flat list of paths relative to the folder instead.
fn recursive(
    manifest: &Manifest,
    rel: &[String],
    shown: &str,
    kind: ListingKind,
    limit: usize,
) -> Result<Listed, Unlisted> {
    let mut listed = Listed::default();
    // Folders still to list: where they are in the share, and how the listing names them.
    let mut folders = vec![(rel.to_vec(), String::new())];
    while let Some((folder, below)) = folders.pop() {
        let children = manifest.children(&folder);
        for child in children.iter().rev().filter(|c| c.is_dir) {
            let mut sub = folder.clone();
            sub.push(child.name.clone());
            folders.push((sub, format!("{below}{}/", child.name)));
        }
        let mut entries: Vec<ListingEntry> = children.into_iter().map(listing_entry).collect();
        let header = match kind {
            ListingKind::Names => {
                entries.iter_mut().for_each(|e| e.name = format!("{below}{}", e.name));
                None
            }
            _ => Some(format!("{shown}/{below}").trim_end_matches('/').to_owned()),
        };
        listed.add(header, entries, limit).map_err(Unlisted::TooMany)?;
    }
    Ok(listed)
}

/// The entries of the folder `parent` whose names match `pattern`, named with `prefix` (the
/// folder as the client wrote it), as `NLST *.txt` and `LIST /code/*.txt` expect.
fn matching(
    manifest: &Manifest,
    parent: &[String],
    pattern: &str,
    prefix: &str,
    limit: usize,
) -> Result<Listed, Unlisted> {
    let entries = match manifest.lookup(parent) {
        Some(Node::Folder) => manifest
            .children(parent)
            .into_iter()
            .filter(|child| wildcard_match(pattern, &child.name))
            .map(|child| ListingEntry { name: format!("{prefix}{}", child.name), ..listing_entry(child) })
            .collect(),
        Some(Node::File(_)) => Vec::new(),
        None => return Err(StoreError::NotFound.into()),
    };
    let mut listed = Listed::default();
    listed.add(None, entries, limit).map_err(Unlisted::TooMany)?;
    Ok(listed)
}

impl Session<'_> {
    /// LIST, NLST and MLSD. A wildcard (`*`, `?`, `[...]`) in the last name of a LIST or NLST
    /// path matches within its folder of one share; `-R` lists a folder and all below it. `/`,
    /// and a wildcard in place of a share's code, list nothing: shares are never enumerable.
    pub(super) fn listing(&mut self, request: ListingRequest<'_>, kind: ListingKind) -> io::Result<Next> {
        let limit = self.shared.config.max_list_entries;
        let path = request.path.map(|a| self.resolve(a)).unwrap_or_else(|| self.cwd.clone());
        let shown = request.path.unwrap_or(".").trim_end_matches('/');
        let wildcard = match &path {
            VirtualPath::Share { rel, .. } if kind != ListingKind::Facts => {
                rel.last().filter(|name| has_wildcard(name)).cloned()
            }
            _ => None,
        };
        let listed = match &path {
            VirtualPath::Root => {
                let mut listed = Listed::default();
                listed.add(None, self.shares_in_hand(), limit).map_err(Unlisted::TooMany).map(|()| listed)
            }
            VirtualPath::Nowhere { name, .. } if has_wildcard(name) => Ok(Listed::default()),
            _ => self.lookup(&path).map_err(Unlisted::from).and_then(|(_, manifest, rel)| {
                let exists = manifest.lookup(&rel).is_some();
                match (wildcard, manifest.lookup(&rel)) {
                    (Some(pattern), _) if !exists => {
                        let prefix = request.path.and_then(|p| p.rsplit_once('/')).map(|(dir, _)| dir);
                        let prefix = prefix.map(|dir| format!("{dir}/")).unwrap_or_default();
                        matching(&manifest, &rel[..rel.len() - 1], &pattern, &prefix, limit)
                    }
                    (_, Some(Node::Folder)) if request.recursive && kind != ListingKind::Facts => {
                        recursive(&manifest, &rel, shown, kind, limit)
                    }
                    _ => {
                        let mut listed = Listed::default();
                        listed
                            .add(None, listed_entries(&manifest, &path, &rel, kind)?, limit)
                            .map_err(Unlisted::TooMany)?;
                        Ok(listed)
                    }
                }
            }),
        };
        let listed = match listed {
            Ok(listed) => listed,
            Err(Unlisted::Store(StoreError::NotAFolder)) => {
                let text = "MLSD needs a folder; use MLST for a file";
                return self.refuse(Refusal::new(Reason::BadArgument, text));
            }
            Err(Unlisted::Store(err)) => return self.store_error(err),
            Err(Unlisted::TooMany(limit)) => {
                let text = format!(
                    "More than {limit} entries to list (--max-list-entries); list one folder at a time"
                );
                return self.refuse(Refusal::new(Reason::LimitReached, text));
            }
        };
        let now = unix_now();
        let mut text = String::new();
        for (index, (header, entries)) in listed.sections.iter().enumerate() {
            if let Some(header) = header {
                if index > 0 {
                    text.push_str("\r\n");
                }
                text.push_str(&format!("{header}:\r\n"));
            }
            for entry in entries {
                let line = match kind {
                    ListingKind::List => list_line(entry, now),
                    ListingKind::Names => entry.name.clone(),
                    ListingKind::Facts => mlsx_line(entry),
                };
                text.push_str(&line);
                text.push_str("\r\n");
            }
        }
        let count = listed.count;
        self.with_data(format!("Listing {path}"), move |data, watch| {
            watch.write_all(data, text.as_bytes())?;
            Ok(Reply::new(226, format!("Listing sent, {count} entries")))
        })
    }

    /// What `/` lists: the shares this connection created, claimed or entered, that it may
    /// still see. A fresh connection sees nothing there, so `/` never reveals a code; a client
    /// that checks a path by listing its parent (ftputil) finds the share it named.
    fn shares_in_hand(&self) -> Vec<ListingEntry> {
        let now = unix_now();
        let mut entries: Vec<ListingEntry> = self
            .in_hand
            .iter()
            .filter_map(|code| self.shared.store.share(code, now).ok())
            .filter(|share| self.access(share) != Access::Hidden)
            .map(|share| ListingEntry {
                name: share.code.to_string(),
                is_dir: true,
                size: 0,
                modified: share.meta.created,
                sha256: None,
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries
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
            Err(err) => self.file_error(&path, err),
        }
    }
}
