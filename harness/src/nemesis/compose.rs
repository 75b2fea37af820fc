//! The plan of a `--compose` run: when each fault starts, so that faults overlap. Pure and
//! seeded, no I/O: the same seed, kinds, slaves, duration and bound give the same plan.
//!
//! Faults come from the same [`Schedule`] as one at a time, but a fault's gap counts from the
//! previous fault's start rather than from its heal, so a fault that outlasts the next gap is
//! still active when the next one starts. At most `max_active` run at once: a fault that would
//! exceed the bound starts when the earliest active one ends. Every fault ends by the end of
//! the run: its hold is cut to fit, and a fault that cannot fit at all ends the plan.
//!
//! Which processes a fault ends up touching depends on who serves when it starts, so the plan
//! cannot rule out two faults aiming at one process; the run settles that when a fault starts
//! (`ledger.rs`).

use std::time::Duration;

use crate::nemesis::fault::{Fault, Schedule};
use crate::nemesis::partition::FaultId;

/// Faults active at once, by default.
pub const MAX_ACTIVE: usize = 3;

/// One fault of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub id: FaultId,
    /// From the start of the workload.
    pub start: Duration,
    pub fault: Fault,
}

impl Planned {
    pub fn end(&self) -> Duration {
        self.start + self.fault.span()
    }
}

/// Every fault of a run, in order of start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub faults: Vec<Planned>,
}

impl Plan {
    /// Draws faults from `schedule` until one no longer fits in `duration`.
    pub fn new(schedule: &mut Schedule, duration: Duration, max_active: usize) -> Plan {
        let max_active = max_active.max(1);
        let mut faults: Vec<Planned> = Vec::new();
        let mut ends: Vec<Duration> = Vec::new();
        let mut now = Duration::ZERO;
        while let Some(mut fault) = schedule.next_fault() {
            now += fault.gap;
            ends.retain(|&end| end > now);
            if ends.len() >= max_active {
                now = ends.iter().copied().min().unwrap_or(now);
                ends.retain(|&end| end > now);
            }
            // What the fault takes besides its hold (a restart skew, a lead and a tail).
            let fixed = fault.span().saturating_sub(fault.hold);
            if now + fixed >= duration {
                break;
            }
            fault.hold = fault.hold.min(duration - now - fixed);
            let planned = Planned { id: faults.len(), start: now, fault };
            ends.push(planned.end());
            faults.push(planned);
        }
        Plan { faults }
    }

    /// The most faults active at one instant.
    pub fn most_active(&self) -> usize {
        let intervals: Vec<(f64, f64)> =
            self.faults.iter().map(|p| (p.start.as_secs_f64(), p.end().as_secs_f64())).collect();
        most_at_once(&intervals)
    }
}

/// The most of `intervals` (start, end) that contain one instant; one that ends as another
/// starts does not overlap it.
pub fn most_at_once(intervals: &[(f64, f64)]) -> usize {
    let mut events: Vec<(f64, i32)> = intervals.iter().flat_map(|&(a, b)| [(a, 1), (b, -1)]).collect();
    // Ends before starts at the same instant.
    events.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, change) in events {
        now += change;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

/// For each interval, the indexes of the others it overlaps.
pub fn overlaps(intervals: &[(f64, f64)]) -> Vec<Vec<usize>> {
    intervals
        .iter()
        .enumerate()
        .map(|(i, &(a, b))| {
            intervals.iter().enumerate().filter(|&(j, &(c, d))| j != i && a < d && c < b).map(|(j, _)| j).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::fault::FaultKind;

    fn plan(seed: u64, max_active: usize) -> Plan {
        let mut schedule = Schedule::new(&FaultKind::ALL, 3, seed);
        Plan::new(&mut schedule, Duration::from_secs(60), max_active)
    }

    #[test]
    fn the_same_seed_gives_the_same_plan() {
        assert_eq!(plan(5, 3), plan(5, 3));
        assert_ne!(plan(5, 3), plan(6, 3));
    }

    #[test]
    fn faults_overlap_but_never_more_than_the_bound() {
        for seed in 0..50 {
            let plan = plan(seed, 3);
            assert!(plan.most_active() <= 3, "seed {seed}: {}", plan.most_active());
            assert!(plan.most_active() >= 2, "seed {seed}: faults overlap");
            assert!(plan.faults.windows(2).all(|w| w[0].start <= w[1].start), "in order of start");
        }
    }

    #[test]
    fn a_bound_of_one_is_one_fault_at_a_time() {
        for seed in 0..20 {
            let plan = plan(seed, 1);
            assert_eq!(plan.most_active(), 1, "seed {seed}");
            assert!(plan.faults.windows(2).all(|w| w[0].end() <= w[1].start));
        }
    }

    #[test]
    fn every_fault_ends_by_the_end_of_the_run() {
        for seed in 0..50 {
            let mut schedule = Schedule::new(&FaultKind::ALL, 3, seed);
            let plan = Plan::new(&mut schedule, Duration::from_secs(20), 3);
            assert!(!plan.faults.is_empty());
            assert!(plan.faults.iter().all(|p| p.end() <= Duration::from_secs(20)), "seed {seed}");
            let ids: Vec<usize> = plan.faults.iter().map(|p| p.id).collect();
            assert_eq!(ids, (0..plan.faults.len()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn no_kinds_plan_nothing() {
        let mut schedule = Schedule::new(&[], 3, 1);
        assert!(Plan::new(&mut schedule, Duration::from_secs(60), 3).faults.is_empty());
    }

    #[test]
    fn intervals_that_touch_do_not_overlap() {
        let intervals = [(0.0, 2.0), (1.0, 3.0), (3.0, 4.0), (1.5, 1.6)];
        assert_eq!(most_at_once(&intervals), 3);
        assert_eq!(overlaps(&intervals), vec![vec![1, 3], vec![0, 3], vec![], vec![0, 1]]);
    }
}
