//! The `meta` file of a share: when it was made and expires, whether it is sealed, the SHA-256 of
//! its owner token and its download budget. It is only ever replaced whole, through a temporary
//! file that is synced and renamed, so a reader never sees half of it. It never stores the
//! owner token itself. A read that meets `ESTALE` (the file replaced meanwhile through another
//! server on a network filesystem) is tried again.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::common::digest::Sha256Digest;
use crate::common::platform::sync_dir;

/// What `meta` records about a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareMeta {
    pub created: i64,
    pub expires: i64,
    pub sealed: bool,
    /// SHA-256 of the owner token; the token itself is never stored.
    pub owner: Sha256Digest,
    /// How many times each file may be downloaded completely; `None` is no limit.
    pub downloads: Option<u64>,
}

pub(super) fn write_meta(dir: &Path, meta: &ShareMeta) -> io::Result<()> {
    let mut text = format!(
        "created {}\nexpires {}\nsealed {}\nowner {}\n",
        meta.created, meta.expires, meta.sealed as u8, meta.owner
    );
    if let Some(downloads) = meta.downloads {
        text.push_str(&format!("downloads {downloads}\n"));
    }
    let tmp = dir.join("meta.tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join("meta"))?;
    sync_dir(dir)
}

/// Reads of `meta` tried again after `ESTALE`: on a network filesystem, the file a cached name
/// pointed to may have just been replaced by another server's rename.
const STALE_RETRIES: usize = 8;

pub(super) fn read_meta(dir: &Path) -> io::Result<ShareMeta> {
    let mut retries = 0;
    let text = loop {
        match fs::read_to_string(dir.join("meta")) {
            Err(err) if err.kind() == io::ErrorKind::StaleNetworkFileHandle && retries < STALE_RETRIES => {
                retries += 1;
            }
            read => break read?,
        }
    };
    // The folder's name is the share's code, a capability: the error names its log tag.
    let code = dir.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let tag = crate::server::log::ShareTag::of(&code);
    let invalid = || io::Error::new(io::ErrorKind::InvalidData, format!("corrupt meta of share {tag}"));
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let (key, value) = line.split_once(' ').ok_or_else(invalid)?;
        fields.insert(key, value);
    }
    let field = |key: &str| fields.get(key).copied().ok_or_else(invalid);
    Ok(ShareMeta {
        created: field("created")?.parse().map_err(|_| invalid())?,
        expires: field("expires")?.parse().map_err(|_| invalid())?,
        sealed: field("sealed")? == "1",
        owner: field("owner")?.parse().map_err(|_| invalid())?,
        downloads: match fields.get("downloads") {
            Some(value) => Some(value.parse().map_err(|_| invalid())?),
            None => None,
        },
    })
}
