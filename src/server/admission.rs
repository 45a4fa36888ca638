//! Who may do how much, per client address: connections at once, shares created per hour, and
//! lookups of shares that do not exist per hour (so share codes cannot be guessed by brute
//! force while honest clients, who look up shares they were given, are never slowed). Kept in
//! the memory of one server process; the clock is passed in.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Connections one address may hold at once (`--max-per-ip`).
pub const DEFAULT_MAX_PER_IP: usize = 16;
/// Shares one address may create per hour (`--max-shares-per-hour`).
pub const DEFAULT_MAX_SHARES_PER_HOUR: usize = 100;
/// Lookups of missing shares one address may make per hour (`--max-share-misses`).
pub const DEFAULT_MAX_SHARE_MISSES: usize = 30;
/// The window the hourly counts cover.
pub const WINDOW: Duration = Duration::from_secs(3600);
/// Addresses remembered at most; idle ones are forgotten first.
pub const MAX_TRACKED_ADDRESSES: usize = 100_000;

/// The per-address limits.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionLimits {
    pub max_per_ip: usize,
    pub max_shares_per_hour: usize,
    pub max_share_misses: usize,
}

/// Why an address was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It already holds as many connections as it may.
    TooManyConnections(usize),
    /// It looked up too many shares that do not exist.
    Guessing(usize),
}

#[derive(Debug, Default)]
struct Record {
    connections: usize,
    shares: VecDeque<Instant>,
    misses: VecDeque<Instant>,
}

impl Record {
    fn forget_before(&mut self, now: Instant) {
        for events in [&mut self.shares, &mut self.misses] {
            while events.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                events.pop_front();
            }
        }
    }

    fn is_idle(&self) -> bool {
        self.connections == 0 && self.shares.is_empty() && self.misses.is_empty()
    }
}

#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    table: Mutex<HashMap<IpAddr, Record>>,
}

/// A connection slot held by one address; dropping it gives the slot back.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Arc<Admission> {
        Arc::new(Admission { limits, table: Mutex::new(HashMap::new()) })
    }

    fn table(&self) -> MutexGuard<'_, HashMap<IpAddr, Record>> {
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The record of `ip`, refreshed to `now`, making room when the table is full.
    fn record(table: &mut HashMap<IpAddr, Record>, ip: IpAddr, now: Instant) -> &mut Record {
        if table.len() >= MAX_TRACKED_ADDRESSES && !table.contains_key(&ip) {
            table.retain(|_, record| {
                record.forget_before(now);
                !record.is_idle()
            });
        }
        let record = table.entry(ip).or_default();
        record.forget_before(now);
        record
    }

    /// Admits a new connection from `ip`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<Ticket, Refusal> {
        let mut table = self.table();
        let record = Self::record(&mut table, ip, now);
        if record.misses.len() >= self.limits.max_share_misses {
            return Err(Refusal::Guessing(self.limits.max_share_misses));
        }
        if record.connections >= self.limits.max_per_ip {
            return Err(Refusal::TooManyConnections(self.limits.max_per_ip));
        }
        record.connections += 1;
        Ok(Ticket { admission: Arc::clone(self), ip })
    }

    /// Counts a new share from `ip` if it is under its hourly limit.
    pub fn allow_share(&self, ip: IpAddr, now: Instant) -> bool {
        let mut table = self.table();
        let record = Self::record(&mut table, ip, now);
        if record.shares.len() >= self.limits.max_shares_per_hour {
            return false;
        }
        record.shares.push_back(now);
        true
    }

    /// Counts a lookup of a share that does not exist.
    pub fn record_miss(&self, ip: IpAddr, now: Instant) {
        let mut table = self.table();
        Self::record(&mut table, ip, now).misses.push_back(now);
    }

    /// Whether `ip` made too many lookups of missing shares in the last hour.
    pub fn is_guessing(&self, ip: IpAddr, now: Instant) -> bool {
        let mut table = self.table();
        Self::record(&mut table, ip, now).misses.len() >= self.limits.max_share_misses
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut table = self.admission.table();
        if let Some(record) = table.get_mut(&self.ip) {
            record.connections = record.connections.saturating_sub(1);
            if record.is_idle() {
                table.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_per_ip: usize, max_shares_per_hour: usize, max_share_misses: usize) -> Arc<Admission> {
        Admission::new(AdmissionLimits { max_per_ip, max_shares_per_hour, max_share_misses })
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn connections_per_address_are_capped_and_given_back() {
        let gate = admission(2, 10, 10);
        let now = Instant::now();
        let first = gate.admit(A, now).unwrap();
        let _second = gate.admit(A, now).unwrap();
        assert_eq!(gate.admit(A, now).unwrap_err(), Refusal::TooManyConnections(2));
        assert!(gate.admit(B, now).is_ok(), "other addresses are unaffected");
        drop(first);
        assert!(gate.admit(A, now).is_ok());
    }

    #[test]
    fn shares_per_hour_slide_with_the_window() {
        let gate = admission(10, 2, 10);
        let start = Instant::now();
        assert!(gate.allow_share(A, start));
        assert!(gate.allow_share(A, start));
        assert!(!gate.allow_share(A, start + Duration::from_secs(10)));
        assert!(gate.allow_share(B, start));
        assert!(gate.allow_share(A, start + WINDOW));
    }

    #[test]
    fn guessing_blocks_only_the_guesser_for_an_hour() {
        let gate = admission(10, 10, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(!gate.is_guessing(A, start));
            gate.record_miss(A, start);
        }
        assert!(gate.is_guessing(A, start));
        assert_eq!(gate.admit(A, start).unwrap_err(), Refusal::Guessing(3));
        assert!(gate.admit(B, start).is_ok());
        assert!(!gate.is_guessing(A, start + WINDOW));
    }

    #[test]
    fn idle_records_are_forgotten() {
        let gate = admission(10, 10, 10);
        drop(gate.admit(A, Instant::now()).unwrap());
        assert!(gate.table().is_empty());
    }
}
