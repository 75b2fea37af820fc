//! The faults and their schedule: pure, seeded, no I/O. [`Schedule`] hands out the next
//! [`Fault`] with everything drawn that does not depend on the cluster's state (how long to
//! wait before it, how long it lasts, which slave, which partition); which node is master is
//! decided when the fault is injected (`inject.rs`).
//!
//! Kinds come in rounds: each round is the enabled kinds in a seeded order, so a run long
//! enough for one round injects every kind at least once.
//!
//! The draws of the first five kinds come from the seed's main stream, exactly as before the
//! later kinds existed, so an old seed with those kinds gives the schedule it always gave; what
//! only the later kinds use (a [`Split`], a second slave, a lead and a tail) comes from a
//! second stream of the same seed.

use rand::rngs::SmallRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde::Serialize;

use std::time::Duration;

use crate::nemesis::partition::{Split, SplitShape};

/// Quiet time before a fault, in milliseconds (drawn uniformly).
pub const GAP_MS: (u64, u64) = (500, 1500);
/// How long a killed node (master, slave, both masters) stays down, in milliseconds.
pub const DOWN_MS: (u64, u64) = (300, 2000);
/// How long a master stays paused: from below `--failover-after-ms` (800, no takeover) to
/// well above it (a takeover, then a deposed master wakes up).
pub const PAUSE_MS: (u64, u64) = (300, 2500);
/// How long a partition lasts, in milliseconds.
pub const PARTITION_MS: (u64, u64) = (500, 3000);
/// Most time between restarting the two master-capable nodes after killing both.
pub const RESTART_SKEW_MS: u64 = 600;
/// For a kill during a partition: how long the partition holds before the kill, and after the
/// restart, in milliseconds.
pub const LEAD_MS: (u64, u64) = (200, 800);
pub const TAIL_MS: (u64, u64) = (200, 1200);

/// Mixed into the seed for the second stream of draws.
const SECOND_STREAM: u64 = 0x6e65_6d65_7369_7332;

/// A kind of fault, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL the serving master, restart it on its data directory.
    KillMaster,
    /// SIGSTOP the serving master, SIGCONT it later.
    PauseMaster,
    /// SIGKILL one slave, restart it.
    KillSlave,
    /// Cut some links (through the proxies), heal them.
    Partition,
    /// SIGKILL master and backup, restart both.
    KillBothMasters,
    /// Cut one node (master, backup, a slave, or the clients) from everyone, both ways.
    PartitionIsolate,
    /// Split the nodes and the clients into two sides.
    PartitionHalves,
    /// Split into two sides and one node that sees both (a bridge).
    PartitionBridge,
    /// One side's bytes do not reach the other; the other's still arrive.
    PartitionOneWay,
    /// A partition; during it SIGKILL a master-capable node (the serving one or the standby)
    /// and restart it while the partition holds: sometimes the serving master, with its peer
    /// unreachable.
    RestartInPartition,
    /// A partition; during it SIGKILL a slave and restart it (empty: slaves keep data in
    /// memory) while the partition holds.
    RestartSlaveInPartition,
    /// SIGSTOP the standby (the master-capable node that does not serve), SIGCONT it later.
    PauseBackup,
    /// SIGKILL two slaves at once, restart both.
    KillTwoSlaves,
}

impl FaultKind {
    /// The kinds `--faults` enables by default.
    pub const BASIC: [FaultKind; 5] = [
        FaultKind::KillMaster,
        FaultKind::PauseMaster,
        FaultKind::KillSlave,
        FaultKind::Partition,
        FaultKind::KillBothMasters,
    ];

    pub const ALL: [FaultKind; 13] = [
        FaultKind::KillMaster,
        FaultKind::PauseMaster,
        FaultKind::KillSlave,
        FaultKind::Partition,
        FaultKind::KillBothMasters,
        FaultKind::PartitionIsolate,
        FaultKind::PartitionHalves,
        FaultKind::PartitionBridge,
        FaultKind::PartitionOneWay,
        FaultKind::RestartInPartition,
        FaultKind::RestartSlaveInPartition,
        FaultKind::PauseBackup,
        FaultKind::KillTwoSlaves,
    ];

    /// The name on the command line and in `summary.json`.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillMaster => "kill-master",
            FaultKind::PauseMaster => "pause-master",
            FaultKind::KillSlave => "kill-slave",
            FaultKind::Partition => "partition",
            FaultKind::KillBothMasters => "kill-both-masters",
            FaultKind::PartitionIsolate => "partition-isolate",
            FaultKind::PartitionHalves => "partition-halves",
            FaultKind::PartitionBridge => "partition-bridge",
            FaultKind::PartitionOneWay => "partition-one-way",
            FaultKind::RestartInPartition => "restart-in-partition",
            FaultKind::RestartSlaveInPartition => "restart-slave-in-partition",
            FaultKind::PauseBackup => "pause-backup",
            FaultKind::KillTwoSlaves => "kill-two-slaves",
        }
    }

    /// The shape of split this kind draws, if it draws one.
    fn split_shape(self, rng: &mut impl Rng) -> Option<SplitShape> {
        match self {
            FaultKind::PartitionIsolate => Some(SplitShape::Isolate),
            FaultKind::PartitionHalves => Some(SplitShape::Halves),
            FaultKind::PartitionBridge => Some(SplitShape::Bridge),
            FaultKind::PartitionOneWay => Some(SplitShape::OneWay),
            FaultKind::RestartInPartition | FaultKind::RestartSlaveInPartition => SplitShape::ALL.choose(rng).copied(),
            FaultKind::KillMaster
            | FaultKind::PauseMaster
            | FaultKind::KillSlave
            | FaultKind::Partition
            | FaultKind::KillBothMasters
            | FaultKind::PauseBackup
            | FaultKind::KillTwoSlaves => None,
        }
    }
}

/// Which links a partition cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Every link of the serving master: clients, slaves and its peer. The standby takes over.
    IsolateMaster,
    /// Only master <-> backup: the standby takes over while the old master still has its
    /// clients and slaves, until it learns of the newer epoch.
    PeerLink,
    /// The serving master from every slave: it cannot complete anything; nobody takes over.
    MasterFromSlaves,
    /// One slave (index into the slaves) from both master-capable nodes.
    OneSlave(usize),
    /// Every client from both master-capable nodes.
    Clients,
}

impl Shape {
    fn draw(rng: &mut impl Rng, slaves: usize) -> Shape {
        match rng.random_range(0..5) {
            0 => Shape::IsolateMaster,
            1 => Shape::PeerLink,
            2 => Shape::MasterFromSlaves,
            3 => Shape::OneSlave(rng.random_range(0..slaves.max(1))),
            _ => Shape::Clients,
        }
    }
}

/// How a partition cuts its links (see `proxy.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cut {
    Reset,
    Blackhole,
}

/// One fault to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    /// Quiet time before it.
    pub gap: Duration,
    /// How long it lasts before it is healed.
    pub hold: Duration,
    /// For `kill-slave`: which slave (index).
    pub slave: usize,
    /// For `partition`.
    pub shape: Shape,
    pub cut: Cut,
    /// For `kill-both-masters`: restart the serving master first, and the pause between the two.
    pub restart_master_first: bool,
    pub restart_skew: Duration,
    /// For the kinds that pick the serving master, when no node is known to serve: which node.
    pub fallback_node: usize,
    /// For the later partition kinds and the kills during a partition: the partition.
    pub split: Split,
    /// For `kill-two-slaves`: the other slave (differs from `slave` when there are two).
    pub second_slave: usize,
    /// For `restart-in-partition`: kill the standby rather than the serving master.
    pub victim_standby: bool,
    /// For `restart-in-partition` of the serving master: the partition is master <-> backup
    /// (the master restarts with its peer unreachable) instead of `split`.
    pub peer_cut: bool,
    /// For the kills during a partition: the partition alone before the kill, and after the
    /// restart.
    pub lead: Duration,
    pub tail: Duration,
}

impl Fault {
    /// How long the fault lasts from its start to its last heal.
    pub fn span(&self) -> Duration {
        match self.kind {
            FaultKind::KillBothMasters => self.hold + self.restart_skew,
            FaultKind::RestartInPartition | FaultKind::RestartSlaveInPartition => self.lead + self.hold + self.tail,
            FaultKind::KillMaster
            | FaultKind::PauseMaster
            | FaultKind::KillSlave
            | FaultKind::Partition
            | FaultKind::PartitionIsolate
            | FaultKind::PartitionHalves
            | FaultKind::PartitionBridge
            | FaultKind::PartitionOneWay
            | FaultKind::PauseBackup
            | FaultKind::KillTwoSlaves => self.hold,
        }
    }
}

/// The seeded sequence of faults.
pub struct Schedule {
    kinds: Vec<FaultKind>,
    round: Vec<FaultKind>,
    slaves: usize,
    rng: SmallRng,
    /// The second stream: draws only the later kinds use.
    more: SmallRng,
}

impl Schedule {
    /// Faults of `kinds` (duplicates ignored) on a cluster of `slaves` slaves. An empty
    /// `kinds` gives no faults at all.
    pub fn new(kinds: &[FaultKind], slaves: usize, seed: u64) -> Schedule {
        let mut kinds = kinds.to_vec();
        kinds.sort();
        kinds.dedup();
        Schedule {
            kinds,
            round: Vec::new(),
            slaves,
            rng: SmallRng::seed_from_u64(seed),
            more: SmallRng::seed_from_u64(seed ^ SECOND_STREAM),
        }
    }

    /// The next fault, or `None` when no kind is enabled.
    pub fn next_fault(&mut self) -> Option<Fault> {
        if self.round.is_empty() {
            self.round = self.kinds.clone();
            self.round.shuffle(&mut self.rng);
            self.round.reverse();
        }
        let kind = self.round.pop()?;
        let rng = &mut self.rng;
        let hold_range = match kind {
            FaultKind::KillMaster
            | FaultKind::KillSlave
            | FaultKind::KillBothMasters
            | FaultKind::KillTwoSlaves
            | FaultKind::RestartInPartition
            | FaultKind::RestartSlaveInPartition => DOWN_MS,
            FaultKind::PauseMaster | FaultKind::PauseBackup => PAUSE_MS,
            FaultKind::Partition
            | FaultKind::PartitionIsolate
            | FaultKind::PartitionHalves
            | FaultKind::PartitionBridge
            | FaultKind::PartitionOneWay => PARTITION_MS,
        };
        let more = &mut self.more;
        let slaves = self.slaves.max(1);
        let shape = kind.split_shape(more).unwrap_or(SplitShape::Isolate);
        let split = Split::draw(more, shape, self.slaves);
        let second_slave = match slaves {
            1 => 0,
            n => more.random_range(0..n - 1),
        };
        let (victim_standby, peer_cut) = (more.random_bool(0.3), more.random_bool(0.5));
        let (lead, tail) = (millis(more, LEAD_MS), millis(more, TAIL_MS));
        // In the main stream's order of old: gap, hold, slave, shape, cut, ...
        let gap = millis(rng, GAP_MS);
        let hold = millis(rng, hold_range);
        let slave = rng.random_range(0..slaves);
        Some(Fault {
            kind,
            gap,
            hold,
            slave,
            shape: Shape::draw(rng, self.slaves),
            cut: if rng.random_bool(0.5) { Cut::Reset } else { Cut::Blackhole },
            restart_master_first: rng.random_bool(0.5),
            restart_skew: millis(rng, (0, RESTART_SKEW_MS)),
            fallback_node: rng.random_range(0..2),
            split,
            // Any slave but `slave`: the draw skips over it.
            second_slave: if slaves > 1 && second_slave >= slave { second_slave + 1 } else { second_slave },
            victim_standby,
            peer_cut,
            lead,
            tail,
        })
    }
}

fn millis(rng: &mut impl Rng, (low, high): (u64, u64)) -> Duration {
    Duration::from_millis(rng.random_range(low..=high))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_enabled_kind_comes_once_in_each_round() {
        let mut schedule = Schedule::new(&FaultKind::ALL, 3, 7);
        for _ in 0..3 {
            let round: BTreeSet<FaultKind> =
                (0..FaultKind::ALL.len()).map(|_| schedule.next_fault().expect("a fault").kind).collect();
            assert_eq!(round.len(), FaultKind::ALL.len());
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let draw = |seed| {
            let mut schedule = Schedule::new(&FaultKind::ALL, 3, seed);
            (0..20).map(|_| schedule.next_fault().expect("a fault")).collect::<Vec<_>>()
        };
        assert_eq!(draw(11), draw(11));
        assert_ne!(draw(11), draw(12));
    }

    #[test]
    fn draws_stay_in_their_ranges() {
        let mut schedule = Schedule::new(&[FaultKind::Partition, FaultKind::KillSlave], 5, 3);
        for _ in 0..1000 {
            let fault = schedule.next_fault().expect("a fault");
            assert!(fault.slave < 5 && fault.fallback_node < 2);
            assert!(fault.gap >= Duration::from_millis(GAP_MS.0) && fault.gap <= Duration::from_millis(GAP_MS.1));
            if let Shape::OneSlave(i) = fault.shape {
                assert!(i < 5);
            }
            assert!(matches!(fault.kind, FaultKind::Partition | FaultKind::KillSlave));
        }
    }

    #[test]
    fn no_kinds_means_no_faults() {
        assert_eq!(Schedule::new(&[], 3, 1).next_fault(), None);
    }
}
