//! The `SITE` commands, anonshare's extensions: `MKSHARE`, `DIGEST`, `PARTIAL`, `SEAL`, `OWNER`,
//! `DELETE`, `INFO` and `HELP`. They create, claim, seal and delete shares and describe them;
//! the `257` of `MKSHARE` and the `211` of `INFO` are rendered by `proto::site`. They never
//! touch a data connection.

use std::io;
use std::time::{Duration, Instant};

use crate::common::expiry::{format_duration, rfc3339};
use crate::common::secret::ShareCode;
use crate::log_event;
use crate::proto::{CreatedShare, Reason, Refusal, ShareInfo, SiteCommand};
use crate::server::log::ShareTag;
use crate::server::session::replies::store_refusal;
use crate::server::session::{Next, Session, rules};
use crate::server::store::{Node, StoreError, unix_now};
use crate::server::vpath::VirtualPath;

impl Session<'_> {
    pub(super) fn site(&mut self, command: SiteCommand) -> io::Result<Next> {
        match command {
            SiteCommand::Mkshare { seconds, downloads } => self.mkshare(seconds, downloads),
            SiteCommand::Digest(digest, argument) => {
                let path = self.resolve(&argument);
                match self.pending.declare(path.clone(), digest) {
                    Ok(()) => {
                        self.say(200, format!("SHA-256 for {path} noted; the next STOR of it must match"))
                    }
                    Err(refusal) => self.refuse(refusal),
                }
            }
            SiteCommand::Seal => self.seal(),
            SiteCommand::Owner(code, token) => self.claim(&code, &token),
            SiteCommand::Info(argument) => self.info(argument.as_deref()),
            SiteCommand::Delete(code, token) => self.delete(&code, &token),
            SiteCommand::Partial(argument) => {
                let path = self.resolve(&argument);
                let kept = self
                    .writable(&path, rules::Written::File)
                    .and_then(|(share, rel)| share.partial_size(&rel).map_err(|err| store_refusal(&err)));
                match kept {
                    Ok(kept) => self.say(213, kept.to_string()),
                    Err(refusal) => self.refuse(refusal),
                }
            }
            SiteCommand::Help => self.help(),
        }
    }

    fn mkshare(&mut self, seconds: Option<u64>, downloads: Option<u64>) -> io::Result<Next> {
        let config = &self.shared.config;
        let lifetime = seconds.map(Duration::from_secs).unwrap_or(config.default_expiry);
        if lifetime.is_zero() {
            return self.refuse(Refusal::new(Reason::BadArgument, "Expiry must be at least one second"));
        }
        if lifetime > config.max_expiry {
            let text = format!(
                "Expiry {} is longer than this server allows ({})",
                format_duration(lifetime),
                format_duration(config.max_expiry)
            );
            return self.refuse(Refusal::new(Reason::Unsupported, text));
        }
        if let Some(budget) = downloads
            && budget > config.max_download_budget
        {
            let limit = config.max_download_budget;
            let text = format!("DOWNLOADS={budget} is more than this server allows ({limit})");
            return self.refuse(Refusal::new(Reason::Unsupported, text));
        }
        if let Err(wait) = self.shared.admission.allow_share(self.peer.ip(), Instant::now()) {
            let limit = config.max_shares_per_hour;
            let text = format!(
                "Too many shares created from your address (limit {limit} per hour); the next one in {}",
                format_duration(wait.max(Duration::from_secs(1)))
            );
            return self.refuse(Refusal::new(Reason::LimitReached, text));
        }
        let expires = unix_now() + lifetime.as_secs() as i64;
        match self.shared.store.create_share(expires, downloads) {
            Ok((share, token)) => {
                let code = share.code;
                let budget = downloads.map_or("unlimited".into(), |n| n.to_string());
                log_event!(
                    "conn={} peer={} event=share-created share={} expires={} downloads={budget}",
                    self.id,
                    self.peer,
                    ShareTag::of(&code),
                    rfc3339(expires)
                );
                self.owned.insert(code.clone());
                self.created.insert(code.clone());
                self.take_in_hand(&code);
                self.cwd = VirtualPath::share(code.clone());
                let url = self.shared.public.share_url(code.as_str(), self.local.port());
                let created = CreatedShare {
                    code: code.to_string(),
                    owner_token: token.to_string(),
                    expires: rfc3339(expires),
                    url,
                };
                self.answer(created.to_reply())
            }
            Err(err) => self.store_error(err),
        }
    }

    /// SITE OWNER: proves with the owner token that this connection may write to the share.
    /// A wrong token, or a code of no share, is a guess.
    fn claim(&mut self, code: &str, token: &str) -> io::Result<Next> {
        let Ok(code) = code.parse::<ShareCode>() else {
            return self.store_error(StoreError::NotFound);
        };
        let share = match self.shared.store.share(&code, unix_now()) {
            Ok(share) if share.is_owner(token) => share,
            Ok(_) | Err(StoreError::NotFound) => {
                self.missed();
                return self.store_error(StoreError::NotFound);
            }
            Err(err) => return self.store_error(err),
        };
        if share.meta.sealed {
            return self.store_error(StoreError::Sealed);
        }
        self.owned.insert(share.code.clone());
        self.cwd = VirtualPath::share(share.code.clone());
        self.take_in_hand(&share.code);
        let tag = ShareTag::of(share.code.as_str());
        log_event!("conn={} peer={} event=owner share={tag}", self.id, self.peer);
        self.say(200, format!("You own /{} until it is sealed", share.code))
    }

    /// SITE DELETE: removes a share at once for whoever holds its owner token.
    fn delete(&mut self, code: &str, token: &str) -> io::Result<Next> {
        let Ok(code) = code.parse::<ShareCode>() else {
            return self.store_error(StoreError::NotFound);
        };
        match self.shared.store.delete_share(&code, token) {
            Ok(()) => {
                self.owned.remove(&code);
                self.created.remove(&code);
                log_event!(
                    "conn={} peer={} event=deleted share={}",
                    self.id,
                    self.peer,
                    ShareTag::of(code.as_str())
                );
                self.say(250, format!("Share /{code} deleted"))
            }
            Err(StoreError::NotFound) => {
                self.missed();
                self.store_error(StoreError::NotFound)
            }
            Err(err) => self.store_error(err),
        }
    }

    fn seal(&mut self) -> io::Result<Next> {
        let code = match rules::current_share(&self.cwd, "Not inside a share: CWD /<code> first") {
            Ok(code) => code.clone(),
            Err(refusal) => return self.refuse(refusal),
        };
        let mut share = match self.owned_share(&code) {
            Ok(found) => found,
            Err(refusal) => return self.refuse(refusal),
        };
        match share.seal() {
            Ok(()) => {
                self.owned.remove(&share.code);
                self.created.remove(&share.code);
                let tag = ShareTag::of(share.code.as_str());
                log_event!("conn={} peer={} event=sealed share={tag}", self.id, self.peer);
                self.say(200, format!("Share /{} sealed; it is read-only now", share.code))
            }
            Err(err) => self.store_error(err),
        }
    }

    /// SITE INFO: expiry, state, totals and download budget of a share; for a file, also how
    /// many complete downloads it has left.
    fn info(&mut self, argument: Option<&str>) -> io::Result<Next> {
        let path = argument.map(|a| self.resolve(a)).unwrap_or_else(|| self.cwd.clone());
        if let Err(refusal) = rules::current_share(&path, "Not inside a share; give SITE INFO /<code>") {
            return self.refuse(refusal);
        }
        let described = self.lookup(&path).and_then(|(share, manifest, rel)| {
            let (files, bytes) = manifest.totals()?;
            let mut info = ShareInfo {
                code: share.code.to_string(),
                expires: rfc3339(share.meta.expires),
                sealed: share.meta.sealed,
                files: files as u64,
                bytes,
                downloads: share.meta.downloads,
                downloads_left: None,
                is_file: false,
                url: self.shared.public.share_url(share.code.as_str(), self.local.port()),
            };
            match manifest.lookup(&rel) {
                Some(Node::Folder) => {}
                Some(Node::File(entry)) => {
                    info.downloads_left = share.downloads_left(entry)?;
                    info.is_file = true;
                }
                None => return Err(StoreError::NotFound),
            }
            Ok(info)
        });
        match described {
            Ok(info) => self.answer(info.to_reply()),
            Err(err) => self.store_error(err),
        }
    }
}
