//! A watch on this process's event loop: every actor of a node shares one thread, so a step
//! that runs too long (bulk work done in one go, a page-fault storm, a paused process) delays
//! heartbeats and answers alike, and peers may take the node for dead. A timer that should
//! fire every [`TICK`] logs how late it fired when that passes [`WARN_AFTER`], so such a stall
//! shows in the log at the moment it happens, with its length.

use std::time::{Duration, Instant};

/// How often the watch wakes.
pub const TICK: Duration = Duration::from_millis(100);

/// A wake this much later than due is logged.
pub const WARN_AFTER: Duration = Duration::from_millis(300);

/// Runs the watch on the current actix system, for as long as the system runs.
pub fn watch_event_loop() {
    actix_rt::spawn(async {
        let mut due = Instant::now() + TICK;
        loop {
            tokio::time::sleep_until(due.into()).await;
            let now = Instant::now();
            let late = now.saturating_duration_since(due);
            if late >= WARN_AFTER {
                tracing::warn!(late_ms = late.as_millis() as u64, "this process's event loop was stalled");
            }
            due = now + TICK;
        }
    });
}
