//! Carrying out one [`Fault`] on the [`Topology`]: break something, hold it for the fault's
//! time, heal it. Every fault is healed before [`inject`] returns, also when the hold is cut
//! short by Ctrl-C.
//!
//! A node that the nemesis restarts and that does not come back (it exits, or never listens)
//! is the store's failure, not the harness's: it is returned as a problem and the run goes
//! on. Errors of the harness itself (a proxy or a signal it cannot use) end the run.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::HarnessError;
use crate::nemesis::fault::{Cut, Fault, FaultKind, Shape};
use crate::nemesis::monitor::Monitor;
use crate::nemesis::proxy::{LinkState, Proxy};
use crate::nemesis::topology::{Topology, NODE_NAMES};
use crate::signal::Interrupt;

/// What one fault did.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRecord {
    pub kind: FaultKind,
    /// Seconds since the workload started.
    pub at_s: f64,
    pub healed_s: f64,
    pub detail: String,
    /// Nodes that did not come back after a restart.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// Where a fault runs.
pub struct Stage<'a> {
    pub topology: &'a mut Topology,
    pub monitor: &'a Monitor,
    /// When the workload started: the origin of every time in the records.
    pub start: Instant,
    pub interrupt: &'a Interrupt,
    /// Nodes that did not come back after a restart.
    pub down: BTreeSet<String>,
}

/// Injects `fault`, holds it, heals it.
pub async fn inject(stage: &mut Stage<'_>, fault: &Fault) -> Result<FaultRecord, HarnessError> {
    let addrs = stage.topology.node_addrs.clone();
    let master = stage.monitor.refresh(&addrs, stage.start).await;
    let serving = master.and_then(|i| stage.monitor.observed.borrow().serving[i]);
    let target = master.unwrap_or(fault.fallback_node);
    let at_s = stage.start.elapsed().as_secs_f64();
    let who = match serving {
        Some(epoch) => format!("{} (serving at epoch {epoch})", NODE_NAMES[target]),
        None => format!("{} (no node seen serving; chosen by the seed)", NODE_NAMES[target]),
    };
    let mut problems = Vec::new();
    let detail = match fault.kind {
        FaultKind::KillMaster => {
            let name = NODE_NAMES[target];
            stage.topology.kill(name).await?;
            stage.hold(fault.hold).await;
            stage.restart(name, &mut problems).await?;
            format!("SIGKILL {who}, restarted after {}", secs(fault.hold))
        }
        FaultKind::PauseMaster => {
            let name = NODE_NAMES[target];
            stage.topology.pause(name)?;
            stage.hold(fault.hold).await;
            stage.topology.resume(name)?;
            format!("SIGSTOP {who}, SIGCONT after {}", secs(fault.hold))
        }
        FaultKind::KillSlave => {
            let name = stage.topology.slaves.get(fault.slave).cloned().unwrap_or_default();
            stage.topology.kill(&name).await?;
            stage.hold(fault.hold).await;
            stage.restart(&name, &mut problems).await?;
            format!("SIGKILL {name}, restarted after {}", secs(fault.hold))
        }
        FaultKind::Partition => {
            let (what, links) = partition_links(stage.topology, fault.shape, target);
            let state = match fault.cut {
                Cut::Reset => LinkState::Reset,
                Cut::Blackhole => LinkState::Blackhole,
            };
            for link in &links {
                link.set(state);
            }
            stage.hold(fault.hold).await;
            for link in &links {
                link.set(LinkState::Open);
            }
            format!("{what} ({} links, {:?}) for {}", links.len(), fault.cut, secs(fault.hold))
        }
        FaultKind::KillBothMasters => {
            let (first, second) = (NODE_NAMES[target], NODE_NAMES[1 - target]);
            stage.topology.kill(first).await?;
            stage.topology.kill(second).await?;
            stage.hold(fault.hold).await;
            let (a, b) = if fault.restart_master_first { (first, second) } else { (second, first) };
            stage.restart(a, &mut problems).await?;
            stage.hold(fault.restart_skew).await;
            stage.restart(b, &mut problems).await?;
            format!(
                "SIGKILL {who} and {second}, restarted {a} after {} and {b} {} later",
                secs(fault.hold),
                secs(fault.restart_skew)
            )
        }
    };
    let healed_s = stage.start.elapsed().as_secs_f64();
    Ok(FaultRecord { kind: fault.kind, at_s, healed_s, detail, problems })
}

impl Stage<'_> {
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
}

/// The links `shape` cuts when node `master` serves, and a description.
fn partition_links(topology: &Topology, shape: Shape, master: usize) -> (String, Vec<&Proxy>) {
    let name = NODE_NAMES[master];
    match shape {
        Shape::IsolateMaster => (format!("isolate {name}"), topology.links_of_node(master)),
        Shape::PeerLink => ("cut master <-> backup".to_string(), topology.peer_links()),
        Shape::MasterFromSlaves => (format!("cut {name} from every slave"), topology.slave_links_to(master)),
        Shape::OneSlave(k) => {
            let slave = topology.slaves.get(k).map_or("?", String::as_str);
            (format!("cut {slave} from both nodes"), topology.links_of_slave(k))
        }
        Shape::Clients => ("cut every client from both nodes".to_string(), topology.client_links()),
    }
}

fn secs(time: Duration) -> String {
    format!("{:.2} s", time.as_secs_f64())
}
