//! What `anonshare-server` does on a signal. SIGTERM or SIGINT starts a graceful shutdown (the
//! accept loop and the sessions carry it out); a second one ends the process at once with
//! [`EXIT_FORCED`]. SIGHUP reloads what can change without a restart: the address of
//! `--public-host`, resolved again, and the TLS certificate and key. Only the binary installs this, never a library user.

use std::io;
use std::sync::Arc;

use crate::common::platform::{Signal, on_signals};
use crate::log_event;
use crate::server::shared::Shared;

/// Exit code when a second stop signal ends the server before its sessions did.
pub const EXIT_FORCED: i32 = 3;

/// Handles SIGTERM, SIGINT and SIGHUP for the server that owns `shared`, from now on.
pub fn watch(shared: Arc<Shared>) -> io::Result<()> {
    on_signals(move |signal| match signal {
        Signal::Hangup => {
            let reloaded = shared.public.reload();
            log_event!("event=reload signal={} {reloaded}", signal.name());
            if let Err(err) = shared.reload_tls() {
                log_event!("event=tls-reload-failed error={err:?}");
            }
        }
        Signal::Terminate | Signal::Interrupt => {
            let sessions = shared.shutdown.sessions();
            if shared.shutdown.begin() {
                let grace = shared.shutdown.grace().as_secs();
                log_event!(
                    "event=shutdown phase=begin signal={} sessions={sessions} grace={grace}s",
                    signal.name()
                );
            } else {
                log_event!("event=shutdown phase=forced signal={} sessions={sessions}", signal.name());
                std::process::exit(EXIT_FORCED);
            }
        }
    })
}
