//! Where passive data connections listen: [`PortRange`], the `--passive-ports MIN-MAX` an
//! operator opens in a firewall, and [`PassivePorts`], which binds a listener on a free port of
//! that range (or, without one, on a random port of the system's ephemeral range). It decides
//! nothing about who may connect: the session accepts only its own client.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::common::platform;

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

/// Random ports of the system's ephemeral range tried before a bind leaves the choice to the
/// system.
const RANDOM_TRIES: usize = 8;

/// The passive ports of one server. With `--passive-ports`, each bind starts one port further
/// than the last, so ports in use are skipped quickly and a port just closed is taken last.
/// Without it, each bind tries random ports of the system's ephemeral range: as unpredictable
/// as the system's own choice, and one lookup each, where a bind to port 0 searches the range
/// for a port no connection in `TIME_WAIT` holds (after a few thousand transfers, most of the
/// server's CPU per small file).
pub struct PassivePorts {
    range: Option<PortRange>,
    next: AtomicU32,
    /// Where random ports are taken from without a range; `None` leaves it to the system.
    ephemeral: Option<PortRange>,
}

impl PassivePorts {
    pub fn new(range: Option<PortRange>) -> PassivePorts {
        let ephemeral = platform::ephemeral_ports().map(|(min, max)| PortRange { min, max });
        PassivePorts::with_ephemeral(range, ephemeral)
    }

    fn with_ephemeral(range: Option<PortRange>, ephemeral: Option<PortRange>) -> PassivePorts {
        PassivePorts { range, next: AtomicU32::new(0), ephemeral }
    }

    /// A listener on `ip` at a free port of the range. An error of kind `AddrInUse` means every
    /// port of the range is taken.
    pub fn bind(&self, ip: IpAddr) -> io::Result<TcpListener> {
        let Some(range) = self.range else {
            return self.bind_any(ip);
        };
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for step in 0..range.len() {
            let port = range.min + ((start.wrapping_add(step)) % range.len()) as u16;
            match TcpListener::bind(SocketAddr::new(ip, port)) {
                Ok(listener) => return Ok(listener),
                Err(err) if err.kind() == io::ErrorKind::AddrInUse => continue,
                Err(err) => return Err(err),
            }
        }
        let text = format!("all {} passive ports {}-{} are in use", range.len(), range.min, range.max);
        Err(io::Error::new(io::ErrorKind::AddrInUse, text))
    }

    /// A listener on `ip` at a random free port of the ephemeral range, or where the system
    /// chooses when none of a few was free.
    fn bind_any(&self, ip: IpAddr) -> io::Result<TcpListener> {
        if let Some(range) = self.ephemeral {
            for _ in 0..RANDOM_TRIES {
                let mut random = [0u8; 4];
                if getrandom::fill(&mut random).is_err() {
                    break;
                }
                let port = range.min + (u32::from_ne_bytes(random) % range.len()) as u16;
                match TcpListener::bind(SocketAddr::new(ip, port)) {
                    Ok(listener) => return Ok(listener),
                    Err(err) if err.kind() == io::ErrorKind::AddrInUse => continue,
                    Err(err) => return Err(err),
                }
            }
        }
        TcpListener::bind(SocketAddr::new(ip, 0))
    }
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

    #[test]
    fn without_a_range_ports_are_random_ones_of_the_ephemeral_range_else_the_systems() {
        let local = IpAddr::from([127, 0, 0, 1]);
        // A stretch the system never picks from itself, beside its own range.
        let (min, max) = platform::ephemeral_ports().unwrap_or((32768, 60999));
        let ephemeral = match min.checked_sub(2000) {
            Some(low) if low > 0 => PortRange { min: low, max: low + 999 },
            _ => PortRange { min: max + 1, max: max + 1000 },
        };
        let ports = PassivePorts::with_ephemeral(None, Some(ephemeral));
        let listeners: Vec<TcpListener> = (0..10).map(|_| ports.bind(local).unwrap()).collect();
        let inside = listeners
            .iter()
            .filter(|listener| {
                (ephemeral.min..=ephemeral.max).contains(&listener.local_addr().unwrap().port())
            })
            .count();
        // Another program may hold a few of them; then the system chooses.
        assert!(inside >= 5, "{inside} of 10 in {ephemeral:?}");
        // Every port of the range taken (by this test): the system chooses.
        let held = TcpListener::bind((local, 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        let ports = PassivePorts::with_ephemeral(None, Some(PortRange { min: port, max: port }));
        assert_ne!(ports.bind(local).unwrap().local_addr().unwrap().port(), port);
    }
}
