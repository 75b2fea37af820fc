//! # analysis
//!
//! Offline analysis of what the `harness` writes: statistics, plots and reports of load runs and
//! sweeps, comparisons of two data sets, and the linearizability checker for recorded histories.
//! It knows no socket; it reads files (the formats are in `docs/` and in the harness issue).
//!
//! ## Map
//! - `main.rs` — the `analysis` binary: `report`, `compare`, `check`, and their exit codes.
//! - `error.rs` — [`Error`], the crate's one error type; every variant names the file (and line).
//! - `summary.rs` — `summary.json` of a run ([`RunSummary`]).
//! - `metrics_csv.rs` — `metrics.csv` of a run, one [`MetricsRow`] per measured second.
//! - `run.rs` — a run directory ([`Run`]), a sweep directory with `index.json` ([`Sweep`]), and
//!   telling them apart ([`Dataset`]).
//! - `metric.rs` — the figures of merit ([`Metric`]) and where each one is read from.
//! - `stats.rs` — mean, standard deviation, Student's t confidence intervals, Welch's t-test.
//! - `report/` — `analysis report`: `mod.rs` dispatches; `run_report.rs` and `sweep_report.rs`
//!   write `report.md` and its charts; `table.rs` formats markdown tables and numbers.
//! - `plot/` — charts with plotters, each as PNG and SVG: `lines.rs` (lines with error bars,
//!   CDFs on a log axis), `bars.rs` (keys per slave); `mod.rs` holds the embedded font.
//! - `compare.rs` — `analysis compare`: Welch's t-test per metric and cell, with a verdict.
//! - `check/` — `analysis check`: `history.rs` parses and pairs events into operations;
//!   `mod.rs` partitions them by key and decides; `search.rs` is the Wing-Gong search with
//!   Lowe's memoization for one key's register, over the call/return list in `entries.rs` and
//!   the cache of visited states in `visited.rs`; `prepare.rs` prunes and tightens operations
//!   of unknown outcome first; `explain.rs` builds the window shown for a violation.
//!
//! ## Caveats
//! - Confidence intervals and t-tests assume roughly normal samples. Over a handful of
//!   repetitions that is the usual working assumption; over the seconds of one run (what
//!   `compare` uses for single runs) the samples are also autocorrelated, so treat such verdicts
//!   as a guide and rely on repetitions for claims.
//! - The checker's search is exponential in the worst case (many concurrent operations, many
//!   operations of unknown outcome on one key). The state budget turns that into an explicit
//!   "undecided" instead of a hang; it never reports a verdict it has not proven.

pub mod check;
pub mod compare;
pub mod error;
pub mod metric;
pub mod metrics_csv;
pub mod plot;
pub mod report;
pub mod run;
pub mod stats;
pub mod summary;

pub use error::{Error, Result};
pub use metric::Metric;
pub use metrics_csv::MetricsRow;
pub use run::{Cell, Dataset, Run, Sweep};
pub use summary::RunSummary;
