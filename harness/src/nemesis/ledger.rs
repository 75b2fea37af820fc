//! Which active fault holds which process down or paused: pure, no I/O.
//!
//! When faults overlap (`--compose`), two of them may aim at one process: killing a node that
//! is already down, pausing a killed node, killing a paused one. Each would leave the other's
//! undo wrong (a restart of a running node, a resume of a dead one), so a process belongs to
//! at most one fault from its kill or pause until its restart or resume. A fault whose script
//! claims a taken process does not start (it is skipped and logged); one that wants "a slave"
//! is first moved to a free one ([`Ledger::free_slave`]). Partitions claim nothing: their cuts
//! add up (`partition.rs`).

use std::collections::{BTreeMap, BTreeSet};

use crate::nemesis::partition::FaultId;
use crate::nemesis::script::Process;

/// The processes held by active faults.
#[derive(Debug, Default)]
pub struct Ledger {
    held: BTreeMap<Process, FaultId>,
}

/// Why a fault cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub process: Process,
    pub held_by: FaultId,
}

impl Ledger {
    /// Gives every process in `claims` to fault `id`, or none of them if one is taken.
    pub fn claim(&mut self, id: FaultId, claims: &BTreeSet<Process>) -> Result<(), Conflict> {
        if let Some((&process, &held_by)) = claims.iter().find_map(|p| self.held.get_key_value(p)) {
            return Err(Conflict { process, held_by });
        }
        for &process in claims {
            self.held.insert(process, id);
        }
        Ok(())
    }

    /// `process` is back (restarted or resumed): no fault holds it any more.
    pub fn release(&mut self, process: Process) {
        self.held.remove(&process);
    }

    /// The fault holding `process`, if any.
    pub fn holder(&self, process: Process) -> Option<FaultId> {
        self.held.get(&process).copied()
    }

    /// The processes some fault holds.
    pub fn held(&self) -> BTreeSet<Process> {
        self.held.keys().copied().collect()
    }

    /// The first slave from `preferred` on (wrapping around) that no fault holds and that is
    /// not `besides`; `None` if there is none among `slaves`.
    pub fn free_slave(&self, preferred: usize, slaves: usize, besides: Option<usize>) -> Option<usize> {
        (0..slaves)
            .map(|i| (preferred + i) % slaves)
            .find(|&k| Some(k) != besides && !self.held.contains_key(&Process::Slave(k)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_held_by_one_fault_cannot_be_claimed_by_another() {
        let mut ledger = Ledger::default();
        ledger.claim(1, &[Process::Node(0)].into()).expect("free");
        let taken = ledger.claim(2, &[Process::Node(1), Process::Node(0)].into());
        assert_eq!(taken, Err(Conflict { process: Process::Node(0), held_by: 1 }));
        assert_eq!(ledger.holder(Process::Node(1)), None, "a refused claim takes nothing");
        ledger.release(Process::Node(0));
        assert!(ledger.claim(2, &[Process::Node(1), Process::Node(0)].into()).is_ok());
        assert_eq!(ledger.held(), [Process::Node(0), Process::Node(1)].into());
    }

    #[test]
    fn a_slave_fault_moves_to_a_free_slave() {
        let mut ledger = Ledger::default();
        ledger.claim(1, &[Process::Slave(1)].into()).expect("free");
        assert_eq!(ledger.free_slave(0, 3, None), Some(0));
        assert_eq!(ledger.free_slave(1, 3, None), Some(2));
        assert_eq!(ledger.free_slave(1, 3, Some(2)), Some(0));
        ledger.claim(2, &[Process::Slave(0), Process::Slave(2)].into()).expect("free");
        assert_eq!(ledger.free_slave(0, 3, None), None);
        assert_eq!(ledger.free_slave(0, 0, None), None, "no slaves at all");
    }
}
