//! Who may do how much, per client address: connections at once, shares created per hour, and
//! how fast lookups of shares that never existed are answered. A guesser of share codes is
//! slowed, each further miss waiting longer, while a person behind the same address goes on:
//! only a flood of connections is refused outright. IPv6 addresses count by their /64, the
//! block one subscriber gets. Kept in the memory of one server process, in a table with a fixed
//! bound whose every operation takes a bounded number of steps; the clock is passed in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Connections one address may hold at once (`--max-per-ip`).
pub const DEFAULT_MAX_PER_IP: usize = 16;
/// Shares one address may create per hour (`--max-shares-per-hour`).
pub const DEFAULT_MAX_SHARES_PER_HOUR: usize = 100;
/// Lookups of shares that never existed one address may make per hour before they are slowed
/// (`--max-share-misses`).
pub const DEFAULT_MAX_SHARE_MISSES: usize = 30;
/// The wait before the answer to the first slowed miss; each further one waits twice as long
/// (`--miss-delay`).
pub const DEFAULT_MISS_DELAY: Duration = Duration::from_secs(1);
/// The longest a miss waits for its answer; a connection whose miss would wait longer, behind
/// its address's other misses, is closed with `421` (`--max-miss-delay`).
pub const DEFAULT_MAX_MISS_DELAY: Duration = Duration::from_secs(60);
/// Addresses (IPv6: /64 blocks) remembered at most; past it the quietest idle one is forgotten
/// (`--max-tracked-addresses`).
pub const DEFAULT_MAX_TRACKED_ADDRESSES: usize = 100_000;
/// The window the hourly counts cover: a count drains by one every `WINDOW / limit`.
pub const WINDOW: Duration = Duration::from_secs(3600);
/// Idle records an eviction compares before it forgets the one with the fewest misses.
const EVICTION_CANDIDATES: usize = 8;

/// The per-address limits.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionLimits {
    pub max_per_ip: usize,
    pub max_shares_per_hour: usize,
    pub max_share_misses: usize,
    pub miss_delay: Duration,
    pub max_miss_delay: Duration,
    pub max_tracked: usize,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits {
            max_per_ip: DEFAULT_MAX_PER_IP,
            max_shares_per_hour: DEFAULT_MAX_SHARES_PER_HOUR,
            max_share_misses: DEFAULT_MAX_SHARE_MISSES,
            miss_delay: DEFAULT_MISS_DELAY,
            max_miss_delay: DEFAULT_MAX_MISS_DELAY,
            max_tracked: DEFAULT_MAX_TRACKED_ADDRESSES,
        }
    }
}

/// Why a connection was turned away: its address already holds as many as it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyConnections(pub usize);

/// How to answer a lookup of a share that never existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// Answer after `wait` (zero while the address is under its hourly allowance).
    Answer { wait: Duration },
    /// Answer at once, then close the connection: its answer would wait longer than the
    /// longest delay. Misses from the address stay slowed for `slowed_for`.
    Close { slowed_for: Duration },
}

/// Who an address is, for counting: an IPv4 address, or the /64 an IPv6 address is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    V4([u8; 4]),
    V6Block([u8; 8]),
}

impl From<IpAddr> for Client {
    fn from(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V4(v4) => Client::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::V4(v4.octets()),
                None => {
                    let mut block = [0; 8];
                    block.copy_from_slice(&v6.octets()[..8]);
                    Client::V6Block(block)
                }
            },
        }
    }
}

/// A count that drains by one every `WINDOW / limit`: at most `limit` events pass at once,
/// then one more each time it drains.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: u32,
    drained_at: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Bucket {
        Bucket { level: 0, drained_at: now }
    }

    fn interval(limit: usize) -> Duration {
        WINDOW / u32::try_from(limit.max(1)).unwrap_or(u32::MAX)
    }

    /// The level at `now`.
    fn drain(&mut self, now: Instant, limit: usize) -> u32 {
        let interval = Self::interval(limit);
        let steps = now.saturating_duration_since(self.drained_at).as_nanos() / interval.as_nanos();
        if steps >= u128::from(self.level) {
            self.level = 0;
            self.drained_at = now;
        } else {
            let steps = steps as u32;
            self.level -= steps;
            self.drained_at += interval * steps;
        }
        self.level
    }

    /// How long until the level is down to `target`.
    fn until(&self, target: u32, now: Instant, limit: usize) -> Duration {
        let steps = self.level.saturating_sub(target);
        if steps == 0 {
            return Duration::ZERO;
        }
        (self.drained_at + Self::interval(limit) * steps).saturating_duration_since(now)
    }
}

#[derive(Debug)]
struct Record {
    client: Client,
    connections: usize,
    shares: Bucket,
    misses: Bucket,
    /// When the address's last slowed miss is answered: the next one waits behind it.
    answer_at: Instant,
}

impl Record {
    fn new(client: Client, now: Instant) -> Record {
        Record { client, connections: 0, shares: Bucket::new(now), misses: Bucket::new(now), answer_at: now }
    }
}

/// The records, in a fixed number of slots found through an index. A full table forgets an
/// idle record to make room: the hand walks past records with connections (at most
/// `--max-clients` of them) and compares a few idle ones.
#[derive(Debug)]
struct Table {
    slots: Vec<Record>,
    index: HashMap<Client, usize>,
    hand: usize,
    capacity: usize,
}

impl Table {
    fn record(&mut self, client: Client, now: Instant) -> &mut Record {
        if let Some(&slot) = self.index.get(&client) {
            return &mut self.slots[slot];
        }
        let slot = if self.slots.len() < self.capacity {
            self.slots.push(Record::new(client, now));
            self.slots.len() - 1
        } else {
            let slot = self.idle_slot();
            self.index.remove(&self.slots[slot].client);
            self.slots[slot] = Record::new(client, now);
            slot
        };
        self.index.insert(client, slot);
        &mut self.slots[slot]
    }

    /// An idle record to forget: of the next few idle ones, the one with the fewest misses,
    /// so that guessers are remembered longest.
    fn idle_slot(&mut self) -> usize {
        let mut best: Option<usize> = None;
        let mut seen = 0;
        for _ in 0..self.slots.len() {
            self.hand = (self.hand + 1) % self.slots.len();
            let record = &self.slots[self.hand];
            if record.connections > 0 {
                continue;
            }
            if best.is_none_or(|best| record.misses.level < self.slots[best].misses.level) {
                best = Some(self.hand);
            }
            seen += 1;
            if seen == EVICTION_CANDIDATES {
                break;
            }
        }
        // With more slots than connections (checked at start) there is always an idle one.
        best.unwrap_or(self.hand)
    }
}

/// The per-address counts of one server.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    table: Mutex<Table>,
}

/// A connection slot held by one address; dropping it gives the slot back.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    client: Client,
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Arc<Admission> {
        let table =
            Table { slots: Vec::new(), index: HashMap::new(), hand: 0, capacity: limits.max_tracked.max(1) };
        Arc::new(Admission { limits, table: Mutex::new(table) })
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a new connection from `ip`, unless its address holds as many as it may.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<Ticket, TooManyConnections> {
        let client = Client::from(ip);
        let mut table = self.table();
        let record = table.record(client, now);
        if record.connections >= self.limits.max_per_ip {
            return Err(TooManyConnections(self.limits.max_per_ip));
        }
        record.connections += 1;
        Ok(Ticket { admission: Arc::clone(self), client })
    }

    /// Counts a new share from `ip` if it is under its hourly limit; otherwise says how long
    /// until it may create the next one.
    pub fn allow_share(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let limit = self.limits.max_shares_per_hour;
        let mut table = self.table();
        let record = table.record(Client::from(ip), now);
        if record.shares.drain(now, limit) as usize >= limit {
            return Err(record.shares.until(record.shares.level.saturating_sub(1), now, limit));
        }
        record.shares.level += 1;
        Ok(())
    }

    /// Counts a lookup from `ip` of a share that never existed, and says how to answer it:
    /// at once while the address is under its allowance, then after a wait that doubles with
    /// each further miss up to `--max-miss-delay`. The address's slowed misses are answered
    /// one after another, whichever connection sent them.
    pub fn record_miss(&self, ip: IpAddr, now: Instant) -> Miss {
        let (free, first, longest) =
            (self.limits.max_share_misses, self.limits.miss_delay, self.limits.max_miss_delay);
        let mut table = self.table();
        let record = table.record(Client::from(ip), now);
        let level = record.misses.drain(now, free).saturating_add(1);
        record.misses.level = level;
        let Some(over) = (level as usize).checked_sub(free).filter(|over| *over > 0) else {
            return Miss::Answer { wait: Duration::ZERO };
        };
        let doublings = u32::try_from(over - 1).unwrap_or(u32::MAX).min(32);
        let delay = first.saturating_mul(1 << doublings.min(31)).min(longest);
        let answer_at = record.answer_at.max(now) + delay;
        if answer_at.saturating_duration_since(now) > longest {
            let slowed_for = record.misses.until(u32::try_from(free).unwrap_or(u32::MAX), now, free);
            return Miss::Close { slowed_for };
        }
        record.answer_at = answer_at;
        Miss::Answer { wait: answer_at - now }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut table = self.admission.table();
        if let Some(&slot) = table.index.get(&self.client) {
            let record = &mut table.slots[slot];
            record.connections = record.connections.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn admission(change: impl FnOnce(&mut AdmissionLimits)) -> Arc<Admission> {
        let mut limits = AdmissionLimits::default();
        change(&mut limits);
        Admission::new(limits)
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    const SECOND: Duration = Duration::from_secs(1);

    fn v6(text: &str) -> IpAddr {
        IpAddr::V6(text.parse::<Ipv6Addr>().unwrap())
    }

    #[test]
    fn connections_per_address_are_capped_and_given_back() {
        let gate = admission(|l| l.max_per_ip = 2);
        let now = Instant::now();
        let first = gate.admit(A, now).unwrap();
        let _second = gate.admit(A, now).unwrap();
        assert_eq!(gate.admit(A, now).unwrap_err(), TooManyConnections(2));
        assert!(gate.admit(B, now).is_ok(), "other addresses are unaffected");
        drop(first);
        assert!(gate.admit(A, now).is_ok());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_block() {
        let gate = admission(|l| l.max_per_ip = 2);
        let now = Instant::now();
        let _one = gate.admit(v6("2001:db8:1:2::1"), now).unwrap();
        let _two = gate.admit(v6("2001:db8:1:2:ffff:ffff:ffff:ffff"), now).unwrap();
        assert!(gate.admit(v6("2001:db8:1:2::99"), now).is_err(), "one /64, one subscriber");
        assert!(gate.admit(v6("2001:db8:1:3::1"), now).is_ok(), "the next /64 is someone else");
        assert_eq!(Client::from(v6("::ffff:127.0.0.1")), Client::from(A), "IPv4 through IPv6 is IPv4");
    }

    #[test]
    fn the_table_never_holds_more_than_its_bound() {
        let gate = admission(|l| {
            l.max_tracked = 4;
            l.max_per_ip = 1;
        });
        let now = Instant::now();
        let held = gate.admit(A, now).unwrap();
        for last in 0..1000u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + last));
            drop(gate.admit(ip, now).unwrap());
            let table = gate.table();
            assert!(table.slots.len() <= 4 && table.index.len() <= 4, "{} records", table.slots.len());
            assert_eq!(table.index.len(), table.slots.len());
        }
        assert!(gate.admit(A, now).is_err(), "an address with a connection is never forgotten");
        drop(held);
        assert!(gate.admit(A, now).is_ok());
    }

    #[test]
    fn a_full_table_forgets_the_innocent_before_the_guesser() {
        let gate = admission(|l| {
            l.max_tracked = 3;
            l.max_share_misses = 1;
        });
        let now = Instant::now();
        for _ in 0..3 {
            gate.record_miss(A, now);
        }
        for last in 0..100u32 {
            drop(gate.admit(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + last)), now).unwrap());
        }
        assert!(matches!(gate.record_miss(A, now), Miss::Answer { wait } if wait > Duration::ZERO));
    }

    #[test]
    fn shares_per_hour_drain_with_time_and_say_when() {
        let gate = admission(|l| l.max_shares_per_hour = 2);
        let start = Instant::now();
        assert!(gate.allow_share(A, start).is_ok());
        assert!(gate.allow_share(A, start).is_ok());
        assert_eq!(gate.allow_share(A, start + 10 * SECOND), Err(WINDOW / 2 - 10 * SECOND));
        assert!(gate.allow_share(B, start).is_ok());
        assert!(gate.allow_share(A, start + WINDOW / 2).is_ok(), "one more each half hour");
        assert!(gate.allow_share(A, start + WINDOW / 2).is_err());
    }

    #[test]
    fn misses_past_the_allowance_wait_longer_and_longer() {
        let gate = admission(|l| {
            l.max_share_misses = 3;
            l.miss_delay = SECOND;
            l.max_miss_delay = 8 * SECOND;
        });
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..9 {
            let Miss::Answer { wait } = gate.record_miss(A, now) else {
                panic!("one connection waits its turn")
            };
            waits.push(wait.as_secs());
            // The connection waits for its answer before it can miss again.
            now += wait;
        }
        assert_eq!(waits, [0, 0, 0, 1, 2, 4, 8, 8, 8]);
        assert_eq!(gate.record_miss(B, now), Miss::Answer { wait: Duration::ZERO }, "only the guesser");
        // Ten misses per hour drain one every six minutes, then one is free again.
        let gate = admission(|l| l.max_share_misses = 10);
        let start = Instant::now();
        for _ in 0..10 {
            assert_eq!(gate.record_miss(A, start), Miss::Answer { wait: Duration::ZERO });
        }
        assert!(matches!(gate.record_miss(A, start), Miss::Answer { wait } if wait > Duration::ZERO));
        assert_eq!(gate.record_miss(A, start + WINDOW), Miss::Answer { wait: Duration::ZERO });
    }

    #[test]
    fn a_miss_queued_past_the_longest_delay_closes_its_connection() {
        let gate = admission(|l| {
            l.max_share_misses = 1;
            l.miss_delay = 10 * SECOND;
            l.max_miss_delay = 10 * SECOND;
        });
        let now = Instant::now();
        assert_eq!(gate.record_miss(A, now), Miss::Answer { wait: Duration::ZERO });
        assert_eq!(gate.record_miss(A, now), Miss::Answer { wait: 10 * SECOND });
        // A second connection of the guesser's, meanwhile: its answer would come in 20 s.
        let Miss::Close { slowed_for } = gate.record_miss(A, now) else { panic!("closed") };
        assert_eq!(slowed_for, 2 * WINDOW, "two misses over an allowance of one per hour");
        assert_eq!(gate.record_miss(A, now + 10 * SECOND), Miss::Answer { wait: 10 * SECOND });
    }
}
