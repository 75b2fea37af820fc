//! Watching who serves: every [`POLL`] the monitor dials both master-capable nodes directly
//! (not through the proxies) and reads their handshake: a node that welcomes a client serves
//! as master, at the epoch it names; a standby refuses, and a paused or dead node does not
//! answer within [`DIAL_DEADLINE`].
//!
//! Every epoch higher than any seen before is recorded; each one after the first is a
//! takeover. Polling can miss a takeover that a second one follows within a poll, so the count
//! is a lower bound. The node serving at the highest epoch now is the one the faults that
//! target "the master" aim at.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actors::dial::dial;
use actors::security::Credentials;
use net::{PeerRole, ServerRole};
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::nemesis::topology::NODE_NAMES;

/// Time between two polls.
pub const POLL: Duration = Duration::from_millis(100);

/// Deadline for one handshake.
pub const DIAL_DEADLINE: Duration = Duration::from_millis(300);

/// A new highest epoch, and who served it.
#[derive(Debug, Clone, Serialize)]
pub struct EpochSeen {
    /// Seconds since the workload started.
    pub at_s: f64,
    pub node: &'static str,
    pub epoch: u64,
}

/// What the monitor has seen.
#[derive(Debug, Default)]
pub struct Observed {
    /// Each new highest epoch, in order.
    pub epochs: Vec<EpochSeen>,
    /// The epoch each node served at in the latest poll (`None`: not serving).
    pub serving: [Option<u64>; 2],
}

impl Observed {
    /// Epoch changes after the first epoch seen.
    pub fn takeovers(&self) -> usize {
        self.epochs.len().saturating_sub(1)
    }

    /// The node serving at the highest epoch in the latest poll.
    pub fn current_master(&self) -> Option<usize> {
        (0..2).filter(|&i| self.serving[i].is_some()).max_by_key(|&i| self.serving[i])
    }

    /// Takes in one poll's answers, observed `at_s` seconds after the start.
    pub fn record(&mut self, serving: [Option<u64>; 2], at_s: f64) {
        self.serving = serving;
        let highest = self.epochs.last().map(|e| e.epoch);
        let newest = (0..2).filter_map(|i| serving[i].map(|epoch| (epoch, i))).max();
        if let Some((epoch, i)) = newest {
            // `None` (nothing seen yet) is below every epoch.
            if highest < Some(epoch) {
                self.epochs.push(EpochSeen { at_s, node: NODE_NAMES[i], epoch });
            }
        }
    }
}

/// The polling task and what it saw.
pub struct Monitor {
    pub observed: Rc<RefCell<Observed>>,
    /// What the monitor presents to the nodes (the client password and TLS of a secured run).
    credentials: Credentials,
    task: JoinHandle<()>,
}

impl Monitor {
    /// Starts polling `addrs` (node 0, node 1); times count from `start`.
    pub fn start(addrs: [String; 2], credentials: Credentials, start: Instant) -> Monitor {
        let observed = Rc::new(RefCell::new(Observed::default()));
        let task = actix_rt::spawn(poll(addrs, credentials.clone(), start, observed.clone()));
        Monitor { observed, credentials, task }
    }

    /// Polls once more at once (so the caller sees the current master) and returns it.
    pub async fn refresh(&self, addrs: &[String; 2], start: Instant) -> Option<usize> {
        let serving = poll_once(addrs, &self.credentials).await;
        let mut observed = self.observed.borrow_mut();
        observed.record(serving, start.elapsed().as_secs_f64());
        observed.current_master()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn poll(addrs: [String; 2], credentials: Credentials, start: Instant, observed: Rc<RefCell<Observed>>) {
    loop {
        let serving = poll_once(&addrs, &credentials).await;
        observed.borrow_mut().record(serving, start.elapsed().as_secs_f64());
        tokio::time::sleep(POLL).await;
    }
}

async fn poll_once(addrs: &[String; 2], credentials: &Credentials) -> [Option<u64>; 2] {
    let (a, b) = tokio::join!(serving_epoch(&addrs[0], credentials), serving_epoch(&addrs[1], credentials));
    [a, b]
}

/// The epoch `addr` serves at as master, if it does.
async fn serving_epoch(addr: &str, credentials: &Credentials) -> Option<u64> {
    let dialed = dial(addr, PeerRole::Client, DIAL_DEADLINE, credentials).await.ok()?;
    (dialed.welcome.role == ServerRole::Master).then_some(dialed.welcome.epoch.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_new_highest_epoch_after_the_first_is_a_takeover() {
        let mut seen = Observed::default();
        seen.record([Some(2), None], 0.1);
        seen.record([Some(2), None], 0.2);
        assert_eq!((seen.takeovers(), seen.current_master()), (0, Some(0)));
        seen.record([None, None], 0.3);
        assert_eq!(seen.current_master(), None);
        seen.record([Some(2), Some(3)], 0.4);
        assert_eq!((seen.takeovers(), seen.current_master()), (1, Some(1)));
        seen.record([Some(4), None], 0.5);
        let epochs: Vec<(u64, &str)> = seen.epochs.iter().map(|e| (e.epoch, e.node)).collect();
        assert_eq!(epochs, [(2, "master"), (3, "backup"), (4, "master")]);
        assert_eq!(seen.takeovers(), 2);
    }
}
