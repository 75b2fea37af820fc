//! `analysis compare A B`: for every metric (and every grid cell of a sweep), whether B differs
//! from A beyond noise, by Welch's t-test at [`ALPHA`].
//!
//! The samples are the repetitions of a cell for sweeps, and the measured seconds of
//! `metrics.csv` for single runs (the harness already leaves warmup seconds out). Seconds are
//! not independent samples in the strict sense; the verdict on single runs is a guide, and
//! repetitions are what a claim should rest on.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::metric::Metric;
use crate::run::{Cell, Dataset, Run, Sweep};
use crate::stats::{self, Described, Welch, ALPHA};

/// What the test says about B relative to A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Better,
    Worse,
    NoSignificantDifference,
    /// One side has fewer than two samples: no test is possible.
    TooFewSamples,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::NoSignificantDifference => "no significant difference",
            Verdict::TooFewSamples => "too few samples to tell",
        })
    }
}

/// One metric of one cell (or of the run) in A and in B.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// `None` when comparing two single runs.
    pub cell: Option<Cell>,
    pub metric: Metric,
    pub a: Described,
    pub b: Described,
    /// `(mean_b - mean_a) / mean_a` in percent; `None` when A's mean is zero.
    pub diff_pct: Option<f64>,
    pub welch: Option<Welch>,
    pub verdict: Verdict,
}

/// Everything `compare` found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub comparisons: Vec<Comparison>,
    /// Cells present on one side only, with the side's letter.
    pub unmatched: Vec<(char, Cell)>,
}

/// Compares the data sets in `dir_a` and `dir_b`, which must both be runs or both sweeps.
pub fn compare(dir_a: &Path, dir_b: &Path) -> Result<Outcome> {
    match (Dataset::load(dir_a)?, Dataset::load(dir_b)?) {
        (Dataset::Run(a), Dataset::Run(b)) => Ok(Outcome {
            comparisons: compare_samples(None, &run_samples(&a), &run_samples(&b)),
            unmatched: Vec::new(),
        }),
        (Dataset::Sweep(a), Dataset::Sweep(b)) => compare_sweeps(&a, &b),
        (Dataset::Run(_), Dataset::Sweep(_)) | (Dataset::Sweep(_), Dataset::Run(_)) => Err(Error::Incomparable(
            format!("{} and {} are not both runs or both sweeps", dir_a.display(), dir_b.display()),
        )),
    }
}

type Samples = BTreeMap<Metric, Vec<f64>>;

fn run_samples(run: &Run) -> Samples {
    Metric::ALL.into_iter().map(|m| (m, run.rows.iter().filter_map(|r| m.of_row(r)).collect())).collect()
}

fn cell_samples(runs: &[&Run]) -> Samples {
    Metric::ALL.into_iter().map(|m| (m, runs.iter().filter_map(|r| m.of_summary(&r.summary)).collect())).collect()
}

fn compare_sweeps(a: &Sweep, b: &Sweep) -> Result<Outcome> {
    let (cells_a, cells_b) = (a.cells(), b.cells());
    let mut outcome = Outcome { comparisons: Vec::new(), unmatched: Vec::new() };
    for (cell, runs_a) in &cells_a {
        match cells_b.get(cell) {
            Some(runs_b) => {
                outcome.comparisons.extend(compare_samples(Some(*cell), &cell_samples(runs_a), &cell_samples(runs_b)))
            }
            None => outcome.unmatched.push(('A', *cell)),
        }
    }
    let only_b = cells_b.keys().filter(|c| !cells_a.contains_key(c));
    outcome.unmatched.extend(only_b.map(|c| ('B', *c)));
    if outcome.comparisons.is_empty() {
        return Err(Error::Incomparable(format!(
            "the sweeps {} and {} share no cell with data",
            a.dir.display(),
            b.dir.display()
        )));
    }
    Ok(outcome)
}

/// One comparison per metric that has samples on both sides.
pub fn compare_samples(cell: Option<Cell>, a: &Samples, b: &Samples) -> Vec<Comparison> {
    Metric::ALL
        .into_iter()
        .filter_map(|metric| {
            let (sa, sb) = (a.get(&metric)?, b.get(&metric)?);
            let (da, db) = (stats::describe(sa)?, stats::describe(sb)?);
            let welch = stats::welch_t_test(sa, sb);
            Some(Comparison {
                cell,
                metric,
                a: da,
                b: db,
                diff_pct: (da.mean != 0.0).then(|| (db.mean - da.mean) / da.mean * 100.0),
                welch,
                verdict: verdict(metric, welch),
            })
        })
        .collect()
}

/// Better or worse when the difference is significant at [`ALPHA`], in the metric's direction.
pub fn verdict(metric: Metric, welch: Option<Welch>) -> Verdict {
    match welch {
        None => Verdict::TooFewSamples,
        Some(w) if w.p_value >= ALPHA => Verdict::NoSignificantDifference,
        Some(w) if (w.t > 0.0) == metric.higher_is_better() => Verdict::Better,
        Some(_) => Verdict::Worse,
    }
}

/// The text `analysis compare` prints.
pub fn format(outcome: &Outcome, dir_a: &Path, dir_b: &Path) -> String {
    let mut out = format!(
        "A = {}\nB = {}\nWelch's t-test of B against A, alpha {ALPHA}; values are mean ± 95% CI (n samples)\n",
        dir_a.display(),
        dir_b.display()
    );
    let mut current: Option<Option<Cell>> = None;
    for c in &outcome.comparisons {
        if current != Some(c.cell) {
            current = Some(c.cell);
            if let Some(cell) = c.cell {
                let _ = writeln!(out, "\n{cell}");
            } else {
                out.push('\n');
            }
        }
        let _ = writeln!(out, "  {}", line(c));
    }
    for (side, cell) in &outcome.unmatched {
        let _ = writeln!(out, "\nonly in {side}: {cell} (not compared)");
    }
    out
}

fn line(c: &Comparison) -> String {
    let side = |d: &Described| {
        let ci = d.ci95.map_or(String::new(), |h| format!(" ± {h:.1}"));
        format!("{:.1}{ci} (n={})", d.mean, d.n)
    };
    let diff = c.diff_pct.map_or("n/a".to_string(), |p| format!("{p:+.1}%"));
    let p = match c.welch {
        None => "p=n/a".to_string(),
        Some(w) if w.p_value < 1e-4 => "p<0.0001".to_string(),
        Some(w) => format!("p={:.4}", w.p_value),
    };
    format!(
        "{:<11} {:<5}  A {:<28} B {:<28} {:>8}  {:<9} {}",
        c.metric.name(),
        c.metric.unit(),
        side(&c.a),
        side(&c.b),
        diff,
        p,
        c.verdict
    )
}
