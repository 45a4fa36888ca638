//! Ctrl-C (SIGINT) and SIGTERM during an upload. The first signal asks the work to stop between
//! two chunks, through the [`Console`](crate::cli::progress::Console)'s cancel flag, so the
//! library deletes the half-made share itself; a work that is stuck in a wait on the network
//! past [`GRACE`] is left behind, and the share deleted on a connection of its own. A second
//! signal ends the program at once. The library never sees a signal, only the flag.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

/// How long stopped work may take to notice the cancel flag before it is left behind.
pub const GRACE: Duration = Duration::from_secs(3);
/// The exit code of a program a signal stopped, as shells report it (128 + SIGINT).
pub const INTERRUPTED: u8 = 130;

/// What the thread that waits for the work hears.
pub enum Event {
    /// The work ended.
    Done,
    /// A signal asked the program to stop.
    Signal,
}

/// Signals turned into [`Event`]s, with the work's own end.
pub struct Interrupts {
    events: Receiver<Event>,
    done: Sender<Event>,
}

impl Interrupts {
    /// Starts hearing SIGINT and SIGTERM; `None` where that is not possible, and then signals
    /// end the program as usual.
    pub fn listen() -> Option<Interrupts> {
        let (done, events) = mpsc::channel();
        listen_on(done.clone())?;
        Some(Interrupts { events, done })
    }

    /// What the work sends when it ends.
    pub fn done_sender(&self) -> Sender<Event> {
        self.done.clone()
    }

    /// The next event.
    pub fn wait(&self) -> Event {
        self.events.recv().unwrap_or(Event::Done)
    }

    /// The next event within `limit`; `None` if none came.
    pub fn wait_for(&self, limit: Duration) -> Option<Event> {
        match self.events.recv_timeout(limit) {
            Ok(event) => Some(event),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Event::Done),
        }
    }
}

/// Every stop signal becomes an [`Event::Signal`]; the second one ends the program at once.
/// A hangup (the terminal went away) stops the upload like Ctrl-C.
fn listen_on(events: Sender<Event>) -> Option<()> {
    let mut heard = 0;
    crate::common::platform::on_signals(move |_| {
        heard += 1;
        if heard > 1 {
            eprintln!("anonshare: stopped");
            std::process::exit(INTERRUPTED.into());
        }
        let _ = events.send(Event::Signal);
    })
    .ok()
}
