//! The rules every file and folder name in a share follows, on both ends: the server refuses a
//! name that breaks them, and the client checks names before it uploads them and before a
//! listed name becomes a local path. Pure: no files, no sockets.

use std::fmt;

/// Longest file or folder name, in bytes (the server's `--max-name-bytes` default).
pub const MAX_NAME_BYTES: usize = 255;
/// Longest path inside a share, in bytes (`--max-path-bytes`).
pub const MAX_PATH_BYTES: usize = 1024;
/// Deepest folder nesting inside a share (`--max-path-depth`).
pub const MAX_PATH_DEPTH: usize = 32;

/// Why a name or path is not allowed, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadName(pub String);

impl fmt::Display for BadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "name not allowed: {}", self.0)
    }
}

impl std::error::Error for BadName {}

/// The bounds names are held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameRules {
    pub max_name_bytes: usize,
    pub max_path_bytes: usize,
    pub max_path_depth: usize,
}

impl Default for NameRules {
    fn default() -> Self {
        NameRules {
            max_name_bytes: MAX_NAME_BYTES,
            max_path_bytes: MAX_PATH_BYTES,
            max_path_depth: MAX_PATH_DEPTH,
        }
    }
}

impl NameRules {
    /// Checks one file or folder name: printable, portable to Windows, not a path trick.
    pub fn check_name(&self, name: &str) -> Result<(), BadName> {
        const RESERVED: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];
        const FORBIDDEN: &[char] = &['/', '\\', '<', '>', ':', '"', '|', '?', '*'];
        let bad = |why: &str| Err(BadName(why.to_owned()));
        if name.is_empty() || name == "." || name == ".." {
            return bad("empty, '.' or '..'");
        }
        if name.len() > self.max_name_bytes {
            return bad(&format!("longer than {} bytes", self.max_name_bytes));
        }
        if name.chars().any(char::is_control) {
            return bad("control character");
        }
        if let Some(c) = name.chars().find(|c| FORBIDDEN.contains(c)) {
            return bad(&format!("'{c}' is not allowed in names"));
        }
        if name.ends_with('.') || name.ends_with(' ') {
            return bad("ends with '.' or a space");
        }
        let stem = name.split('.').next().unwrap_or(name).to_ascii_uppercase();
        let device = RESERVED.contains(&stem.as_str())
            || ((stem.starts_with("COM") || stem.starts_with("LPT"))
                && stem.len() == 4
                && stem.as_bytes()[3].is_ascii_digit());
        if device {
            return bad("reserved device name on Windows");
        }
        Ok(())
    }

    /// Checks a whole relative path, given as its components.
    pub fn check_path(&self, rel: &[String]) -> Result<(), BadName> {
        if rel.len() > self.max_path_depth {
            return Err(BadName(format!("deeper than {} folders", self.max_path_depth)));
        }
        if rel.iter().map(|part| part.len() + 1).sum::<usize>() > self.max_path_bytes {
            return Err(BadName(format!("path longer than {} bytes", self.max_path_bytes)));
        }
        rel.iter().try_for_each(|part| self.check_name(part))
    }
}

/// Checks one name against the default rules.
pub fn check_name(name: &str) -> Result<(), BadName> {
    NameRules::default().check_name(name)
}

/// Checks a whole relative path, given as its components, against the default rules.
pub fn check_path(rel: &[String]) -> Result<(), BadName> {
    NameRules::default().check_path(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["a b.txt", "\u{e9}t\u{e9}", "\u{65e5}\u{672c}", ".hidden", "CONSOLE", "com10"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a\\b", "nul\0", "tab\t", "CON", "con.txt", "LPT1", "a:b", "end."] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"x".repeat(MAX_NAME_BYTES + 1)).is_err());
        assert!(check_path(&vec!["d".to_owned(); MAX_PATH_DEPTH + 1]).is_err());
    }
}
