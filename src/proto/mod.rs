//! The FTP control protocol as anonshare speaks it, as pure functions: bytes in, typed values
//! out, and back. No sockets, no files, no clocks.
//!
//! - [`command`]: control lines into typed commands, and back;
//! - [`line`]: control lines split from bytes, with a length cap;
//! - [`reply`]: replies in RFC 959's frame, rendered and parsed;
//! - [`refusal`]: why a command was refused, the vocabulary both ends decide on;
//! - [`reply_text`], [`site`], [`listing`]: the grammars inside replies (passive addresses,
//!   HASH, the 226 of an upload, SITE MKSHARE and SITE INFO, MLSD and LIST lines).

pub mod command;
pub mod line;
pub mod listing;
pub mod refusal;
pub mod reply;
pub mod reply_text;
pub mod site;

pub use command::{Command, MAX_LINE_LEN, ProtoError, SiteCommand, TransferType, parse_command};
pub use listing::{
    ListingEntry, ListingRequest, SHA256_FACT, ftp_time, has_wildcard, list_line, listing_request, mlsx_line,
    parse_mlsx_line, wildcard_match,
};
pub use refusal::{Reason, Refusal};
pub use reply::{BadReply, Reply, ReplyParser};
pub use reply_text::{
    HashReply, StoredReply, epsv_reply_text, parse_epsv_reply, parse_hash_reply, parse_pasv_reply,
    parse_stored_reply, pasv_reply_text,
};
pub use site::{CreatedShare, ShareInfo};
