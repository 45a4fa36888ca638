//! The one place for operating-system differences, each with a portable fallback.

use std::io;
use std::path::Path;

/// Makes a directory's entries (a rename, a new file) durable.
#[cfg(unix)]
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Windows cannot open a directory as a file; NTFS journals renames, so there is nothing to do.
#[cfg(not(unix))]
pub fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
