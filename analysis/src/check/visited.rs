//! The set of linearized operations and the cache of visited (set, state) pairs.
//!
//! The search can only reach an operation's call after every earlier return is linearized, so
//! a linearized set is almost always "every operation up to some rank in return order" plus a
//! few more. It is stored that way, (prefix, ranks beyond it), which keeps a cached state at a
//! few dozen bytes however long the key's history is. Lookups use a Zobrist hash (one random
//! word per operation XORed in and out) and then compare the stored sets in full, so a hash
//! collision can never hide a state.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use super::search::State;

/// The linearized operations, kept in three forms: a bitset for membership, the canonical
/// (prefix, beyond) form for the cache, and the Zobrist hash.
pub(super) struct Linearized {
    bits: Vec<u64>,
    hash: u64,
    /// Each operation's rank in return order.
    rank: Vec<u32>,
    /// Ranks `0..prefix` are all linearized; rank `prefix` is not.
    prefix: u32,
    /// Linearized ranks above `prefix`.
    beyond: BTreeSet<u32>,
}

impl Linearized {
    pub fn new(rank: Vec<u32>) -> Linearized {
        Linearized { bits: vec![0; rank.len().div_ceil(64)], hash: 0, rank, prefix: 0, beyond: BTreeSet::new() }
    }

    pub fn contains(&self, op: usize) -> bool {
        self.bits[op / 64] & (1 << (op % 64)) != 0
    }

    pub fn insert(&mut self, op: usize) {
        debug_assert!(!self.contains(op), "operation {op} linearized twice");
        self.bits[op / 64] |= 1 << (op % 64);
        self.hash ^= zobrist(op as u64);
        let r = self.rank[op];
        if r == self.prefix {
            self.prefix += 1;
            while self.beyond.remove(&self.prefix) {
                self.prefix += 1;
            }
            debug_assert!(self.prefix as usize <= self.rank.len(), "prefix past the last rank");
        } else {
            self.beyond.insert(r);
        }
    }

    pub fn remove(&mut self, op: usize) {
        debug_assert!(self.contains(op), "undoing operation {op}, never linearized");
        self.bits[op / 64] &= !(1 << (op % 64));
        self.hash ^= zobrist(op as u64);
        let r = self.rank[op];
        if r < self.prefix {
            self.beyond.extend(r + 1..self.prefix);
            self.prefix = r;
        } else {
            self.beyond.remove(&r);
        }
    }
}

/// A fixed pseudo-random word for `i` (splitmix64).
fn zobrist(i: u64) -> u64 {
    let mut z = i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hasher for keys that are already uniformly random: it passes them through.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// One cached pair; pairs with the same hash are chained through `next`.
struct Slot {
    next: u32,
    state: State,
    prefix: u32,
    /// Range of its `beyond` ranks in `Cache::beyond`.
    start: u32,
    len: u32,
}

/// End of a hash chain.
const NIL: u32 = u32::MAX;

/// Visited (linearized set, register state) pairs.
pub(super) struct Cache {
    heads: HashMap<u64, u32, BuildHasherDefault<PassThrough>>,
    slots: Vec<Slot>,
    beyond: Vec<u32>,
}

impl Cache {
    pub fn new() -> Cache {
        Cache { heads: HashMap::default(), slots: Vec::new(), beyond: Vec::new() }
    }

    /// Number of pairs cached.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Approximate memory held, in bytes.
    pub fn bytes(&self) -> usize {
        self.slots.len() * (std::mem::size_of::<Slot>() + 24) + self.beyond.len() * 4
    }

    /// Records the pair; false if it was already there.
    pub fn insert(&mut self, set: &Linearized, state: State) -> bool {
        let hash = set.hash ^ zobrist(u64::from(state) ^ 0xA5A5_A5A5_0000_0000);
        let head = self.heads.get(&hash).copied().unwrap_or(NIL);
        let mut slot = head;
        while slot != NIL {
            let s = &self.slots[slot as usize];
            let stored = &self.beyond[s.start as usize..(s.start + s.len) as usize];
            if s.state == state && s.prefix == set.prefix && stored.iter().eq(set.beyond.iter()) {
                return false;
            }
            slot = s.next;
        }
        let start = self.beyond.len() as u32;
        self.beyond.extend(set.beyond.iter().copied());
        let len = set.beyond.len() as u32;
        self.heads.insert(hash, self.slots.len() as u32);
        self.slots.push(Slot { next: head, state, prefix: set.prefix, start, len });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Inserts and removes operations in stack order, as the search does, and checks the cache
    /// against a plain set of the linearized sets seen so far.
    #[test]
    fn the_cache_recognises_exactly_the_sets_seen_before() {
        let n = 70;
        // Ranks in a shuffled order, so that rank and operation index differ.
        let ranks: Vec<u32> = (0..n as u32).map(|i| (i * 37) % n as u32).collect();
        let mut set = Linearized::new(ranks);
        let mut cache = Cache::new();
        let mut seen: HashSet<(Vec<bool>, State)> = HashSet::new();
        let mut stack: Vec<usize> = Vec::new();
        let mut x: u64 = 12345;
        for _ in 0..20_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let roll = (x >> 33) as usize;
            if roll.is_multiple_of(3) && !stack.is_empty() {
                let op = stack.pop().expect("non-empty");
                set.remove(op);
            } else if let Some(op) = (0..n).map(|i| (i + roll) % n).find(|&op| !set.contains(op)) {
                set.insert(op);
                stack.push(op);
            }
            let state = (roll % 2) as State;
            let plain: Vec<bool> = (0..n).map(|op| set.contains(op)).collect();
            assert_eq!(cache.insert(&set, state), seen.insert((plain, state)));
        }
    }
}
