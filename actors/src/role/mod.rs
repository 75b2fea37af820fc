//! The role core: which role a master-capable node plays, and every decision about epochs,
//! promises, takeover, deposition and fencing. It is a plain state machine: no sockets, no
//! clocks, no actors. The node actor feeds it [`Event`]s (what the peer said, a slave arrived,
//! a promise came back, the log recorded an epoch) and carries out the [`Effect`]s it returns;
//! the listener asks it whom to admit ([`RoleCore::admit`]); slaves run its fencing check
//! ([`promise::Promise::check`]). Every scenario is a script in `tests.rs`.
//!
//! ## The invariant
//! A node completes an operation in epoch `e` only while no other node can complete one in an
//! epoch it does not know about. Three rules keep it:
//!
//! 1. **An epoch is granted, not taken.** A candidate serves `e` only after enough slaves have
//!    durably promised `e` to it (`Membership::promises_needed`): a majority of the recorded
//!    membership `M`, and enough that every set of `q` members (a write quorum of any replica
//!    set) contains one. A slave that promised `e` refuses older epochs, and refuses `e` from
//!    anyone else. So two nodes are never granted one epoch (two majorities meet), and once `e`
//!    is granted no older master can gather a quorum for anything, read or write.
//! 2. **The membership is the log's.** `M` is every slave whose joining is in the log, never
//!    who is connected now. A joining takes effect (replica sets may use the slave) only once the
//!    standby has the record too, so every node that can later campaign knows every slave a
//!    master used. A member is *intact* when it runs the incarnation the log last named for it.
//! 3. **A takeover reads what its log may lack.** Before serving, the candidate either proves
//!    its own log complete (it was granted the newest epoch that ever served anything, which the
//!    promises' `served` epochs tell: a granting set meets every quorum that completed anything)
//!    or reads intact members until at most `q - 1` members are unread or forgetful, so every
//!    write quorum has an intact member read.
//!
//! Why an intact member holds what the log lacks: a master appends a write's record before it
//! sends the write anywhere, and appends `Member { node, incarnation }` only after it met the
//! slave in that incarnation, through the same log writer. If a slave acknowledged a write and
//! then restarted, the record naming its new incarnation comes after the write's record, so a
//! log that names the new incarnation has the write. Read repair and adoption copy versions
//! whose records are already in the log, or append them before answering.
//!
//! No timer decides anything here. Timers in the actors only make a node *try* (a standby
//! campaigns after its master has been silent; a failed node restarts after a pause); what a
//! try may do is decided by promises alone. A node without enough promises stays a candidate
//! and says why ([`RoleCore::waiting`]).
//!
//! What it gives up: a partition that leaves no node with a majority of promises leaves the
//! store unavailable; a candidate whose intact members are too few to read (slaves restarted
//! empty while no master ran) waits for them, or for the node whose log is complete.

pub mod membership;
pub mod promise;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use net::{Epoch, Incarnation, Lsn, NodeId, PeerRole, ServerRole, WireError};

use membership::Membership;

/// What the core is configured with.
#[derive(Debug, Clone)]
pub struct RoleConfig {
    /// This node's id.
    pub me: NodeId,
    /// The replication factor R.
    pub replicas: usize,
    /// There is another master-capable node.
    pub has_peer: bool,
    /// Started as `nodes master`: campaigns at once when the peer cannot be reached at start,
    /// and wins ties.
    pub prefer_master: bool,
}

/// What the node's log says, as far as roles care.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFacts {
    /// The highest epoch in the log (records and versions).
    pub highest_epoch: Epoch,
    /// The newest `Epoch` record: the epoch and the node it was granted to.
    pub newest_grant: Option<(Epoch, Option<NodeId>)>,
    pub last_lsn: Lsn,
    pub members: Membership,
}

/// What the peer said it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerView {
    pub role: ServerRole,
    /// Its serving epoch (a master), or the highest epoch in its log (otherwise).
    pub epoch: Epoch,
    pub last_lsn: Lsn,
}

/// A slave's answer to a promise request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromiseAnswer {
    pub granted: bool,
    /// What the slave has promised after answering, and to whom.
    pub epoch: Epoch,
    pub to: Option<NodeId>,
    /// The highest epoch in which it carried out a read or a write.
    pub served: Epoch,
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The node started with `facts` recovered from its log.
    Start,
    /// The answer to [`Effect::AskPeer`]; `None`: the peer could not be reached.
    Peer(Option<PeerView>),
    /// As standby: the master shipped up to `last_lsn`, in `epoch`.
    Followed {
        epoch: Epoch,
        last_lsn: Lsn,
    },
    /// As standby: the master has been silent too long; `facts` is the standby's log now.
    MasterSilent {
        facts: LogFacts,
    },
    /// A slave connected, running `incarnation`, having promised `promised`.
    SlaveArrived {
        node: NodeId,
        incarnation: Incarnation,
        promised: Epoch,
    },
    SlaveLeft {
        node: NodeId,
    },
    /// The answer to [`Effect::AskPromise`] for `asked`; `None` when the request failed.
    Promise {
        node: NodeId,
        asked: Epoch,
        answer: Option<PromiseAnswer>,
    },
    /// The answer to [`Effect::RecordEpoch`].
    EpochRecorded {
        epoch: Epoch,
        result: Result<(), String>,
    },
    /// The answer to [`Effect::ReadInventory`].
    InventoryRead {
        node: NodeId,
        incarnation: Incarnation,
        ok: bool,
    },
    /// Someone (`source`) has accepted a newer epoch than this node's.
    NewerEpoch {
        epoch: Epoch,
        source: String,
    },
    /// A slave (`source`) refused this node's request in `epoch`: it promised that epoch to
    /// `holder` (a candidate that lost), and will refuse this node for as long as it serves in
    /// `epoch`.
    Fenced {
        epoch: Epoch,
        holder: NodeId,
        source: String,
    },
    /// The log can no longer be written.
    LogFailed {
        reason: String,
    },
    /// Now and then (every heartbeat): a candidate asks again whom a request failed for.
    Tick,
}

/// What the node must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Ask the peer what it is; answer with [`Event::Peer`].
    AskPeer,
    /// Follow the peer's log as its standby.
    Follow,
    /// Start campaigning: accept slaves and clients (clients' commands wait).
    Campaign,
    /// Ask `node` to promise `epoch`; answer with [`Event::Promise`].
    AskPromise { node: NodeId, epoch: Epoch },
    /// Adopt what the inventories held (appending what the log lacks), then append
    /// `Epoch { epoch, master: me }` after it, durably; answer with [`Event::EpochRecorded`].
    RecordEpoch { epoch: Epoch },
    /// Read `node`'s whole inventory with requests in `epoch`; answer with
    /// [`Event::InventoryRead`].
    ReadInventory { node: NodeId, epoch: Epoch },
    /// Serve in `epoch`, adopting what the inventories held.
    Serve { epoch: Epoch },
    /// Refuse every command and member from now on (a failed log): the peer may take over.
    StopServing { reason: String },
    /// Restart the process (it comes back deciding again); `pause`: after a while, so that the
    /// peer can take over first.
    StepDown { reason: String, pause: bool },
}

/// How the listener answers a connecting peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// A client session on the coordinator.
    Client,
    /// A slave: a proxy on the coordinator.
    Slave,
    /// A standby: ship the log from `from` (0: a snapshot first).
    Backup {
        from: Lsn,
    },
    /// A peer asking what this node is: answer with a welcome and close.
    Peer,
    /// Not serving: point it at the master.
    NotMaster,
    Refuse(WireError),
}

/// Deciding at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deciding;

/// A standby, following the peer's log (or trying to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Following;

/// Where a campaign is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Gathering promises.
    Asking,
    /// Granted; reading intact members for what the log may lack.
    Reading,
    /// Everything read is adopted into the log; the epoch record is being written after it.
    /// An `Epoch` record is therefore the mark of a complete takeover, which is what lets a
    /// later candidate trust its own log.
    Recording,
}

/// A slave the candidate has met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    incarnation: Incarnation,
    connected: bool,
}

/// A candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub epoch: Epoch,
    pub stage: Stage,
    facts: LogFacts,
    slaves: BTreeMap<NodeId, Seen>,
    /// Members that promised `epoch`, with their `served` epochs, and those asked meanwhile.
    promised: BTreeMap<NodeId, Epoch>,
    asking: BTreeSet<NodeId>,
    /// A refusal: `epoch` is promised to `to`.
    refused: BTreeMap<NodeId, (Epoch, Option<NodeId>)>,
    reading: BTreeSet<NodeId>,
    read: BTreeSet<NodeId>,
}

/// Serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    pub epoch: Epoch,
}

/// The log failed; refusing everything until the process restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Deciding(Deciding),
    Following(Following),
    Candidate(Box<Campaign>),
    Leader(Leader),
    Failed(Failed),
    /// Stepped down; the process is restarting.
    Stopped(String),
}

/// The role core.
#[derive(Debug, Clone)]
pub struct RoleCore {
    config: RoleConfig,
    facts: LogFacts,
    /// The highest epoch this node knows of (its log, its peer, slaves' promises).
    known: Epoch,
    role: Role,
}

impl RoleCore {
    pub fn new(config: RoleConfig, facts: LogFacts) -> RoleCore {
        let known = facts.highest_epoch;
        RoleCore { config, facts, known, role: Role::Deciding(Deciding) }
    }

    pub fn role(&self) -> &Role {
        &self.role
    }

    pub fn config(&self) -> &RoleConfig {
        &self.config
    }

    /// What a welcome says: the role, and the serving epoch (a master) or the highest epoch in
    /// the log (otherwise), which is what a peer compares logs by.
    pub fn view(&self) -> (ServerRole, Epoch) {
        match &self.role {
            Role::Leader(leader) => (ServerRole::Master, leader.epoch),
            Role::Candidate(_) => (ServerRole::Candidate, self.facts.highest_epoch),
            Role::Deciding(_) | Role::Following(_) | Role::Failed(_) | Role::Stopped(_) => {
                (ServerRole::Standby, self.known.max(self.facts.highest_epoch))
            }
        }
    }

    /// The serving epoch, if this node serves.
    pub fn serving(&self) -> Option<Epoch> {
        match &self.role {
            Role::Leader(leader) => Some(leader.epoch),
            Role::Deciding(_) | Role::Following(_) | Role::Candidate(_) | Role::Failed(_) | Role::Stopped(_) => None,
        }
    }

    /// Why this node does not serve, in words for the log and `status` (`None` while it serves).
    pub fn waiting(&self) -> Option<String> {
        match &self.role {
            Role::Leader(_) => None,
            Role::Deciding(_) => Some("deciding: asking the peer what it is".to_string()),
            Role::Following(_) => Some("standby: following the master's log".to_string()),
            Role::Failed(f) => Some(format!("the log failed ({}); refusing everything until a restart", f.reason)),
            Role::Stopped(reason) => Some(format!("stepped down: {reason}")),
            Role::Candidate(c) => Some(c.explain(&self.config)),
        }
    }

    /// Feeds one event; returns what to do, in order.
    pub fn step(&mut self, event: Event) -> Vec<Effect> {
        if matches!(event, Event::Tick) && !matches!(self.role, Role::Candidate(_)) {
            return Vec::new();
        }
        let role = std::mem::replace(&mut self.role, Role::Stopped(String::new()));
        let (role, effects) = match role {
            Role::Deciding(d) => self.step_deciding(d, event),
            Role::Following(f) => self.step_following(f, event),
            Role::Candidate(c) => self.step_candidate(*c, event),
            Role::Leader(l) => self.step_leader(l, event),
            Role::Failed(f) => self.step_failed(f, event),
            Role::Stopped(reason) => (Role::Stopped(reason), Vec::new()),
        };
        self.role = role;
        effects
    }

    /// Decides how to answer a connecting peer, from the role it claims. Meeting someone with a
    /// newer epoch than this master's deposes it.
    pub fn admit(&mut self, hello: &PeerRole) -> (Admission, Vec<Effect>) {
        let serving = self.serving();
        let candidate = matches!(self.role, Role::Candidate(_));
        let newer = |epoch: Epoch| serving.is_some_and(|ours| epoch > ours) && !crate::mutation::fencing_off();
        match hello {
            PeerRole::Client if serving.is_some() || candidate => (Admission::Client, Vec::new()),
            PeerRole::Client => (Admission::NotMaster, Vec::new()),
            PeerRole::Slave { epoch, .. } if newer(*epoch) => {
                let refusal = WireError::StaleEpoch { sent: serving.unwrap_or_default(), current: *epoch };
                let effects = self.step(Event::NewerEpoch { epoch: *epoch, source: "a slave's promise".into() });
                (Admission::Refuse(refusal), effects)
            }
            PeerRole::Slave { .. } if serving.is_some() || candidate => (Admission::Slave, Vec::new()),
            PeerRole::Slave { .. } => (Admission::NotMaster, Vec::new()),
            PeerRole::Backup { epoch, .. } if newer(*epoch) => {
                let refusal = WireError::StaleEpoch { sent: serving.unwrap_or_default(), current: *epoch };
                let effects = self.step(Event::NewerEpoch { epoch: *epoch, source: "the standby's log".into() });
                (Admission::Refuse(refusal), effects)
            }
            // A standby resumes only a log it received from this master in this epoch; any other
            // log may have diverged, and is replaced by a snapshot.
            PeerRole::Backup { epoch, next_lsn, .. } => match serving {
                Some(ours) => (Admission::Backup { from: if *epoch == ours { *next_lsn } else { Lsn(0) } }, Vec::new()),
                None => (Admission::NotMaster, Vec::new()),
            },
            PeerRole::Peer { epoch, .. } if newer(*epoch) => {
                let effects = self.step(Event::NewerEpoch { epoch: *epoch, source: "the peer's log".into() });
                (Admission::Peer, effects)
            }
            PeerRole::Peer { .. } => (Admission::Peer, Vec::new()),
        }
    }

    fn learn(&mut self, epoch: Epoch) {
        self.known = self.known.max(epoch);
    }

    /// The peer's log is newer than `ours` (or as new, and the peer wins the tie).
    fn peer_is_ahead(&self, peer: &PeerView, ours: &LogFacts) -> bool {
        match (peer.epoch, peer.last_lsn).cmp(&(ours.highest_epoch, ours.last_lsn)) {
            std::cmp::Ordering::Greater => true,
            // Two logs this long in the same epoch are one log (a standby's is a prefix of its
            // master's). The node its newest epoch was granted to can prove it complete (see
            // `Campaign::log_complete`), the other cannot: that one gives way.
            std::cmp::Ordering::Equal => match &ours.newest_grant {
                Some((_, Some(master))) => master != &self.config.me,
                Some((_, None)) | None => !self.config.prefer_master,
            },
            std::cmp::Ordering::Less => false,
        }
    }

    fn step_deciding(&mut self, d: Deciding, event: Event) -> (Role, Vec<Effect>) {
        match event {
            Event::Start if !self.config.has_peer => self.become_candidate(),
            Event::Start => (Role::Deciding(d), vec![Effect::AskPeer]),
            Event::Peer(Some(peer)) => {
                self.learn(peer.epoch);
                match peer.role {
                    ServerRole::Master => self.become_follower(),
                    ServerRole::Standby | ServerRole::Candidate if self.peer_is_ahead(&peer, &self.facts) => {
                        self.become_follower()
                    }
                    ServerRole::Standby | ServerRole::Candidate => self.become_candidate(),
                }
            }
            // A node that cannot reach its peer decides nothing alone: the one started as master
            // asks the slaves for an epoch, which they grant only if no one else holds it; the
            // other waits as a standby (and campaigns if no master appears).
            Event::Peer(None) if self.config.prefer_master => self.become_candidate(),
            Event::Peer(None) => self.become_follower(),
            Event::NewerEpoch { epoch, .. } | Event::Followed { epoch, .. } | Event::Fenced { epoch, .. } => {
                self.learn(epoch);
                (Role::Deciding(d), Vec::new())
            }
            other => self.unexpected(Role::Deciding(d), other),
        }
    }

    fn step_following(&mut self, f: Following, event: Event) -> (Role, Vec<Effect>) {
        match event {
            Event::Followed { epoch, last_lsn } => {
                self.learn(epoch);
                self.facts.last_lsn = last_lsn;
                (Role::Following(f), Vec::new())
            }
            Event::MasterSilent { facts } => {
                self.facts = facts;
                self.learn(self.facts.highest_epoch);
                self.become_candidate()
            }
            Event::NewerEpoch { epoch, .. } | Event::Fenced { epoch, .. } => {
                self.learn(epoch);
                (Role::Following(f), Vec::new())
            }
            Event::Peer(_) | Event::SlaveLeft { .. } => (Role::Following(f), Vec::new()),
            other => self.unexpected(Role::Following(f), other),
        }
    }

    fn step_candidate(&mut self, mut c: Campaign, event: Event) -> (Role, Vec<Effect>) {
        let mut effects = Vec::new();
        match event {
            Event::SlaveArrived { node, incarnation, promised } => {
                self.learn(promised);
                c.slaves.insert(node.clone(), Seen { incarnation, connected: true });
                c.reading.remove(&node);
                match c.stage {
                    Stage::Asking if promised > c.epoch => {
                        c.bump(promised, &mut effects);
                    }
                    Stage::Asking if c.facts.members.contains(&node) => c.ask(node, &mut effects),
                    Stage::Asking | Stage::Recording => {}
                    Stage::Reading => c.read_more(&mut effects),
                }
            }
            Event::SlaveLeft { node } => {
                if let Some(seen) = c.slaves.get_mut(&node) {
                    seen.connected = false;
                }
                c.reading.remove(&node);
            }
            Event::Promise { node, asked, answer }
                if asked == c.epoch && c.stage == Stage::Asking && c.asking.contains(&node) =>
            {
                c.asking.remove(&node);
                c.answered(&self.config, &mut self.known, node, answer, &mut effects);
            }
            Event::Promise { .. } => {}
            Event::EpochRecorded { epoch, result } if epoch == c.epoch && c.stage == Stage::Recording => match result {
                Ok(()) => return self.become_leader(c.epoch),
                Err(reason) => return self.become_failed(format!("cannot record epoch {epoch}: {reason}")),
            },
            Event::EpochRecorded { .. } => {}
            Event::InventoryRead { node, incarnation, ok } => {
                c.reading.remove(&node);
                if ok && c.stage == Stage::Reading && c.intact(&node, incarnation) {
                    c.read.insert(node);
                    if c.read_covers(self.config.replicas) {
                        c.stage = Stage::Recording;
                        effects.push(Effect::RecordEpoch { epoch: c.epoch });
                    }
                }
            }
            Event::Peer(Some(peer)) if c.stage == Stage::Asking => {
                self.learn(peer.epoch);
                let abandon = match peer.role {
                    ServerRole::Master => Some("the peer serves as master"),
                    ServerRole::Candidate if self.peer_is_ahead(&peer, &c.facts) => {
                        Some("the peer campaigns too, with a newer log")
                    }
                    ServerRole::Candidate | ServerRole::Standby => None,
                };
                if let Some(reason) = abandon {
                    return self.become_stopped(format!("{reason}; following it"), false);
                }
            }
            // Granted but unable to read enough intact slaves: a peer whose log is ahead of the
            // one this campaign started from may hold what the slaves forgot; make way for it.
            // (A master at an older epoch is deposed by this grant, but its log may hold the
            // writes that the slaves forgot: it steps down when a slave that promised this epoch
            // reaches it, and then campaigns with the complete log.)
            Event::Peer(Some(peer)) if c.stage == Stage::Reading => {
                self.learn(peer.epoch);
                if self.peer_is_ahead(&peer, &c.facts) {
                    return self.become_stopped(
                        "the peer's log is ahead and this takeover cannot read enough slaves".into(),
                        false,
                    );
                }
            }
            Event::Peer(_) | Event::Followed { .. } => {}
            Event::NewerEpoch { epoch, source } => {
                self.learn(epoch);
                match c.stage {
                    Stage::Asking if epoch >= c.epoch => c.bump(epoch, &mut effects),
                    Stage::Asking => {}
                    Stage::Recording | Stage::Reading if epoch > c.epoch => {
                        return self.become_stopped(format!("{source} names epoch {epoch}, newer than ours"), false)
                    }
                    Stage::Recording | Stage::Reading => {}
                }
            }
            Event::Fenced { epoch, holder, source } if epoch == c.epoch && holder != self.config.me => match c.stage {
                Stage::Asking => c.bump(epoch, &mut effects),
                Stage::Reading | Stage::Recording => {
                    let reason = format!("{source} promised epoch {epoch} to {holder}; campaigning again above it");
                    return self.become_stopped(reason, false);
                }
            },
            Event::Fenced { .. } => {}
            // Requests that failed (a slave slow to write its promise, an inventory cut short)
            // are made again; none is sent twice at once.
            Event::Tick => match c.stage {
                Stage::Asking => {
                    let again: Vec<NodeId> = c
                        .slaves
                        .iter()
                        .filter(|(n, s)| s.connected && c.facts.members.contains(n))
                        .filter(|(n, _)| !c.promised.contains_key(*n) && !c.asking.contains(*n))
                        .map(|(n, _)| n.clone())
                        .collect();
                    for node in again {
                        c.ask(node, &mut effects);
                    }
                }
                Stage::Reading => c.read_more(&mut effects),
                Stage::Recording => {}
            },
            Event::LogFailed { reason } => return self.become_failed(reason),
            other => return self.unexpected(Role::Candidate(Box::new(c)), other),
        }
        (Role::Candidate(Box::new(c)), effects)
    }

    fn step_leader(&mut self, l: Leader, event: Event) -> (Role, Vec<Effect>) {
        match event {
            Event::NewerEpoch { epoch, source } if epoch > l.epoch && !crate::mutation::fencing_off() => {
                self.learn(epoch);
                self.become_stopped(format!("{source} names epoch {epoch}, newer than ours ({})", l.epoch), false)
            }
            Event::Peer(Some(peer))
                if peer.role == ServerRole::Master
                    && (peer.epoch > l.epoch || (peer.epoch == l.epoch && !self.config.prefer_master))
                    && !crate::mutation::fencing_off() =>
            {
                self.learn(peer.epoch);
                self.become_stopped(format!("the peer serves in epoch {}", peer.epoch), false)
            }
            Event::Fenced { epoch, holder, source }
                if epoch == l.epoch && holder != self.config.me && !crate::mutation::fencing_off() =>
            {
                let reason = format!("{source} promised epoch {epoch} to {holder}; campaigning again above it");
                self.become_stopped(reason, false)
            }
            Event::LogFailed { reason } => self.become_failed(reason),
            Event::NewerEpoch { .. }
            | Event::Fenced { .. }
            | Event::Peer(_)
            | Event::SlaveArrived { .. }
            | Event::SlaveLeft { .. }
            | Event::Promise { .. }
            | Event::InventoryRead { .. }
            | Event::EpochRecorded { .. } => (Role::Leader(l), Vec::new()),
            other => self.unexpected(Role::Leader(l), other),
        }
    }

    fn step_failed(&mut self, f: Failed, _event: Event) -> (Role, Vec<Effect>) {
        (Role::Failed(f), Vec::new())
    }

    fn become_follower(&mut self) -> (Role, Vec<Effect>) {
        (Role::Following(Following), vec![Effect::Follow])
    }

    fn become_candidate(&mut self) -> (Role, Vec<Effect>) {
        let epoch = Epoch(self.known.max(self.facts.highest_epoch).0.saturating_add(1));
        let campaign = Campaign {
            epoch,
            stage: Stage::Asking,
            facts: self.facts.clone(),
            slaves: BTreeMap::new(),
            promised: BTreeMap::new(),
            asking: BTreeSet::new(),
            refused: BTreeMap::new(),
            reading: BTreeSet::new(),
            read: BTreeSet::new(),
        };
        let mut effects = vec![Effect::Campaign];
        // With no members there is no one to promise anything, and nothing was ever written to a
        // slave: only the node started as master may begin such a cluster (so two nodes are never
        // both granted an epoch); the other waits for it.
        let mut campaign = campaign;
        if campaign.facts.members.is_empty() && self.config.prefer_master {
            campaign.after_grant(&self.config, &mut effects);
        }
        (Role::Candidate(Box::new(campaign)), effects)
    }

    fn become_leader(&mut self, epoch: Epoch) -> (Role, Vec<Effect>) {
        self.learn(epoch);
        (Role::Leader(Leader { epoch }), vec![Effect::Serve { epoch }])
    }

    fn become_failed(&mut self, reason: String) -> (Role, Vec<Effect>) {
        let effects = vec![
            Effect::StopServing { reason: reason.clone() },
            Effect::StepDown { reason: format!("the log failed: {reason}"), pause: true },
        ];
        (Role::Failed(Failed { reason }), effects)
    }

    fn become_stopped(&mut self, reason: String, pause: bool) -> (Role, Vec<Effect>) {
        let effects =
            vec![Effect::StopServing { reason: reason.clone() }, Effect::StepDown { reason: reason.clone(), pause }];
        (Role::Stopped(reason), effects)
    }

    /// An event that cannot happen in this role is a bug in the caller; it changes nothing.
    fn unexpected(&mut self, role: Role, event: Event) -> (Role, Vec<Effect>) {
        debug_assert!(false, "event {event:?} in role {role:?}");
        tracing::error!(?event, "an event that does not belong to this role; ignored");
        (role, Vec::new())
    }
}

impl Campaign {
    /// The membership promises and reads are counted over: the log's.
    fn membership(&self) -> std::borrow::Cow<'_, Membership> {
        if crate::mutation::enabled("mutation-live-membership") {
            let mut met = Membership::default();
            for (node, state) in self.facts.members.iter().filter(|(n, _)| self.slaves.contains_key(*n)) {
                met.apply(node.clone(), state.incarnation, state.active);
            }
            return std::borrow::Cow::Owned(met);
        }
        std::borrow::Cow::Borrowed(&self.facts.members)
    }

    fn granted(&self, replicas: usize) -> bool {
        if crate::mutation::enabled("mutation-serve-with-one-slave") && !self.promised.is_empty() {
            return true;
        }
        self.membership().granted(replicas, &self.promised.keys().cloned().collect())
    }

    fn read_covers(&self, replicas: usize) -> bool {
        if crate::mutation::enabled("mutation-serve-with-one-slave") && !self.read.is_empty() {
            return true;
        }
        self.membership().read_covers(replicas, &self.read)
    }

    fn intact(&self, node: &NodeId, incarnation: Incarnation) -> bool {
        if crate::mutation::enabled("mutation-count-forgetful-reads") {
            return self.facts.members.contains(node);
        }
        self.facts.members.intact(node, incarnation)
    }

    /// A member answered (or failed to answer) the promise request of this epoch.
    fn answered(
        &mut self,
        config: &RoleConfig,
        known: &mut Epoch,
        node: NodeId,
        answer: Option<PromiseAnswer>,
        effects: &mut Vec<Effect>,
    ) {
        match answer {
            Some(answer) if answer.granted => {
                self.refused.remove(&node);
                if self.facts.members.contains(&node) {
                    self.promised.insert(node, answer.served);
                }
                if self.granted(config.replicas) {
                    self.after_grant(config, effects);
                }
            }
            Some(answer) => {
                *known = (*known).max(answer.epoch);
                let rival = answer.to.as_ref() != Some(&config.me);
                self.refused.insert(node, (answer.epoch, answer.to.clone()));
                if answer.epoch >= self.epoch {
                    self.bump(answer.epoch, effects);
                }
                if rival && config.has_peer {
                    // The other node holds that epoch: see whether it is alive and ahead before
                    // fighting over the slaves.
                    effects.push(Effect::AskPeer);
                }
            }
            // Asked again at the next tick.
            None => {}
        }
    }

    fn ask(&mut self, node: NodeId, effects: &mut Vec<Effect>) {
        self.asking.insert(node.clone());
        effects.push(Effect::AskPromise { node, epoch: self.epoch });
    }

    /// Campaigns again above `above`: earlier promises are for an epoch nobody will serve.
    fn bump(&mut self, above: Epoch, effects: &mut Vec<Effect>) {
        self.epoch = Epoch(above.0.max(self.epoch.0).saturating_add(1));
        self.promised.clear();
        self.asking.clear();
        let connected: Vec<NodeId> = self
            .slaves
            .iter()
            .filter(|(node, seen)| seen.connected && self.facts.members.contains(node))
            .map(|(node, _)| node.clone())
            .collect();
        for node in connected {
            self.ask(node, effects);
        }
    }

    /// Granted: records the epoch at once if this node's own log is complete, or reads first.
    fn after_grant(&mut self, config: &RoleConfig, effects: &mut Vec<Effect>) {
        if self.log_complete(&config.me) {
            self.stage = Stage::Recording;
            effects.push(Effect::RecordEpoch { epoch: self.epoch });
            return;
        }
        self.stage = Stage::Reading;
        self.read_more(effects);
        if self.read_covers(config.replicas) {
            self.stage = Stage::Recording;
            effects.push(Effect::RecordEpoch { epoch: self.epoch });
        }
    }

    /// Whether this node's own log holds everything any master completed: its newest epoch
    /// record is its own (written only after a complete takeover) and no newer epoch served
    /// anything (a granting set meets every quorum that served), or the log names no slave.
    fn log_complete(&self, me: &NodeId) -> bool {
        if self.facts.members.is_empty() {
            return true;
        }
        let served = self.promised.values().copied().max().unwrap_or_default();
        match &self.facts.newest_grant {
            Some((epoch, Some(master))) => master == me && *epoch >= served,
            Some((_, None)) | None => false,
        }
    }

    /// Starts inventory reads of connected intact members not read yet.
    fn read_more(&mut self, effects: &mut Vec<Effect>) {
        for (node, seen) in &self.slaves {
            let wanted = seen.connected
                && self.intact(node, seen.incarnation)
                && !self.read.contains(node)
                && !self.reading.contains(node);
            if wanted {
                self.reading.insert(node.clone());
                effects.push(Effect::ReadInventory { node: node.clone(), epoch: self.epoch });
            }
        }
    }

    fn explain(&self, config: &RoleConfig) -> String {
        let members = &self.facts.members;
        match self.stage {
            Stage::Asking if members.is_empty() => format!(
                "candidate for epoch {}: no slave has joined this cluster yet, and only the node started as master \
                 may begin it",
                self.epoch
            ),
            Stage::Asking => {
                let needed = members.promises_needed(config.replicas);
                let mut text = format!(
                    "candidate for epoch {}: {} of the {needed} promises needed from the {} recorded slaves",
                    self.epoch,
                    self.promised.len(),
                    members.len()
                );
                let absent: Vec<&str> = members
                    .iter()
                    .map(|(n, _)| n)
                    .filter(|n| !self.slaves.get(*n).is_some_and(|s| s.connected))
                    .map(NodeId::as_str)
                    .collect();
                if !absent.is_empty() {
                    text.push_str(&format!("; not connected: {}", absent.join(", ")));
                }
                for (node, (epoch, to)) in &self.refused {
                    let to = to.as_ref().map_or("an unnamed node", NodeId::as_str);
                    text.push_str(&format!("; {node} promised epoch {epoch} to {to}"));
                }
                text
            }
            Stage::Recording => format!("granted epoch {}; adopting what was read and recording the epoch", self.epoch),
            Stage::Reading => {
                let missing = members.reads_missing(config.replicas, &self.read);
                let mut text = format!(
                    "granted epoch {}: reading slaves for writes the log may lack, {} read, {missing} more intact slaves needed",
                    self.epoch,
                    self.read.len()
                );
                let forgetful: Vec<&str> = self
                    .slaves
                    .iter()
                    .filter(|(n, s)| !members.intact(n, s.incarnation))
                    .map(|(n, _)| n.as_str())
                    .collect();
                if !forgetful.is_empty() {
                    text.push_str(&format!("; restarted since the log last named them: {}", forgetful.join(", ")));
                }
                text
            }
        }
    }
}
