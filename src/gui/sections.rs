//! The window's sections as they are drawn: the server, the upload, and the share with its
//! files, each with its notes and progress. Drawing and reading what the user did only: the
//! work a click starts runs as a job of `GuiApp` (`mod.rs`).

use super::words::{files, human_size, local_time, progress_text, rough_duration, time_left};

/// Most height the list of a share's files takes; longer lists scroll inside it, so the
/// Download button stays in reach.
const LISTING_HEIGHT: f32 = 320.0;
use super::*;

impl GuiApp {
    pub(super) fn server_section(&mut self, ui: &mut Ui) {
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

    pub(super) fn upload_section(&mut self, ui: &mut Ui) {
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
        ui.horizontal(|ui| {
            let label = ui.label("File path");
            let field = TextEdit::singleline(&mut self.typed_path)
                .hint_text("/home/me/report.pdf")
                .desired_width(360.0);
            let response = ui.add_enabled(!uploading, field).labelled_by(label.id);
            let entered = response.lost_focus() && ui.input(|input| input.key_pressed(egui::Key::Enter));
            let ready = !uploading && !self.typed_path.trim().is_empty();
            if (ui.add_enabled(ready, Button::new("Add")).clicked() || (ready && entered))
                && let path = PathBuf::from(self.typed_path.trim())
            {
                self.typed_path.clear();
                self.add_files(vec![path]);
            }
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
                        "The share expires in {}, at {}, if the server keeps shares that long (30 days unless changed).",
                        rough_duration(lifetime),
                        local_time(&rfc3339(at), self.local_offset)
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
                    "Uploaded {}. The share expires at {}.",
                    files(uploaded.files),
                    local_time(&uploaded.expires, self.local_offset)
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

    pub(super) fn share_section(&mut self, ui: &mut Ui) {
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
        let offset = self.local_offset;
        let Some(listed) = &mut self.listed else { return };
        show_share_facts(ui, listed, busy, offset);
        let (count, total) =
            (listed.selected.iter().filter(|selected| **selected).count(), listed.files.len());
        ui.horizontal(|ui| {
            let label = ui.label("Destination folder");
            ui.add_enabled(!busy, TextEdit::singleline(&mut self.destination).desired_width(360.0))
                .labelled_by(label.id);
            if ui.add_enabled(!busy && self.dialog.is_none(), Button::new("Choose folder...")).clicked() {
                self.open_dialog(ui.ctx(), DialogKind::Folder);
            }
        });
        ui.horizontal(|ui| {
            ui.label("If a file is already there:");
            ui.add_enabled_ui(!busy, |ui| {
                ui.radio_value(&mut self.existing, Existing::Refuse, "Stop");
                ui.radio_value(&mut self.existing, Existing::Overwrite, "Replace it");
                ui.radio_value(&mut self.existing, Existing::Skip, "Keep it");
            });
        });
        ui.horizontal(|ui| {
            let ready = !busy && count > 0 && !self.destination.trim().is_empty();
            if ui.add_enabled(ready, Button::new("Download")).clicked() {
                self.download(ui.ctx());
            }
            ui.label(format!(
                "{count} of {} selected. Download them before the share expires; \
                 each file is checked against its SHA-256.",
                files(total)
            ));
        });
        self.progress(ui, JobKind::Download);
        show_note(ui, &self.download_note);
        if !self.saved.is_empty() {
            ui.label("Saved, each file verified against its SHA-256:");
            ScrollArea::vertical().id_salt("saved").max_height(LISTING_HEIGHT / 2.0).show(ui, |ui| {
                for saved in &self.saved {
                    ui.monospace(saved.local.display().to_string());
                }
            });
        }
        if let Some(listed) = &mut self.listed {
            show_files(ui, listed, busy);
        }
    }

    /// The progress of the job of kind `kind`, one bar per file, and its Cancel button.
    pub(super) fn progress(&self, ui: &mut Ui, kind: JobKind) {
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
}

/// Draws what the window knows of a listed share, and Select all and none.
pub(super) fn show_share_facts(ui: &mut Ui, listed: &mut Listed, busy: bool, offset: UtcOffset) {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    ui.label(format!("Share {}", listed.url));
    ui.label(format!(
        "{}, {}. Available until {}{}; after that the share and its files are gone.",
        files(listed.files.len()),
        human_size(listed.info.bytes),
        local_time(&listed.info.expires, offset),
        time_left(&listed.info.expires, now).map(|left| format!(" ({left})")).unwrap_or_default(),
    ));
    if let Some(downloads) = listed.info.downloads {
        let times = crate::client::words::count(downloads, "time", "times");
        ui.label(format!("Each file can be downloaded completely {times} in all."));
    }
    ui.horizontal(|ui| {
        if ui.add_enabled(!busy, Button::new("Select all")).clicked() {
            listed.selected.iter_mut().for_each(|selected| *selected = true);
        }
        if ui.add_enabled(!busy, Button::new("Select none")).clicked() {
            listed.selected.iter_mut().for_each(|selected| *selected = false);
        }
    });
}

/// The share's files, a checkbox each, in a list that scrolls when it is long.
pub(super) fn show_files(ui: &mut Ui, listed: &mut Listed, busy: bool) {
    ScrollArea::vertical().id_salt("share-files").max_height(LISTING_HEIGHT).show(ui, |ui| {
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
    });
}

pub(super) fn show_note(ui: &mut Ui, note: &Option<Note>) {
    if let Some(note) = note {
        let color = if note.error { ui.visuals().error_fg_color } else { ui.visuals().text_color() };
        ui.colored_label(color, &note.text);
    }
}
