//! What the client library tells its front-end while work runs: each file's progress, a retry
//! after a dropped connection, a file that resumes partway. The library never prints; the
//! command line, the shell and the window each decide what a report becomes.

use std::time::Duration;

use crate::client::CreatedShare;

/// Told about the work as it runs, to draw progress and say what happens. Several files may move
/// at once, from several threads, so every call about a file names it. Every method does
/// nothing unless a front-end says otherwise.
pub trait Observer: Sync {
    /// The work will move `files` files of `bytes` bytes in all.
    fn planned(&self, _files: usize, _bytes: u64) {}
    /// An upload created `share`, before its first byte: its owner token can delete it.
    fn created(&self, _share: &CreatedShare) {}
    /// An upload that created `share` failed or was cancelled; the share was deleted, or not
    /// (then it lingers, unpublished, until it expires or its owner deletes it).
    fn abandoned(&self, _share: &CreatedShare, _deleted: bool) {}
    /// `path` is left out of the work, for the reason `why`.
    fn skipped(&self, _path: &str, _why: &str) {}
    /// The file `path` of `size` bytes starts moving.
    fn start(&self, _path: &str, _size: u64) {}
    /// `bytes` more bytes of `path` moved.
    fn advance(&self, _path: &str, _bytes: u64) {}
    /// `path` starts moving again with its first `done` bytes already there (a resume).
    fn restart(&self, _path: &str, _done: u64) {}
    /// Asked between chunks: true stops the transfer with
    /// [`ClientError::Cancelled`](crate::client::ClientError::Cancelled).
    fn cancelled(&self) -> bool {
        false
    }
    /// `path` is done (or failed).
    fn finish(&self, _path: &str) {}
    /// The connection failed with `why`; retry `attempt` of `of` follows after `pause`.
    fn retrying(&self, _why: &str, _attempt: u32, _of: u32, _pause: Duration) {}
    /// A retry takes `path` up again at byte `offset`, keeping the bytes before it.
    fn resuming(&self, _path: &str, _offset: u64) {}
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {}
