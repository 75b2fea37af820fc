//! The quorum coordinator actor: a thin shell around [`Coordinator`](super::core::Coordinator).
//! It turns messages into core events, carries out the effects the core returns (starting
//! aggregators, answering clients), and keeps the one piece of state the core must not see:
//! the address of each slave's proxy.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use actix::prelude::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult, Recipient, Supervised,
    WrapFuture,
};

use net::{
    ClientOp, ClientReply, Entry, Epoch, Incarnation, Key, Lsn, NodeId, RequestId, ServerRole, SlaveStatus,
    StandbyStatus, StatusReport, Version, WireError,
};

use super::core::{Coordinator, Effect, Found, Op, Target, WritePlan};
use super::inventory::InventoryReader;
use super::read_aggregator::{Purpose, ReadAggregator};
use super::slave_proxy::{Retire, SlaveProxy};
use super::wal_writer::{Append, LogEntry, SnapshotDue, Stats, WalWriter, WriteSnapshot};
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

/// A write aggregator crashed: start its write again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RestartWrite {
    pub plan: WritePlan,
    pub completion: Completion,
    /// Its record was already reported durable.
    pub durable: bool,
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

/// A slave's whole inventory, read for a takeover.
#[derive(Message)]
#[rtype(result = "()")]
pub struct InventoryDone {
    pub node: NodeId,
    pub incarnation: Incarnation,
    pub entries: Vec<(Key, Entry)>,
    pub ok: bool,
}

/// A slave or a peer has accepted `epoch`, newer than this master's: step down.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deposed {
    pub epoch: Epoch,
}

/// The coordinator's epoch and every key's newest entry, for a standby's snapshot.
#[derive(Message)]
#[rtype(result = "(Epoch, Vec<(Key, Entry)>)")]
pub struct StateCopy;

/// The live slaves, for the standby (it waits for enough of them if it takes over).
#[derive(Message)]
#[rtype(result = "Vec<NodeId>")]
pub struct LiveSlaves;

/// The live slaves changed; sent to whoever asked with [`WatchSlaves`].
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct SlaveList(pub Vec<NodeId>);

/// Tell `0` the live slaves now and whenever they change (a standby's session).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchSlaves(pub Recipient<SlaveList>);

/// The standby connected, acknowledged `acked`, or left (`acked: None`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StandbyState {
    pub standby: NodeId,
    pub acked: Option<Lsn>,
}

/// How many slaves a new master reads before it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaveWait {
    pub slaves: usize,
    /// Give up waiting after `takeover_wait` and serve with the slaves read so far: only when
    /// the slave population is unknown (a master restarting alone), since serving early can miss
    /// writes that only slaves still away hold.
    pub deadline: bool,
}

/// A takeover in progress: commands wait until enough slaves have been read.
struct Takeover {
    needed: usize,
    /// Serve with fewer after `takeover_wait` (when the slave population is unknown).
    deadline: bool,
    found: HashMap<Key, Vec<Found>>,
    read: BTreeSet<NodeId>,
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
    /// Until a takeover has read enough slaves, commands wait in `held`.
    takeover: Option<Takeover>,
    held: Vec<(std::time::Instant, Execute)>,
    standby: Option<(NodeId, Lsn)>,
    deposed: bool,
    watchers: Vec<Recipient<SlaveList>>,
    aggregator_restarts: u64,
}

impl CoordinatorActor {
    /// A coordinator serving `epoch`, starting from the entries recovered from the log (or
    /// replayed by a standby). It serves once it has read the inventory of `wait_for_slaves`
    /// slaves, so that writes a majority of slaves acknowledged but the log lacks are found.
    pub fn new(
        config: Arc<MasterConfig>,
        epoch: Epoch,
        entries: impl IntoIterator<Item = (Key, net::Entry)>,
        wal: Addr<WalWriter>,
        wait: SlaveWait,
    ) -> Self {
        let mut core = Coordinator::new(epoch, config.replicas, config.seed);
        core.recover(entries);
        let takeover = (wait.slaves > 0).then(|| Takeover {
            needed: wait.slaves,
            deadline: wait.deadline,
            found: HashMap::new(),
            read: BTreeSet::new(),
        });
        CoordinatorActor {
            core,
            config,
            slaves: BTreeMap::new(),
            wal,
            takeover,
            held: Vec::new(),
            standby: None,
            deposed: false,
            watchers: Vec::new(),
            aggregator_restarts: 0,
        }
    }

    /// Every key found by the takeover is adopted (the newest version wins, and versions newer
    /// than the log's are logged); then the held commands run.
    fn finish_takeover(&mut self, ctx: &mut Context<Self>) {
        let Some(takeover) = self.takeover.take() else { return };
        tracing::info!(slaves = takeover.read.len(), keys = takeover.found.len(), "takeover read its slaves; serving");
        for (key, found) in takeover.found {
            let effects = self.core.adopt(key, found);
            self.run(effects, ctx);
        }
        self.expire_held();
        for (_, msg) in std::mem::take(&mut self.held) {
            self.execute(msg, ctx);
        }
        self.maintain(ctx);
    }

    /// Commands held longer than the request timeout are refused (nothing was done): their
    /// clients have given up, and running them much later would only surprise them.
    fn expire_held(&mut self) {
        let timeout = self.config.request_timeout;
        let (expired, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.held).into_iter().partition(|(at, _)| at.elapsed() > timeout);
        self.held = kept;
        for (_, msg) in expired {
            let caller = Caller { id: msg.id, reply: msg.reply };
            caller.answer(Err(WireError::unavailable("the new master is still waiting for its slaves")));
        }
    }

    fn execute(&mut self, msg: Execute, ctx: &mut Context<Self>) {
        let caller = Caller { id: msg.id, reply: msg.reply };
        if self.deposed {
            return caller.answer(Err(WireError::NotMaster { master: self.config.peer.clone() }));
        }
        let (key, op) = match msg.op {
            ClientOp::Get { key } => (key, Op::Get),
            ClientOp::Put { key, value } => (key, Op::Put(value)),
            ClientOp::Del { key } => (key, Op::Del),
            ClientOp::Status => {
                let wal = self.wal.send(Stats);
                ctx.spawn(wal.into_actor(self).map(move |stats, act, _| {
                    let durable = stats.map(|s| s.durable).unwrap_or_default();
                    caller.answer(Ok(ClientReply::Status(act.status(durable))));
                }));
                return;
            }
            ClientOp::Ping => return caller.answer(Ok(ClientReply::Pong)),
        };
        let effects = self.core.submit(key, op, caller);
        self.run(effects, ctx);
    }

    fn tell_watchers(&mut self) {
        self.watchers.retain(|w| w.connected());
        let list = SlaveList(self.slaves.keys().cloned().collect());
        for watcher in &self.watchers {
            watcher.do_send(list.clone());
        }
    }

    fn maintain(&mut self, ctx: &mut Context<Self>) {
        if self.takeover.is_some() {
            self.expire_held();
        }
        if self.takeover.is_some() || self.deposed {
            return;
        }
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

    fn status(&self, durable: Lsn) -> StatusReport {
        let map = self.core.map_status();
        StatusReport {
            node: self.config.node.clone(),
            role: ServerRole::Master,
            epoch: self.core.epoch(),
            replicas: self.core.replicas() as u32,
            keys: map.keys,
            values: map.values,
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
            last_lsn: durable,
            standby: self.standby.as_ref().map(|(id, acked)| StandbyStatus {
                id: id.clone(),
                acked_lsn: *acked,
                lag: durable.0.saturating_sub(acked.0),
            }),
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
        if self.takeover.as_ref().is_some_and(|t| t.deadline) {
            ctx.run_later(self.config.takeover_wait, |act, ctx| {
                if let Some(takeover) = &act.takeover {
                    tracing::warn!(
                        read = takeover.read.len(),
                        wanted = takeover.needed,
                        "too few slaves came back in time; serving with what was read"
                    );
                    act.finish_takeover(ctx);
                }
            });
        }
        self.maintain(ctx);
    }
}

impl Supervised for CoordinatorActor {
    /// A stopped coordinator comes back with its state (actix keeps the actor's value): the key
    /// map, versions and waiting commands survive, and its timers start again in `started`.
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        tracing::warn!("the coordinator restarts");
    }
}

impl Handler<Execute> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: Execute, ctx: &mut Context<Self>) {
        if matches!(msg.op, ClientOp::Put { .. }) {
            fail::fail_point!("coordinator-crash", |_| {
                // The command is lost with the crash; its client sees a timeout (outcome unknown).
                tracing::error!("injected coordinator crash");
                actix::ActorContext::stop(ctx);
            });
        }
        if self.takeover.is_some() && !matches!(msg.op, ClientOp::Status) {
            self.held.push((std::time::Instant::now(), msg));
            return;
        }
        self.execute(msg, ctx);
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
        self.core.slave_joined(msg.node.clone(), msg.incarnation, msg.max_version);
        self.tell_watchers();
        if self.takeover.is_some() {
            let proxy = self.slaves[&msg.node].proxy.clone();
            InventoryReader::new(msg.node, msg.incarnation, proxy, self.core.epoch(), ctx.address()).start();
        }
        self.maintain(ctx);
    }
}

impl Handler<InventoryDone> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: InventoryDone, ctx: &mut Context<Self>) {
        let Some(takeover) = self.takeover.as_mut() else { return };
        if !msg.ok || !self.slaves.contains_key(&msg.node) {
            return;
        }
        tracing::info!(slave = %msg.node, keys = msg.entries.len(), "read a slave's inventory");
        for (key, entry) in msg.entries {
            let found = Found { node: msg.node.clone(), incarnation: msg.incarnation, entry: Some(entry) };
            takeover.found.entry(key).or_default().push(found);
        }
        takeover.read.insert(msg.node);
        if takeover.read.len() >= takeover.needed {
            self.finish_takeover(ctx);
        }
    }
}

impl Handler<Deposed> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: Deposed, _ctx: &mut Context<Self>) {
        if msg.epoch <= self.core.epoch() || self.deposed {
            return;
        }
        if crate::mutation::fencing_off() {
            tracing::error!(newer = %msg.epoch, "mutation-no-fencing: ignoring a newer master");
            return;
        }
        tracing::error!(ours = %self.core.epoch(), newer = %msg.epoch, "a newer master exists; stepping down");
        self.deposed = true;
        for (_, handle) in std::mem::take(&mut self.slaves) {
            handle.proxy.do_send(Retire);
        }
        for (_, msg) in std::mem::take(&mut self.held) {
            let caller = Caller { id: msg.id, reply: msg.reply };
            caller.answer(Err(WireError::NotMaster { master: self.config.peer.clone() }));
        }
        if let Some(step_down) = &self.config.step_down {
            (step_down.0)();
        }
    }
}

impl Handler<StateCopy> for CoordinatorActor {
    type Result = MessageResult<StateCopy>;

    fn handle(&mut self, _msg: StateCopy, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult((self.core.epoch(), self.core.entries()))
    }
}

impl Handler<LiveSlaves> for CoordinatorActor {
    type Result = MessageResult<LiveSlaves>;

    fn handle(&mut self, _msg: LiveSlaves, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.slaves.keys().cloned().collect())
    }
}

impl Handler<WatchSlaves> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: WatchSlaves, _ctx: &mut Context<Self>) {
        msg.0.do_send(SlaveList(self.slaves.keys().cloned().collect()));
        self.watchers.push(msg.0);
    }
}

impl Handler<StandbyState> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: StandbyState, _ctx: &mut Context<Self>) {
        self.standby = msg.acked.map(|acked| (msg.standby, acked));
    }
}

impl Handler<SlaveLeft> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: SlaveLeft, _ctx: &mut Context<Self>) {
        if self.slaves.get(&msg.node).is_some_and(|h| h.conn == msg.conn) {
            tracing::warn!(slave = %msg.node, "slave dropped from membership");
            self.slaves.remove(&msg.node);
            self.core.slave_left(&msg.node);
            self.tell_watchers();
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

impl Handler<RestartWrite> for CoordinatorActor {
    type Result = ();

    /// The coordinator supervises its write aggregators: a crashed one is started again with
    /// the same plan. The version is the same, so replicas that already hold it are unchanged;
    /// a record not yet reported durable is appended again (recovery keeps the newest version).
    fn handle(&mut self, msg: RestartWrite, ctx: &mut Context<Self>) {
        self.aggregator_restarts += 1;
        tracing::warn!(key = %msg.plan.key, restarts = self.aggregator_restarts, "restarting a write aggregator");
        let RestartWrite { plan, completion, durable } = msg;
        let targets = self.resolve(&plan.targets);
        let entry = (plan.log && !durable).then(|| log_entry(&plan.key, &plan.entry));
        let timeout = self.config.request_timeout;
        let aggregator = WriteAggregator::new(plan, targets, completion, ctx.address(), timeout, self.core.epoch());
        let aggregator = if durable { aggregator.already_durable() } else { aggregator }.start();
        if let Some(entry) = entry {
            self.wal.do_send(Append { entry, notify: Some(aggregator.recipient()) });
        }
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
