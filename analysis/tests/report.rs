//! `analysis report` on small fixed data sets: every plot file exists and the tables carry the
//! hand-computed figures.

mod common;

use analysis::report::write_report;
use common::{fixture_run, scratch, small_sweep};

fn assert_plots(dir: &std::path::Path, stems: &[String]) {
    for stem in stems {
        for ext in ["png", "svg"] {
            let path = dir.join(format!("{stem}.{ext}"));
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            assert!(size > 1000, "{} missing or empty", path.display());
        }
    }
}

#[test]
fn run_report_writes_every_plot_and_the_summary_table() {
    let dir = fixture_run("run_report");
    let written = write_report(&dir).expect("report");
    let stems: Vec<String> = ["throughput_over_time", "latency_cdf", "keys_per_slave"].map(String::from).to_vec();
    assert_plots(&dir, &stems);
    assert_eq!(written.plots.len(), 6);
    let md = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    for section in ["## Totals", "## Latency", "## Errors by kind", "## Load distribution"] {
        assert!(md.contains(section), "report lacks {section}");
    }
    // Throughput per second 998, 1100, 1049, 1200, 950: mean 1059.4, sd 96.52,
    // t(0.975, 4) = 2.776445, half-width 2.776445 * 96.5236 / sqrt(5) = 119.85.
    assert!(md.contains("| Throughput | req/s | 5 | 1059.4 | 96.52 | 939.6 .. 1179.2 (±119.8) |"), "{md}");
    // Slaves sort naturally: slave-2 before slave-10.
    let (two, ten) = (md.find("| slave-2 |"), md.find("| slave-10 |"));
    assert!(two < ten && two.is_some());
}

#[test]
fn sweep_report_writes_every_plot_and_figures_with_confidence_intervals() {
    let dir = scratch("sweep_report");
    small_sweep(&dir, 1.0, 1.0);
    write_report(&dir).expect("report");
    let mut stems = Vec::new();
    for metric in analysis::Metric::ALL {
        stems.push(format!("{}_by_slaves", metric.name()));
        stems.push(format!("{}_by_clients", metric.name()));
    }
    stems.push("load_1_slaves".to_string());
    stems.push("load_3_slaves".to_string());
    assert_plots(&dir, &stems);
    let md = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    // Cell (3 slaves, 4 clients): throughput 1000, 1100, 1200 -> mean 1100, sd 100,
    // t(0.975, 2) = 4.302653, half-width 4.302653 * 100 / sqrt(3) = 248.41.
    assert!(md.contains("| 3 | 4 | 3 | 1100.0 | 100.0 | 851.6 .. 1348.4 (±248.4) |"), "{md}");
    // Identical repetitions (read p99 of 750 µs in every run): zero spread, zero-width interval.
    assert!(md.contains("| 1 | 1 | 3 | 750.0 | 0.0 | 750.0 .. 750.0 (±0.0) |"), "{md}");
    // slave-3 of the 3-slave runs holds 322, 324, 326 keys (twice each): mean 324,
    // sd sqrt(16 / 5) = 1.789, t(0.975, 5) = 2.570582, half-width 1.877.
    assert!(md.contains("| 3 | slave-3 | 6 | 324.0 | 1.79 | 322.1 .. 325.9 (±1.88) |"), "{md}");
}

#[test]
fn report_of_a_missing_directory_names_it() {
    let dir = scratch("missing_report").join("nowhere");
    let err = write_report(&dir).expect_err("no such directory");
    assert!(err.to_string().contains("nowhere"), "{err}");
}
