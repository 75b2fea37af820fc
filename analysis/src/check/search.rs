//! The Wing-Gong search for one key's register, with Lowe's memoization as Porcupine does it.
//!
//! Call and return entries of every operation sit in one doubly linked list sorted by time
//! ([`Entries`]). The search walks the list: at a call it tries to linearize that operation
//! next (apply it to the register; if the register accepts and the pair (set of linearized
//! operations, register state) is new, it lifts the operation out of the list and starts over
//! from the head); at a return it has met an operation that had to be linearized by now and was
//! not, so it undoes the last choice. The cache of visited pairs ([`visited`]) is what keeps
//! this polynomial in practice.
//!
//! Operations of unknown outcome have their return at +infinity, so they stay available to the
//! end, and the search succeeds once every operation with a known outcome is linearized: an
//! unknown one may take effect at any point after its invocation, or never. [`prepare`]
//! rewrites the operations first so that many of these stop being open-ended.
//!
//! [`Entries`]: super::entries::Entries
//! [`visited`]: super::visited
//! [`prepare`]: super::prepare

use super::entries::Entries;
use super::prepare::{prepare, twins};
use super::visited::{Cache, Linearized};

/// Register state: the index of the value held, or [`MISSING`].
pub type State = u32;
/// The state of a key that does not exist (the initial state of every key).
pub const MISSING: State = State::MAX;
/// Memory the cache of one key may use before the search gives up.
pub const MAX_CACHE_BYTES: usize = 4 << 30;

/// What an operation does to the register; values are interned per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A read that returned this state.
    Get(State),
    Put(State),
    Del,
}

/// One operation on the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyOp {
    pub kind: Kind,
    pub call: u64,
    /// `None`: unknown outcome.
    pub ret: Option<u64>,
}

/// Where the deepest attempt got stuck: after linearizing `linearized` operations, leaving the
/// register in `state`, operation `op` (an index into the slice searched) could not be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stuck {
    pub linearized: usize,
    pub state: State,
    pub op: usize,
}

/// The outcome of searching one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Linearizable,
    NotLinearizable(Stuck),
    /// The cache grew past the budget (states or [`MAX_CACHE_BYTES`]) before the search ended.
    GaveUp {
        states: usize,
    },
}

/// Applies `kind` to the register in `state`; `None` if the register could not have answered so.
fn step(state: State, kind: Kind) -> Option<State> {
    match kind {
        Kind::Get(read) => (read == state).then_some(state),
        Kind::Put(value) => Some(value),
        Kind::Del => Some(MISSING),
    }
}

/// Decides whether `ops` (all on one key, starting from a missing key) are linearizable,
/// visiting at most `max_states` distinct (linearized set, state) pairs.
pub fn search(ops: &[KeyOp], max_states: usize) -> Outcome {
    let (kept, prepared) = prepare(ops);
    match search_prepared(&prepared, max_states) {
        Outcome::NotLinearizable(stuck) => {
            let op = kept.get(stuck.op).copied().unwrap_or(0);
            Outcome::NotLinearizable(Stuck { op, ..stuck })
        }
        outcome @ (Outcome::Linearizable | Outcome::GaveUp { .. }) => outcome,
    }
}

/// The search proper, over every operation in `ops`.
fn search_prepared(ops: &[KeyOp], max_states: usize) -> Outcome {
    let twin_before = twins(ops);
    let mut entries = Entries::new(ops);
    let mut linearized = Linearized::new(entries.return_ranks());
    let mut cache = Cache::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state = MISSING;
    let mut required = ops.iter().filter(|op| op.ret.is_some()).count();
    let mut deepest: Option<Stuck> = None;
    let mut entry = entries.next[entries.head];
    loop {
        if required == 0 {
            return Outcome::Linearizable;
        }
        let is_call = entry != entries.tail && entries.what[entry].1;
        if is_call {
            let op = entries.what[entry].0;
            let in_turn = match twin_before[op] {
                None => true,
                Some(twin) => linearized.contains(twin),
            };
            if let Some(after) = step(state, ops[op].kind).filter(|_| in_turn) {
                linearized.insert(op);
                if cache.insert(&linearized, after) {
                    if cache.len() > max_states || cache.bytes() > MAX_CACHE_BYTES {
                        return Outcome::GaveUp { states: cache.len() };
                    }
                    stack.push((entry, state));
                    state = after;
                    required -= usize::from(ops[op].ret.is_some());
                    entries.lift(entry);
                    entry = entries.next[entries.head];
                    continue;
                }
                linearized.remove(op);
            }
            entry = entries.next[entry];
            continue;
        }
        // A return entry (or the end): its operation had to be linearized by now.
        let deeper = match deepest {
            None => true,
            Some(d) => stack.len() > d.linearized,
        };
        if deeper && entry != entries.tail {
            let op = entries.what[entry].0;
            deepest = Some(Stuck { linearized: stack.len(), state, op });
        }
        let Some((call, before)) = stack.pop() else {
            let fallback = Stuck { linearized: 0, state: MISSING, op: 0 };
            return Outcome::NotLinearizable(deepest.unwrap_or(fallback));
        };
        let op = entries.what[call].0;
        linearized.remove(op);
        state = before;
        required += usize::from(ops[op].ret.is_some());
        entries.unlift(call);
        entry = entries.next[call];
    }
}
