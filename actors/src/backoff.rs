//! Exponential backoff with jitter, capped: the delay before reconnect attempt `n` is drawn
//! from the upper half of `min(cap, base * 2^n)`, so a crowd of slaves that lost the same
//! master does not come back in lock step, and no delay is ever zero.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff { base, cap, attempt: 0 }
    }

    /// The delay before the next attempt; each call doubles the ceiling up to the cap.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + rng.random_range(Duration::ZERO..=half)
    }

    /// Called after a success: the next failure starts from `base` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn delays_grow_then_stay_under_the_cap() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
        let delays: Vec<_> = (0..12).map(|_| backoff.next_delay(&mut rng)).collect();
        assert!(delays[0] >= Duration::from_millis(25) && delays[0] <= Duration::from_millis(50));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(2)));
        assert!(delays[11] >= Duration::from_secs(1), "late attempts wait near the cap");
        backoff.reset();
        assert!(backoff.next_delay(&mut rng) <= Duration::from_millis(50));
    }
}
