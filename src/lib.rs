//! anonshare: a self-hosted anonymous file share over a strict subset of FTP, with every
//! transfer verified by SHA-256. See ARCHITECTURE.md for the map of this crate.
//!
//! The tree shows who owns what: `proto` is the wire protocol, pure; `server` is everything
//! `anonshare-server` runs (sessions and the store on disk); `client` is the library every
//! front-end uses; `cli` and `gui` are those front-ends; `common` holds what both ends share.

#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod common;
#[cfg(feature = "gui")]
pub mod gui;
pub mod proto;
pub mod server;
