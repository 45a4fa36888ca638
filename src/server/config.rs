//! Everything the server can be told: [`Config`], each default as a `DEFAULT_*` constant, and
//! the command line that sets them ([`usage`], [`parse_args`], [`parse_bytes`]). It reads no
//! socket and no disk; the accept loop and the sessions only read the `Config` made here.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::args::{Arg, Args, UsageError, unknown_flag};
use crate::common::expiry::{format_duration, parse_duration};
use crate::proto::MAX_LINE_LEN;
use crate::server::admission::{
    DEFAULT_MAX_MISS_DELAY, DEFAULT_MAX_PER_IP, DEFAULT_MAX_SHARE_MISSES, DEFAULT_MAX_SHARES_PER_HOUR,
    DEFAULT_MAX_TRACKED_ADDRESSES, DEFAULT_MISS_DELAY,
};
use crate::server::passive::PortRange;
use crate::server::public::PublicHost;
use crate::server::store::{
    DEFAULT_CLAIM_HOLD, DEFAULT_MANIFEST_CACHE_RECORDS, DEFAULT_MANIFEST_CACHE_SHARES,
    DEFAULT_MAX_CLAIM_SEGMENTS, DEFAULT_MAX_COUNTER_HINTS, DEFAULT_MAX_FILE_SIZE,
    DEFAULT_MAX_FILES_PER_SHARE, DEFAULT_MAX_OPEN_BUDGET_LOCKS, DEFAULT_MAX_SHARE_SIZE,
    DEFAULT_MIN_FREE_DISK, DEFAULT_PARTIAL_LIFETIME, DEFAULT_RESERVE_BELOW, MAX_NAME_BYTES, MAX_PATH_BYTES,
    MAX_PATH_DEPTH,
};

/// Address the server listens on unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:2121";
/// Folder that holds the store unless told otherwise.
pub const DEFAULT_ROOT: &str = "./anonshare-data";
/// Worker threads; each serves one connection at a time.
pub const DEFAULT_WORKERS: usize = 64;
/// Expiry of a share whose creator did not ask for one.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(7 * 86_400);
/// Longest expiry anyone may ask for.
pub const DEFAULT_MAX_EXPIRY: Duration = Duration::from_secs(30 * 86_400);
/// An idle control connection is closed after this long.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// A data transfer that makes no progress for this long is aborted.
pub const DEFAULT_DATA_TIMEOUT: Duration = Duration::from_secs(300);
/// A client has this long to open the passive data connection it asked for.
pub const DEFAULT_PASSIVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Digests declared with `SITE DIGEST` and not yet used by a STOR, per connection.
pub const DEFAULT_MAX_PENDING_DIGESTS: usize = 1024;
/// Largest download budget a share may ask for (`SITE MKSHARE DOWNLOADS=N`).
pub const DEFAULT_MAX_DOWNLOAD_BUDGET: u64 = 10_000;
/// Commands a client may send during a transfer; they run once it ends.
pub const DEFAULT_MAX_HELD_COMMANDS: usize = 16;
/// Most entries one listing may send: the matches of a wildcard, or a recursive listing.
pub const DEFAULT_MAX_LIST_ENTRIES: usize = 10_000;
/// How often expired shares are removed from disk.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// After SIGTERM or SIGINT, how long transfers in flight may run before they are cut. The
/// systemd unit's `TimeoutStopSec` must be longer (deploy/anonshare-server.service).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(60);
/// TLS sessions the server remembers for resumption, across all clients (`--tls-max-sessions`).
pub const DEFAULT_TLS_MAX_SESSIONS: usize = 20_000;

/// Whether the control and data connections speak TLS (`--tls`, RFC 4217).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// No TLS: `AUTH TLS` is refused.
    Off,
    /// TLS for clients that ask (`AUTH TLS`, `PROT P`); plaintext for the others.
    Optional,
    /// Nothing but the login, `AUTH` and `FEAT` before TLS, and data connections under `PROT P`.
    Required,
}

impl TlsPolicy {
    /// The policy of a server that was not told one: TLS for those who ask on a loopback
    /// address, which no other machine reaches; TLS required everywhere else.
    pub fn default_for(loopback: bool) -> TlsPolicy {
        if loopback { TlsPolicy::Optional } else { TlsPolicy::Required }
    }

    pub fn name(self) -> &'static str {
        match self {
            TlsPolicy::Off => "off",
            TlsPolicy::Optional => "optional",
            TlsPolicy::Required => "required",
        }
    }
}

/// The TLS flags.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// `--tls`; `None` until the listening address decides ([`TlsPolicy::default_for`]).
    pub policy: Option<TlsPolicy>,
    /// `--tls-cert` and `--tls-key`: PEM files; without them the server makes its own.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// `--tls-reuse required`: a protected data connection must resume its control
    /// connection's TLS session (522 otherwise).
    pub require_reuse: bool,
    pub max_sessions: usize,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            policy: None,
            cert: None,
            key: None,
            require_reuse: true,
            max_sessions: DEFAULT_TLS_MAX_SESSIONS,
        }
    }
}

/// Everything the server can be told.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub root: PathBuf,
    pub workers: usize,
    pub max_clients: usize,
    pub default_expiry: Duration,
    pub max_expiry: Duration,
    pub idle_timeout: Duration,
    pub data_timeout: Duration,
    pub passive_timeout: Duration,
    pub max_line: usize,
    pub sweep_interval: Duration,
    pub max_per_ip: usize,
    pub max_shares_per_hour: usize,
    pub max_share_misses: usize,
    pub miss_delay: Duration,
    pub max_miss_delay: Duration,
    pub max_tracked_addresses: usize,
    pub max_file_size: u64,
    pub max_share_size: u64,
    pub max_files_per_share: usize,
    pub min_free_disk: u64,
    pub partial_lifetime: Duration,
    pub claim_hold: Duration,
    pub max_claim_segments: u64,
    pub reserve_below: u64,
    pub max_counter_hints: usize,
    pub max_open_budget_locks: usize,
    pub max_name_bytes: usize,
    pub max_path_bytes: usize,
    pub max_path_depth: usize,
    pub max_pending_digests: usize,
    pub max_download_budget: u64,
    pub max_held_commands: usize,
    pub max_list_entries: usize,
    pub manifest_cache_shares: usize,
    pub manifest_cache_records: usize,
    pub shutdown_grace: Duration,
    /// Ports passive listeners use; `None` means a free one of 49152-65535, from a random start.
    pub passive_ports: Option<PortRange>,
    /// The name clients reach this server by, for `PASV` replies and share URLs.
    pub public_host: Option<PublicHost>,
    pub tls: TlsSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN.into(),
            root: DEFAULT_ROOT.into(),
            workers: DEFAULT_WORKERS,
            max_clients: DEFAULT_WORKERS,
            default_expiry: DEFAULT_EXPIRY,
            max_expiry: DEFAULT_MAX_EXPIRY,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            data_timeout: DEFAULT_DATA_TIMEOUT,
            passive_timeout: DEFAULT_PASSIVE_TIMEOUT,
            max_line: MAX_LINE_LEN,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            max_per_ip: DEFAULT_MAX_PER_IP,
            max_shares_per_hour: DEFAULT_MAX_SHARES_PER_HOUR,
            max_share_misses: DEFAULT_MAX_SHARE_MISSES,
            miss_delay: DEFAULT_MISS_DELAY,
            max_miss_delay: DEFAULT_MAX_MISS_DELAY,
            max_tracked_addresses: DEFAULT_MAX_TRACKED_ADDRESSES,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            max_share_size: DEFAULT_MAX_SHARE_SIZE,
            max_files_per_share: DEFAULT_MAX_FILES_PER_SHARE,
            min_free_disk: DEFAULT_MIN_FREE_DISK,
            partial_lifetime: DEFAULT_PARTIAL_LIFETIME,
            claim_hold: DEFAULT_CLAIM_HOLD,
            max_claim_segments: DEFAULT_MAX_CLAIM_SEGMENTS,
            reserve_below: DEFAULT_RESERVE_BELOW,
            max_counter_hints: DEFAULT_MAX_COUNTER_HINTS,
            max_open_budget_locks: DEFAULT_MAX_OPEN_BUDGET_LOCKS,
            max_name_bytes: MAX_NAME_BYTES,
            max_path_bytes: MAX_PATH_BYTES,
            max_path_depth: MAX_PATH_DEPTH,
            max_pending_digests: DEFAULT_MAX_PENDING_DIGESTS,
            max_download_budget: DEFAULT_MAX_DOWNLOAD_BUDGET,
            max_held_commands: DEFAULT_MAX_HELD_COMMANDS,
            max_list_entries: DEFAULT_MAX_LIST_ENTRIES,
            manifest_cache_shares: DEFAULT_MANIFEST_CACHE_SHARES,
            manifest_cache_records: DEFAULT_MANIFEST_CACHE_RECORDS,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            passive_ports: None,
            public_host: None,
            tls: TlsSettings::default(),
        }
    }
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Invocation {
    Serve(Box<Config>),
    Help,
    Version,
}

/// `anonshare-server --help`.
pub fn usage() -> String {
    let d = Config::default();
    format!(
        "anonshare-server {version}: an anonymous file share over FTP, every file verified by SHA-256

Usage: anonshare-server [OPTIONS]

Prints one line to stdout once listening, ending with the bound HOST:PORT.
Logs one line per event to stderr.

Options:
  --listen ADDR            address to listen on; port 0 picks a free port [default: {listen}]
  --root DIR               folder holding the shares [default: {root}]
  --workers N              worker threads, one per connected client [default: {workers}]
  --max-clients N          connections served at once; more get 421 [default: --workers]
  --default-expiry D       expiry of a share that asks for none [default: {expiry}]
  --max-expiry D           longest expiry a client may ask for [default: {max_expiry}]
  --idle-timeout D         close an idle control connection after D [default: {idle}]
  --data-timeout D         abort a transfer that makes no progress for D [default: {data}]
  --passive-timeout D      time to open a passive data connection [default: {passive}]
  --max-line BYTES         longest control line accepted [default: {max_line}]
  --sweep-interval D       how often expired shares are deleted [default: {sweep}]
  --max-per-ip N           connections one address may hold; more get 421 [default: {per_ip}]
  --max-shares-per-hour N  shares one address may create per hour [default: {shares_per_hour}]
  --max-share-misses N     lookups of shares that never existed one address may make
                           per hour before each further one is slowed [default: {misses}]
  --miss-delay D           wait before answering the first slowed lookup; each further
                           one waits twice as long [default: {miss_delay}]
  --max-miss-delay D       longest wait for one answer; a connection whose lookup would
                           wait longer is closed with 421 [default: {max_miss_delay}]
  --max-tracked-addresses N  addresses (IPv6: /64 blocks) the limits remember; more than
                           --max-clients [default: {tracked}]
  --max-file-size BYTES    largest file; larger uploads get 552 [default: {file_size}]
  --max-share-size BYTES   largest share in total (552) [default: {share_size}]
  --max-files-per-share N  most files in one share (552) [default: {files}]
  --min-free-disk BYTES    free disk space uploads must leave, counting what uploads in
                           flight announced (452) [default: {free}]
  --partial-lifetime D     how long a cut upload is kept for a resume after its last
                           byte; the sweep deletes older ones [default: {partial}]
  --claim-hold D           how long a budgeted download cut short keeps its place in the
                           budget for its client's resume [default: {hold}]
  --max-claim-segments N   RETRs of one budgeted file by one client before they count as
                           a whole download [default: {segments}]
  --reserve-below N        downloads left to a budgeted file at or below which each download
                           takes its place before its 150; with more left, a download is
                           counted before its last 64 KiB are sent (a download refused
                           there is one the budget had no place for) [default: {reserve}]
  --max-counter-hints N    budget counters whose count the server keeps in memory (about
                           100 bytes each), so a download counted at its end needs no
                           lookups to find its name; past it all are forgotten [default: {hints}]
  --max-open-budget-locks N  budget lock files the server keeps open (16 per budgeted share
                           downloaded from); past it all are closed [default: {locks}]
  --max-name-bytes N       longest file or folder name (553) [default: {name_bytes}]
  --max-path-bytes N       longest path inside a share (553) [default: {path_bytes}]
  --max-path-depth N       deepest folder nesting inside a share (553) [default: {path_depth}]
  --max-pending-digests N  SITE DIGESTs waiting for their STOR (452) [default: {digests}]
  --max-held-commands N    commands read during a transfer and run after it [default: {held}]
  --max-download-budget N  most downloads per file a share may ask for (504) [default: {budget}]
  --max-list-entries N     most entries of a wildcard or LIST -R listing (452) [default: {list}]
  --manifest-cache-shares N  shares whose manifests are kept in memory [default: {cache_shares}]
  --manifest-cache-records N  files and folders of those manifests kept in memory in all;
                           one share's are kept whole [default: {cache_records}]
  --shutdown-grace D       after SIGTERM or SIGINT, time transfers in flight have to
                           finish before they are cut [default: {grace}]
  --passive-ports MIN-MAX  ports for passive data connections (open them in the firewall);
                           425 when all are busy [default: a free one of 49152-65535]
  --public-host NAME[:PORT]  the name or address clients reach this server by: sent in PASV
                           replies (its IPv4 address) and in share URLs [default: none]
  --tls off|optional|required
                           TLS on the control and data connections (FTPS, AUTH TLS)
                           [default: optional on a loopback address, else required]
  --tls-cert FILE          certificate chain in PEM, reloaded when it changes
                           [default: one made on first start, kept under --root]
  --tls-key FILE           its private key in PEM
  --tls-reuse required|optional
                           whether a PROT P data connection must resume the TLS
                           session of its control connection (522) [default: required]
  --tls-max-sessions N     TLS sessions kept for resumption [default: {tls_sessions}]
  -h, --help               print this help
  -V, --version            print the version

Durations (D) are like 90s, 30m, 12h or 7d. BYTES may end in K, M, G or T (powers of 1024).

Signals: SIGTERM or SIGINT stops taking connections, tells idle clients 421, lets transfers
finish within --shutdown-grace, then exits 0; a second one exits 3 at once. SIGHUP resolves
--public-host again.

Exit codes: 0 stopped cleanly; 1 usage error; 2 could not listen or open the store; 3 stopped
at once by a second signal.
",
        version = env!("CARGO_PKG_VERSION"),
        listen = d.listen,
        root = d.root.display(),
        workers = d.workers,
        expiry = format_duration(d.default_expiry),
        max_expiry = format_duration(d.max_expiry),
        idle = format_duration(d.idle_timeout),
        data = format_duration(d.data_timeout),
        passive = format_duration(d.passive_timeout),
        max_line = d.max_line,
        sweep = format_duration(d.sweep_interval),
        per_ip = d.max_per_ip,
        shares_per_hour = d.max_shares_per_hour,
        misses = d.max_share_misses,
        miss_delay = format_duration(d.miss_delay),
        max_miss_delay = format_duration(d.max_miss_delay),
        tracked = d.max_tracked_addresses,
        file_size = format_bytes(d.max_file_size),
        share_size = format_bytes(d.max_share_size),
        files = d.max_files_per_share,
        free = format_bytes(d.min_free_disk),
        partial = format_duration(d.partial_lifetime),
        hold = format_duration(d.claim_hold),
        segments = d.max_claim_segments,
        reserve = d.reserve_below,
        hints = d.max_counter_hints,
        locks = d.max_open_budget_locks,
        name_bytes = d.max_name_bytes,
        path_bytes = d.max_path_bytes,
        path_depth = d.max_path_depth,
        digests = d.max_pending_digests,
        held = d.max_held_commands,
        budget = d.max_download_budget,
        list = d.max_list_entries,
        cache_shares = d.manifest_cache_shares,
        cache_records = d.manifest_cache_records,
        grace = format_duration(d.shutdown_grace),
        tls_sessions = d.tls.max_sessions,
    )
}

/// Parses the server's command line (without the program name).
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, UsageError> {
    let mut args = Args::new(args)?;
    let mut config = Config::default();
    let mut max_clients = None;
    let duration = |args: &mut Args, flag: &str| -> Result<Duration, UsageError> {
        let text = args.value(flag)?;
        parse_duration(&text).map_err(|_| {
            UsageError(format!("invalid {flag} '{text}': expected a duration like 90s, 30m, 12h or 7d"))
        })
    };
    let bytes = |args: &mut Args, flag: &str| -> Result<u64, UsageError> {
        let text = args.value(flag)?;
        parse_bytes(&text).ok_or_else(|| {
            UsageError(format!("invalid {flag} '{text}': expected bytes like 4096, 512M or 8G"))
        })
    };
    while let Some(arg) = args.next_arg()? {
        let flag = match arg {
            Arg::Flag(flag) => flag,
            Arg::Positional(extra) => {
                return Err(UsageError(format!("unexpected argument '{extra}' (see --help)")));
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Invocation::Help),
            "-V" | "--version" => return Ok(Invocation::Version),
            "--listen" => config.listen = args.value(&flag)?,
            "--root" => config.root = args.value(&flag)?.into(),
            "--workers" => config.workers = args.parsed(&flag, "a number of threads")?,
            "--max-clients" => max_clients = Some(args.parsed(&flag, "a number of connections")?),
            "--default-expiry" => config.default_expiry = duration(&mut args, &flag)?,
            "--max-expiry" => config.max_expiry = duration(&mut args, &flag)?,
            "--idle-timeout" => config.idle_timeout = duration(&mut args, &flag)?,
            "--data-timeout" => config.data_timeout = duration(&mut args, &flag)?,
            "--passive-timeout" => config.passive_timeout = duration(&mut args, &flag)?,
            "--max-line" => config.max_line = bytes(&mut args, &flag)? as usize,
            "--sweep-interval" => config.sweep_interval = duration(&mut args, &flag)?,
            "--max-per-ip" => config.max_per_ip = args.parsed(&flag, "a number of connections")?,
            "--max-shares-per-hour" => {
                config.max_shares_per_hour = args.parsed(&flag, "a number of shares")?
            }
            "--max-share-misses" => config.max_share_misses = args.parsed(&flag, "a number of lookups")?,
            "--miss-delay" => config.miss_delay = duration(&mut args, &flag)?,
            "--max-miss-delay" => config.max_miss_delay = duration(&mut args, &flag)?,
            "--max-tracked-addresses" => {
                config.max_tracked_addresses = args.parsed(&flag, "a number of addresses")?
            }
            "--max-file-size" => config.max_file_size = bytes(&mut args, &flag)?,
            "--max-share-size" => config.max_share_size = bytes(&mut args, &flag)?,
            "--max-files-per-share" => {
                config.max_files_per_share = args.parsed(&flag, "a number of files")?
            }
            "--min-free-disk" => config.min_free_disk = bytes(&mut args, &flag)?,
            "--partial-lifetime" => config.partial_lifetime = duration(&mut args, &flag)?,
            "--claim-hold" => config.claim_hold = duration(&mut args, &flag)?,
            "--max-claim-segments" => config.max_claim_segments = args.parsed(&flag, "a number of RETRs")?,
            "--reserve-below" => config.reserve_below = args.parsed(&flag, "a number of downloads")?,
            "--max-counter-hints" => config.max_counter_hints = args.parsed(&flag, "a number of counters")?,
            "--max-open-budget-locks" => {
                config.max_open_budget_locks = args.parsed(&flag, "a number of lock files")?
            }
            "--max-name-bytes" => config.max_name_bytes = args.parsed(&flag, "a number of bytes")?,
            "--max-path-bytes" => config.max_path_bytes = args.parsed(&flag, "a number of bytes")?,
            "--max-path-depth" => config.max_path_depth = args.parsed(&flag, "a number of folders")?,
            "--max-pending-digests" => {
                config.max_pending_digests = args.parsed(&flag, "a number of digests")?
            }
            "--max-held-commands" => config.max_held_commands = args.parsed(&flag, "a number of commands")?,
            "--max-list-entries" => config.max_list_entries = args.parsed(&flag, "a number of entries")?,
            "--manifest-cache-shares" => {
                config.manifest_cache_shares = args.parsed(&flag, "a number of shares")?
            }
            "--manifest-cache-records" => {
                config.manifest_cache_records = args.parsed(&flag, "a number of records")?
            }
            "--max-download-budget" => {
                config.max_download_budget = args.parsed(&flag, "a number of downloads")?
            }
            "--shutdown-grace" => config.shutdown_grace = duration(&mut args, &flag)?,
            "--passive-ports" => {
                let text = args.value(&flag)?;
                let range = PortRange::parse(&text).ok_or_else(|| {
                    UsageError(format!(
                        "invalid {flag} '{text}': expected MIN-MAX, two ports from 1 to 65535, MIN <= MAX"
                    ))
                })?;
                config.passive_ports = Some(range);
            }
            "--public-host" => {
                let text = args.value(&flag)?;
                let host = PublicHost::parse(&text)
                    .map_err(|why| UsageError(format!("invalid {flag} '{text}': {why}")))?;
                config.public_host = Some(host);
            }
            "--tls" => config.tls.policy = Some(parse_tls_policy(&args.value(&flag)?)?),
            "--tls-cert" => config.tls.cert = Some(args.value(&flag)?.into()),
            "--tls-key" => config.tls.key = Some(args.value(&flag)?.into()),
            "--tls-reuse" => {
                config.tls.require_reuse = match args.value(&flag)?.as_str() {
                    "required" => true,
                    "optional" => false,
                    other => {
                        return Err(UsageError(format!(
                            "invalid --tls-reuse '{other}': expected required or optional"
                        )));
                    }
                }
            }
            "--tls-max-sessions" => config.tls.max_sessions = args.parsed(&flag, "a number of sessions")?,
            _ => return Err(unknown_flag(&flag)),
        }
    }
    config.max_clients = max_clients.unwrap_or(config.workers);
    check_config(&config)?;
    Ok(Invocation::Serve(Box::new(config)))
}

fn parse_tls_policy(text: &str) -> Result<TlsPolicy, UsageError> {
    match text {
        "off" => Ok(TlsPolicy::Off),
        "optional" => Ok(TlsPolicy::Optional),
        "required" => Ok(TlsPolicy::Required),
        _ => Err(UsageError(format!("invalid --tls '{text}': expected off, optional or required"))),
    }
}

fn check_config(config: &Config) -> Result<(), UsageError> {
    let fail = |message: String| Err(UsageError(message));
    if config.max_claim_segments == 0 {
        return fail("--max-claim-segments must be at least 1".into());
    }
    if config.workers == 0 || config.max_clients == 0 || config.max_per_ip == 0 {
        return fail("--workers, --max-clients and --max-per-ip must be at least 1".into());
    }
    if config.max_clients > config.workers {
        return fail(format!(
            "--max-clients {} is more than --workers {}: every connected client holds a worker",
            config.max_clients, config.workers
        ));
    }
    if config.max_tracked_addresses <= config.max_clients {
        return fail(format!(
            "--max-tracked-addresses {} must be more than --max-clients {}: every connected address is remembered",
            config.max_tracked_addresses, config.max_clients
        ));
    }
    if config.miss_delay > config.max_miss_delay {
        return fail("--miss-delay must be at most --max-miss-delay".into());
    }
    if config.default_expiry.is_zero() || config.default_expiry > config.max_expiry {
        return fail(format!(
            "--default-expiry {} must be above zero and at most --max-expiry {}",
            format_duration(config.default_expiry),
            format_duration(config.max_expiry)
        ));
    }
    for (flag, value) in [
        ("--idle-timeout", config.idle_timeout),
        ("--data-timeout", config.data_timeout),
        ("--passive-timeout", config.passive_timeout),
        ("--sweep-interval", config.sweep_interval),
    ] {
        if value.is_zero() {
            return fail(format!("{flag} must be above zero"));
        }
    }
    if config.tls.cert.is_some() != config.tls.key.is_some() {
        return fail("--tls-cert and --tls-key go together".into());
    }
    if config.tls.max_sessions == 0 {
        return fail("--tls-max-sessions must be at least 1".into());
    }
    if !cfg!(feature = "tls") && matches!(config.tls.policy, Some(TlsPolicy::Optional | TlsPolicy::Required))
    {
        return fail("this anonshare-server was built without TLS (cargo feature tls): use --tls off".into());
    }
    if config.max_line < 64 {
        return fail(format!("--max-line {} is too small: at least 64 bytes", config.max_line));
    }
    Ok(())
}

/// `512M` as bytes; K, M, G and T are powers of 1024.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Bytes the way `--help` shows them: `8G`, `64M`, `4096`.
pub fn format_bytes(bytes: u64) -> String {
    for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Result<Config, String> {
        match parse_args(list.iter().map(OsString::from)) {
            Ok(Invocation::Serve(config)) => Ok(*config),
            Ok(other) => Err(format!("{other:?}")),
            Err(err) => Err(err.to_string()),
        }
    }

    #[test]
    fn defaults() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen, DEFAULT_LISTEN);
        assert_eq!(config.max_clients, DEFAULT_WORKERS);
        assert_eq!(config.default_expiry, DEFAULT_EXPIRY);
        assert_eq!((config.tls.policy, config.tls.require_reuse), (None, true));
    }

    #[test]
    fn tls_flags_are_read() {
        let config = parse(&["--tls", "off", "--tls-reuse", "optional"]).unwrap();
        assert_eq!((config.tls.policy, config.tls.require_reuse), (Some(TlsPolicy::Off), false));
        assert_eq!(TlsPolicy::default_for(true), TlsPolicy::Optional);
        assert_eq!(TlsPolicy::default_for(false), TlsPolicy::Required);
    }

    #[test]
    fn flags_are_read() {
        let config = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--workers=4",
            "--max-clients",
            "2",
            "--max-expiry",
            "1h",
            "--default-expiry",
            "30m",
        ])
        .unwrap();
        assert_eq!((config.workers, config.max_clients), (4, 2));
        assert_eq!(config.max_expiry, Duration::from_secs(3600));
        let config =
            parse(&["--claim-hold", "90s", "--max-claim-segments", "8", "--partial-lifetime", "2h"]).unwrap();
        assert_eq!((config.claim_hold, config.max_claim_segments), (Duration::from_secs(90), 8));
        assert_eq!(config.partial_lifetime, Duration::from_secs(7200));
        assert!(parse(&["--max-claim-segments", "0"]).unwrap_err().contains("at least 1"));
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes("512M"), Some(512 << 20));
        assert_eq!(parse_bytes("8g"), Some(8 << 30));
        assert_eq!(parse_bytes("8X"), None);
        assert_eq!(parse_bytes("99999999999T"), None);
        assert_eq!(format_bytes(8 << 30), "8G");
        assert_eq!(format_bytes(1000), "1000");
        let config = parse(&["--max-file-size", "1M", "--min-free-disk", "0"]).unwrap();
        assert_eq!((config.max_file_size, config.min_free_disk), (1 << 20, 0));
    }

    #[test]
    fn bad_flags_are_explained() {
        assert_eq!(
            parse(&["--workers", "x"]).unwrap_err(),
            "invalid --workers 'x': expected a number of threads"
        );
        assert!(
            parse(&["--max-clients", "9", "--workers", "8"])
                .unwrap_err()
                .contains("every connected client holds a worker")
        );
        assert!(parse(&["--default-expiry", "40d"]).unwrap_err().contains("at most --max-expiry"));
        assert!(parse(&["--idle-timeout", "soon"]).unwrap_err().contains("expected a duration"));
        assert!(parse(&["--tls", "on"]).unwrap_err().contains("expected off, optional or required"));
        assert!(parse(&["--tls-cert", "c.pem"]).unwrap_err().contains("go together"));
        assert_eq!(parse(&["--bogus"]).unwrap_err(), "unknown option '--bogus' (see --help)");
        assert!(parse(&["--passive-ports", "3000-2000"]).unwrap_err().contains("MIN <= MAX"));
        assert!(parse(&["--passive-ports", "0-10"]).unwrap_err().contains("expected MIN-MAX"));
        assert!(parse(&["--public-host", "a b"]).unwrap_err().starts_with("invalid --public-host"));
    }

    #[test]
    fn operator_flags_are_read() {
        let config = parse(&[
            "--shutdown-grace",
            "5s",
            "--passive-ports",
            "30000-30009",
            "--public-host",
            "share.example.org:2121",
        ])
        .unwrap();
        assert_eq!(config.shutdown_grace, Duration::from_secs(5));
        assert_eq!(config.passive_ports, Some(PortRange { min: 30000, max: 30009 }));
        let public = config.public_host.unwrap();
        assert_eq!((public.host.as_str(), public.port), ("share.example.org", Some(2121)));
        assert_eq!(parse(&[]).unwrap().shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
    }
}
