//! The `anonshare` command line: parses arguments into an [`Invocation`], runs it against a
//! server through the client library, writes results to stdout ([`output`]) and what happens
//! meanwhile to stderr ([`progress`]). `anonshare shell` hands over to [`shell`], which uses
//! the same settings, output and progress, and nothing of this file.

pub mod json;
pub mod output;
pub mod progress;
pub mod shell;

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;

use time::OffsetDateTime;

use crate::cli::output::{
    download_json, info_json, info_lines, list_json, list_lines, saved_lines, upload_json, write_out,
};
use crate::cli::progress::Console;
use crate::client::link::Link;
use crate::client::settings::{
    ClientSettings, DEFAULT_PARALLEL, DEFAULT_RETRIES, DEFAULT_SERVER, DEFAULT_TIMEOUT, MAX_PARALLEL,
    SERVER_ENV,
};
use crate::client::transfer::{self, ShareOptions};
use crate::client::{ClientError, Result, ShareUrl, join_host_port};
use crate::common::args::{Arg, Args, UsageError, unknown_flag};
use crate::common::expiry::parse_expiry;

/// Environment variable that holds an owner token, kept off the command line.
pub const TOKEN_ENV: &str = "ANONSHARE_TOKEN";

/// `anonshare --help`.
pub fn usage() -> String {
    format!(
        "anonshare {version}: share files anonymously through an anonshare server; every byte verified with SHA-256

Usage: anonshare [--server HOST:PORT] [--timeout D] [--retries N] [--parallel N] <COMMAND> [ARGS]

Commands:
  upload [--expires SPEC] [--max-downloads N | --once] [--json] PATH...
        Upload files and folders into a new share. Prints the share URL on stdout
        (the owner token goes to stderr). SPEC is a duration (90s, 30m, 12h, 7d) or
        a date (2026-12-01) or an RFC 3339 time; the server's default when omitted.
        --max-downloads N lets each file be downloaded completely N times, then it
        is gone; --once is --max-downloads 1.
  list [--json] URL
        One line per file on stdout: SIZE<TAB>SHA256<TAB>PATH.
  download [--dir DIR] [--json] URL [PATH...]
        Download every file of the share, or only the files and folders named, into
        DIR (default: the current folder). Each file is checked against its SHA-256
        and appears under its name only when it matches; a cut download is kept as
        NAME.anonshare-part and resumed by the next try. Prints saved paths.
  info [--json] URL
        The share's expiry, size and download budget, then one line per file:
        SIZE<TAB>SHA256<TAB>DOWNLOADS-LEFT<TAB>PATH.
  delete [--token T] URL
        Delete the share at once; T is the owner token upload printed [env: {TOKEN_ENV}].
  shell [HOST:PORT]
        Interactive menu: upload, list, download, quit. Works with piped input too.
        Connects to HOST:PORT, else --server, else asks; the options below apply.

URL is ftp://HOST:PORT/CODE/ as printed by upload (a bare CODE uses --server).

Options:
  --server HOST:PORT   server for upload and bare codes [env: {SERVER_ENV}] [default: {DEFAULT_SERVER}]
  --timeout D          how long to wait for the server at any one step [default: {timeout}s]
  --retries N          reconnect and resume up to N times in a row after a dropped or
                       timed-out connection, waiting longer each time [default: {retries}]
  --parallel N         move up to N files at once, each on its own connection (1-{MAX_PARALLEL})
                       [default: {parallel}]
  --insecure           speak TLS without checking the server's certificate when the share
                       URL carries no #pin= (a loopback server is never checked)
  --json               print a JSON object instead of lines (upload, list, download, info)
  -h, --help           print this help
  -V, --version        print the version

Exit codes:
  0  done
  1  usage error, or a local file that cannot be read or written
  2  cannot reach the server, or the connection failed
  3  share or file not found, or expired
  4  integrity failure: bytes did not match their SHA-256
  5  refused by the server (a limit or a rule), or a download that would not fit on the disk
",
        version = env!("CARGO_PKG_VERSION"),
        timeout = DEFAULT_TIMEOUT.as_secs(),
        retries = DEFAULT_RETRIES,
        parallel = DEFAULT_PARALLEL,
    )
}

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// `--server`, `--timeout`, `--retries` and `--parallel`.
    pub settings: ClientSettings,
    pub json: bool,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Upload { paths: Vec<PathBuf>, expires: Option<String>, max_downloads: Option<u64> },
    List { url: String },
    Download { url: String, paths: Vec<String>, dir: PathBuf },
    Info { url: String },
    Delete { url: String, token: String },
    Shell { address: Option<String> },
    Help,
    Version,
}

/// Parses the command line (without the program name).
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, UsageError> {
    let mut args = Args::new(args)?;
    let mut settings = ClientSettings::default();
    let mut json = false;
    let mut expires = None;
    let mut dir = None;
    let mut max_downloads = None;
    let mut token = None;
    let mut positional = Vec::new();
    while let Some(arg) = args.next_arg()? {
        match arg {
            Arg::Positional(value) => positional.push(value),
            Arg::Flag(flag) => match flag.as_str() {
                "-h" | "--help" => return Ok(Invocation { settings, json, action: Action::Help }),
                "-V" | "--version" => return Ok(Invocation { settings, json, action: Action::Version }),
                "--max-downloads" => {
                    let text = args.value(&flag)?;
                    let count = text.parse().ok().filter(|&n: &u64| n > 0).ok_or_else(|| {
                        UsageError(format!(
                            "invalid --max-downloads '{text}': expected a number of 1 or more"
                        ))
                    })?;
                    max_downloads = Some(count);
                }
                "--once" => max_downloads = Some(1),
                "--token" => token = Some(args.value(&flag)?),
                "--json" => json = true,
                "--expires" => expires = Some(args.value(&flag)?),
                "--dir" => dir = Some(PathBuf::from(args.value(&flag)?)),
                _ => {
                    if !settings.read_flag(&flag, &mut args)? {
                        return Err(unknown_flag(&flag));
                    }
                }
            },
        }
    }
    let mut positional = positional.into_iter();
    let command = positional.next().ok_or_else(|| {
        UsageError("missing command: upload, list, download, info, delete or shell (see --help)".into())
    })?;
    let rest: Vec<String> = positional.collect();
    let only = |flag: &str, allowed: bool| {
        if allowed { Ok(()) } else { Err(UsageError(format!("{flag} does not apply to '{command}'"))) }
    };
    only("--max-downloads", max_downloads.is_none() || command == "upload")?;
    only("--token", token.is_none() || command == "delete")?;
    let action = match command.as_str() {
        "upload" => {
            only("--dir", dir.is_none())?;
            if rest.is_empty() {
                return Err(UsageError("upload needs at least one file or folder".into()));
            }
            Action::Upload { paths: rest.into_iter().map(PathBuf::from).collect(), expires, max_downloads }
        }
        "info" => {
            only("--dir", dir.is_none())?;
            only("--expires", expires.is_none())?;
            match <[String; 1]>::try_from(rest) {
                Ok([url]) => Action::Info { url },
                Err(_) => return Err(UsageError("info needs exactly one share URL".into())),
            }
        }
        "delete" => {
            only("--dir", dir.is_none())?;
            only("--expires", expires.is_none())?;
            let token =
                token.or_else(|| std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty())).ok_or_else(
                    || UsageError(format!("delete needs the owner token: --token T or {TOKEN_ENV}")),
                )?;
            match <[String; 1]>::try_from(rest) {
                Ok([url]) => Action::Delete { url, token },
                Err(_) => return Err(UsageError("delete needs exactly one share URL".into())),
            }
        }
        "list" => {
            only("--dir", dir.is_none())?;
            only("--expires", expires.is_none())?;
            match <[String; 1]>::try_from(rest) {
                Ok([url]) => Action::List { url },
                Err(_) => return Err(UsageError("list needs exactly one share URL".into())),
            }
        }
        "download" => {
            only("--expires", expires.is_none())?;
            let mut rest = rest.into_iter();
            let url = rest.next().ok_or_else(|| UsageError("download needs a share URL".into()))?;
            Action::Download { url, paths: rest.collect(), dir: dir.unwrap_or_else(|| PathBuf::from(".")) }
        }
        "shell" => {
            only("--dir", dir.is_none())?;
            only("--expires", expires.is_none())?;
            only("--json", !json)?;
            if rest.len() > 1 {
                return Err(UsageError("shell takes at most one HOST:PORT".into()));
            }
            Action::Shell { address: rest.into_iter().next() }
        }
        "help" => Action::Help,
        other => {
            return Err(UsageError(format!(
                "unknown command '{other}': expected upload, list, download, info, delete or shell"
            )));
        }
    };
    Ok(Invocation { settings, json, action })
}

/// Runs an invocation; results go to `out`.
pub fn run(invocation: &Invocation, out: &mut dyn Write) -> Result<()> {
    let settings = &invocation.settings;
    let console = Console::for_terminal();
    let json = invocation.json;
    match &invocation.action {
        Action::Help => write_out(out, &usage()),
        Action::Version => write_out(out, &format!("anonshare {}\n", env!("CARGO_PKG_VERSION"))),
        Action::Upload { paths, expires, max_downloads } => {
            let lifetime = expires
                .as_deref()
                .map(|spec| {
                    parse_expiry(spec, OffsetDateTime::now_utc())
                        .map_err(|err| ClientError::Usage(err.to_string()))
                })
                .transpose()?;
            let (host, port) = settings.server_address()?;
            let link = Link::new(join_host_port(&host, port), settings);
            let options = ShareOptions { lifetime, downloads: *max_downloads };
            let report = transfer::publish(link, paths, options, &console);
            console.end();
            let report = report?;
            let url = ShareUrl { host, port, code: report.share.code.clone(), pin: report.pin };
            eprintln!("owner token: {} (keep it to manage this share)", report.share.owner_token);
            eprintln!("expires: {}", report.share.expires);
            write_out(out, &if json { upload_json(&url, &report) } else { format!("{url}\n") })
        }
        Action::List { url } => {
            let url = settings.share_url(url)?;
            let listing = with_link(&url, settings, |link| transfer::list_share(link, &url.code, &console))?;
            let files = &listing.files;
            write_out(
                out,
                &if json { list_json(&url, &listing.info.expires, files) } else { list_lines(files) },
            )
        }
        Action::Download { url, paths, dir } => {
            let url = settings.share_url(url)?;
            let saved = with_link(&url, settings, |link| {
                let listing = transfer::list_share(link, &url.code, &console)?;
                let chosen = transfer::select(&listing.files, paths)?;
                transfer::download(link, &url.code, &chosen, dir, &console)
            });
            console.end();
            let saved = saved?;
            write_out(out, &if json { download_json(&url, &saved) } else { saved_lines(&saved) })
        }
        Action::Info { url } => {
            let url = settings.share_url(url)?;
            let (listing, left) = with_link(&url, settings, |link| {
                let listing = transfer::list_share(link, &url.code, &console)?;
                let left = transfer::downloads_left(link, &url.code, &listing, &console)?;
                Ok((listing, left))
            })?;
            let info = &listing.info;
            let files: Vec<_> = listing.files.iter().cloned().zip(left).collect();
            write_out(out, &if json { info_json(&url, info, &files) } else { info_lines(&url, info, &files) })
        }
        Action::Delete { url, token } => {
            let url = settings.share_url(url)?;
            with_link(&url, settings, |link| {
                link.run(&console, |connection, attempt| match connection.delete_share(&url.code, token) {
                    // Deleted before the connection dropped.
                    Err(err) if attempt.is_retry() && err.is_not_found() => Ok(()),
                    other => other,
                })
            })?;
            eprintln!("deleted {url}");
            Ok(())
        }
        Action::Shell { address } => shell::run(address.as_deref(), settings, &mut io::stdin().lock(), out),
    }
}

/// Runs `work` on a link to the share's server, then says goodbye.
fn with_link<T>(
    url: &ShareUrl,
    settings: &ClientSettings,
    work: impl FnOnce(&mut Link) -> Result<T>,
) -> Result<T> {
    let mut link = Link::new(url.address(), settings).pinned(url.pin);
    let result = work(&mut link);
    link.quit();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Result<Action, String> {
        parse_args(list.iter().map(OsString::from)).map(|i| i.action).map_err(|e| e.to_string())
    }

    #[test]
    fn commands() {
        assert_eq!(
            parse(&["upload", "--expires", "2h", "a", "b"]),
            Ok(Action::Upload {
                paths: vec!["a".into(), "b".into()],
                expires: Some("2h".into()),
                max_downloads: None
            })
        );
        assert_eq!(parse(&["list", "ftp://h:1/c/"]), Ok(Action::List { url: "ftp://h:1/c/".into() }));
        assert_eq!(
            parse(&["download", "u", "x", "--dir", "out"]),
            Ok(Action::Download { url: "u".into(), paths: vec!["x".into()], dir: "out".into() })
        );
        assert_eq!(parse(&["shell"]), Ok(Action::Shell { address: None }));
        assert_eq!(
            parse(&["upload", "--once", "a"]),
            Ok(Action::Upload { paths: vec!["a".into()], expires: None, max_downloads: Some(1) })
        );
        assert_eq!(parse(&["info", "u"]), Ok(Action::Info { url: "u".into() }));
        assert_eq!(
            parse(&["delete", "--token", "t", "u"]),
            Ok(Action::Delete { url: "u".into(), token: "t".into() })
        );
        assert_eq!(parse(&["--help"]), Ok(Action::Help));
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        assert_eq!(
            parse(&[]).unwrap_err(),
            "missing command: upload, list, download, info, delete or shell (see --help)"
        );
        assert!(parse(&["upload", "--max-downloads", "0", "a"]).unwrap_err().contains("--max-downloads"));
        assert_eq!(parse(&["list", "--once", "u"]).unwrap_err(), "--max-downloads does not apply to 'list'");
        assert_eq!(parse(&["list", "--token", "t", "u"]).unwrap_err(), "--token does not apply to 'list'");
        assert_eq!(parse(&["upload"]).unwrap_err(), "upload needs at least one file or folder");
        assert_eq!(parse(&["list"]).unwrap_err(), "list needs exactly one share URL");
        assert_eq!(parse(&["list", "u", "--dir", "x"]).unwrap_err(), "--dir does not apply to 'list'");
        assert_eq!(
            parse(&["frobnicate"]).unwrap_err(),
            "unknown command 'frobnicate': expected upload, list, download, info, delete or shell"
        );
        assert!(parse(&["--timeout", "0s", "list", "u"]).unwrap_err().contains("--timeout"));
        assert_eq!(parse(&["--frob", "list", "u"]).unwrap_err(), "unknown option '--frob' (see --help)");
    }

    #[test]
    fn the_client_settings_apply_to_every_command_the_shell_included() {
        let settings = |list: &[&str]| parse_args(list.iter().map(OsString::from)).unwrap().settings;
        let expected = ClientSettings {
            server: Some("example.org:9".into()),
            timeout: std::time::Duration::from_secs(5),
            retries: 2,
            parallel: 3,
            insecure: true,
        };
        let flags = [
            "--server",
            "example.org:9",
            "--timeout",
            "5s",
            "--retries",
            "2",
            "--parallel",
            "3",
            "--insecure",
        ];
        assert_eq!(settings(&[&flags[..], &["shell"]].concat()), expected);
        assert_eq!(settings(&[&["shell", "h:1"], &flags[..]].concat()), expected, "after the command too");
        assert_eq!(settings(&["list", "u"]), ClientSettings::default());
    }
}
