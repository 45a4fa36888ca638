//! The server's event log: one line per event on stderr, each starting with an RFC 3339 UTC time.

use std::fmt;
use std::io::Write;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Writes one event line to stderr.
pub fn event(args: fmt::Arguments<'_>) {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let stamp = now.format(&Rfc3339).unwrap_or_default();
    let line = format!("{stamp} {args}\n");
    // One write per line keeps lines whole when threads log at once.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `log_event!("conn={} ...", id)`: formats and writes one event line.
#[macro_export]
macro_rules! log_event {
    ($($arg:tt)*) => { $crate::server::log::event(format_args!($($arg)*)) };
}
