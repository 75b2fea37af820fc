//! The master: a listener, a connection actor per client, a proxy per slave, the quorum
//! coordinator and its short-lived aggregators.

pub mod backup_session;
pub mod client_session;
pub mod coordinator;
pub mod core;
pub mod inventory;
pub mod keytable;
pub mod listener;
pub mod placement;
pub mod quorum;
pub mod read_aggregator;
pub mod slave_proxy;
pub mod wal_writer;
pub mod write_aggregator;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use net::NodeId;

use crate::outbox::OutputLimits;
use crate::security::{Credentials, Gate};

pub use coordinator::CoordinatorActor;
pub use slave_proxy::Heartbeat;
pub use wal_writer::{WalConfig, WalWriter};

/// Runs when a master learns that a newer one exists: the process steps down (the `nodes`
/// binary restarts itself, and comes back as the new master's standby).
#[derive(Clone)]
pub struct StepDown(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for StepDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StepDown")
    }
}

/// Everything a master-capable node needs to know at start.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    pub node: NodeId,
    /// Replication factor R: a new key is placed on this many slaves (fewer only while the
    /// recorded membership has fewer; never fewer because slaves are away).
    pub replicas: usize,
    /// How long a quorum read or write may take before the client gets an error.
    pub request_timeout: Duration,
    /// Slave heartbeats: ping interval and silence that drops a slave.
    pub heartbeat: Heartbeat,
    /// How long a new connection may take to send its `Hello`.
    pub handshake_timeout: Duration,
    /// Open connections each listener accepts at most (native and Redis alike).
    pub max_connections: usize,
    /// Output a connection may hold that its peer has not read (every listener's connections,
    /// and the standby's link to its master).
    pub output: OutputLimits,
    /// Seed for placement.
    pub seed: u64,
    /// Background refills and placements in flight at once, so repair never crowds out
    /// clients; 0 leaves repair to reads.
    pub repair_concurrency: usize,
    /// Where the write-ahead log and snapshots live.
    pub data_dir: PathBuf,
    pub wal: WalConfig,
    /// The other master-capable node (the backup of a master, the master of a backup).
    pub peer: Option<String>,
    /// Campaign when the peer cannot be reached at start (`nodes master`), and win ties; otherwise
    /// follow it (and campaign only once no master appears).
    pub prefer_master: bool,
    /// A standby's heartbeat to its master.
    pub standby_heartbeat: Duration,
    /// Silence from the master after which the standby takes over.
    pub failover_after: Duration,
    /// How long to try reaching the peer at start.
    pub peer_wait: Duration,
    pub step_down: Option<StepDown>,
    /// The Redis-protocol endpoint, if it is on.
    pub redis: Option<RedisConfig>,
    /// What the node's listeners demand of those who connect (cluster key, client password)
    /// and the TLS they offer.
    pub gate: Arc<Gate>,
    /// What the node presents when it connects to its peer (cluster key, TLS).
    pub credentials: Credentials,
}

/// The Redis-protocol endpoint and its Sentinel-compatible discovery.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Where to serve RESP (`None`: the endpoint is off).
    pub listen: String,
    /// Where to answer Sentinel queries (`None`: off).
    pub sentinel_listen: Option<String>,
    /// The name Sentinel clients ask for (`mymaster` by default).
    pub cluster_name: String,
    /// The address Redis clients reach this node at: the bound address, filled in at start.
    pub advertised: String,
}
