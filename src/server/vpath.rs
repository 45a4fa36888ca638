//! The server's virtual file tree: `/` holds no visible entries, `/<code>` is a share, and
//! everything below it is a path inside that share. Resolving is lexical and pure: `..` never
//! climbs above `/`, and nothing here touches the disk. A share's code is parsed here, once, into
//! a [`ShareCode`], so every later comparison is on the type, whatever case the client typed.

use std::fmt;

use crate::common::secret::ShareCode;

/// An absolute path in the virtual tree, already normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum VirtualPath {
    /// `/`, which lists as empty: shares are never enumerable.
    #[default]
    Root,
    /// `/<code>/<rel...>`; `rel` is empty for the share's own folder.
    Share { code: ShareCode, rel: Vec<String> },
    /// `/<name>/<rel...>` where `name` is not a well-formed share code: nothing is ever there,
    /// and looking it up is no guess at a code.
    Nowhere { name: String, rel: Vec<String> },
}

impl VirtualPath {
    /// Resolves `argument` against `cwd`, as CWD, RETR and friends do.
    pub fn resolve(cwd: &VirtualPath, argument: &str) -> VirtualPath {
        let mut parts: Vec<String> = if argument.starts_with('/') { Vec::new() } else { cwd.components() };
        for part in argument.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                name => parts.push(name.to_owned()),
            }
        }
        VirtualPath::from_components(parts)
    }

    fn components(&self) -> Vec<String> {
        match self {
            VirtualPath::Root => Vec::new(),
            VirtualPath::Share { code, rel } => {
                let mut parts = vec![code.to_string()];
                parts.extend(rel.iter().cloned());
                parts
            }
            VirtualPath::Nowhere { name, rel } => {
                let mut parts = vec![name.clone()];
                parts.extend(rel.iter().cloned());
                parts
            }
        }
    }

    fn from_components(mut parts: Vec<String>) -> VirtualPath {
        if parts.is_empty() {
            return VirtualPath::Root;
        }
        let name = parts.remove(0);
        match name.parse::<ShareCode>() {
            Ok(code) => VirtualPath::Share { code, rel: parts },
            Err(_) => VirtualPath::Nowhere { name, rel: parts },
        }
    }

    /// The share's own folder.
    pub fn share(code: ShareCode) -> VirtualPath {
        VirtualPath::Share { code, rel: Vec::new() }
    }

    /// The parent folder (`/` stays `/`).
    pub fn parent(&self) -> VirtualPath {
        let mut parts = self.components();
        parts.pop();
        VirtualPath::from_components(parts)
    }

    /// The last component, if any.
    pub fn file_name(&self) -> Option<&str> {
        match self {
            VirtualPath::Root => None,
            VirtualPath::Share { code, rel } => Some(rel.last().map_or(code.as_str(), String::as_str)),
            VirtualPath::Nowhere { name, rel } => Some(rel.last().unwrap_or(name)),
        }
    }
}

impl fmt::Display for VirtualPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VirtualPath::Root => f.write_str("/"),
            VirtualPath::Share { code, rel } => write_parts(f, code.as_str(), rel),
            VirtualPath::Nowhere { name, rel } => write_parts(f, name, rel),
        }
    }
}

fn write_parts(f: &mut fmt::Formatter<'_>, first: &str, rel: &[String]) -> fmt::Result {
    write!(f, "/{first}")?;
    for part in rel {
        write!(f, "/{part}")?;
    }
    Ok(())
}

/// Escapes a path for a 257 reply, which quotes it and doubles inner quotes (RFC 959 appendix II).
pub fn quote_path(path: &str) -> String {
    format!("\"{}\"", path.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cwd: &str, argument: &str, expected: &str) {
        let cwd = VirtualPath::resolve(&VirtualPath::Root, cwd);
        assert_eq!(VirtualPath::resolve(&cwd, argument).to_string(), expected, "{cwd} + {argument}");
    }

    #[test]
    fn relative_and_absolute_paths() {
        check("/", "abc", "/abc");
        check("/abc", "d/e", "/abc/d/e");
        check("/abc/d", "/x", "/x");
        check("/abc", "./d//e/", "/abc/d/e");
    }

    #[test]
    fn dot_dot_never_climbs_above_root() {
        check("/abc", "..", "/");
        check("/abc", "a/../../..", "/");
        check("/", "/../", "/");
        check("/abc/d", "../../../etc/passwd", "/etc/passwd");
    }

    #[test]
    fn backslashes_are_not_separators() {
        check("/abc", "\\..\\x", "/abc/\\..\\x");
    }

    #[test]
    fn parent_and_file_name() {
        let path = VirtualPath::resolve(&VirtualPath::Root, "/c/d/f");
        assert_eq!(path.parent().to_string(), "/c/d");
        assert_eq!(path.file_name(), Some("f"));
        assert_eq!(VirtualPath::Root.parent(), VirtualPath::Root);
    }

    #[test]
    fn a_share_code_is_parsed_once_in_any_case() {
        const CODE: &str = "abcdefghijklmnopqrstuvwxyz";
        let lower = VirtualPath::resolve(&VirtualPath::Root, &format!("/{CODE}/f"));
        let upper = VirtualPath::resolve(&VirtualPath::Root, &format!("/{}/f", CODE.to_ascii_uppercase()));
        assert_eq!(lower, upper, "one share, whatever case the client typed");
        assert!(matches!(lower, VirtualPath::Share { .. }));
        check("/", &format!("/{}/x", CODE.to_ascii_uppercase()), &format!("/{CODE}/x"));
        for name in ["/CODE.tar", "/abc", "/abcdefghijklmnopqrstuvwxy1/f"] {
            let path = VirtualPath::resolve(&VirtualPath::Root, name);
            assert!(matches!(path, VirtualPath::Nowhere { .. }), "{name}");
            assert_eq!(path.to_string(), name, "shown as typed");
        }
    }

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote_path("/a\"b"), "\"/a\"\"b\"");
    }
}
