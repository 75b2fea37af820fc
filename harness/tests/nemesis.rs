//! `harness nemesis`: a short run with every fault kind finds no violation, a short `--compose`
//! run overlaps faults and reports them, a short run in network namespaces (root only) cleans up
//! after itself, Ctrl-C stops every node, and the verdict the run uses reports the violations
//! that hand-made histories contain.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::nemesis::compose::{Plan, MAX_ACTIVE};
use harness::nemesis::fault::{FaultKind, Schedule};
use harness::nemesis::netns;
use harness::nemesis::verdict::{
    judge, Judgement, Linearizability, Recovery, EXIT_PASS, EXIT_UNDECIDED, EXIT_VIOLATION,
};
use support::{f, harness, nodes_bin, read_json, read_jsonl, test_dir, u, HARNESS};

/// Seconds of faults in the short run.
const SHORT_RUN_S: u64 = 15;

/// A seed whose first round of faults (every kind once) spends at most `budget` in its gaps
/// and holds, so that the short run injects every kind with time to spare for restarts.
fn seed_with_a_short_first_round(budget: Duration) -> u64 {
    (1..1000)
        .find(|&seed| {
            let mut schedule = Schedule::new(&FaultKind::BASIC, 3, seed);
            let round: Duration = (0..FaultKind::BASIC.len())
                .filter_map(|_| schedule.next_fault())
                .map(|f| f.gap + f.hold + f.restart_skew)
                .sum();
            round <= budget
        })
        .expect("some seed has a short first round")
}

/// Runs secured (cluster key, client password, TLS on every link through the proxies): CI's
/// longer nemesis runs plain, so both kinds of cluster go through every fault.
#[test]
fn a_short_nemesis_with_every_fault_kind_finds_no_violation() {
    let dir = test_dir("nemesis");
    let nodes = nodes_bin();
    let seed = seed_with_a_short_first_round(Duration::from_secs(SHORT_RUN_S * 3 / 5)).to_string();
    let duration = SHORT_RUN_S.to_string();
    let (stdout, stderr) = passing_nemesis(&dir, &nodes, &["--secure", "--duration", &duration, "--seed", &seed]);

    let summary = read_json(&dir.join("summary.json"));
    assert_eq!(summary["verdict"], "pass", "{summary:#}");
    assert_eq!(summary["config"]["secure"], true, "{summary:#}");
    assert_eq!(summary["violations"].as_array().map(Vec::len), Some(0));
    assert_eq!(summary["checks"]["linearizability"]["result"], "linearizable");
    for kind in FaultKind::BASIC {
        assert!(u(&summary["faults"][kind.name()]) >= 1, "{} was never injected: {stdout}{stderr}", kind.name());
    }
    assert!(u(&summary["operations"]["ok"]) > 0, "nothing succeeded: {summary:#}");
    let finals = summary["final_values"].as_object().expect("final values");
    assert_eq!(finals.len(), 8, "every key is read at the end: {summary:#}");

    let history = read_jsonl(&dir.join("history.jsonl"));
    let final_reads = history.iter().rev().take_while(|e| e["f"] == "get").filter(|e| e["type"] == "ok").count();
    assert!(final_reads >= finals.len(), "the final reads are in the history");
    for node in ["master", "backup", "slave-1", "slave-2", "slave-3"] {
        assert!(dir.join("logs").join(format!("{node}.log")).is_file(), "no log of {node}");
    }
    assert!(!dir.join("data").exists(), "a passing run removes the nodes' data");
}

/// Runs `harness nemesis` with `args` against `nodes`, writing to `dir`, and insists on a pass;
/// returns its stdout and stderr.
fn passing_nemesis(dir: &Path, nodes: &Path, args: &[&str]) -> (String, String) {
    let mut all = vec!["nemesis"];
    all.extend_from_slice(args);
    all.extend(["--nodes-bin", nodes.to_str().expect("utf-8"), "--out", dir.to_str().expect("utf-8")]);
    let out = harness(&all);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(EXIT_PASS), "the nemesis {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("verdict: PASS"), "{stdout}");
    (stdout, stderr)
}

/// Seconds of faults in the composed run.
const COMPOSE_RUN_S: u64 = 20;

/// Every kind, overlapping: the run completes and its summary lists the faults that overlapped,
/// and every fault the seed planned either ran (and was healed) or was skipped for a conflict.
#[test]
fn a_short_composed_nemesis_overlaps_faults_and_reports_them() {
    let dir = test_dir("nemesis-compose");
    let nodes = nodes_bin();
    let seed: u64 = 3;
    let kinds: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
    let (duration, seed_arg, faults) = (COMPOSE_RUN_S.to_string(), seed.to_string(), kinds.join(","));
    let args = ["--compose", "--duration", &duration, "--seed", &seed_arg, "--faults", &faults];
    let (stdout, _) = passing_nemesis(&dir, &nodes, &args);
    assert!(stdout.contains("overlapping faults: "), "{stdout}");

    let summary = read_json(&dir.join("summary.json"));
    assert_eq!(summary["config"]["compose"], true, "{summary:#}");
    assert_eq!(summary["verdict"], "pass", "{summary:#}");
    let log = summary["fault_log"].as_array().expect("a fault log");
    let skipped = summary["skipped"].as_array().expect("a list of skipped faults");
    let mut ids: Vec<u64> = log.iter().chain(skipped).map(|f| u(&f["id"])).collect();
    ids.sort();
    let mut schedule = Schedule::new(&FaultKind::ALL, 3, seed);
    let plan = Plan::new(&mut schedule, Duration::from_secs(COMPOSE_RUN_S), MAX_ACTIVE);
    let planned: Vec<u64> = plan.faults.iter().map(|p| p.id as u64).collect();
    assert_eq!(ids, planned, "every planned fault ran or was skipped: {summary:#}");
    for fault in log {
        assert!(f(&fault["healed_s"]) >= f(&fault["at_s"]), "{fault}");
        for other in fault["overlaps"].as_array().into_iter().flatten() {
            let back = log.iter().find(|g| g["id"] == *other).expect("an overlapped fault is in the log");
            assert!(back["overlaps"].as_array().is_some_and(|o| o.contains(&fault["id"])), "overlap is mutual");
        }
    }
    let overlapping = log.iter().filter(|f| f["overlaps"].as_array().is_some_and(|o| !o.is_empty())).count();
    assert!(overlapping >= 2, "faults overlapped: {summary:#}");
    let most = u(&summary["most_active"]);
    assert!((2..=MAX_ACTIVE as u64).contains(&most), "{summary:#}");
    assert!(!dir.join("data").exists(), "a passing run removes the nodes' data");
}

/// Namespaces made by this mode that exist now.
fn nemesis_namespaces() -> Vec<String> {
    let listed = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    let text = String::from_utf8_lossy(&listed.stdout).into_owned();
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(netns::PREFIX))
        .map(String::from)
        .collect()
}

/// `--net namespaces`: partitions made by the kernel, overlapping. Root only, with `ip` and
/// `nft` (Debian packages iproute2 and nftables; `.ci/run` installs them): skipped, saying
/// why, where they are missing. A namespace left by a crashed run is removed at the start, and
/// the run's own are removed at the end.
#[test]
fn a_short_nemesis_in_network_namespaces_cleans_up_after_itself() {
    if let Err(why) = netns::preflight() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = test_dir("nemesis-netns");
    let nodes = nodes_bin();
    let leftover = format!("{}leftover-test", netns::PREFIX);
    let made = Command::new("ip").args(["netns", "add", &leftover]).status().expect("ip netns add");
    assert!(made.success(), "cannot make a namespace as root");
    let faults = "partition,partition-isolate,partition-halves,partition-bridge,partition-one-way,restart-in-partition";
    let args = ["--net", "namespaces", "--compose", "--duration", "12", "--seed", "2", "--faults", faults];
    let (_, stderr) = passing_nemesis(&dir, &nodes, &args);
    assert!(stderr.contains(&format!("removing namespace {leftover}")), "{stderr}");
    let summary = read_json(&dir.join("summary.json"));
    assert_eq!(summary["config"]["net"], "namespaces", "{summary:#}");
    assert!(u(&summary["operations"]["ok"]) > 0, "the clients reached the cluster: {summary:#}");
    let cuts = summary["fault_log"].as_array().expect("a fault log");
    assert!(cuts.iter().any(|f| f["detail"].as_str().is_some_and(|d| d.contains("directed links"))), "{summary:#}");
    assert_eq!(nemesis_namespaces(), Vec::<String>::new(), "every namespace is removed");
}

#[test]
fn sigint_stops_a_nemesis_and_every_node() {
    let dir = test_dir("nemesis-sigint");
    let nodes = nodes_bin();
    let log = dir.join("harness.stderr");
    let mut child = Command::new(HARNESS)
        .args(["nemesis", "--duration", "60", "--seed", "3", "--faults", "pause-master,kill-slave"])
        .args(["--nodes-bin", nodes.to_str().expect("utf-8"), "--out", dir.to_str().expect("utf-8")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("stderr file"))
        .spawn()
        .expect("start harness");
    wait_until("a first fault, while nodes run", || {
        let faults = std::fs::read_to_string(&log).unwrap_or_default();
        faults.contains("] pause-master") || faults.contains("] kill-slave")
    });
    assert!(!running_copies(&dir).is_empty(), "the nodes run the run's private copy of the binary");
    // SAFETY: kill(2) on our own child with a valid signal number.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = wait_for_exit(&mut child);
    assert_eq!(status.code(), Some(130), "{status}");
    assert_eq!(read_json(&dir.join("summary.json"))["verdict"], "interrupted");
    wait_until("every node to exit", || running_copies(&dir).is_empty());
}

/// Processes running the run's private copy of the `nodes` binary.
fn running_copies(dir: &Path) -> Vec<u32> {
    let copy = dir.join("data").join("bin").join("nodes");
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            exe == copy || exe.to_string_lossy().starts_with(&format!("{} ", copy.display()))
        })
        .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for harness") {
            return status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the harness did not exit after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---- The verdict, on hand-made histories ----

/// One history line: (process, type, f, key, value, time).
type Line<'a> = (u64, &'a str, &'a str, &'a str, Option<&'a str>, u64);

fn write_history(name: &str, lines: &[Line]) -> PathBuf {
    let path = test_dir(name).join("history.jsonl");
    let mut file = std::fs::File::create(&path).expect("create history");
    for (process, kind, f, key, value, time_ns) in lines {
        let event = serde_json::json!({"process": process, "type": kind, "f": f, "key": key,
                                       "value": value, "time_ns": time_ns});
        writeln!(file, "{event}").expect("write history");
    }
    path
}

fn finals(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect()
}

fn verdict(name: &str, lines: &[Line], last: &[(&str, Option<&str>)], recovery: Recovery) -> Judgement {
    let path = write_history(name, lines);
    judge(&path, &finals(last), recovery, 1_000_000).expect("a well-formed history")
}

#[test]
fn a_linearizable_history_with_unknown_outcomes_passes() {
    let judgement = verdict(
        "lin-ok",
        &[
            (0, "invoke", "put", "k", Some("a"), 10),
            (0, "ok", "put", "k", Some("a"), 20),
            (1, "invoke", "put", "k", Some("b"), 30),
            (1, "info", "put", "k", Some("b"), 40),
            (2, "invoke", "get", "k", None, 50),
            (2, "ok", "get", "k", Some("a"), 60),
            // The unknown write takes effect late, before the final read.
            (3, "invoke", "get", "k", None, 100),
            (3, "ok", "get", "k", Some("b"), 110),
        ],
        &[("k", Some("b"))],
        Recovery::default(),
    );
    assert_eq!(judgement.linearizability, Linearizability::Linearizable);
    assert!(judgement.violations().is_empty(), "{:?}", judgement.violations());
    assert_eq!(judgement.exit_code(), EXIT_PASS);
}

#[test]
fn a_stale_read_after_an_acknowledged_write_is_a_violation() {
    let judgement = verdict(
        "stale-read",
        &[
            (0, "invoke", "put", "k", Some("a"), 10),
            (0, "ok", "put", "k", Some("a"), 20),
            (0, "invoke", "put", "k", Some("b"), 30),
            (0, "ok", "put", "k", Some("b"), 40),
            (1, "invoke", "get", "k", None, 50),
            (1, "ok", "get", "k", Some("a"), 60),
            (1, "invoke", "get", "k", None, 70),
            (1, "ok", "get", "k", Some("b"), 80),
        ],
        &[("k", Some("b"))],
        Recovery::default(),
    );
    assert!(matches!(judgement.linearizability, Linearizability::NotLinearizable(_)));
    assert!(judgement.lost_writes.is_empty(), "b is final: nothing was lost");
    let violations = judgement.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].starts_with("(a) not linearizable: key \"k\""), "{violations:?}");
    assert_eq!(judgement.exit_code(), EXIT_VIOLATION);
}

#[test]
fn a_lost_acknowledged_write_is_a_violation_of_both_checks() {
    let judgement = verdict(
        "lost-write",
        &[
            (0, "invoke", "put", "k", Some("a"), 10),
            (0, "ok", "put", "k", Some("a"), 20),
            (1, "invoke", "put", "k", Some("b"), 30),
            (1, "ok", "put", "k", Some("b"), 40),
            (2, "invoke", "get", "k", None, 100),
            (2, "ok", "get", "k", Some("a"), 110),
        ],
        &[("k", Some("a"))],
        Recovery::default(),
    );
    assert!(matches!(judgement.linearizability, Linearizability::NotLinearizable(_)));
    assert_eq!(judgement.lost_writes.len(), 1);
    assert_eq!(judgement.lost_writes[0].value.as_deref(), Some("b"));
    let violations = judgement.violations();
    assert!(violations.iter().any(|v| v.starts_with("(b) lost write: put \"b\"")), "{violations:?}");
    assert_eq!(judgement.exit_code(), EXIT_VIOLATION);
}

#[test]
fn a_cluster_that_does_not_come_back_is_a_violation() {
    let recovery = Recovery {
        not_serving: Some("no master answered".to_string()),
        node_problems: vec!["backup exited by itself".to_string()],
    };
    let judgement = verdict(
        "no-recovery",
        &[(0, "invoke", "put", "k", Some("a"), 10), (0, "ok", "put", "k", Some("a"), 20)],
        &[],
        recovery,
    );
    assert_eq!(judgement.linearizability, Linearizability::Linearizable);
    let violations = judgement.violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations.iter().all(|v| v.starts_with("(c) ")), "{violations:?}");
    assert_eq!(judgement.exit_code(), EXIT_VIOLATION);
}

#[test]
fn a_search_that_gives_up_is_no_verdict_rather_than_a_pass() {
    let mut lines = Vec::new();
    // Many overlapping writes and a read that only a late one explains: the search must
    // explore, and a budget of one state cannot finish it.
    for p in 0..8u64 {
        lines.push((p, "invoke", "put", "k", Some(["a", "b", "c", "d", "e", "f", "g", "h"][p as usize]), 10 + p));
    }
    for p in 0..8u64 {
        lines.push((p, "ok", "put", "k", Some(["a", "b", "c", "d", "e", "f", "g", "h"][p as usize]), 100 + p));
    }
    lines.push((9, "invoke", "get", "k", None, 200));
    lines.push((9, "ok", "get", "k", Some("a"), 210));
    let path = write_history("undecided", &lines);
    let judgement = judge(&path, &finals(&[("k", Some("a"))]), Recovery::default(), 1).expect("well-formed");
    assert!(matches!(judgement.linearizability, Linearizability::Undecided(_)), "{:?}", judgement.linearizability);
    assert!(judgement.violations().is_empty());
    assert_eq!(judgement.exit_code(), EXIT_UNDECIDED);
}

#[test]
fn a_malformed_history_is_an_error_not_a_verdict() {
    let path = test_dir("malformed").join("history.jsonl");
    std::fs::write(&path, "{\"process\": 1, \"type\": \"ok\"}\n").expect("write");
    let err = judge(&path, &BTreeMap::new(), Recovery::default(), 1000).expect_err("malformed");
    assert!(err.to_string().contains(":1"), "the error names the line: {err}");
}
