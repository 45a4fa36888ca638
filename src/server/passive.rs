//! Where passive data connections listen: [`PortRange`], the `--passive-ports MIN-MAX` an
//! operator opens in a firewall, and [`PassivePorts`], which binds a listener on a free port of
//! that range (or, without one, of the dynamic ports at random). It decides nothing about who
//! may connect: the session accepts only its own client.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::common::platform::listen_nonblocking;

/// `--passive-ports MIN-MAX`, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub min: u16,
    pub max: u16,
}

impl PortRange {
    /// Reads `MIN-MAX`: two ports from 1 to 65535, `MIN <= MAX`.
    pub fn parse(text: &str) -> Option<PortRange> {
        let (min, max) = text.split_once('-')?;
        let (min, max) = (min.trim().parse::<u16>().ok()?, max.trim().parse::<u16>().ok()?);
        (min >= 1 && min <= max).then_some(PortRange { min, max })
    }

    /// How many ports the range holds.
    pub fn len(&self) -> u32 {
        u32::from(self.max - self.min) + 1
    }

    /// Never: a range holds at least one port.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Where passive listeners go without `--passive-ports`: the dynamic ports of RFC 6335 §6,
/// from a random one on. Binding a port named costs the kernel a look at that port; asking it for
/// any port (port 0) makes it search its whole ephemeral range, past every port that a closed
/// data connection still holds in TIME_WAIT (measured: with 16,000 of those on the machine, the
/// bind was most of the server's CPU in a download of many small files).
const DYNAMIC_PORTS: PortRange = PortRange { min: 49152, max: 65535 };

/// The passive ports of one server. In a range of the operator's, each bind starts one port
/// further than the last, so ports in use are skipped quickly and a port just closed is taken
/// last; among the dynamic ports, each starts at a random one.
pub struct PassivePorts {
    range: Option<PortRange>,
    next: AtomicU32,
}

impl PassivePorts {
    pub fn new(range: Option<PortRange>) -> PassivePorts {
        PassivePorts { range, next: AtomicU32::new(0) }
    }

    /// A non-blocking listener on `ip` at a free port of the range, and its port. An error of
    /// kind `AddrInUse` means every port of the range is taken.
    pub fn bind(&self, ip: IpAddr) -> io::Result<(TcpListener, u16)> {
        let Some(range) = self.range else {
            let mut random = [0u8; 4];
            return match getrandom::fill(&mut random) {
                Ok(()) => match first_free(ip, DYNAMIC_PORTS, u32::from_ne_bytes(random)) {
                    // Every dynamic port taken: any port the system still has.
                    Err(err) if err.kind() == io::ErrorKind::AddrInUse => any_port(ip),
                    bound => bound,
                },
                Err(_) => any_port(ip),
            };
        };
        first_free(ip, range, self.next.fetch_add(1, Ordering::Relaxed))
    }
}

/// Connections a passive listener holds before it takes one: its client's, and strangers'.
const PASSIVE_BACKLOG: u32 = 8;

/// A listener on any port the system picks, and that port.
fn any_port(ip: IpAddr) -> io::Result<(TcpListener, u16)> {
    let listener = listen_nonblocking(SocketAddr::new(ip, 0), PASSIVE_BACKLOG)?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

/// A listener on the first free port of `range`, looking from its `start`-th port on (modulo
/// its length), and that port. An error of kind `AddrInUse` means every port of the range is
/// taken.
fn first_free(ip: IpAddr, range: PortRange, start: u32) -> io::Result<(TcpListener, u16)> {
    for step in 0..range.len() {
        let port = range.min + ((start.wrapping_add(step)) % range.len()) as u16;
        match listen_nonblocking(SocketAddr::new(ip, port), PASSIVE_BACKLOG) {
            Ok(listener) => return Ok((listener, port)),
            Err(err) if err.kind() == io::ErrorKind::AddrInUse => continue,
            Err(err) => return Err(err),
        }
    }
    let text = format!("all {} passive ports {}-{} are in use", range.len(), range.min, range.max);
    Err(io::Error::new(io::ErrorKind::AddrInUse, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read() {
        assert_eq!(PortRange::parse("30000-30009"), Some(PortRange { min: 30000, max: 30009 }));
        assert_eq!(PortRange::parse("7-7").map(|r| r.len()), Some(1));
        for bad in ["", "1", "0-9", "9-1", "1-70000", "a-b", "1-2-3"] {
            assert_eq!(PortRange::parse(bad), None, "{bad}");
        }
    }
}
