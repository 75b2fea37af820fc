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

use crate::error::HarnessError;
use crate::stats::Tally;

/// The CSV header and the row type are the analysis tool's: they are the contract between the
/// two.
pub use analysis::metrics_csv::{MetricsRow, COLUMNS};

/// The row for measured second `second`, which lasted `length`.
pub fn second_row(second: u64, clients: u32, slaves: u32, tally: &Tally, length: Duration) -> MetricsRow {
    let secs = length.as_secs_f64();
    MetricsRow {
        second,
        client_count: u64::from(clients),
        slave_count: u64::from(slaves),
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

fn csv_line(row: &MetricsRow) -> String {
    format!(
        "{},{},{},{},{},{},{:.1},{:.1},{:.1},{},{},{:.1},{:.1},{:.1},{:.1}\n",
        row.second,
        row.client_count,
        row.slave_count,
        row.total_requests,
        row.success_count,
        row.error_count,
        row.read_latency_us,
        row.write_latency_us,
        row.throughput_rps,
        row.read_count,
        row.write_count,
        row.read_p50_us,
        row.read_p99_us,
        row.write_p50_us,
        row.write_p99_us,
    )
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
    pub fn append(&mut self, row: &MetricsRow) -> Result<(), HarnessError> {
        let (path, out) = &mut self.csv;
        out.write_all(csv_line(row).as_bytes()).and_then(|()| out.flush()).map_err(HarnessError::io(path.as_path()))?;
        let (path, out) = &mut self.jsonl;
        serde_json::to_writer(&mut *out, row).map_err(HarnessError::json(path.as_path()))?;
        out.write_all(b"\n").and_then(|()| out.flush()).map_err(HarnessError::io(path.as_path()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ErrorKind;

    fn row() -> MetricsRow {
        let mut tally = Tally::default();
        tally.record_ok(false, Duration::from_micros(800));
        tally.record_ok(true, Duration::from_micros(2000));
        tally.record_ok(true, Duration::from_micros(3000));
        tally.record_error(ErrorKind::Timeout);
        second_row(4, 10, 3, &tally, Duration::from_millis(500))
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
        let fields: Vec<String> = csv_line(&row).trim().split(',').map(String::from).collect();
        assert_eq!(fields.len(), COLUMNS.len());
        assert_eq!(fields[0], "4");
        assert!(fields[7].parse::<f64>().expect("a float") >= 2000.0);
    }
}
