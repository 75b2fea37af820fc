//! The per-second files: `metrics.csv` and `metrics.jsonl`, one row per measured second
//! (warmup seconds are not written), flushed as each second ends so an interrupted run keeps
//! what it measured.
//!
//! Meaning of the columns: `second` counts measured seconds from 1. `success_count` is
//! `read_count + write_count` (successful requests only), `error_count` the failed and
//! timed-out ones, `total_requests` their sum. Latencies are in µs over that second's
//! successes (0 when there were none); `throughput_rps` is successes divided by the second's
//! actual length.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::error::HarnessError;
use crate::stats::Tally;

/// The CSV header, in the order of [`SecondRow`]'s fields: the analysis tool's list, which is
/// the contract between the two.
pub use analysis::metrics_csv::COLUMNS;

/// One measured second.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecondRow {
    pub second: u64,
    pub client_count: u32,
    pub slave_count: u32,
    pub total_requests: u64,
    pub success_count: u64,
    pub error_count: u64,
    pub read_latency_us: f64,
    pub write_latency_us: f64,
    pub throughput_rps: f64,
    pub read_count: u64,
    pub write_count: u64,
    pub read_p50_us: f64,
    pub read_p99_us: f64,
    pub write_p50_us: f64,
    pub write_p99_us: f64,
}

impl SecondRow {
    /// The row for measured second `second`, which lasted `length`.
    pub fn new(second: u64, clients: u32, slaves: u32, tally: &Tally, length: Duration) -> SecondRow {
        let secs = length.as_secs_f64();
        SecondRow {
            second,
            client_count: clients,
            slave_count: slaves,
            total_requests: tally.requests(),
            success_count: tally.successes(),
            error_count: tally.error_count(),
            read_latency_us: tally.reads.mean(),
            write_latency_us: tally.writes.mean(),
            throughput_rps: if secs > 0.0 { tally.successes() as f64 / secs } else { 0.0 },
            read_count: tally.reads.count(),
            write_count: tally.writes.count(),
            read_p50_us: tally.reads.percentile(50.0),
            read_p99_us: tally.reads.percentile(99.0),
            write_p50_us: tally.writes.percentile(50.0),
            write_p99_us: tally.writes.percentile(99.0),
        }
    }

    fn csv_line(&self) -> String {
        format!(
            "{},{},{},{},{},{},{:.1},{:.1},{:.1},{},{},{:.1},{:.1},{:.1},{:.1}\n",
            self.second,
            self.client_count,
            self.slave_count,
            self.total_requests,
            self.success_count,
            self.error_count,
            self.read_latency_us,
            self.write_latency_us,
            self.throughput_rps,
            self.read_count,
            self.write_count,
            self.read_p50_us,
            self.read_p99_us,
            self.write_p50_us,
            self.write_p99_us,
        )
    }
}

/// The two per-second files of one run.
pub struct MetricsFiles {
    csv: (PathBuf, BufWriter<File>),
    jsonl: (PathBuf, BufWriter<File>),
}

impl MetricsFiles {
    /// Creates both files in `dir` and writes the CSV header.
    pub fn create(dir: &Path) -> Result<MetricsFiles, HarnessError> {
        let open = |name: &str| -> Result<(PathBuf, BufWriter<File>), HarnessError> {
            let path = dir.join(name);
            let file = File::create(&path).map_err(HarnessError::io(&path))?;
            Ok((path, BufWriter::new(file)))
        };
        let mut files = MetricsFiles { csv: open("metrics.csv")?, jsonl: open("metrics.jsonl")? };
        let header = format!("{}\n", COLUMNS.join(","));
        let (path, out) = &mut files.csv;
        out.write_all(header.as_bytes()).and_then(|()| out.flush()).map_err(HarnessError::io(path.as_path()))?;
        Ok(files)
    }

    /// Appends `row` to both files and flushes them.
    pub fn append(&mut self, row: &SecondRow) -> Result<(), HarnessError> {
        let (path, out) = &mut self.csv;
        out.write_all(row.csv_line().as_bytes())
            .and_then(|()| out.flush())
            .map_err(HarnessError::io(path.as_path()))?;
        let (path, out) = &mut self.jsonl;
        serde_json::to_writer(&mut *out, row).map_err(HarnessError::json(path.as_path()))?;
        out.write_all(b"\n").and_then(|()| out.flush()).map_err(HarnessError::io(path.as_path()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ErrorKind;

    fn row() -> SecondRow {
        let mut tally = Tally::default();
        tally.record_ok(false, Duration::from_micros(800));
        tally.record_ok(true, Duration::from_micros(2000));
        tally.record_ok(true, Duration::from_micros(3000));
        tally.record_error(ErrorKind::Timeout);
        SecondRow::new(4, 10, 3, &tally, Duration::from_millis(500))
    }

    #[test]
    fn header_is_the_contract() {
        assert_eq!(
            COLUMNS.join(","),
            "second,client_count,slave_count,total_requests,success_count,error_count,\
             read_latency_us,write_latency_us,throughput_rps,read_count,write_count,\
             read_p50_us,read_p99_us,write_p50_us,write_p99_us"
        );
    }

    #[test]
    fn json_fields_are_the_csv_columns_in_order() {
        let json = serde_json::to_value(row()).expect("serializes");
        let keys: Vec<&str> = json.as_object().expect("object").keys().map(String::as_str).collect();
        let mut columns = COLUMNS.to_vec();
        let mut sorted = keys.clone();
        columns.sort();
        sorted.sort();
        assert_eq!(sorted, columns);
    }

    #[test]
    fn a_row_adds_up() {
        let row = row();
        assert_eq!((row.success_count, row.error_count, row.total_requests), (3, 1, 4));
        assert_eq!((row.read_count, row.write_count), (1, 2));
        assert_eq!(row.throughput_rps, 6.0);
        let fields: Vec<String> = row.csv_line().trim().split(',').map(String::from).collect();
        assert_eq!(fields.len(), COLUMNS.len());
        assert_eq!(fields[0], "4");
        assert!(fields[7].parse::<f64>().expect("a float") >= 2000.0);
    }
}
