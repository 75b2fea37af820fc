//! CPU time per process, read from `/proc/PID/stat` (user + system), sampled at the start and
//! the end of the measured seconds. Divided by the operations completed meanwhile it gives the
//! CPU each process spent per operation: a figure steadier than throughput on a shared
//! machine, since it does not depend on how much of the machine the run got.

use std::collections::BTreeMap;
use std::time::Duration;

/// What the summary calls the load generator itself.
pub const HARNESS: &str = "harness";

/// What the summary calls the sum over every process sampled.
pub const TOTAL: &str = "total";

/// The CPU time (user + system) `pid` has used so far; `None` once it is gone or on a system
/// without `/proc`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat, clock_ticks_per_second())
}

/// utime and stime from a `/proc/PID/stat` line: fields 14 and 15, counted after the command
/// name, which is in parentheses and may itself hold spaces and parentheses.
fn parse_stat(stat: &str, ticks_per_second: u64) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_secs_f64((user + system) as f64 / ticks_per_second as f64))
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// The CPU time of named processes at one moment.
#[derive(Debug, Clone, Default)]
pub struct CpuSample(BTreeMap<String, Duration>);

impl CpuSample {
    /// Samples `processes` (name and pid) and this process, as [`HARNESS`].
    pub fn take(processes: &[(String, u32)]) -> CpuSample {
        let own = (HARNESS.to_string(), std::process::id());
        CpuSample(
            processes
                .iter()
                .chain(std::iter::once(&own))
                .filter_map(|(name, pid)| Some((name.clone(), cpu_time(*pid)?)))
                .collect(),
        )
    }

    /// Microseconds of CPU per operation for each process sampled both times, and their
    /// [`TOTAL`]; empty when no operation completed.
    pub fn per_op_since(&self, start: &CpuSample, ops: u64) -> BTreeMap<String, f64> {
        if ops == 0 {
            return BTreeMap::new();
        }
        let mut per_op: BTreeMap<String, f64> = self
            .0
            .iter()
            .filter_map(|(name, end)| {
                let used = end.checked_sub(*start.0.get(name)?)?;
                Some((name.clone(), used.as_secs_f64() * 1e6 / ops as f64))
            })
            .collect();
        let total = per_op.values().sum();
        per_op.insert(TOTAL.to_string(), total);
        per_op
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_system_time_are_read_after_the_command_name() {
        let stat = "4242 (nodes (x) y) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 50 0 0 20 0 3 0 100 0 0";
        assert_eq!(parse_stat(stat, 100), Some(Duration::from_secs(3)));
        assert_eq!(parse_stat("garbage", 100), None);
    }

    #[test]
    fn cpu_per_operation_divides_what_each_process_used() {
        let at = |master: u64, slave: u64| {
            CpuSample(BTreeMap::from([
                ("master".to_string(), Duration::from_millis(master)),
                ("slave-1".to_string(), Duration::from_millis(slave)),
            ]))
        };
        let per_op = at(1_100, 600).per_op_since(&at(100, 100), 100_000);
        assert_eq!(per_op["master"], 10.0);
        assert_eq!(per_op["slave-1"], 5.0);
        assert_eq!(per_op[TOTAL], 15.0);
        assert!(at(1, 1).per_op_since(&at(0, 0), 0).is_empty());
    }

    #[test]
    fn this_process_is_sampled() {
        let sample = CpuSample::take(&[]);
        assert!(sample.0.contains_key(HARNESS) || !std::path::Path::new("/proc/self/stat").exists());
    }
}
