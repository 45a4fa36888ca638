//! Small pieces of words every front-end shows: counts with their noun ("1 file", "2 files")
//! and names shown safely (a newline in a name is shown as `\n`, never printed). Pure.

/// `n` and its noun, singular for one: `1 file`, `0 files`, `3 retries`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `text` with its control characters escaped, so that a name cannot break a line or a
/// terminal when it is shown.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(count(1, "file", "files"), "1 file");
        assert_eq!(count(0, "file", "files"), "0 files");
        assert_eq!(count(2, "byte", "bytes"), "2 bytes");
    }

    #[test]
    fn control_characters_are_shown_not_printed() {
        assert_eq!(printable("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
        assert_eq!(printable("plain \u{e9}"), "plain \u{e9}");
    }
}
