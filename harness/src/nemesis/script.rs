//! What a fault does, step by step: pure, no I/O. Once it is known who serves, a [`Fault`]
//! becomes a [`Script`]: [`Action`]s on named processes and links, each at an offset from the
//! fault's start, and the line the log shows. `inject.rs` carries the actions out, one fault
//! at a time or several overlapping (`--compose`).
//!
//! Every script undoes what it does: each kill is followed by a restart of the same process,
//! each pause by a resume, and a cut by the heal of this fault's cuts (see
//! [`Script::undoes_itself`]). That is what lets the run heal everything by playing the rest of
//! each active script at once.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::nemesis::fault::{Cut, Fault, FaultKind, Shape};
use crate::nemesis::partition::{both_ways, Endpoint, Link};
use crate::nemesis::topology::NODE_NAMES;

/// A process the nemesis kills or pauses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Process {
    /// A master-capable node: 0 `master`, 1 `backup`.
    Node(usize),
    /// Slave k (index).
    Slave(usize),
}

impl Process {
    /// Its name, as the launcher and the logs know it.
    pub fn name(self) -> String {
        match self {
            Process::Node(i) => NODE_NAMES.get(i).copied().unwrap_or("node?").to_string(),
            Process::Slave(k) => format!("slave-{}", k + 1),
        }
    }
}

/// One step of a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Kill(Process),
    /// Start a killed process again (on its data directory; a slave comes back empty).
    Restart(Process),
    Pause(Process),
    Resume(Process),
    /// Cut these links, the fault's only cut.
    Cut {
        links: BTreeSet<Link>,
        cut: Cut,
    },
    /// Heal the fault's cut (links another fault still cuts stay cut).
    Heal,
}

/// An action and when it comes, from the fault's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub after: Duration,
    pub action: Action,
}

/// A fault made concrete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// In the order they come (offsets never decrease).
    pub steps: Vec<Step>,
    /// What it does, for the log.
    pub detail: String,
}

/// Who the fault aims at: the serving master (or the seed's choice when none is seen serving),
/// and how the log names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aim {
    pub serving: usize,
    /// e.g. "master (serving at epoch 3)".
    pub who: String,
}

impl Script {
    /// The script of `fault` on a cluster of `slaves` slaves, aimed at `aim`.
    pub fn of(fault: &Fault, aim: &Aim, slaves: usize) -> Script {
        let m = aim.serving.min(1);
        let other = 1 - m;
        let hold = fault.hold;
        let at = |after: Duration, action: Action| Step { after, action };
        let zero = Duration::ZERO;
        let (steps, detail) = match fault.kind {
            FaultKind::KillMaster => (
                vec![at(zero, Action::Kill(Process::Node(m))), at(hold, Action::Restart(Process::Node(m)))],
                format!("SIGKILL {}, restarted after {}", aim.who, secs(hold)),
            ),
            FaultKind::PauseMaster => (
                vec![at(zero, Action::Pause(Process::Node(m))), at(hold, Action::Resume(Process::Node(m)))],
                format!("SIGSTOP {}, SIGCONT after {}", aim.who, secs(hold)),
            ),
            FaultKind::PauseBackup => (
                vec![at(zero, Action::Pause(Process::Node(other))), at(hold, Action::Resume(Process::Node(other)))],
                format!("SIGSTOP {} (the standby of {}), SIGCONT after {}", NODE_NAMES[other], aim.who, secs(hold)),
            ),
            FaultKind::KillSlave => {
                let slave = Process::Slave(fault.slave);
                (
                    vec![at(zero, Action::Kill(slave)), at(hold, Action::Restart(slave))],
                    format!("SIGKILL {}, restarted after {}", slave.name(), secs(hold)),
                )
            }
            FaultKind::KillTwoSlaves => {
                let mut victims = vec![Process::Slave(fault.slave), Process::Slave(fault.second_slave)];
                victims.dedup();
                let names: Vec<String> = victims.iter().map(|p| p.name()).collect();
                let mut steps: Vec<Step> = victims.iter().map(|&p| at(zero, Action::Kill(p))).collect();
                steps.extend(victims.iter().map(|&p| at(hold, Action::Restart(p))));
                (steps, format!("SIGKILL {} at once, restarted after {}", names.join(" and "), secs(hold)))
            }
            FaultKind::Partition => {
                let (what, links) = shape_links(fault.shape, m, slaves);
                let detail = format!("{what} ({} directed links, {:?}) for {}", links.len(), fault.cut, secs(hold));
                (vec![at(zero, Action::Cut { links, cut: fault.cut }), at(hold, Action::Heal)], detail)
            }
            FaultKind::PartitionIsolate
            | FaultKind::PartitionHalves
            | FaultKind::PartitionBridge
            | FaultKind::PartitionOneWay => {
                // A one-way reset would close connections, both ways: one way is a black hole.
                let cut = if fault.kind == FaultKind::PartitionOneWay { Cut::Blackhole } else { fault.cut };
                let links = fault.split.links(m, slaves);
                let what = fault.split.describe(m, slaves);
                let detail = format!("{what} ({} directed links, {cut:?}) for {}", links.len(), secs(hold));
                (vec![at(zero, Action::Cut { links, cut }), at(hold, Action::Heal)], detail)
            }
            FaultKind::KillBothMasters => {
                let (first, second) = (m, other);
                let (a, b) = if fault.restart_master_first { (first, second) } else { (second, first) };
                let steps = vec![
                    at(zero, Action::Kill(Process::Node(first))),
                    at(zero, Action::Kill(Process::Node(second))),
                    at(hold, Action::Restart(Process::Node(a))),
                    at(hold + fault.restart_skew, Action::Restart(Process::Node(b))),
                ];
                let detail = format!(
                    "SIGKILL {} and {}, restarted {} after {} and {} {} later",
                    aim.who,
                    NODE_NAMES[second],
                    NODE_NAMES[a],
                    secs(hold),
                    NODE_NAMES[b],
                    secs(fault.restart_skew)
                );
                (steps, detail)
            }
            FaultKind::RestartInPartition => {
                let victim = if fault.victim_standby { other } else { m };
                let (what, links) = if fault.peer_cut && !fault.victim_standby {
                    ("cut master <-> backup".to_string(), both_ways(Endpoint::Node(0), Endpoint::Node(1)).into())
                } else {
                    (fault.split.describe(m, slaves), fault.split.links(m, slaves))
                };
                let name = if victim == m { aim.who.clone() } else { format!("{} (standby)", NODE_NAMES[victim]) };
                in_partition(fault, Process::Node(victim), &name, &what, links)
            }
            FaultKind::RestartSlaveInPartition => {
                let victim = Process::Slave(fault.slave);
                let (what, links) = (fault.split.describe(m, slaves), fault.split.links(m, slaves));
                in_partition(fault, victim, &victim.name(), &what, links)
            }
        };
        debug_assert!(steps.windows(2).all(|w| w[0].after <= w[1].after), "steps out of order");
        Script { steps, detail }
    }

    /// The processes the script kills or pauses: no other active fault may hold them.
    pub fn claims(&self) -> BTreeSet<Process> {
        self.steps
            .iter()
            .filter_map(|s| match s.action {
                Action::Kill(p) | Action::Pause(p) => Some(p),
                Action::Restart(_) | Action::Resume(_) | Action::Cut { .. } | Action::Heal => None,
            })
            .collect()
    }

    /// True when every kill has a later restart of the same process, every pause a later
    /// resume, and a cut a later heal.
    pub fn undoes_itself(&self) -> bool {
        self.steps.iter().enumerate().all(|(i, step)| {
            let later = &self.steps[i + 1..];
            match step.action {
                Action::Kill(p) => later.iter().any(|s| s.action == Action::Restart(p)),
                Action::Pause(p) => later.iter().any(|s| s.action == Action::Resume(p)),
                Action::Cut { .. } => later.iter().any(|s| s.action == Action::Heal),
                Action::Restart(_) | Action::Resume(_) | Action::Heal => true,
            }
        })
    }
}

/// Cut `links`; after the lead kill `victim`; after its hold restart it; after the tail heal.
fn in_partition(fault: &Fault, victim: Process, name: &str, what: &str, links: BTreeSet<Link>) -> (Vec<Step>, String) {
    let cut = fault.cut;
    let (lead, hold, tail) = (fault.lead, fault.hold, fault.tail);
    let count = links.len();
    let steps = vec![
        Step { after: Duration::ZERO, action: Action::Cut { links, cut } },
        Step { after: lead, action: Action::Kill(victim) },
        Step { after: lead + hold, action: Action::Restart(victim) },
        Step { after: lead + hold + tail, action: Action::Heal },
    ];
    let detail = format!(
        "{what} ({count} directed links, {cut:?}); {} later SIGKILL {name}, restarted after {} while cut; healed {} later",
        secs(lead),
        secs(hold),
        secs(tail)
    );
    (steps, detail)
}

/// The links the classic `partition` shapes cut when node `master` serves, and a description.
pub fn shape_links(shape: Shape, master: usize, slaves: usize) -> (String, BTreeSet<Link>) {
    let node = Endpoint::Node(master);
    let name = NODE_NAMES[master];
    let nodes = [Endpoint::Node(0), Endpoint::Node(1)];
    match shape {
        Shape::IsolateMaster => {
            let mut links: BTreeSet<Link> = both_ways(nodes[0], nodes[1]).into();
            links.extend(both_ways(Endpoint::Clients, node));
            links.extend((0..slaves).flat_map(|k| both_ways(Endpoint::Slave(k), node)));
            (format!("isolate {name}"), links)
        }
        Shape::PeerLink => ("cut master <-> backup".to_string(), both_ways(nodes[0], nodes[1]).into()),
        Shape::MasterFromSlaves => (
            format!("cut {name} from every slave"),
            (0..slaves).flat_map(|k| both_ways(Endpoint::Slave(k), node)).collect(),
        ),
        Shape::OneSlave(k) => (
            format!("cut slave-{} from both nodes", k + 1),
            nodes.iter().flat_map(|&n| both_ways(Endpoint::Slave(k), n)).filter(|_| k < slaves).collect(),
        ),
        Shape::Clients => (
            "cut every client from both nodes".to_string(),
            nodes.iter().flat_map(|&n| both_ways(Endpoint::Clients, n)).collect(),
        ),
    }
}

fn secs(time: Duration) -> String {
    format!("{:.2} s", time.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::fault::Schedule;

    fn aim(serving: usize) -> Aim {
        Aim { serving, who: format!("{} (serving at epoch 2)", NODE_NAMES[serving]) }
    }

    #[test]
    fn every_kind_makes_a_script_that_undoes_itself() {
        let mut schedule = Schedule::new(&FaultKind::ALL, 3, 9);
        for _ in 0..FaultKind::ALL.len() * 20 {
            let fault = schedule.next_fault().expect("a fault");
            for serving in 0..2 {
                let script = Script::of(&fault, &aim(serving), 3);
                assert!(script.undoes_itself(), "{:?}: {script:?}", fault.kind);
                let last = script.steps.last().map(|s| s.after);
                assert_eq!(last, Some(fault.span()), "{:?} ends at its span", fault.kind);
            }
        }
    }

    #[test]
    fn kill_master_aims_at_the_serving_node_and_restarts_it() {
        let mut schedule = Schedule::new(&[FaultKind::KillMaster], 3, 1);
        let fault = schedule.next_fault().expect("a fault");
        let script = Script::of(&fault, &aim(1), 3);
        let actions: Vec<&Action> = script.steps.iter().map(|s| &s.action).collect();
        assert_eq!(actions, [&Action::Kill(Process::Node(1)), &Action::Restart(Process::Node(1))]);
        assert!(script.detail.starts_with("SIGKILL backup (serving at epoch 2), restarted after"));
    }

    #[test]
    fn pause_backup_pauses_the_node_that_does_not_serve() {
        let mut schedule = Schedule::new(&[FaultKind::PauseBackup], 3, 1);
        let fault = schedule.next_fault().expect("a fault");
        assert_eq!(Script::of(&fault, &aim(0), 3).claims(), [Process::Node(1)].into());
        assert_eq!(Script::of(&fault, &aim(1), 3).claims(), [Process::Node(0)].into());
    }

    #[test]
    fn kill_two_slaves_kills_two_different_slaves_at_once() {
        let mut schedule = Schedule::new(&[FaultKind::KillTwoSlaves], 3, 4);
        for _ in 0..50 {
            let fault = schedule.next_fault().expect("a fault");
            let script = Script::of(&fault, &aim(0), 3);
            assert_eq!(script.claims().len(), 2, "{fault:?}");
            assert!(script.steps[..2].iter().all(|s| s.after == Duration::ZERO));
        }
    }

    #[test]
    fn a_restart_in_a_partition_comes_before_its_heal() {
        let mut schedule = Schedule::new(&[FaultKind::RestartInPartition, FaultKind::RestartSlaveInPartition], 3, 2);
        let mut peer_cut_of_the_serving_master = false;
        for _ in 0..40 {
            let fault = schedule.next_fault().expect("a fault");
            let script = Script::of(&fault, &aim(0), 3);
            let kinds: Vec<&str> = script
                .steps
                .iter()
                .map(|s| match s.action {
                    Action::Cut { .. } => "cut",
                    Action::Kill(_) => "kill",
                    Action::Restart(_) => "restart",
                    Action::Heal => "heal",
                    Action::Pause(_) | Action::Resume(_) => "other",
                })
                .collect();
            assert_eq!(kinds, ["cut", "kill", "restart", "heal"]);
            if let Action::Cut { links, .. } = &script.steps[0].action {
                let peer: BTreeSet<Link> = both_ways(Endpoint::Node(0), Endpoint::Node(1)).into();
                peer_cut_of_the_serving_master |= *links == peer && script.claims() == [Process::Node(0)].into();
            }
        }
        assert!(peer_cut_of_the_serving_master, "the serving master restarts with its peer cut off");
    }

    #[test]
    fn the_classic_isolation_cuts_every_link_of_the_serving_master() {
        let (what, links) = shape_links(Shape::IsolateMaster, 1, 3);
        assert_eq!(what, "isolate backup");
        // master <-> backup, clients <-> backup, three slaves <-> backup: both ways each.
        assert_eq!(links.len(), 2 * 5);
        assert!(links.iter().all(|l| l.from == Endpoint::Node(1) || l.to == Endpoint::Node(1)));
        assert!(shape_links(Shape::OneSlave(7), 0, 3).1.is_empty(), "no such slave: nothing to cut");
    }
}
