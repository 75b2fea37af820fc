//! The `analysis` binary's output and exit codes: 0 done (and linearizable), 1 not
//! linearizable, 2 bad input naming the file and line, 3 the checker gave up.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{fixture_run, scratch, small_sweep, write_history};

fn analysis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_analysis")).args(args).output().expect("run analysis")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn check_prints_linearizable_and_exits_0() {
    let file = scratch("cli_check_ok").join("history.jsonl");
    write_history(
        &file,
        &[
            (1, "invoke", "put", "x", Some("a"), 0),
            (1, "ok", "put", "x", Some("a"), 10),
            (2, "invoke", "get", "x", None, 20),
            (2, "ok", "get", "x", Some("a"), 30),
        ],
    );
    let out = analysis(&["check", path(&file)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "linearizable\n");
}

#[test]
fn check_names_the_bad_key_and_exits_1() {
    let file = scratch("cli_check_bad").join("history.jsonl");
    write_history(
        &file,
        &[
            (1, "invoke", "put", "k7", Some("a"), 0),
            (1, "ok", "put", "k7", Some("a"), 10),
            (1, "invoke", "del", "k7", None, 20),
            (1, "ok", "del", "k7", None, 30),
            (2, "invoke", "get", "k7", None, 40),
            (2, "ok", "get", "k7", Some("a"), 50),
        ],
    );
    let out = analysis(&["check", path(&file)]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("not linearizable: key \"k7\""), "{text}");
    assert!(text.contains("get -> \"a\"") && text.contains("del"), "{text}");
}

#[test]
fn check_of_a_malformed_line_exits_2_naming_file_and_line() {
    let file = scratch("cli_check_malformed").join("history.jsonl");
    let good = r#"{"process":1,"type":"invoke","f":"put","key":"x","value":"a","time_ns":0}"#;
    std::fs::write(&file, format!("{good}\n{{\"process\": 1, \"type\": \"ok\"\n")).expect("write");
    let out = analysis(&["check", path(&file)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("history.jsonl:2:"), "{}", stderr(&out));
}

#[test]
fn check_past_its_budget_exits_3() {
    let file = scratch("cli_check_budget").join("history.jsonl");
    let values: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
    let mut events = Vec::new();
    for (i, v) in values.iter().enumerate() {
        events.push((10 + i as u64, "invoke", "put", "x", Some(v.as_str()), i as u64));
        events.push((10 + i as u64, "ok", "put", "x", Some(v.as_str()), 100 + i as u64));
    }
    events.push((1, "invoke", "get", "x", None, 200));
    events.push((1, "ok", "get", "x", Some("nobody"), 210));
    write_history(&file, &events);
    let out = analysis(&["check", "--max-states", "50", path(&file)]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("undecided"), "{}", stdout(&out));
}

#[test]
fn a_missing_file_exits_2_naming_it() {
    let out = analysis(&["check", "/nonexistent/history.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/history.jsonl"), "{}", stderr(&out));
    let out = analysis(&["report", "/nonexistent/run"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn report_of_a_run_exits_0_and_of_a_malformed_run_exits_2() {
    let dir = fixture_run("cli_report");
    let out = analysis(&["report", path(&dir)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(dir.join("report.md").exists());
    let csv = dir.join("metrics.csv");
    let text = std::fs::read_to_string(&csv).expect("read");
    std::fs::write(&csv, text.replace("2,4,3,1100", "2,4,3,-")).expect("write");
    let out = analysis(&["report", path(&dir)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("metrics.csv:3:"), "{}", stderr(&out));
}

#[test]
fn compare_prints_a_verdict_per_metric() {
    let (a, b) = (scratch("cli_cmp_a"), scratch("cli_cmp_b"));
    small_sweep(&a, 1.0, 1.0);
    small_sweep(&b, 2.0, 1.0);
    let out = analysis(&["compare", path(&a), path(&b)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("slaves=3 clients=4"), "{text}");
    assert!(text.contains("+100.0%") && text.contains("better"), "{text}");
    assert!(text.contains("no significant difference"), "{text}");
}
