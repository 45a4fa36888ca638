//! The client as people meet it: errors in their words and at once when nothing can help,
//! nothing of theirs overwritten, a half-made share never left behind, URLs as they paste them.

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::{Server, TempDir, client, code_of, shows_reply_code, upload, wait_until};

#[test]
fn download_never_replaces_a_file_it_did_not_create() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("a.txt", b"from the share");
    dir.file("b.txt", b"b");
    let url = upload(&server, dir.path(), &["a.txt", "b.txt"]);
    dir.file("out/a.txt", b"my edits");
    let run = client(&server.addr, dir.path(), &["download", &url, "--dir", "out"], b"");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("already exists") && run.stderr.contains("--overwrite"), "{}", run.stderr);
    assert_eq!(fs::read(dir.path().join("out/a.txt")).unwrap(), b"my edits");
    assert!(!dir.path().join("out/b.txt").exists(), "nothing is downloaded when a file is in the way");

    let run = client(&server.addr, dir.path(), &["download", &url, "--dir", "out", "--skip-existing"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("skipped"), "{}", run.stderr);
    assert_eq!(fs::read(dir.path().join("out/a.txt")).unwrap(), b"my edits");
    assert_eq!(fs::read(dir.path().join("out/b.txt")).unwrap(), b"b");

    let run = client(&server.addr, dir.path(), &["download", &url, "--dir", "out", "--overwrite"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(fs::read(dir.path().join("out/a.txt")).unwrap(), b"from the share");
    // The same bytes already there: done, nothing to replace.
    let run = client(&server.addr, dir.path(), &["download", &url, "--dir", "out"], b"");
    assert_eq!((run.code, run.stdout.lines().count()), (0, 2), "{}", run.stderr);
}

#[cfg(unix)]
#[test]
fn ctrl_c_during_an_upload_deletes_the_half_made_share() {
    let server = Server::start();
    let dir = TempDir::new();
    // A sparse file: large enough that the upload is still running when the signal comes.
    let big = fs::File::create(dir.path().join("big.bin")).unwrap();
    big.set_len(4 << 30).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_anonshare"))
        .args(["--server", &server.addr, "upload", "big.bin"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut told = String::new();
    while !told.contains("owner token:") {
        assert!(stderr.read_line(&mut told).unwrap() > 0, "the client ended first: {told}");
    }
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{told}{rest}");
    assert!(output.stdout.is_empty(), "no URL");
    assert!(rest.contains("the unfinished share was deleted"), "{told}{rest}");
    wait_until("the server logged the deletion", || server.log().contains("event=deleted"));
    assert_eq!(fs::read_dir(server.root.join("shares")).unwrap().count(), 0, "nothing left on the server");
}

#[test]
fn the_owner_token_is_told_before_the_first_byte() {
    let server = Server::start_with(&["--max-file-size", "10"]);
    let dir = TempDir::new();
    dir.file("large.txt", b"more than ten bytes");
    let run = client(&server.addr, dir.path(), &["upload", "large.txt"], b"");
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stderr.contains("owner token:"), "told even though the upload failed: {}", run.stderr);
    assert!(run.stderr.contains("anonshare delete --token"), "with how to delete: {}", run.stderr);
    assert!(run.stderr.contains("'large.txt' is too large for this server"), "{}", run.stderr);
}

#[test]
fn what_cannot_get_better_is_not_retried() {
    let dir = TempDir::new();
    // RFC 2606: .invalid never resolves.
    let run = client("no-such-host.invalid:2121", dir.path(), &["--retries", "5", "list", "abc"], b"");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("cannot find the server"), "{}", run.stderr);
    assert!(!run.stderr.contains("retry"), "{}", run.stderr);

    // A server that never answers: one wait of --timeout, not one per retry.
    let silent = anonshare::common::platform::listen("127.0.0.1:0", 0).unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let _queued = std::net::TcpStream::connect(&addr).unwrap();
    let run = client(&addr, dir.path(), &["--timeout", "1s", "--retries", "3", "info", "abc"], b"");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!run.stderr.contains("retry"), "{}", run.stderr);
}

#[test]
fn errors_are_in_the_users_words() {
    let server = Server::start();
    let dir = TempDir::new();
    let code = "abcdefghijklmnopqrstuvwxyz";
    let run = client(&server.addr, dir.path(), &["list", &server.url(code)], b"");
    assert_eq!(run.code, 3);
    assert_eq!(run.stderr, format!("anonshare: no share '{code}' on this server (or it has expired)\n"));

    // Usage mistakes are caught before the network: this server is not even there.
    dir.file("f", b"f");
    for expires in ["0s", "12", "31x"] {
        let run = client("127.0.0.1:1", dir.path(), &["upload", "--expires", expires, "f"], b"");
        assert_eq!(run.code, 1, "--expires {expires}: {}", run.stderr);
        assert!(run.stderr.contains(&format!("invalid expiry '{expires}'")), "{}", run.stderr);
    }
    let run = client("127.0.0.1:1", dir.path(), &["--server", "::1:2121", "list", "abc"], b"");
    assert!(run.stderr.contains("[::1]:2121"), "{}", run.stderr);
}

#[test]
fn a_date_expires_at_midnight_utc() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("f", b"f");
    let tomorrow = time::OffsetDateTime::now_utc().date().next_day().unwrap();
    let date = format!("{}-{:02}-{:02}", tomorrow.year(), tomorrow.month() as u8, tomorrow.day());
    let run = client(&server.addr, dir.path(), &["upload", "--expires", &date, "f"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The server counts from the second it receives the request; one may tick meanwhile.
    let exact = [format!("expires: {date}T00:00:00Z"), format!("expires: {date}T00:00:01Z")];
    assert!(exact.iter().any(|line| run.stderr.contains(line.as_str())), "{}", run.stderr);
}

#[test]
fn share_urls_as_people_paste_them() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("a.txt", b"a");
    dir.file("report.pdf", b"pdf");
    let url = upload(&server, dir.path(), &["a.txt", "report.pdf"]);
    let code = code_of(&url);
    let with_user = format!("ftp://anonymous@{}/{code}/", server.addr);
    let run = client(&server.addr, dir.path(), &["list", &with_user], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 2);

    let file_url = format!("ftp://{}/{code}/report.pdf", server.addr);
    let run = client(&server.addr, dir.path(), &["download", &file_url, "--dir", "got"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(fs::read(dir.path().join("got/report.pdf")).unwrap(), b"pdf");
    assert!(!dir.path().join("got/a.txt").exists(), "only the file the URL names");
    let run = client(&server.addr, dir.path(), &["list", &file_url], b"");
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("names the file 'report.pdf'"), "{}", run.stderr);
}

#[test]
fn odd_names_are_skipped_and_empty_folders_come_back() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("logs/fine.txt", b"fine");
    dir.file("logs/2026-01-01T10:00:00.txt", b"colon");
    fs::create_dir_all(dir.path().join("logs/empty")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("nowhere", dir.path().join("logs/dangling")).unwrap();
    let run = client(&server.addr, dir.path(), &["upload", "logs"], b"");
    assert_eq!(run.code, 0, "one odd name does not stop the folder: {}", run.stderr);
    assert!(
        run.stderr.contains("skipped") && run.stderr.contains("2026-01-01T10:00:00.txt"),
        "{}",
        run.stderr
    );
    let url = run.stdout.trim().to_owned();
    let list = client(&server.addr, dir.path(), &["list", &url], b"");
    assert!(list.stdout.ends_with("-\t-\tlogs/empty/\n"), "{}", list.stdout);
    let get = client(&server.addr, dir.path(), &["download", &url, "--dir", "got"], b"");
    assert_eq!(get.code, 0, "{}", get.stderr);
    assert!(dir.path().join("got/logs/empty").is_dir(), "the empty folder is made");

    let run = client(&server.addr, dir.path(), &["upload", "logs/2026-01-01T10:00:00.txt"], b"");
    assert_eq!(run.code, 1, "a file named on the command line is refused before any byte");
    assert!(run.stderr.contains("rename it") && !run.stderr.contains("owner token"), "{}", run.stderr);
}

#[cfg(target_os = "linux")]
#[test]
fn a_file_that_changes_while_it_uploads_is_named() {
    // /proc/version says it is empty, and has bytes when read: the file is not what was planned.
    let server = Server::start();
    let dir = TempDir::new();
    let run = client(&server.addr, dir.path(), &["upload", "/proc/version"], b"");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("'/proc/version' changed while it was being uploaded"), "{}", run.stderr);
    assert!(!run.stderr.contains("retry") && !shows_reply_code(&run.stderr, 552), "{}", run.stderr);
}

#[test]
fn the_shell_connects_and_tells_each_error_once() {
    let one = Server::start();
    let two = Server::start();
    let dir = TempDir::new();
    dir.file("f.txt", b"on two");
    let url = upload(&two, dir.path(), &["f.txt"]);
    let script = format!("list abcdefghijklmnopqrstuvwxyz\nconnect {}\nlist {}\n", two.addr, code_of(&url));
    let run = client(&one.addr, dir.path(), &["shell"], script.as_bytes());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("\tf.txt"), "{}", run.stdout);
    assert_eq!(run.stderr.matches("no share").count(), 1, "{}", run.stderr);

    let run = client(&one.addr, dir.path(), &["shell"], b"list abcdefghijklmnopqrstuvwxyz\n");
    assert_eq!(run.code, 3);
    assert_eq!(run.stderr.matches("no share").count(), 1, "told once, not again at the end: {}", run.stderr);
}

#[test]
fn each_command_has_its_own_help() {
    let dir = TempDir::new();
    let run = client("127.0.0.1:1", dir.path(), &["download", "--help"], b"");
    assert_eq!(run.code, 0);
    assert!(run.stdout.starts_with("Usage: anonshare [OPTIONS] download"), "{}", run.stdout);
    assert!(!run.stdout.contains("upload [--expires"), "{}", run.stdout);
}

/// The shape of a JSON value, by python3's json: keys of objects, recursively, and the shape of
/// a list's first item.
const SHAPE: &str = r#"
import json, sys
def shape(v):
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(v[0])] if v else []
    return "value"
documented, actual = json.loads(sys.argv[1]), json.loads(sys.argv[2])
def same(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return not a or not b or same(a[0], b[0])
    return a == b
if not same(shape(documented), shape(actual)):
    sys.exit("documented %s, actual %s" % (shape(documented), shape(actual)))
"#;

#[test]
fn the_readme_documents_every_json_shape_exactly() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let documented = |command: &str| {
        let marker = format!("<!-- json: {command} -->\n```json\n");
        let start = readme.find(&marker).unwrap_or_else(|| panic!("README documents {command} --json"));
        let rest = &readme[start + marker.len()..];
        rest[..rest.find("\n```").unwrap()].to_owned()
    };
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("share/report.pdf", b"pdf");
    fs::create_dir_all(dir.path().join("share/empty")).unwrap();
    let run = client(&server.addr, dir.path(), &["upload", "--json", "--max-downloads", "3", "share"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut outputs = vec![("upload", run.stdout.clone())];
    let url = run.stdout.split("\"url\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    for command in ["list", "info"] {
        let run = client(&server.addr, dir.path(), &[command, "--json", &url], b"");
        assert_eq!(run.code, 0, "{}", run.stderr);
        outputs.push((command, run.stdout));
    }
    let run = client(&server.addr, dir.path(), &["download", "--json", &url, "--dir", "got"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    outputs.push(("download", run.stdout));
    for (command, actual) in outputs {
        let check = crate::support::python(SHAPE, &[&documented(command), actual.trim()]);
        assert_eq!(check.code, 0, "{command} --json: {}", check.stderr);
    }
}
