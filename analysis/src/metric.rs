//! The figures that reports and comparisons are about, and where each comes from.

use crate::metrics_csv::MetricsRow;
use crate::summary::RunSummary;

/// A figure of merit of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    Throughput,
    ReadMean,
    ReadP99,
    WriteMean,
    WriteP99,
}

impl Metric {
    pub const ALL: [Metric; 5] =
        [Metric::Throughput, Metric::ReadMean, Metric::ReadP99, Metric::WriteMean, Metric::WriteP99];

    /// Short name, used in file names and in `compare`'s output.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Throughput => "throughput",
            Metric::ReadMean => "read_mean",
            Metric::ReadP99 => "read_p99",
            Metric::WriteMean => "write_mean",
            Metric::WriteP99 => "write_p99",
        }
    }

    /// Title for charts and report sections.
    pub fn title(self) -> &'static str {
        match self {
            Metric::Throughput => "Throughput",
            Metric::ReadMean => "Mean read latency",
            Metric::ReadP99 => "p99 read latency",
            Metric::WriteMean => "Mean write latency",
            Metric::WriteP99 => "p99 write latency",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::Throughput => "req/s",
            Metric::ReadMean | Metric::ReadP99 | Metric::WriteMean | Metric::WriteP99 => "µs",
        }
    }

    /// Whether a larger value is an improvement.
    pub fn higher_is_better(self) -> bool {
        match self {
            Metric::Throughput => true,
            Metric::ReadMean | Metric::ReadP99 | Metric::WriteMean | Metric::WriteP99 => false,
        }
    }

    /// The whole-run value; `None` for a latency of a kind the run never completed.
    pub fn of_summary(self, s: &RunSummary) -> Option<f64> {
        let (read, write) = (&s.latency_us.read, &s.latency_us.write);
        match self {
            Metric::Throughput => Some(s.totals.throughput_rps),
            Metric::ReadMean => (read.count > 0).then_some(read.mean),
            Metric::ReadP99 => (read.count > 0).then_some(read.p99),
            Metric::WriteMean => (write.count > 0).then_some(write.mean),
            Metric::WriteP99 => (write.count > 0).then_some(write.p99),
        }
    }

    /// The value for one second; `None` for a latency in a second with no operation of that kind.
    pub fn of_row(self, r: &MetricsRow) -> Option<f64> {
        match self {
            Metric::Throughput => Some(r.throughput_rps),
            Metric::ReadMean => (r.read_count > 0).then_some(r.read_latency_us),
            Metric::ReadP99 => (r.read_count > 0).then_some(r.read_p99_us),
            Metric::WriteMean => (r.write_count > 0).then_some(r.write_latency_us),
            Metric::WriteP99 => (r.write_count > 0).then_some(r.write_p99_us),
        }
    }
}
