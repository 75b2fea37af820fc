//! Partitions as sets of cut directed links: pure, no I/O.
//!
//! The parties are the two master-capable nodes, the slaves and the clients ([`Endpoint`]).
//! Only three kinds of pairs talk: node <-> node, slave <-> node and clients <-> node (slaves
//! never talk to each other, nor clients to slaves), so a partition is a set of directed
//! [`Link`]s among those pairs: `from`'s bytes do not reach `to`. Both directions of a pair
//! cut is a plain partition; one of them is a one-way cut.
//!
//! The schedule draws a [`Split`] over [`Member`]s, which name the serving master and its
//! standby by role: who serves is known only when the fault is injected, and
//! [`Split::links`] resolves the roles then.
//!
//! Faults overlap (`--compose`), and two may cut the same link: [`Cuts`] keeps every active
//! fault's cuts, so that healing one fault opens only the links no other fault still cuts. A
//! link cut by a reset and a black hole at once is reset: the connection-closing cut wins.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rand::seq::SliceRandom;
use rand::Rng;

use crate::nemesis::fault::Cut;
use crate::nemesis::proxy::LinkState;
use crate::nemesis::topology::NODE_NAMES;

/// A party to the cluster's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// A master-capable node: 0 is `master`, 1 is `backup` (names, not roles).
    Node(usize),
    /// Slave k (index; named `slave-{k+1}`).
    Slave(usize),
    /// Every workload client.
    Clients,
}

impl Endpoint {
    /// Every party of a cluster with `slaves` slaves, in order.
    pub fn all(slaves: usize) -> Vec<Endpoint> {
        let mut all = vec![Endpoint::Node(0), Endpoint::Node(1)];
        all.extend((0..slaves).map(Endpoint::Slave));
        all.push(Endpoint::Clients);
        all
    }

    /// True when `self` and `other` exchange traffic: one of them is a master-capable node.
    pub fn talks_to(self, other: Endpoint) -> bool {
        self != other && (matches!(self, Endpoint::Node(_)) || matches!(other, Endpoint::Node(_)))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Node(i) => f.write_str(NODE_NAMES.get(*i).copied().unwrap_or("node?")),
            Endpoint::Slave(k) => write!(f, "slave-{}", k + 1),
            Endpoint::Clients => f.write_str("clients"),
        }
    }
}

/// A directed link: what `from` sends does not reach `to` while it is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Link {
    pub from: Endpoint,
    pub to: Endpoint,
}

impl Link {
    pub fn new(from: Endpoint, to: Endpoint) -> Link {
        Link { from, to }
    }
}

/// Both directions between `a` and `b`.
pub fn both_ways(a: Endpoint, b: Endpoint) -> [Link; 2] {
    [Link::new(a, b), Link::new(b, a)]
}

/// A party as the schedule draws it: the master-capable nodes by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Member {
    /// The node serving as master when the fault is injected.
    Serving,
    /// The other master-capable node.
    Standby,
    Slave(usize),
    Clients,
}

impl Member {
    /// Every member of a cluster with `slaves` slaves.
    pub fn all(slaves: usize) -> Vec<Member> {
        let mut all = vec![Member::Serving, Member::Standby];
        all.extend((0..slaves).map(Member::Slave));
        all.push(Member::Clients);
        all
    }

    /// The endpoint this member is when node `serving` serves.
    pub fn resolve(self, serving: usize) -> Endpoint {
        match self {
            Member::Serving => Endpoint::Node(serving),
            Member::Standby => Endpoint::Node(1 - serving.min(1)),
            Member::Slave(k) => Endpoint::Slave(k),
            Member::Clients => Endpoint::Clients,
        }
    }
}

/// A partition over the members, as drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Split {
    /// One member cut from everyone, both ways.
    Isolate(Member),
    /// The members in `side` from the rest, both ways.
    Halves { side: Vec<Member> },
    /// `side` from the rest except `bridge`, which still sees both sides.
    Bridge { bridge: Member, side: Vec<Member> },
    /// What `side` sends does not reach the rest; what the rest sends still reaches `side`.
    OneWay { side: Vec<Member> },
}

impl Split {
    /// Draws a split of the given kind over a cluster of `slaves` slaves.
    pub fn draw(rng: &mut impl Rng, shape: SplitShape, slaves: usize) -> Split {
        let mut members = Member::all(slaves);
        members.shuffle(rng);
        match shape {
            SplitShape::Isolate => Split::Isolate(members[0]),
            SplitShape::Halves => {
                let size = rng.random_range(1..=members.len() / 2);
                Split::Halves { side: sorted(&members[..size]) }
            }
            SplitShape::Bridge => {
                let bridge = members[0];
                let rest = &members[1..];
                let size = rng.random_range(1..=rest.len() / 2);
                Split::Bridge { bridge, side: sorted(&rest[..size]) }
            }
            SplitShape::OneWay => {
                let size = rng.random_range(1..members.len());
                Split::OneWay { side: sorted(&members[..size]) }
            }
        }
    }

    /// The directed links this split cuts when node `serving` serves, on a cluster of
    /// `slaves` slaves.
    pub fn links(&self, serving: usize, slaves: usize) -> BTreeSet<Link> {
        let resolve = |side: &[Member]| -> BTreeSet<Endpoint> { side.iter().map(|m| m.resolve(serving)).collect() };
        let all = Endpoint::all(slaves);
        let pairs = || all.iter().flat_map(|&a| all.iter().map(move |&b| Link::new(a, b)));
        let talking = |l: &Link| l.from.talks_to(l.to);
        match self {
            Split::Isolate(member) => {
                let alone = member.resolve(serving);
                pairs().filter(talking).filter(|l| l.from == alone || l.to == alone).collect()
            }
            Split::Halves { side } => {
                let side = resolve(side);
                pairs().filter(talking).filter(|l| side.contains(&l.from) != side.contains(&l.to)).collect()
            }
            Split::Bridge { bridge, side } => {
                let (bridge, side) = (bridge.resolve(serving), resolve(side));
                let other = |e: &Endpoint| *e != bridge && !side.contains(e);
                pairs()
                    .filter(talking)
                    .filter(|l| (side.contains(&l.from) && other(&l.to)) || (other(&l.from) && side.contains(&l.to)))
                    .collect()
            }
            Split::OneWay { side } => {
                let side = resolve(side);
                pairs().filter(talking).filter(|l| side.contains(&l.from) && !side.contains(&l.to)).collect()
            }
        }
    }

    /// One line naming the parties, with the roles resolved.
    pub fn describe(&self, serving: usize, slaves: usize) -> String {
        let names = |side: &[Member]| -> String {
            side.iter().map(|m| m.resolve(serving).to_string()).collect::<Vec<_>>().join(", ")
        };
        let rest = |side: &[Member], bridge: Option<Member>| -> String {
            let side: BTreeSet<Member> = side.iter().copied().chain(bridge).collect();
            let others: Vec<Member> = Member::all(slaves).into_iter().filter(|m| !side.contains(m)).collect();
            names(&others)
        };
        match self {
            Split::Isolate(member) => format!("isolate {}", member.resolve(serving)),
            Split::Halves { side } => format!("split {{{}}} | {{{}}}", names(side), rest(side, None)),
            Split::Bridge { bridge, side } => format!(
                "split {{{}}} | {{{}}} bridged by {}",
                names(side),
                rest(side, Some(*bridge)),
                bridge.resolve(serving)
            ),
            Split::OneWay { side } => {
                format!("one way: {{{}}} cannot reach {{{}}} (but hear them)", names(side), rest(side, None))
            }
        }
    }
}

fn sorted(members: &[Member]) -> Vec<Member> {
    let mut members = members.to_vec();
    members.sort();
    members
}

/// Which [`Split`] variant to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitShape {
    Isolate,
    Halves,
    Bridge,
    OneWay,
}

impl SplitShape {
    pub const ALL: [SplitShape; 4] = [SplitShape::Isolate, SplitShape::Halves, SplitShape::Bridge, SplitShape::OneWay];
}

/// Identifies one injected fault (its place in the run's log).
pub type FaultId = usize;

/// Every active fault's cuts, and the state each link is in because of them.
#[derive(Debug, Default)]
pub struct Cuts {
    active: BTreeMap<FaultId, (BTreeSet<Link>, Cut)>,
}

impl Cuts {
    /// The state `link` is in now.
    pub fn state(&self, link: Link) -> LinkState {
        let mut state = LinkState::Open;
        for (links, cut) in self.active.values() {
            if links.contains(&link) {
                match cut {
                    Cut::Reset => return LinkState::Reset,
                    Cut::Blackhole => state = LinkState::Blackhole,
                }
            }
        }
        state
    }

    /// Adds fault `id`'s cuts; returns the links whose state changed, with their new state.
    pub fn add(&mut self, id: FaultId, links: BTreeSet<Link>, cut: Cut) -> Vec<(Link, LinkState)> {
        let touched = links.clone();
        let before: Vec<LinkState> = touched.iter().map(|&l| self.state(l)).collect();
        debug_assert!(!self.active.contains_key(&id), "fault {id} cuts links twice");
        self.active.insert(id, (links, cut));
        self.changes(&touched, &before)
    }

    /// Removes fault `id`'s cuts (none if it has none); returns the links whose state changed.
    pub fn remove(&mut self, id: FaultId) -> Vec<(Link, LinkState)> {
        let Some((touched, _)) = self.active.get(&id).cloned() else { return Vec::new() };
        let before: Vec<LinkState> = touched.iter().map(|&l| self.state(l)).collect();
        self.active.remove(&id);
        self.changes(&touched, &before)
    }

    /// Removes every fault's cuts; returns every link that was not open.
    pub fn clear(&mut self) -> Vec<(Link, LinkState)> {
        let touched: BTreeSet<Link> = self.active.values().flat_map(|(links, _)| links.iter().copied()).collect();
        self.active.clear();
        touched.into_iter().map(|l| (l, LinkState::Open)).collect()
    }

    /// True while no fault cuts anything.
    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    fn changes(&self, touched: &BTreeSet<Link>, before: &[LinkState]) -> Vec<(Link, LinkState)> {
        touched
            .iter()
            .zip(before)
            .filter_map(|(&link, &was)| {
                let now = self.state(link);
                (now != was).then_some((link, now))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    use super::*;

    const M: Endpoint = Endpoint::Node(0);
    const B: Endpoint = Endpoint::Node(1);
    const C: Endpoint = Endpoint::Clients;

    fn s(k: usize) -> Endpoint {
        Endpoint::Slave(k)
    }

    fn links(pairs: &[(Endpoint, Endpoint)]) -> BTreeSet<Link> {
        pairs.iter().map(|&(a, b)| Link::new(a, b)).collect()
    }

    #[test]
    fn only_pairs_with_a_master_capable_node_talk() {
        assert!(M.talks_to(B) && s(0).talks_to(M) && C.talks_to(B));
        assert!(!s(0).talks_to(s(1)) && !C.talks_to(s(0)) && !M.talks_to(M));
    }

    #[test]
    fn isolating_the_serving_master_cuts_all_its_links_both_ways() {
        let cut = Split::Isolate(Member::Serving).links(1, 2);
        let want = links(&[(B, M), (M, B), (B, s(0)), (s(0), B), (B, s(1)), (s(1), B), (B, C), (C, B)]);
        assert_eq!(cut, want);
    }

    #[test]
    fn isolating_a_slave_cuts_it_from_both_nodes_only() {
        let cut = Split::Isolate(Member::Slave(1)).links(0, 3);
        assert_eq!(cut, links(&[(s(1), M), (M, s(1)), (s(1), B), (B, s(1))]));
    }

    #[test]
    fn halves_cut_every_talking_pair_across_the_split() {
        // {master, slave-1} | {backup, slave-2, clients}
        let split = Split::Halves { side: vec![Member::Serving, Member::Slave(0)] };
        let cut = split.links(0, 2);
        let want = links(&[(M, B), (B, M), (M, s(1)), (s(1), M), (M, C), (C, M), (s(0), B), (B, s(0))]);
        assert_eq!(cut, want);
        assert_eq!(split.describe(0, 2), "split {master, slave-1} | {backup, slave-2, clients}");
    }

    #[test]
    fn a_bridge_keeps_its_links_to_both_sides() {
        // {master} | {slave-1, clients}, bridged by the backup.
        let split = Split::Bridge { bridge: Member::Standby, side: vec![Member::Serving] };
        let cut = split.links(0, 1);
        assert_eq!(cut, links(&[(M, s(0)), (s(0), M), (M, C), (C, M)]));
        assert!(!cut.iter().any(|l| l.from == B || l.to == B), "the bridge sees both sides");
        assert_eq!(split.describe(0, 1), "split {master} | {slave-1, clients} bridged by backup");
    }

    #[test]
    fn a_one_way_cut_drops_one_direction_only() {
        let split = Split::OneWay { side: vec![Member::Standby] };
        let cut = split.links(0, 1);
        assert_eq!(cut, links(&[(B, M), (B, s(0)), (B, C)]));
        assert!(cut.iter().all(|l| !cut.contains(&Link::new(l.to, l.from))), "never both ways");
    }

    #[test]
    fn roles_resolve_by_who_serves() {
        assert_eq!(Member::Serving.resolve(1), B);
        assert_eq!(Member::Standby.resolve(1), M);
        assert_eq!(Member::Standby.resolve(0), B);
    }

    #[test]
    fn drawn_splits_are_proper_and_cut_something() {
        let mut rng = SmallRng::seed_from_u64(5);
        for _ in 0..500 {
            for shape in SplitShape::ALL {
                let split = Split::draw(&mut rng, shape, 3);
                let all = Member::all(3).len();
                match &split {
                    Split::Isolate(_) => {}
                    Split::Halves { side } | Split::OneWay { side } => assert!(!side.is_empty() && side.len() < all),
                    Split::Bridge { bridge, side } => {
                        assert!(!side.is_empty() && side.len() < all - 1 && !side.contains(bridge));
                    }
                }
                for serving in 0..2 {
                    let cut = split.links(serving, 3);
                    assert!(!cut.is_empty(), "{split:?} cuts nothing");
                    assert!(cut.iter().all(|l| l.from.talks_to(l.to)), "{split:?} cuts a pair that never talks");
                }
            }
        }
    }

    #[test]
    fn healing_one_fault_leaves_the_links_another_still_cuts() {
        let mut cuts = Cuts::default();
        let first = links(&[(M, B), (B, M)]);
        let second = links(&[(M, B), (M, C)]);
        assert_eq!(cuts.add(1, first, Cut::Blackhole).len(), 2);
        let changed = cuts.add(2, second, Cut::Blackhole);
        assert_eq!(changed, vec![(Link::new(M, C), LinkState::Blackhole)], "M->B was cut already");
        let healed = cuts.remove(1);
        assert_eq!(healed, vec![(Link::new(B, M), LinkState::Open)], "M->B stays cut by fault 2");
        assert_eq!(cuts.state(Link::new(M, B)), LinkState::Blackhole);
        let healed = cuts.remove(2);
        assert_eq!(healed.len(), 2);
        assert!(cuts.is_empty() && cuts.state(Link::new(M, B)) == LinkState::Open);
    }

    #[test]
    fn a_reset_wins_over_a_black_hole_and_yields_to_it_when_healed() {
        let mut cuts = Cuts::default();
        cuts.add(1, links(&[(M, B)]), Cut::Blackhole);
        assert_eq!(cuts.add(2, links(&[(M, B)]), Cut::Reset), vec![(Link::new(M, B), LinkState::Reset)]);
        assert_eq!(cuts.remove(2), vec![(Link::new(M, B), LinkState::Blackhole)]);
        assert_eq!(cuts.remove(7), Vec::new(), "an unknown fault cuts nothing");
        assert_eq!(cuts.clear(), vec![(Link::new(M, B), LinkState::Open)]);
    }
}
