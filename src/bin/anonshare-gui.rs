//! `anonshare-gui`: reads its one optional argument and opens the desktop client's window; what
//! the window shows and does lives in `anonshare::gui`.

use std::process::ExitCode;

use anonshare::gui::{GuiApp, WINDOW_SIZE, parse_args, usage};
use eframe::egui;

fn main() -> ExitCode {
    // Learned before any thread starts: the platform can tell the time zone only then.
    let local_offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
    let settings = match parse_args(std::env::args_os().skip(1)) {
        Ok(Some(settings)) => anonshare::gui::Settings { local_offset, ..settings },
        Ok(None) => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("anonshare-gui: {err}");
            return ExitCode::from(1);
        }
    };
    if let Some(why) = no_display() {
        eprintln!("anonshare-gui: {why}");
        return ExitCode::from(1);
    }
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
            // The toolkit's words name its own source files; the first clause is what matters.
            let text = err.to_string();
            let why = text.split(" at /").next().unwrap_or(&text);
            eprintln!("anonshare-gui: cannot open the window: {why}");
            ExitCode::from(1)
        }
    }
}

/// Why no window can open here, before trying: on Linux and the BSDs a window needs an X11 or
/// Wayland display.
fn no_display() -> Option<String> {
    let unix_desktop = cfg!(all(unix, not(target_os = "macos")));
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    let none = !set("DISPLAY") && !set("WAYLAND_DISPLAY") && !set("WAYLAND_SOCKET");
    (unix_desktop && none).then(|| {
        "no display to open a window on (neither DISPLAY nor WAYLAND_DISPLAY is set); \
         run it in a desktop session, or use the anonshare command line"
            .to_owned()
    })
}
