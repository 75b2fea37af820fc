//! The key space: `key0` .. `key{N-1}`, built once, chosen uniformly or by a Zipf law.
//!
//! The names live in one buffer with an offset per key, so ten million keys take about 180 MB
//! and handing one out is a reference-count increment, not an allocation.
//!
//! The Zipf chooser draws rank `k` (1-based) with probability proportional to `1 / k^s` from
//! a precomputed cumulative table (binary search, no allocation per draw); rank 1 is `key0`.

use bytes::Bytes;
use rand::Rng;

/// The keys and how to pick one.
pub struct KeySpace {
    /// Every name, one after the other.
    names: Bytes,
    /// Where key `i` starts in `names`; key `i` ends where key `i + 1` starts.
    starts: Vec<u64>,
    zipf_cdf: Option<Vec<f64>>,
}

impl KeySpace {
    /// `count` keys, uniform when `zipf` is `None`. `count` must be at least 1.
    pub fn new(count: u64, zipf: Option<f64>) -> KeySpace {
        debug_assert!(count >= 1, "a key space has at least one key");
        let mut names = Vec::new();
        let mut starts = Vec::with_capacity(usize::try_from(count).unwrap_or(0).saturating_add(1));
        for i in 0..count {
            starts.push(names.len() as u64);
            names.extend_from_slice(format!("key{i}").as_bytes());
        }
        starts.push(names.len() as u64);
        KeySpace { names: Bytes::from(names), starts, zipf_cdf: zipf.map(|s| zipf_cdf(count, s)) }
    }

    /// The index of a key, drawn from the configured distribution.
    pub fn pick(&self, rng: &mut impl Rng) -> usize {
        match &self.zipf_cdf {
            None => rng.random_range(0..self.len()),
            Some(cdf) => {
                let u: f64 = rng.random();
                cdf.partition_point(|&c| c <= u).min(cdf.len() - 1)
            }
        }
    }

    fn range(&self, index: usize) -> std::ops::Range<usize> {
        self.starts[index] as usize..self.starts[index + 1] as usize
    }

    /// The key at `index` (a slice of the shared buffer: no copy).
    pub fn key(&self, index: usize) -> Bytes {
        self.names.slice(self.range(index))
    }

    /// The key at `index` as text, for the history.
    pub fn name(&self, index: usize) -> &str {
        // Keys are built from ASCII above.
        std::str::from_utf8(&self.names[self.range(index)]).unwrap_or("?")
    }

    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Cumulative probabilities of ranks 1..=n under Zipf(s), the last one exactly 1.
fn zipf_cdf(n: u64, s: f64) -> Vec<f64> {
    let mut cdf: Vec<f64> = Vec::with_capacity(n as usize);
    let mut total = 0.0;
    for k in 1..=n {
        total += (k as f64).powf(-s);
        cdf.push(total);
    }
    for c in &mut cdf {
        *c /= total;
    }
    if let Some(last) = cdf.last_mut() {
        *last = 1.0;
    }
    cdf
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    use super::*;

    fn histogram(space: &KeySpace, draws: usize) -> Vec<usize> {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut counts = vec![0; space.len()];
        for _ in 0..draws {
            counts[space.pick(&mut rng)] += 1;
        }
        counts
    }

    #[test]
    fn keys_are_named_key0_to_key_n_minus_1() {
        let space = KeySpace::new(3, None);
        let names: Vec<&str> = (0..3).map(|i| space.name(i)).collect();
        assert_eq!(names, ["key0", "key1", "key2"]);
    }

    #[test]
    fn uniform_choice_reaches_every_key_evenly() {
        let counts = histogram(&KeySpace::new(10, None), 100_000);
        assert!(counts.iter().all(|&c| (9_000..11_000).contains(&c)), "{counts:?}");
    }

    #[test]
    fn zipf_choice_favours_low_ranks() {
        let counts = histogram(&KeySpace::new(100, Some(1.0)), 100_000);
        // Under Zipf(1) over 100 keys, key0 has probability 1/H(100) ≈ 0.193, key1 half that.
        assert!((17_000..21_500).contains(&counts[0]), "{}", counts[0]);
        assert!(counts[0] > counts[1] && counts[1] > counts[9] && counts[9] > counts[99]);
    }

    #[test]
    fn a_single_key_is_always_chosen() {
        let counts = histogram(&KeySpace::new(1, Some(2.0)), 100);
        assert_eq!(counts, [100]);
    }
}
