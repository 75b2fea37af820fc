//! The quorum coordinator actor: a thin shell around [`Coordinator`](super::core::Coordinator).
//! It turns messages into core events, carries out the effects the core returns (starting
//! aggregators, answering clients), and keeps the one piece of state the core must not see:
//! the address of each slave's proxy.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use actix::prelude::{Actor, Addr, AsyncContext, Context, Handler, Message, Recipient, Supervised};

use net::{
    ClientOp, ClientReply, Epoch, Incarnation, Key, NodeId, RequestId, ServerRole, SlaveStatus, StatusReport, Version,
    WireError,
};

use super::core::{Coordinator, Effect, Found, Op, Target};
use super::read_aggregator::{Purpose, ReadAggregator};
use super::slave_proxy::{Retire, SlaveProxy};
use super::wal_writer::{Append, LogEntry, SnapshotDue, WalWriter, WriteSnapshot};
use super::write_aggregator::{Completion, WriteAggregator};
use super::MasterConfig;

/// How often the coordinator looks for background work even when nothing changed.
const MAINTENANCE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Whoever waits for the answer to a client request.
pub struct Caller {
    pub id: RequestId,
    pub reply: Recipient<ClientDone>,
}

impl Caller {
    pub fn answer(self, result: Result<ClientReply, WireError>) {
        self.reply.do_send(ClientDone { id: self.id, result });
    }
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Caller({})", self.id)
    }
}

/// The answer to a client request, sent to its connection actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClientDone {
    pub id: RequestId,
    pub result: Result<ClientReply, WireError>,
}

/// A client request, from a connection actor (native or, later, another protocol).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Execute {
    pub id: RequestId,
    pub op: ClientOp,
    pub reply: Recipient<ClientDone>,
}

/// A slave completed its handshake; `proxy` now speaks for it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SlaveJoined {
    pub node: NodeId,
    pub incarnation: Incarnation,
    pub max_version: Version,
    pub keys: u64,
    pub addr: SocketAddr,
    pub conn: u64,
    pub proxy: Addr<SlaveProxy>,
}

/// The proxy of connection `conn` to `node` stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SlaveLeft {
    pub node: NodeId,
    pub conn: u64,
}

/// A heartbeat answer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SlaveStats {
    pub node: NodeId,
    pub conn: u64,
    pub keys: u64,
}

/// A discovery finished.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Discovered {
    pub key: Key,
    pub found: Vec<Found>,
    pub complete: bool,
}

/// A seeding finished.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Seeded {
    pub key: Key,
    pub ok: bool,
}

/// A background refill finished.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Refilled {
    pub key: Key,
    pub node: NodeId,
    pub incarnation: Incarnation,
    pub ok: bool,
}

/// A refilling replica acknowledged a write or a repair of `key`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Revalidated {
    pub key: Key,
    pub node: NodeId,
    pub incarnation: Incarnation,
}

/// The coordinator's epoch and role, for handshakes.
#[derive(Message)]
#[rtype(result = "NodeView")]
pub struct Describe;

#[derive(Debug, Clone, Copy, actix::MessageResponse)]
pub struct NodeView {
    pub epoch: Epoch,
    pub role: ServerRole,
}

struct SlaveHandle {
    proxy: Addr<SlaveProxy>,
    conn: u64,
    addr: SocketAddr,
    keys_held: u64,
}

pub struct CoordinatorActor {
    core: Coordinator<Caller>,
    config: Arc<MasterConfig>,
    slaves: BTreeMap<NodeId, SlaveHandle>,
    wal: Addr<WalWriter>,
}

impl CoordinatorActor {
    /// A coordinator serving `epoch`, starting from the entries recovered from the log.
    pub fn new(
        config: Arc<MasterConfig>,
        epoch: Epoch,
        entries: impl IntoIterator<Item = (Key, net::Entry)>,
        wal: Addr<WalWriter>,
    ) -> Self {
        let mut core = Coordinator::new(epoch, config.replicas, config.seed);
        core.recover(entries);
        CoordinatorActor { core, config, slaves: BTreeMap::new(), wal }
    }

    fn maintain(&mut self, ctx: &mut Context<Self>) {
        let effects = self.core.maintenance(self.config.repair_concurrency);
        self.run(effects, ctx);
    }

    fn run(&mut self, effects: Vec<Effect<Caller>>, ctx: &mut Context<Self>) {
        for effect in effects {
            self.run_one(effect, ctx);
        }
    }

    fn run_one(&mut self, effect: Effect<Caller>, ctx: &mut Context<Self>) {
        let me = ctx.address();
        let timeout = self.config.request_timeout;
        let epoch = self.core.epoch();
        match effect {
            Effect::Reply { token, result } => token.answer(result),
            Effect::Write { token, plan } => {
                let targets = self.resolve(&plan.targets);
                let entry = log_entry(&plan.key, &plan.entry);
                let aggregator =
                    WriteAggregator::new(plan, targets, Completion::Client(token), me, timeout, epoch).start();
                self.wal.do_send(Append { entry, notify: Some(aggregator.recipient()) });
            }
            Effect::Seed { plan } => {
                let targets = self.resolve(&plan.targets);
                WriteAggregator::new(plan, targets, Completion::Seed, me, timeout, epoch).start();
            }
            Effect::Refill { plan } => {
                let targets = self.resolve(&plan.targets);
                let Some((target, _)) = targets.first() else {
                    debug_assert!(false, "a refill has one target");
                    return;
                };
                let completion = Completion::Refill { node: target.node.clone(), incarnation: target.incarnation };
                WriteAggregator::new(plan, targets, completion, me, timeout, epoch).start();
            }
            Effect::Log { key, entry } => {
                self.wal.do_send(Append { entry: log_entry(&key, &entry), notify: None });
            }
            Effect::Read { token, plan } => {
                let targets = self.resolve(&plan.targets);
                ReadAggregator::new(plan.key, targets, plan.needed, Purpose::Client(token), me, timeout, epoch).start();
            }
            Effect::Discover { key, targets } => {
                let needed = targets.len();
                let targets = self.resolve(&targets);
                ReadAggregator::new(key, targets, needed, Purpose::Discover, me, timeout, epoch).start();
            }
        }
    }

    /// Pairs each target with its proxy. The core only names live slaves, and every live slave
    /// has a proxy, so a miss is a bug; the aggregator then counts that target as failed.
    fn resolve(&self, targets: &[Target]) -> Vec<(Target, Option<Addr<SlaveProxy>>)> {
        targets
            .iter()
            .map(|t| {
                let proxy = self.slaves.get(&t.node).map(|h| h.proxy.clone());
                debug_assert!(proxy.is_some(), "live slave {} has no proxy", t.node);
                (t.clone(), proxy)
            })
            .collect()
    }

    fn status(&self) -> StatusReport {
        let map = self.core.map_status();
        StatusReport {
            node: self.config.node.clone(),
            role: ServerRole::Master,
            epoch: self.core.epoch(),
            replicas: self.core.replicas() as u32,
            keys: map.keys,
            under_replicated: map.under_replicated,
            slaves: self
                .slaves
                .iter()
                .map(|(node, handle)| SlaveStatus {
                    id: node.clone(),
                    addr: handle.addr.to_string(),
                    keys_held: handle.keys_held,
                    keys_placed: map.placed.get(node).copied().unwrap_or(0),
                })
                .collect(),
        }
    }
}

fn log_entry(key: &Key, entry: &net::Entry) -> LogEntry {
    LogEntry::Write { version: entry.version, key: key.clone(), value: entry.value.clone() }
}

impl Actor for CoordinatorActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(MAINTENANCE_INTERVAL, |act, ctx| act.maintain(ctx));
        self.maintain(ctx);
    }
}

impl Supervised for CoordinatorActor {}

impl Handler<Execute> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: Execute, ctx: &mut Context<Self>) {
        let caller = Caller { id: msg.id, reply: msg.reply };
        let (key, op) = match msg.op {
            ClientOp::Get { key } => (key, Op::Get),
            ClientOp::Put { key, value } => (key, Op::Put(value)),
            ClientOp::Del { key } => (key, Op::Del),
            ClientOp::Status => return caller.answer(Ok(ClientReply::Status(self.status()))),
        };
        let effects = self.core.submit(key, op, caller);
        self.run(effects, ctx);
    }
}

impl Handler<SlaveJoined> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: SlaveJoined, ctx: &mut Context<Self>) {
        tracing::info!(slave = %msg.node, addr = %msg.addr, keys = msg.keys, "slave joined");
        let handle = SlaveHandle { proxy: msg.proxy, conn: msg.conn, addr: msg.addr, keys_held: msg.keys };
        if let Some(old) = self.slaves.insert(msg.node.clone(), handle) {
            tracing::info!(slave = %msg.node, "replacing the slave's older connection");
            old.proxy.do_send(Retire);
        }
        self.core.slave_joined(msg.node, msg.incarnation, msg.max_version);
        self.maintain(ctx);
    }
}

impl Handler<SlaveLeft> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: SlaveLeft, _ctx: &mut Context<Self>) {
        if self.slaves.get(&msg.node).is_some_and(|h| h.conn == msg.conn) {
            tracing::warn!(slave = %msg.node, "slave dropped from membership");
            self.slaves.remove(&msg.node);
            self.core.slave_left(&msg.node);
        }
    }
}

impl Handler<SlaveStats> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: SlaveStats, _ctx: &mut Context<Self>) {
        if let Some(handle) = self.slaves.get_mut(&msg.node).filter(|h| h.conn == msg.conn) {
            handle.keys_held = msg.keys;
        }
    }
}

impl Handler<Discovered> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: Discovered, ctx: &mut Context<Self>) {
        let effects = self.core.discovered(msg.key, msg.found, msg.complete);
        self.run(effects, ctx);
        self.maintain(ctx);
    }
}

impl Handler<Seeded> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: Seeded, ctx: &mut Context<Self>) {
        let effects = self.core.seeded(msg.key, msg.ok);
        self.run(effects, ctx);
        self.maintain(ctx);
    }
}

impl Handler<Refilled> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: Refilled, ctx: &mut Context<Self>) {
        self.core.refilled(&msg.key, &msg.node, msg.incarnation, msg.ok);
        self.maintain(ctx);
    }
}

impl Handler<SnapshotDue> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, _msg: SnapshotDue, _ctx: &mut Context<Self>) {
        self.wal.do_send(WriteSnapshot { epoch: self.core.epoch(), entries: self.core.entries() });
    }
}

impl Handler<Revalidated> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: Revalidated, _ctx: &mut Context<Self>) {
        self.core.revalidate(&msg.key, &msg.node, msg.incarnation);
    }
}

impl Handler<Describe> for CoordinatorActor {
    type Result = NodeView;

    fn handle(&mut self, _msg: Describe, _ctx: &mut Context<Self>) -> NodeView {
        NodeView { epoch: self.core.epoch(), role: ServerRole::Master }
    }
}
