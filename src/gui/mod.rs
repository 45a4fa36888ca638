//! `anonshare-gui`, the desktop client of the original design, for people who would rather click
//! than type: connect to a server, upload up to [`MAX_UPLOAD_FILES`] files into a new share, view
//! a share's files, and download the ones chosen, each verified against its SHA-256.
//!
//! [`GuiApp`] is the whole window: its state, and [`GuiApp::show`], which draws one frame and acts
//! on what the user did in it. The `anonshare-gui` binary runs it under eframe; the tests drive the
//! same struct with egui_kittest. Every transfer goes through the client library the command line
//! uses (`Link`, `transfer`), on a [`task::Task`] thread of its own: the window only draws, never
//! waits on the network or the disk, and has no protocol code.

pub mod task;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::thread;
use std::time::Duration;

use eframe::egui::{self, Button, Grid, ProgressBar, RichText, ScrollArea, TextEdit, Ui};
use time::OffsetDateTime;

use crate::client::link::Link;
use crate::client::settings::{
    ClientSettings, DEFAULT_PARALLEL, DEFAULT_PORT, DEFAULT_RETRIES, DEFAULT_TIMEOUT, MAX_PARALLEL,
    SERVER_ENV,
};
use crate::client::transfer::{self, Listing, SavedFile, ShareOptions, UploadReport};
use crate::client::{ClientError, RemoteFile, ShareInfo, ShareUrl, join_host_port};
use crate::common::args::{Arg, Args, UsageError, unknown_flag};
use crate::common::expiry::{format_duration, parse_expiry, parse_rfc3339, rfc3339};
use task::{FileProgress, Poll, Task};

/// Most files one upload takes, as in the original design.
pub const MAX_UPLOAD_FILES: usize = 6;
/// How often the window looks at a running task or dialog when nothing woke it.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Quick choices for the expiry: the button's text and the spec it fills in.
const EXPIRY_PRESETS: [(&str, &str); 4] =
    [("1 hour", "1h"), ("1 day", "1d"), ("7 days", "7d"), ("30 days", "30d")];
/// The window's size when it opens, in points.
pub const WINDOW_SIZE: [f32; 2] = [1000.0, 760.0];

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
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            host: "127.0.0.1".into(),
            port: DEFAULT_PORT,
            client: ClientSettings::default(),
            download_dir: default_download_dir(),
            open: None,
        }
    }
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

/// The desktop client's window: everything it shows and the work it has running.
pub struct GuiApp {
    /// What every link the window opens is made with.
    client: ClientSettings,
    /// The server address and port fields.
    host: String,
    port: String,
    /// The server the window is connected to.
    server: Option<Server>,
    /// The one piece of work running, if any.
    job: Option<Job>,
    connect_note: Option<Note>,
    /// View this share once connected (a share URL given at start).
    view_when_connected: bool,

    /// Files for the next upload, in the order they were added, with their sizes then.
    chosen: Vec<(PathBuf, u64)>,
    /// The expiry field: a duration, a date or an RFC 3339 time; empty for the server's default.
    expires: String,
    upload_note: Option<Note>,
    uploaded: Option<Uploaded>,

    /// The share path field.
    share_text: String,
    view_note: Option<Note>,
    listed: Option<Listed>,
    /// The destination folder field.
    destination: String,
    download_note: Option<Note>,
    saved: Vec<SavedFile>,

    /// A file or folder dialog, open on a thread of its own.
    dialog: Option<Receiver<Picked>>,
}

/// A connected server, and its link when no task holds it.
struct Server {
    host: String,
    port: u16,
    link: Option<Link>,
}

impl Server {
    fn address(&self) -> String {
        join_host_port(&self.host, self.port)
    }
}

/// Work in flight, and which part of the window it belongs to.
struct Job {
    kind: JobKind,
    task: Task<Outcome>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobKind {
    Connect,
    Upload,
    View,
    Download,
}

/// What a finished task hands back; links come back so the connection is used again.
enum Outcome {
    Connected { host: String, port: u16, link: Link, result: Result<(), ClientError> },
    Uploaded(Result<(ShareUrl, UploadReport), ClientError>),
    Listed { link: Link, url: ShareUrl, result: Result<Listing, ClientError> },
    Downloaded { link: Link, dir: PathBuf, result: Result<Vec<SavedFile>, ClientError> },
}

/// What a file or folder dialog answered.
enum Picked {
    Files(Vec<PathBuf>),
    Folder(PathBuf),
    Nothing,
}

/// A line of feedback under a section.
struct Note {
    text: String,
    error: bool,
}

impl Note {
    fn info(text: impl Into<String>) -> Option<Note> {
        Some(Note { text: text.into(), error: false })
    }

    fn error(text: impl Into<String>) -> Option<Note> {
        Some(Note { text: text.into(), error: true })
    }
}

/// A share this window created.
struct Uploaded {
    url: String,
    expires: String,
    owner_token: String,
    files: usize,
    copied: bool,
}

/// A share the window lists, and which of its files are selected.
struct Listed {
    url: ShareUrl,
    info: ShareInfo,
    files: Vec<RemoteFile>,
    selected: Vec<bool>,
}

impl GuiApp {
    pub fn new(settings: Settings) -> GuiApp {
        GuiApp {
            client: settings.client,
            host: settings.host,
            port: settings.port.to_string(),
            server: None,
            job: None,
            connect_note: None,
            view_when_connected: settings.open.is_some(),
            chosen: Vec::new(),
            expires: String::new(),
            upload_note: None,
            uploaded: None,
            share_text: settings.open.map(|url| url.to_string()).unwrap_or_default(),
            view_note: None,
            listed: None,
            destination: settings.download_dir.display().to_string(),
            download_note: None,
            saved: Vec::new(),
            dialog: None,
        }
    }

    /// The server the window is connected to, as `HOST:PORT`.
    pub fn connected_to(&self) -> Option<String> {
        self.server.as_ref().map(Server::address)
    }

    /// Draws one frame and acts on what the user did: the whole window.
    pub fn show(&mut self, ui: &mut Ui) {
        let ctx = ui.ctx().clone();
        self.poll(&ctx);
        if self.view_when_connected && self.job.is_none() && self.server.is_none() {
            self.connect(&ctx);
        }
        let dropped: Vec<PathBuf> =
            ctx.input(|input| input.raw.dropped_files.iter().map(|file| file.path().to_owned()).collect());
        if !dropped.is_empty() {
            self.add_files(dropped);
        }
        egui::CentralPanel::default_margins().show(ui, |ui| {
            ScrollArea::vertical().auto_shrink(false).show(ui, |ui| {
                self.server_section(ui);
                ui.separator();
                self.upload_section(ui);
                ui.separator();
                self.share_section(ui);
            });
        });
        if self.job.is_some() || self.dialog.is_some() {
            ctx.request_repaint_after(POLL_INTERVAL);
        }
    }

    /// Adds files to the next upload, up to [`MAX_UPLOAD_FILES`]; says why any was left out.
    pub fn add_files(&mut self, paths: Vec<PathBuf>) {
        let mut left_out = Vec::new();
        for path in paths {
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => {
                    if self.chosen.iter().any(|(chosen, _)| *chosen == path) {
                        continue;
                    } else if self.chosen.len() >= MAX_UPLOAD_FILES {
                        left_out.push(format!("'{}' was not added", path.display()));
                    } else {
                        self.chosen.push((path, meta.len()));
                    }
                }
                _ => left_out.push(format!("'{}' is not a file", path.display())),
            }
        }
        self.upload_note = match left_out.is_empty() {
            true => None,
            false => Note::error(format!(
                "An upload takes at most {MAX_UPLOAD_FILES} files: {}.",
                left_out.join("; ")
            )),
        };
    }

    /// Takes in the results of finished work and dialogs.
    fn poll(&mut self, ctx: &egui::Context) {
        if let Some(dialog) = &self.dialog {
            match dialog.try_recv() {
                Ok(Picked::Files(paths)) => {
                    self.dialog = None;
                    self.add_files(paths);
                }
                Ok(Picked::Folder(dir)) => {
                    self.dialog = None;
                    self.destination = dir.display().to_string();
                }
                Ok(Picked::Nothing) | Err(TryRecvError::Disconnected) => self.dialog = None,
                Err(TryRecvError::Empty) => {}
            }
        }
        let Some(job) = &self.job else { return };
        let outcome = match job.task.poll() {
            Poll::Running => return,
            Poll::Done(outcome) => outcome,
            Poll::Lost => {
                let kind = job.kind;
                self.job = None;
                // The task's link is gone with it; the next piece of work connects again.
                if let Some(server) = &mut self.server
                    && server.link.is_none()
                {
                    server.link = Some(Link::new(server.address(), &self.client));
                }
                *self.note_of(kind) =
                    Note::error("The work stopped unexpectedly: this is a bug (see stderr).");
                return;
            }
        };
        self.job = None;
        match outcome {
            Outcome::Connected { host, port, link, result } => match result {
                Ok(()) => {
                    self.server = Some(Server { host, port, link: Some(link) });
                    self.connect_note = None;
                    if std::mem::take(&mut self.view_when_connected) {
                        self.view(ctx);
                    }
                }
                Err(err) => {
                    self.view_when_connected = false;
                    self.connect_note = Note::error(format!("Cannot connect to {}: {err}", link.address()));
                }
            },
            Outcome::Uploaded(result) => self.uploaded(result),
            Outcome::Listed { link, url, result } => {
                self.give_back(link, matches!(result, Err(ClientError::Cancelled)));
                self.listed_share(url, result);
            }
            Outcome::Downloaded { link, dir, result } => {
                self.give_back(link, matches!(result, Err(ClientError::Cancelled)));
                self.downloaded(&dir, result);
            }
        }
    }

    fn note_of(&mut self, kind: JobKind) -> &mut Option<Note> {
        match kind {
            JobKind::Connect => &mut self.connect_note,
            JobKind::Upload => &mut self.upload_note,
            JobKind::View => &mut self.view_note,
            JobKind::Download => &mut self.download_note,
        }
    }

    /// Starts `work` as the window's job; a thread that cannot start is a note, not a crash.
    fn start(
        &mut self,
        ctx: &egui::Context,
        kind: JobKind,
        files: Vec<(String, u64)>,
        work: impl FnOnce(&mut task::Reporter) -> Outcome + Send + 'static,
    ) {
        let wake = {
            let ctx = ctx.clone();
            move || ctx.request_repaint()
        };
        match Task::spawn(&format!("anonshare-{kind:?}").to_lowercase(), files, wake, work) {
            Ok(task) => self.job = Some(Job { kind, task }),
            Err(err) => *self.note_of(kind) = Note::error(format!("cannot start a thread: {err}")),
        }
    }

    /// The link to `address`: the connected server's when it is free, else a new one.
    fn take_link(&mut self, address: &str) -> Link {
        match &mut self.server {
            Some(server) if server.address() == address => server.link.take(),
            _ => None,
        }
        .unwrap_or_else(|| Link::new(address, &self.client))
    }

    /// Keeps a link that came back from a task, or lets it go. A cancelled transfer leaves its
    /// connection in the middle of a command, so it is closed and the next work connects again.
    fn give_back(&mut self, link: Link, cancelled: bool) {
        match &mut self.server {
            Some(server) if server.address() == link.address() && server.link.is_none() => {
                server.link = Some(match cancelled {
                    true => Link::new(link.address(), &self.client),
                    false => link,
                });
            }
            _ if cancelled => drop(link),
            _ => goodbye(link),
        }
    }

    fn connect(&mut self, ctx: &egui::Context) {
        let host = self.host.trim().to_owned();
        let port = match self.port.trim().parse::<u16>() {
            Ok(port) if port > 0 && !host.is_empty() => port,
            _ if host.is_empty() => {
                self.connect_note = Note::error("Enter the server's address.");
                return;
            }
            _ => {
                self.connect_note =
                    Note::error(format!("Invalid port '{}': expected 1-65535.", self.port.trim()));
                return;
            }
        };
        self.connect_note = None;
        let mut link = Link::new(join_host_port(&host, port), &self.client);
        self.start(ctx, JobKind::Connect, Vec::new(), move |reporter| {
            let result = link.run(reporter, |_, _| Ok(()));
            Outcome::Connected { host, port, link, result }
        });
    }

    fn disconnect(&mut self) {
        match &self.job {
            // Nothing to keep from a connect that has not finished.
            Some(job) if job.kind == JobKind::Connect => self.job = None,
            Some(job) => job.task.cancel(),
            None => {}
        }
        self.view_when_connected = false;
        if let Some(link) = self.server.take().and_then(|server| server.link) {
            goodbye(link);
        }
    }

    fn server_section(&mut self, ui: &mut Ui) {
        let connecting = self.job.as_ref().is_some_and(|job| job.kind == JobKind::Connect);
        let editable = self.server.is_none() && !connecting;
        ui.horizontal(|ui| {
            let label = ui.label("Server address");
            ui.add_enabled(editable, TextEdit::singleline(&mut self.host).desired_width(240.0))
                .labelled_by(label.id);
            let label = ui.label("Port");
            ui.add_enabled(editable, TextEdit::singleline(&mut self.port).desired_width(60.0))
                .labelled_by(label.id);
            if connecting {
                ui.add_enabled(false, Button::new("Connecting..."));
                ui.spinner();
                if ui.button("Cancel").clicked() {
                    self.disconnect();
                }
            } else if self.server.is_some() {
                if ui.button("Disconnect").clicked() {
                    self.disconnect();
                }
            } else if ui.add_enabled(self.job.is_none(), Button::new("Connect")).clicked() {
                self.connect(ui.ctx());
            }
        });
        if let Some(address) = self.connected_to() {
            ui.label(format!("Connected to {address}"));
        } else if self.connect_note.is_none() {
            ui.label("Not connected: enter the server's address and port, then Connect.");
        }
        show_note(ui, &self.connect_note);
    }

    fn upload_section(&mut self, ui: &mut Ui) {
        ui.heading("Upload files");
        let uploading = self.running(JobKind::Upload);
        ui.horizontal(|ui| {
            let room = self.chosen.len() < MAX_UPLOAD_FILES;
            if ui
                .add_enabled(room && self.dialog.is_none() && !uploading, Button::new("Choose files..."))
                .clicked()
            {
                self.open_dialog(ui.ctx(), DialogKind::Files);
            }
            let hovering = ui.ctx().input(|input| !input.raw.hovered_files.is_empty());
            let hint = format!("or drop files onto this window: up to {MAX_UPLOAD_FILES} per upload");
            match hovering {
                true => ui.label(RichText::new("Drop the files to add them to the upload").strong()),
                false => ui.label(hint),
            };
        });
        if !self.chosen.is_empty() {
            let mut remove = None;
            Grid::new("chosen").num_columns(3).striped(true).show(ui, |ui| {
                for (index, (path, size)) in self.chosen.iter().enumerate() {
                    ui.label(file_name(path));
                    ui.label(human_size(*size));
                    if ui.add_enabled(!uploading, Button::new("Remove")).clicked() {
                        remove = Some(index);
                    }
                    ui.end_row();
                }
            });
            if let Some(index) = remove {
                self.chosen.remove(index);
            }
            ui.label(format!("{} of {MAX_UPLOAD_FILES} files", self.chosen.len()));
        }
        ui.horizontal(|ui| {
            let label = ui.label("Expires");
            ui.add_enabled(
                !uploading,
                TextEdit::singleline(&mut self.expires)
                    .hint_text("e.g. 12h, 7d or 2026-12-01")
                    .desired_width(200.0),
            )
            .labelled_by(label.id);
            for (text, spec) in EXPIRY_PRESETS {
                if ui.add_enabled(!uploading, Button::new(text)).clicked() {
                    self.expires = spec.to_owned();
                }
            }
        });
        let lifetime = match self.expires.trim() {
            "" => {
                ui.label("The share expires when the server's default says (7 days unless changed).");
                Ok(None)
            }
            spec => match parse_expiry(spec, OffsetDateTime::now_utc()) {
                Ok(lifetime) => {
                    let at = OffsetDateTime::now_utc().unix_timestamp() + lifetime.as_secs() as i64;
                    ui.label(format!(
                        "The share expires in {}, at {}.",
                        rough_duration(lifetime),
                        rfc3339(at)
                    ));
                    Ok(Some(lifetime))
                }
                Err(err) => {
                    ui.colored_label(ui.visuals().error_fg_color, format!("{err}"));
                    Err(())
                }
            },
        };
        ui.horizontal(|ui| {
            let ready = self.server.is_some() && !self.chosen.is_empty() && self.job.is_none();
            if ui.add_enabled(ready && lifetime.is_ok(), Button::new("Upload")).clicked()
                && let Ok(lifetime) = lifetime
            {
                self.upload(ui.ctx(), lifetime);
            }
            if self.server.is_none() {
                ui.label("Connect to a server to upload.");
            }
        });
        self.progress(ui, JobKind::Upload);
        show_note(ui, &self.upload_note);
        if let Some(uploaded) = &mut self.uploaded {
            ui.group(|ui| {
                ui.label(format!(
                    "Uploaded {} file(s). The share expires at {}.",
                    uploaded.files, uploaded.expires
                ));
                ui.horizontal(|ui| {
                    ui.label("Share path:");
                    ui.add(
                        egui::Label::new(RichText::new(&uploaded.url).monospace().strong()).selectable(true),
                    );
                    if ui.button("Copy to clipboard").clicked() {
                        ui.ctx().copy_text(uploaded.url.clone());
                        uploaded.copied = true;
                    }
                    if uploaded.copied {
                        ui.label("Copied.");
                    }
                });
                ui.horizontal(|ui| {
                    ui.label("Owner token (keep it to delete the share early):");
                    ui.add(
                        egui::Label::new(RichText::new(&uploaded.owner_token).monospace()).selectable(true),
                    );
                });
            });
        }
    }

    fn upload(&mut self, ctx: &egui::Context, lifetime: Option<Duration>) {
        let Some(server) = &self.server else { return };
        let (host, port) = (server.host.clone(), server.port);
        // An upload owns its new share on every connection it opens: it gets a link of its own.
        let link = Link::new(server.address(), &self.client);
        let files = self.chosen.iter().map(|(path, size)| (file_name(path), *size)).collect();
        let paths: Vec<PathBuf> = self.chosen.iter().map(|(path, _)| path.clone()).collect();
        self.upload_note = None;
        self.uploaded = None;
        self.start(ctx, JobKind::Upload, files, move |reporter| {
            let options = ShareOptions { lifetime, downloads: None };
            let result = transfer::publish(link, &paths, options, reporter).map(|report| {
                let url = ShareUrl { host, port, code: report.share.code.clone() };
                (url, report)
            });
            Outcome::Uploaded(result)
        });
    }

    fn uploaded(&mut self, result: Result<(ShareUrl, UploadReport), ClientError>) {
        match result {
            Ok((url, report)) => {
                self.chosen.clear();
                self.uploaded = Some(Uploaded {
                    url: url.to_string(),
                    expires: report.share.expires,
                    owner_token: report.share.owner_token,
                    files: report.files.len(),
                    copied: false,
                });
            }
            Err(ClientError::Cancelled) => {
                self.upload_note = Note::info("Upload cancelled: nothing was shared.")
            }
            Err(err) => self.upload_note = Note::error(format!("Upload failed, nothing was shared: {err}")),
        }
    }

    fn share_section(&mut self, ui: &mut Ui) {
        ui.heading("View and download files");
        ui.horizontal(|ui| {
            let label = ui.label("Share path");
            let field = TextEdit::singleline(&mut self.share_text)
                .hint_text("ftp://HOST:PORT/CODE/")
                .desired_width(460.0);
            let response = ui.add(field).labelled_by(label.id);
            let entered = response.lost_focus() && ui.input(|input| input.key_pressed(egui::Key::Enter));
            let ready = self.job.is_none() && !self.share_text.trim().is_empty();
            let clicked = ui.add_enabled(ready, Button::new("View")).clicked();
            if ready && (clicked || entered) {
                self.view(ui.ctx());
            }
        });
        self.progress(ui, JobKind::View);
        show_note(ui, &self.view_note);
        let busy = self.job.is_some();
        let Some(listed) = &mut self.listed else { return };
        let (count, total) = show_listing(ui, listed, busy);
        ui.horizontal(|ui| {
            let label = ui.label("Destination folder");
            ui.add_enabled(!busy, TextEdit::singleline(&mut self.destination).desired_width(360.0))
                .labelled_by(label.id);
            if ui.add_enabled(!busy && self.dialog.is_none(), Button::new("Choose folder...")).clicked() {
                self.open_dialog(ui.ctx(), DialogKind::Folder);
            }
        });
        ui.horizontal(|ui| {
            let ready = !busy && count > 0 && !self.destination.trim().is_empty();
            if ui.add_enabled(ready, Button::new("Download")).clicked() {
                self.download(ui.ctx());
            }
            ui.label(format!(
                "{count} of {total} file(s) selected. Download them before the share expires; \
                 each file is checked against its SHA-256."
            ));
        });
        self.progress(ui, JobKind::Download);
        show_note(ui, &self.download_note);
        if !self.saved.is_empty() {
            ui.label("Saved, each file verified against its SHA-256:");
            for saved in &self.saved {
                ui.monospace(saved.local.display().to_string());
            }
        }
    }

    fn view(&mut self, ctx: &egui::Context) {
        let server = self.server.as_ref().map(|server| (server.host.as_str(), server.port));
        let url = match share_of(&self.share_text, server) {
            Ok(url) => url,
            Err(err) => {
                self.view_note = Note::error(err.to_string());
                return;
            }
        };
        self.view_note = None;
        self.listed = None;
        self.saved.clear();
        self.download_note = None;
        let mut link = self.take_link(&url.address());
        self.start(ctx, JobKind::View, Vec::new(), move |reporter| {
            let result = transfer::list_share(&mut link, &url.code, reporter);
            Outcome::Listed { link, url, result }
        });
    }

    fn listed_share(&mut self, url: ShareUrl, result: Result<Listing, ClientError>) {
        match result {
            Ok(Listing { info, files }) => {
                // A share is mostly fetched whole: every file starts selected.
                let selected = vec![true; files.len()];
                self.listed = Some(Listed { url, info, files, selected });
            }
            Err(err) if err.is_not_found() => {
                self.view_note = Note::error(format!("The share {url} does not exist or has expired."));
            }
            Err(err) => self.view_note = Note::error(format!("Cannot list the share: {err}")),
        }
    }

    fn download(&mut self, ctx: &egui::Context) {
        let Some(listed) = &self.listed else { return };
        let chosen: Vec<RemoteFile> = listed
            .files
            .iter()
            .zip(&listed.selected)
            .filter(|(_, selected)| **selected)
            .map(|(file, _)| file.clone())
            .collect();
        let files = chosen.iter().map(|file| (file.path.clone(), file.size)).collect();
        let code = listed.url.code.clone();
        let address = listed.url.address();
        let dir = PathBuf::from(self.destination.trim());
        self.download_note = None;
        self.saved.clear();
        let mut link = self.take_link(&address);
        self.start(ctx, JobKind::Download, files, move |reporter| {
            let result = transfer::download(&mut link, &code, &chosen, &dir, reporter);
            Outcome::Downloaded { link, dir, result }
        });
    }

    fn downloaded(&mut self, dir: &Path, result: Result<Vec<SavedFile>, ClientError>) {
        match result {
            Ok(saved) => {
                self.download_note =
                    Note::info(format!("Downloaded {} file(s) into {}.", saved.len(), dir.display()));
                self.saved = saved;
            }
            Err(ClientError::Cancelled) => {
                self.download_note = Note::info(
                    "Download cancelled. Unfinished files are kept as NAME.anonshare-part; the next download resumes them.",
                );
            }
            Err(err) if err.is_not_found() => {
                self.download_note =
                    Note::error(format!("The share or a file is gone; the share may have expired ({err})."));
            }
            Err(err) => self.download_note = Note::error(format!("Download failed: {err}")),
        }
    }

    fn running(&self, kind: JobKind) -> bool {
        self.job.as_ref().is_some_and(|job| job.kind == kind)
    }

    /// The progress of the job of kind `kind`, one bar per file, and its Cancel button.
    fn progress(&self, ui: &mut Ui, kind: JobKind) {
        let Some(job) = self.job.as_ref().filter(|job| job.kind == kind) else { return };
        for file in job.task.progress() {
            ui.add(ProgressBar::new(file.fraction()).text(progress_text(&file)).desired_width(560.0));
        }
        ui.horizontal(|ui| {
            if job.task.is_cancelling() {
                ui.add_enabled(false, Button::new("Cancelling..."));
            } else if ui.button("Cancel").clicked() {
                job.task.cancel();
            }
            ui.spinner();
        });
    }

    fn open_dialog(&mut self, ctx: &egui::Context, kind: DialogKind) {
        let (send, answer) = mpsc::channel();
        let ctx = ctx.clone();
        let spawned = thread::Builder::new().name("anonshare-dialog".into()).spawn(move || {
            let picked = match kind {
                DialogKind::Files => rfd::FileDialog::new()
                    .set_title("Files to share")
                    .pick_files()
                    .map_or(Picked::Nothing, Picked::Files),
                DialogKind::Folder => rfd::FileDialog::new()
                    .set_title("Download into")
                    .pick_folder()
                    .map_or(Picked::Nothing, Picked::Folder),
            };
            let _ = send.send(picked);
            ctx.request_repaint();
        });
        match spawned {
            Ok(_) => self.dialog = Some(answer),
            Err(err) => self.upload_note = Note::error(format!("cannot open a file dialog: {err}")),
        }
    }
}

impl eframe::App for GuiApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

#[derive(Debug, Clone, Copy)]
enum DialogKind {
    Files,
    Folder,
}

/// Draws what the window knows of a listed share, and a checkbox per file; returns how many
/// files are selected, and how many there are.
fn show_listing(ui: &mut Ui, listed: &mut Listed, busy: bool) -> (usize, usize) {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    ui.label(format!("Share {}", listed.url));
    ui.label(format!(
        "{} file(s), {}. Available until {}{}; after that the share and its files are gone.",
        listed.files.len(),
        human_size(listed.info.bytes),
        listed.info.expires,
        time_left(&listed.info.expires, now).map(|left| format!(" ({left})")).unwrap_or_default(),
    ));
    if let Some(downloads) = listed.info.downloads {
        ui.label(format!("Each file can be downloaded completely {downloads} time(s) in all."));
    }
    ui.horizontal(|ui| {
        if ui.add_enabled(!busy, Button::new("Select all")).clicked() {
            listed.selected.iter_mut().for_each(|selected| *selected = true);
        }
        if ui.add_enabled(!busy, Button::new("Select none")).clicked() {
            listed.selected.iter_mut().for_each(|selected| *selected = false);
        }
    });
    Grid::new("share-files").num_columns(3).striped(true).spacing([16.0, 4.0]).show(ui, |ui| {
        ui.strong("File");
        ui.strong("Size");
        ui.strong("SHA-256");
        ui.end_row();
        for (file, selected) in listed.files.iter().zip(&mut listed.selected) {
            ui.add_enabled(!busy, egui::Checkbox::new(selected, file.path.as_str()));
            ui.label(human_size(file.size)).on_hover_text(format!("{} bytes", file.size));
            ui.add(egui::Label::new(RichText::new(file.sha256.to_string()).monospace()).selectable(true));
            ui.end_row();
        }
    });
    (listed.selected.iter().filter(|selected| **selected).count(), listed.files.len())
}

/// Says goodbye on a link's connection without making the window wait for the reply.
fn goodbye(mut link: Link) {
    let _ = thread::Builder::new().name("anonshare-quit".into()).spawn(move || link.quit());
}

fn show_note(ui: &mut Ui, note: &Option<Note>) {
    if let Some(note) = note {
        let color = if note.error { ui.visuals().error_fg_color } else { ui.visuals().text_color() };
        ui.colored_label(color, &note.text);
    }
}

fn progress_text(file: &FileProgress) -> String {
    match file.finished && file.done >= file.size {
        true => format!("{}: {} done", file.path, human_size(file.size)),
        false => format!("{}: {} of {}", file.path, human_size(file.done), human_size(file.size)),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap_or(path.as_os_str()).to_string_lossy().into_owned()
}

/// The share a pasted path names: a share URL, or a bare code on the connected server.
fn share_of(text: &str, server: Option<(&str, u16)>) -> Result<ShareUrl, ClientError> {
    let text = text.trim();
    if text.starts_with("ftp://") {
        return ShareUrl::parse(text);
    }
    if text.is_empty() || text.contains(['/', ' ', ':']) {
        return Err(ClientError::Usage(format!(
            "invalid share path '{text}': expected ftp://HOST:PORT/CODE/ as shown after an upload"
        )));
    }
    match server {
        Some((host, port)) => Ok(ShareUrl { host: host.to_owned(), port, code: text.to_owned() }),
        None => Err(ClientError::Usage(
            "connect to a server first, or paste the whole share path (ftp://HOST:PORT/CODE/)".into(),
        )),
    }
}

/// Bytes the way a person reads them: `512 B`, `48.2 KiB`, `1.2 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A duration to its two largest units: `6d 23h`, `1h 59m`, `45s`.
fn rough_duration(duration: Duration) -> String {
    format_duration(duration).split(' ').take(2).collect::<Vec<_>>().join(" ")
}

/// How long until the RFC 3339 time `expires`, seen at Unix time `now`.
fn time_left(expires: &str, now: i64) -> Option<String> {
    let left = parse_rfc3339(expires)? - now;
    Some(match left {
        ..=0 => "expired".into(),
        left => format!("{} left", rough_duration(Duration::from_secs(left as u64))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_a_person_would() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
    }

    #[test]
    fn time_left_before_and_after_expiry() {
        assert_eq!(
            time_left("2026-01-02T00:00:00Z", parse_rfc3339("2026-01-01T00:30:00Z").unwrap()).unwrap(),
            "23h 30m left"
        );
        assert_eq!(
            time_left("2026-01-02T00:00:00Z", parse_rfc3339("2026-01-03T00:00:00Z").unwrap()).unwrap(),
            "expired"
        );
        assert_eq!(time_left("soon", 0), None);
    }

    fn check_share(text: &str, server: Option<(&str, u16)>, expected: Result<&str, u8>) {
        match (share_of(text, server), expected) {
            (Ok(url), Ok(want)) => assert_eq!(url.to_string(), want),
            (Err(err), Err(code)) => assert_eq!(err.exit_code(), code, "{err}"),
            (got, want) => panic!("{text:?}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn share_paths() {
        let here = Some(("127.0.0.1", 2121));
        check_share(" ftp://h:21/abc/ ", None, Ok("ftp://h:21/abc/"));
        check_share("abc", here, Ok("ftp://127.0.0.1:2121/abc/"));
        check_share("abc", None, Err(1));
        check_share("a/b", here, Err(1));
        check_share("", here, Err(1));
    }

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
