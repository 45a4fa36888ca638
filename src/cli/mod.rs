//! The `anonshare` command line: parses arguments into an [`Invocation`], runs it against a
//! server through `client` and `transfer`, writes results to stdout and progress to stderr.

pub mod json;
pub mod shell;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::client::link::{DEFAULT_PARALLEL, DEFAULT_RETRIES, Link};
use crate::client::transfer::{self, Observer, Quiet, SavedFile, ShareOptions, UploadReport};
use crate::client::{ClientError, DEFAULT_TIMEOUT, RemoteFile, Result, ShareInfo, ShareUrl, split_host_port};
use crate::common::args::{Arg, Args, UsageError, unknown_flag};
use crate::common::expiry::parse_expiry;

/// Server used when neither `--server` nor `ANONSHARE_SERVER` names one.
pub const DEFAULT_SERVER: &str = "127.0.0.1:2121";
/// Port assumed when `--server` names only a host.
pub const DEFAULT_PORT: u16 = 2121;
/// Environment variable that names the server.
pub const SERVER_ENV: &str = "ANONSHARE_SERVER";
/// Most connections `--parallel` may ask for.
pub const MAX_PARALLEL: usize = 16;
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

URL is ftp://HOST:PORT/CODE/ as printed by upload (a bare CODE uses --server).

Options:
  --server HOST:PORT   server for upload and bare codes [env: {SERVER_ENV}] [default: {DEFAULT_SERVER}]
  --timeout D          how long to wait for the server at any one step [default: {timeout}s]
  --retries N          reconnect and resume up to N times in a row after a dropped or
                       timed-out connection, waiting longer each time [default: {retries}]
  --parallel N         move up to N files at once, each on its own connection (1-{MAX_PARALLEL})
                       [default: {parallel}]
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
    pub server: Option<String>,
    pub timeout: Duration,
    pub retries: u32,
    pub parallel: usize,
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
    let mut server = None;
    let mut timeout = DEFAULT_TIMEOUT;
    let mut retries = DEFAULT_RETRIES;
    let mut parallel = DEFAULT_PARALLEL;
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
                "-h" | "--help" => {
                    return Ok(Invocation { server, timeout, retries, parallel, json, action: Action::Help });
                }
                "-V" | "--version" => {
                    return Ok(Invocation {
                        server,
                        timeout,
                        retries,
                        parallel,
                        json,
                        action: Action::Version,
                    });
                }
                "--retries" => {
                    let text = args.value(&flag)?;
                    retries = text.parse().map_err(|_| {
                        UsageError(format!("invalid --retries '{text}': expected a number like 5"))
                    })?;
                }
                "--parallel" => {
                    let text = args.value(&flag)?;
                    parallel =
                        text.parse().ok().filter(|n| (1..=MAX_PARALLEL).contains(n)).ok_or_else(|| {
                            UsageError(format!("invalid --parallel '{text}': expected 1 to {MAX_PARALLEL}"))
                        })?;
                }
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
                "--server" => server = Some(args.value(&flag)?),
                "--timeout" => {
                    let text = args.value(&flag)?;
                    timeout = crate::common::expiry::parse_duration(&text)
                        .ok()
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| {
                            UsageError(format!(
                                "invalid --timeout '{text}': expected a duration like 30s or 5m"
                            ))
                        })?;
                }
                "--json" => json = true,
                "--expires" => expires = Some(args.value(&flag)?),
                "--dir" => dir = Some(PathBuf::from(args.value(&flag)?)),
                _ => return Err(unknown_flag(&flag)),
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
    Ok(Invocation { server, timeout, retries, parallel, json, action })
}

/// The server address from `--server`, the environment, or the default; a bare host gets the
/// default port.
pub fn server_address(flag: Option<&str>) -> Result<(String, u16)> {
    let text = match flag {
        Some(text) => text.to_owned(),
        None => std::env::var(SERVER_ENV)
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned()),
    };
    split_host_port(&text, DEFAULT_PORT)
        .ok_or_else(|| ClientError::Usage(format!("invalid server address '{text}': expected HOST:PORT")))
}

/// A share URL, or a bare code on the configured server.
pub fn share_url(text: &str, server: Option<&str>) -> Result<ShareUrl> {
    if text.starts_with("ftp://") {
        return ShareUrl::parse(text);
    }
    if text.is_empty() || text.contains(['/', ':']) {
        return ShareUrl::parse(text);
    }
    let (host, port) = server_address(server)?;
    Ok(ShareUrl { host, port, code: text.to_owned() })
}

/// Runs an invocation; results go to `out`.
pub fn run(invocation: &Invocation, out: &mut dyn Write) -> Result<()> {
    let (timeout, retries, parallel) = (invocation.timeout, invocation.retries, invocation.parallel);
    let server = invocation.server.as_deref();
    let progress = progress_for_terminal();
    let observer: &dyn Observer = match progress.as_ref() {
        Some(progress) => progress,
        None => &Quiet,
    };
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
            let (host, port) = server_address(server)?;
            let plan = transfer::plan_upload(paths)?;
            let address = crate::client::join_host_port(&host, port);
            let mut link = Link::new(address, timeout, retries).with_parallel(parallel);
            let options = ShareOptions { lifetime, downloads: *max_downloads };
            let report = transfer::upload(&mut link, &plan, options, observer);
            // QUIT would seal the share: a failed upload only hangs up, and publishes nothing.
            if report.is_ok() {
                link.quit();
            }
            progress.iter().for_each(TerminalProgress::end);
            let report = report?;
            let url = ShareUrl { host, port, code: report.share.code.clone() };
            eprintln!("owner token: {} (keep it to manage this share)", report.share.owner_token);
            eprintln!("expires: {}", report.share.expires);
            write_out(out, &if json { upload_json(&url, &report) } else { format!("{url}\n") })
        }
        Action::List { url } => {
            let url = share_url(url, server)?;
            let (info, files) = with_link(&url, (timeout, retries, parallel), |link| {
                link.run(|connection, _| Ok((connection.info(&url.code)?, connection.walk_share(&url.code)?)))
            })?;
            write_out(out, &if json { list_json(&url, &info.expires, &files) } else { list_lines(&files) })
        }
        Action::Download { url, paths, dir } => {
            let url = share_url(url, server)?;
            let saved = with_link(&url, (timeout, retries, parallel), |link| {
                let files = link.run(|connection, _| {
                    connection.info(&url.code)?;
                    connection.walk_share(&url.code)
                })?;
                let chosen = transfer::select(&files, paths)?;
                transfer::download(link, &url.code, &chosen, dir, observer)
            });
            progress.iter().for_each(TerminalProgress::end);
            let saved = saved?;
            write_out(out, &if json { download_json(&url, &saved) } else { saved_lines(&saved) })
        }
        Action::Info { url } => {
            let url = share_url(url, server)?;
            let (info, files) = with_link(&url, (timeout, retries, parallel), |link| {
                link.run(|connection, _| {
                    let info = connection.info(&url.code)?;
                    let mut files = Vec::new();
                    for file in connection.walk_share(&url.code)? {
                        let left = match info.downloads {
                            Some(_) => {
                                connection.info_of(&format!("/{}/{}", url.code, file.path))?.downloads_left
                            }
                            None => None,
                        };
                        files.push((file, left));
                    }
                    Ok((info, files))
                })
            })?;
            write_out(
                out,
                &if json { info_json(&url, &info, &files) } else { info_lines(&url, &info, &files) },
            )
        }
        Action::Delete { url, token } => {
            let url = share_url(url, server)?;
            with_link(&url, (timeout, retries, parallel), |link| {
                link.run(|connection, attempt| match connection.delete_share(&url.code, token) {
                    // Deleted before the connection dropped.
                    Err(err) if attempt.is_retry() && err.is_not_found() => Ok(()),
                    other => other,
                })
            })?;
            eprintln!("deleted {url}");
            Ok(())
        }
        Action::Shell { address } => {
            crate::cli::shell::run(address.as_deref(), (timeout, retries), &mut io::stdin().lock(), out)
        }
    }
}

/// Runs `work` on a link to the share's server, then says goodbye.
fn with_link<T>(
    url: &ShareUrl,
    (timeout, retries, parallel): (Duration, u32, usize),
    work: impl FnOnce(&mut Link) -> Result<T>,
) -> Result<T> {
    let mut link = Link::new(url.address(), timeout, retries).with_parallel(parallel);
    let result = work(&mut link);
    link.quit();
    result
}

fn write_out(out: &mut dyn Write, text: &str) -> Result<()> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|err| ClientError::Usage(format!("cannot write to stdout: {err}")))
}

/// `SIZE<TAB>SHA256<TAB>PATH` lines.
pub fn list_lines(files: &[RemoteFile]) -> String {
    files.iter().map(|f| format!("{}\t{}\t{}\n", f.size, f.sha256, f.path)).collect()
}

/// Local paths of saved files, one per line.
pub fn saved_lines(saved: &[SavedFile]) -> String {
    saved.iter().map(|s| format!("{}\n", s.local.display())).collect()
}

fn files_json(files: &[RemoteFile]) -> String {
    let items: Vec<String> = files
        .iter()
        .map(|f| {
            format!("{{\"path\":{},\"size\":{},\"sha256\":\"{}\"}}", json::string(&f.path), f.size, f.sha256)
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn upload_json(url: &ShareUrl, report: &UploadReport) -> String {
    let files: Vec<RemoteFile> = report
        .files
        .iter()
        .map(|f| RemoteFile { path: f.path.clone(), size: f.size, sha256: f.sha256 })
        .collect();
    format!(
        "{{\"url\":{},\"code\":{},\"owner_token\":{},\"expires\":{},\"files\":{}}}\n",
        json::string(&url.to_string()),
        json::string(&url.code),
        json::string(&report.share.owner_token),
        json::string(&report.share.expires),
        files_json(&files)
    )
}

fn downloads_text(count: Option<u64>) -> String {
    count.map_or("unlimited".into(), |n| n.to_string())
}

/// The share's facts as `key: value` lines, then `SIZE<TAB>SHA256<TAB>DOWNLOADS-LEFT<TAB>PATH`.
fn info_lines(url: &ShareUrl, info: &ShareInfo, files: &[(RemoteFile, Option<u64>)]) -> String {
    let mut text = format!(
        "url: {url}\nexpires: {}\nfiles: {}\nbytes: {}\ndownloads per file: {}\n",
        info.expires,
        info.files,
        info.bytes,
        downloads_text(info.downloads)
    );
    for (file, left) in files {
        text.push_str(&format!("{}\t{}\t{}\t{}\n", file.size, file.sha256, downloads_text(*left), file.path));
    }
    text
}

fn info_json(url: &ShareUrl, info: &ShareInfo, files: &[(RemoteFile, Option<u64>)]) -> String {
    let number = |count: Option<u64>| count.map_or("null".into(), |n| n.to_string());
    let items: Vec<String> = files
        .iter()
        .map(|(f, left)| {
            format!(
                "{{\"path\":{},\"size\":{},\"sha256\":\"{}\",\"downloads_left\":{}}}",
                json::string(&f.path),
                f.size,
                f.sha256,
                number(*left)
            )
        })
        .collect();
    format!(
        "{{\"url\":{},\"expires\":{},\"bytes\":{},\"downloads\":{},\"files\":[{}]}}\n",
        json::string(&url.to_string()),
        json::string(&info.expires),
        info.bytes,
        number(info.downloads),
        items.join(",")
    )
}

fn list_json(url: &ShareUrl, expires: &str, files: &[RemoteFile]) -> String {
    format!(
        "{{\"url\":{},\"expires\":{},\"files\":{}}}\n",
        json::string(&url.to_string()),
        json::string(expires),
        files_json(files)
    )
}

fn download_json(url: &ShareUrl, saved: &[SavedFile]) -> String {
    let items: Vec<String> = saved
        .iter()
        .map(|s| {
            format!(
                "{{\"path\":{},\"size\":{},\"sha256\":\"{}\",\"saved_to\":{}}}",
                json::string(&s.file.path),
                s.file.size,
                s.file.sha256,
                json::string(&s.local.to_string_lossy())
            )
        })
        .collect();
    format!("{{\"url\":{},\"files\":[{}]}}\n", json::string(&url.to_string()), items.join(","))
}

/// Progress on stderr, only when stderr is a terminal.
pub fn progress_for_terminal() -> Option<TerminalProgress> {
    io::stderr().is_terminal().then(TerminalProgress::default)
}

/// One self-rewriting line on stderr for a whole transfer: files done, bytes moved of the files
/// started so far, and the file that started last. Files may move in parallel.
#[derive(Default)]
pub struct TerminalProgress(Mutex<Tally>);

#[derive(Default)]
struct Tally {
    /// Bytes moved and size, by file.
    files: BTreeMap<String, (u64, u64)>,
    finished: usize,
    latest: String,
    last_draw: Option<Instant>,
}

impl TerminalProgress {
    fn update(&self, force: bool, change: impl FnOnce(&mut Tally)) {
        let mut tally = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut tally);
        let now = Instant::now();
        if !force && tally.last_draw.is_some_and(|t| now.duration_since(t) < Duration::from_millis(100)) {
            return;
        }
        tally.last_draw = Some(now);
        let (done, size) = tally.files.values().fold((0, 0), |(d, s), (done, size)| (d + done, s + size));
        let percent = (done * 100).checked_div(size).unwrap_or(100);
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let files = tally.files.len();
        eprint!(
            "\r\x1b[K{}/{files} files  {:.1}/{:.1} MiB  {percent}%  {}",
            tally.finished,
            mib(done),
            mib(size),
            tally.latest
        );
    }

    /// Ends the progress line.
    pub fn end(&self) {
        if !self.0.lock().unwrap_or_else(PoisonError::into_inner).files.is_empty() {
            eprintln!();
        }
    }
}

impl Observer for TerminalProgress {
    fn start(&self, path: &str, size: u64) {
        self.update(true, |tally| {
            tally.files.insert(path.to_owned(), (0, size));
            tally.latest = path.to_owned();
        });
    }

    fn advance(&self, path: &str, bytes: u64) {
        self.update(false, |tally| {
            if let Some((done, _)) = tally.files.get_mut(path) {
                *done += bytes;
            }
        });
    }

    fn restart(&self, path: &str, kept: u64) {
        self.update(true, |tally| {
            if let Some((done, _)) = tally.files.get_mut(path) {
                *done = kept;
            }
        });
    }

    fn finish(&self, _path: &str) {
        self.update(true, |tally| tally.finished += 1);
    }
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
    }

    #[test]
    fn bare_codes_use_the_server() {
        let url = share_url("abc", Some("example.org:9")).unwrap();
        assert_eq!(url.to_string(), "ftp://example.org:9/abc/");
        assert_eq!(share_url("abc", Some("example.org")).unwrap().port, DEFAULT_PORT);
        assert!(share_url("not/a/url", None).is_err());
    }
}
