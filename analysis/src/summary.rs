//! `summary.json`: the harness's account of one whole run. Field names follow the contract in
//! the harness issue; fields this crate does not know are ignored. The parts both sides share
//! (totals, latencies, load, CDFs) are also the types the harness writes.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{read_file, Error, Result};

/// The whole of `summary.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct RunSummary {
    pub config: RunConfig,
    pub totals: Totals,
    pub latency_us: Latencies,
    /// Errors by kind (timeout, unavailable, ...).
    pub errors: BTreeMap<String, u64>,
    /// Keys held by each slave at the end of the run.
    pub load: Vec<SlaveLoad>,
    pub latency_cdf: LatencyCdf,
    /// Microseconds of CPU per successful operation, by process and in `total` (absent from
    /// runs recorded before the harness measured it).
    #[serde(default)]
    pub cpu_us_per_op: BTreeMap<String, f64>,
}

/// The harness's flags for the run.
#[derive(Debug, Clone, Deserialize)]
pub struct RunConfig {
    pub clients: u64,
    pub slaves: u64,
    pub conns_per_client: u64,
    pub write_pct: u64,
    pub keys: u64,
    pub zipf: Option<f64>,
    pub value_size: u64,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub think_ms: u64,
    pub rate: Option<f64>,
    pub seed: u64,
    pub replicas: u64,
}

/// Counts over the measured part of the run.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Totals {
    pub requests: u64,
    pub success: u64,
    pub errors: u64,
    pub reads: u64,
    pub writes: u64,
    pub throughput_rps: f64,
    pub elapsed_s: f64,
}

/// Latency statistics per operation kind.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Latencies {
    pub read: LatencyStats,
    pub write: LatencyStats,
}

/// Latency statistics of one operation kind, in microseconds.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LatencyStats {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// One slave's share of the keys.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SlaveLoad {
    pub slave: String,
    pub keys_held: u64,
    pub keys_placed: u64,
}

/// Latency distributions as `(percentile 0..=100, latency in µs)` points.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LatencyCdf {
    pub read: Vec<(f64, f64)>,
    pub write: Vec<(f64, f64)>,
}

impl RunSummary {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<RunSummary> {
        let text = read_file(path)?;
        let summary: RunSummary = serde_json::from_str(&text).map_err(|e| Error::json(path, &e))?;
        summary.check(path)?;
        Ok(summary)
    }

    /// Rejects numbers no run can produce, so that plots and statistics never see them.
    fn check(&self, path: &Path) -> Result<()> {
        let mut floats = vec![
            ("totals.throughput_rps".to_string(), self.totals.throughput_rps),
            ("totals.elapsed_s".to_string(), self.totals.elapsed_s),
        ];
        for (kind, s) in [("read", &self.latency_us.read), ("write", &self.latency_us.write)] {
            let fields = [("mean", s.mean), ("p50", s.p50), ("p90", s.p90), ("p99", s.p99)];
            let fields = fields.into_iter().chain([("p999", s.p999), ("max", s.max)]);
            floats.extend(fields.map(|(name, v)| (format!("latency_us.{kind}.{name}"), v)));
        }
        for (kind, cdf) in [("read", &self.latency_cdf.read), ("write", &self.latency_cdf.write)] {
            let points = cdf.iter().enumerate();
            floats.extend(points.flat_map(|(i, &(p, v))| {
                let at = format!("latency_cdf.{kind}[{i}]");
                [(at.clone(), p), (at, v)]
            }));
        }
        match floats.iter().find(|(_, v)| !v.is_finite() || *v < 0.0) {
            Some((field, value)) => {
                Err(Error::in_file(path, format!("{field}: {value} is not a finite non-negative number")))
            }
            None => Ok(()),
        }
    }
}
