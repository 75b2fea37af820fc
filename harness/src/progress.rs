//! The progress bar on stderr (drawn only when stderr is a terminal): seconds done, and the
//! last second's successes, errors and p99 latencies.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::stats::Tally;

pub struct Progress {
    bar: ProgressBar,
    warmup: u64,
}

impl Progress {
    /// A bar over `warmup + duration` seconds, labelled `label`.
    pub fn new(label: &str, warmup: u64, duration: u64) -> Progress {
        let bar = ProgressBar::new(warmup + duration);
        let style = ProgressStyle::with_template("{prefix} [{bar:24}] {pos:>3}/{len} s  {msg}")
            .map(|s| s.progress_chars("=> "));
        if let Ok(style) = style {
            bar.set_style(style);
        }
        bar.set_prefix(label.to_string());
        Progress { bar, warmup }
    }

    /// Second `k` (1-based, warmup included) ended after `length` with `tally`.
    pub fn second(&self, k: u64, tally: &Tally, length: Duration) {
        let secs = length.as_secs_f64().max(f64::EPSILON);
        let phase = if k <= self.warmup { "warmup " } else { "" };
        self.bar.set_message(format!(
            "{phase}{:>8.0} ok/s  {:>5} err  p99 read {:.2} ms  write {:.2} ms",
            tally.successes() as f64 / secs,
            tally.error_count(),
            tally.reads.percentile(99.0) / 1000.0,
            tally.writes.percentile(99.0) / 1000.0,
        ));
        self.bar.set_position(k);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
