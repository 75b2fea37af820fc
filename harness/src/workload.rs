//! What the connections ask: a mix of GET, PUT and DEL over the key space, and written values
//! that are unique over the whole run (`v<connection>-<counter>-`, padded with `.` to the
//! value size) so that a history checker can tell every write apart.

use std::io::Write;

use bytes::Bytes;
use rand::Rng;

use crate::keys::KeySpace;

/// The three operations of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Get,
    Put,
    Del,
}

impl OpKind {
    /// The name in the history (`f`).
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Put => "put",
            OpKind::Del => "del",
        }
    }

    pub fn is_write(self) -> bool {
        match self {
            OpKind::Get => false,
            OpKind::Put | OpKind::Del => true,
        }
    }
}

/// One operation to send; `key` indexes the [`KeySpace`].
#[derive(Debug, Clone)]
pub enum Op {
    Get { key: usize },
    Put { key: usize, value: Bytes },
    Del { key: usize },
}

impl Op {
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Get { .. } => OpKind::Get,
            Op::Put { .. } => OpKind::Put,
            Op::Del { .. } => OpKind::Del,
        }
    }

    pub fn key(&self) -> usize {
        match self {
            Op::Get { key } | Op::Put { key, .. } | Op::Del { key } => *key,
        }
    }

    /// The value a PUT writes.
    pub fn written(&self) -> Option<&Bytes> {
        match self {
            Op::Put { value, .. } => Some(value),
            Op::Get { .. } | Op::Del { .. } => None,
        }
    }
}

/// The operation mix, shared by every connection.
pub struct Workload {
    pub keys: KeySpace,
    write_pct: u32,
    del_pct: u32,
    value_size: usize,
}

impl Workload {
    pub fn new(keys: KeySpace, write_pct: u32, del_pct: u32, value_size: usize) -> Workload {
        debug_assert!(write_pct <= 100 && del_pct <= 100, "percentages");
        Workload { keys, write_pct, del_pct, value_size }
    }

    /// Draws the next operation; a PUT takes the next unique value from `values`.
    pub fn next_op(&self, rng: &mut impl Rng, values: &mut ValueSource) -> Op {
        let key = self.keys.pick(rng);
        if rng.random_range(0..100) >= self.write_pct {
            Op::Get { key }
        } else if rng.random_range(0..100) < self.del_pct {
            Op::Del { key }
        } else {
            Op::Put { key, value: values.next_value(self.value_size) }
        }
    }
}

/// Unique values for one connection.
pub struct ValueSource {
    conn: u64,
    counter: u64,
}

impl ValueSource {
    pub fn new(conn: u64) -> ValueSource {
        ValueSource { conn, counter: 0 }
    }

    /// `v<conn>-<counter>-` padded with `.` to `size` bytes; longer than `size` when the
    /// unique part does not fit.
    pub fn next_value(&mut self, size: usize) -> Bytes {
        self.counter += 1;
        let mut buf = Vec::with_capacity(size.max(24));
        // Writing to a Vec cannot fail.
        let _ = write!(buf, "v{}-{}-", self.conn, self.counter);
        if buf.len() < size {
            buf.resize(size, b'.');
        }
        Bytes::from(buf)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn values_are_unique_and_sized() {
        let mut a = ValueSource::new(1);
        let mut b = ValueSource::new(11);
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            for v in [a.next_value(100), b.next_value(100)] {
                assert_eq!(v.len(), 100);
                assert!(seen.insert(v));
            }
        }
        assert_eq!(&a.next_value(0)[..], b"v1-1001-");
    }

    #[test]
    fn the_mix_follows_the_percentages() {
        let workload = Workload::new(KeySpace::new(10, None), 30, 50, 8);
        let mut rng = SmallRng::seed_from_u64(3);
        let mut values = ValueSource::new(0);
        let mut counts = [0usize; 3];
        for _ in 0..100_000 {
            let op = workload.next_op(&mut rng, &mut values);
            assert_eq!(op.written().is_some(), op.kind() == OpKind::Put);
            counts[op.kind() as usize] += 1;
        }
        assert!((68_000..72_000).contains(&counts[0]), "{counts:?}");
        assert!((14_000..16_000).contains(&counts[1]), "{counts:?}");
        assert!((14_000..16_000).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn write_pct_zero_and_hundred_are_pure() {
        let mut rng = SmallRng::seed_from_u64(4);
        let mut values = ValueSource::new(0);
        let reads = Workload::new(KeySpace::new(5, None), 0, 0, 8);
        let writes = Workload::new(KeySpace::new(5, None), 100, 0, 8);
        for _ in 0..1000 {
            assert_eq!(reads.next_op(&mut rng, &mut values).kind(), OpKind::Get);
            assert_eq!(writes.next_op(&mut rng, &mut values).kind(), OpKind::Put);
        }
    }
}
