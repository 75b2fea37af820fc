//! A master-capable node: the process behind `nodes master` and `nodes backup`.
//!
//! At start the node recovers its data directory and hands it to the [`NodeActor`], whose role
//! core (`role/`) decides the rest: it asks the peer (the other master-capable node) what it is,
//! follows a peer that serves (or has the newer log), and otherwise campaigns: it serves only an
//! epoch that enough slaves promised it, after reading what its log may lack. A node that
//! cannot reach its peer decides nothing alone; the slaves' promises arbitrate.

pub mod promise_request;
pub mod role;
pub mod standby;

use std::net::SocketAddr;
use std::sync::Arc;

use actix::prelude::{Actor, Addr};
use tokio::net::TcpListener;

use crate::error::Error;
use crate::master::{listener, MasterConfig};
use crate::resp::{self, session::Shared, Endpoint};
use crate::wal::{recover, DataDir};
use role::NodeActor;

/// How a node that cannot go on asks its process to exit, with a code.
#[derive(Debug, Clone)]
pub struct Exit(tokio::sync::mpsc::UnboundedSender<i32>);

impl Exit {
    pub fn now(&self, code: i32) {
        let _ = self.0.send(code);
    }
}

/// A running master-capable node.
pub struct Node {
    pub addr: SocketAddr,
    pub node: Addr<NodeActor>,
    /// Receives an exit code when the node cannot go on (a log it cannot open, a peer it
    /// cannot trust); the process should exit with it.
    pub exit: tokio::sync::mpsc::UnboundedReceiver<i32>,
    /// The Redis-protocol endpoint, if on.
    pub redis_addr: Option<SocketAddr>,
    /// The Sentinel-compatible endpoint, if on.
    pub sentinel_addr: Option<SocketAddr>,
}

async fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), Error> {
    let listener = TcpListener::bind(addr).await.map_err(|e| Error::io(format!("cannot listen on {addr}"), e))?;
    let bound = listener.local_addr().map_err(|e| Error::io("cannot read the listening address", e))?;
    Ok((listener, bound))
}

/// Binds `listen`, recovers the data directory, and starts the node actor, which decides the
/// node's role.
pub async fn start_node(listen: &str, mut config: MasterConfig) -> Result<Node, Error> {
    let (listener, addr) = bind(listen).await?;
    let mut redis = None;
    let mut sentinel = None;
    if let Some(redis_config) = &mut config.redis {
        let (listener, bound) = bind(&redis_config.listen).await?;
        redis_config.advertised = bound.to_string();
        redis = Some((listener, bound));
        if let Some(listen) = &redis_config.sentinel_listen {
            sentinel = Some(bind(listen).await?);
        }
    }
    let path = config.data_dir.clone();
    let (dir, recovered) = actix_rt::task::spawn_blocking(move || {
        let dir = DataDir::open(&path)?;
        let recovered = recover(&dir)?;
        Ok::<_, Error>((dir, recovered))
    })
    .await
    .map_err(|e| Error::io("recovery panicked", std::io::Error::other(e.to_string())))??;
    let facts = recovered.facts();
    tracing::info!(
        keys = recovered.entries.len(),
        last_lsn = facts.last_lsn.0,
        epoch = %facts.highest_epoch,
        members = facts.members.len(),
        "recovered"
    );
    let config = Arc::new(config);
    crate::stall::watch_event_loop();
    let (exit_tx, exit) = tokio::sync::mpsc::unbounded_channel();
    let node = NodeActor::new(config.clone(), Arc::new(dir), recovered, Exit(exit_tx)).start();
    actix_rt::spawn(listener::serve(listener, node.clone(), config.clone()));
    let redis_addr = redis.as_ref().map(|(_, bound)| *bound);
    let sentinel_addr = sentinel.as_ref().map(|(_, bound)| *bound);
    if let Some(redis_config) = &config.redis {
        for (endpoint, bound) in [(Endpoint::Data, redis), (Endpoint::Sentinel, sentinel)] {
            let Some((listener, _)) = bound else { continue };
            let shared = Shared {
                node: node.clone(),
                node_id: config.node.to_string(),
                config: redis_config.clone(),
                endpoint,
                password: config.gate.client_password.clone(),
                auth_timeout: config.handshake_timeout,
            };
            let accepting = resp::Accepting {
                max_connections: config.max_connections,
                tls: config.gate.tls.clone(),
                handshake_timeout: config.handshake_timeout,
                output: config.output,
            };
            actix_rt::spawn(resp::serve(listener, Arc::new(shared), accepting));
        }
    }
    Ok(Node { addr, node, exit, redis_addr, sentinel_addr })
}
