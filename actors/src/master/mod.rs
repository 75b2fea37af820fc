//! The master: a listener, a connection actor per client, a proxy per slave, the quorum
//! coordinator and its short-lived aggregators.

pub mod client_session;
pub mod coordinator;
pub mod core;
pub mod listener;
pub mod placement;
pub mod quorum;
pub mod read_aggregator;
pub mod slave_proxy;
pub mod wal_writer;
pub mod write_aggregator;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::{Addr, Supervisor};
use net::{Epoch, NodeId};
use tokio::net::TcpListener;

pub use coordinator::CoordinatorActor;
pub use slave_proxy::Heartbeat;
pub use wal_writer::{WalConfig, WalWriter};

use crate::error::Error;
use crate::wal::{recover, DataDir};
use wal_writer::{AppendDurable, LogEntry, SnapshotsFrom};

/// Everything a master needs to know at start.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    pub node: NodeId,
    /// Replication factor R: a new key is placed on this many slaves (fewer if fewer live).
    pub replicas: usize,
    /// How long a quorum read or write may take before the client gets an error.
    pub request_timeout: Duration,
    /// Slave heartbeats: ping interval and silence that drops a slave.
    pub heartbeat: Heartbeat,
    /// How long a new connection may take to send its `Hello`.
    pub handshake_timeout: Duration,
    /// Seed for placement.
    pub seed: u64,
    /// Background refills and placements in flight at once, so repair never crowds out
    /// clients; 0 leaves repair to reads.
    pub repair_concurrency: usize,
    /// Where the write-ahead log and snapshots live.
    pub data_dir: PathBuf,
    pub wal: WalConfig,
}

/// A running master.
pub struct Master {
    pub addr: SocketAddr,
    pub epoch: Epoch,
    pub coordinator: Addr<CoordinatorActor>,
    pub wal: Addr<WalWriter>,
}

/// Recovers the data directory, makes a new epoch durable, binds `listen` and starts the
/// master's actors on the current actix system.
pub async fn start_master(listen: &str, config: MasterConfig) -> Result<Master, Error> {
    let listener = TcpListener::bind(listen).await.map_err(|e| Error::io(format!("cannot listen on {listen}"), e))?;
    let addr = listener.local_addr().map_err(|e| Error::io("cannot read the listening address", e))?;
    let path = config.data_dir.clone();
    let (dir, recovered) = actix_rt::task::spawn_blocking(move || {
        let dir = DataDir::open(&path)?;
        let recovered = recover(&dir)?;
        Ok::<_, Error>((dir, recovered))
    })
    .await
    .map_err(|e| Error::io("recovery panicked", std::io::Error::other(e.to_string())))??;
    let epoch = Epoch(recovered.epoch.0.max(recovered.max_version.epoch.0) + 1);
    tracing::info!(keys = recovered.entries.len(), next_lsn = recovered.next_lsn.0, %epoch, "recovered");
    let wal = WalWriter::start(Arc::new(dir), &recovered, config.wal)?;
    wal.send(AppendDurable(LogEntry::Epoch(epoch)))
        .await
        .map_err(|e| Error::io("the log writer stopped", std::io::Error::other(e.to_string())))?
        .map_err(|e| Error::io("cannot record the new epoch", std::io::Error::other(e)))?;
    let config = Arc::new(config);
    let (core_config, core_wal) = (config.clone(), wal.clone());
    let entries = recovered.entries;
    let coordinator = Supervisor::start(move |_| CoordinatorActor::new(core_config, epoch, entries, core_wal));
    wal.do_send(SnapshotsFrom(coordinator.clone().recipient()));
    actix_rt::spawn(listener::serve(listener, coordinator.clone(), config));
    Ok(Master { addr, epoch, coordinator, wal })
}
