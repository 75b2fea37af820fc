//! A master-capable node: the process behind `nodes master` and `nodes backup`.
//!
//! At start the node recovers its data directory and asks its peer (the other master-capable
//! node) what it is. If the peer serves as master, this node becomes its standby. If the peer
//! is deciding too, the node with the newer log (epoch, then last LSN; on a tie the node with
//! parity 0) becomes master. If the peer cannot be reached, a node started as `master` serves
//! and one started as `backup` follows (and takes over if no master appears). Either way a new
//! master first reads enough slaves' inventories to find acknowledged writes its log lacks.
//!
//! Each node has a parity (0 for the one first started as master, 1 for the backup), kept in its
//! data directory, and only chooses epochs of its parity, so the two never serve the same epoch.

pub mod role;
pub mod standby;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::{Actor, Addr};
use tokio::net::TcpListener;

use net::{Epoch, Lsn, PeerRole, ServerRole, Welcome};

use crate::dial::dial;
use crate::error::Error;
use crate::master::coordinator::SlaveWait;
use crate::master::quorum::majority;
use crate::master::wal_writer::{AppendDurable, LogEntry, WalWriter};
use crate::master::{listener, MasterConfig};
use crate::resp::{self, session::Shared, Endpoint};
use crate::wal::{recover, DataDir};
use role::{NodeActor, Promote};
use standby::{next_epoch, standby_wal, Standby};

/// A running master-capable node.
pub struct Node {
    pub addr: SocketAddr,
    pub node: Addr<NodeActor>,
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

/// Binds `listen`, recovers the data directory, and starts as master or standby.
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
    let (path, default_parity) = (config.data_dir.clone(), u64::from(!config.prefer_master));
    let (dir, recovered, parity) = actix_rt::task::spawn_blocking(move || {
        let dir = DataDir::open(&path)?;
        let parity = dir.parity(default_parity)?;
        let recovered = recover(&dir)?;
        Ok::<_, Error>((dir, recovered, parity))
    })
    .await
    .map_err(|e| Error::io("recovery panicked", std::io::Error::other(e.to_string())))??;
    let dir = Arc::new(dir);
    let recorded = recovered.epoch.max(recovered.max_version.epoch);
    let last_lsn = Lsn(recovered.next_lsn.0.saturating_sub(1));
    tracing::info!(keys = recovered.entries.len(), last_lsn = last_lsn.0, epoch = %recorded, parity, "recovered");
    let config = Arc::new(config);
    let node = NodeActor::new(config.clone(), recorded, last_lsn).start();
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
            };
            actix_rt::spawn(resp::serve(listener, Arc::new(shared), accepting));
        }
    }

    match decide(&config, recorded, last_lsn, parity).await? {
        Decision::Master => {
            let wal = WalWriter::start(dir, &recovered, config.wal)?;
            let epoch = next_epoch(recorded, parity);
            wal.send(AppendDurable(LogEntry::Epoch(epoch)))
                .await
                .map_err(|e| Error::io("the log writer stopped", std::io::Error::other(e.to_string())))?
                .map_err(|e| Error::io("cannot record the new epoch", std::io::Error::other(e)))?;
            let slaves = if recovered.entries.is_empty() { 0 } else { majority(config.replicas) };
            let entries = recovered.entries;
            node.send(Promote { epoch, entries, wal, wait: SlaveWait { slaves, deadline: true } })
                .await
                .map_err(|e| Error::io("the node stopped", std::io::Error::other(e.to_string())))?;
        }
        Decision::Standby(master) => {
            tracing::info!(%master, "starting as standby");
            let wal = WalWriter::start(dir.clone(), &recovered, standby_wal(&config))?;
            let node_addr = node.clone();
            Standby::new(config.clone(), master, parity, dir, wal, node_addr, recovered).start();
        }
    }
    Ok(Node { addr, node, redis_addr, sentinel_addr })
}

enum Decision {
    Master,
    Standby(String),
}

/// Asks the peer what it is, for up to `peer_wait`, and decides this node's role. A peer that
/// answers but is not trusted (or does not trust this node) is an error: it may be serving, and
/// deciding alone could make two masters.
async fn decide(config: &MasterConfig, epoch: Epoch, last_lsn: Lsn, parity: u64) -> Result<Decision, Error> {
    let Some(peer) = config.peer.clone() else { return Ok(Decision::Master) };
    let me = PeerRole::Peer { id: config.node.clone(), epoch, last_lsn };
    let start = Instant::now();
    let welcome: Option<Welcome> = loop {
        match dial(&peer, me.clone(), Duration::from_millis(500), &config.credentials).await {
            Ok(dialed) => break Some(dialed.welcome),
            Err(err) if err.is_unauthorized() => {
                return Err(Error::BadInput(format!(
                    "the peer at {peer} and this node do not trust each other ({err}); give both the same \
                     --cluster-key-file and certificates from the same CA"
                )));
            }
            Err(err) if start.elapsed() >= config.peer_wait => {
                tracing::info!(%peer, %err, "peer not reachable");
                break None;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    Ok(match welcome {
        Some(w) if w.role == ServerRole::Master => Decision::Standby(peer),
        Some(w) if (w.epoch, w.last_lsn) > (epoch, last_lsn) => Decision::Standby(peer),
        Some(w) if (w.epoch, w.last_lsn) == (epoch, last_lsn) && parity == 1 => Decision::Standby(peer),
        Some(_) => Decision::Master,
        None if config.prefer_master => Decision::Master,
        None => Decision::Standby(peer),
    })
}
