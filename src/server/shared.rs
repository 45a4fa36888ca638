//! [`Shared`]: what every session of one server reads: the configuration, the store, the
//! per-address admission counts, the passive ports, the public address and the shutdown state.
//! It holds no connection and starts no thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::server::admission::{Admission, AdmissionLimits};
use crate::server::config::Config;
use crate::server::passive::PassivePorts;
use crate::server::public::PublicAddress;
use crate::server::shutdown::Shutdown;
use crate::server::store::Store;

/// What every session shares.
pub struct Shared {
    pub config: Config,
    pub store: Store,
    pub admission: Arc<Admission>,
    pub passive_ports: PassivePorts,
    pub public: PublicAddress,
    pub shutdown: Arc<Shutdown>,
    /// The certificate and TLS configurations, when the server speaks TLS.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<crate::server::tls::Tls>>,
    next_id: AtomicU64,
}

impl Shared {
    /// The state of a server with `config`, serving from `store`, known to clients as `public`.
    pub fn new(config: Config, store: Store, public: PublicAddress) -> Shared {
        let admission = Admission::new(AdmissionLimits {
            max_per_ip: config.max_per_ip,
            max_shares_per_hour: config.max_shares_per_hour,
            max_share_misses: config.max_share_misses,
            miss_delay: config.miss_delay,
            max_miss_delay: config.max_miss_delay,
            max_tracked: config.max_tracked_addresses,
        });
        let passive_ports = PassivePorts::new(config.passive_ports);
        let shutdown = Arc::new(Shutdown::new(config.shutdown_grace));
        Shared {
            config,
            store,
            admission,
            passive_ports,
            public,
            shutdown,
            #[cfg(feature = "tls")]
            tls: None,
            next_id: AtomicU64::new(1),
        }
    }

    /// The same state with the server's TLS certificate and configurations.
    #[cfg(feature = "tls")]
    pub fn with_tls(self, tls: Option<Arc<crate::server::tls::Tls>>) -> Shared {
        Shared { tls, ..self }
    }

    /// Reads the TLS certificate and key again (SIGHUP); the server keeps the old ones when
    /// the new ones do not load. Without TLS there is nothing to do.
    pub fn reload_tls(&self) -> Result<(), String> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.reload().map(|_| ()).map_err(|err| err.to_string());
        }
        Ok(())
    }

    /// A number no other connection to this server has had, for the log.
    pub fn next_connection_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}
