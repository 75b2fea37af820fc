//! Explaining a violation: the operation the deepest search could not place, and the operations
//! around it, so that a reader can see the conflict without the whole history.

use std::fmt;

use super::history::{Action, Operation};
use super::search::Stuck;

/// Operations completed before the stuck one's invocation that the window keeps.
const WINDOW_BEFORE: usize = 4;
/// Most operations a window shows.
const WINDOW_MAX: usize = 16;

/// A key whose history is not linearizable, with the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub key: String,
    /// Operations on the key that were searched.
    pub operations: usize,
    /// Size of the longest linearizable prefix the search found.
    pub linearized: usize,
    /// The register after that prefix (`None`: missing).
    pub state: Option<String>,
    /// The operation no order could place after that prefix.
    pub stuck: Operation,
    /// The operations around it, by invocation time (the stuck one included).
    pub window: Vec<Operation>,
    /// Time origin of the printed times (the first invocation of the history).
    pub origin: u64,
}

impl Violation {
    pub(super) fn new(key: &str, ops: &[&Operation], stuck: Stuck, state: Option<String>, origin: u64) -> Violation {
        let target = ops.get(stuck.op).map(|op| (*op).clone()).unwrap_or_else(|| Operation {
            process: 0,
            key: key.to_string(),
            action: Action::Del,
            call: origin,
            ret: None,
            lines: (0, None),
        });
        Violation {
            key: key.to_string(),
            operations: ops.len(),
            linearized: stuck.linearized,
            state,
            window: window(ops, &target),
            stuck: target,
            origin,
        }
    }

    fn describe(&self, op: &Operation) -> String {
        let action = match &op.action {
            Action::Get(Some(v)) => format!("get -> {v:?}"),
            Action::Get(None) => "get -> missing".to_string(),
            Action::Put(v) => format!("put {v:?}"),
            Action::Del => "del".to_string(),
        };
        let at = |t: u64| format!("{:.3}", t.saturating_sub(self.origin) as f64 / 1000.0);
        let ret = op.ret.map_or("?".to_string(), at);
        let lines = match op.lines {
            (call, Some(done)) => format!("lines {call},{done}"),
            (call, None) => format!("line {call}, never completed"),
        };
        let outcome = if op.ret.is_none() { " (outcome unknown)" } else { "" };
        format!("p{:<4} {action:<28} [{} .. {}]{outcome}  {lines}", op.process, at(op.call), ret)
    }
}

/// Operations that overlap `target`, and the last few that finished before it began.
fn window(ops: &[&Operation], target: &Operation) -> Vec<Operation> {
    let end = |op: &Operation| op.ret.unwrap_or(u64::MAX);
    let mut before: Vec<&Operation> = ops.iter().copied().filter(|op| end(op) < target.call).collect();
    before.sort_by_key(|op| std::cmp::Reverse(end(op)));
    before.truncate(WINDOW_BEFORE);
    let mut overlapping: Vec<&Operation> =
        ops.iter().copied().filter(|op| end(op) >= target.call && op.call <= end(target)).collect();
    overlapping.sort_by_key(|op| op.call.abs_diff(target.call));
    overlapping.truncate(WINDOW_MAX - before.len());
    let mut window: Vec<Operation> = before.into_iter().chain(overlapping).cloned().collect();
    window.sort_by_key(|op| (op.call, op.lines.0));
    window
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.as_ref().map_or("missing".to_string(), |v| format!("holding {v:?}"));
        writeln!(f, "not linearizable: key {:?} ({} operations on it)", self.key, self.operations)?;
        writeln!(
            f,
            "the longest linearizable prefix found has {} operations and leaves the key {state};",
            self.linearized
        )?;
        writeln!(f, "no order of the remaining operations can place this one next:")?;
        writeln!(f, "    {}", self.describe(&self.stuck))?;
        writeln!(f, "operations around it (times in µs since the first invocation):")?;
        for op in &self.window {
            let mark = if *op == self.stuck { ">>" } else { "  " };
            writeln!(f, "  {mark}{}", self.describe(op))?;
        }
        Ok(())
    }
}
