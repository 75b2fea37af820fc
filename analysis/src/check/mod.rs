//! `analysis check HISTORY.jsonl`: is a recorded history linearizable for per-key registers?
//!
//! Linearizability is compositional (P-compositionality in Porcupine's terms): a history is
//! linearizable if and only if each key's sub-history is, so every key is searched on its own
//! ([`search`]), in key order. The first key that is not linearizable is reported with a window
//! of the operations around where the search got stuck ([`explain`]). A key whose search visits
//! more than `max_states` states is reported as undecided: the checker never guesses.

mod entries;
mod explain;
pub mod history;
mod prepare;
pub mod search;
mod visited;

pub use explain::Violation;
pub use history::{Action, History, Operation};

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::Result;
use search::{KeyOp, Kind, Outcome, State, MISSING};

/// Default budget of distinct (linearized set, state) pairs per key.
pub const DEFAULT_MAX_STATES: usize = 10_000_000;

/// The checker's verdict on a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    NotLinearizable(Box<Violation>),
    /// The search of `key` gave up after `states` states; nothing is known about it.
    Undecided {
        key: String,
        operations: usize,
        states: usize,
    },
}

/// What the checker looked at and what it concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Operations searched (after dropping failed ones and gets of unknown outcome).
    pub operations: usize,
    pub keys: usize,
    pub dropped: usize,
    pub verdict: Verdict,
}

/// Reads and checks the history in `path`.
pub fn check_file(path: &Path, max_states: usize) -> Result<Report> {
    Ok(check(&history::load(path)?, max_states))
}

/// Checks a parsed history. A key that is not linearizable wins over one that is undecided.
pub fn check(history: &History, max_states: usize) -> Report {
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in &history.operations {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let origin = history.operations.iter().map(|op| op.call).min().unwrap_or(0);
    let mut verdict = Verdict::Linearizable;
    for (key, ops) in &by_key {
        let (key_ops, values) = intern(ops);
        match search::search(&key_ops, max_states) {
            Outcome::Linearizable => {}
            Outcome::NotLinearizable(stuck) => {
                let state = value_name(&values, stuck.state);
                let violation = Violation::new(key, ops, stuck, state, origin);
                verdict = Verdict::NotLinearizable(Box::new(violation));
                break;
            }
            Outcome::GaveUp { states } => {
                if verdict == Verdict::Linearizable {
                    let key = key.to_string();
                    verdict = Verdict::Undecided { key, operations: ops.len(), states };
                }
            }
        }
    }
    Report { operations: history.operations.len(), keys: by_key.len(), dropped: history.dropped, verdict }
}

/// Turns one key's operations into the search's form, values replaced by small integers.
fn intern<'a>(ops: &[&'a Operation]) -> (Vec<KeyOp>, Vec<&'a str>) {
    let mut ids: HashMap<&'a str, State> = HashMap::new();
    let mut values: Vec<&'a str> = Vec::new();
    let mut id = |v: &'a str| {
        *ids.entry(v).or_insert_with(|| {
            values.push(v);
            (values.len() - 1) as State
        })
    };
    let key_ops = ops
        .iter()
        .map(|op| {
            let kind = match &op.action {
                Action::Get(None) => Kind::Get(MISSING),
                Action::Get(Some(v)) => Kind::Get(id(v)),
                Action::Put(v) => Kind::Put(id(v)),
                Action::Del => Kind::Del,
            };
            KeyOp { kind, call: op.call, ret: op.ret }
        })
        .collect();
    (key_ops, values)
}

fn value_name(values: &[&str], state: State) -> Option<String> {
    values.get(state as usize).map(|v| v.to_string())
}
