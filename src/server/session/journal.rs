//! What a session writes to the log beyond its own events: one `event=refused` line for every
//! refusal it sends (code, reason tag, verb), and its goodbye when the server shuts down. The
//! verb is read from the client's line with care: only a short word of letters is written, so a
//! client cannot put text of its choosing (or a share code) into the log.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::log_event;
use crate::proto::{Reason, Refusal, Reply};
use crate::server::session::Session;

/// How long a session waiting for a command goes between two looks at whether the server is
/// stopping: an idle client hears its `421` at most this long after the signal.
pub(super) const SHUTDOWN_LOOK: Duration = Duration::from_millis(250);
/// The verb the log names when no command is being answered.
pub(super) const NO_VERB: &str = "-";
/// Longest verb the log writes; FTP verbs are three or four letters, `SITE` words longer.
const MAX_VERB_LETTERS: usize = 8;

/// The error a session's control reader stops with once the server is stopping.
#[derive(Debug)]
pub(super) struct ShuttingDown;

impl fmt::Display for ShuttingDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the server is shutting down")
    }
}

impl std::error::Error for ShuttingDown {}

pub(super) fn is_shutting_down(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|inner| inner.is::<ShuttingDown>())
}

/// The verb of a control line as the log writes it: `RETR`, `SITE-MKSHARE`; `?` for anything
/// that is not a short word of letters.
pub(super) fn verb_of(line: &[u8]) -> String {
    let word = |text: Option<&[u8]>| -> Option<String> {
        let text = text?;
        let letters =
            !text.is_empty() && text.len() <= MAX_VERB_LETTERS && text.iter().all(u8::is_ascii_alphabetic);
        letters.then(|| String::from_utf8_lossy(text).to_ascii_uppercase())
    };
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    match word(words.next()) {
        Some(verb) if verb == "SITE" => match word(words.next()) {
            Some(sub) => format!("SITE-{sub}"),
            None => verb,
        },
        Some(verb) => verb,
        None => "?".into(),
    }
}

impl Session<'_> {
    /// Logs a refusal about to be sent: its code, its reason's tag and the verb it answers.
    pub(super) fn log_refusal(&self, reply: &Reply) {
        let reason = Refusal::from_reply(reply).reason;
        log_event!(
            "conn={} peer={} event=refused code={} reason={reason} verb={}",
            self.id,
            self.peer,
            reply.code,
            self.verb
        );
    }

    /// Tells the client the server is stopping (`421`) and ends the session.
    pub(super) fn leave_for_shutdown(&mut self) -> io::Result<&'static str> {
        self.verb = NO_VERB.into();
        let closing = Refusal::new(Reason::Closing, "Server shutting down; try again later");
        let _ = self.reply(closing.to_reply());
        Ok("shutdown")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str, expected: &str) {
        assert_eq!(verb_of(line.as_bytes()), expected, "{line:?}");
    }

    #[test]
    fn the_log_names_verbs_and_nothing_a_client_chose() {
        check("RETR /code/file", "RETR");
        check("retr x", "RETR");
        check("SITE MKSHARE 60", "SITE-MKSHARE");
        check("site owner abcdefghijklmnopqrstuvwxyz tok", "SITE-OWNER");
        check("SITE", "SITE");
        check("SITE abcdefghijklmnopqrstuvwxyz", "SITE");
        check("abcdefghijklmnopqrstuvwxyz", "?");
        check("X\"=1 event=fake", "?");
        check("", "?");
    }
}
