//! The quorum coordinator actor: a thin shell around [`Coordinator`](super::core::Coordinator).
//! It turns messages into core events, carries out the effects the core returns (starting
//! aggregators, answering clients), and keeps the one piece of state the core must not see:
//! the address of each slave's proxy.
//!
//! It starts when its node becomes a candidate (see `role/`): from then on it holds the slaves'
//! connections and tells the node actor about them, reads inventories when the node asks, and
//! holds clients' commands. It serves once the node says `Serve` (the epoch was granted and the
//! takeover's reads are complete), and stops serving for good when the node says
//! `StopServing` (deposed, or its log failed).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::oneshot;

use actix::prelude::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult, Recipient, Supervised,
    WrapFuture,
};

use net::{
    ClientOp, ClientReply, Entry, Epoch, Incarnation, Key, Lsn, MemberStatus, NodeId, RequestId, ServerRole,
    SlaveStatus, StandbyStatus, StatusReport, Version, WireError,
};

use super::backup_session::Retired;
use super::core::{Coordinator, Effect, Found, MapStatus, Op, Target, WritePlan};
use super::inventory::InventoryReader;
use super::keytable::{CensusPass, KeyTable};
use super::read_aggregator::{Purpose, ReadAggregator};
use super::slave_proxy::{Retire, SlaveProxy};
use super::wal_writer::{
    Append, AppendDurable, LogEntry, SnapshotDue, Stats, Synced, SyncedTo, WalWriter, WriteSnapshot,
};
use super::write_aggregator::{Completion, WriteAggregator};
use super::MasterConfig;
use crate::node::role::{NodeActor, RoleState, RoleUpdate};
use crate::role::membership::Membership;
use crate::role::Event;

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
    /// The epoch the slave has promised.
    pub epoch: Epoch,
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

/// One page of a slave's inventory, read for a takeover by reader number `reader`. Pages are
/// merged one message at a time, so a large inventory never holds up the coordinator's other
/// messages (heartbeats, joins) for long.
#[derive(Message)]
#[rtype(result = "()")]
pub struct InventoryPage {
    pub node: NodeId,
    pub incarnation: Incarnation,
    pub reader: u64,
    pub entries: Vec<(Key, Entry)>,
}

/// Reader number `reader` finished `node`'s inventory: all of it (`ok`), or it failed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct InventoryDone {
    pub node: NodeId,
    pub incarnation: Incarnation,
    pub reader: u64,
    pub ok: bool,
}

/// A slave refused a request because it accepted `epoch`, newer than this master's, or
/// promised this master's epoch to another node (`holder`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deposed {
    pub epoch: Epoch,
    pub holder: Option<NodeId>,
    pub slave: NodeId,
}

/// The state a standby's snapshot starts from.
pub struct State {
    pub epoch: Epoch,
    /// The node serving `epoch` (this one).
    pub master: NodeId,
    pub members: Vec<net::MemberRecord>,
    /// A copy of the key map that shares its shards (see `sharded.rs`): taking it costs the
    /// coordinator nothing in proportion to the data set.
    pub entries: KeyTable,
    /// The last stamp issued when the copy was taken: the copy holds every entry a slave was
    /// given with a stamp up to it.
    pub stamp: Version,
}

/// The coordinator's epoch, membership and every key's newest entry, for a standby's snapshot.
#[derive(Message)]
#[rtype(result = "State")]
pub struct StateCopy;

/// From the node: read `node`'s inventory with requests in `epoch` (the granted one).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReadInventory {
    pub node: NodeId,
    pub epoch: Epoch,
}

/// From the node: the takeover's reads are complete. Adopt what they found (appending what
/// the log lacks) and then append the record of `epoch` after it; answer once it is durable.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Prepare {
    pub epoch: Epoch,
}

/// From the node: serve in `epoch` (prepared and recorded).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Serve {
    pub epoch: Epoch,
}

/// From the node: refuse everything from now on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopServing {
    pub reason: String,
}

/// A read returned `entry`, newer than the master's copy when the read was planned; answered
/// with the stamp the read must write to the replicas it counts (see [`Coordinator::read_won`]).
#[derive(Message)]
#[rtype(result = "Version")]
pub struct ReadWon {
    pub key: Key,
    pub entry: Entry,
}

/// The live slaves changed; sent to whoever asked with [`WatchSlaves`].
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct SlaveList(pub Vec<NodeId>);

/// Tell `list` the live slaves now and whenever they change (a standby's session); `retire`
/// ends the session when this coordinator stops serving.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchSlaves {
    pub list: Recipient<SlaveList>,
    pub retire: Recipient<Retired>,
}

/// The standby connected, acknowledged `acked`, or left (`acked: None`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StandbyState {
    pub standby: NodeId,
    pub acked: Option<Lsn>,
}

/// What a candidate's inventory reads found, adopted when it serves.
#[derive(Default)]
struct Takeover {
    found: HashMap<Key, Vec<Found>>,
    read: BTreeSet<NodeId>,
    /// The reader whose pages count for each slave: a slave that reconnects mid-read gets a
    /// new reader, and the superseded one's pages and failure are ignored (its failure would
    /// otherwise make the role core ask again while the new reader runs, and each new reader
    /// restarts the slave's inventory under the other).
    readers: HashMap<NodeId, u64>,
    next_reader: u64,
}

/// How long a count of the key map is reused for `status` at least (see
/// `CoordinatorActor::map_status`).
const CENSUS_REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// The last count of the key map, and the live slaves it was made with.
struct Census {
    at: std::time::Instant,
    took: std::time::Duration,
    live: Vec<(NodeId, Incarnation)>,
    status: MapStatus,
}

/// A map this small is counted at once when `status` needs a count; a larger one a few shards
/// at a time between other messages, so `status` never stalls the coordinator (a single pass
/// over ten million keys took up to 1.6 s, and the slaves' heartbeats went unanswered meanwhile).
const CENSUS_AT_ONCE: usize = 65_536;

/// Shards of the key map one step of a census counts: a sixty-fourth of it.
const CENSUS_SHARDS_A_STEP: usize = crate::sharded::SHARDS / 64;

/// A count of the key map under way, and the `status` requests waiting for it.
struct Counting {
    pass: CensusPass,
    live: Vec<(NodeId, Incarnation)>,
    /// Time spent counting (not waiting between steps).
    spent: std::time::Duration,
    waiters: Vec<oneshot::Sender<()>>,
}

/// Keys adopted before the coordinator yields to the other actors on its thread.
const ADOPT_CHUNK: usize = 4096;

/// A takeover's adoption in progress.
struct Adopting {
    epoch: Epoch,
    found: std::vec::IntoIter<(Key, Vec<Found>)>,
    done: oneshot::Sender<Result<(), String>>,
}

struct SlaveHandle {
    proxy: Addr<SlaveProxy>,
    conn: u64,
    addr: SocketAddr,
    keys_held: u64,
    incarnation: Incarnation,
    max_version: Version,
}

pub struct CoordinatorActor {
    core: Coordinator<Caller>,
    config: Arc<MasterConfig>,
    slaves: BTreeMap<NodeId, SlaveHandle>,
    wal: Addr<WalWriter>,
    node: Addr<NodeActor>,
    /// Until the node says `Serve`, commands wait in `held` and inventories gather here.
    takeover: Option<Takeover>,
    /// After `Prepare`: what is left to adopt.
    adopting: Option<Adopting>,
    held: Vec<(std::time::Instant, Execute)>,
    standby: Option<(NodeId, Lsn)>,
    /// Stopped serving for good, and why.
    stopped: Option<String>,
    /// Why the node does not serve yet, and the epoch it names meanwhile, for `status`.
    waiting: Option<String>,
    role_epoch: Epoch,
    watchers: Vec<WatchSlaves>,
    aggregator_restarts: u64,
    census: Option<Census>,
    counting: Option<Counting>,
}

impl CoordinatorActor {
    /// A coordinator for a candidate, starting from the entries recovered from the log (or
    /// replayed by a standby) and the membership the log recorded. It serves once the node says
    /// so, in the epoch the node was granted.
    pub fn new(
        config: Arc<MasterConfig>,
        entries: KeyTable,
        stamp: Version,
        membership: Membership,
        wal: Addr<WalWriter>,
        node: Addr<NodeActor>,
    ) -> Self {
        let standby_required = config.peer.is_some();
        let mut core =
            Coordinator::new(Epoch(0), config.replicas, config.seed).with_membership(membership, standby_required);
        core.recover_table(entries, stamp);
        CoordinatorActor {
            core,
            config,
            slaves: BTreeMap::new(),
            wal,
            node,
            takeover: Some(Takeover::default()),
            adopting: None,
            held: Vec::new(),
            standby: None,
            stopped: None,
            waiting: Some("a candidate: not granted an epoch yet".to_string()),
            role_epoch: Epoch(0),
            watchers: Vec::new(),
            aggregator_restarts: 0,
            census: None,
            counting: None,
        }
    }

    /// The takeover's reads are complete: every key they found is adopted (the newest version
    /// wins, and versions newer than the log's are appended), on the slaves connected now.
    /// Adoption begins: the core serves `epoch`, the connected slaves count as live, and
    /// what the inventories found is adopted [`ADOPT_CHUNK`] keys at a time, yielding between,
    /// so a large data set never holds up heartbeats and joins for long. `done` is answered
    /// once the epoch's record, appended after every record adoption appended, is durable.
    fn begin_adopting(&mut self, epoch: Epoch, done: oneshot::Sender<Result<(), String>>, ctx: &mut Context<Self>) {
        let Some(takeover) = self.takeover.as_mut() else {
            let _ = done.send(Err("no takeover in progress".to_string()));
            return;
        };
        // Pages that arrive from now on (a superseded reader's) are dropped.
        takeover.readers.clear();
        let found: Vec<(Key, Vec<Found>)> = std::mem::take(&mut takeover.found).into_iter().collect();
        self.core.serve(epoch);
        tracing::info!(%epoch, slaves = takeover.read.len(), keys = found.len(), "adopting what the takeover read");
        let joined: Vec<(NodeId, Incarnation, Version)> =
            self.slaves.iter().map(|(node, h)| (node.clone(), h.incarnation, h.max_version)).collect();
        for (node, incarnation, max_version) in joined {
            self.core.slave_connected(node, incarnation, max_version);
        }
        self.adopting = Some(Adopting { epoch, found: found.into_iter(), done });
        self.adopt_more(ctx);
    }

    /// Adopts the next chunk; after the last one, appends the epoch's record.
    fn adopt_more(&mut self, ctx: &mut Context<Self>) {
        let Some(mut adopting) = self.adopting.take() else { return };
        if let Some(reason) = &self.stopped {
            let _ = adopting.done.send(Err(format!("stopped while adopting: {reason}")));
            return;
        }
        for (key, found) in adopting.found.by_ref().take(ADOPT_CHUNK) {
            let effects = self.core.adopt(key, found);
            self.run(effects, ctx);
        }
        if adopting.found.len() > 0 {
            self.adopting = Some(adopting);
            // A message to itself would be handled in the same poll of this actor; yielding to
            // the runtime first lets the slave proxies and sessions on this thread run.
            ctx.spawn(tokio::task::yield_now().into_actor(self).map(|(), act, ctx| act.adopt_more(ctx)));
            return;
        }
        let Adopting { epoch, done, .. } = adopting;
        // Through the same log writer, after every record adoption appended.
        let entry = LogEntry::Epoch { epoch, master: self.config.node.clone() };
        let record = self.wal.send(AppendDurable(entry));
        ctx.spawn(record.into_actor(self).map(move |result, act, ctx| {
            let result = match result {
                Ok(Ok(lsn)) => {
                    let effects = act.core.resume_joinings(lsn);
                    act.run(effects, ctx);
                    Ok(())
                }
                Ok(Err(err)) => Err(err),
                Err(err) => Err(err.to_string()),
            };
            let _ = done.send(result);
        }));
    }

    /// Serving begins. The connected slaves' incarnations and joinings are recorded only now,
    /// after everything adopted, so a record naming a slave's incarnation follows every write
    /// that slave may have lost. Then the held commands run.
    fn start_serving(&mut self, epoch: Epoch, ctx: &mut Context<Self>) {
        if self.takeover.take().is_none() {
            return;
        }
        debug_assert_eq!(self.core.epoch(), epoch, "serving the epoch that was prepared");
        self.waiting = None;
        tracing::info!(%epoch, "serving");
        let joined: Vec<(NodeId, Incarnation, Version)> =
            self.slaves.iter().map(|(node, h)| (node.clone(), h.incarnation, h.max_version)).collect();
        for (node, incarnation, max_version) in joined {
            self.core.slave_connected(node.clone(), incarnation, max_version);
            let effects = self.core.record_incarnation(node, incarnation);
            self.run(effects, ctx);
        }
        self.tell_watchers();
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
            let why = self.waiting.clone().unwrap_or_else(|| "not serving yet".to_string());
            caller.answer(Err(WireError::unavailable(format!("this node does not serve yet: {why}"))));
        }
    }

    fn execute(&mut self, msg: Execute, ctx: &mut Context<Self>) {
        let caller = Caller { id: msg.id, reply: msg.reply };
        if self.stopped.is_some() {
            return caller.answer(Err(WireError::NotMaster { master: self.config.peer.clone() }));
        }
        let (key, op) = match msg.op {
            ClientOp::Get { key } => (key, Op::Get),
            ClientOp::Put { key, value } => (key, Op::Put(value)),
            ClientOp::Del { key } => (key, Op::Del),
            ClientOp::Status => {
                let counted = self.census_for_status(ctx);
                let wal = self.wal.send(Stats);
                let ready = async move {
                    let stats = wal.await;
                    if let Some(counted) = counted {
                        let _ = counted.await;
                    }
                    stats
                };
                ctx.spawn(ready.into_actor(self).map(move |stats, act, _| {
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
        self.watchers.retain(|w| w.list.connected());
        let list = SlaveList(self.slaves.keys().cloned().collect());
        for watcher in &self.watchers {
            watcher.list.do_send(list.clone());
        }
    }

    fn maintain(&mut self, ctx: &mut Context<Self>) {
        if self.takeover.is_some() {
            self.expire_held();
        }
        if self.takeover.is_some() || self.stopped.is_some() {
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
            Effect::Log { key, entry, stamp } => {
                let entry = LogEntry::Write { version: entry.version, key, value: entry.value, stamp: Some(stamp) };
                self.wal.do_send(Append { entry, notify: None });
            }
            Effect::RecordMember { node, incarnation, active: true } => {
                tracing::info!(slave = %node, ?incarnation, "recording the slave's membership");
                self.wal.do_send(Append { entry: LogEntry::Member { node, incarnation, active: true }, notify: None });
            }
            Effect::RecordMember { node, incarnation, active: false } => {
                if self.config.peer.is_some() {
                    tracing::info!(slave = %node, "a new slave joins once the standby has recorded it");
                }
                let entry = LogEntry::Member { node: node.clone(), incarnation, active: false };
                let record = self.wal.send(AppendDurable(entry));
                ctx.spawn(record.into_actor(self).map(move |result, act, ctx| match result {
                    Ok(Ok(lsn)) => {
                        let effects = act.core.member_recorded(&node, lsn);
                        act.run(effects, ctx);
                        act.maintain(ctx);
                    }
                    Ok(Err(err)) => tracing::error!(slave = %node, %err, "cannot record a joining slave"),
                    Err(err) => tracing::error!(slave = %node, %err, "cannot record a joining slave"),
                }));
            }
            Effect::Read { token, plan } => {
                let targets = self.resolve(&plan.targets);
                ReadAggregator::new(plan.key, targets, plan.needed, Purpose::Client(token), me, timeout, epoch)
                    .known(plan.known, plan.unsynced, plan.stamp)
                    .start();
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

    /// Makes sure `status` has a count of the key map to report. A count is reused while the
    /// live slaves are the same, for a second or ten times what counting took; a small map is
    /// counted at once; a large one is counted a few shards a step between other messages, and
    /// the returned receiver fires when the count is done. When the live slaves changed,
    /// `status` waits for the new count; when the count only aged, `status` answers with it
    /// while a new one is made.
    fn census_for_status(&mut self, ctx: &mut Context<Self>) -> Option<oneshot::Receiver<()>> {
        let live: Vec<(NodeId, Incarnation)> = self.core.live_slaves().map(|(n, i)| (n.clone(), *i)).collect();
        let same_live = self.census.as_ref().is_some_and(|c| c.live == live);
        let fresh = self.census.as_ref().is_some_and(|c| c.at.elapsed() < CENSUS_REUSE.max(c.took * 10));
        if same_live && fresh {
            return None;
        }
        if self.core.table().len() <= CENSUS_AT_ONCE {
            let start = std::time::Instant::now();
            let status = self.core.map_status();
            self.census = Some(Census { at: std::time::Instant::now(), took: start.elapsed(), live, status });
            return None;
        }
        let (tx, rx) = oneshot::channel();
        match &mut self.counting {
            Some(counting) => counting.waiters.push(tx),
            None => {
                let pass = CensusPass::default();
                self.counting = Some(Counting { pass, live, spent: std::time::Duration::ZERO, waiters: vec![tx] });
                self.count_later(ctx);
            }
        }
        // A count that only aged is still the truth of a moment ago: answer with it.
        if same_live {
            None
        } else {
            Some(rx)
        }
    }

    /// Counts the next step of the census under way once the thread's other work had a turn
    /// (a message to itself would be handled in the same poll of this actor, and the whole
    /// count would run as one step).
    fn count_later(&mut self, ctx: &mut Context<Self>) {
        ctx.spawn(tokio::task::yield_now().into_actor(self).map(|(), act, ctx| act.count_more(ctx)));
    }

    fn count_more(&mut self, ctx: &mut Context<Self>) {
        let Some(counting) = &mut self.counting else { return };
        let start = std::time::Instant::now();
        let done = self.core.count_map(&mut counting.pass, CENSUS_SHARDS_A_STEP);
        counting.spent += start.elapsed();
        if !done {
            return self.count_later(ctx);
        }
        let Some(Counting { pass, live, spent, waiters }) = self.counting.take() else { return };
        let status = self.core.map_status_of(pass);
        self.census = Some(Census { at: std::time::Instant::now(), took: spent, live, status });
        for waiter in waiters {
            let _ = waiter.send(());
        }
    }

    /// The key map's counts for `status`, from the last census (see `census_for_status`);
    /// the counts of keys and values (`DBSIZE`) are always current.
    fn map_status(&mut self) -> MapStatus {
        let table = self.core.table();
        match &self.census {
            Some(census) => MapStatus { keys: table.len() as u64, values: table.values(), ..census.status.clone() },
            None => self.core.map_status(),
        }
    }

    fn status(&mut self, durable: Lsn) -> StatusReport {
        let map = self.map_status();
        let membership = self.core.membership();
        let joining: BTreeSet<&NodeId> = self.core.joining().collect();
        StatusReport {
            node: self.config.node.clone(),
            role: if self.takeover.is_some() || self.stopped.is_some() {
                ServerRole::Candidate
            } else {
                ServerRole::Master
            },
            epoch: if self.takeover.is_some() { self.role_epoch } else { self.core.epoch() },
            replicas: self.core.replicas() as u32,
            keys: map.keys,
            values: map.values,
            under_replicated: map.under_replicated,
            slaves: self
                .slaves
                .iter()
                .filter(|(node, _)| membership.get(node).is_some_and(|m| m.active) && !joining.contains(node))
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
            members: membership
                .iter()
                .map(|(node, m)| MemberStatus {
                    id: node.clone(),
                    active: m.active,
                    live: self.slaves.contains_key(node),
                })
                .collect(),
            waiting: self.stopped.clone().or_else(|| self.waiting.clone()),
        }
    }
}

fn log_entry(key: &Key, entry: &net::Entry) -> LogEntry {
    LogEntry::Write { version: entry.version, key: key.clone(), value: entry.value.clone(), stamp: None }
}

impl Actor for CoordinatorActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Before this coordinator appends anything (a takeover's adoptions included): reads
        // wait to hear that the log holds what they found.
        self.wal.do_send(SyncedTo(ctx.address().recipient()));
        ctx.run_interval(MAINTENANCE_INTERVAL, |act, ctx| act.maintain(ctx));
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
        if self.takeover.is_some() && self.stopped.is_none() && !matches!(msg.op, ClientOp::Status) {
            self.held.push((std::time::Instant::now(), msg));
            return;
        }
        self.execute(msg, ctx);
    }
}

impl Handler<SlaveJoined> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: SlaveJoined, ctx: &mut Context<Self>) {
        if self.stopped.is_some() {
            return msg.proxy.do_send(Retire);
        }
        tracing::info!(slave = %msg.node, addr = %msg.addr, keys = msg.keys, "slave connected");
        let handle = SlaveHandle {
            proxy: msg.proxy.clone(),
            conn: msg.conn,
            addr: msg.addr,
            keys_held: msg.keys,
            incarnation: msg.incarnation,
            max_version: msg.max_version,
        };
        if let Some(old) = self.slaves.insert(msg.node.clone(), handle) {
            tracing::info!(slave = %msg.node, "replacing the slave's older connection");
            old.proxy.do_send(Retire);
        }
        if self.takeover.is_none() {
            let effects = self.core.slave_joined(msg.node.clone(), msg.incarnation, msg.max_version);
            self.run(effects, ctx);
            self.tell_watchers();
            self.maintain(ctx);
        }
        self.node.do_send(RoleUpdate::SlaveArrived {
            node: msg.node,
            incarnation: msg.incarnation,
            promised: msg.epoch,
            proxy: msg.proxy,
        });
    }
}

impl Handler<InventoryPage> for CoordinatorActor {
    type Result = ();

    /// Merges a page into what the takeover found. Entries of a slave whose read then fails
    /// stay: each is something that slave does hold, and a key adopted with or without it is
    /// adopted as a takeover that read that slave (or did not) would adopt it.
    fn handle(&mut self, msg: InventoryPage, _ctx: &mut Context<Self>) {
        let InventoryPage { node, incarnation, reader, entries } = msg;
        let Some(takeover) = self.takeover.as_mut() else { return };
        if takeover.readers.get(&node) != Some(&reader) || takeover.read.contains(&node) {
            return;
        }
        for (key, entry) in entries {
            let found = takeover.found.entry(key).or_default();
            // One answer per slave and key, whichever read gave it last.
            match found.iter_mut().find(|f| f.node == node) {
                Some(f) => *f = Found { node: node.clone(), incarnation, entry: Some(entry) },
                None => found.push(Found { node: node.clone(), incarnation, entry: Some(entry) }),
            }
        }
    }
}

impl Handler<InventoryDone> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: InventoryDone, _ctx: &mut Context<Self>) {
        let InventoryDone { node, incarnation, reader, ok } = msg;
        let Some(takeover) = self.takeover.as_mut() else { return };
        if takeover.readers.get(&node) != Some(&reader) {
            tracing::debug!(slave = %node, reader, "a superseded inventory reader finished");
            return;
        }
        takeover.readers.remove(&node);
        let ok = ok && self.slaves.get(&node).is_some_and(|h| h.incarnation == incarnation);
        if ok && !takeover.read.contains(&node) {
            tracing::info!(slave = %node, "read a slave's inventory");
            takeover.read.insert(node.clone());
        }
        self.node.do_send(RoleUpdate::Event(Event::InventoryRead { node, incarnation, ok }));
    }
}

impl Handler<Deposed> for CoordinatorActor {
    type Result = ();

    /// Whether a newer epoch deposes this node is the role core's decision.
    fn handle(&mut self, msg: Deposed, _ctx: &mut Context<Self>) {
        let source = format!("slave {}", msg.slave);
        match msg.holder {
            None => self.node.do_send(RoleUpdate::Event(Event::NewerEpoch { epoch: msg.epoch, source })),
            Some(holder) => self.node.do_send(RoleUpdate::Event(Event::Fenced { epoch: msg.epoch, holder, source })),
        }
    }
}

impl Handler<StopServing> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: StopServing, ctx: &mut Context<Self>) {
        if self.stopped.is_some() {
            return;
        }
        tracing::error!(reason = %msg.reason, "stopping: no more commands, slaves or standby");
        let effects = self.core.fail_settling(&format!("the master stopped serving: {}", msg.reason));
        self.run(effects, ctx);
        self.stopped = Some(msg.reason);
        for (_, handle) in std::mem::take(&mut self.slaves) {
            handle.proxy.do_send(Retire);
        }
        for watcher in std::mem::take(&mut self.watchers) {
            watcher.retire.do_send(Retired);
        }
        for (_, msg) in std::mem::take(&mut self.held) {
            let caller = Caller { id: msg.id, reply: msg.reply };
            caller.answer(Err(WireError::NotMaster { master: self.config.peer.clone() }));
        }
    }
}

impl Handler<ReadInventory> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: ReadInventory, ctx: &mut Context<Self>) {
        let ReadInventory { node, epoch } = msg;
        match self.slaves.get(&node) {
            Some(handle) if self.takeover.is_some() => {
                let (proxy, incarnation) = (handle.proxy.clone(), handle.incarnation);
                let Some(takeover) = self.takeover.as_mut() else { return };
                takeover.next_reader += 1;
                let reader = takeover.next_reader;
                takeover.readers.insert(node.clone(), reader);
                let since = self.core.log_stamp();
                InventoryReader::new(node, incarnation, reader, proxy, epoch, since, ctx.address()).start();
            }
            Some(_) | None => {
                let incarnation = self.slaves.get(&node).map(|h| h.incarnation).unwrap_or_default();
                self.node.do_send(RoleUpdate::Event(Event::InventoryRead { node, incarnation, ok: false }));
            }
        }
    }
}

impl Handler<Prepare> for CoordinatorActor {
    type Result = actix::ResponseActFuture<Self, Result<(), String>>;

    fn handle(&mut self, msg: Prepare, ctx: &mut Context<Self>) -> Self::Result {
        let (done, finished) = oneshot::channel();
        self.begin_adopting(msg.epoch, done, ctx);
        Box::pin(
            async move { finished.await.unwrap_or_else(|_| Err("the coordinator stopped while adopting".to_string())) }
                .into_actor(self),
        )
    }
}

impl Handler<Serve> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: Serve, ctx: &mut Context<Self>) {
        if self.stopped.is_none() {
            self.start_serving(msg.epoch, ctx);
        }
    }
}

impl Handler<RoleState> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: RoleState, _ctx: &mut Context<Self>) {
        if self.takeover.is_some() {
            self.waiting = msg.waiting;
            self.role_epoch = msg.epoch;
        }
    }
}

impl Handler<ReadWon> for CoordinatorActor {
    type Result = MessageResult<ReadWon>;

    fn handle(&mut self, msg: ReadWon, ctx: &mut Context<Self>) -> Self::Result {
        let (effects, stamp) = self.core.read_won(&msg.key, msg.entry);
        self.run(effects, ctx);
        MessageResult(stamp)
    }
}

/// A read found `entry` on a quorum; the reply waits until the log holds the key's records.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SettleRead {
    pub key: Key,
    pub version: Version,
    pub caller: Caller,
    pub reply: ClientReply,
}

impl Handler<SettleRead> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: SettleRead, ctx: &mut Context<Self>) {
        let effects = self.core.settle_read(&msg.key, msg.version, msg.caller, msg.reply);
        self.run(effects, ctx);
    }
}

impl Handler<Synced> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: Synced, ctx: &mut Context<Self>) {
        let effects = self.core.synced(msg.0);
        self.run(effects, ctx);
    }
}

impl Handler<StateCopy> for CoordinatorActor {
    type Result = MessageResult<StateCopy>;

    fn handle(&mut self, _msg: StateCopy, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(State {
            epoch: self.core.epoch(),
            master: self.config.node.clone(),
            members: self.core.membership().records(),
            entries: self.core.table().clone(),
            stamp: self.core.stamp(),
        })
    }
}

impl Handler<WatchSlaves> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: WatchSlaves, _ctx: &mut Context<Self>) {
        if self.stopped.is_some() {
            return msg.retire.do_send(Retired);
        }
        msg.list.do_send(SlaveList(self.slaves.keys().cloned().collect()));
        self.watchers.push(msg);
    }
}

impl Handler<StandbyState> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: StandbyState, ctx: &mut Context<Self>) {
        self.standby = msg.acked.map(|acked| (msg.standby, acked));
        if let Some(acked) = msg.acked {
            let effects = self.core.standby_acked(acked);
            if !effects.is_empty() {
                self.run(effects, ctx);
                self.tell_watchers();
                self.maintain(ctx);
            }
        }
    }
}

impl Handler<SlaveLeft> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: SlaveLeft, _ctx: &mut Context<Self>) {
        if self.slaves.get(&msg.node).is_some_and(|h| h.conn == msg.conn) {
            tracing::warn!(slave = %msg.node, "slave disconnected");
            self.slaves.remove(&msg.node);
            self.core.slave_left(&msg.node);
            self.tell_watchers();
            self.node.do_send(RoleUpdate::SlaveLeft { node: msg.node });
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
        self.wal.do_send(WriteSnapshot {
            epoch: self.core.epoch(),
            master: self.config.node.clone(),
            members: self.core.membership().records(),
            entries: self.core.table().clone(),
            stamp: self.core.stamp(),
        });
    }
}

impl Handler<Revalidated> for CoordinatorActor {
    type Result = ();

    fn handle(&mut self, msg: Revalidated, _ctx: &mut Context<Self>) {
        self.core.revalidate(&msg.key, &msg.node, msg.incarnation);
    }
}
