//! `anonshare-gui`, the desktop client of the original design, for people who would rather click
//! than type: connect to a server, upload up to [`MAX_UPLOAD_FILES`] files into a new share, view
//! a share's files, and download the ones chosen, each verified against its SHA-256.
//!
//! [`GuiApp`] is the whole window: its state, and [`GuiApp::show`], which draws one frame and acts
//! on what the user did in it. The `anonshare-gui` binary runs it under eframe; the tests drive the
//! same struct with egui_kittest. Every transfer goes through the client library the command line
//! uses (`Link`, `transfer`), on a [`task::Task`] thread of its own: the window only draws, never
//! waits on the network or the disk, and has no protocol code.

mod sections;
mod settings;
pub mod task;
mod words;

pub use settings::{Settings, parse_args, usage};
use words::{file_name, files, share_of};
pub use words::{human_size, local_time};

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::thread;
use std::time::Duration;

use eframe::egui::{self, Button, Grid, ProgressBar, RichText, ScrollArea, TextEdit, Ui};
use time::{OffsetDateTime, UtcOffset};

use crate::client::link::Link;
use crate::client::settings::ClientSettings;
use crate::client::transfer::{self, Existing, Listing, SavedFile, Selection, ShareOptions, UploadReport};
use crate::client::{ClientError, RemoteFile, ShareInfo, ShareUrl, join_host_port};
use crate::common::expiry::{parse_expiry, rfc3339};
use crate::common::pin::Pin;
use task::{Poll, Task};

/// Most files one upload takes, as in the original design.
pub const MAX_UPLOAD_FILES: usize = 6;
/// How often the window looks at a running task or dialog when nothing woke it.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Quick choices for the expiry: the button's text and the spec it fills in.
const EXPIRY_PRESETS: [(&str, &str); 4] =
    [("1 hour", "1h"), ("1 day", "1d"), ("7 days", "7d"), ("30 days", "30d")];
/// The window's size when it opens, in points.
pub const WINDOW_SIZE: [f32; 2] = [1000.0, 760.0];

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
    /// What a download does with a file already in its place.
    existing: Existing,
    download_note: Option<Note>,
    saved: Vec<SavedFile>,

    /// A file or folder dialog, open on a thread of its own.
    dialog: Option<Receiver<Picked>>,
    /// Whether a file dialog can open on this system; without one, paths are typed.
    file_dialog: bool,
    /// The path field, for adding a file without a dialog.
    typed_path: String,
    /// The user's time zone.
    local_offset: UtcOffset,
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
    /// Its empty folders, made when every file is downloaded.
    folders: Vec<String>,
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
            existing: Existing::Refuse,
            download_note: None,
            saved: Vec::new(),
            dialog: None,
            file_dialog: settings.file_dialog,
            typed_path: String::new(),
            local_offset: settings.local_offset,
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

    /// The link to `address`: the connected server's when it is free, else a new one. With a
    /// share URL's `pin`, only a link held to that pin will do: another one is closed.
    fn take_link(&mut self, address: &str, pin: Option<Pin>) -> Link {
        let free = match &mut self.server {
            Some(server) if server.address() == address => server.link.take(),
            _ => None,
        };
        match free {
            Some(link) if pin.is_none() || link.pin() == pin => link,
            Some(link) => {
                goodbye(link);
                Link::new(address, &self.client).pinned(pin)
            }
            None => Link::new(address, &self.client).pinned(pin),
        }
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
        // What the window said about that server no longer holds.
        for note in
            [&mut self.connect_note, &mut self.upload_note, &mut self.view_note, &mut self.download_note]
        {
            *note = None;
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
                let url = ShareUrl::of_created(&report.share, &host, port, report.pin);
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
            Err(err) => self.upload_note = Note::error(format!("Upload failed, nothing was shared: {err}.")),
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
        let mut link = self.take_link(&url.address(), url.pin);
        self.start(ctx, JobKind::View, Vec::new(), move |reporter| {
            let result = transfer::list_share(&mut link, &url.code, reporter);
            Outcome::Listed { link, url, result }
        });
    }

    fn listed_share(&mut self, url: ShareUrl, result: Result<Listing, ClientError>) {
        match result {
            Ok(Listing { info, files, folders }) => {
                // A share is mostly fetched whole: every file starts selected.
                let selected = vec![true; files.len()];
                self.listed = Some(Listed { url, info, files, folders, selected });
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
        let every = listed.selected.iter().all(|selected| *selected);
        let folders = if every { listed.folders.clone() } else { Vec::new() };
        let selection = Selection { files: chosen, folders };
        let existing = self.existing;
        let code = listed.url.code.clone();
        let address = listed.url.address();
        let pin = listed.url.pin;
        let dir = PathBuf::from(self.destination.trim());
        self.download_note = None;
        self.saved.clear();
        let mut link = self.take_link(&address, pin);
        self.start(ctx, JobKind::Download, files, move |reporter| {
            let result = transfer::download(&mut link, &code, &selection, &dir, existing, reporter);
            Outcome::Downloaded { link, dir, result }
        });
    }

    fn downloaded(&mut self, dir: &Path, result: Result<Vec<SavedFile>, ClientError>) {
        match result {
            Ok(saved) => {
                self.download_note =
                    Note::info(format!("Downloaded {} into {}.", files(saved.len()), dir.display()));
                self.saved = saved;
            }
            Err(ClientError::Cancelled) => {
                self.download_note = Note::info(
                    "Download cancelled. Unfinished files are kept as NAME.anonshare-part; the next download resumes them.",
                );
            }
            Err(err @ ClientError::WouldReplace { .. }) => {
                self.download_note = Note::error(format!(
                    "{err}. Under 'If a file is already there', choose 'Replace it' or 'Keep it' to go on."
                ));
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

    fn open_dialog(&mut self, ctx: &egui::Context, kind: DialogKind) {
        if !self.file_dialog {
            let note = Note::error(
                "No file dialog on this system (neither the desktop portal nor zenity): type the path in the field below, or drop files onto the window.",
            );
            match kind {
                DialogKind::Files => self.upload_note = note,
                DialogKind::Folder => self.download_note = note,
            }
            return;
        }
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

/// Says goodbye on a link's connection without making the window wait for the reply.
fn goodbye(mut link: Link) {
    let _ = thread::Builder::new().name("anonshare-quit".into()).spawn(move || link.quit());
}
