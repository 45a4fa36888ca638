//! The server's public name (`--public-host NAME[:PORT]`): [`PublicHost`], read from the
//! command line, and [`PublicAddress`], which holds the IPv4 address `PASV` replies carry (the
//! name resolved at start and again on SIGHUP) and builds the share URLs the server tells
//! clients. Behind NAT the address a client reached is not the one the server sees. A name that
//! does not resolve (DNS not up yet at boot) is logged, and `PASV` names the local address
//! until a SIGHUP resolves it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::sync::RwLock;

/// `--public-host`: a DNS name or an IP address, and the port clients reach, if it is not the
/// one the server listens on (a NAT that forwards another port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicHost {
    /// Without brackets, also for IPv6.
    pub host: String,
    pub port: Option<u16>,
}

impl PublicHost {
    /// Reads `NAME`, `NAME:PORT`, `IP`, `[IPv6]` or `[IPv6]:PORT`.
    pub fn parse(text: &str) -> Result<PublicHost, &'static str> {
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or("an IPv6 address needs its closing ']'")?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or("expected :PORT after ']'")?)),
            }
        } else if text.matches(':').count() > 1 {
            (text, None)
        } else {
            match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        let port = match port {
            Some(port) => {
                Some(port.parse::<u16>().ok().filter(|&p| p > 0).ok_or("the port is not 1 to 65535")?)
            }
            None => None,
        };
        let name_like = host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        if host.is_empty() || !name_like {
            return Err("expected a host name or an IP address, with an optional :PORT");
        }
        if host.contains(':') && host.parse::<IpAddr>().is_err() {
            return Err("not an IPv6 address");
        }
        Ok(PublicHost { host: host.to_owned(), port })
    }

    /// The host as a URL writes it: IPv6 in brackets.
    fn url_host(&self) -> String {
        match self.host.contains(':') {
            true => format!("[{}]", self.host),
            false => self.host.clone(),
        }
    }

    /// The first IPv4 address of the name (asks the resolver unless it is an address), or
    /// `None` when it has none.
    fn resolve_ipv4(&self) -> io::Result<Option<Ipv4Addr>> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(match ip {
                IpAddr::V4(ip) => Some(ip),
                IpAddr::V6(_) => None,
            });
        }
        let found = (self.host.as_str(), 0).to_socket_addrs()?;
        Ok(found.filter_map(|a| if let IpAddr::V4(ip) = a.ip() { Some(ip) } else { None }).next())
    }
}

/// What the server tells clients about where it is, when `--public-host` was given.
pub struct PublicAddress {
    host: Option<PublicHost>,
    ipv4: RwLock<Option<Ipv4Addr>>,
}

impl PublicAddress {
    /// The public address of `host`, not resolved yet: call [`PublicAddress::reload`].
    pub fn new(host: Option<PublicHost>) -> PublicAddress {
        PublicAddress { host, ipv4: RwLock::new(None) }
    }

    /// The address for `PASV` replies, if the public name has an IPv4 one.
    pub fn passive_ipv4(&self) -> Option<Ipv4Addr> {
        *self.ipv4.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The URL of share `code` for anyone, if the server knows its public name; `port` is the
    /// one the client connected to, unless the name came with its own.
    pub fn share_url(&self, code: &str, port: u16) -> Option<String> {
        let host = self.host.as_ref()?;
        Some(format!("ftp://{}:{}/{code}/", host.url_host(), host.port.unwrap_or(port)))
    }

    /// Resolves the name (at start, and on SIGHUP), keeping the address it had if that fails;
    /// says what it did, for the log.
    pub fn reload(&self) -> String {
        let Some(host) = &self.host else {
            return "public_host=none".into();
        };
        match host.resolve_ipv4() {
            Ok(ipv4) => {
                *self.ipv4.write().unwrap_or_else(|e| e.into_inner()) = ipv4;
                let shown = ipv4.map_or("none".into(), |ip| ip.to_string());
                format!("public_host={} pasv_address={shown}", host.host)
            }
            Err(err) => {
                let kept = self.passive_ipv4().map_or("none".into(), |ip| ip.to_string());
                format!("public_host={} resolve_error={:?} pasv_address={kept}", host.host, err.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(text: &str) -> (String, Option<u16>) {
        let parsed = PublicHost::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"));
        (parsed.host, parsed.port)
    }

    #[test]
    fn names_addresses_and_ports_are_read() {
        assert_eq!(host("share.example.org"), ("share.example.org".into(), None));
        assert_eq!(host("share.example.org:2121"), ("share.example.org".into(), Some(2121)));
        assert_eq!(host("192.0.2.7"), ("192.0.2.7".into(), None));
        assert_eq!(host("2001:db8::7"), ("2001:db8::7".into(), None));
        assert_eq!(host("[2001:db8::7]:21"), ("2001:db8::7".into(), Some(21)));
        for bad in ["", "a b", "host:0", "host:x", "[::1", "[::1]x", "ftp://host", "a:b:c"] {
            assert!(PublicHost::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_use_the_public_name_and_pasv_its_ipv4_address() {
        let public = PublicAddress::new(Some(PublicHost::parse("192.0.2.7").unwrap()));
        assert_eq!(public.passive_ipv4(), None, "not resolved yet");
        assert_eq!(public.reload(), "public_host=192.0.2.7 pasv_address=192.0.2.7");
        assert_eq!(public.passive_ipv4(), Some(Ipv4Addr::new(192, 0, 2, 7)));
        assert_eq!(public.share_url("abc", 2121).as_deref(), Some("ftp://192.0.2.7:2121/abc/"));
        let v6 = PublicAddress::new(Some(PublicHost::parse("[2001:db8::7]:21").unwrap()));
        v6.reload();
        assert_eq!(v6.passive_ipv4(), None, "PASV keeps the local address");
        assert_eq!(v6.share_url("abc", 2121).as_deref(), Some("ftp://[2001:db8::7]:21/abc/"));
        let none = PublicAddress::new(None);
        assert_eq!((none.passive_ipv4(), none.share_url("abc", 21)), (None, None));
        assert_eq!(none.reload(), "public_host=none");
    }
}
