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
pub mod write_aggregator;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::{Addr, Supervisor};
use net::{Epoch, NodeId};
use tokio::net::TcpListener;

pub use coordinator::CoordinatorActor;
pub use slave_proxy::Heartbeat;

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
}

/// A running master.
pub struct Master {
    pub addr: SocketAddr,
    pub coordinator: Addr<CoordinatorActor>,
}

/// Binds `listen` and starts the master's actors on the current actix system.
pub async fn start_master(listen: &str, config: MasterConfig) -> std::io::Result<Master> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let config = Arc::new(config);
    let core_config = config.clone();
    let coordinator = Supervisor::start(move |_| CoordinatorActor::new(core_config, Epoch(1)));
    actix_rt::spawn(listener::serve(listener, coordinator.clone(), config));
    Ok(Master { addr, coordinator })
}
