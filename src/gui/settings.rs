//! What the window starts with, and `anonshare-gui`'s command line that sets it.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::client::ShareUrl;
use crate::client::settings::{
    ClientSettings, DEFAULT_PARALLEL, DEFAULT_PORT, DEFAULT_RETRIES, DEFAULT_TIMEOUT, MAX_PARALLEL,
    SERVER_ENV,
};
use crate::common::args::{Arg, Args, UsageError, unknown_flag};

use time::UtcOffset;

/// What the window starts with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    /// The timeout, retries and parallel connections of every link the window opens. Its
    /// `server` only fills in `host` and `port` at start.
    pub client: ClientSettings,
    /// Where downloads go unless the user picks another folder.
    pub download_dir: PathBuf,
    /// A share to connect to and view as soon as the window opens.
    pub open: Option<ShareUrl>,
    /// The user's time zone, for the times the window shows (learned at start; UTC if unknown).
    pub local_offset: UtcOffset,
    /// Whether a file dialog can open: the desktop portal's session bus, or zenity.
    pub file_dialog: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            host: "127.0.0.1".into(),
            port: DEFAULT_PORT,
            client: ClientSettings::default(),
            download_dir: default_download_dir(),
            open: None,
            local_offset: UtcOffset::UTC,
            file_dialog: file_dialog_available(),
        }
    }
}

/// Whether rfd can show a file dialog: through the XDG desktop portal (on the session bus) or
/// zenity (on the PATH). Without either, it shows nothing and says nothing.
fn file_dialog_available() -> bool {
    let on_path = |program: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
    };
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|bus| !bus.is_empty()) || on_path("zenity")
}

/// `~/Downloads` when there is one, else the current folder.
fn default_download_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join("Downloads"))
        .filter(|dir| dir.is_dir())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `anonshare-gui --help`.
pub fn usage() -> String {
    format!(
        "usage: anonshare-gui [--timeout D] [--retries N] [--parallel N] [HOST:PORT | ftp://HOST:PORT/CODE/]\n\n\
         Opens the desktop client. HOST:PORT fills in the server (else --server HOST:PORT, else\n\
         {SERVER_ENV}, else 127.0.0.1:{DEFAULT_PORT}); a share URL connects to its server and lists the\n\
         share at once.\n\n\
         Options:\n  \
         --timeout D    how long to wait for the server at any one step [default: {timeout}s]\n  \
         --retries N    reconnect and resume up to N times in a row after a dropped connection\n                 \
         [default: {DEFAULT_RETRIES}]\n  \
         --parallel N   move up to N files at once, each on its own connection (1-{MAX_PARALLEL})\n                 \
         [default: {DEFAULT_PARALLEL}]\n",
        timeout = DEFAULT_TIMEOUT.as_secs(),
    )
}

/// Reads the command line (without the program name) into the window's settings; `None` when
/// it asks for help.
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Option<Settings>, String> {
    let mut settings = Settings::default();
    let mut args = Args::new(args).map_err(|err| err.to_string())?;
    let mut positional = Vec::new();
    let mut read = || -> Result<bool, UsageError> {
        while let Some(arg) = args.next_arg()? {
            match arg {
                Arg::Positional(value) => positional.push(value),
                Arg::Flag(flag) if flag == "-h" || flag == "--help" => return Ok(false),
                Arg::Flag(flag) => {
                    if !settings.client.read_flag(&flag, &mut args)? {
                        return Err(unknown_flag(&flag));
                    }
                }
            }
        }
        Ok(true)
    };
    if !read().map_err(|err| err.to_string())? {
        return Ok(None);
    }
    match positional.as_slice() {
        [] => {}
        [url] if url.starts_with("ftp://") => {
            let url = ShareUrl::parse(url).map_err(|err| err.to_string())?;
            settings.client.server = Some(url.address());
            settings.open = Some(url);
        }
        [address] => settings.client.server = Some(address.clone()),
        _ => return Err(format!("expected at most one HOST:PORT or share URL\n\n{}", usage())),
    }
    (settings.host, settings.port) = settings.client.server_address().map_err(|err| err.to_string())?;
    Ok(Some(settings))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn arguments() {
        let parse = |args: &[&str]| parse_args(args.iter().map(OsString::from)).map(|s| s.expect("settings"));
        let settings = parse(&["example.org:2200"]).unwrap();
        assert_eq!((settings.host.as_str(), settings.port, settings.open), ("example.org", 2200, None));
        assert_eq!(
            settings.client,
            ClientSettings { server: Some("example.org:2200".into()), ..Default::default() }
        );
        let settings = parse(&["--parallel", "3", "--retries=0", "--timeout", "5s", "h"]).unwrap();
        assert_eq!((settings.host.as_str(), settings.port), ("h", DEFAULT_PORT));
        assert_eq!(
            (settings.client.parallel, settings.client.retries, settings.client.timeout),
            (3, 0, Duration::from_secs(5))
        );
        assert_eq!(parse(&["--server", "s:7"]).unwrap().port, 7, "--server names the server too");
        assert_eq!(parse(&["--parallel", "0"]).unwrap_err(), "invalid --parallel '0': expected 1 to 16");
        assert_eq!(parse(&["--frob"]).unwrap_err(), "unknown option '--frob' (see --help)");
        let settings = parse(&["ftp://10.0.0.1:2121/abc/"]).unwrap();
        assert_eq!((settings.host.as_str(), settings.open.unwrap().code.as_str()), ("10.0.0.1", "abc"));
        assert_eq!(parse_args([OsString::from("--help")]), Ok(None));
        assert!(parse(&["a", "b"]).is_err());
        assert!(parse(&["ftp://nocode"]).is_err());
    }
}
