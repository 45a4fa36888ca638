//! What both ends share and neither owns: digests, share codes and owner tokens, expiry
//! specs, the rules for names, the read loop over files and sockets, the flag reader, and the
//! operating system's differences.

pub mod args;
pub mod chunks;
pub mod digest;
pub mod expiry;
pub mod line_io;
pub mod names;
pub mod pin;
pub mod platform;
pub mod secret;
