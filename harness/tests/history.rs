//! History recording: well-formed lines, and every invoke answered once by its process.

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value as Json;
use support::{assert_success, harness, read_jsonl, test_dir, u, Behaviour, FakeMaster};

fn record(name: &str, extra: &[&str]) -> Vec<Json> {
    let master = FakeMaster::start(Behaviour::Store);
    let dir = test_dir(name);
    let history = dir.join("history.jsonl");
    let (out, history_arg) = (dir.to_str().expect("utf-8"), history.to_str().expect("utf-8"));
    let mut args = vec![
        "run",
        "--master",
        &master.addr,
        "--out",
        out,
        "--history",
        history_arg,
        "--duration",
        "1",
        "--warmup",
        "0",
        "--clients",
        "2",
        "--conns-per-client",
        "2",
        "--keys",
        "5",
        "--write-pct",
        "50",
        "--del-pct",
        "20",
        "--value-size",
        "16",
    ];
    args.extend_from_slice(extra);
    assert_success(&harness(&args));
    read_jsonl(Path::new(&history))
}

/// Checks the format and the pairing; returns the number of completed operations.
fn check_history(events: &[Json]) -> usize {
    let mut open: HashMap<u64, &Json> = HashMap::new();
    let mut written: HashMap<String, HashSet<String>> = HashMap::new();
    let mut completed = 0;
    let mut last_time = HashMap::new();
    for event in events {
        let obj = event.as_object().expect("an object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["f", "key", "process", "time_ns", "type", "value"], "{event}");
        let process = u(&event["process"]);
        let time = u(&event["time_ns"]);
        let f = event["f"].as_str().expect("f");
        let key = event["key"].as_str().expect("key").to_string();
        assert!(["get", "put", "del"].contains(&f), "{event}");
        assert!(key.starts_with("key"), "{event}");
        let previous = last_time.insert(process, time).unwrap_or(0);
        assert!(time >= previous, "time went back for process {process}");
        match event["type"].as_str().expect("type") {
            "invoke" => {
                assert!(open.insert(process, event).is_none(), "process {process} invoked twice: {event}");
                match f {
                    "put" => {
                        let value = event["value"].as_str().expect("a put carries its value");
                        assert!(written.entry(key).or_default().insert(value.to_string()), "value reused");
                    }
                    _ => assert!(event["value"].is_null(), "{event}"),
                }
            }
            kind @ ("ok" | "fail" | "info") => {
                let invoke = open.remove(&process).unwrap_or_else(|| panic!("{kind} without invoke: {event}"));
                assert_eq!((&invoke["f"], &invoke["key"]), (&event["f"], &event["key"]));
                assert!(time >= u(&invoke["time_ns"]));
                if f == "put" {
                    assert_eq!(invoke["value"], event["value"]);
                }
                if (kind, f) == ("ok", "get") {
                    if let Some(read) = event["value"].as_str() {
                        let seen = written.get(&key).is_some_and(|w| w.contains(read));
                        assert!(seen, "read {read:?} of {key} was never written before");
                    }
                }
                completed += 1;
            }
            other => panic!("unknown type {other}"),
        }
    }
    completed
}

#[test]
fn closed_loop_history_pairs_every_invoke_with_one_completion() {
    let events = record("closed", &[]);
    let completed = check_history(&events);
    assert!(completed > 10, "only {completed} operations");
    let types: HashSet<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert!(types.contains("ok"));
    let ok_gets_with_value =
        events.iter().filter(|e| e["type"] == "ok" && e["f"] == "get" && e["value"].is_string()).count();
    assert!(ok_gets_with_value > 0, "no get ever read a written value");
    let processes: HashSet<u64> = events.iter().map(|e| u(&e["process"])).collect();
    assert_eq!(processes, (0..4).collect(), "one process per connection when nothing is unknown");
}

#[test]
fn open_loop_history_gives_each_operation_in_flight_its_own_process() {
    let events = record("open", &["--rate", "400"]);
    let completed = check_history(&events);
    assert!(completed > 10, "only {completed} operations");
}
