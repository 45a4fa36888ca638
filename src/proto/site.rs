//! The grammars of the replies to anonshare's `SITE` extensions that the client reads: the
//! `257` of `SITE MKSHARE` ([`CreatedShare`]) and the `211` of `SITE INFO` ([`ShareInfo`]).
//! Each renders the reply the server sends and parses it back. Pure.

use crate::proto::Reply;

/// What `SITE MKSHARE` answers: `257 "/<code>" share created; expires <time>; owner token
/// <token>`, and ` url <url>` after the token when the server knows its public address
/// (`--public-host`). A client that reads only the first word after `owner token` still works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedShare {
    pub code: String,
    pub owner_token: String,
    /// RFC 3339, UTC.
    pub expires: String,
    /// The share's public URL (`ftp://HOST:PORT/CODE/`), when the server says what it is.
    pub url: Option<String>,
}

/// The word that comes before a share's public URL in a `257` and in a `211`.
const URL_WORD: &str = "url";

impl CreatedShare {
    pub fn to_reply(&self) -> Reply {
        let mut text = format!(
            "\"/{}\" share created; expires {}; owner token {}",
            self.code, self.expires, self.owner_token
        );
        if let Some(url) = &self.url {
            text.push_str(&format!(" {URL_WORD} {url}"));
        }
        Reply::new(257, text)
    }

    /// Reads the text of a `257` back; `None` when it is not in this form.
    pub fn parse(text: &str) -> Option<CreatedShare> {
        let (code, rest) = text.strip_prefix("\"/")?.split_once("\" share created; expires ")?;
        let (expires, owner_token) = rest.split_once("; owner token ")?;
        let mut words = owner_token.split_whitespace();
        let owner_token = words.next()?;
        let url = match (words.next(), words.next()) {
            (Some(URL_WORD), Some(url)) => Some(url.to_owned()),
            _ => None,
        };
        Some(CreatedShare {
            code: code.to_owned(),
            owner_token: owner_token.to_owned(),
            expires: expires.to_owned(),
            url,
        })
    }
}

/// What `SITE INFO` answers of a share, and of a file in it: a multi-line `211` with one
/// `key value` fact per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareInfo {
    /// The share's code.
    pub code: String,
    /// RFC 3339, UTC.
    pub expires: String,
    pub sealed: bool,
    pub files: u64,
    pub bytes: u64,
    /// Complete downloads each file allows; `None` is no limit.
    pub downloads: Option<u64>,
    /// For a file: complete downloads it has left; `None` is no limit, or not a file.
    pub downloads_left: Option<u64>,
    /// Whether the path asked about is a file (then `downloads_left` is about it).
    pub is_file: bool,
    /// The share's public URL, when the server knows its public address.
    pub url: Option<String>,
}

/// How a budget without limit is written.
const UNLIMITED: &str = "unlimited";

fn budget(value: Option<u64>) -> String {
    value.map_or(UNLIMITED.into(), |n| n.to_string())
}

impl ShareInfo {
    pub fn to_reply(&self) -> Reply {
        let mut body = vec![
            format!(" share {}", self.code),
            format!(" expires {}", self.expires),
            format!(" sealed {}", if self.sealed { "yes" } else { "no" }),
            format!(" files {}", self.files),
            format!(" bytes {}", self.bytes),
            format!(" downloads {}", budget(self.downloads)),
        ];
        if self.is_file {
            body.push(format!(" downloads-left {}", budget(self.downloads_left)));
        }
        if let Some(url) = &self.url {
            body.push(format!(" {URL_WORD} {url}"));
        }
        Reply::multi(211, format!("Share /{}", self.code), body, "End")
    }

    /// Reads the lines of a `211` back. Facts it does not know are skipped, so a newer server
    /// may add some; `None` when a known fact has a value of the wrong form.
    pub fn parse(lines: &[String]) -> Option<ShareInfo> {
        let mut info = ShareInfo::default();
        let count = |value: &str| match value {
            UNLIMITED => Some(None),
            number => number.parse().ok().map(Some),
        };
        for line in lines {
            match line.trim().split_once(' ') {
                Some(("share", value)) => info.code = value.to_owned(),
                Some(("expires", value)) => info.expires = value.to_owned(),
                Some(("sealed", value)) => {
                    info.sealed = match value {
                        "yes" => true,
                        "no" => false,
                        _ => return None,
                    }
                }
                Some(("files", value)) => info.files = value.parse().ok()?,
                Some(("bytes", value)) => info.bytes = value.parse().ok()?,
                Some(("downloads", value)) => info.downloads = count(value)?,
                Some(("downloads-left", value)) => {
                    info.downloads_left = count(value)?;
                    info.is_file = true;
                }
                Some((URL_WORD, value)) => info.url = Some(value.to_owned()),
                _ => {}
            }
        }
        Some(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ReplyParser;

    fn through_the_wire(reply: Reply) -> Reply {
        let mut parser = ReplyParser::new();
        let wire = reply.to_string();
        let mut lines = wire.split("\r\n").filter(|l| !l.is_empty());
        loop {
            if let Some(reply) = parser.feed(lines.next().expect("a whole reply")).unwrap() {
                return reply;
            }
        }
    }

    #[test]
    fn created_share_round_trips() {
        let created = CreatedShare {
            code: "abc".into(),
            owner_token: "tok".into(),
            expires: "2026-12-02T12:00:00Z".into(),
            url: None,
        };
        let reply = through_the_wire(created.to_reply());
        assert_eq!(reply.code, 257);
        assert_eq!(CreatedShare::parse(&reply.text()), Some(created));
        assert_eq!(CreatedShare::parse("\"/abc\" created"), None);
    }

    #[test]
    fn created_share_carries_its_public_url_and_old_parsers_still_read_the_token() {
        let created = CreatedShare {
            code: "abc".into(),
            owner_token: "tok".into(),
            expires: "2026-12-02T12:00:00Z".into(),
            url: Some("ftp://share.example.org:2121/abc/".into()),
        };
        let text = through_the_wire(created.to_reply()).text();
        assert_eq!(
            text,
            "\"/abc\" share created; expires 2026-12-02T12:00:00Z; owner token tok \
             url ftp://share.example.org:2121/abc/"
        );
        assert_eq!(CreatedShare::parse(&text), Some(created));
        // What a client of before the URL did: the first word after the marker.
        let (_, after) = text.split_once("; owner token ").unwrap();
        assert_eq!(after.split_whitespace().next(), Some("tok"));
    }

    #[test]
    fn share_info_round_trips() {
        let mut info = ShareInfo {
            code: "abc".into(),
            expires: "2026-12-02T12:00:00Z".into(),
            sealed: true,
            files: 3,
            bytes: 4096,
            downloads: Some(2),
            downloads_left: None,
            is_file: false,
            url: None,
        };
        let check = |info: &ShareInfo| {
            let reply = through_the_wire(info.to_reply());
            assert_eq!(reply.code, 211);
            assert_eq!(ShareInfo::parse(&reply.lines).as_ref(), Some(info));
        };
        check(&info);
        info.is_file = true;
        info.downloads_left = Some(1);
        check(&info);
        info.downloads = None;
        info.downloads_left = None;
        check(&info);
        info.url = Some("ftp://share.example.org:2121/abc/".into());
        check(&info);
        let mut old = info.clone();
        old.url = None;
        let lines = through_the_wire(info.to_reply()).lines;
        let without_url: Vec<String> = lines.into_iter().filter(|l| !l.trim().starts_with("url ")).collect();
        assert_eq!(ShareInfo::parse(&without_url), Some(old), "a reply without url parses as before");
    }

    #[test]
    fn share_info_skips_new_facts_and_refuses_bad_values() {
        let lines =
            |extra: &str| vec!["Share /abc".to_owned(), " files 2".into(), extra.to_owned(), "End".into()];
        assert_eq!(ShareInfo::parse(&lines(" colour blue")).map(|i| i.files), Some(2));
        assert_eq!(ShareInfo::parse(&lines(" files two")), None);
        assert_eq!(ShareInfo::parse(&lines(" sealed maybe")), None);
    }
}
