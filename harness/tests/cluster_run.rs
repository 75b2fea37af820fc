//! The harness against a real cluster it starts from the `nodes` binary.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{assert_success, f, harness, nodes_bin, read_csv, read_json, read_jsonl, test_dir, u, HARNESS};

const COLUMNS: &str = "second,client_count,slave_count,total_requests,success_count,error_count,read_latency_us,\
write_latency_us,throughput_rps,read_count,write_count,read_p50_us,read_p99_us,write_p50_us,write_p99_us";

#[test]
fn run_against_a_started_cluster_writes_consistent_files() {
    let dir = test_dir("cluster");
    let history = dir.join("history.jsonl");
    let nodes = nodes_bin();
    let out = harness(&[
        "run",
        "--nodes-bin",
        nodes.to_str().expect("utf-8"),
        "--out",
        dir.to_str().expect("utf-8"),
        "--history",
        history.to_str().expect("utf-8"),
        "--duration",
        "2",
        "--warmup",
        "1",
        "--slaves",
        "3",
        "--clients",
        "2",
        "--conns-per-client",
        "2",
        "--keys",
        "50",
    ]);
    assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("throughput"));

    let (header, rows) = read_csv(&dir.join("metrics.csv"));
    assert_eq!(header.join(","), COLUMNS);
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    assert!(!rows.is_empty(), "no measured second");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[col("second")], (i + 1) as f64);
        assert_eq!(row[col("success_count")] + row[col("error_count")], row[col("total_requests")]);
        assert_eq!(row[col("read_count")] + row[col("write_count")], row[col("success_count")]);
        assert_eq!((row[col("client_count")], row[col("slave_count")]), (2.0, 3.0));
    }
    let json_rows = read_jsonl(&dir.join("metrics.jsonl"));
    assert_eq!(json_rows.len(), rows.len());
    for row in &json_rows {
        let names: Vec<&str> = row.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(names.len(), header.len());
        assert_eq!(u(&row["success_count"]) + u(&row["error_count"]), u(&row["total_requests"]));
    }

    let summary = read_json(&dir.join("summary.json"));
    let totals = &summary["totals"];
    assert_eq!(u(&totals["success"]) + u(&totals["errors"]), u(&totals["requests"]));
    assert_eq!(u(&totals["reads"]) + u(&totals["writes"]), u(&totals["success"]));
    assert!(u(&totals["success"]) > 0, "nothing succeeded: {summary}");
    assert!(f(&totals["elapsed_s"]) > 0.0);
    assert_eq!(u(&summary["config"]["slaves"]), 3);
    let rows_success: u64 = json_rows.iter().map(|r| u(&r["success_count"])).sum();
    assert_eq!(rows_success, u(&totals["success"]), "the rows add up to the totals");

    let load = summary["load"].as_array().expect("a load distribution");
    let names: Vec<&str> = load.iter().filter_map(|l| l["slave"].as_str()).collect();
    assert_eq!(names, ["slave-1", "slave-2", "slave-3"]);
    let held: u64 = load.iter().map(|l| u(&l["keys_held"])).sum();
    let written: HashSet<String> = read_jsonl(&history)
        .iter()
        .filter(|e| e["type"] == "ok" && e["f"] == "put")
        .filter_map(|e| e["key"].as_str().map(str::to_owned))
        .collect();
    assert!(!written.is_empty(), "no write succeeded");
    assert!(held >= written.len() as u64, "slaves hold {held} keys, {} were written", written.len());

    assert_nodes_gone(&dir);
}

#[test]
fn a_secure_run_drives_a_cluster_with_a_key_a_password_and_tls() {
    let dir = test_dir("secure");
    let nodes = nodes_bin();
    let out = harness(&[
        "run",
        "--secure",
        "--nodes-bin",
        nodes.to_str().expect("utf-8"),
        "--out",
        dir.to_str().expect("utf-8"),
        "--duration",
        "1",
        "--warmup",
        "0",
        "--slaves",
        "2",
        "--clients",
        "2",
    ]);
    assert_success(&out);
    let info = read_json(&dir.join("cluster.json"));
    assert_eq!((&info["tls"], &info["password"]), (&serde_json::json!(true), &serde_json::json!(true)), "{info}");
    let summary = read_json(&dir.join("summary.json"));
    assert!(u(&summary["totals"]["success"]) > 0, "nothing succeeded: {summary}");
    assert_eq!(u(&summary["totals"]["errors"]), 0, "{summary}");
    let master_log = std::fs::read_to_string(dir.join("logs").join("master.log")).expect("the master's log");
    assert!(!master_log.contains("this cluster is open"), "the master ran without a key");
    assert!(master_log.contains("standby connected"), "the backup joined over TLS with the key");
    assert_nodes_gone(&dir);
}

#[test]
fn sigint_stops_the_run_and_every_node() {
    let dir = test_dir("sigint");
    let nodes = nodes_bin();
    let mut child = Command::new(HARNESS)
        .args(["run", "--nodes-bin", nodes.to_str().expect("utf-8"), "--out", dir.to_str().expect("utf-8")])
        .args(["--duration", "60", "--warmup", "0", "--slaves", "2", "--clients", "1", "--conns-per-client", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start harness");
    let metrics = dir.join("metrics.csv");
    wait_until("a measured second", || {
        std::fs::read_to_string(&metrics).map(|t| t.lines().count() >= 2).unwrap_or(false)
    });
    // SAFETY: kill(2) on our own child with a valid signal number.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = child.wait().expect("wait for harness");
    assert_eq!(status.code(), Some(130), "{status}");
    let summary = read_json(&dir.join("summary.json"));
    assert_eq!(summary["interrupted"], true);
    assert_nodes_gone(&dir);
}

/// Every node listed in `cluster.json` has exited.
fn assert_nodes_gone(dir: &Path) {
    let cluster = read_json(&dir.join("cluster.json"));
    let pids: Vec<u64> = cluster["nodes"].as_array().expect("nodes").iter().map(|n| u(&n["pid"])).collect();
    assert!(!pids.is_empty());
    wait_until("every node to exit", || {
        // SAFETY: kill(2) with signal 0 only checks whether the process exists.
        pids.iter().all(|&pid| unsafe { libc::kill(pid as libc::pid_t, 0) } != 0)
    });
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sweep_writes_one_folder_per_run_and_an_index() {
    let dir = test_dir("sweep");
    let nodes = nodes_bin();
    let out = harness(&[
        "sweep",
        "--nodes-bin",
        nodes.to_str().expect("utf-8"),
        "--out",
        dir.to_str().expect("utf-8"),
        "--slaves",
        "1,2",
        "--clients",
        "1",
        "--repeat",
        "1",
        "--conns-per-client",
        "1",
        "--duration",
        "1",
        "--warmup",
        "0",
    ]);
    assert_success(&out);
    let index = read_json(&dir.join("index.json"));
    assert_eq!(
        index,
        serde_json::json!({"runs": [
            {"dir": "s1-c1-r1", "slaves": 1, "clients": 1, "repeat": 1},
            {"dir": "s2-c1-r1", "slaves": 2, "clients": 1, "repeat": 1},
        ]})
    );
    for (run, slaves) in [("s1-c1-r1", 1), ("s2-c1-r1", 2)] {
        let summary = read_json(&dir.join(run).join("summary.json"));
        assert_eq!(u(&summary["config"]["slaves"]), slaves);
        assert_eq!(summary["load"].as_array().map(Vec::len), Some(slaves as usize));
        assert!(!dir.join(run).join("data").exists(), "the cluster's data is removed");
        assert_nodes_gone(&dir.join(run));
    }
}
