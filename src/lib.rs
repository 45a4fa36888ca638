//! anonshare: a self-hosted anonymous file share over a strict subset of FTP, with every
//! transfer verified by SHA-256. See ARCHITECTURE.md for the map of this crate.

#![forbid(unsafe_code)]

pub mod digest;
pub mod expiry;
pub mod platform;
pub mod proto;
pub mod secret;
pub mod store;
pub mod vpath;
