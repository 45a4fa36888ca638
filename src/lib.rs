//! anonshare: a self-hosted anonymous file share over a strict subset of FTP, with every
//! transfer verified by SHA-256. See ARCHITECTURE.md for the map of this crate.

#![forbid(unsafe_code)]

pub mod admission;
pub mod args;
pub mod chunks;
pub mod cli;
pub mod client;
pub mod digest;
pub mod expiry;
#[cfg(feature = "gui")]
pub mod gui;
pub mod json;
pub mod line;
pub mod link;
pub mod log;
pub mod platform;
pub mod pool;
pub mod proto;
pub mod secret;
pub mod server;
pub mod session;
pub mod shell;
pub mod store;
pub mod transfer;
pub mod vpath;
