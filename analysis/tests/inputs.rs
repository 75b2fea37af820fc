//! Bad input in run and sweep directories gets an error naming the file and the line.

mod common;

use std::path::Path;

use analysis::{Dataset, Error, Run};
use common::{fixture_run, scratch, small_sweep};

fn rewrite(path: &Path, edit: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).expect("read");
    std::fs::write(path, edit(text)).expect("write");
}

fn bad_input(err: Error) -> (String, Option<usize>, String) {
    match err {
        Error::BadInput { path, line, message } => (path.display().to_string(), line, message),
        other => panic!("expected bad input, got {other}"),
    }
}

#[test]
fn the_hand_written_run_loads_and_ignores_unknown_fields() {
    let run = Run::load(&fixture_run("good_run")).expect("loads");
    assert_eq!(run.rows.len(), 5);
    assert_eq!(run.rows[3].throughput_rps, 1200.0);
    assert_eq!(run.summary.load.len(), 3);
    assert_eq!(run.summary.errors["timeout"], 2);
}

#[test]
fn a_malformed_csv_row_names_the_file_and_line() {
    let dir = fixture_run("bad_row");
    rewrite(&dir.join("metrics.csv"), |t| t.replace("3,4,3,1050,1049", "3,4,3,lots,1049"));
    let err = Run::load(&dir).expect_err("bad row");
    let text = err.to_string();
    let (path, line, message) = bad_input(err);
    assert!(path.ends_with("metrics.csv"));
    assert_eq!(line, Some(4));
    assert!(message.contains("total_requests") && message.contains("lots"), "{message}");
    assert!(text.contains("metrics.csv:4:"), "{text}");
}

#[test]
fn a_short_csv_row_is_rejected() {
    let dir = fixture_run("short_row");
    rewrite(&dir.join("metrics.csv"), |t| t.replace(",2700\n", "\n"));
    let (_, line, message) = bad_input(Run::load(&dir).expect_err("short row"));
    assert_eq!(line, Some(6));
    assert!(message.contains("14 fields"), "{message}");
}

#[test]
fn a_negative_or_non_finite_latency_is_rejected() {
    let dir = fixture_run("nan_latency");
    rewrite(&dir.join("metrics.csv"), |t| t.replace("410,880", "NaN,880"));
    let (_, line, message) = bad_input(Run::load(&dir).expect_err("NaN"));
    assert_eq!(line, Some(3));
    assert!(message.contains("read_latency_us"), "{message}");
}

#[test]
fn a_header_without_a_column_names_the_column() {
    let dir = fixture_run("bad_header");
    rewrite(&dir.join("metrics.csv"), |t| t.replacen("write_p99_us", "write_p98_us", 1));
    let (_, line, message) = bad_input(Run::load(&dir).expect_err("header"));
    assert_eq!(line, Some(1));
    assert!(message.contains("write_p99_us"), "{message}");
}

#[test]
fn extra_csv_columns_are_ignored() {
    let dir = fixture_run("extra_column");
    rewrite(&dir.join("metrics.csv"), |t| {
        t.lines().map(|l| format!("{l},9\n")).collect::<String>().replacen(",9\n", ",extra\n", 1)
    });
    assert_eq!(Run::load(&dir).expect("loads").rows.len(), 5);
}

#[test]
fn an_empty_run_is_an_error() {
    let dir = fixture_run("empty_run");
    rewrite(&dir.join("metrics.csv"), |t| t.lines().next().unwrap_or_default().to_string() + "\n");
    let (path, _, message) = bad_input(Run::load(&dir).expect_err("empty"));
    assert!(path.ends_with("metrics.csv"));
    assert!(message.contains("empty run"), "{message}");
}

#[test]
fn a_summary_missing_a_field_names_the_file_line_and_field() {
    let dir = fixture_run("summary_missing_field");
    rewrite(&dir.join("summary.json"), |t| t.replace("\"elapsed_s\": 5.0", "\"elapsed\": 5.0"));
    let (path, line, message) = bad_input(Run::load(&dir).expect_err("missing field"));
    assert!(path.ends_with("summary.json"));
    assert_eq!(line, Some(6));
    assert!(message.contains("elapsed_s"), "{message}");
}

#[test]
fn a_summary_that_is_not_json_names_the_line() {
    let dir = fixture_run("summary_garbage");
    rewrite(&dir.join("summary.json"), |t| t.replace("\"seed\": 7,", "\"seed\": 7,,"));
    let (_, line, _) = bad_input(Run::load(&dir).expect_err("syntax"));
    assert_eq!(line, Some(3));
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let dir = fixture_run("missing_summary");
    std::fs::remove_file(dir.join("summary.json")).expect("remove");
    let err = Run::load(&dir).expect_err("missing");
    assert!(matches!(err, Error::Io { .. }));
    assert!(err.to_string().contains("summary.json"), "{err}");
}

#[test]
fn a_sweep_entry_without_its_run_names_the_missing_file() {
    let dir = scratch("sweep_missing_run");
    small_sweep(&dir, 1.0, 1.0);
    std::fs::remove_dir_all(dir.join("s3-c4-r2")).expect("remove run");
    let err = Dataset::load(&dir).expect_err("missing run");
    assert!(err.to_string().contains("s3-c4-r2"), "{err}");
}

#[test]
fn an_empty_sweep_index_is_an_error() {
    let dir = scratch("empty_sweep");
    std::fs::write(dir.join("index.json"), "{\"runs\": []}").expect("write");
    let (path, _, message) = bad_input(Dataset::load(&dir).expect_err("empty sweep"));
    assert!(path.ends_with("index.json"));
    assert!(message.contains("no runs"), "{message}");
}

#[test]
fn a_malformed_index_entry_names_its_line() {
    let dir = scratch("bad_index");
    std::fs::write(dir.join("index.json"), "{\"runs\": [\n{\"dir\": \"a\", \"slaves\": 1, \"clients\": 1, \"repeat\": 1},\n{\"dir\": \"b\", \"slaves\": \"three\"}\n]}").expect("write");
    let (_, line, message) = bad_input(Dataset::load(&dir).expect_err("bad entry"));
    assert_eq!(line, Some(3));
    assert!(message.contains("invalid type"), "{message}");
}
