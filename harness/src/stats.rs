//! Counting: a [`Tally`] holds the latencies of successful reads and writes (HDR histograms,
//! microseconds) and the errors by kind. Each connection records into its own tally; once a
//! second the run moves every connection's tally into that second's, and a measured second's
//! into the run's.
//!
//! Only successes have latencies here: an error is counted by kind and never enters a latency
//! histogram, so a fast failure cannot pass for a fast answer.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::outcome::ErrorKind;

/// Significant figures the histograms keep (0.1% resolution).
const SIGFIGS: u8 = 3;

/// Successful reads or writes.
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

impl Latencies {
    fn new() -> Latencies {
        // Auto-resizing: memory follows the largest latency seen, not a fixed bound.
        Latencies(Histogram::new(SIGFIGS).expect("3 significant figures is a valid precision"))
    }

    fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        // `record` grows the histogram as needed; clamping is only the fallback for values
        // no histogram can hold (`saturating_record` alone clamps instead of growing).
        if self.0.record(us).is_err() {
            self.0.saturating_record(us);
        }
    }

    fn absorb(&mut self, other: &mut Latencies) {
        if other.0.is_empty() {
            return;
        }
        self.0.add(&other.0).expect("an auto-resizing histogram accepts every value");
        other.0.reset();
    }

    fn add(&mut self, other: &Latencies) {
        self.0.add(&other.0).expect("an auto-resizing histogram accepts every value");
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// Mean in µs, 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.0.is_empty() {
            0.0
        } else {
            self.0.mean()
        }
    }

    /// The latency at percentile `p` (0..=100) in µs, 0 when empty.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            0.0
        } else {
            self.0.value_at_percentile(p) as f64
        }
    }

    pub fn max(&self) -> f64 {
        if self.0.is_empty() {
            0.0
        } else {
            self.0.max() as f64
        }
    }
}

/// What one connection, one second or one run counted.
#[derive(Debug, Clone)]
pub struct Tally {
    pub reads: Latencies,
    pub writes: Latencies,
    pub errors: [u64; ErrorKind::ALL.len()],
}

impl Default for Tally {
    fn default() -> Self {
        Tally { reads: Latencies::new(), writes: Latencies::new(), errors: [0; ErrorKind::ALL.len()] }
    }
}

impl Tally {
    pub fn record_ok(&mut self, write: bool, latency: Duration) {
        if write {
            self.writes.record(latency);
        } else {
            self.reads.record(latency);
        }
    }

    pub fn record_error(&mut self, kind: ErrorKind) {
        self.errors[kind.index()] += 1;
    }

    /// Adds `other` to this tally and empties `other`.
    pub fn absorb(&mut self, other: &mut Tally) {
        self.reads.absorb(&mut other.reads);
        self.writes.absorb(&mut other.writes);
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors.iter_mut()) {
            *mine += std::mem::take(theirs);
        }
    }

    /// Adds `other` to this tally.
    pub fn add(&mut self, other: &Tally) {
        self.reads.add(&other.reads);
        self.writes.add(&other.writes);
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors.iter()) {
            *mine += theirs;
        }
    }

    pub fn successes(&self) -> u64 {
        self.reads.count() + self.writes.count()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.iter().sum()
    }

    pub fn requests(&self) -> u64 {
        self.successes() + self.error_count()
    }

    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        self.errors[kind.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn errors_never_enter_the_latency_histograms() {
        let mut tally = Tally::default();
        tally.record_ok(false, ms(2));
        tally.record_ok(true, ms(4));
        tally.record_error(ErrorKind::Timeout);
        tally.record_error(ErrorKind::Unavailable);
        assert_eq!(tally.successes(), 2);
        assert_eq!(tally.error_count(), 2);
        assert_eq!(tally.requests(), 4);
        assert_eq!((tally.reads.count(), tally.writes.count()), (1, 1));
    }

    #[test]
    fn absorbing_moves_everything_and_empties_the_source() {
        let mut conn = Tally::default();
        for i in 1..=100 {
            conn.record_ok(false, ms(i));
        }
        conn.record_error(ErrorKind::NoMaster);
        let mut second = Tally::default();
        second.absorb(&mut conn);
        assert_eq!(conn.requests(), 0);
        assert_eq!(second.reads.count(), 100);
        assert_eq!(second.errors_of(ErrorKind::NoMaster), 1);
        let p50 = second.reads.percentile(50.0);
        assert!((50_000.0..=50_100.0).contains(&p50), "{p50}");
        assert!((second.reads.mean() - 50_500.0).abs() < 100.0);
        assert!(second.reads.max() >= 100_000.0);
    }

    #[test]
    fn empty_latencies_read_as_zero() {
        let tally = Tally::default();
        assert_eq!(tally.reads.mean(), 0.0);
        assert_eq!(tally.reads.percentile(99.0), 0.0);
        assert_eq!(tally.writes.max(), 0.0);
    }
}
