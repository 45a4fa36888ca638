//! Listings: what a listing knows of an entry ([`ListingEntry`]), its MLSD/MLST line
//! (RFC 3659 §7) and its `ls -l` LIST line, FTP times, and the `ls` options clients put before
//! a LIST path. Pure: the caller passes in the time.

use time::OffsetDateTime;

use crate::common::digest::Sha256Digest;

/// What a LIST or NLST argument asks for: the `ls`-style options clients put first (`-la`,
/// `-R`), of which only `R` changes anything, and the path after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListingRequest<'a> {
    /// `-R`: the folder and every folder below it.
    pub recursive: bool,
    pub path: Option<&'a str>,
}

/// Reads a LIST or NLST argument: leading `-` words are `ls` options, the rest is the path.
pub fn listing_request(argument: Option<&str>) -> ListingRequest<'_> {
    let mut request = ListingRequest::default();
    let Some(mut rest) = argument.map(str::trim_start) else {
        return request;
    };
    while rest.starts_with('-') {
        let (options, after) = rest.split_once(' ').unwrap_or((rest, ""));
        request.recursive |= options.contains('R');
        rest = after.trim_start();
    }
    request.path = Some(rest).filter(|r| !r.is_empty());
    request
}

/// Whether `name` holds a wildcard: `*`, `?` or `[`.
pub fn has_wildcard(name: &str) -> bool {
    name.contains(['*', '?', '['])
}

/// Whether `name` matches the shell pattern `pattern`: `*` any run of characters, `?` one
/// character, `[abc]`, `[a-z]` and `[!a-z]` (or `[^a-z]`) one of a set (POSIX.1-2017 §2.13).
/// A `[` without its `]` matches itself.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0, 0);
    // Where the last `*` was, and the name position it matched up to: the point to go back to.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => match bracket(&pattern[p..], name[n]) {
                Some((matched, width)) => matched.then_some(width),
                None => (name[n] == '[').then_some(1),
            },
            Some(c) => (*c == name[n]).then_some(1),
            None => None,
        };
        match (step, star) {
            (Some(width), _) => {
                p += width;
                n += 1;
            }
            (None, Some((star_p, star_n))) => {
                star = Some((star_p, star_n + 1));
                p = star_p + 1;
                n = star_n + 1;
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// Matches `c` against the bracket expression at the start of `pattern`: whether it matched,
/// and the expression's width; `None` when the `[` has no closing `]`.
fn bracket(pattern: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negated = matches!(pattern.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let low = *pattern.get(i)?;
        if low == ']' && !first {
            return Some((matched != negated, i + 1));
        }
        first = false;
        match (pattern.get(i + 1), pattern.get(i + 2)) {
            (Some('-'), Some(&high)) if high != ']' => {
                matched |= low <= c && c <= high;
                i += 3;
            }
            _ => {
                matched |= low == c;
                i += 1;
            }
        }
    }
}

/// What a listing knows of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingEntry {
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub modified: i64,
    /// A file's SHA-256, as the `X.sha256` fact of MLSD and MLST carries it.
    pub sha256: Option<Sha256Digest>,
}

/// `YYYYMMDDHHMMSS` in UTC, as MDTM and MLSD's `modify` fact want (RFC 3659 §2.3).
pub fn ftp_time(unix_seconds: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// One MLSD line, or MLST's fact line without its leading space (RFC 3659 §7).
pub fn mlsx_line(entry: &ListingEntry) -> String {
    let modify = ftp_time(entry.modified);
    match (entry.is_dir, entry.sha256) {
        (true, _) => format!("type=dir;modify={modify};perm=el; {}", entry.name),
        (false, Some(sha256)) => {
            format!(
                "type=file;size={};modify={modify};perm=r;{SHA256_FACT}={sha256}; {}",
                entry.size, entry.name
            )
        }
        (false, None) => format!("type=file;size={};modify={modify};perm=r; {}", entry.size, entry.name),
    }
}

/// The MLSD/MLST fact that carries a file's SHA-256: a local fact, which RFC 3659 §7.5.6 names
/// with `X.`, so clients that do not know it skip it.
pub const SHA256_FACT: &str = "X.sha256";

/// Parses an MLSD line into its entry; unknown facts are ignored as RFC 3659 asks.
pub fn parse_mlsx_line(line: &str) -> Option<ListingEntry> {
    let (facts, name) = line.split_once(' ')?;
    let mut entry = ListingEntry { name: name.to_owned(), is_dir: false, size: 0, modified: 0, sha256: None };
    let mut kind = None;
    for fact in facts.split(';').filter(|f| !f.is_empty()) {
        let (key, value) = fact.split_once('=')?;
        match key.to_ascii_lowercase().as_str() {
            "type" => kind = Some(value.to_ascii_lowercase()),
            "size" => entry.size = value.parse().ok()?,
            key if key.eq_ignore_ascii_case(SHA256_FACT) => entry.sha256 = value.parse().ok(),
            _ => {}
        }
    }
    match kind?.as_str() {
        "file" => {}
        "dir" => entry.is_dir = true,
        _ => return None,
    }
    Some(entry)
}

/// One `ls -l` style LIST line; `now` decides between the recent and the dated form.
pub fn list_line(entry: &ListingEntry, now: i64) -> String {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    const HALF_YEAR: i64 = 183 * 24 * 3600;
    let t = OffsetDateTime::from_unix_timestamp(entry.modified).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let month = MONTHS[usize::from(u8::from(t.month())) - 1];
    let when = if (now - entry.modified).abs() < HALF_YEAR {
        format!("{month} {:>2} {:02}:{:02}", t.day(), t.hour(), t.minute())
    } else {
        format!("{month} {:>2}  {}", t.day(), t.year())
    };
    let mode = if entry.is_dir { "dr-xr-xr-x" } else { "-r--r--r--" };
    format!("{mode} 1 anonshare anonshare {:>12} {when} {}", entry.size, entry.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_requests_read_ls_options() {
        let check = |argument, recursive, path| {
            assert_eq!(listing_request(argument), ListingRequest { recursive, path }, "{argument:?}");
        };
        check(None, false, None);
        check(Some("-la"), false, None);
        check(Some("-a -l /x y"), false, Some("/x y"));
        check(Some("/x"), false, Some("/x"));
        check(Some("-R"), true, None);
        check(Some("-1R /c/d"), true, Some("/c/d"));
        check(Some("-la -R sub"), true, Some("sub"));
    }

    #[test]
    fn wildcards_match_as_the_shell_does_posix_2_13() {
        let check = |pattern, name, expected| {
            assert_eq!(wildcard_match(pattern, name), expected, "{pattern} ~ {name}");
        };
        check("*.txt", "a.txt", true);
        check("*.txt", "a.txt.gz", false);
        check("*", "", true);
        check("a*b*c", "aXXbYYc", true);
        check("a*b*c", "aXXbYY", false);
        check("?.bin", "x.bin", true);
        check("?.bin", "xy.bin", false);
        check("[ab]*", "beta", true);
        check("[a-c]?", "cz", true);
        check("[a-c]?", "dz", false);
        check("[!a-c]*", "dz", true);
        check("[^a-c]*", "az", false);
        check("[]x]", "]", true);
        check("[x", "[x", true);
        check("\u{e9}*", "\u{e9}t\u{e9}", true);
        assert!(has_wildcard("*.txt") && has_wildcard("a?") && has_wildcard("[a]") && !has_wildcard("plain"));
    }

    #[test]
    fn mlsd_lines_round_trip_rfc3659_7() {
        let file = ListingEntry {
            name: "a b;c".into(),
            is_dir: false,
            size: 42,
            modified: 1_700_000_000,
            sha256: None,
        };
        assert_eq!(mlsx_line(&file), "type=file;size=42;modify=20231114221320;perm=r; a b;c");
        let parsed = parse_mlsx_line(&mlsx_line(&file)).unwrap();
        assert_eq!((parsed.name.as_str(), parsed.size, parsed.is_dir), ("a b;c", 42, false));
        let dir = ListingEntry { name: "d".into(), is_dir: true, size: 0, modified: 0, sha256: None };
        assert!(parse_mlsx_line(&mlsx_line(&dir)).unwrap().is_dir);
        assert_eq!(parse_mlsx_line("type=cdir; ."), None);
        // The SHA-256 travels as a local fact (§7.5.6); unknown facts are skipped.
        let sha256 = Sha256Digest::of(b"x");
        let hashed = ListingEntry { sha256: Some(sha256), ..file };
        let line = mlsx_line(&hashed);
        assert_eq!(line, format!("type=file;size=42;modify=20231114221320;perm=r;X.sha256={sha256}; a b;c"));
        assert_eq!(parse_mlsx_line(&line).map(|e| (e.name, e.sha256)), Some(("a b;c".into(), Some(sha256))));
        let other = parse_mlsx_line("Type=file;Size=3;UNIX.mode=0644;x.SHA256=zz; f").unwrap();
        assert_eq!((other.size, other.sha256), (3, None));
    }

    #[test]
    fn list_lines_look_like_ls() {
        let entry =
            ListingEntry { name: "x".into(), is_dir: false, size: 5, modified: 1_700_000_000, sha256: None };
        assert_eq!(
            list_line(&entry, 1_700_000_000),
            "-r--r--r-- 1 anonshare anonshare            5 Nov 14 22:13 x"
        );
        assert!(list_line(&entry, 1_800_000_000).contains("Nov 14  2023 x"));
    }
}
