//! The cluster's recorded slave membership, and the counts a takeover needs from it.
//!
//! The membership is what the log says, never who happens to be connected: a slave is in it
//! from the `Member` record of its joining on, and stays in it. Each member carries the
//! incarnation the log last named for it and whether replica sets may use it yet (`active`).
//!
//! Two numbers decide a takeover, computed over the *whole* membership `M` because a candidate
//! does not know the replica sets (any `R`-subset of the active members may be one):
//! - `q`, the smallest write quorum any master of this log may have used: a majority of
//!   `min(R, active members)`. Counting only members whose activation is in the log keeps `q`
//!   at or below what the master that wrote the log was using; and at least 1 once the log
//!   names any member, since a master may have put a joining in force (and written through
//!   it) before its activation record reached this log.
//! - fencing: promises from at least `|M| - q + 1` members leave every set with fewer than `q`
//!   members that could still answer an older epoch, so no older master completes anything;
//!   and at least a majority of `M`, so two candidates can never both be granted one epoch.
//! - reading: members read *intact* (running the incarnation the log names for them) leave at
//!   most `q - 1` members of `M` unread or forgetful, so every write quorum contains one of them.

use std::collections::{BTreeMap, BTreeSet};

use net::{Incarnation, MemberRecord, NodeId};

use crate::master::quorum::majority;

/// One member, as the log knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberState {
    /// The incarnation whose memory (with the log before the record naming it) holds all the
    /// slave acknowledged.
    pub incarnation: Incarnation,
    /// Replica sets may use it: its joining was recorded where any later master finds it.
    pub active: bool,
}

/// The recorded membership.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    members: BTreeMap<NodeId, MemberState>,
}

impl Membership {
    pub fn from_records(records: impl IntoIterator<Item = MemberRecord>) -> Membership {
        let mut membership = Membership::default();
        for record in records {
            membership.apply(record.node, record.incarnation, record.active);
        }
        membership
    }

    /// Applies one `Member` record. A member never becomes inactive again.
    pub fn apply(&mut self, node: NodeId, incarnation: Incarnation, active: bool) {
        let state = self.members.entry(node).or_insert(MemberState { incarnation, active });
        state.incarnation = incarnation;
        state.active |= active;
    }

    pub fn records(&self) -> Vec<MemberRecord> {
        self.members
            .iter()
            .map(|(node, s)| MemberRecord { node: node.clone(), incarnation: s.incarnation, active: s.active })
            .collect()
    }

    pub fn get(&self, node: &NodeId) -> Option<&MemberState> {
        self.members.get(node)
    }

    pub fn contains(&self, node: &NodeId) -> bool {
        self.members.contains_key(node)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &MemberState)> {
        self.members.iter()
    }

    /// Every member, active or not.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn active(&self) -> impl Iterator<Item = &NodeId> {
        self.members.iter().filter(|(_, s)| s.active).map(|(n, _)| n)
    }

    pub fn active_count(&self) -> usize {
        self.members.values().filter(|s| s.active).count()
    }

    /// The replica-set size in force: `R`, capped by the active members.
    pub fn replica_set_size(&self, replicas: usize) -> usize {
        replicas.min(self.active_count())
    }

    /// The write quorum in force (0 while no member is active: nothing can be written).
    pub fn quorum(&self, replicas: usize) -> usize {
        match self.replica_set_size(replicas) {
            0 => 0,
            n => majority(n),
        }
    }

    /// Whether `node`, now running `incarnation`, still holds (with the log) all it acknowledged.
    pub fn intact(&self, node: &NodeId, incarnation: Incarnation) -> bool {
        self.members.get(node).is_some_and(|s| s.incarnation == incarnation)
    }

    /// The smallest write quorum a master of this log may have used (see the module comment);
    /// 0 only for an empty membership.
    pub fn takeover_quorum(&self, replicas: usize) -> usize {
        match self.members.is_empty() {
            true => 0,
            false => self.quorum(replicas).max(1),
        }
    }

    /// Promises needed before a candidate may serve (see the module comment).
    pub fn promises_needed(&self, replicas: usize) -> usize {
        if self.members.is_empty() {
            return 0;
        }
        let q = self.takeover_quorum(replicas);
        (self.len() - q + 1).max(majority(self.len()))
    }

    /// Whether the promises of `promised` grant an epoch.
    pub fn granted(&self, replicas: usize, promised: &BTreeSet<NodeId>) -> bool {
        let counted = promised.iter().filter(|n| self.contains(n)).count();
        counted >= self.promises_needed(replicas)
    }

    /// Whether reading the intact members `read` finds every write any master of this log
    /// completed that the log lacks.
    pub fn read_covers(&self, replicas: usize, read: &BTreeSet<NodeId>) -> bool {
        let q = self.takeover_quorum(replicas);
        if q == 0 {
            return true;
        }
        let counted = read.iter().filter(|n| self.contains(n)).count();
        self.len() - counted < q
    }

    /// How many more intact reads `read_covers` needs (0 when covered).
    pub fn reads_missing(&self, replicas: usize, read: &BTreeSet<NodeId>) -> usize {
        let q = self.takeover_quorum(replicas);
        if q == 0 {
            return 0;
        }
        let counted = read.iter().filter(|n| self.contains(n)).count();
        (self.len() + 1).saturating_sub(q + counted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> NodeId {
        NodeId(name.to_string())
    }

    fn members(names: &[&str], active: bool) -> Membership {
        let mut m = Membership::default();
        for (i, name) in names.iter().enumerate() {
            m.apply(node(name), Incarnation(i as u64 + 1), active);
        }
        m
    }

    fn set(names: &[&str]) -> BTreeSet<NodeId> {
        names.iter().map(|n| node(n)).collect()
    }

    /// (slaves, R) -> (quorum, promises needed, intact reads needed)
    #[test]
    fn takeover_counts_for_each_cluster_shape() {
        let table = [
            (1, 3, 1, 1, 1),
            (2, 3, 2, 2, 1),
            (3, 3, 2, 2, 2),
            (4, 3, 2, 3, 3),
            (5, 3, 2, 4, 4),
            (5, 5, 3, 3, 3),
            (4, 4, 3, 3, 2),
        ];
        let names = ["a", "b", "c", "d", "e"];
        for (n, r, q, promises, reads) in table {
            let m = members(&names[..n], true);
            assert_eq!(m.quorum(r), q, "quorum of {n} slaves, R={r}");
            assert_eq!(m.promises_needed(r), promises, "promises of {n} slaves, R={r}");
            assert_eq!(m.reads_missing(r, &BTreeSet::new()), reads, "reads of {n} slaves, R={r}");
        }
    }

    /// For every choice of promised members, no set of `q` members that never promised can
    /// form a write quorum of an older master, and two grants of one epoch always share a member.
    #[test]
    fn granted_promises_block_every_older_quorum_and_every_other_grant() {
        let names = ["a", "b", "c", "d", "e"];
        for n in 1..=5usize {
            for r in 1..=5usize {
                let m = members(&names[..n], true);
                let q = m.quorum(r);
                let subsets: Vec<BTreeSet<NodeId>> = (0..(1u32 << n))
                    .map(|bits| (0..n).filter(|i| bits & (1 << i) != 0).map(|i| node(names[i])).collect())
                    .collect();
                for p in subsets.iter().filter(|p| m.granted(r, p)) {
                    assert!(n - p.len() < q, "n={n} r={r} promised={p:?}: an older quorum survives");
                    for other in subsets.iter().filter(|o| m.granted(r, o)) {
                        assert!(p.intersection(other).next().is_some(), "two grants {p:?} {other:?}");
                    }
                }
                for read in subsets.iter().filter(|d| m.read_covers(r, d)) {
                    for quorum in subsets.iter().filter(|s| s.len() >= q) {
                        assert!(read.intersection(quorum).next().is_some(), "read {read:?} misses {quorum:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn inactive_members_must_promise_but_do_not_raise_the_quorum() {
        let mut m = members(&["a"], true);
        m.apply(node("b"), Incarnation(9), false);
        assert_eq!(m.quorum(3), 1, "b's joining may not have been in force anywhere");
        assert_eq!(m.promises_needed(3), 2, "but b may be in use, so it is fenced too");
        assert!(!m.read_covers(3, &set(&["b"])), "b alone may miss what a acknowledged");
        assert!(!m.read_covers(3, &set(&["a"])), "counted over every member: conservative");
        assert!(m.read_covers(3, &set(&["a", "b"])));
    }

    #[test]
    fn an_empty_membership_needs_nothing() {
        let m = Membership::default();
        assert_eq!(m.promises_needed(3), 0);
        assert!(m.read_covers(3, &BTreeSet::new()));
    }

    #[test]
    fn members_whose_activation_this_log_lacks_are_all_fenced_and_read() {
        // The master may have activated them and written through them before the activation
        // records reached this log: a quorum of one is the only safe assumption.
        let joining = members(&["a", "b", "c", "d", "e"], false);
        assert_eq!(joining.takeover_quorum(3), 1);
        assert_eq!(joining.promises_needed(3), 5);
        assert!(!joining.read_covers(3, &set(&["a", "b", "c", "d"])));
        assert!(joining.read_covers(3, &set(&["a", "b", "c", "d", "e"])));
    }

    #[test]
    fn a_new_incarnation_is_intact_only_once_recorded() {
        let mut m = members(&["a"], true);
        assert!(m.intact(&node("a"), Incarnation(1)));
        assert!(!m.intact(&node("a"), Incarnation(2)), "restarted since the log last named it");
        m.apply(node("a"), Incarnation(2), true);
        assert!(m.intact(&node("a"), Incarnation(2)));
        assert!(m.get(&node("a")).unwrap().active, "a new incarnation does not deactivate");
    }
}
