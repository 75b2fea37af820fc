//! The node actor: which role this master-capable process plays right now, and the supervisor
//! of that role. As a standby it only tells the listener whom to point clients at. When the
//! standby takes over, the node starts the quorum coordinator from the standby's replayed state
//! (promotion is a restart of the coordinator from the log), turns on log shipping, and from
//! then on the listener hands connections to the coordinator.

use std::sync::Arc;

use std::time::Duration;

use actix::prelude::{Actor, Addr, AsyncContext, Context, Handler, Message, MessageResult, Supervisor, WrapFuture};

use net::{Entry, Epoch, Key, Lsn, PeerRole, ServerRole};

use crate::dial::dial;
use crate::master::coordinator::{CoordinatorActor, Deposed, SlaveWait};
use crate::master::wal_writer::{ShipFromNowOn, SnapshotsFrom, WalWriter};
use crate::master::MasterConfig;

enum Role {
    /// Deciding, or following `master` (if known).
    Standby {
        master: Option<String>,
        master_redis: Option<String>,
    },
    Master {
        coordinator: Addr<CoordinatorActor>,
        wal: Addr<WalWriter>,
    },
}

pub struct NodeActor {
    config: Arc<MasterConfig>,
    role: Role,
    epoch: Epoch,
    last_lsn: Lsn,
}

impl NodeActor {
    pub fn new(config: Arc<MasterConfig>, epoch: Epoch, last_lsn: Lsn) -> Self {
        NodeActor { config, role: Role::Standby { master: None, master_redis: None }, epoch, last_lsn }
    }
}

impl NodeActor {
    /// As master, asks the peer what it is: a peer that serves in a newer epoch took over while
    /// this node was cut off or paused, and this node must step down.
    fn check_peer(&mut self, ctx: &mut Context<Self>) {
        let (Role::Master { coordinator, .. }, Some(peer)) = (&self.role, self.config.peer.clone()) else { return };
        let coordinator = coordinator.clone();
        let me = PeerRole::Peer { id: self.config.node.clone(), epoch: self.epoch, last_lsn: self.last_lsn };
        let ours = self.epoch;
        let credentials = self.config.credentials.clone();
        ctx.spawn(
            async move {
                if let Ok(dialed) = dial(&peer, me, Duration::from_millis(500), &credentials).await {
                    let theirs = dialed.welcome;
                    if theirs.role == ServerRole::Master && theirs.epoch > ours {
                        coordinator.do_send(Deposed { epoch: theirs.epoch });
                    }
                }
            }
            .into_actor(self),
        );
    }
}

impl Actor for NodeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.config.standby_heartbeat * 2, |act, ctx| act.check_peer(ctx));
    }
}

/// What the listener needs to route a connection.
#[derive(Clone)]
pub struct NodeView {
    pub role: ServerRole,
    pub epoch: Epoch,
    pub last_lsn: Lsn,
    /// Where clients should go when this node is not master.
    pub master: Option<String>,
    /// Where Redis clients should go when this node is not master (if known).
    pub master_redis: Option<String>,
    pub serving: Option<(Addr<CoordinatorActor>, Addr<WalWriter>)>,
}

#[derive(Message)]
#[rtype(result = "NodeView")]
pub struct Describe;

/// The standby follows `master`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Following {
    pub master: String,
    /// The master's Redis-protocol address, if it serves one.
    pub redis: Option<String>,
    pub epoch: Epoch,
    pub last_lsn: Lsn,
}

/// Serve as master in `epoch` (already durable in `wal`), from `entries`; wait for
/// `wait_for` slaves' inventories first.
#[derive(Message)]
#[rtype(result = "Addr<CoordinatorActor>")]
pub struct Promote {
    pub epoch: Epoch,
    pub entries: std::collections::HashMap<Key, Entry>,
    pub wal: Addr<WalWriter>,
    pub wait: SlaveWait,
}

impl Handler<Describe> for NodeActor {
    type Result = MessageResult<Describe>;

    fn handle(&mut self, _msg: Describe, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(match &self.role {
            Role::Standby { master, master_redis } => NodeView {
                role: ServerRole::Standby,
                epoch: self.epoch,
                last_lsn: self.last_lsn,
                master: master.clone().or_else(|| self.config.peer.clone()),
                master_redis: master_redis.clone(),
                serving: None,
            },
            Role::Master { coordinator, wal } => NodeView {
                role: ServerRole::Master,
                epoch: self.epoch,
                last_lsn: self.last_lsn,
                master: None,
                master_redis: self.config.redis.as_ref().map(|r| r.advertised.clone()),
                serving: Some((coordinator.clone(), wal.clone())),
            },
        })
    }
}

impl Handler<Following> for NodeActor {
    type Result = ();

    fn handle(&mut self, msg: Following, _ctx: &mut Context<Self>) {
        self.epoch = self.epoch.max(msg.epoch);
        self.last_lsn = msg.last_lsn;
        if let Role::Standby { master, master_redis } = &mut self.role {
            *master = Some(msg.master);
            *master_redis = msg.redis;
        }
    }
}

impl Handler<Promote> for NodeActor {
    type Result = MessageResult<Promote>;

    fn handle(&mut self, msg: Promote, _ctx: &mut Context<Self>) -> Self::Result {
        tracing::info!(epoch = %msg.epoch, keys = msg.entries.len(), wait = ?msg.wait, "serving as master");
        let Promote { epoch, entries, wal, wait } = msg;
        let (config, coordinator_wal) = (self.config.clone(), wal.clone());
        let coordinator =
            Supervisor::start(move |_| CoordinatorActor::new(config, epoch, entries, coordinator_wal, wait));
        wal.do_send(ShipFromNowOn);
        wal.do_send(SnapshotsFrom(coordinator.clone().recipient()));
        self.epoch = epoch;
        self.role = Role::Master { coordinator: coordinator.clone(), wal };
        MessageResult(coordinator)
    }
}
