//! The client's settings, one set for every front-end: which server, how long to wait at any one
//! step, how many retries, how many connections at once. The command line, the shell and the
//! window each build one [`ClientSettings`] from their flags and the environment, and every
//! [`Link`](crate::client::link::Link) they open is made from it. Every default is a named
//! constant here.

use std::time::Duration;

use crate::client::{ClientError, Result, ShareUrl, split_host_port};
use crate::common::args::{Args, UsageError};
use crate::common::expiry::parse_duration;

pub use crate::client::connection::DEFAULT_TIMEOUT;
/// Port assumed when a server is named by its host alone.
pub use crate::client::url::DEFAULT_PORT;

/// Server used when neither `--server` nor [`SERVER_ENV`] names one.
pub const DEFAULT_SERVER: &str = "127.0.0.1:2121";
/// Environment variable that names the server.
pub const SERVER_ENV: &str = "ANONSHARE_SERVER";
/// Retries after a failure, in a row, before giving up (the `--retries` default).
pub const DEFAULT_RETRIES: u32 = 5;
/// Connections a transfer of many files uses at once (the `--parallel` default).
pub const DEFAULT_PARALLEL: usize = 4;
/// Most connections `--parallel` may ask for.
pub const MAX_PARALLEL: usize = 16;

/// How a client reaches its server and moves files. The flags `--server`, `--timeout`,
/// `--retries` and `--parallel` set it, the same way in every front-end ([`Self::read_flag`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// The server `--server` names (`HOST:PORT`, or a host for [`DEFAULT_PORT`]); when `None`,
    /// [`SERVER_ENV`], then [`DEFAULT_SERVER`].
    pub server: Option<String>,
    /// How long a connect, a reply, or the next bytes of a transfer may take.
    pub timeout: Duration,
    /// Failures in a row, without a byte moved, before work gives up.
    pub retries: u32,
    /// Connections a transfer of many files may use at once (1 to [`MAX_PARALLEL`]).
    pub parallel: usize,
    /// `--insecure`: TLS without checking the server's certificate, when no share URL pins it.
    pub insecure: bool,
}

impl Default for ClientSettings {
    fn default() -> ClientSettings {
        ClientSettings {
            server: None,
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            parallel: DEFAULT_PARALLEL,
            insecure: false,
        }
    }
}

impl ClientSettings {
    /// Takes in `flag` when it is one of the settings' flags, reading its value from `args`;
    /// false for any other flag, which the caller handles.
    pub fn read_flag(&mut self, flag: &str, args: &mut Args) -> Result<bool, UsageError> {
        match flag {
            "--server" => self.server = Some(args.value(flag)?),
            "--timeout" => {
                let text = args.value(flag)?;
                self.timeout = parse_duration(&text).ok().filter(|d| !d.is_zero()).ok_or_else(|| {
                    UsageError(format!("invalid --timeout '{text}': expected a duration like 30s or 5m"))
                })?;
            }
            "--retries" => {
                let text = args.value(flag)?;
                self.retries = text.parse().map_err(|_| {
                    UsageError(format!("invalid --retries '{text}': expected a number like 5"))
                })?;
            }
            "--parallel" => {
                let text = args.value(flag)?;
                self.parallel =
                    text.parse().ok().filter(|n| (1..=MAX_PARALLEL).contains(n)).ok_or_else(|| {
                        UsageError(format!("invalid --parallel '{text}': expected 1 to {MAX_PARALLEL}"))
                    })?;
            }
            "--insecure" => self.insecure = true,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The server's host and port: `--server`, else [`SERVER_ENV`], else [`DEFAULT_SERVER`].
    pub fn server_address(&self) -> Result<(String, u16)> {
        let env = std::env::var(SERVER_ENV).ok();
        server_from(self.server.as_deref(), env.as_deref())
    }

    /// A share URL, or a bare share code on [`Self::server_address`].
    pub fn share_url(&self, text: &str) -> Result<ShareUrl> {
        if text.starts_with("ftp://") || text.is_empty() || text.contains(['/', ':']) {
            return ShareUrl::parse(text);
        }
        let (host, port) = self.server_address()?;
        Ok(ShareUrl { host, port, code: text.to_owned(), pin: None })
    }
}

impl ClientSettings {
    /// A share URL, the URL of a file in a share (and that file's path), or a bare share code.
    pub fn share_url_of_file(&self, text: &str) -> Result<(ShareUrl, Option<String>)> {
        match text.starts_with("ftp://") {
            true => ShareUrl::parse_file(text),
            false => self.share_url(text).map(|url| (url, None)),
        }
    }
}

/// The server a flag names, else the one an environment variable names, else the default.
fn server_from(flag: Option<&str>, env: Option<&str>) -> Result<(String, u16)> {
    parse_server(flag.or(env.filter(|text| !text.is_empty())).unwrap_or(DEFAULT_SERVER))
}

/// `HOST:PORT`, or a host for [`DEFAULT_PORT`].
pub fn parse_server(text: &str) -> Result<(String, u16)> {
    split_host_port(text, DEFAULT_PORT).ok_or_else(|| {
        let hint = match text.rsplit_once(':') {
            // `::1:2121`: an IPv6 address needs brackets to tell it from its port.
            Some((host, port)) if host.contains(':') && port.parse::<u16>().is_ok() => {
                format!("write an IPv6 address in brackets, like [{host}]:{port}")
            }
            _ => "expected HOST:PORT".into(),
        };
        ClientError::Usage(format!("invalid server address '{text}': {hint}"))
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    /// The settings the flags in `list` make, or the usage error.
    fn read(list: &[&str]) -> Result<ClientSettings, String> {
        let mut args = Args::new(list.iter().map(OsString::from)).unwrap();
        let mut settings = ClientSettings::default();
        while let Some(arg) = args.next_arg().map_err(|e| e.to_string())? {
            let crate::common::args::Arg::Flag(flag) = arg else { panic!("only flags here") };
            if !settings.read_flag(&flag, &mut args).map_err(|e| e.to_string())? {
                return Err(format!("not a setting: {flag}"));
            }
        }
        Ok(settings)
    }

    #[test]
    fn defaults_are_the_named_constants() {
        assert_eq!(
            read(&[]),
            Ok(ClientSettings {
                server: None,
                timeout: DEFAULT_TIMEOUT,
                retries: DEFAULT_RETRIES,
                parallel: DEFAULT_PARALLEL,
                insecure: false,
            })
        );
    }

    #[test]
    fn flags_set_each_setting() {
        let settings =
            read(&["--server", "example.org:9", "--timeout=5s", "--retries", "0", "--parallel", "3"]);
        assert_eq!(
            settings,
            Ok(ClientSettings {
                server: Some("example.org:9".into()),
                timeout: Duration::from_secs(5),
                retries: 0,
                parallel: 3,
                insecure: false,
            })
        );
        assert_eq!(read(&["--parallel", "16"]).unwrap().parallel, MAX_PARALLEL);
        assert_eq!(read(&["--json"]), Err("not a setting: --json".into()));
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        assert_eq!(
            read(&["--timeout", "0s"]),
            Err("invalid --timeout '0s': expected a duration like 30s or 5m".into())
        );
        assert_eq!(
            read(&["--retries", "-1"]),
            Err("invalid --retries '-1': expected a number like 5".into())
        );
        assert_eq!(read(&["--parallel", "0"]), Err("invalid --parallel '0': expected 1 to 16".into()));
        assert_eq!(read(&["--parallel", "17"]), Err("invalid --parallel '17': expected 1 to 16".into()));
        assert_eq!(read(&["--server"]), Err("--server needs a value".into()));
    }

    #[test]
    fn the_server_comes_from_the_flag_then_the_environment_then_the_default() {
        let check = |flag, env, expected: (&str, u16)| {
            let (host, port) = server_from(flag, env).unwrap();
            assert_eq!((host.as_str(), port), expected, "flag {flag:?}, env {env:?}");
        };
        check(Some("flag.example:1"), Some("env.example:2"), ("flag.example", 1));
        check(None, Some("env.example:2"), ("env.example", 2));
        check(None, Some(""), ("127.0.0.1", DEFAULT_PORT));
        check(None, None, ("127.0.0.1", DEFAULT_PORT));
        check(Some("bare.example"), None, ("bare.example", DEFAULT_PORT));
        check(Some("[::1]:7"), None, ("::1", 7));
        assert_eq!(server_from(Some("a:b"), None).unwrap_err().exit_code(), 1);
        assert_eq!(
            server_from(Some("::1:2121"), None).unwrap_err().to_string(),
            "invalid server address '::1:2121': write an IPv6 address in brackets, like [::1]:2121"
        );
    }

    #[test]
    fn bare_codes_use_the_server() {
        let on = |server: &str| ClientSettings { server: Some(server.into()), ..ClientSettings::default() };
        let url = on("example.org:9").share_url("abc").unwrap();
        assert_eq!(url.to_string(), "ftp://example.org:9/abc/");
        assert_eq!(on("example.org").share_url("abc").unwrap().port, DEFAULT_PORT);
        assert_eq!(on("example.org").share_url("ftp://h:1/c/").unwrap().to_string(), "ftp://h:1/c/");
        assert!(on("example.org").share_url("not/a/url").is_err());
    }
}
