//! `metrics.csv`: one row per measured second. The harness writes plain numbers with no quoting,
//! so the parser is a split on commas; columns are found by header name, extra columns are
//! ignored, and every error names the file and line.

use std::path::Path;

use crate::error::{read_file, Error, Result};

/// The columns the contract promises, in the order the harness writes them.
pub const COLUMNS: [&str; 15] = [
    "second",
    "client_count",
    "slave_count",
    "total_requests",
    "success_count",
    "error_count",
    "read_latency_us",
    "write_latency_us",
    "throughput_rps",
    "read_count",
    "write_count",
    "read_p50_us",
    "read_p99_us",
    "write_p50_us",
    "write_p99_us",
];

/// One measured second. Latencies are in µs and 0 when the second had no operation of that kind.
/// The harness writes these rows (as CSV and as JSON lines) and this crate reads them back.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricsRow {
    pub second: u64,
    pub client_count: u64,
    pub slave_count: u64,
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

/// Reads `path`; an empty run (no data row) is an error.
pub fn load(path: &Path) -> Result<Vec<MetricsRow>> {
    parse(path, &read_file(path)?)
}

/// Parses the text of a `metrics.csv`; `path` only names the file in errors.
pub fn parse(path: &Path, text: &str) -> Result<Vec<MetricsRow>> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let (_, header) = lines.next().ok_or_else(|| Error::in_file(path, "empty file: no header"))?;
    let header: Vec<&str> = header.split(',').map(str::trim).collect();
    let mut index = [0usize; COLUMNS.len()];
    for (slot, column) in index.iter_mut().zip(COLUMNS) {
        *slot = header
            .iter()
            .position(|h| *h == column)
            .ok_or_else(|| Error::at_line(path, 1, format!("header lacks column `{column}`")))?;
    }
    let mut rows = Vec::new();
    for (line, text) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = text.split(',').map(str::trim).collect();
        if fields.len() != header.len() {
            return Err(Error::at_line(
                path,
                line,
                format!("{} fields, the header has {}", fields.len(), header.len()),
            ));
        }
        let row = Fields { path, line, fields: &fields, header: &header, index: &index };
        rows.push(row.into_row()?);
    }
    if rows.is_empty() {
        return Err(Error::in_file(path, "no data row after the header (an empty run)"));
    }
    Ok(rows)
}

/// One data line being parsed, with what its errors need to name.
struct Fields<'a> {
    path: &'a Path,
    line: usize,
    fields: &'a [&'a str],
    header: &'a [&'a str],
    index: &'a [usize; COLUMNS.len()],
}

impl Fields<'_> {
    fn raw(&self, column: usize) -> (&str, &str) {
        let i = self.index[column];
        (self.header[i], self.fields[i])
    }

    fn count(&self, column: usize) -> Result<u64> {
        let (name, raw) = self.raw(column);
        raw.parse().map_err(|_| Error::at_line(self.path, self.line, format!("`{name}`: `{raw}` is not a count")))
    }

    fn float(&self, column: usize) -> Result<f64> {
        let (name, raw) = self.raw(column);
        match raw.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
            Ok(_) | Err(_) => Err(Error::at_line(
                self.path,
                self.line,
                format!("`{name}`: `{raw}` is not a finite non-negative number"),
            )),
        }
    }

    fn into_row(self) -> Result<MetricsRow> {
        Ok(MetricsRow {
            second: self.count(0)?,
            client_count: self.count(1)?,
            slave_count: self.count(2)?,
            total_requests: self.count(3)?,
            success_count: self.count(4)?,
            error_count: self.count(5)?,
            read_latency_us: self.float(6)?,
            write_latency_us: self.float(7)?,
            throughput_rps: self.float(8)?,
            read_count: self.count(9)?,
            write_count: self.count(10)?,
            read_p50_us: self.float(11)?,
            read_p99_us: self.float(12)?,
            write_p50_us: self.float(13)?,
            write_p99_us: self.float(14)?,
        })
    }
}
