//! The client library every front-end uses: one control connection and its typed operations
//! ([`connection`]), a connection that comes back after a failure ([`link`]), and whole-share
//! uploads and downloads ([`transfer`]), the settings every front-end builds its links from
//! ([`settings`]), what work tells its front-end as it runs ([`observer`]), share URLs ([`url`]),
//! and what can go wrong, in words for people ([`error`], [`words`]). It imports nothing from
//! the server, and prints nothing.

pub mod connection;
pub mod download;
pub mod error;
pub mod link;
pub mod observer;
pub mod settings;
pub mod tls;
pub mod transfer;
pub mod url;
pub mod words;

pub use connection::*;
pub use error::*;
pub use url::*;
