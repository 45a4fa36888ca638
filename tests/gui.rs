//! The desktop client's window, driven with egui_kittest the way a person uses it: widgets are
//! found by their labels, clicked and typed into, and files are dropped onto the window. Every
//! test runs the real `anonshare-server` on 127.0.0.1:0 and waits, with a deadline, for what the
//! window shows while its transfers run on their own threads.

#[allow(dead_code)]
#[path = "it/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "it/fault_proxy.rs"]
mod fault_proxy;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anonshare::client::settings::ClientSettings;
use anonshare::common::digest::Sha256Digest;
use anonshare::common::expiry::parse_rfc3339;
use anonshare::gui::{GuiApp, MAX_UPLOAD_FILES, Settings};
use eframe::egui::accesskit::Role;
use eframe::egui::{self, Key, Modifiers, OutputCommand};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable};
use support::{DEADLINE, Server, TempDir, connections_with, events, random_bytes, wait_until};
use time::OffsetDateTime;

type Window = Harness<'static, GuiApp>;

/// The window as the binary shows it, tall enough that every section is on screen.
fn window(settings: Settings) -> Window {
    let mut window = Harness::builder()
        .with_size([1000.0, 1300.0])
        .build_ui_state(|ui, app: &mut GuiApp| app.show(ui), GuiApp::new(settings));
    window.run();
    window
}

fn settings(downloads: &Path) -> Settings {
    Settings { download_dir: downloads.to_owned(), file_dialog: false, ..Settings::default() }
}

fn shows(window: &Window, text: &str) -> bool {
    window.query_all_by_label_contains(text).next().is_some()
}

/// Steps the window until it shows `text`; transfers run on other threads meanwhile.
fn wait_for(window: &mut Window, text: &str) {
    wait_until(&format!("the window shows '{text}'"), || {
        window.step();
        shows(window, text)
    });
    window.run();
}

fn click(window: &mut Window, label: &str) {
    window.get_by_role_and_label(Role::Button, label).click();
    window.step();
}

/// Replaces the text of the field labelled `label` with `text`, as a person would.
fn fill(window: &mut Window, label: &str, text: &str) {
    window.get_by_label(label).click();
    window.run();
    window.key_press_modifiers(Modifiers::COMMAND, Key::A);
    window.get_by_label(label).type_text(text);
    window.run();
    assert_eq!(
        window.get_by_label(label).value().as_deref(),
        Some(text),
        "the field '{label}' holds the text"
    );
}

/// A file dropped onto the window from a file manager.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        fs::read(&self.0).map_err(|err| err.to_string())
    }
}

fn drop_files(window: &mut Window, paths: &[PathBuf]) {
    for path in paths {
        window.input_mut().dropped_files.push(Arc::new(Dropped(path.clone())));
    }
    window.run();
}

fn connect(window: &mut Window, server: &Server) {
    connect_to(window, &server.addr);
}

fn connect_to(window: &mut Window, addr: &str) {
    let (host, port) = addr.rsplit_once(':').unwrap();
    fill(window, "Server address", host);
    fill(window, "Port", port);
    click(window, "Connect");
    wait_for(window, &format!("Connected to {addr}"));
    assert!(window.query_by_role_and_label(Role::Button, "Connect").is_none(), "Connect became Disconnect");
    window.get_by_role_and_label(Role::Button, "Disconnect");
}

/// Uploads `paths` by dropping them and returns the share path the window shows.
fn upload(window: &mut Window, paths: &[PathBuf], expires: &str) -> String {
    drop_files(window, paths);
    fill(window, "Expires", expires);
    click(window, "Upload");
    wait_for(window, "Share path:");
    click(window, "Copy to clipboard");
    let copied = window.output().platform_output.commands.iter().find_map(|command| match command {
        OutputCommand::CopyText(text) => Some(text.clone()),
        _ => None,
    });
    window.run();
    assert!(shows(window, "Copied."));
    copied.expect("Copy to clipboard put the share path on the clipboard")
}

fn view(window: &mut Window, share: &str) {
    fill(window, "Share path", share);
    click(window, "View");
}

#[test]
fn connect_upload_view_download_one_file_and_disconnect() {
    let server = Server::start();
    let dir = TempDir::new();
    let notes = random_bytes(300_000, 1);
    let photo = random_bytes(1_500_000, 2);
    let files = [dir.file("notes.txt", &notes), dir.file("photo.jpg", &photo)];
    let mut window = window(settings(&dir.path().join("unused")));

    connect(&mut window, &server);
    let url = upload(&mut window, &files, "2h");
    assert!(url.starts_with(&format!("ftp://{}/", server.addr)), "{url}");
    assert!(shows(&window, &url), "the share path is in the window");
    assert!(shows(&window, "Uploaded 2 files"));

    view(&mut window, &url);
    wait_for(&mut window, "Available until");
    for (name, bytes) in [("notes.txt", &notes), ("photo.jpg", &photo)] {
        window.get_by_role_and_label(Role::CheckBox, name);
        assert!(shows(&window, &Sha256Digest::of(bytes).to_string()), "the SHA-256 of {name} is listed");
    }
    assert!(shows(&window, "293.0 KiB") && shows(&window, "1.4 MiB"), "sizes are listed");
    let expires = window.get_all_by_label_contains("Available until").next().unwrap().value().unwrap();
    let until = expires.split("until ").nth(1).unwrap();
    let (date, rest) = until.split_once(' ').unwrap();
    let shown = format!("{date}T{}:00Z", &rest[..5]);
    let left = parse_rfc3339(&shown).expect("a date and time") - OffsetDateTime::now_utc().unix_timestamp();
    assert!((6900..=7200).contains(&left), "the share expires in 2h: {expires}");
    assert!(rest[5..].starts_with(" UTC"), "in the user's zone, here UTC: {expires}");
    assert!(shows(&window, "after that the share and its files are gone"));

    let downloads = dir.path().join("downloads");
    fill(&mut window, "Destination folder", downloads.to_str().unwrap());
    assert!(shows(&window, "2 of 2 files selected"), "all files start selected");
    click(&mut window, "Select none");
    window.get_by_role_and_label(Role::CheckBox, "photo.jpg").click();
    window.run();
    assert!(shows(&window, "1 of 2 files selected"));
    click(&mut window, "Download");
    wait_for(&mut window, "Downloaded 1 file into");
    assert!(shows(&window, "verified against its SHA-256"));
    assert_eq!(
        fs::read(downloads.join("photo.jpg")).unwrap(),
        photo,
        "the downloaded bytes are the uploaded ones"
    );
    assert!(!downloads.join("notes.txt").exists(), "only the selected file is downloaded");

    click(&mut window, "Disconnect");
    window.run();
    window.get_by_role_and_label(Role::Button, "Connect");
    assert!(shows(&window, "Not connected"));
}

#[test]
fn a_missing_share_is_reported_not_listed() {
    let server = Server::start();
    let dir = TempDir::new();
    let mut window = window(settings(dir.path()));
    connect(&mut window, &server);
    view(&mut window, &server.url("aaaaaaaaaaaaaaaaaaaaaaaaaa"));
    wait_for(&mut window, "does not exist or has expired");
    assert!(!shows(&window, "Available until"));
}

#[test]
fn a_server_that_is_not_there_is_an_error_in_the_window() {
    let refusing = support::RefusingAddress::new();
    let port = refusing.addr.rsplit(':').next().unwrap();
    let dir = TempDir::new();
    let client = ClientSettings { retries: 0, ..ClientSettings::default() };
    let mut window = window(Settings { client, ..settings(dir.path()) });
    fill(&mut window, "Port", port);
    click(&mut window, "Connect");
    wait_for(&mut window, &format!("Cannot connect to 127.0.0.1:{port}"));
    window.get_by_role_and_label(Role::Button, "Connect");

    fill(&mut window, "Port", "http");
    click(&mut window, "Connect");
    assert!(shows(&window, "Invalid port 'http'"));
}

#[test]
fn an_upload_takes_at_most_six_files() {
    let dir = TempDir::new();
    let paths: Vec<PathBuf> =
        (0..MAX_UPLOAD_FILES + 1).map(|n| dir.file(&format!("f{n}.txt"), n.to_string().as_bytes())).collect();
    let mut window = window(settings(dir.path()));
    drop_files(&mut window, &paths);
    assert!(shows(&window, &format!("{MAX_UPLOAD_FILES} of {MAX_UPLOAD_FILES} files")));
    assert!(shows(&window, "An upload takes at most 6 files"));
    assert!(
        window.query_by_label("f5.txt").is_some() && window.query_by_label("f6.txt").is_none(),
        "the seventh file was left out"
    );
    assert!(
        window.get_by_role_and_label(Role::Button, "Upload").accesskit_node().is_disabled(),
        "not connected"
    );
}

#[test]
fn transfers_can_be_cancelled_and_a_download_resumes() {
    let server = Server::start();
    let dir = TempDir::new();
    let big = random_bytes(24 << 20, 3);
    let source = dir.file("big.bin", &big);
    let mut window = window(settings(dir.path()));
    connect(&mut window, &server);

    // The server stands still (SIGSTOP) until the Cancel is in, so the transfer cannot end
    // before it however the threads are scheduled; the cancel then stops it at its first chunk.
    drop_files(&mut window, std::slice::from_ref(&source));
    server.signal("STOP");
    click(&mut window, "Upload");
    click(&mut window, "Cancel");
    server.signal("CONT");
    wait_for(&mut window, "Upload cancelled");

    let url = upload(&mut window, &[source], "1d");
    view(&mut window, &url);
    wait_for(&mut window, "Available until");
    let downloads = dir.path().join("downloads");
    fill(&mut window, "Destination folder", downloads.to_str().unwrap());
    server.signal("STOP");
    click(&mut window, "Download");
    click(&mut window, "Cancel");
    server.signal("CONT");
    wait_for(&mut window, "Download cancelled");
    assert!(!downloads.join("big.bin").exists(), "a cancelled download never sits under its name");
    assert!(downloads.join("big.bin.anonshare-part").exists(), "it stopped partway, with bytes kept");

    click(&mut window, "Download");
    wait_for(&mut window, "Downloaded 1 file into");
    assert_eq!(fs::read(downloads.join("big.bin")).unwrap(), big);
}

#[test]
fn window_keeps_drawing_while_a_transfer_runs() {
    let server = Server::start();
    let dir = TempDir::new();
    let source = dir.file("big.bin", &random_bytes(8 << 20, 4));
    // A frame that waited for the upload would return only once it failed, at this timeout.
    let client = ClientSettings { timeout: DEADLINE, ..ClientSettings::default() };
    let mut window = window(Settings { client, ..settings(dir.path()) });
    connect(&mut window, &server);
    drop_files(&mut window, &[source]);
    // The server stands still (SIGSTOP): the upload cannot move, and each frame returns anyway.
    server.signal("STOP");
    click(&mut window, "Upload");
    for _ in 0..10 {
        window.step();
        let running = window.query_by_role_and_label(Role::Button, "Cancel").is_some();
        assert!(running && !shows(&window, "Upload failed"), "a frame returned while the upload waits");
    }
    server.signal("CONT");
    wait_for(&mut window, "Share path:");
}

#[test]
fn transfers_use_as_many_connections_as_the_parallel_setting() {
    // The proxy rewrites passive replies, which TLS would hide from it.
    let server = Server::start_with(&["--tls", "off"]);
    let dir = TempDir::new();
    let files: Vec<PathBuf> = (0..MAX_UPLOAD_FILES)
        .map(|n| dir.file(&format!("f{n}.bin"), &random_bytes(512 << 10, 50 + n as u64)))
        .collect();
    let client = ClientSettings { parallel: 3, ..ClientSettings::default() };
    let mut window = window(Settings { client, ..settings(dir.path()) });
    // Six files and three connections: each connection takes a file while the others are busy.
    // Through the proxy, the first three STORs (data connections 0 to 2) and, after the
    // listing (6), the first three RETRs (7 to 9) run side by side, so each connection has one
    // to do however the threads are scheduled.
    let proxy = fault_proxy::FaultProxy::side_by_side(&server.addr, &[(0, 3), (7, 3)]);
    connect_to(&mut window, &proxy.addr);
    let url = upload(&mut window, &files, "1h");
    wait_until("the server logged six stored files", || events(&server.log(), "stor") == MAX_UPLOAD_FILES);
    assert_eq!(
        connections_with(&server.log(), "stor").len(),
        3,
        "uploaded on 3 connections: {}",
        server.log()
    );

    view(&mut window, &url);
    wait_for(&mut window, "Available until");
    let downloads = dir.path().join("downloads");
    fill(&mut window, "Destination folder", downloads.to_str().unwrap());
    click(&mut window, "Download");
    wait_for(&mut window, "Downloaded 6 files");
    wait_until("the server logged six sent files", || events(&server.log(), "retr") == MAX_UPLOAD_FILES);
    assert_eq!(
        connections_with(&server.log(), "retr").len(),
        3,
        "downloaded on 3 connections: {}",
        server.log()
    );
    for (n, file) in files.iter().enumerate() {
        assert_eq!(
            fs::read(downloads.join(file.file_name().unwrap())).unwrap(),
            random_bytes(512 << 10, 50 + n as u64)
        );
    }
}

#[test]
fn without_a_file_dialog_the_window_says_so_and_takes_a_typed_path() {
    let dir = TempDir::new();
    let file = dir.file("typed.txt", b"typed");
    let mut window = window(settings(dir.path()));
    click(&mut window, "Choose files...");
    window.run();
    assert!(shows(&window, "No file dialog on this system"), "it says why nothing opens");
    fill(&mut window, "File path", file.to_str().unwrap());
    click(&mut window, "Add");
    window.run();
    assert!(shows(&window, "1 of 6 files"), "the typed file is added");
}

#[test]
fn a_download_never_replaces_a_file_unless_told_to() {
    let server = Server::start();
    let dir = TempDir::new();
    let source = dir.file("a.txt", b"from the share");
    let downloads = dir.path().join("downloads");
    fs::create_dir_all(&downloads).unwrap();
    fs::write(downloads.join("a.txt"), b"my edits").unwrap();
    let mut window = window(settings(&downloads));
    connect(&mut window, &server);
    let url = upload(&mut window, &[source], "1h");
    view(&mut window, &url);
    wait_for(&mut window, "Available until");
    click(&mut window, "Download");
    wait_for(&mut window, "already exists");
    assert_eq!(fs::read(downloads.join("a.txt")).unwrap(), b"my edits");
    window.get_by_role_and_label(Role::RadioButton, "Replace it").click();
    window.run();
    click(&mut window, "Download");
    wait_for(&mut window, "Downloaded 1 file into");
    assert_eq!(fs::read(downloads.join("a.txt")).unwrap(), b"from the share");
}

#[test]
fn a_long_listing_keeps_download_in_reach() {
    let server = Server::start();
    let dir = TempDir::new();
    for n in 0..300 {
        dir.file(&format!("many/f{n:03}.txt"), n.to_string().as_bytes());
    }
    let run = support::client(&server.addr, dir.path(), &["upload", "many"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut window = window(settings(dir.path()));
    connect(&mut window, &server);
    view(&mut window, run.stdout.trim());
    wait_for(&mut window, "Available until");
    let download = window.get_by_role_and_label(Role::Button, "Download").rect();
    assert!(download.bottom() < 1300.0, "Download is on screen: {download:?}");
}

#[test]
fn an_expiry_the_server_does_not_take_is_explained_and_disconnect_clears_it() {
    let server = Server::start_with(&["--max-expiry", "1h", "--default-expiry", "1h"]);
    let dir = TempDir::new();
    let source = dir.file("a.txt", b"a");
    let mut window = window(settings(dir.path()));
    connect(&mut window, &server);
    drop_files(&mut window, &[source]);
    fill(&mut window, "Expires", "2h");
    click(&mut window, "Upload");
    wait_for(&mut window, "longer than this server allows (1h)");
    assert!(!shows(&window, "504"), "no protocol words");
    click(&mut window, "Disconnect");
    window.run();
    assert!(!shows(&window, "longer than this server allows"), "old errors go with the connection");
}

#[test]
fn times_are_shown_in_the_users_zone() {
    let server = Server::start();
    let dir = TempDir::new();
    let source = dir.file("a.txt", b"a");
    let offset = time::UtcOffset::from_hms(2, 0, 0).unwrap();
    let mut window = window(Settings { local_offset: offset, ..settings(dir.path()) });
    connect(&mut window, &server);
    upload(&mut window, &[source], "1d");
    assert!(shows(&window, "(UTC+02:00)"), "the expiry is in the user's zone");
}

#[test]
fn the_program_says_what_is_wrong_in_one_line() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_anonshare-gui"))
            .args(args)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("WAYLAND_SOCKET")
            .output()
            .unwrap()
    };
    let bogus = run(&["--bogus"]);
    assert_eq!(bogus.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&bogus.stderr),
        "anonshare-gui: unknown option '--bogus' (see --help)\n"
    );
    let headless = run(&[]);
    let stderr = String::from_utf8_lossy(&headless.stderr);
    assert_eq!(headless.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no display") && !stderr.contains(".cargo"), "{stderr}");
}

#[test]
fn a_share_url_is_held_to_its_pin() {
    let server = Server::start();
    let other = Server::start();
    let dir = TempDir::new();
    dir.file("a.txt", b"pinned");
    let run = support::client(&server.addr, dir.path(), &["upload", "a.txt"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let pinned = run.stdout.trim().to_owned();
    let (share, fragment) = pinned.split_once('#').expect("the URL carries a pin");
    let code = share.trim_end_matches('/').rsplit('/').next().unwrap();
    let mut window = window(settings(dir.path()));
    // Connected to another server (another key): the pinned URL is not listed on that unchecked
    // connection (where the share would just be missing) but on a new one, which the key refuses.
    connect(&mut window, &other);
    view(&mut window, &format!("ftp://{}/{code}/#{fragment}", other.addr));
    wait_for(&mut window, "Cannot list the share");
    assert!(!shows(&window, "does not exist"));
    view(&mut window, &pinned);
    wait_for(&mut window, "a.txt");
}
