//! Rewrites one key's operations before the search, without changing the verdict.
//!
//! - A write of unknown outcome that no read could have observed (no read of its value, or of a
//!   missing key for a delete, returned after the write's invocation) is left out. It is never
//!   needed: in any linearization that contains it, no read falls between it and the next
//!   write, so removing it leaves a valid linearization.
//! - A put whose value no other put on the key writes must precede every read of that value,
//!   so its return time is moved up to the earliest return of such a read. Every linearization
//!   already meets that bound; with it, a put of unknown outcome that was read becomes an
//!   ordinary operation with a deadline instead of one that stays open to the end.
//! - Operations of unknown outcome with the same effect (deletes; puts of one value) are
//!   interchangeable: none has a deadline, so if a linearization uses a later-invoked one where
//!   an earlier-invoked one is unused or used later, swapping them gives another valid one.
//!   [`twins`] chains them so that the search takes them in invocation order only, which turns
//!   2^k subsets into k + 1.

use std::collections::HashMap;

use super::search::{KeyOp, Kind, State, MISSING};

/// The operations the search needs, with tightened return times, and their indices in `ops`.
pub(super) fn prepare(ops: &[KeyOp]) -> (Vec<usize>, Vec<KeyOp>) {
    let mut reads: HashMap<State, (u64, u64)> = HashMap::new();
    let mut writers: HashMap<State, usize> = HashMap::new();
    for op in ops {
        match (op.kind, op.ret) {
            (Kind::Get(value), Some(ret)) => {
                let (first, last) = reads.entry(value).or_insert((ret, ret));
                (*first, *last) = ((*first).min(ret), (*last).max(ret));
            }
            (Kind::Put(value), _) => *writers.entry(value).or_default() += 1,
            (Kind::Get(_), None) | (Kind::Del, _) => {}
        }
    }
    let mut kept = Vec::with_capacity(ops.len());
    let mut prepared = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let mut op = *op;
        let observed_as = match op.kind {
            Kind::Put(value) => value,
            Kind::Del => MISSING,
            Kind::Get(_) => {
                kept.push(i);
                prepared.push(op);
                continue;
            }
        };
        let seen = reads.get(&observed_as).copied();
        if let (Kind::Put(value), Some((first, _))) = (op.kind, seen) {
            if writers.get(&value) == Some(&1) && first >= op.call {
                op.ret = Some(op.ret.map_or(first, |ret| ret.min(first)));
            }
        }
        let observable = matches!(seen, Some((_, last)) if last >= op.call);
        if op.ret.is_some() || observable {
            kept.push(i);
            prepared.push(op);
        }
    }
    (kept, prepared)
}

/// For each operation of unknown outcome, the previous one (by invocation) with the same effect.
pub(super) fn twins(ops: &[KeyOp]) -> Vec<Option<usize>> {
    let mut open: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_none()).collect();
    open.sort_by_key(|&i| (ops[i].call, i));
    let mut last: HashMap<Kind, usize> = HashMap::new();
    let mut before = vec![None; ops.len()];
    for i in open {
        before[i] = last.insert(ops[i].kind, i);
    }
    before
}
