//! A small command-line flag reader shared by both binaries: `--flag value`, `--flag=value`,
//! boolean switches and positional arguments, with errors that name the flag.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::str::FromStr;

/// A usage error: the message says what was wrong and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// One item of the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// `--name` (value, if any, is fetched with [`Args::value`]).
    Flag(String),
    /// Anything else, or everything after `--`.
    Positional(String),
}

/// The remaining command line.
pub struct Args {
    items: VecDeque<String>,
    inline_value: Option<String>,
    only_positional: bool,
}

impl Args {
    pub fn new(args: impl IntoIterator<Item = OsString>) -> Result<Args, UsageError> {
        let items = args
            .into_iter()
            .map(|arg| {
                arg.into_string().map_err(|bad| {
                    UsageError(format!("argument '{}' is not valid UTF-8", bad.to_string_lossy()))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Args { items, inline_value: None, only_positional: false })
    }

    /// The next flag or positional argument.
    pub fn next_arg(&mut self) -> Result<Option<Arg>, UsageError> {
        if let Some(value) = self.inline_value.take() {
            return Err(UsageError(format!("unexpected value '{value}': this flag takes none")));
        }
        let Some(item) = self.items.pop_front() else {
            return Ok(None);
        };
        if self.only_positional || item == "-" || !item.starts_with('-') {
            return Ok(Some(Arg::Positional(item)));
        }
        if item == "--" {
            self.only_positional = true;
            return self.next_arg();
        }
        match item.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                self.inline_value = Some(value.to_owned());
                Ok(Some(Arg::Flag(flag.to_owned())))
            }
            _ => Ok(Some(Arg::Flag(item))),
        }
    }

    /// The value of the flag just read.
    pub fn value(&mut self, flag: &str) -> Result<String, UsageError> {
        if let Some(value) = self.inline_value.take() {
            return Ok(value);
        }
        self.items.pop_front().ok_or_else(|| UsageError(format!("{flag} needs a value")))
    }

    /// The value of the flag just read, parsed.
    pub fn parsed<T: FromStr>(&mut self, flag: &str, expected: &str) -> Result<T, UsageError> {
        let text = self.value(flag)?;
        text.parse().map_err(|_| UsageError(format!("invalid {flag} '{text}': expected {expected}")))
    }
}

/// The error for a flag nobody asked for.
pub fn unknown_flag(flag: &str) -> UsageError {
    UsageError(format!("unknown option '{flag}' (see --help)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::new(list.iter().map(OsString::from)).unwrap()
    }

    #[test]
    fn flags_values_and_positionals() {
        let mut a = args(&["--dir", "out", "--json", "x", "--expires=7d", "--", "--literal"]);
        assert_eq!(a.next_arg().unwrap(), Some(Arg::Flag("--dir".into())));
        assert_eq!(a.value("--dir").unwrap(), "out");
        assert_eq!(a.next_arg().unwrap(), Some(Arg::Flag("--json".into())));
        assert_eq!(a.next_arg().unwrap(), Some(Arg::Positional("x".into())));
        assert_eq!(a.next_arg().unwrap(), Some(Arg::Flag("--expires".into())));
        assert_eq!(a.value("--expires").unwrap(), "7d");
        assert_eq!(a.next_arg().unwrap(), Some(Arg::Positional("--literal".into())));
        assert_eq!(a.next_arg().unwrap(), None);
    }

    #[test]
    fn errors_name_the_flag() {
        let mut a = args(&["--workers"]);
        a.next_arg().unwrap();
        assert_eq!(a.value("--workers").unwrap_err().to_string(), "--workers needs a value");
        let mut a = args(&["--workers", "many"]);
        a.next_arg().unwrap();
        let err = a.parsed::<usize>("--workers", "a number").unwrap_err();
        assert_eq!(err.to_string(), "invalid --workers 'many': expected a number");
        let mut a = args(&["--json=yes"]);
        a.next_arg().unwrap();
        assert!(a.next_arg().is_err());
    }
}
