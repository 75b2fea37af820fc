//! The doubly linked list of call and return entries that the Wing-Gong search walks and lifts
//! operations out of.

use super::search::KeyOp;

/// Entries `0..2n` (a call and a return per operation, sorted by time), then the head and tail
/// sentinels.
pub(super) struct Entries {
    pub next: Vec<usize>,
    prev: Vec<usize>,
    /// For each entry: its operation and whether it is a call.
    pub what: Vec<(usize, bool)>,
    /// For each operation: its return entry.
    ret_of: Vec<usize>,
    pub head: usize,
    pub tail: usize,
}

impl Entries {
    /// Sorted by time; at equal times calls come first, so equal timestamps overlap. An
    /// operation of unknown outcome returns at +infinity.
    pub fn new(ops: &[KeyOp]) -> Entries {
        let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            order.push((op.call, false, i));
            order.push((op.ret.unwrap_or(u64::MAX), true, i));
        }
        order.sort_unstable();
        let n = order.len();
        let (head, tail) = (n, n + 1);
        let mut next = vec![tail; n + 2];
        let mut prev = vec![head; n + 2];
        let mut what = Vec::with_capacity(n);
        let mut ret_of = vec![0; ops.len()];
        for (e, &(_, is_return, op)) in order.iter().enumerate() {
            what.push((op, !is_return));
            if is_return {
                ret_of[op] = e;
            }
            prev[e] = if e == 0 { head } else { e - 1 };
            next[e] = if e + 1 == n { tail } else { e + 1 };
        }
        next[head] = if n == 0 { tail } else { 0 };
        prev[tail] = if n == 0 { head } else { n - 1 };
        Entries { next, prev, what, ret_of, head, tail }
    }

    /// Each operation's rank in return order.
    pub fn return_ranks(&self) -> Vec<u32> {
        let mut ranks = vec![0; self.ret_of.len()];
        let returns = self.what.iter().filter(|(_, is_call)| !is_call);
        for (rank, &(op, _)) in returns.enumerate() {
            ranks[op] = rank as u32;
        }
        ranks
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        self.prev[n] = e;
    }

    /// Takes a call entry and its return entry out of the list.
    pub fn lift(&mut self, call: usize) {
        let ret = self.ret_of[self.what[call].0];
        self.unlink(call);
        self.unlink(ret);
    }

    /// Undoes the matching `lift` (lifts are undone in reverse order).
    pub fn unlift(&mut self, call: usize) {
        let ret = self.ret_of[self.what[call].0];
        self.relink(ret);
        self.relink(call);
    }
}
