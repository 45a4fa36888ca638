//! `anonshare --help` and `anonshare <COMMAND> --help`: one table of the commands, each with
//! its synopsis and what it does, from which both are written.

use crate::cli::TOKEN_ENV;
use crate::client::settings::{
    DEFAULT_PARALLEL, DEFAULT_RETRIES, DEFAULT_SERVER, DEFAULT_TIMEOUT, MAX_PARALLEL, SERVER_ENV,
};

/// Each command: its name, its synopsis, and what it does.
const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "upload",
        "upload [--expires SPEC] [--max-downloads N | --once] [--json] PATH...",
        "Upload files and folders into a new share. Prints the share URL on stdout
(the owner token goes to stderr, as soon as the share exists). SPEC is a
duration (90s, 30m, 12h, 7d) or a date (2026-12-01, midnight UTC) or an
RFC 3339 time; the server's default when omitted. --max-downloads N lets each
file be downloaded completely N times, then it is gone; --once is
--max-downloads 1. Inside folders, names a share cannot hold and broken links
are skipped with a warning. Ctrl-C deletes the unfinished share.",
    ),
    (
        "list",
        "list [--json] URL",
        "One line per file on stdout: SIZE<TAB>SHA256<TAB>PATH; an empty folder is
-<TAB>-<TAB>PATH/.",
    ),
    (
        "download",
        "download [--dir DIR] [--overwrite | --skip-existing] [--json] URL [PATH...]",
        "Download every file of the share, or only the files and folders named, into
DIR (default: the current folder). Each file is checked against its SHA-256
and appears under its name only when it matches; a cut download is kept as
NAME.anonshare-part and resumed by the next try. Prints saved paths. A file
already there with the same bytes is kept; one with other bytes stops the
download before it starts, unless --overwrite replaces it or --skip-existing
keeps it. URL may name one file of the share (ftp://HOST:PORT/CODE/PATH).",
    ),
    (
        "info",
        "info [--json] URL",
        "The share's expiry, size and download budget, then one line per file:
SIZE<TAB>SHA256<TAB>DOWNLOADS-LEFT<TAB>PATH.",
    ),
    (
        "delete",
        "delete [--token T] URL",
        "Delete the share at once; T is the owner token upload printed [env: ANONSHARE_TOKEN].",
    ),
    (
        "shell",
        "shell [HOST:PORT]",
        "Interactive menu: connect, upload, list, download, quit. Works with piped
input too. Connects to HOST:PORT, else --server, else ANONSHARE_SERVER, else
asks (at a terminal) or takes 127.0.0.1:2121; the options below apply.",
    ),
];

fn options() -> String {
    format!(
        "Options:
  --server HOST:PORT   server for upload and bare codes [env: {SERVER_ENV}] [default: {DEFAULT_SERVER}]
                       (an IPv6 address in brackets: [::1]:2121)
  --timeout D          how long to wait for the server at any one step [default: {timeout}s]
  --retries N          reconnect and resume up to N times in a row after a dropped or
                       timed-out connection, waiting longer each time [default: {DEFAULT_RETRIES}]
  --parallel N         move up to N files at once, each on its own connection (1-{MAX_PARALLEL})
                       [default: {DEFAULT_PARALLEL}]
  --insecure           speak TLS without checking the server's certificate when the share
                       URL carries no #pin= (a loopback server is never checked)
  -h, --help           print this help (after a command: that command's help)
  -V, --version        print the version
",
        timeout = DEFAULT_TIMEOUT.as_secs(),
    )
}

const EXIT_CODES: &str = "Exit codes:
  0    done
  1    usage error, or a local file that cannot be read or written
  2    cannot reach the server, or the connection failed
  3    share or file not found, or expired
  4    integrity failure: bytes did not match their SHA-256
  5    refused by the server (a limit or a rule), or a download that would not fit on the disk
  130  interrupted (Ctrl-C)
";

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("        {line}\n")).collect()
}

/// `anonshare --help`.
pub fn usage() -> String {
    let mut text = format!(
        "anonshare {}: share files anonymously through an anonshare server; every byte verified with SHA-256

Usage: anonshare [--server HOST:PORT] [--timeout D] [--retries N] [--parallel N] <COMMAND> [ARGS]

Commands:
",
        env!("CARGO_PKG_VERSION")
    );
    for (_, synopsis, what) in COMMANDS {
        text.push_str(&format!("  {synopsis}\n{}", indent(&what.replace("ANONSHARE_TOKEN", TOKEN_ENV))));
    }
    text.push_str("\nURL is ftp://HOST:PORT/CODE/ as printed by upload, with #pin=sha256//... when the\nserver speaks TLS (a bare CODE uses --server).\n");
    text.push_str("--json prints one JSON object instead of lines (upload, list, download, info).\n\n");
    text.push_str(&options());
    text.push('\n');
    text.push_str(EXIT_CODES);
    text
}

/// `anonshare COMMAND --help`, or `None` for a command that does not exist.
pub fn command_usage(command: &str) -> Option<String> {
    let (_, synopsis, what) = COMMANDS.iter().find(|(name, ..)| *name == command)?;
    Some(format!(
        "Usage: anonshare [OPTIONS] {synopsis}\n\n{}\n{}\n{EXIT_CODES}",
        what.replace("ANONSHARE_TOKEN", TOKEN_ENV),
        options()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_command_has_help_of_its_own() {
        for (name, ..) in COMMANDS {
            let help = command_usage(name).unwrap();
            assert!(help.starts_with(&format!("Usage: anonshare [OPTIONS] {name}")), "{help}");
            for (other, ..) in COMMANDS.iter().filter(|(other, ..)| other != name) {
                assert!(!help.contains(&format!("] {other} ")), "{name}'s help is about {name} alone");
            }
        }
        assert!(command_usage("frobnicate").is_none());
        assert!(command_usage("download").unwrap().contains("--overwrite"));
    }
}
