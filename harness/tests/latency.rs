//! Latency accounting against a fake master whose answers take a known time, and one that
//! answers only errors.

mod support;

use std::time::Duration;

use support::{assert_success, f, harness, read_csv, read_json, read_jsonl, test_dir, u, Behaviour, FakeMaster};

const DELAY: Duration = Duration::from_millis(20);

fn run_against(master: &FakeMaster, out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let out = out.to_str().expect("utf-8 path");
    let mut args = vec![
        "run",
        "--master",
        &master.addr,
        "--out",
        out,
        "--duration",
        "1",
        "--warmup",
        "0",
        "--clients",
        "1",
        "--conns-per-client",
        "2",
        "--keys",
        "20",
        "--seed",
        "5",
    ];
    args.extend_from_slice(extra);
    harness(&args)
}

#[test]
fn measured_latency_includes_the_servers_delay() {
    let master = FakeMaster::start(Behaviour::Delay(DELAY));
    let dir = test_dir("delay");
    assert_success(&run_against(&master, &dir, &["--write-pct", "50"]));

    let summary = read_json(&dir.join("summary.json"));
    let delay_us = DELAY.as_micros() as f64;
    for op in ["read", "write"] {
        let l = &summary["latency_us"][op];
        assert!(u(&l["count"]) > 0, "no {op} measured: {summary}");
        for field in ["p50", "p90", "p99", "mean", "max"] {
            assert!(f(&l[field]) >= delay_us, "{op} {field} {} is below the delay", l[field]);
        }
        let cdf = summary["latency_cdf"][op].as_array().expect("a cdf");
        assert!(cdf.iter().all(|point| f(&point[1]) >= delay_us), "{op} cdf below the delay");
    }
    assert_eq!(u(&summary["totals"]["errors"]), 0);

    let (header, rows) = read_csv(&dir.join("metrics.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    assert!(!rows.is_empty());
    for row in rows.iter().filter(|r| r[col("success_count")] > 0.0) {
        for name in ["read_p50_us", "write_p50_us", "read_latency_us", "write_latency_us"] {
            assert!(row[col(name)] >= delay_us, "{name} = {} in {row:?}", row[col(name)]);
        }
    }
}

#[test]
fn errors_are_counted_as_errors_never_as_successes() {
    let master = FakeMaster::start(Behaviour::Errors);
    let dir = test_dir("errors");
    let history = dir.join("history.jsonl");
    let history_arg = history.to_str().expect("utf-8 path");
    assert_success(&run_against(&master, &dir, &["--history", history_arg]));

    let summary = read_json(&dir.join("summary.json"));
    let totals = &summary["totals"];
    assert!(u(&totals["requests"]) > 0, "nothing was sent: {summary}");
    assert_eq!(u(&totals["success"]), 0, "{summary}");
    assert_eq!(u(&totals["reads"]) + u(&totals["writes"]), 0);
    assert_eq!(u(&totals["errors"]), u(&totals["requests"]));
    assert_eq!(f(&totals["throughput_rps"]), 0.0);
    let errors = &summary["errors"];
    assert!(u(&errors["unavailable"]) > 0 && u(&errors["outcome_unknown"]) > 0, "{errors}");
    assert_eq!(u(&errors["unavailable"]) + u(&errors["outcome_unknown"]), u(&totals["errors"]));
    assert_eq!(u(&summary["latency_us"]["read"]["count"]), 0);
    assert_eq!(f(&summary["latency_us"]["write"]["p50"]), 0.0);

    for row in read_jsonl(&dir.join("metrics.jsonl")) {
        assert_eq!(u(&row["success_count"]), 0, "{row}");
        assert_eq!(u(&row["error_count"]), u(&row["total_requests"]), "{row}");
        assert_eq!(f(&row["read_latency_us"]), 0.0, "{row}");
    }

    // In the history a refused GET certainly did nothing; an unknown write is `info`, and its
    // process is never used again.
    let mut retired = std::collections::HashSet::new();
    for event in read_jsonl(&history) {
        let process = u(&event["process"]);
        assert!(!retired.contains(&process), "process {process} reused after info");
        match (event["type"].as_str(), event["f"].as_str()) {
            (Some("invoke"), _) => {}
            (Some("fail"), Some("get")) => {}
            (Some("info"), Some("put" | "del")) => {
                retired.insert(process);
            }
            other => panic!("unexpected {other:?}: {event}"),
        }
    }
    assert!(!retired.is_empty());
}
