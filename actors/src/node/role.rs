//! The node actor: the thin shell around the [`RoleCore`]. It turns what happens (the peer's
//! answer, a slave arriving at the coordinator, a promise, the epoch record being durable, the
//! standby finding its master silent) into role events, and carries out the effects: it starts
//! the standby, or the coordinator when the node becomes a candidate (promotion is a restart of
//! the coordinator from the replayed log), asks slaves for promises through their proxies,
//! records the granted epoch, and tells the coordinator when to serve and when to stop. The
//! listener asks it whom to admit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult, Supervisor, WrapFuture,
};

use net::{Epoch, Incarnation, Lsn, NodeId, PeerRole, ServerRole, Version, Welcome};

use super::promise_request::PromiseRequest;
use super::standby::{standby_wal, Standby};
use super::Exit;
use crate::dial::dial;
use crate::master::coordinator::{CoordinatorActor, Prepare, ReadInventory, Serve, StopServing};
use crate::master::keytable::KeyTable;
use crate::master::slave_proxy::SlaveProxy;
use crate::master::wal_writer::{LogFailed, ShipFromNowOn, SnapshotsFrom, WalWriter, WatchFailure};
use crate::master::MasterConfig;
use crate::role::membership::Membership;
use crate::role::{Admission, Effect, Event, LogFacts, PeerView, Role, RoleConfig, RoleCore};
use crate::wal::{DataDir, Recovered};

/// One attempt to reach the peer takes at most this long.
const PEER_DIAL: Duration = Duration::from_millis(500);

/// What the coordinator, the standby and promise requests report: role events as they are,
/// and the few that carry what only the node actor keeps (a proxy, an address, a log writer).
#[derive(Message)]
#[rtype(result = "()")]
pub enum RoleUpdate {
    Event(Event),
    SlaveArrived {
        node: NodeId,
        incarnation: Incarnation,
        promised: Epoch,
        proxy: Addr<SlaveProxy>,
    },
    SlaveLeft {
        node: NodeId,
    },
    /// The standby follows `master` (its address, and its Redis address) in `epoch`.
    Followed {
        master: String,
        redis: Option<String>,
        epoch: Epoch,
        last_lsn: Lsn,
    },
    /// The standby's log has grown to `last_lsn` (sent now and then while it follows).
    Progress {
        epoch: Epoch,
        last_lsn: Lsn,
    },
    /// The standby found its master silent: its log and state, to campaign from.
    TakeOver {
        facts: LogFacts,
        entries: KeyTable,
        /// The highest stamp of that log.
        stamp: Version,
        wal: Addr<WalWriter>,
    },
}

/// Sent to the coordinator after every step: why the node does not serve yet.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoleState {
    pub waiting: Option<String>,
    /// The epoch the node's welcome names (its log's newest, while it campaigns).
    pub epoch: Epoch,
}

/// Where the recovered state and the log writer are until a role takes them.
struct Store {
    dir: Arc<DataDir>,
    recovered: Option<Recovered>,
    entries: Option<(KeyTable, Version, Membership)>,
    wal: Option<Addr<WalWriter>>,
}

pub struct NodeActor {
    config: Arc<MasterConfig>,
    core: RoleCore,
    store: Store,
    coordinator: Option<Addr<CoordinatorActor>>,
    proxies: BTreeMap<NodeId, Addr<SlaveProxy>>,
    /// Where clients are pointed while this node follows.
    master: Option<String>,
    master_redis: Option<String>,
    last_lsn: Lsn,
    asking_peer: bool,
    /// The last words logged about waiting, so each is logged once.
    said: Option<String>,
    exit: Exit,
}

impl NodeActor {
    pub fn new(config: Arc<MasterConfig>, dir: Arc<DataDir>, recovered: Recovered, exit: Exit) -> Self {
        let role_config = RoleConfig {
            me: config.node.clone(),
            replicas: config.replicas,
            has_peer: config.peer.is_some(),
            prefer_master: config.prefer_master,
        };
        let facts = recovered.facts();
        NodeActor {
            last_lsn: facts.last_lsn,
            core: RoleCore::new(role_config, facts),
            config,
            store: Store { dir, recovered: Some(recovered), entries: None, wal: None },
            coordinator: None,
            proxies: BTreeMap::new(),
            master: None,
            master_redis: None,
            asking_peer: false,
            said: None,
            exit,
        }
    }

    fn step(&mut self, event: Event, ctx: &mut Context<Self>) {
        let effects = self.core.step(event);
        self.run(effects, ctx);
    }

    fn run(&mut self, effects: Vec<Effect>, ctx: &mut Context<Self>) {
        for effect in effects {
            self.run_one(effect, ctx);
        }
        let waiting = self.core.waiting();
        if waiting != self.said {
            match (&waiting, self.core.role()) {
                (Some(why), Role::Candidate(_)) => tracing::warn!(%why, "not serving yet"),
                (Some(why), _) => tracing::info!(%why, "role"),
                (None, _) => {}
            }
            if let Some(coordinator) = &self.coordinator {
                coordinator.do_send(RoleState { waiting: waiting.clone(), epoch: self.core.view().1 });
            }
            self.said = waiting;
        }
    }

    fn run_one(&mut self, effect: Effect, ctx: &mut Context<Self>) {
        match effect {
            Effect::AskPeer => self.ask_peer(ctx),
            Effect::Follow => self.follow(ctx),
            Effect::Campaign => self.campaign(ctx),
            Effect::AskPromise { node, epoch } => match self.proxies.get(&node) {
                Some(proxy) => {
                    let me = ctx.address();
                    PromiseRequest::new(node, epoch, proxy.clone(), me, self.config.request_timeout).start();
                }
                None => self.step(Event::Promise { node, asked: epoch, answer: None }, ctx),
            },
            Effect::RecordEpoch { epoch } => {
                let Some(coordinator) = self.coordinator.clone() else {
                    return self.step(Event::EpochRecorded { epoch, result: Err("no coordinator".into()) }, ctx);
                };
                ctx.spawn(coordinator.send(Prepare { epoch }).into_actor(self).map(move |result, act, ctx| {
                    let result = result.unwrap_or_else(|err| Err(err.to_string()));
                    act.step(Event::EpochRecorded { epoch, result }, ctx);
                }));
            }
            Effect::ReadInventory { node, epoch } => {
                if let Some(coordinator) = &self.coordinator {
                    coordinator.do_send(ReadInventory { node, epoch });
                }
            }
            Effect::Serve { epoch } => {
                tracing::info!(%epoch, "granted; serving as master");
                if let (Some(coordinator), Some(wal)) = (&self.coordinator, &self.store.wal) {
                    coordinator.do_send(Serve { epoch });
                    wal.do_send(SnapshotsFrom(coordinator.clone().recipient()));
                }
            }
            Effect::StopServing { reason } => {
                if let Some(coordinator) = &self.coordinator {
                    coordinator.do_send(StopServing { reason });
                }
            }
            Effect::StepDown { reason, pause } => {
                let wait = if pause { self.config.failover_after * 2 } else { Duration::ZERO };
                tracing::error!(%reason, ?wait, "stepping down: the process restarts and decides its role again");
                ctx.run_later(wait, |act, _| match &act.config.step_down {
                    Some(step_down) => (step_down.0)(),
                    None => tracing::error!("no way to restart this process; it stays stopped"),
                });
            }
        }
    }

    /// Asks the peer what it is: while deciding, for up to `--peer-wait-ms`; otherwise once.
    fn ask_peer(&mut self, ctx: &mut Context<Self>) {
        let Some(peer) = self.config.peer.clone() else {
            return self.step(Event::Peer(None), ctx);
        };
        if self.asking_peer {
            return;
        }
        self.asking_peer = true;
        let (epoch, last_lsn) = (self.core.view().1, self.last_lsn);
        let me = PeerRole::Peer { id: self.config.node.clone(), epoch, last_lsn };
        let patience = match self.core.role() {
            Role::Deciding(_) => self.config.peer_wait,
            _ => Duration::ZERO,
        };
        let credentials = self.config.credentials.clone();
        let ask = async move {
            let start = Instant::now();
            loop {
                match dial(&peer, me.clone(), PEER_DIAL, &credentials).await {
                    Ok(dialed) => return Ok(Some(dialed.welcome)),
                    Err(err) if err.is_unauthorized() => return Err(format!("{err}")),
                    Err(err) if start.elapsed() >= patience => {
                        tracing::debug!(%peer, %err, "peer not reachable");
                        return Ok(None);
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        };
        ctx.spawn(ask.into_actor(self).map(|answer: Result<Option<Welcome>, String>, act, ctx| {
            act.asking_peer = false;
            match answer {
                Ok(welcome) => {
                    let view = welcome.map(|w| PeerView { role: w.role, epoch: w.epoch, last_lsn: w.last_lsn });
                    act.step(Event::Peer(view), ctx)
                }
                // Deciding alone could make two masters: refuse to run instead.
                Err(err) => {
                    tracing::error!(
                        %err,
                        "the peer and this node do not trust each other; give both the same \
                         --cluster-key-file and certificates from the same CA"
                    );
                    act.exit.now(2);
                }
            }
        }));
    }

    fn follow(&mut self, ctx: &mut Context<Self>) {
        let (Some(recovered), Some(master)) = (self.store.recovered.take(), self.config.peer.clone()) else {
            tracing::error!("cannot follow: no recovered state or no peer");
            return;
        };
        tracing::info!(%master, "starting as standby");
        match WalWriter::start(self.store.dir.clone(), &recovered, standby_wal(&self.config)) {
            Ok(wal) => {
                let (config, dir, exit) = (self.config.clone(), self.store.dir.clone(), self.exit.clone());
                let standby = Standby::new(config, master, dir, wal, ctx.address(), recovered, exit);
                standby.start();
            }
            Err(err) => {
                tracing::error!(%err, "cannot open the log as standby; stopping");
                self.exit.now(1);
            }
        }
    }

    /// Starts the coordinator for a campaign, from the standby's state or the recovered log.
    fn campaign(&mut self, ctx: &mut Context<Self>) {
        if self.coordinator.is_some() {
            return;
        }
        if let Some(recovered) = self.store.recovered.take() {
            match WalWriter::start(self.store.dir.clone(), &recovered, self.config.wal) {
                Ok(wal) => self.store.wal = Some(wal),
                Err(err) => {
                    tracing::error!(%err, "cannot open the log; stopping");
                    return self.exit.now(1);
                }
            }
            let members = recovered.members.clone();
            self.store.entries = Some((recovered.entries, recovered.stamp, members));
        }
        let (Some(wal), Some((entries, stamp, members))) = (self.store.wal.clone(), self.store.entries.take()) else {
            tracing::error!("cannot campaign: no log");
            return;
        };
        tracing::info!(keys = entries.len(), members = members.len(), "campaigning to become master");
        wal.do_send(ShipFromNowOn);
        wal.do_send(WatchFailure(ctx.address().recipient()));
        let (config, node) = (self.config.clone(), ctx.address());
        let coordinator =
            Supervisor::start(move |_| CoordinatorActor::new(config, entries, stamp, members, wal.clone(), node));
        self.coordinator = Some(coordinator);
    }

    /// As master or candidate, asks the peer what it is now and then: a peer serving in a newer
    /// epoch took over while this node was cut off or paused; a peer whose log is ahead may be
    /// the one to serve.
    fn check_peer(&mut self, ctx: &mut Context<Self>) {
        let asking = matches!(self.core.role(), Role::Leader(_) | Role::Candidate(_));
        if asking && self.config.peer.is_some() {
            self.ask_peer(ctx);
        }
    }
}

impl Actor for NodeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.config.standby_heartbeat * 2, |act, ctx| act.check_peer(ctx));
        ctx.run_interval(self.config.standby_heartbeat, |act, ctx| act.step(Event::Tick, ctx));
        self.step(Event::Start, ctx);
    }
}

impl Handler<RoleUpdate> for NodeActor {
    type Result = ();

    fn handle(&mut self, msg: RoleUpdate, ctx: &mut Context<Self>) {
        let event = match msg {
            RoleUpdate::SlaveArrived { node, incarnation, promised, proxy } => {
                self.proxies.insert(node.clone(), proxy);
                Event::SlaveArrived { node, incarnation, promised }
            }
            RoleUpdate::SlaveLeft { node } => {
                self.proxies.remove(&node);
                Event::SlaveLeft { node }
            }
            RoleUpdate::Event(event) => event,
            RoleUpdate::Followed { master, redis, epoch, last_lsn } => {
                self.master = Some(master);
                self.master_redis = redis;
                self.last_lsn = last_lsn;
                Event::Followed { epoch, last_lsn }
            }
            RoleUpdate::Progress { epoch, last_lsn } => {
                self.last_lsn = last_lsn;
                Event::Followed { epoch, last_lsn }
            }
            RoleUpdate::TakeOver { facts, entries, stamp, wal } => {
                self.last_lsn = facts.last_lsn;
                self.store.wal = Some(wal);
                self.store.entries = Some((entries, stamp, facts.members.clone()));
                Event::MasterSilent { facts }
            }
        };
        self.step(event, ctx);
    }
}

impl Handler<LogFailed> for NodeActor {
    type Result = ();

    fn handle(&mut self, msg: LogFailed, ctx: &mut Context<Self>) {
        if crate::mutation::enabled("mutation-log-failure-keeps-serving") {
            return tracing::error!(reason = %msg.reason, "mutation-log-failure-keeps-serving: ignoring a failed log");
        }
        self.step(Event::LogFailed { reason: msg.reason }, ctx);
    }
}

/// How the listener answers a connecting peer.
pub struct Admitted {
    pub admission: Admission,
    /// What the welcome says.
    pub role: ServerRole,
    pub epoch: Epoch,
    pub last_lsn: Lsn,
    /// Where to point those this node does not serve.
    pub master: Option<String>,
    pub serving: Option<(Addr<CoordinatorActor>, Addr<WalWriter>)>,
}

/// The listener's question: how to answer a peer claiming `role`.
#[derive(Message)]
#[rtype(result = "Admitted")]
pub struct Admit {
    pub role: PeerRole,
}

impl Handler<Admit> for NodeActor {
    type Result = MessageResult<Admit>;

    fn handle(&mut self, msg: Admit, ctx: &mut Context<Self>) -> Self::Result {
        let (admission, effects) = self.core.admit(&msg.role);
        self.run(effects, ctx);
        let view = self.view();
        MessageResult(Admitted {
            admission,
            role: view.role,
            epoch: view.epoch,
            last_lsn: view.last_lsn,
            master: view.master,
            serving: view.serving,
        })
    }
}

/// What the Redis endpoint needs to route a command.
#[derive(Clone)]
pub struct NodeView {
    pub role: ServerRole,
    pub epoch: Epoch,
    pub last_lsn: Lsn,
    /// Where clients should go when this node is not master.
    pub master: Option<String>,
    /// Where Redis clients should go when this node is not master (if known).
    pub master_redis: Option<String>,
    /// The coordinator, while this node serves or campaigns (commands wait during a campaign).
    pub serving: Option<(Addr<CoordinatorActor>, Addr<WalWriter>)>,
}

impl NodeActor {
    fn view(&self) -> NodeView {
        let (role, epoch) = self.core.view();
        let serving = match (role, &self.coordinator, &self.store.wal) {
            (ServerRole::Master | ServerRole::Candidate, Some(c), Some(w)) => Some((c.clone(), w.clone())),
            _ => None,
        };
        let own_redis = self.config.redis.as_ref().map(|r| r.advertised.clone());
        match role {
            ServerRole::Master => {
                NodeView { role, epoch, last_lsn: self.last_lsn, master: None, master_redis: own_redis, serving }
            }
            ServerRole::Candidate | ServerRole::Standby => NodeView {
                role,
                epoch,
                last_lsn: self.last_lsn,
                master: self.master.clone().or_else(|| self.config.peer.clone()),
                master_redis: self.master_redis.clone(),
                serving,
            },
        }
    }
}

#[derive(Message)]
#[rtype(result = "NodeView")]
pub struct Describe;

impl Handler<Describe> for NodeActor {
    type Result = MessageResult<Describe>;

    fn handle(&mut self, _msg: Describe, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.view())
    }
}
