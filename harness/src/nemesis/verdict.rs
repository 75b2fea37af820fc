//! The verdict on a nemesis run, from its history file and the values the final reads saw:
//!
//! - (a) linearizability: the `analysis` crate's checker ([`analysis::check`]), key by key;
//! - (b) no lost writes: every acknowledged put or del is the final state of its key, or
//!   another write to the key (acknowledged, of unknown outcome, or never answered) may have
//!   taken effect after it, that is, it did not complete before the acknowledged one began;
//! - (c) the cluster serves again after healing, and no node failed to come back; the run
//!   finds these out and hands them in as [`Recovery`].
//!
//! (b) is implied by (a) whenever the final reads are in the history (they are), but it is
//! cheap, never gives up, and names the lost write plainly. Tests feed hand-made histories
//! through [`judge`], the same function a run calls, to show that a violation is reported.

use std::collections::BTreeMap;
use std::path::Path;

use analysis::check::{self, Action, History, Operation, Verdict};
use serde::Serialize;

use crate::error::HarnessError;

/// Exit code of a run with no violation.
pub const EXIT_PASS: i32 = 0;
/// Exit code of a run with at least one violation.
pub const EXIT_VIOLATION: i32 = 1;
/// Exit code when the checker gave up on a key and nothing else was wrong: no verdict.
pub const EXIT_UNDECIDED: i32 = 3;

/// (a): what the linearizability checker concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "detail", rename_all = "kebab-case")]
pub enum Linearizability {
    Linearizable,
    /// The checker's explanation: the key, the operation it could not place, and a window.
    NotLinearizable(String),
    /// The search gave up on a key: no verdict either way.
    Undecided(String),
}

/// (b): an acknowledged write that neither survived nor was overwritten.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LostWrite {
    pub key: String,
    pub process: u64,
    /// The value written; `None` for a del.
    pub value: Option<String>,
    /// Invocation and acknowledgement, in seconds since the workload started.
    pub call_s: f64,
    pub ack_s: f64,
    /// What the final read found (`None`: missing).
    pub final_value: Option<String>,
}

/// (c): how the cluster came back, as the run saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recovery {
    /// Why the cluster did not serve again within the settle deadline, if it did not.
    pub not_serving: Option<String>,
    /// Nodes that did not come back after a restart, or exited by themselves.
    pub node_problems: Vec<String>,
}

/// Everything the checks found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judgement {
    /// Operations the checker searched, the keys they touch, and those it dropped (failed
    /// operations and reads of unknown outcome).
    pub operations: usize,
    pub keys: usize,
    pub dropped: usize,
    pub linearizability: Linearizability,
    pub lost_writes: Vec<LostWrite>,
    pub recovery: Recovery,
}

impl Judgement {
    /// One line per violation; empty when the run passed (or is undecided).
    pub fn violations(&self) -> Vec<String> {
        let mut found = Vec::new();
        if let Linearizability::NotLinearizable(why) = &self.linearizability {
            let first = why.lines().next().unwrap_or("not linearizable");
            found.push(format!("(a) {first}"));
        }
        for lost in &self.lost_writes {
            let what = lost.value.as_ref().map_or("del".to_string(), |v| format!("put {v:?}"));
            let now = lost.final_value.as_ref().map_or("missing".to_string(), |v| format!("{v:?}"));
            found.push(format!(
                "(b) lost write: {what} on {:?} by process {}, acknowledged at {:.3} s, but the key ends {now}",
                lost.key, lost.process, lost.ack_s
            ));
        }
        if let Some(why) = &self.recovery.not_serving {
            found.push(format!("(c) the cluster does not serve again after healing: {why}"));
        }
        for problem in &self.recovery.node_problems {
            found.push(format!("(c) {problem}"));
        }
        found
    }

    /// The process's exit code: a violation wins over an undecided search.
    pub fn exit_code(&self) -> i32 {
        if !self.violations().is_empty() {
            EXIT_VIOLATION
        } else if matches!(self.linearizability, Linearizability::Undecided(_)) {
            EXIT_UNDECIDED
        } else {
            EXIT_PASS
        }
    }
}

/// Checks the history in `path`. `finals` holds, for every key the final reads read, the
/// value they found (`None`: missing); keys not in it are not checked for lost writes.
pub fn judge(
    path: &Path,
    finals: &BTreeMap<String, Option<String>>,
    recovery: Recovery,
    max_states: usize,
) -> Result<Judgement, HarnessError> {
    let history = check::history::load(path)?;
    let report = check::check(&history, max_states);
    let linearizability = match report.verdict {
        Verdict::Linearizable => Linearizability::Linearizable,
        Verdict::NotLinearizable(violation) => Linearizability::NotLinearizable(violation.to_string()),
        Verdict::Undecided { key, operations, states } => Linearizability::Undecided(format!(
            "the search of key {key:?} ({operations} operations) gave up after {states} states"
        )),
    };
    Ok(Judgement {
        operations: report.operations,
        keys: report.keys,
        dropped: report.dropped,
        linearizability,
        lost_writes: lost_writes(&history, finals),
        recovery,
    })
}

/// (b) over a parsed history.
pub fn lost_writes(history: &History, finals: &BTreeMap<String, Option<String>>) -> Vec<LostWrite> {
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in &history.operations {
        if !matches!(op.action, Action::Get(_)) {
            by_key.entry(op.key.as_str()).or_default().push(op);
        }
    }
    let mut lost = Vec::new();
    for (key, writes) in by_key {
        let Some(last) = finals.get(key) else { continue };
        // The two latest ends (an unanswered write never ends): enough to ask, for any write,
        // whether another one ends after it began.
        let end = |op: &Operation| op.ret.unwrap_or(u64::MAX);
        let mut latest: [Option<(u64, usize)>; 2] = [None, None];
        for (i, op) in writes.iter().enumerate() {
            let candidate = Some((end(op), i));
            if candidate > latest[0] {
                latest = [candidate, latest[0]];
            } else if candidate > latest[1] {
                latest[1] = candidate;
            }
        }
        for (i, op) in writes.iter().enumerate() {
            let Some(ack) = op.ret else { continue };
            let written = match &op.action {
                Action::Put(value) => Some(value.clone()),
                Action::Del => None,
                Action::Get(_) => continue,
            };
            if &written == last {
                continue;
            }
            let other = if latest[0].map(|(_, j)| j) == Some(i) { latest[1] } else { latest[0] };
            if other.is_some_and(|(other_end, _)| other_end > op.call) {
                continue;
            }
            lost.push(LostWrite {
                key: key.to_string(),
                process: op.process,
                value: written,
                call_s: seconds(op.call),
                ack_s: seconds(ack),
                final_value: last.clone(),
            });
        }
    }
    lost
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(key: &str, action: Action, call: u64, ret: Option<u64>, line: usize) -> Operation {
        Operation { process: line as u64, key: key.to_string(), action, call, ret, lines: (line, None) }
    }

    fn put(v: &str) -> Action {
        Action::Put(v.to_string())
    }

    fn finals(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect()
    }

    #[test]
    fn the_final_value_and_overwritten_writes_are_not_lost() {
        let history = History {
            operations: vec![
                op("k", put("a"), 0, Some(10), 1),
                op("k", put("b"), 20, Some(30), 2),
                op("k", Action::Del, 25, None, 3),
                op("k", put("c"), 40, Some(50), 4),
            ],
            dropped: 0,
        };
        // "c" is final; "a" and "b" were overwritten by "c" (and the unanswered del).
        assert!(lost_writes(&history, &finals(&[("k", Some("c"))])).is_empty());
        // The del may have taken effect last, after "c": a missing key loses nothing either.
        assert!(lost_writes(&history, &finals(&[("k", None)])).is_empty());
    }

    #[test]
    fn an_acknowledged_write_with_nothing_after_it_must_be_final() {
        let history = History {
            operations: vec![op("k", put("a"), 0, Some(10), 1), op("k", put("b"), 20, Some(30), 2)],
            dropped: 0,
        };
        let lost = lost_writes(&history, &finals(&[("k", Some("a"))]));
        assert_eq!(lost.len(), 1);
        assert_eq!((lost[0].value.as_deref(), lost[0].final_value.as_deref()), (Some("b"), Some("a")));
    }

    #[test]
    fn concurrent_writes_may_end_in_either_order() {
        let history = History {
            operations: vec![op("k", put("a"), 0, Some(30), 1), op("k", put("b"), 10, Some(20), 2)],
            dropped: 0,
        };
        assert!(lost_writes(&history, &finals(&[("k", Some("a"))])).is_empty());
        assert!(lost_writes(&history, &finals(&[("k", Some("b"))])).is_empty());
    }

    #[test]
    fn an_acknowledged_del_must_leave_the_key_missing_or_be_overwritten() {
        let history = History {
            operations: vec![op("k", put("a"), 0, Some(10), 1), op("k", Action::Del, 20, Some(30), 2)],
            dropped: 0,
        };
        let lost = lost_writes(&history, &finals(&[("k", Some("a"))]));
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].value, None);
        assert!(lost_writes(&history, &finals(&[("k", None)])).is_empty());
    }

    #[test]
    fn keys_the_final_reads_missed_are_not_judged() {
        let history = History { operations: vec![op("k", put("a"), 0, Some(10), 1)], dropped: 0 };
        assert!(lost_writes(&history, &finals(&[])).is_empty());
    }
}
