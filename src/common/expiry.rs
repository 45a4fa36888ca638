//! Expiry specifications as people write them: a duration (`90s`, `30m`, `12h`, `7d`, `2w`),
//! a date (`2026-12-01`, midnight UTC) or an RFC 3339 time. Pure: the caller passes "now".

use std::fmt;
use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};

/// Why an expiry specification was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadExpiry {
    /// Neither a duration nor a date.
    Malformed(String),
    /// A date or time that has already passed.
    Past(String),
    /// A number without its unit: seconds, minutes, hours or days?
    NoUnit(String),
    /// A duration of zero: the share would be gone before anyone saw it.
    Zero(String),
}

impl fmt::Display for BadExpiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadExpiry::Malformed(text) => write!(
                f,
                "invalid expiry '{text}': expected a duration like 90s, 30m, 12h or 7d, a date \
                 like 2026-12-01, or an RFC 3339 time"
            ),
            BadExpiry::NoUnit(text) => {
                write!(f, "invalid expiry '{text}': give a unit, like {text}m, {text}h or {text}d")
            }
            BadExpiry::Zero(text) => write!(f, "invalid expiry '{text}': a share must live at least 1s"),
            BadExpiry::Past(text) => {
                write!(f, "invalid expiry '{text}': that time has passed; give a future time or a duration")
            }
        }
    }
}

impl std::error::Error for BadExpiry {}

/// Parses a duration such as `90s`, `30m`, `12h`, `7d` or `2w` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, BadExpiry> {
    let bad = || BadExpiry::Malformed(text.to_owned());
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    number.checked_mul(scale).map(Duration::from_secs).ok_or_else(bad)
}

/// How long from `now` until the time `text` names; durations are taken as they are, and must
/// have their unit. A date or time is counted from `now`'s whole second, as the server counts a
/// share's life from the whole second it is created in: `2026-12-05` then expires at midnight
/// exactly, not a second before.
pub fn parse_expiry(text: &str, now: OffsetDateTime) -> Result<Duration, BadExpiry> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadExpiry::NoUnit(text.to_owned()));
    }
    if let Ok(duration) = parse_duration(text) {
        if duration.is_zero() {
            return Err(BadExpiry::Zero(text.to_owned()));
        }
        return Ok(duration);
    }
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let bad = || BadExpiry::Malformed(text.to_owned());
    let when = match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(when) => when,
        Err(_) => parse_date(text).ok_or_else(bad)?.midnight().assume_utc(),
    };
    let seconds = (when - now).whole_seconds();
    if seconds <= 0 {
        return Err(BadExpiry::Past(text.to_owned()));
    }
    Ok(Duration::from_secs(seconds as u64))
}

fn parse_date(text: &str) -> Option<Date> {
    let mut parts = text.splitn(3, '-');
    let year = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day = parts.next()?.parse().ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

/// A duration the way a person reads it: `7d`, `12h`, `90s`, `1d 2h`.
pub fn format_duration(duration: Duration) -> String {
    let mut seconds = duration.as_secs();
    if seconds == 0 {
        return "0s".into();
    }
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if seconds >= size {
            parts.push(format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    parts.join(" ")
}

/// A Unix time as RFC 3339 in UTC, to the second.
pub fn rfc3339(unix_seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix_seconds.to_string())
}

/// Parses an RFC 3339 time to Unix seconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339).ok().map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn check(text: &str, expected_seconds: Option<u64>) {
        assert_eq!(parse_expiry(text, now()).ok().map(|d| d.as_secs()), expected_seconds, "{text}");
    }

    #[test]
    fn durations() {
        check("90s", Some(90));
        check("30m", Some(1800));
        check("12h", Some(43_200));
        check("7d", Some(604_800));
        check("2w", Some(1_209_600));
        check("7x", None);
        check("", None);
        check("99999999999999999999d", None);
    }

    #[test]
    fn dates_and_times() {
        // 1_800_000_000 is 2027-01-15T08:00:00Z.
        check("2027-01-16", Some(16 * 3600));
        check("2027-01-15T09:00:00Z", Some(3600));
        check("2027-01-15T10:00:00+01:00", Some(3600));
        check("2027-02-30", None);
    }

    #[test]
    fn a_bare_number_or_zero_is_refused_with_a_hint() {
        assert_eq!(
            parse_expiry("12", now()).unwrap_err().to_string(),
            "invalid expiry '12': give a unit, like 12m, 12h or 12d"
        );
        assert_eq!(parse_expiry("0s", now()).unwrap_err(), BadExpiry::Zero("0s".into()));
        assert_eq!(parse_expiry("0d", now()).unwrap_err(), BadExpiry::Zero("0d".into()));
        assert_eq!(
            parse_duration("90").unwrap().as_secs(),
            90,
            "flags that take durations keep bare seconds"
        );
    }

    #[test]
    fn a_date_is_reached_exactly_from_any_moment_of_a_second() {
        // 1_800_000_000 is 2027-01-15T08:00:00Z; the server counts from the whole second.
        let late_in_the_second = now() + time::Duration::milliseconds(700);
        let at = |text| parse_expiry(text, late_in_the_second).unwrap().as_secs();
        assert_eq!(at("2027-01-16"), 16 * 3600, "midnight UTC, not 23:59:59");
        assert_eq!(at("2027-01-15T10:00:00+01:00"), 3600, "09:00:00Z, not 08:59:59Z");
    }

    #[test]
    fn past_times_are_refused_with_a_hint() {
        let err = parse_expiry("2020-01-01", now()).unwrap_err();
        assert!(err.to_string().contains("that time has passed"), "{err}");
    }

    #[test]
    fn formatting() {
        assert_eq!(format_duration(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(format_duration(Duration::from_secs(93_600)), "1d 2h");
        assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(parse_rfc3339("2027-01-15T08:00:00Z"), Some(1_800_000_000));
    }
}
