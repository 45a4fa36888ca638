//! The client library every front-end uses: one control connection and its typed operations
//! ([`connection`]), a connection that comes back after a failure ([`link`]), and whole-share
//! uploads and downloads ([`transfer`]). It imports nothing from the server.

pub mod connection;
pub mod link;
pub mod transfer;

pub use connection::*;
