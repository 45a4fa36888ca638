//! The words and numbers the window shows: sizes, time left, a file's progress, and the share
//! a pasted path names. Pure.

use std::path::Path;
use std::time::Duration;

use super::task::FileProgress;
use crate::client::{ClientError, ShareUrl};
use time::{OffsetDateTime, UtcOffset};

use crate::client::words::count;
use crate::common::expiry::{format_duration, parse_rfc3339};

pub(super) fn progress_text(file: &FileProgress) -> String {
    match file.finished && file.done >= file.size {
        true => format!("{}: {} done", file.path, human_size(file.size)),
        false => format!("{}: {} of {}", file.path, human_size(file.done), human_size(file.size)),
    }
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name().unwrap_or(path.as_os_str()).to_string_lossy().into_owned()
}

/// The share a pasted path names: a share URL, or a bare code on the connected server.
pub(super) fn share_of(text: &str, server: Option<(&str, u16)>) -> Result<ShareUrl, ClientError> {
    let text = text.trim();
    if text.starts_with("ftp://") {
        return ShareUrl::parse(text);
    }
    if text.is_empty() || text.contains(['/', ' ', ':']) {
        return Err(ClientError::Usage(format!(
            "invalid share path '{text}': expected ftp://HOST:PORT/CODE/ as shown after an upload"
        )));
    }
    match server {
        Some((host, port)) => Ok(ShareUrl { host: host.to_owned(), port, code: text.to_owned(), pin: None }),
        None => Err(ClientError::Usage(
            "connect to a server first, or paste the whole share path (ftp://HOST:PORT/CODE/)".into(),
        )),
    }
}

/// Bytes the way a person reads them: `512 B`, `48.2 KiB`, `1.2 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A duration to its two largest units: `6d 23h`, `1h 59m`, `45s`.
pub(super) fn rough_duration(duration: Duration) -> String {
    format_duration(duration).split(' ').take(2).collect::<Vec<_>>().join(" ")
}

/// A time the way a person reads it, in their time zone: `2026-12-02 13:00 (UTC+01:00)`, or
/// `2026-12-02 12:00 UTC`. The RFC 3339 text as it is if it is not one.
pub fn local_time(rfc3339: &str, offset: UtcOffset) -> String {
    let Some(when) = parse_rfc3339(rfc3339).and_then(|at| OffsetDateTime::from_unix_timestamp(at).ok())
    else {
        return rfc3339.to_owned();
    };
    let local = when.to_offset(offset);
    let zone = match offset.is_utc() {
        true => "UTC".to_owned(),
        false => {
            let (hours, minutes, _) = offset.as_hms();
            let sign = if offset.is_negative() { '-' } else { '+' };
            format!("(UTC{sign}{:02}:{:02})", hours.unsigned_abs(), minutes.unsigned_abs())
        }
    };
    format!(
        "{}-{:02}-{:02} {:02}:{:02} {zone}",
        local.year(),
        local.month() as u8,
        local.day(),
        local.hour(),
        local.minute()
    )
}

/// `n files`, `1 file`.
pub(super) fn files(n: usize) -> String {
    count(n as u64, "file", "files")
}

/// How long until the RFC 3339 time `expires`, seen at Unix time `now`.
pub(super) fn time_left(expires: &str, now: i64) -> Option<String> {
    let left = parse_rfc3339(expires)? - now;
    Some(match left {
        ..=0 => "expired".into(),
        left => format!("{} left", rough_duration(Duration::from_secs(left as u64))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_the_users_zone() {
        let plus_one = UtcOffset::from_hms(1, 0, 0).unwrap();
        assert_eq!(local_time("2026-12-02T12:00:00Z", plus_one), "2026-12-02 13:00 (UTC+01:00)");
        assert_eq!(local_time("2026-12-02T12:00:00Z", UtcOffset::UTC), "2026-12-02 12:00 UTC");
        let minus = UtcOffset::from_hms(-5, -30, 0).unwrap();
        assert_eq!(local_time("2026-12-02T12:00:00Z", minus), "2026-12-02 06:30 (UTC-05:30)");
        assert_eq!(local_time("soon", plus_one), "soon");
    }

    #[test]
    fn sizes_read_like_a_person_would() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
    }

    #[test]
    fn time_left_before_and_after_expiry() {
        assert_eq!(
            time_left("2026-01-02T00:00:00Z", parse_rfc3339("2026-01-01T00:30:00Z").unwrap()).unwrap(),
            "23h 30m left"
        );
        assert_eq!(
            time_left("2026-01-02T00:00:00Z", parse_rfc3339("2026-01-03T00:00:00Z").unwrap()).unwrap(),
            "expired"
        );
        assert_eq!(time_left("soon", 0), None);
    }

    fn check_share(text: &str, server: Option<(&str, u16)>, expected: Result<&str, u8>) {
        match (share_of(text, server), expected) {
            (Ok(url), Ok(want)) => assert_eq!(url.to_string(), want),
            (Err(err), Err(code)) => assert_eq!(err.exit_code(), code, "{err}"),
            (got, want) => panic!("{text:?}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn share_paths() {
        let here = Some(("127.0.0.1", 2121));
        check_share(" ftp://h:21/abc/ ", None, Ok("ftp://h:21/abc/"));
        check_share("abc", here, Ok("ftp://127.0.0.1:2121/abc/"));
        check_share("abc", None, Err(1));
        check_share("a/b", here, Err(1));
        check_share("", here, Err(1));
    }
}
