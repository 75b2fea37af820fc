//! `analysis compare`: verdicts on clearly different and clearly equal data sets.

mod common;

use analysis::compare::{compare, format, Verdict};
use analysis::{Cell, Error, Metric};
use common::{fixture_run, scratch, small_sweep, write_run, RunSpec};

fn verdict_of(outcome: &analysis::compare::Outcome, cell: Option<Cell>, metric: Metric) -> Verdict {
    outcome
        .comparisons
        .iter()
        .find(|c| c.cell == cell && c.metric == metric)
        .map(|c| c.verdict)
        .expect("comparison present")
}

const BUSY: Cell = Cell { slaves: 3, clients: 4 };

#[test]
fn much_higher_throughput_is_better_and_noise_is_not() {
    let (a, b) = (scratch("cmp_sweep_a"), scratch("cmp_sweep_b"));
    small_sweep(&a, 1.0, 1.0);
    small_sweep(&b, 1.5, 1.0);
    let outcome = compare(&a, &b).expect("compare");
    // 1000, 1100, 1200 against 1500, 1650, 1800: t = 5.28, df = 3.48, p < 0.01.
    let busy =
        outcome.comparisons.iter().find(|c| c.cell == Some(BUSY) && c.metric == Metric::Throughput).expect("busy cell");
    assert_eq!(busy.verdict, Verdict::Better);
    assert!((busy.diff_pct.expect("pct") - 50.0).abs() < 1e-9);
    assert!(busy.welch.expect("welch").p_value < 0.05);
    // 100, 200, 300 against 150, 300, 450: t = 0.96, within noise.
    let quiet = Some(Cell { slaves: 1, clients: 1 });
    assert_eq!(verdict_of(&outcome, quiet, Metric::Throughput), Verdict::NoSignificantDifference);
    // Same latencies on both sides.
    assert_eq!(verdict_of(&outcome, Some(BUSY), Metric::ReadMean), Verdict::NoSignificantDifference);
    // And the other way round the same throughput is worse.
    let reverse = compare(&b, &a).expect("compare");
    assert_eq!(verdict_of(&reverse, Some(BUSY), Metric::Throughput), Verdict::Worse);
}

#[test]
fn much_higher_latency_is_worse() {
    let (a, b) = (scratch("cmp_latency_a"), scratch("cmp_latency_b"));
    small_sweep(&a, 1.0, 1.0);
    small_sweep(&b, 1.0, 2.0);
    let outcome = compare(&a, &b).expect("compare");
    for metric in [Metric::ReadMean, Metric::ReadP99, Metric::WriteMean, Metric::WriteP99] {
        assert_eq!(verdict_of(&outcome, Some(BUSY), metric), Verdict::Worse, "{metric:?}");
    }
    assert_eq!(verdict_of(&outcome, Some(BUSY), Metric::Throughput), Verdict::NoSignificantDifference);
}

#[test]
fn a_sweep_against_its_copy_shows_no_significant_difference() {
    let (a, b) = (scratch("cmp_same_a"), scratch("cmp_same_b"));
    small_sweep(&a, 1.0, 1.0);
    small_sweep(&b, 1.0, 1.0);
    let outcome = compare(&a, &b).expect("compare");
    assert_eq!(outcome.comparisons.len(), 4 * Metric::ALL.len());
    for c in &outcome.comparisons {
        assert_eq!(c.verdict, Verdict::NoSignificantDifference, "{c:?}");
        assert_eq!(c.welch.expect("welch").p_value, 1.0);
    }
    let text = format(&outcome, &a, &b);
    assert!(text.contains("slaves=3 clients=4"), "{text}");
    assert!(text.contains("+0.0%"), "{text}");
}

#[test]
fn single_runs_are_compared_second_by_second() {
    let a = fixture_run("cmp_run_a");
    let b = scratch("cmp_run_b");
    let mut spec = RunSpec::new(3, 4, 0.0, 400.0);
    spec.throughput = vec![2000.0, 2100.0, 1900.0, 2050.0, 1950.0];
    write_run(&b, &spec);
    let outcome = compare(&a, &b).expect("compare");
    let throughput = &outcome.comparisons[0];
    assert_eq!((throughput.cell, throughput.metric), (None, Metric::Throughput));
    assert_eq!((throughput.a.n, throughput.b.n), (5, 5));
    assert_eq!(throughput.verdict, Verdict::Better);
    let same = compare(&a, &a).expect("compare");
    assert!(same.comparisons.iter().all(|c| c.verdict == Verdict::NoSignificantDifference));
}

#[test]
fn a_run_cannot_be_compared_with_a_sweep() {
    let run = fixture_run("cmp_mixed_run");
    let sweep = scratch("cmp_mixed_sweep");
    small_sweep(&sweep, 1.0, 1.0);
    assert!(matches!(compare(&run, &sweep), Err(Error::Incomparable(_))));
}

#[test]
fn cells_on_one_side_only_are_listed_not_compared() {
    let (a, b) = (scratch("cmp_cells_a"), scratch("cmp_cells_b"));
    small_sweep(&a, 1.0, 1.0);
    let runs: Vec<(u64, RunSpec)> = (1..=2).map(|r| (r, RunSpec::new(3, 4, 1000.0, 300.0))).collect();
    common::write_sweep(&b, &runs);
    let outcome = compare(&a, &b).expect("compare");
    assert!(outcome.comparisons.iter().all(|c| c.cell == Some(BUSY)));
    assert_eq!(outcome.unmatched.len(), 3);
}
