//! Carrying out faults on the [`Topology`]: a fault's [`Script`] (`script.rs`) is played step
//! by step, each [`Action`] at its time. [`inject`] plays one fault from start to heal (the
//! default, one fault at a time); `conduct.rs` plays several at once (`--compose`) with the
//! same [`Stage::act`]. Every fault is healed before its play returns, also when a hold is cut
//! short by Ctrl-C: the remaining steps then come at once.
//!
//! A node that the nemesis restarts and that does not come back (it exits, or never listens)
//! is the store's failure, not the harness's: it is returned as a problem and the run goes
//! on. Errors of the harness itself (a proxy, a rule or a signal it cannot use) end the run.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::HarnessError;
use crate::nemesis::fault::{Fault, FaultKind};
use crate::nemesis::ledger::Ledger;
use crate::nemesis::monitor::Monitor;
use crate::nemesis::partition::FaultId;
use crate::nemesis::script::{Action, Aim, Process, Script};
use crate::nemesis::topology::{Topology, NODE_NAMES};
use crate::signal::Interrupt;

/// What one fault did.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRecord {
    /// Its place in the run (the plan's id with `--compose`).
    pub id: FaultId,
    pub kind: FaultKind,
    /// Seconds since the workload started.
    pub at_s: f64,
    pub healed_s: f64,
    pub detail: String,
    /// Nodes that did not come back after a restart.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// The faults active at some time while this one was (`--compose`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overlaps: Vec<FaultId>,
}

/// Where faults run.
pub struct Stage<'a> {
    pub topology: &'a mut Topology,
    pub monitor: &'a Monitor,
    /// When the workload started: the origin of every time in the records.
    pub start: Instant,
    pub interrupt: &'a Interrupt,
    /// Nodes that did not come back after a restart.
    pub down: BTreeSet<String>,
    /// Which active fault holds which process.
    pub ledger: Ledger,
}

/// Injects `fault`, holds it, heals it (one fault at a time).
pub async fn inject(stage: &mut Stage<'_>, id: FaultId, fault: &Fault) -> Result<FaultRecord, HarnessError> {
    let aim = stage.aim(fault.fallback_node).await;
    let at_s = stage.start.elapsed().as_secs_f64();
    let script = Script::of(fault, &aim, stage.topology.slaves.len());
    let begun = Instant::now();
    let mut problems = Vec::new();
    for step in script.steps {
        stage.hold((begun + step.after).saturating_duration_since(Instant::now())).await;
        stage.act(id, step.action, &mut problems).await?;
    }
    let healed_s = stage.start.elapsed().as_secs_f64();
    Ok(FaultRecord { id, kind: fault.kind, at_s, healed_s, detail: script.detail, problems, overlaps: Vec::new() })
}

impl Stage<'_> {
    /// The node the fault aims at: the one serving now, or `fallback` when none is seen
    /// serving; and how the log names it.
    pub async fn aim(&mut self, fallback: usize) -> Aim {
        let addrs = self.topology.node_addrs.clone();
        let master = self.monitor.refresh(&addrs, self.start).await;
        let serving = master.and_then(|i| self.monitor.observed.borrow().serving[i]);
        let target = master.unwrap_or(fallback).min(1);
        let who = match serving {
            Some(epoch) => format!("{} (serving at epoch {epoch})", NODE_NAMES[target]),
            None => format!("{} (no node seen serving; chosen by the seed)", NODE_NAMES[target]),
        };
        Aim { serving: target, who }
    }

    /// Carries out one step of fault `id`. A restart or a resume gives the process back.
    pub async fn act(&mut self, id: FaultId, action: Action, problems: &mut Vec<String>) -> Result<(), HarnessError> {
        match action {
            Action::Kill(process) => self.topology.kill(&process.name()).await,
            Action::Restart(process) => {
                self.restart(&process.name(), problems).await?;
                self.ledger.release(process);
                Ok(())
            }
            Action::Pause(process) => self.topology.pause(&process.name()),
            Action::Resume(process) => {
                self.topology.resume(&process.name())?;
                self.ledger.release(process);
                Ok(())
            }
            Action::Cut { links, cut } => self.topology.cut(id, links, cut),
            Action::Heal => self.topology.heal(id),
        }
    }

    /// Waits `time`, or less if Ctrl-C comes.
    pub async fn hold(&self, time: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(time) => {}
            _ = self.interrupt.wait() => {}
        }
    }

    /// Restarts `name`. A node that does not come back is a problem (added to `problems`,
    /// and to [`Stage::down`]), not an error; one that does is taken off `down`.
    pub async fn restart(&mut self, name: &str, problems: &mut Vec<String>) -> Result<(), HarnessError> {
        match self.topology.restart(name).await {
            Ok(()) => {
                self.down.remove(name);
                Ok(())
            }
            Err(err @ HarnessError::NodeStart { .. }) => {
                problems.push(err.to_string());
                self.down.insert(name.to_string());
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// Restarts every node that has exited although no fault holds it down: one that exited
    /// by itself is a problem. Nodes that did not come back after an earlier restart are
    /// tried again only when `retry_down` (at the final heal).
    pub async fn revive(&mut self, problems: &mut Vec<String>, retry_down: bool) -> Result<(), HarnessError> {
        let held: BTreeSet<String> = self.ledger.held().into_iter().map(Process::name).collect();
        for name in self.topology.exited() {
            let known_down = self.down.contains(&name);
            if held.contains(&name) || (known_down && !retry_down) {
                continue;
            }
            let mut failed = Vec::new();
            if !known_down {
                let at = self.start.elapsed().as_secs_f64();
                failed.push(format!("{name} exited by itself (found at {at:.1} s; see its log)"));
            }
            self.restart(&name, &mut failed).await?;
            for problem in &failed {
                eprintln!("           {problem}");
            }
            problems.extend(failed);
        }
        Ok(())
    }
}
