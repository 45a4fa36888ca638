//! [`Shared`]: what every session of one server reads: the configuration, the store and the
//! per-address admission counts. It holds no connection and starts no thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::server::admission::{Admission, AdmissionLimits};
use crate::server::config::Config;
use crate::server::store::Store;

/// What every session shares.
pub struct Shared {
    pub config: Config,
    pub store: Store,
    pub admission: Arc<Admission>,
    next_id: AtomicU64,
}

impl Shared {
    /// The state of a server with `config`, serving from `store`.
    pub fn new(config: Config, store: Store) -> Shared {
        let admission = Admission::new(AdmissionLimits {
            max_per_ip: config.max_per_ip,
            max_shares_per_hour: config.max_shares_per_hour,
            max_share_misses: config.max_share_misses,
            miss_delay: config.miss_delay,
            max_miss_delay: config.max_miss_delay,
            max_tracked: config.max_tracked_addresses,
        });
        Shared { config, store, admission, next_id: AtomicU64::new(1) }
    }

    /// A number no other connection to this server has had, for the log.
    pub fn next_connection_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}
