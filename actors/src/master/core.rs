//! The coordinator's decisions, as a plain state machine: no sockets, no clocks, no actors.
//!
//! The coordinator actor feeds it events (a client command, a slave joining or leaving, a
//! discovery or seeding finished) and carries out the [`Effect`]s it returns (start a quorum
//! read or write, answer a client). Everything that decides what is committed lives here:
//! version assignment, the key map, placement, and which replicas count toward a quorum.
//!
//! ## Replica sets and amnesia
//! Each key has a replica set of [`Replica`]s: a slave *and the incarnation it had* when it
//! received the key. Slaves keep data in memory, so a slave that restarts comes back with a
//! new incarnation and nothing in it. Its old acknowledgements are gone; counting its answers
//! toward a read quorum could hide a completed write. So a member whose slave now runs a
//! different incarnation still receives reads and writes, but a read does not count its answer
//! until it has been refilled. It is refilled (and counts again) when it acknowledges a write
//! or a read repair: any version it then holds was assigned after it came back, so it is at
//! least as new as every write completed before.
//!
//! ## Keys known only from the log, and keys not known at all
//! After a master restart (and after a takeover) the map holds every key of the log, but not
//! where it lives: replica sets are not logged. The first command on such a key asks every
//! live slave (discovery) and queues until the answers are in. If some slave holds the key, the
//! new replica set prefers the holders of the newest version, and that version is copied
//! (never re-minted) to a majority of the set before the queued commands run. Commands on a
//! key are queued while this happens, so two commands can never place one key on two
//! different sets.
//!
//! A key the map does not hold at all is looked up the same way before a read answers that
//! it does not exist. A write to it (a put or a delete, which do not depend on the value
//! before them) places it on a new replica set and runs at once: its version is above every
//! version any slave holds, and the map lacks no completed write (every write is logged before
//! it is acknowledged, every value a read returned is logged before it is answered, and a
//! takeover adopts what its log lacks, see `Coordinator::stamp`), so a copy elsewhere can only
//! be a write whose outcome was never known, older than this one and never read again. A
//! command that needs the value before it (none yet) would be looked up first.
//!
//! ## The master's copy, and background repair
//! The core also keeps the newest entry the master has minted, copied or recovered for every
//! key (the state its write-ahead log holds). Since an acknowledged write is logged before it
//! is acknowledged, that entry is at least as new as every completed write, which makes it a
//! safe source for refilling replicas. `maintenance` works through the damage in the
//! background, a bounded number of keys at a time: members on slaves that are gone are
//! replaced by live slaves (`UNFILLED` until they are refilled), replica sets short of R grow,
//! members that forgot their data are refilled, and keys known only from the log (after a
//! restart) are placed through discovery. A new or refilling member counts toward read quorums
//! only after it acknowledged a copy, so changing a set never lets a read miss a completed
//! write.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use net::{ClientReply, Entry, Epoch, Incarnation, Key, Lsn, NodeId, Seq, Value, Version, WireError};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::keytable::{CensusPass, KeyState, KeyTable};
use super::placement;
use crate::role::membership::Membership;
use crate::sharded::SHARDS;

/// Keys a call of [`Coordinator::maintenance`] tends at most.
pub const SCAN_CHUNK: usize = 16_384;

/// The incarnation of a member that was added to a set and has not been filled yet: no slave
/// runs it, so such a member never counts for reads until a copy reaches it.
pub const UNFILLED: Incarnation = Incarnation(0);

pub use super::keytable::Replica;

/// A slave a quorum operation talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub node: NodeId,
    /// The incarnation the slave runs now.
    pub incarnation: Incarnation,
    /// Whether its read answer counts toward the quorum (false while it is being refilled).
    pub counts: bool,
}

/// Replicate `entry` to `targets` until `needed` of them hold it.
#[derive(Debug, Clone, PartialEq)]
pub struct WritePlan {
    pub key: Key,
    pub entry: Entry,
    pub targets: Vec<Target>,
    pub needed: usize,
    /// Whether the entry must also be durable in the master's log before the write completes
    /// (a client write); copies of entries the log already has do not wait for it.
    pub log: bool,
    /// For a client write: the key held a value before it (the master's previous entry).
    pub existed: bool,
    /// The stamp the slaves keep with the entry (see [`Coordinator::stamp`]); `None` for a
    /// write minted now, whose stamp is its version.
    pub stamp: Option<Version>,
}

/// Ask `targets` for `key` until `needed` counting answers are in, then repair.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadPlan {
    pub key: Key,
    pub targets: Vec<Target>,
    pub needed: usize,
    /// The version of the master's own copy when the read was planned: a winner newer than it
    /// is reported with [`Coordinator::read_won`].
    pub known: Option<Version>,
    /// The key had a record in the log that was not durable yet: whatever the read finds is
    /// answered through [`Coordinator::settle_read`], once the log holds it.
    pub unsynced: bool,
    /// The stamp of the read's repairs (see [`Coordinator::stamp`]).
    pub stamp: Version,
}

/// A client operation on one key.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Get,
    Put(Value),
    Del,
}

/// What the coordinator actor must do.
#[derive(Debug)]
pub enum Effect<T> {
    /// Answer a client now.
    Reply { token: T, result: Result<ClientReply, WireError> },
    /// Start a quorum write and answer the client when it completes.
    Write { token: T, plan: WritePlan },
    /// Start a quorum read (with repair) and answer the client when it completes.
    Read { token: T, plan: ReadPlan },
    /// Ask every target for `key` and report with [`Coordinator::discovered`].
    Discover { key: Key, targets: Vec<Target> },
    /// Copy a discovered entry into a new replica set; report with [`Coordinator::seeded`].
    Seed { plan: WritePlan },
    /// Copy the master's entry to one member in the background; report with
    /// [`Coordinator::refilled`].
    Refill { plan: WritePlan },
    /// Append an entry found on the slaves, newer than the log's, to the log, with its own
    /// `stamp`.
    Log { key: Key, entry: Entry, stamp: Version },
    /// Append `Member { node, incarnation, active }` to the log. A joining (`active: false`)
    /// is reported back with [`Coordinator::member_recorded`] once durable.
    RecordMember { node: NodeId, incarnation: Incarnation, active: bool },
}

/// Background work.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Chore {
    /// Discover and place a key known only from the log.
    Place(Key),
    /// Copy the master's entry to a member that lacks it.
    Refill(Key, NodeId),
}

/// One slave's answer to a discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub node: NodeId,
    pub incarnation: Incarnation,
    pub entry: Option<Entry>,
}

/// Counts for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MapStatus {
    pub keys: u64,
    pub values: u64,
    pub under_replicated: u64,
    pub placed: BTreeMap<NodeId, u64>,
}

/// The coordinator's state. `T` identifies whoever waits for an answer.
pub struct Coordinator<T> {
    epoch: Epoch,
    seq: Seq,
    replicas: usize,
    live: BTreeMap<NodeId, Incarnation>,
    /// The recorded slave membership: replica sets use only its active members.
    membership: Membership,
    /// Joinings recorded but not in force yet, with the LSN of their record once durable.
    joining: BTreeMap<NodeId, Option<Lsn>>,
    /// A joining takes effect only once the standby holds its record (there is a peer).
    standby_required: bool,
    /// The standby holds every record up to here.
    standby_acked: Lsn,
    keys: KeyTable,
    /// Keys being discovered or seeded, with the commands waiting for them.
    pending: HashMap<Key, Vec<(Op, T)>>,
    rng: StdRng,
    /// Membership changed since the last scan for background work.
    dirty: bool,
    /// Keys of the current shard the scan has still to look at (the next one last), and the
    /// next shard of the key map to list ([`SHARDS`]: the scan is done).
    scanning: Vec<Key>,
    scan_shard: usize,
    chores: VecDeque<Chore>,
    /// Background placements (by key) and refills in flight.
    placing: HashSet<Key>,
    refills: usize,
    /// The newest version of each key whose record was appended to the log and is not known
    /// durable yet, and reads that wait for such a record (the version they wait for).
    unsynced: HashMap<Key, Version>,
    settling: HashMap<Key, Vec<(Version, T, ClientReply)>>,
    /// The highest stamp of the log this coordinator recovered from.
    log_stamp: Version,
}

impl<T> Coordinator<T> {
    /// A coordinator for `epoch` that places keys on `replicas` slaves. `seed` drives placement.
    pub fn new(epoch: Epoch, replicas: usize, seed: u64) -> Self {
        assert!(replicas > 0, "the replication factor is at least 1");
        Coordinator {
            epoch,
            seq: Seq(0),
            replicas,
            live: BTreeMap::new(),
            membership: Membership::default(),
            joining: BTreeMap::new(),
            standby_required: false,
            standby_acked: Lsn(0),
            keys: KeyTable::default(),
            pending: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
            dirty: false,
            scanning: Vec::new(),
            scan_shard: SHARDS,
            chores: VecDeque::new(),
            placing: HashSet::new(),
            refills: 0,
            unsynced: HashMap::new(),
            settling: HashMap::new(),
            log_stamp: Version::ZERO,
        }
    }

    /// Starts from the membership the log recorded. With `standby_required` (the cluster has a
    /// standby), a slave's joining takes effect only once the standby holds its record, so
    /// that every node that may take over later knows every slave a replica set may use.
    pub fn with_membership(mut self, membership: Membership, standby_required: bool) -> Self {
        self.membership = membership;
        self.standby_required = standby_required;
        self
    }

    /// Serves in `epoch` from now on (a promoted coordinator learns it once it is granted).
    pub fn serve(&mut self, epoch: Epoch) {
        debug_assert!(epoch >= self.epoch, "epochs only grow");
        if epoch > self.epoch {
            self.epoch = epoch;
            self.seq = Seq(0);
        }
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Slaves whose joining is recorded but not yet in force.
    pub fn joining(&self) -> impl Iterator<Item = &NodeId> {
        self.joining.keys()
    }

    /// Loads entries recovered from the log. Their keys are placed in the background (or by
    /// the first command on them) through discovery.
    pub fn recover(&mut self, entries: impl IntoIterator<Item = (Key, Entry)>) {
        for (key, entry) in entries {
            self.observe(entry.version);
            self.keys.put(&key, &KeyState { replicas: Vec::new(), entry: Some(entry) });
        }
        self.dirty = true;
    }

    /// Starts from the keys a log replay (or a standby) rebuilt, none of them placed yet, and
    /// the highest stamp of that log.
    pub fn recover_table(&mut self, keys: KeyTable, stamp: Version) {
        debug_assert!(self.keys.is_empty(), "a coordinator recovers once, before it serves");
        self.keys = keys;
        self.log_stamp = stamp;
        self.observe(stamp);
        self.dirty = true;
    }

    /// The highest stamp of the log this coordinator recovered from: a slave holds nothing
    /// the log lacks that it was written with a stamp at or below this.
    pub fn log_stamp(&self) -> Version {
        self.log_stamp
    }

    /// The stamp of a copy, repair or refill of an entry the master holds: the last version
    /// issued. Every write a slave receives carries a stamp, and the log's records carry
    /// theirs, in one order: a minted write's is its version, a record of an entry copied
    /// from the slaves gets a fresh one. A copy of an entry whose record a standby's log lacks
    /// therefore carries a stamp above the highest one that log holds, and a takeover that
    /// asks intact slaves for what was written above it finds every write the log may lack
    /// (`SlaveOp::Inventory { since }`), without reading what the log already has.
    pub fn stamp(&self) -> Version {
        self.last_version()
    }

    /// The key map (a snapshot copies it).
    pub fn table(&self) -> &KeyTable {
        &self.keys
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// The last version issued (or observed in this epoch).
    pub fn last_version(&self) -> Version {
        Version { epoch: self.epoch, seq: self.seq }
    }

    pub fn live_slaves(&self) -> impl Iterator<Item = (&NodeId, &Incarnation)> {
        self.live.iter()
    }

    /// Makes sure later versions are above `version`, which some replica holds.
    pub fn observe(&mut self, version: Version) {
        if version.epoch == self.epoch && version.seq > self.seq {
            self.seq = version.seq;
        }
    }

    /// A slave connected (or reconnected). A new incarnation makes the slave's old memberships
    /// amnesiac until refilled, and is recorded (a takeover then reads it as holding, with the
    /// log, everything it acknowledged). A slave the membership lacks is recorded as joining.
    pub fn slave_joined(&mut self, node: NodeId, incarnation: Incarnation, max_version: Version) -> Vec<Effect<T>> {
        self.slave_connected(node.clone(), incarnation, max_version);
        self.record_incarnation(node, incarnation)
    }

    /// A slave is live, running `incarnation`; nothing is recorded yet (see
    /// [`Coordinator::record_incarnation`]).
    pub fn slave_connected(&mut self, node: NodeId, incarnation: Incarnation, max_version: Version) {
        debug_assert_ne!(incarnation, UNFILLED, "slaves draw non-zero incarnations");
        self.observe(max_version);
        self.live.insert(node, incarnation);
        self.dirty = true;
    }

    /// Records a live slave's incarnation if the membership names another, and its joining if
    /// the membership lacks it.
    pub fn record_incarnation(&mut self, node: NodeId, incarnation: Incarnation) -> Vec<Effect<T>> {
        match self.membership.get(&node) {
            Some(state) if state.incarnation == incarnation => Vec::new(),
            Some(state) => {
                let active = state.active;
                self.membership.apply(node.clone(), incarnation, active);
                vec![Effect::RecordMember { node, incarnation, active }]
            }
            None => {
                self.membership.apply(node.clone(), incarnation, false);
                self.joining.insert(node.clone(), None);
                vec![Effect::RecordMember { node, incarnation, active: false }]
            }
        }
    }

    /// The record of `node`'s joining is durable at `lsn`.
    pub fn member_recorded(&mut self, node: &NodeId, lsn: Lsn) -> Vec<Effect<T>> {
        if let Some(slot) = self.joining.get_mut(node) {
            *slot = Some(lsn);
        }
        self.activate()
    }

    /// Joinings the log recorded but never put in force (the master stopped first) take effect
    /// once the standby holds the log up to `lsn` (a record after them).
    pub fn resume_joinings(&mut self, lsn: Lsn) -> Vec<Effect<T>> {
        let inactive: Vec<NodeId> =
            self.membership.iter().filter(|(_, m)| !m.active).map(|(node, _)| node.clone()).collect();
        for node in inactive {
            self.joining.entry(node).or_insert(Some(lsn));
        }
        self.activate()
    }

    /// The standby holds every record up to `lsn`.
    pub fn standby_acked(&mut self, lsn: Lsn) -> Vec<Effect<T>> {
        self.standby_acked = self.standby_acked.max(lsn);
        self.activate()
    }

    /// Puts in force every joining whose record is where it must be.
    fn activate(&mut self) -> Vec<Effect<T>> {
        let ready: Vec<NodeId> = self
            .joining
            .iter()
            .filter(|(_, lsn)| lsn.is_some_and(|lsn| !self.standby_required || lsn <= self.standby_acked))
            .map(|(node, _)| node.clone())
            .collect();
        let mut effects = Vec::new();
        for node in ready {
            self.joining.remove(&node);
            let Some(incarnation) = self.membership.get(&node).map(|s| s.incarnation) else { continue };
            self.membership.apply(node.clone(), incarnation, true);
            self.dirty = true;
            effects.push(Effect::RecordMember { node, incarnation, active: true });
        }
        effects
    }

    /// A read found `entry` for `key`, newer than the master's copy when it was planned: the
    /// master's copy is raised to it (and logged when it is newer than the log's), so that a
    /// refill never copies an older value back. Returns the stamp the read must write to the
    /// replicas it counts, holders included, before it answers: the record's own when one was
    /// appended, so that a standby whose log lacks the record finds the key in a takeover.
    pub fn read_won(&mut self, key: &Key, entry: Entry) -> (Vec<Effect<T>>, Version) {
        if !self.keys.contains(key) || self.keys.version(key).is_some_and(|v| v >= entry.version) {
            return (Vec::new(), self.stamp());
        }
        self.keys.set_entry(key, Some(&entry));
        self.observe(entry.version);
        self.appended(key, entry.version);
        let stamp = self.next_version();
        (vec![Effect::Log { key: key.clone(), entry, stamp }], stamp)
    }

    /// A record of `key` at `version` goes to the log now; reads of the key wait for it.
    fn appended(&mut self, key: &Key, version: Version) {
        let newest = self.unsynced.entry(key.clone()).or_insert(version);
        *newest = (*newest).max(version);
    }

    /// A read of `key` found `version` on a quorum (and the master's copy was raised to it,
    /// see [`Coordinator::read_won`]): `reply` goes out once the log holds every record of the
    /// key appended so far. A read never returns what a crash of this master could still take
    /// back: slaves keep data in memory, and the log is what a restart or a takeover keeps.
    pub fn settle_read(&mut self, key: &Key, version: Version, token: T, reply: ClientReply) -> Vec<Effect<T>> {
        if crate::mutation::enabled("mutation-read-before-durable") {
            return vec![Effect::Reply { token, result: Ok(reply) }];
        }
        match self.unsynced.get(key) {
            Some(&newest) => {
                self.settling.entry(key.clone()).or_default().push((newest.max(version), token, reply));
                Vec::new()
            }
            None => vec![Effect::Reply { token, result: Ok(reply) }],
        }
    }

    /// The log made these records durable (in the order they were appended): reads waiting for
    /// them are answered.
    pub fn synced(&mut self, records: impl IntoIterator<Item = (Key, Version)>) -> Vec<Effect<T>> {
        let mut effects = Vec::new();
        for (key, version) in records {
            if self.unsynced.get(&key).is_some_and(|&newest| newest <= version) {
                self.unsynced.remove(&key);
            }
            let Some(waiting) = self.settling.get_mut(&key) else { continue };
            let (ready, still): (Vec<_>, Vec<_>) = std::mem::take(waiting).into_iter().partition(|w| w.0 <= version);
            effects.extend(ready.into_iter().map(|(_, token, reply)| Effect::Reply { token, result: Ok(reply) }));
            if still.is_empty() {
                self.settling.remove(&key);
            } else {
                *waiting = still;
            }
        }
        effects
    }

    /// Reads waiting for the log, answered with `reason` (the master stops serving).
    pub fn fail_settling(&mut self, reason: &str) -> Vec<Effect<T>> {
        self.settling
            .drain()
            .flat_map(|(_, waiting)| waiting)
            .map(|(_, token, _)| Effect::Reply { token, result: Err(WireError::unavailable(reason.to_string())) })
            .collect()
    }

    /// The replica-set size in force: R, capped by the active members.
    fn set_size(&self) -> usize {
        if crate::mutation::enabled("mutation-live-replica-sets") {
            return self.replicas.min(self.live_targets().len());
        }
        self.membership.replica_set_size(self.replicas)
    }

    /// The quorum of every read and write on a set of `size`: a majority of the replica-set
    /// size in force, whatever size the set has now.
    fn quorum(&self, size: usize) -> usize {
        if crate::mutation::enabled("mutation-live-replica-sets") {
            return size / 2 + 1;
        }
        self.membership.quorum(self.replicas)
    }

    /// A slave is gone. Its memberships are handed to other slaves by `maintenance`.
    pub fn slave_left(&mut self, node: &NodeId) {
        self.live.remove(node);
        self.dirty = true;
    }

    /// `node`, running `incarnation`, now holds a version of `key` assigned after it joined.
    pub fn revalidate(&mut self, key: &Key, node: &NodeId, incarnation: Incarnation) {
        if self.live.get(node) != Some(&incarnation) {
            return;
        }
        let mut members = self.keys.members(key);
        if let Some(member) = members.iter_mut().find(|m| &m.node == node) {
            if member.incarnation != incarnation {
                member.incarnation = incarnation;
                self.keys.set_members(key, &members);
            }
        }
    }

    /// A client command on `key`.
    pub fn submit(&mut self, key: Key, op: Op, token: T) -> Vec<Effect<T>> {
        if let Some(waiting) = self.pending.get_mut(&key) {
            waiting.push((op, token));
            return Vec::new();
        }
        match (self.keys.placed(&key), &op) {
            (Some(true), _) => return vec![self.plan(key, op, token)],
            (None, Op::Put(_) | Op::Del) => return self.unknown_written(key, op, token),
            (Some(false), _) | (None, Op::Get) => {}
        }
        let targets = self.live_targets();
        if targets.is_empty() {
            return vec![Effect::Reply { token, result: Err(WireError::unavailable("no live slaves")) }];
        }
        self.pending.insert(key.clone(), vec![(op, token)]);
        vec![Effect::Discover { key, targets }]
    }

    /// A put or delete of a key the map does not hold (see the module's documentation): the key
    /// is placed on a new replica set and the write runs.
    fn unknown_written(&mut self, key: Key, op: Op, token: T) -> Vec<Effect<T>> {
        if !self.place_new(&key) {
            return vec![Effect::Reply { token, result: Err(WireError::unavailable("no live slaves")) }];
        }
        vec![self.plan(key, op, token)]
    }

    /// Places a key the map does not hold on a new replica set, with no entry yet; false when
    /// there is no slave to place it on.
    fn place_new(&mut self, key: &Key) -> bool {
        let members = self.place(&[]);
        if members.is_empty() {
            return false;
        }
        self.keys.put(key, &KeyState { replicas: members, entry: None });
        self.tend(key);
        true
    }

    /// The answers of a discovery. `complete` is false when some target did not answer: then
    /// the key may live on a slave that was not heard, and the waiting commands fail.
    pub fn discovered(&mut self, key: Key, found: Vec<Found>, complete: bool) -> Vec<Effect<T>> {
        let Some(waiting) = self.pending.remove(&key) else {
            debug_assert!(false, "discovery of {key:?} finished with nothing waiting");
            return Vec::new();
        };
        if !complete {
            self.placing.remove(&key);
            return fail_all(waiting, "not every live slave answered the lookup of an unmapped key");
        }
        let logged = self.keys.entry(&key);
        let found_newest = found.iter().filter_map(|f| f.entry.as_ref()).max_by_key(|e| e.version).cloned();
        let mut effects = Vec::new();
        // A version newer than the log's is appended with a stamp of its own, which every
        // replica that counts must hold, the slaves that already had the version included.
        let mut restamp = None;
        let winner = match (found_newest, logged) {
            (Some(f), Some(l)) if l.version >= f.version => Some(l),
            (Some(f), _) => {
                self.observe(f.version);
                self.appended(&key, f.version);
                let stamp = self.next_version();
                restamp = Some(stamp);
                effects.push(Effect::Log { key: key.clone(), entry: f.clone(), stamp });
                Some(f)
            }
            (None, logged) => logged,
        };
        if let Some(winner) = &winner {
            self.observe(winner.version);
        }
        // Prefer the holders of the newest version, then other holders, newest first.
        let mut holders: Vec<&Found> = found.iter().filter(|f| f.entry.is_some()).collect();
        holders.sort_by_key(|f| std::cmp::Reverse(f.entry.as_ref().map(|e| e.version)));
        let preferred: Vec<NodeId> = holders.iter().map(|f| f.node.clone()).collect();
        let members = self.place(&preferred);
        if members.is_empty() {
            self.placing.remove(&key);
            effects.extend(fail_all(waiting, "no live slaves"));
            return effects;
        }
        let needed = self.quorum(members.len());
        let holds_stamp = restamp.is_none() || crate::mutation::enabled("mutation-no-restamp");
        let (have, lack): (Vec<&Replica>, Vec<&Replica>) = members.iter().partition(|m| {
            holds_stamp
                && found.iter().any(|f| {
                    f.node == m.node
                        && f.incarnation == m.incarnation
                        && winner.is_some()
                        && f.entry.as_ref().map(|e| e.version) == winner.as_ref().map(|w| w.version)
                })
        });
        let seed = match &winner {
            Some(entry) if have.len() < needed => Some(WritePlan {
                key: key.clone(),
                entry: entry.clone(),
                targets: lack
                    .iter()
                    .filter(|m| self.live.contains_key(&m.node))
                    .map(|m| Target { node: m.node.clone(), incarnation: m.incarnation, counts: true })
                    .collect(),
                needed: needed - have.len(),
                log: false,
                existed: false,
                stamp: Some(restamp.unwrap_or_else(|| self.stamp())),
            }),
            Some(_) | None => None,
        };
        self.keys.put(&key, &KeyState { replicas: members, entry: winner });
        match seed {
            Some(plan) => {
                self.pending.insert(key, waiting);
                effects.push(Effect::Seed { plan });
            }
            None => {
                self.placing.remove(&key);
                self.tend(&key);
                effects.extend(self.run_waiting(key, waiting));
            }
        }
        effects
    }

    /// Takes over a key found by a takeover's inventory: as if a discovery had found `found`.
    pub fn adopt(&mut self, key: Key, found: Vec<Found>) -> Vec<Effect<T>> {
        if self.pending.contains_key(&key) {
            return Vec::new();
        }
        self.pending.insert(key.clone(), Vec::new());
        self.discovered(key, found, true)
    }

    /// A seeding finished: on success the waiting commands run, otherwise they fail and the key
    /// is forgotten, so the next command discovers it again.
    pub fn seeded(&mut self, key: Key, ok: bool) -> Vec<Effect<T>> {
        let Some(waiting) = self.pending.remove(&key) else {
            debug_assert!(false, "seeding of {key:?} finished with nothing waiting");
            return Vec::new();
        };
        self.placing.remove(&key);
        if ok {
            self.tend(&key);
            self.run_waiting(key, waiting)
        } else {
            // Back to "known only from the log" (or unknown): the next command discovers again.
            match self.keys.version(&key) {
                Some(_) => self.keys.set_members(&key, &[]),
                None => self.keys.remove(&key),
            }
            self.dirty = true;
            fail_all(waiting, "could not copy the key to a majority of its new replica set")
        }
    }

    pub fn map_status(&self) -> MapStatus {
        let mut pass = CensusPass::default();
        while !self.count_map(&mut pass, SHARDS) {}
        self.map_status_of(pass)
    }

    /// Counts up to `shards` more shards of the key map into `pass`, against the slaves live
    /// now; true once the whole map is counted.
    pub fn count_map(&self, pass: &mut CensusPass, shards: usize) -> bool {
        self.keys.count_shards(pass, shards, |node| self.live.get(node).copied(), self.set_size())
    }

    /// The status a finished `pass` counted.
    pub fn map_status_of(&self, pass: CensusPass) -> MapStatus {
        let census = self.keys.census_of(pass);
        MapStatus {
            keys: self.keys.len() as u64,
            values: census.values,
            under_replicated: census.under_replicated,
            placed: census.placed,
        }
    }

    /// Up to `budget` pieces of background work may run at once; returns the ones to start
    /// now. Call it after membership changes, after background work finishes, and now and then.
    pub fn maintenance(&mut self, budget: usize) -> Vec<Effect<T>> {
        if self.dirty {
            self.dirty = false;
            self.scan();
        }
        // At most SCAN_CHUNK keys a call, and none while as many chores wait: the list of
        // chores stays bounded however many keys need one (every key after a restart).
        let mut tended = 0;
        while tended < SCAN_CHUNK && self.chores.len() < SCAN_CHUNK {
            match self.scanning.pop() {
                Some(key) => {
                    self.tend(&key);
                    tended += 1;
                }
                None if self.scan_shard < SHARDS => {
                    let mut keys = self.keys.shard_keys(self.scan_shard);
                    keys.reverse();
                    self.scanning = keys;
                    self.scan_shard += 1;
                }
                None => break,
            }
        }
        let mut effects = Vec::new();
        while self.placing.len() + self.refills < budget {
            let Some(chore) = self.chores.pop_front() else { break };
            match chore {
                Chore::Place(key) => {
                    let unplaced = self.keys.placed(&key) == Some(false);
                    if !unplaced || self.pending.contains_key(&key) || self.live_targets().is_empty() {
                        continue;
                    }
                    self.pending.insert(key.clone(), Vec::new());
                    self.placing.insert(key.clone());
                    effects.push(Effect::Discover { key, targets: self.live_targets() });
                }
                Chore::Refill(key, node) => {
                    if let Some(plan) = self.refill_plan(&key, &node) {
                        self.refills += 1;
                        effects.push(Effect::Refill { plan });
                    }
                }
            }
        }
        effects
    }

    /// A background refill finished.
    pub fn refilled(&mut self, key: &Key, node: &NodeId, incarnation: Incarnation, ok: bool) {
        debug_assert!(self.refills > 0, "a refill finished that was never started");
        self.refills = self.refills.saturating_sub(1);
        if ok {
            self.revalidate(key, node, incarnation);
        } else {
            self.dirty = true;
        }
    }

    /// Background work is waiting or running.
    pub fn busy(&self) -> bool {
        self.dirty
            || !self.scanning.is_empty()
            || self.scan_shard < SHARDS
            || !self.chores.is_empty()
            || self.refills > 0
            || !self.placing.is_empty()
    }

    /// Starts rebuilding the list of chores from the key map: each call of `maintenance` then
    /// tends the next [`SCAN_CHUNK`] keys (replaces members on dead slaves, grows short sets,
    /// lists members to refill and keys to place), listing the map one shard at a time, so no
    /// call takes time in proportion to the data set.
    fn scan(&mut self) {
        self.chores.clear();
        // Shard by shard, in key order within each, so that a seed gives the same chores (and
        // placements) every time.
        self.scanning.clear();
        self.scan_shard = 0;
    }

    /// Lists the chores one key needs: placing it, replacing members on slaves that are gone,
    /// growing a short set, refilling members that lack the master's entry.
    fn tend(&mut self, key: &Key) {
        if self.pending.contains_key(key) {
            return;
        }
        let Some(placed) = self.keys.placed(key) else { return };
        if !placed {
            if self.keys.version(key).is_some() {
                self.chores.push_back(Chore::Place(key.clone()));
            }
            return;
        }
        let mut replicas = self.keys.members(key);
        let before = replicas.clone();
        let target = self.membership.replica_set_size(self.replicas);
        let membership = &self.membership;
        let mut spares: Vec<&NodeId> = self
            .live
            .keys()
            .filter(|n| membership.get(n).is_some_and(|s| s.active) && !replicas.iter().any(|m| &m.node == *n))
            .collect();
        spares.shuffle(&mut self.rng);
        for member in replicas.iter_mut() {
            if !self.live.contains_key(&member.node) {
                if let Some(spare) = spares.pop() {
                    *member = Replica { node: spare.clone(), incarnation: UNFILLED };
                }
            }
        }
        let live_members = replicas.iter().filter(|m| self.live.contains_key(&m.node)).count();
        for spare in spares.into_iter().take(target.saturating_sub(live_members)) {
            replicas.push(Replica { node: spare.clone(), incarnation: UNFILLED });
        }
        if replicas != before {
            self.keys.set_members(key, &replicas);
        }
        for member in &replicas {
            if self.live.get(&member.node).is_some_and(|inc| *inc != member.incarnation) {
                self.chores.push_back(Chore::Refill(key.clone(), member.node.clone()));
            }
        }
    }

    /// A copy of the master's entry for a member that still lacks it, if that is still needed.
    /// A member of a key that was never written has nothing to lack and counts at once.
    fn refill_plan(&mut self, key: &Key, node: &NodeId) -> Option<WritePlan> {
        if self.pending.contains_key(key) {
            return None;
        }
        let incarnation = *self.live.get(node)?;
        let mut members = self.keys.members(key);
        let member = members.iter_mut().find(|m| &m.node == node && m.incarnation != incarnation)?;
        let Some(entry) = self.keys.entry(key) else {
            member.incarnation = incarnation;
            self.keys.set_members(key, &members);
            return None;
        };
        Some(WritePlan {
            key: key.clone(),
            entry,
            targets: vec![Target { node: node.clone(), incarnation, counts: false }],
            needed: 1,
            log: false,
            existed: false,
            stamp: Some(self.stamp()),
        })
    }

    /// Plans the commands that waited for `key`, in order. One that starts a seeding (a read
    /// that must first fill forgetful replicas) makes the rest wait for it again.
    fn run_waiting(&mut self, key: Key, waiting: Vec<(Op, T)>) -> Vec<Effect<T>> {
        let mut effects = Vec::new();
        let mut rest = waiting.into_iter();
        while let Some((op, token)) = rest.next() {
            effects.push(self.plan(key.clone(), op, token));
            if let Some(queue) = self.pending.get_mut(&key) {
                queue.extend(rest);
                break;
            }
        }
        effects
    }

    fn plan(&mut self, key: Key, op: Op, token: T) -> Effect<T> {
        let members = self.keys.members(&key);
        let size = members.len();
        let needed = self.quorum(size);
        let targets: Vec<Target> = members
            .iter()
            .filter_map(|m| {
                self.live.get(&m.node).map(|&incarnation| Target {
                    node: m.node.clone(),
                    incarnation,
                    counts: incarnation == m.incarnation,
                })
            })
            .collect();
        // A refilled member's write acknowledgement counts (the version is newer than all it
        // forgot); its read answer does not until then.
        let usable = match op {
            Op::Get => targets.iter().filter(|t| t.counts).count(),
            Op::Put(_) | Op::Del => targets.len(),
        };
        if usable < needed {
            // Members that forgot the key (or never had it) can be filled from the master's own
            // entry, which is at least as new as every completed write; the read runs after.
            let counting = targets.iter().filter(|t| t.counts).count();
            if let (Op::Get, Some(entry)) = (&op, self.keys.entry(&key)) {
                if targets.len() >= needed {
                    let plan = WritePlan {
                        key: key.clone(),
                        entry,
                        targets: targets.into_iter().filter(|t| !t.counts).collect(),
                        needed: needed - counting,
                        log: false,
                        existed: false,
                        stamp: Some(self.stamp()),
                    };
                    self.pending.insert(key, vec![(op, token)]);
                    return Effect::Seed { plan };
                }
            }
            let detail = format!("key {key}: {usable} of its {size} replicas can answer, {needed} needed");
            return Effect::Reply { token, result: Err(WireError::unavailable(detail)) };
        }
        match op {
            Op::Get => {
                let known = self.keys.version(&key);
                let unsynced = self.unsynced.contains_key(&key);
                let stamp = self.stamp();
                Effect::Read { token, plan: ReadPlan { key, targets, needed, known, unsynced, stamp } }
            }
            Op::Put(value) => self.write(key, Some(value), targets, needed, token),
            Op::Del => self.write(key, None, targets, needed, token),
        }
    }

    fn write(&mut self, key: Key, value: Option<Value>, targets: Vec<Target>, needed: usize, token: T) -> Effect<T> {
        let version = self.next_version();
        let entry = Entry { version, value };
        let existed = self.keys.has_value(&key);
        self.keys.set_entry(&key, Some(&entry));
        self.appended(&key, version);
        Effect::Write { token, plan: WritePlan { key, entry, targets, needed, log: true, existed, stamp: None } }
    }

    fn next_version(&mut self) -> Version {
        let before = self.last_version();
        self.seq.0 += 1;
        let version = self.last_version();
        debug_assert!(version > before, "versions only grow");
        version
    }

    /// A new replica set of the size in force, from the active members: the preferred ones that
    /// are live, other live ones, then members that are away (they are refilled when they come
    /// back). A set is never smaller because slaves are away; its key is unavailable instead.
    fn place(&mut self, preferred: &[NodeId]) -> Vec<Replica> {
        let n = self.set_size();
        let live: Vec<&NodeId> = self.membership.active().filter(|m| self.live.contains_key(*m)).collect();
        let mut chosen = placement::choose(&live, preferred, n.min(live.len()), &mut self.rng);
        let away: Vec<&NodeId> = self.membership.active().filter(|m| !self.live.contains_key(*m)).collect();
        chosen.extend(placement::choose(&away, &[], n - chosen.len(), &mut self.rng));
        chosen
            .into_iter()
            .map(|node| {
                let incarnation = self.live.get(&node).copied().unwrap_or(UNFILLED);
                Replica { node, incarnation }
            })
            .collect()
    }

    /// Every live active member (a lookup asks them all).
    fn live_targets(&self) -> Vec<Target> {
        self.live
            .iter()
            .filter(|(node, _)| self.membership.get(node).is_some_and(|s| s.active))
            .map(|(node, &incarnation)| Target { node: node.clone(), incarnation, counts: true })
            .collect()
    }
}

fn fail_all<T>(waiting: Vec<(Op, T)>, detail: &str) -> Vec<Effect<T>> {
    waiting.into_iter().map(|(_, token)| Effect::Reply { token, result: Err(WireError::unavailable(detail)) }).collect()
}

#[cfg(test)]
mod tests;
