//! Rules of the architecture that must never break, checked by reading the sources: which part
//! of the crate may use what. Each rule names the invariant of ARCHITECTURE.md it keeps.

use std::fs;
use std::path::{Path, PathBuf};

/// Longest a source file may grow before it must say in ARCHITECTURE.md why it holds one idea.
const MAX_LINES: usize = 800;

/// Names of sockets; sans-IO code uses none of them (addresses are plain values).
const SOCKETS: &[&str] = &["TcpStream", "TcpListener", "UdpSocket", "Shutdown"];
/// Ways code reaches the file system or the clock.
const FILES_AND_CLOCKS: &[&str] = &["std::fs", "File::", "OpenOptions", "SystemTime::now", "Instant::now"];

/// One source file: its path from the crate root and its lines that are code, not comments.
struct Source {
    path: String,
    code: Vec<(usize, String)>,
    lines: usize,
}

fn sources_under(folder: &str) -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(root.join(folder)).sort_by_file_name() {
        let entry = entry.unwrap();
        if entry.path().extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let text = fs::read_to_string(entry.path()).unwrap();
        let path = entry.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let code = text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim_start().starts_with("//"))
            .map(|(number, line)| (number + 1, line.to_owned()))
            .collect();
        found.push(Source { path, code, lines: text.lines().count() });
    }
    assert!(!found.is_empty(), "no sources under {folder}");
    found
}

/// Every place under `folder` whose code names one of `needles`.
fn uses(folder: &str, needles: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    for source in sources_under(folder) {
        for (number, line) in &source.code {
            if let Some(needle) = needles.iter().find(|needle| line.contains(*needle)) {
                hits.push(format!("{}:{number}: {needle}: {}", source.path, line.trim()));
            }
        }
    }
    hits
}

fn check_none(rule: &str, hits: Vec<String>) {
    assert!(hits.is_empty(), "{rule}, but:\n{}", hits.join("\n"));
}

#[test]
fn proto_does_no_io() {
    check_none("proto touches no socket", uses("src/proto", SOCKETS));
    check_none("proto touches no file and reads no clock", uses("src/proto", FILES_AND_CLOCKS));
    check_none("proto does no I/O", uses("src/proto", &["std::io", "io::Read", "io::Write"]));
}

#[test]
fn the_store_knows_nothing_of_sockets_or_ftp() {
    check_none("the store touches no socket", uses("src/server/store", SOCKETS));
    check_none("the store knows nothing of the network", uses("src/server/store", &["std::net"]));
    check_none(
        "the store imports nothing of FTP",
        uses("src/server/store", &["proto::", "crate::proto", "Reply"]),
    );
    check_none(
        "the store knows no session",
        uses("src/server/store", &["session::", "crate::server::Shared"]),
    );
}

#[test]
fn client_code_imports_nothing_of_the_server() {
    for folder in ["src/client", "src/cli", "src/gui", "src/bin/anonshare.rs"] {
        if Path::new(env!("CARGO_MANIFEST_DIR")).join(folder).exists() {
            check_none(
                &format!("{folder} uses no server code"),
                uses(folder, &["crate::server", "anonshare::server"]),
            );
        }
    }
}

#[test]
fn server_code_imports_nothing_of_the_clients() {
    let clients = ["crate::client", "crate::cli", "crate::gui"];
    check_none("the server uses no client code", uses("src/server", &clients));
    check_none(
        "proto uses neither end",
        uses("src/proto", &["crate::client", "crate::cli", "crate::gui", "crate::server"]),
    );
    let ends = ["crate::client", "crate::cli", "crate::gui", "crate::server", "crate::proto::"];
    let shared = uses("src/common", &ends);
    // The line reader fills proto's sans-IO line splitter from a socket.
    let shared = shared.into_iter().filter(|hit| !hit.contains("crate::proto::line::")).collect();
    check_none("what both ends share belongs to neither", shared);
}

/// The heading of the ARCHITECTURE.md section that says why a file is past [`MAX_LINES`].
const LONG_FILES_HEADING: &str = "### Files past 800 lines";

#[test]
fn long_files_say_why_in_architecture_md() {
    let architecture =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).unwrap();
    let section = architecture
        .split_once(LONG_FILES_HEADING)
        .map(|(_, rest)| rest.split("\n#").next().unwrap_or_default())
        .unwrap_or_default();
    let long: Vec<String> = sources_under("src")
        .into_iter()
        .filter(|source| source.lines > MAX_LINES && !section.contains(&format!("`{}`", source.path)))
        .map(|source| format!("{}: {} lines", source.path, source.lines))
        .collect();
    check_none(
        &format!(
            "no file under src/ is past {MAX_LINES} lines unless ARCHITECTURE.md's \"{LONG_FILES_HEADING}\" says why"
        ),
        long,
    );
}

#[test]
fn the_rules_see_what_they_look_for() {
    // The checks above pass on nothing if they read nothing: make sure they would catch a use.
    let tidy = PathBuf::from(file!());
    assert!(tidy.ends_with("tidy.rs"));
    assert!(!uses("src/server/session", &["crate::proto"]).is_empty(), "the session speaks FTP");
    assert!(!uses("src/client", &["TcpStream"]).is_empty(), "the client opens sockets");
}

/// The whole text of every `.rs` file under `folder`, with its path.
fn whole_sources(folder: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    sources_under(folder)
        .into_iter()
        .map(|source| {
            let text = fs::read_to_string(root.join(&source.path)).unwrap();
            (source.path, text)
        })
        .collect()
}

#[test]
fn the_client_library_prints_nothing() {
    // It tells its `Observer`; each front-end decides what to print.
    for (path, text) in whole_sources("src/client") {
        for macro_name in ["print", "println", "eprint", "eprintln", "dbg"] {
            let call = format!("{macro_name}!(");
            assert!(!text.contains(&call), "{path} calls {call}: tell the Observer instead");
        }
    }
}

#[test]
fn the_shell_and_the_window_use_nothing_of_the_command_line() {
    // Settings both need live in `client::settings`; the shell shares only the command line's
    // output and progress modules, and the window nothing at all.
    for (path, text) in whole_sources("src/cli").into_iter().filter(|(path, _)| path.ends_with("shell.rs")) {
        for line in text.lines().filter(|line| line.contains("crate::cli::")) {
            let allowed = [
                "crate::cli::output::",
                "crate::cli::progress::",
                "crate::cli::json",
                "crate::cli::line_editor::",
            ];
            assert!(allowed.iter().any(|ok| line.contains(ok)), "{path} uses the command line: {line}");
        }
    }
    for (path, text) in whole_sources("src/gui") {
        let uses_cli =
            ["crate::cli::", "crate::cli;", "crate::cli as"].iter().any(|path| text.contains(path));
        assert!(!uses_cli, "{path} uses the command line");
    }
}

#[test]
fn operating_system_calls_live_in_platform_alone() {
    let hits: Vec<String> = uses("src", &["rustix::", "signal_hook::", "socket2::"])
        .into_iter()
        .filter(|hit| !hit.starts_with("src/common/platform.rs:"))
        .collect();
    check_none("rustix, signal-hook and socket2 are used in src/common/platform.rs alone", hits);
}
