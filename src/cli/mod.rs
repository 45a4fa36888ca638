//! The `anonshare` command line: parses arguments into an [`Invocation`], runs it against a
//! server through the client library, writes results to stdout ([`output`]) and what happens
//! meanwhile to stderr ([`progress`]). `anonshare shell` hands over to [`shell`], which uses
//! the same settings, output and progress, and nothing of this file.

pub mod help;
pub mod interrupt;
pub mod json;
pub mod line_editor;
pub mod output;
pub mod progress;
pub mod shell;

pub use help::{command_usage, usage};

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::thread;

use time::OffsetDateTime;

use crate::cli::interrupt::{Event, GRACE, INTERRUPTED, Interrupts};
use crate::cli::output::{
    download_json, info_json, info_lines, list_json, list_lines, saved_lines, upload_json, write_out,
};
use crate::cli::progress::Console;
use crate::client::link::Link;
use crate::client::settings::ClientSettings;
use crate::client::transfer::{self, Existing, ShareOptions, UploadReport};
use crate::client::{ClientError, Result, ShareUrl, join_host_port};
use crate::common::args::{Arg, Args, UsageError, unknown_flag};
use crate::common::expiry::parse_expiry;

/// Environment variable that holds an owner token, kept off the command line.
pub const TOKEN_ENV: &str = "ANONSHARE_TOKEN";

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
    Upload {
        paths: Vec<PathBuf>,
        expires: Option<String>,
        max_downloads: Option<u64>,
    },
    List {
        url: String,
    },
    Download {
        url: String,
        paths: Vec<String>,
        dir: PathBuf,
        existing: Existing,
    },
    Info {
        url: String,
    },
    Delete {
        url: String,
        token: String,
    },
    Shell {
        address: Option<String>,
    },
    /// `--help`, of one command when one is named.
    Help(Option<String>),
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
    let mut existing = None;
    let mut help = false;
    let mut positional = Vec::new();
    // A flag given twice with different meanings, say --once and --max-downloads 3, is a
    // mistake: refused rather than the last one winning.
    let mut budget_flag: Option<String> = None;
    let set_once = |slot: &mut Option<String>, flag: &str| match slot.replace(flag.to_owned()) {
        Some(earlier) if earlier != flag => {
            Err(UsageError(format!("{earlier} and {flag} cannot be used together")))
        }
        _ => Ok(()),
    };
    let mut existing_flag: Option<String> = None;
    while let Some(arg) = args.next_arg()? {
        match arg {
            Arg::Positional(value) => positional.push(value),
            Arg::Flag(flag) => match flag.as_str() {
                "-h" | "--help" => help = true,
                "-V" | "--version" => return Ok(Invocation { settings, json, action: Action::Version }),
                "--max-downloads" => {
                    let text = args.value(&flag)?;
                    let count = text.parse().ok().filter(|&n: &u64| n > 0).ok_or_else(|| {
                        UsageError(format!(
                            "invalid --max-downloads '{text}': expected a number of 1 or more"
                        ))
                    })?;
                    set_once(&mut budget_flag, &format!("--max-downloads {count}"))?;
                    max_downloads = Some(count);
                }
                "--once" => {
                    set_once(&mut budget_flag, "--once")?;
                    max_downloads = Some(1);
                }
                "--overwrite" => {
                    set_once(&mut existing_flag, "--overwrite")?;
                    existing = Some(Existing::Overwrite);
                }
                "--skip-existing" => {
                    set_once(&mut existing_flag, "--skip-existing")?;
                    existing = Some(Existing::Skip);
                }
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
    if help {
        let command = positional.next().filter(|command| command != "help");
        return Ok(Invocation { settings, json, action: Action::Help(command) });
    }
    let command = positional.next().ok_or_else(|| {
        UsageError("missing command: upload, list, download, info, delete or shell (see --help)".into())
    })?;
    let rest: Vec<String> = positional.collect();
    let only = |flag: &str, allowed: bool| {
        if allowed { Ok(()) } else { Err(UsageError(format!("{flag} does not apply to '{command}'"))) }
    };
    only("--max-downloads", max_downloads.is_none() || command == "upload")?;
    only("--token", token.is_none() || command == "delete")?;
    only(existing_flag.as_deref().unwrap_or("--overwrite"), existing.is_none() || command == "download")?;
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
            Action::Download {
                url,
                paths: rest.collect(),
                dir: dir.unwrap_or_else(|| PathBuf::from(".")),
                existing: existing.unwrap_or_default(),
            }
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
        "help" => Action::Help(rest.into_iter().next()),
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
        Action::Help(None) => write_out(out, &usage()),
        Action::Help(Some(command)) => match command_usage(command) {
            Some(text) => write_out(out, &text),
            None => Err(ClientError::Usage(format!(
                "unknown command '{command}': expected upload, list, download, info, delete or shell"
            ))),
        },
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
            let console = console.uploading_to(&host, port);
            let options = ShareOptions { lifetime, downloads: *max_downloads };
            let report = upload_until_interrupted(settings, &host, port, paths, options, &console);
            console.end();
            let report = report?;
            let url = ShareUrl::of_created(&report.share, &host, port, report.pin);
            write_out(out, &if json { upload_json(&url, &report) } else { format!("{url}\n") })
        }
        Action::List { url } => {
            let url = settings.share_url(url)?;
            let listing = with_link(&url, settings, |link| transfer::list_share(link, &url.code, &console))?;
            write_out(
                out,
                &if json { list_json(&url, &listing) } else { list_lines(&listing.files, &listing.folders) },
            )
        }
        Action::Download { url, paths, dir, existing } => {
            let (url, inside) = settings.share_url_of_file(url)?;
            let mut paths = paths.clone();
            paths.extend(inside);
            let saved = with_link(&url, settings, |link| {
                let listing = transfer::list_share(link, &url.code, &console)?;
                let chosen = transfer::select(&listing, &paths)?;
                transfer::download(link, &url.code, &chosen, dir, *existing, &console)
            });
            console.end();
            let saved = saved.map_err(|err| match err {
                ClientError::WouldReplace { .. } => ClientError::Usage(format!(
                    "{err}: add --overwrite to replace, or --skip-existing to keep what is there"
                )),
                other => other,
            })?;
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
        Action::Shell { address } => {
            let interactive = io::stdin().is_terminal();
            let mut terminal = line_editor::Terminal::default();
            let mut piped = line_editor::PlainInput::new(io::stdin().lock(), false);
            let input: &mut dyn line_editor::LineInput = if interactive { &mut terminal } else { &mut piped };
            shell::run(address.as_deref(), settings, input, interactive, out, &mut io::stderr())
        }
    }
}

/// Publishes `paths` on `host:port`, and on Ctrl-C stops: the unfinished share is deleted (by
/// the upload itself, or here when it does not stop within [`GRACE`]), and the error is
/// [`INTERRUPTED`].
fn upload_until_interrupted(
    settings: &ClientSettings,
    host: &str,
    port: u16,
    paths: &[PathBuf],
    options: ShareOptions,
    console: &Console,
) -> Result<UploadReport> {
    let address = join_host_port(host, port);
    let publish = || transfer::publish(Link::new(address.clone(), settings), paths, options, console);
    let Some(interrupts) = Interrupts::listen() else { return publish() };
    thread::scope(|scope| {
        let done = interrupts.done_sender();
        let work = scope.spawn(move || {
            let report = publish();
            let _ = done.send(Event::Done);
            report
        });
        let finished = |work: thread::ScopedJoinHandle<'_, Result<UploadReport>>| {
            work.join().unwrap_or_else(|_| Err(ClientError::Usage("the upload stopped unexpectedly".into())))
        };
        if let Event::Done = interrupts.wait() {
            return finished(work);
        }
        console.cancel_flag().store(true, std::sync::atomic::Ordering::Relaxed);
        console.end();
        eprintln!("anonshare: interrupted; stopping the upload");
        if let Some(Event::Done) = interrupts.wait_for(GRACE) {
            // The upload stopped and said what became of its share.
            return match finished(work) {
                Err(ClientError::Cancelled) => Err(ClientError::Told(INTERRUPTED)),
                other => other,
            };
        }
        // The upload is stuck in a wait on the network: delete its share from here.
        if let Some(share) = console.created_share() {
            let deleted = transfer::delete_unfinished(&Link::new(address.clone(), settings), &share);
            console.tell_abandoned(&share, deleted);
        }
        std::process::exit(INTERRUPTED.into())
    })
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
            Ok(Action::Download {
                url: "u".into(),
                paths: vec!["x".into()],
                dir: "out".into(),
                existing: Existing::Refuse
            })
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
        assert_eq!(parse(&["--help"]), Ok(Action::Help(None)));
        assert_eq!(parse(&["upload", "--help"]), Ok(Action::Help(Some("upload".into()))));
        assert_eq!(parse(&["--help", "list"]), Ok(Action::Help(Some("list".into()))));
        assert_eq!(parse(&["help", "info"]), Ok(Action::Help(Some("info".into()))));
        assert!(matches!(
            parse(&["download", "--skip-existing", "u"]),
            Ok(Action::Download { existing: Existing::Skip, .. })
        ));
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
        assert_eq!(
            parse(&["upload", "--once", "--max-downloads", "3", "a"]).unwrap_err(),
            "--once and --max-downloads 3 cannot be used together"
        );
        assert_eq!(parse(&["upload", "--once", "--once", "a"]).map(|_| ()), Ok(()), "the same twice is fine");
        assert_eq!(
            parse(&["download", "--overwrite", "--skip-existing", "u"]).unwrap_err(),
            "--overwrite and --skip-existing cannot be used together"
        );
        assert_eq!(parse(&["list", "--overwrite", "u"]).unwrap_err(), "--overwrite does not apply to 'list'");
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
