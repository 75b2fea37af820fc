//! Helpers shared by the integration tests: scratch directories and writers for run, sweep and
//! history files in the harness's formats.
#![allow(dead_code)]

pub mod generate;

use std::fmt::Write;
use std::path::{Path, PathBuf};

/// A fresh, empty directory under cargo's scratch space for integration tests.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("analysis-tests").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("clear scratch dir");
    }
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// The committed hand-written run, copied into a scratch directory so tests may write to it.
pub fn fixture_run(name: &str) -> PathBuf {
    let dir = scratch(name);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run");
    for file in ["metrics.csv", "metrics.jsonl", "summary.json"] {
        std::fs::copy(fixture.join(file), dir.join(file)).expect("copy fixture");
    }
    dir
}

/// What a generated run measured.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub slaves: u64,
    pub clients: u64,
    /// Throughput of each measured second; the whole-run figure is their mean.
    pub throughput: Vec<f64>,
    pub read_mean: f64,
    pub read_p99: f64,
    pub write_mean: f64,
    pub write_p99: f64,
    /// Keys held by slave-1, slave-2, ...
    pub keys_held: Vec<u64>,
}

impl RunSpec {
    pub fn new(slaves: u64, clients: u64, throughput: f64, latency: f64) -> RunSpec {
        RunSpec {
            slaves,
            clients,
            throughput: vec![throughput; 3],
            read_mean: latency,
            read_p99: latency * 3.0,
            write_mean: latency * 2.0,
            write_p99: latency * 6.0,
            keys_held: (0..slaves).map(|i| 300 + 10 * i).collect(),
        }
    }
}

/// Writes `summary.json`, `metrics.csv` and `metrics.jsonl` for `spec` into `dir`.
pub fn write_run(dir: &Path, spec: &RunSpec) {
    std::fs::create_dir_all(dir).expect("create run dir");
    let mut csv = "second,client_count,slave_count,total_requests,success_count,error_count,\
                   read_latency_us,write_latency_us,throughput_rps,read_count,write_count,\
                   read_p50_us,read_p99_us,write_p50_us,write_p99_us\n"
        .to_string();
    let mut jsonl = String::new();
    for (i, t) in spec.throughput.iter().enumerate() {
        let (reads, writes) = ((t * 0.7).round() as u64, (t * 0.3).round() as u64);
        let total = reads + writes;
        let _ = writeln!(
            csv,
            "{},{},{},{total},{total},0,{},{},{t},{reads},{writes},{},{},{},{}",
            i + 1,
            spec.clients,
            spec.slaves,
            spec.read_mean,
            spec.write_mean,
            spec.read_mean,
            spec.read_p99,
            spec.write_mean,
            spec.write_p99
        );
        let row = serde_json::json!({
            "second": i + 1, "client_count": spec.clients, "slave_count": spec.slaves,
            "total_requests": total, "success_count": total, "error_count": 0,
            "read_latency_us": spec.read_mean, "write_latency_us": spec.write_mean,
            "throughput_rps": t, "read_count": reads, "write_count": writes,
            "read_p50_us": spec.read_mean, "read_p99_us": spec.read_p99,
            "write_p50_us": spec.write_mean, "write_p99_us": spec.write_p99,
        });
        let _ = writeln!(jsonl, "{row}");
    }
    let throughput = spec.throughput.iter().sum::<f64>() / spec.throughput.len().max(1) as f64;
    let latency = |mean: f64, p99: f64| {
        serde_json::json!({"count": 100, "mean": mean, "p50": mean, "p90": p99 * 0.8,
                           "p99": p99, "p999": p99 * 1.5, "max": p99 * 2.0})
    };
    let cdf = |mean: f64, p99: f64| serde_json::json!([[0, mean / 4.0], [50, mean], [99, p99], [100, p99 * 2.0]]);
    let load: Vec<_> = spec
        .keys_held
        .iter()
        .enumerate()
        .map(|(i, k)| serde_json::json!({"slave": format!("slave-{}", i + 1), "keys_held": k, "keys_placed": k}))
        .collect();
    let summary = serde_json::json!({
        "config": {"clients": spec.clients, "slaves": spec.slaves, "conns_per_client": 1, "write_pct": 30,
                   "keys": 1000, "zipf": null, "value_size": 100, "warmup_s": 1.0, "duration_s": 3.0,
                   "think_ms": 0, "rate": null, "seed": 1, "replicas": 3},
        "totals": {"requests": 1000, "success": 1000, "errors": 0, "reads": 700, "writes": 300,
                   "throughput_rps": throughput, "elapsed_s": 3.0},
        "latency_us": {"read": latency(spec.read_mean, spec.read_p99),
                       "write": latency(spec.write_mean, spec.write_p99)},
        "errors": {},
        "load": load,
        "latency_cdf": {"read": cdf(spec.read_mean, spec.read_p99),
                        "write": cdf(spec.write_mean, spec.write_p99)},
    });
    std::fs::write(dir.join("summary.json"), summary.to_string()).expect("write summary");
    std::fs::write(dir.join("metrics.csv"), csv).expect("write csv");
    std::fs::write(dir.join("metrics.jsonl"), jsonl).expect("write jsonl");
}

/// Writes a sweep of `runs` (with the repetition number of each) into `dir`, with its index.
pub fn write_sweep(dir: &Path, runs: &[(u64, RunSpec)]) {
    let mut entries = Vec::new();
    for (repeat, spec) in runs {
        let name = format!("s{}-c{}-r{repeat}", spec.slaves, spec.clients);
        write_run(&dir.join(&name), spec);
        entries.push(serde_json::json!({"dir": name, "slaves": spec.slaves,
                                        "clients": spec.clients, "repeat": repeat}));
    }
    let index = serde_json::json!({ "runs": entries });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("write index");
}

/// A small sweep: slaves {1, 3} x clients {1, 4} x 3 repetitions. At scale 1, throughput of the
/// (3 slaves, 4 clients) cell is 1000, 1100, 1200 over its repetitions; slave-k of repetition r
/// holds 290 + 10k + 2r keys.
pub fn small_sweep(dir: &Path, throughput_scale: f64, latency_scale: f64) {
    let mut runs = Vec::new();
    for repeat in 1..=3u64 {
        let jitter = (repeat as f64 - 2.0) * 100.0;
        for slaves in [1u64, 3] {
            for clients in [1u64, 4] {
                let base = (300.0 * clients as f64).min(1100.0) - 100.0 * (3 - slaves) as f64 / 2.0;
                let throughput = (base + jitter) * throughput_scale;
                let latency = (200.0 + 50.0 * clients as f64) * latency_scale;
                let mut spec = RunSpec::new(slaves, clients, throughput, latency);
                spec.read_mean += jitter / 10.0;
                spec.keys_held.iter_mut().for_each(|k| *k += 2 * repeat);
                runs.push((repeat, spec));
            }
        }
    }
    write_sweep(dir, &runs);
}

/// One history line: `(process, type, f, key, value, time_ns)`.
pub type Event<'a> = (u64, &'a str, &'a str, &'a str, Option<&'a str>, u64);

/// JSON lines of a history.
pub fn history_text(events: &[Event]) -> String {
    let mut text = String::new();
    for (process, kind, f, key, value, time) in events {
        let line = serde_json::json!({"process": process, "type": kind, "f": f, "key": key,
                                      "value": value, "time_ns": time});
        let _ = writeln!(text, "{line}");
    }
    text
}

/// Writes a history file.
pub fn write_history(path: &Path, events: &[Event]) {
    std::fs::write(path, history_text(events)).expect("write history");
}
