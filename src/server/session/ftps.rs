//! FTPS in the session (RFC 4217): `AUTH TLS` (and `AUTH SSL`), `PBSZ`, `PROT`, the refused
//! `CCC`, the `FEAT` lines, the gate that `--tls required` puts before other commands, and the
//! protection of data connections, which under `PROT P` must resume the TLS session of their
//! own control connection (vsftpd's `require_ssl_reuse`: it proves where they come from). The
//! certificate and the rustls configurations live in `server::tls`, the streams in
//! `server::stream`.

use std::io;
use std::net::TcpStream;
#[cfg(feature = "tls")]
use std::time::Instant;

#[cfg(feature = "tls")]
use crate::log_event;
use crate::proto::{Command, Reason, Refusal};
use crate::server::config::TlsPolicy;
use crate::server::session::{Next, Session};
use crate::server::stream::DataStream;

/// The FEAT lines of a server that speaks TLS (RFC 4217 §6).
const TLS_FEATURES: &[&str] = &["AUTH TLS", "PBSZ", "PROT"];

/// What this connection agreed about protection.
#[derive(Default)]
pub(super) struct Protection {
    /// `PBSZ` was sent after TLS started: `PROT` may follow.
    buffer_size_set: bool,
    /// `PROT P`: data connections are TLS.
    private: bool,
    /// What every TLS session of this control connection carries, so a data connection can
    /// show it resumed one of them.
    #[cfg(feature = "tls")]
    token: Option<crate::server::tls::SessionToken>,
}

/// Under `--tls required`, which commands may come before `AUTH TLS`: the login, `AUTH`,
/// `FEAT` and the harmless ones. Everything else gets `534` saying how to turn TLS on.
pub(super) fn tls_gate(policy: TlsPolicy, tls_on: bool, command: &Command) -> Result<(), Refusal> {
    let before_tls = matches!(
        command,
        Command::Auth(_)
            | Command::Feat
            | Command::User(_)
            | Command::Pass(_)
            | Command::Quit
            | Command::Noop
            | Command::Syst
            | Command::Help
    );
    if policy != TlsPolicy::Required || tls_on || before_tls {
        return Ok(());
    }
    Err(Refusal::new(
        Reason::TlsRequired,
        "This server requires TLS: send AUTH TLS first (curl --ssl-reqd, lftp set ftp:ssl-force yes)",
    ))
}

impl Session<'_> {
    fn tls_policy(&self) -> TlsPolicy {
        self.shared.config.tls.policy.unwrap_or(TlsPolicy::Off)
    }

    /// The FEAT lines TLS adds, if the server speaks it.
    pub(super) fn tls_features(&self) -> &'static [&'static str] {
        if self.tls_policy() == TlsPolicy::Off { &[] } else { TLS_FEATURES }
    }

    /// Refuses `command` when `--tls required` and TLS has not started.
    pub(super) fn check_tls_gate(&self, command: &Command) -> Result<(), Refusal> {
        tls_gate(self.tls_policy(), self.control.is_tls(), command)
    }

    /// A transfer under `--tls required` needs `PROT P` (RFC 4217 §10: 521).
    pub(super) fn check_data_protection(&self) -> Result<(), Refusal> {
        if self.tls_policy() == TlsPolicy::Required && !self.protection.private {
            let text = "This server sends data only over TLS: send PBSZ 0 and PROT P first";
            return Err(Refusal::new(Reason::TlsRequired, text).with_code(521));
        }
        Ok(())
    }

    /// `AUTH TLS` or `AUTH SSL`: `234`, then the handshake. Anything the client sent after the
    /// `AUTH` line in plaintext is dropped unread, never run (CVE-2011-0411).
    pub(super) fn auth(&mut self, mechanism: &str) -> io::Result<Next> {
        if !matches!(mechanism.to_ascii_uppercase().as_str(), "TLS" | "SSL" | "TLS-C" | "TLS-P") {
            let text = "Only AUTH TLS (or AUTH SSL) is supported";
            return self.refuse(Refusal::new(Reason::Unsupported, text));
        }
        if self.control.is_tls() {
            return self.refuse(Refusal::new(Reason::Unsupported, "TLS is already on").with_code(503));
        }
        if self.tls_policy() == TlsPolicy::Off {
            return self
                .refuse(Refusal::new(Reason::NotImplemented, "This server runs without TLS (--tls off)"));
        }
        self.start_tls()
    }

    #[cfg(feature = "tls")]
    fn start_tls(&mut self) -> io::Result<Next> {
        let Some(tls) = self.shared.tls.as_ref() else {
            return self.refuse(Refusal::new(Reason::NotImplemented, "This server runs without TLS"));
        };
        tls.reload_if_changed();
        let (connection, token) = match tls.control_connection() {
            Ok(made) => made,
            Err(err) => {
                log_event!("conn={} peer={} event=tls-error error={:?}", self.id, self.peer, err.to_string());
                return self
                    .refuse(Refusal::new(Reason::TlsFailed, "TLS is not available now").with_code(431));
            }
        };
        self.say(234, "AUTH TLS ok; TLS handshake follows")?;
        self.lines.clear();
        self.held.clear();
        let deadline = Instant::now() + self.shared.config.idle_timeout;
        self.control_read_timeout.set(None);
        self.control.socket().set_read_timeout(Some(self.shared.config.idle_timeout))?;
        if let Err(err) = self.control.start_tls(connection, deadline) {
            log_event!("conn={} peer={} event=tls-failed error={:?}", self.id, self.peer, err.to_string());
            return Ok(Next::Close("tls-handshake-failed"));
        }
        self.protection = Protection { token: Some(token), ..Protection::default() };
        log_event!("conn={} peer={} event=tls", self.id, self.peer);
        Ok(Next::Continue)
    }

    #[cfg(not(feature = "tls"))]
    fn start_tls(&mut self) -> io::Result<Next> {
        self.refuse(Refusal::new(Reason::NotImplemented, "This server was built without TLS"))
    }

    /// `PBSZ 0` (RFC 4217 §8): TLS has no protection buffer, so any size is answered with 0.
    pub(super) fn pbsz(&mut self, size: &str) -> io::Result<Next> {
        if !self.control.is_tls() {
            return self.refuse(Refusal::new(Reason::Unsupported, "Send AUTH TLS first").with_code(503));
        }
        if size.parse::<u64>().is_err() {
            return self.refuse(Refusal::new(Reason::BadArgument, "PBSZ takes a number; send PBSZ 0"));
        }
        self.protection.buffer_size_set = true;
        self.say(200, "PBSZ=0")
    }

    /// `PROT P` (data connections in TLS) or `PROT C` (in the clear), RFC 4217 §9.
    pub(super) fn prot(&mut self, level: &str) -> io::Result<Next> {
        if !self.protection.buffer_size_set {
            return self
                .refuse(Refusal::new(Reason::Unsupported, "Send AUTH TLS and PBSZ 0 first").with_code(503));
        }
        match level.to_ascii_uppercase().as_str() {
            "P" => {
                self.protection.private = true;
                self.say(200, "Data connections are TLS (PROT P)")
            }
            "C" if self.tls_policy() == TlsPolicy::Required => {
                let text = "This server sends data only over TLS: use PROT P";
                self.refuse(Refusal::new(Reason::TlsRequired, text))
            }
            "C" => {
                self.protection.private = false;
                self.say(200, "Data connections are in the clear (PROT C)")
            }
            "S" | "E" => {
                let text = "PROT S and PROT E are not supported under TLS; use PROT P";
                self.refuse(Refusal::new(Reason::Unsupported, text).with_code(536))
            }
            _ => self.refuse(Refusal::new(Reason::Unsupported, "PROT takes P or C")),
        }
    }

    /// `CCC` would drop TLS from the control connection mid-session: always refused.
    pub(super) fn ccc(&mut self) -> io::Result<Next> {
        let text = "CCC is refused: the control connection stays encrypted";
        self.refuse(Refusal::new(Reason::Unsupported, text).with_code(533))
    }

    /// The data connection as the `PROT` level wants it: plain, or TLS with this server as the
    /// TLS server (RFC 4217 §7), which must resume this control connection's session unless
    /// `--tls-reuse optional` (522).
    pub(super) fn protect(&self, socket: TcpStream) -> Result<DataStream, Refusal> {
        if !self.protection.private {
            return Ok(DataStream::Plain(socket));
        }
        self.protect_tls(socket)
    }

    #[cfg(feature = "tls")]
    fn protect_tls(&self, socket: TcpStream) -> Result<DataStream, Refusal> {
        let failed = |text: String| Refusal::new(Reason::TlsFailed, text);
        let tls = self.shared.tls.as_ref().ok_or_else(|| failed("TLS is not available".into()))?;
        let connection =
            tls.data_connection().map_err(|err| failed(format!("TLS is not available: {err}")))?;
        let deadline = Instant::now() + self.shared.config.passive_timeout;
        let stream = DataStream::tls(connection, socket, deadline).map_err(|err| {
            log_event!(
                "conn={} peer={} event=data-tls-failed error={:?}",
                self.id,
                self.peer,
                err.to_string()
            );
            failed(format!("TLS handshake on the data connection failed: {err}"))
        })?;
        if self.shared.config.tls.require_reuse && !self.resumes_this_session(&stream) {
            log_event!("conn={} peer={} event=data-refused reason=no-session-reuse", self.id, self.peer);
            return Err(failed(
                "The data connection did not resume this control connection's TLS session \
                 (the server requires it; ftplib needs a subclass that passes session=)"
                    .into(),
            ));
        }
        Ok(stream)
    }

    /// Whether a data connection resumed this control connection's TLS session. TLS 1.3
    /// sessions carry this connection's token. rustls does not give a resumed TLS 1.2
    /// session's data back, so there a resumption of a session this server made must do.
    #[cfg(feature = "tls")]
    fn resumes_this_session(&self, stream: &DataStream) -> bool {
        let Some(connection) = stream.tls_connection() else {
            return false;
        };
        if connection.handshake_kind() != Some(rustls::HandshakeKind::Resumed) {
            return false;
        }
        match connection.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => true,
            _ => {
                let ours = self.protection.token.as_ref().map(|token| &token[..]);
                ours.is_some() && connection.received_resumption_data() == ours
            }
        }
    }

    #[cfg(not(feature = "tls"))]
    fn protect_tls(&self, _socket: TcpStream) -> Result<DataStream, Refusal> {
        Err(Refusal::new(Reason::TlsFailed, "This server was built without TLS"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_tls_lets_only_the_login_auth_and_feat_family_through() {
        let refused = |command: &str| {
            tls_gate(TlsPolicy::Required, false, &command.parse().unwrap()).map_err(|refusal| refusal.code)
        };
        for allowed in ["AUTH TLS", "FEAT", "USER anonymous", "PASS x", "QUIT", "NOOP", "SYST", "HELP"] {
            assert_eq!(refused(allowed), Ok(()), "{allowed}");
        }
        for gated in ["LIST", "EPSV", "RETR /a/b", "SITE MKSHARE", "CWD /x", "PBSZ 0", "PROT P"] {
            assert_eq!(refused(gated), Err(534), "{gated}");
        }
        let list = "LIST".parse().unwrap();
        assert_eq!(tls_gate(TlsPolicy::Required, true, &list), Ok(()));
        assert_eq!(tls_gate(TlsPolicy::Optional, false, &list), Ok(()));
        assert_eq!(tls_gate(TlsPolicy::Off, false, &list), Ok(()));
    }
}
