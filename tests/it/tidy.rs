//! Rules about the code itself, checked by reading it: what a module may print and import.

use std::fs;
use std::path::Path;

/// The text of every `.rs` file under `src/<dir>`, with its path.
fn sources(dir: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let mut files: Vec<(String, String)> = walkdir::WalkDir::new(&root)
        .into_iter()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "rs"))
        .map(|entry| (entry.path().display().to_string(), fs::read_to_string(entry.path()).unwrap()))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no sources under {}", root.display());
    files
}

#[test]
fn the_client_library_prints_nothing() {
    // It tells its `Observer`; each front-end decides what to print.
    for (path, text) in sources("client") {
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
    for (path, text) in sources("cli").into_iter().filter(|(path, _)| path.ends_with("shell.rs")) {
        for line in text.lines().filter(|line| line.contains("crate::cli::")) {
            let allowed = ["crate::cli::output::", "crate::cli::progress::", "crate::cli::json"];
            assert!(allowed.iter().any(|ok| line.contains(ok)), "{path} uses the command line: {line}");
        }
    }
    for (path, text) in sources("gui") {
        let uses_cli =
            ["crate::cli::", "crate::cli;", "crate::cli as"].iter().any(|path| text.contains(path));
        assert!(!uses_cli, "{path} uses the command line");
    }
}
