//! `anonshare-gui`: reads its one optional argument and opens the desktop client's window; what
//! the window shows and does lives in `anonshare::gui`.

use std::process::ExitCode;

use anonshare::gui::{GuiApp, WINDOW_SIZE, parse_args, usage};
use eframe::egui;

fn main() -> ExitCode {
    let settings = match parse_args(std::env::args_os().skip(1)) {
        Ok(Some(settings)) => settings,
        Ok(None) => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("anonshare-gui: {err}");
            return ExitCode::from(1);
        }
    };
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("anonshare")
            .with_inner_size(WINDOW_SIZE)
            .with_drag_and_drop(true),
        ..Default::default()
    };
    match eframe::run_native("anonshare", options, Box::new(|_| Ok(Box::new(GuiApp::new(settings))))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("anonshare-gui: cannot open the window: {err}");
            ExitCode::from(1)
        }
    }
}
