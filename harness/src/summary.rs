//! `summary.json`: the whole run in one object, for the analysis tool.
//!
//! ```text
//! { "config": {...}, "interrupted": false,
//!   "totals": {"requests", "success", "errors", "reads", "writes", "throughput_rps", "elapsed_s"},
//!   "latency_us": {"read": {"count","mean","p50","p90","p99","p999","max"}, "write": {...}},
//!   "errors": {"unavailable": n, "outcome_unknown": n, "timeout": n, "no_master": n, "other": n},
//!   "load": [{"slave": "slave-1", "keys_held": n, "keys_placed": n}, ...],
//!   "latency_cdf": {"read": [[percentile, latency_us], ...], "write": [...]},
//!   "cpu_us_per_op": {"master": us, "backup": us, "slave-1": us, ..., "harness": us, "total": us} }
//! ```
//!
//! Totals and latencies cover the measured seconds only; `reads` and `writes` count
//! successes, so `success = reads + writes` and `requests = success + errors`. CPU per
//! operation covers the same seconds, for the processes the harness started (none when it
//! drives an existing cluster) and itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use net::StatusReport;
use serde::Serialize;

use crate::config::RunConfig;
use crate::error::HarnessError;
use crate::outcome::ErrorKind;
use crate::stats::{Latencies, Tally};

use analysis::summary::Latencies as ByOp;
/// The parts of `summary.json` the analysis tool reads are its types: one contract.
pub use analysis::summary::{LatencyCdf, LatencyStats, SlaveLoad, Totals};

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub config: RunConfig,
    /// True when Ctrl-C or SIGTERM ended the run early.
    pub interrupted: bool,
    pub totals: Totals,
    pub latency_us: ByOp,
    pub errors: BTreeMap<&'static str, u64>,
    pub load: Vec<SlaveLoad>,
    pub latency_cdf: LatencyCdf,
    /// Microseconds of CPU (user + system) per successful operation over the measured
    /// seconds, for each process the harness started, itself (`harness`), and their `total`.
    pub cpu_us_per_op: BTreeMap<String, f64>,
}

impl Summary {
    /// The summary of a run that measured `tally` over `elapsed`; `status` is the master's
    /// report at the end, if it answered.
    pub fn new(
        config: RunConfig,
        interrupted: bool,
        tally: &Tally,
        elapsed: Duration,
        status: Option<&StatusReport>,
    ) -> Summary {
        let secs = elapsed.as_secs_f64();
        let mut load: Vec<SlaveLoad> = status
            .map(|s| {
                s.slaves
                    .iter()
                    .map(|slave| SlaveLoad {
                        slave: slave.id.to_string(),
                        keys_held: slave.keys_held,
                        keys_placed: slave.keys_placed,
                    })
                    .collect()
            })
            .unwrap_or_default();
        load.sort_by(|a, b| a.slave.cmp(&b.slave));
        Summary {
            config,
            interrupted,
            totals: Totals {
                requests: tally.requests(),
                success: tally.successes(),
                errors: tally.error_count(),
                reads: tally.reads.count(),
                writes: tally.writes.count(),
                throughput_rps: if secs > 0.0 { tally.successes() as f64 / secs } else { 0.0 },
                elapsed_s: secs,
            },
            latency_us: ByOp { read: latency_stats(&tally.reads), write: latency_stats(&tally.writes) },
            errors: ErrorKind::ALL.iter().map(|k| (k.name(), tally.errors_of(*k))).collect(),
            load,
            latency_cdf: LatencyCdf { read: cdf(&tally.reads), write: cdf(&tally.writes) },
            cpu_us_per_op: BTreeMap::new(),
        }
    }

    /// The same, with the CPU each process spent per operation.
    pub fn with_cpu(mut self, cpu_us_per_op: BTreeMap<String, f64>) -> Summary {
        self.cpu_us_per_op = cpu_us_per_op;
        self
    }

    /// Writes `summary.json` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), HarnessError> {
        let path = dir.join("summary.json");
        let text = serde_json::to_string_pretty(self).map_err(HarnessError::json(&path))?;
        std::fs::write(&path, text + "\n").map_err(HarnessError::io(&path))
    }
}

fn latency_stats(latencies: &Latencies) -> LatencyStats {
    LatencyStats {
        count: latencies.count(),
        mean: latencies.mean(),
        p50: latencies.percentile(50.0),
        p90: latencies.percentile(90.0),
        p99: latencies.percentile(99.0),
        p999: latencies.percentile(99.9),
        max: latencies.max(),
    }
}

/// Percentiles 0, 1, .., 99, then the tail (99.5, 99.9, 99.99) and 100; empty when nothing
/// was measured.
fn cdf(latencies: &Latencies) -> Vec<(f64, f64)> {
    if latencies.count() == 0 {
        return Vec::new();
    }
    (0..100).map(f64::from).chain([99.5, 99.9, 99.99, 100.0]).map(|p| (p, latencies.percentile(p))).collect()
}

#[cfg(test)]
mod tests {
    use net::{Epoch, NodeId, ServerRole, SlaveStatus};

    use super::*;
    use crate::args::LoadArgs;

    fn config() -> RunConfig {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            load: LoadArgs,
        }
        let flags = Flags::parse_from(["x", "--seed", "1"]);
        RunConfig::new(&flags.load, 2, 3).expect("valid")
    }

    fn status() -> StatusReport {
        let slave = |id: &str, held| SlaveStatus {
            id: NodeId(id.to_string()),
            addr: "127.0.0.1:9".to_string(),
            keys_held: held,
            keys_placed: held,
        };
        StatusReport {
            node: NodeId("master".into()),
            role: ServerRole::Master,
            epoch: Epoch(1),
            replicas: 3,
            keys: 10,
            values: 10,
            under_replicated: 0,
            slaves: vec![slave("slave-2", 7), slave("slave-1", 5)],
            last_lsn: net::Lsn(0),
            standby: None,
            members: Vec::new(),
            waiting: None,
        }
    }

    #[test]
    fn summary_has_every_contract_field() {
        let mut tally = Tally::default();
        for i in 1..=1000 {
            tally.record_ok(i % 3 == 0, Duration::from_micros(i));
        }
        tally.record_error(ErrorKind::Unavailable);
        let summary = Summary::new(config(), false, &tally, Duration::from_secs(2), Some(&status()));
        let json = serde_json::to_value(&summary).expect("serializes");
        for field in [
            "clients",
            "slaves",
            "conns_per_client",
            "write_pct",
            "keys",
            "zipf",
            "value_size",
            "warmup_s",
            "duration_s",
            "think_ms",
            "rate",
            "seed",
            "replicas",
        ] {
            assert!(json["config"].get(field).is_some(), "config.{field}");
        }
        assert_eq!(json["config"]["zipf"], serde_json::Value::Null);
        let totals = &json["totals"];
        assert_eq!(totals["requests"], 1001);
        assert_eq!(totals["success"], 1000);
        assert_eq!(totals["errors"], 1);
        assert_eq!(totals["throughput_rps"], 500.0);
        for field in ["count", "mean", "p50", "p90", "p99", "p999", "max"] {
            assert!(json["latency_us"]["read"].get(field).is_some(), "read.{field}");
        }
        assert_eq!(json["errors"]["unavailable"], 1);
        assert_eq!(json["load"][0]["slave"], "slave-1");
        let cdf = json["latency_cdf"]["read"].as_array().expect("cdf");
        assert!((100..=110).contains(&cdf.len()));
        assert_eq!(cdf.last().expect("points")[0], 100.0);
    }

    #[test]
    fn an_empty_run_has_zeroes_not_nonsense() {
        let summary = Summary::new(config(), true, &Tally::default(), Duration::ZERO, None);
        assert_eq!(summary.totals.throughput_rps, 0.0);
        assert_eq!(summary.latency_us.write.p99, 0.0);
        assert!(summary.latency_cdf.read.is_empty());
        assert!(summary.load.is_empty());
    }
}
