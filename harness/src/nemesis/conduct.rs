//! `--compose`: faults that overlap. The [`Plan`] (`compose.rs`) says when each fault starts;
//! this loop starts them on time and plays the steps of every active fault's [`Script`] as
//! they come due, one at a time on the harness's thread, the steps before the starts when
//! both are due.
//!
//! Starting a fault: nodes that exited by themselves are restarted first (as between faults
//! one at a time); the fault is aimed at whoever serves now; a fault on "a slave" moves to a
//! slave no other fault holds; and a fault whose processes another active fault holds (it
//! would kill a node already down, or pause a killed one) is skipped and logged
//! (`ledger.rs`). Partitions add up (`partition.rs`), so they never conflict.
//!
//! At the end of `--duration` (or on Ctrl-C), the remaining steps of every active fault are
//! played at once, oldest fault first: each restart, resume and heal happens, so nothing is
//! left that the final heal could not undo. Steps take time (a restart waits for the node to
//! listen), so a step may come a little after its planned time; every step's time counts from
//! its fault's planned start, so lateness does not add up, and no more faults are active at
//! once than the plan has.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::HarnessError;
use crate::nemesis::compose::{most_at_once, overlaps, Plan, Planned};
use crate::nemesis::config::NemesisConfig;
use crate::nemesis::fault::{FaultKind, Schedule};
use crate::nemesis::inject::{FaultRecord, Stage};
use crate::nemesis::partition::FaultId;
use crate::nemesis::script::{Script, Step};

/// A fault that could not start, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub id: FaultId,
    pub kind: FaultKind,
    pub at_s: f64,
    pub reason: String,
}

/// What a composed run did.
#[derive(Debug, Default)]
pub struct Composed {
    pub records: Vec<FaultRecord>,
    pub skipped: Vec<Skipped>,
}

/// What the loop does next, and when.
#[derive(Debug, Clone, Copy)]
enum Next {
    /// The next step of an active fault.
    Step(Instant, FaultId),
    /// The next planned fault.
    Start(Instant),
}

/// One fault being played.
struct Active {
    begun: Instant,
    steps: VecDeque<Step>,
    record: FaultRecord,
}

/// Plays the plan of `config` until `--duration` has passed (or Ctrl-C), then heals what is
/// still active.
pub async fn conduct(
    stage: &mut Stage<'_>,
    config: &NemesisConfig,
    problems: &mut Vec<String>,
) -> Result<Composed, HarnessError> {
    let mut schedule = Schedule::new(&config.faults, stage.topology.slaves.len(), config.seed);
    let plan = Plan::new(&mut schedule, config.duration(), config.max_active);
    let mut pending: VecDeque<Planned> = plan.faults.into();
    let mut active: BTreeMap<FaultId, Active> = BTreeMap::new();
    let mut done = Composed::default();
    while !stage.interrupt.is_set() {
        let next_step = active
            .iter()
            .filter_map(|(&id, a)| a.steps.front().map(|s| (a.begun + s.after, id)))
            .min_by_key(|&(at, id)| (at, id));
        let next_start = pending.front().map(|p| stage.start + p.start);
        let next = match (next_step, next_start) {
            (None, None) => break,
            (Some((at, id)), Some(start)) if at <= start => Next::Step(at, id),
            (Some((at, id)), None) => Next::Step(at, id),
            (Some(_) | None, Some(start)) => Next::Start(start),
        };
        let due = match next {
            Next::Step(at, _) | Next::Start(at) => at,
        };
        stage.hold(due.saturating_duration_since(Instant::now())).await;
        if stage.interrupt.is_set() {
            break;
        }
        match next {
            Next::Step(_, id) => play_next(stage, id, &mut active, &mut done, problems).await?,
            Next::Start(_) => {
                if let Some(planned) = pending.pop_front() {
                    start(stage, planned, &mut active, &mut done, problems).await?;
                }
            }
        }
    }
    // Heal what is still active, oldest first.
    let ids: Vec<FaultId> = active.keys().copied().collect();
    for id in ids {
        while active.get(&id).is_some_and(|a| !a.steps.is_empty()) {
            play_next(stage, id, &mut active, &mut done, problems).await?;
        }
    }
    done.records.sort_by_key(|r| r.id);
    mark_overlaps(&mut done.records);
    Ok(done)
}

/// The most faults that were active at once in `records`.
pub fn most_active(records: &[FaultRecord]) -> usize {
    most_at_once(&intervals(records))
}

/// Fills each record's `overlaps` from the times it was active.
pub fn mark_overlaps(records: &mut [FaultRecord]) {
    let found = overlaps(&intervals(records));
    let ids: Vec<FaultId> = records.iter().map(|r| r.id).collect();
    for (record, others) in records.iter_mut().zip(found) {
        record.overlaps = others.into_iter().map(|j| ids[j]).collect();
    }
}

fn intervals(records: &[FaultRecord]) -> Vec<(f64, f64)> {
    records.iter().map(|r| (r.at_s, r.healed_s)).collect()
}

/// Starts a planned fault, or skips it.
async fn start(
    stage: &mut Stage<'_>,
    planned: Planned,
    active: &mut BTreeMap<FaultId, Active>,
    done: &mut Composed,
    problems: &mut Vec<String>,
) -> Result<(), HarnessError> {
    stage.revive(problems, false).await?;
    // Steps count from the planned start, not from now: a start that comes late (behind a
    // slow restart) must not push the fault's heal past the start of a later fault, or more
    // than the bound would be active at once.
    let begun = stage.start + planned.start;
    let Planned { id, mut fault, .. } = planned;
    let slaves = stage.topology.slaves.len();
    let at_s = stage.start.elapsed().as_secs_f64();
    let skip = |reason: String| Skipped { id, kind: fault.kind, at_s, reason };
    if matches!(fault.kind, FaultKind::KillSlave | FaultKind::KillTwoSlaves | FaultKind::RestartSlaveInPartition) {
        let Some(slave) = stage.ledger.free_slave(fault.slave, slaves, None) else {
            log_skip(done, skip("every slave is held by another fault".into()));
            return Ok(());
        };
        fault.slave = slave;
        if fault.kind == FaultKind::KillTwoSlaves && slaves > 1 {
            let Some(second) = stage.ledger.free_slave(fault.second_slave, slaves, Some(slave)) else {
                log_skip(done, skip("no second slave is free of other faults".into()));
                return Ok(());
            };
            fault.second_slave = second;
        }
    }
    let aim = stage.aim(fault.fallback_node).await;
    let script = Script::of(&fault, &aim, slaves);
    if let Err(conflict) = stage.ledger.claim(id, &script.claims()) {
        let reason = format!("{} is held by fault #{}", conflict.process.name(), conflict.held_by);
        log_skip(done, skip(reason));
        return Ok(());
    }
    eprintln!("[{at_s:>6.1} s] #{id} {}: {}", fault.kind.name(), script.detail);
    let record = FaultRecord {
        id,
        kind: fault.kind,
        at_s,
        healed_s: at_s,
        detail: script.detail,
        problems: Vec::new(),
        overlaps: Vec::new(),
    };
    active.insert(id, Active { begun, steps: script.steps.into(), record });
    // Its first steps are due now: play those at offset zero before anything else.
    while active.get(&id).and_then(|a| a.steps.front()).is_some_and(|s| s.after == Duration::ZERO) {
        play_next(stage, id, active, done, problems).await?;
    }
    Ok(())
}

fn log_skip(done: &mut Composed, skipped: Skipped) {
    eprintln!("[{:>6.1} s] #{} {} skipped: {}", skipped.at_s, skipped.id, skipped.kind.name(), skipped.reason);
    done.skipped.push(skipped);
}

/// Plays the next step of fault `id`; after its last, the fault is done.
async fn play_next(
    stage: &mut Stage<'_>,
    id: FaultId,
    active: &mut BTreeMap<FaultId, Active>,
    done: &mut Composed,
    problems: &mut Vec<String>,
) -> Result<(), HarnessError> {
    let Some(step) = active.get_mut(&id).and_then(|a| a.steps.pop_front()) else { return Ok(()) };
    let mut found = Vec::new();
    stage.act(id, step.action, &mut found).await?;
    for problem in &found {
        eprintln!("           {problem}");
    }
    problems.extend(found.iter().cloned());
    let Some(fault) = active.get_mut(&id) else { return Ok(()) };
    fault.record.problems.extend(found);
    if fault.steps.is_empty() {
        if let Some(mut finished) = active.remove(&id) {
            finished.record.healed_s = stage.start.elapsed().as_secs_f64();
            eprintln!(
                "[{:>6.1} s] #{id} {} healed ({} active)",
                finished.record.healed_s,
                finished.record.kind.name(),
                active.len()
            );
            done.records.push(finished.record);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: FaultId, at_s: f64, healed_s: f64) -> FaultRecord {
        FaultRecord {
            id,
            kind: FaultKind::Partition,
            at_s,
            healed_s,
            detail: String::new(),
            problems: Vec::new(),
            overlaps: Vec::new(),
        }
    }

    #[test]
    fn overlaps_name_the_faults_active_at_the_same_time() {
        let mut records = vec![record(3, 0.0, 2.0), record(4, 1.0, 5.0), record(6, 2.5, 3.0), record(7, 6.0, 7.0)];
        mark_overlaps(&mut records);
        let found: Vec<Vec<FaultId>> = records.iter().map(|r| r.overlaps.clone()).collect();
        assert_eq!(found, vec![vec![4], vec![3, 6], vec![4], vec![]]);
        assert_eq!(most_active(&records), 2);
    }
}
