//! Share URLs as people paste them: `ftp://HOST:PORT/CODE/`, with or without the port (then
//! anonshare's [`DEFAULT_PORT`]), with or without user info (`anonymous@`, which a share needs
//! not), or naming one file of the share (`ftp://HOST:PORT/CODE/report.pdf`), with the
//! server's key pin in the fragment (`#pin=sha256//BASE64`) when it speaks TLS. Pure.

use std::fmt;

use crate::client::{ClientError, Result};
use crate::common::pin::Pin;
use crate::proto::CreatedShare;

/// Port of an anonshare server when an address or URL names none.
pub const DEFAULT_PORT: u16 = 2121;

/// A share's address: `ftp://HOST:PORT/CODE/`, with the server's key pin in the fragment
/// (`#pin=sha256//BASE64`) when it speaks TLS. A fragment never goes to a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareUrl {
    /// Host name or address as written; IPv6 without brackets.
    pub host: String,
    pub port: u16,
    pub code: String,
    /// The SHA-256 of the server's public key: a server that shows another key, or no TLS,
    /// is refused.
    pub pin: Option<Pin>,
}

impl ShareUrl {
    /// Parses `ftp://[USER@]HOST[:PORT]/CODE[/]`. A URL of a file in the share is refused with
    /// words that say so; [`ShareUrl::parse_file`] takes one.
    pub fn parse(text: &str) -> Result<ShareUrl> {
        match ShareUrl::parse_file(text)? {
            (url, None) => Ok(url),
            (url, Some(path)) => Err(ClientError::Usage(format!(
                "'{text}' names the file '{path}' in a share: use the share's URL, {url}, here \
                 (download takes the file's URL too)"
            ))),
        }
    }

    /// Parses a share URL, or the URL of a file or folder in a share: the share, and the path
    /// inside it when there is one. Either may end in `#pin=sha256//BASE64`.
    pub fn parse_file(text: &str) -> Result<(ShareUrl, Option<String>)> {
        let bad = || {
            ClientError::Usage(format!(
                "invalid share URL '{text}': expected ftp://HOST:PORT/CODE/ as printed by upload"
            ))
        };
        let (text, pin) = match text.split_once('#') {
            Some((before, fragment)) => {
                let pin = fragment.strip_prefix("pin=").ok_or_else(bad)?;
                let pin = pin.parse::<Pin>().map_err(|err| ClientError::Usage(err.to_string()))?;
                (before, Some(pin))
            }
            None => (text, None),
        };
        let rest = text.strip_prefix("ftp://").ok_or_else(bad)?;
        let (authority, path) = rest.split_once('/').ok_or_else(bad)?;
        // `anonymous@host`: every login is anonymous, so the user info says nothing.
        let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        let (host, port) = split_host_port(authority, DEFAULT_PORT).ok_or_else(bad)?;
        let (code, inside) = path.split_once('/').unwrap_or((path, ""));
        if code.is_empty() {
            return Err(bad());
        }
        let url = ShareUrl { host, port, code: code.to_owned(), pin };
        let inside = inside.trim_end_matches('/');
        Ok((url, (!inside.is_empty()).then(|| inside.to_owned())))
    }

    /// The URL of a share just made: the one the server sent (`--public-host`), or else the
    /// share on `host:port`, the address this client reached the server at; with `pin`, the
    /// key the upload's connection saw, when it spoke TLS.
    pub fn of_created(share: &CreatedShare, host: &str, port: u16, pin: Option<Pin>) -> ShareUrl {
        let sent = share.url.as_deref().and_then(|url| ShareUrl::parse(url).ok());
        let url = match sent {
            Some(url) if url.code == share.code => url,
            _ => ShareUrl { host: host.to_owned(), port, code: share.code.clone(), pin: None },
        };
        ShareUrl { pin: pin.or(url.pin), ..url }
    }

    /// `HOST:PORT` for connecting, brackets around IPv6.
    pub fn address(&self) -> String {
        join_host_port(&self.host, self.port)
    }
}

impl fmt::Display for ShareUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ftp://{}/{}/", self.address(), self.code)?;
        match &self.pin {
            Some(pin) => write!(f, "#pin={pin}"),
            None => Ok(()),
        }
    }
}

/// Splits `host:port`, `[v6]:port` or a bare host (taking `default_port`).
pub fn split_host_port(text: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host.to_owned(), port.parse().ok()?)),
        Some(_) => None,
        None if text.is_empty() => None,
        None => Some((text.to_owned(), default_port)),
    }
    .filter(|(host, _)| !host.is_empty())
}

/// `host:port`, with brackets around an IPv6 host.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Option<(String, u16, String)> {
        ShareUrl::parse(text).ok().map(|u| (u.host, u.port, u.code))
    }

    #[test]
    fn share_urls() {
        assert_eq!(url("ftp://127.0.0.1:2121/abc/"), Some(("127.0.0.1".into(), 2121, "abc".into())));
        assert_eq!(url("ftp://[::1]:9/abc/"), Some(("::1".into(), 9, "abc".into())));
        assert_eq!(url("http://h/abc"), None);
        assert_eq!(url("ftp://h/"), None);
        let parsed = ShareUrl::parse("ftp://[::1]:9/abc").unwrap();
        assert_eq!(parsed.to_string(), "ftp://[::1]:9/abc/");
    }

    #[test]
    fn a_url_without_a_port_is_anonshares_default_port() {
        assert_eq!(url("ftp://h/abc"), Some(("h".into(), DEFAULT_PORT, "abc".into())));
    }

    #[test]
    fn user_info_is_ignored() {
        assert_eq!(url("ftp://anonymous@h:7/abc/"), Some(("h".into(), 7, "abc".into())));
        assert_eq!(url("ftp://anonymous:x@[::1]:7/abc/"), Some(("::1".into(), 7, "abc".into())));
    }

    #[test]
    fn a_file_url_names_the_file_or_says_what_it_is() {
        let (share, path) = ShareUrl::parse_file("ftp://h:7/abc/dir/report.pdf").unwrap();
        assert_eq!((share.to_string(), path.as_deref()), ("ftp://h:7/abc/".into(), Some("dir/report.pdf")));
        let err = ShareUrl::parse("ftp://h:7/abc/report.pdf").unwrap_err().to_string();
        assert!(err.contains("names the file 'report.pdf'") && err.contains("ftp://h:7/abc/"), "{err}");
        assert_eq!(ShareUrl::parse_file("ftp://h:7/abc/").unwrap().1, None);
    }

    #[test]
    fn a_new_share_takes_the_url_the_server_sent_for_it() {
        let mut created = CreatedShare {
            code: "abc".into(),
            owner_token: "tok".into(),
            expires: "2026-12-02T12:00:00Z".into(),
            url: None,
        };
        let of = |created: &CreatedShare| ShareUrl::of_created(created, "127.0.0.1", 2121, None).to_string();
        assert_eq!(of(&created), "ftp://127.0.0.1:2121/abc/");
        created.url = Some("ftp://share.example.org:21/abc/".into());
        assert_eq!(of(&created), "ftp://share.example.org:21/abc/");
        created.url = Some("ftp://share.example.org:21/other/".into());
        assert_eq!(of(&created), "ftp://127.0.0.1:2121/abc/", "a URL of another share is not taken");
        created.url = Some("not a url".into());
        assert_eq!(of(&created), "ftp://127.0.0.1:2121/abc/");
    }

    #[test]
    fn host_and_port() {
        assert_eq!(split_host_port("localhost:2121", 1), Some(("localhost".into(), 2121)));
        assert_eq!(split_host_port("localhost", 1), Some(("localhost".into(), 1)));
        assert_eq!(split_host_port("[::1]", 1), Some(("::1".into(), 1)));
        assert_eq!(split_host_port(":80", 1), None);
        assert_eq!(split_host_port("::1", 1), None);
        assert_eq!(split_host_port("h:port", 1), None);
    }
}
