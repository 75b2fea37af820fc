//! The linearizability checker on hand-written histories with known verdicts, on generated
//! histories, and on malformed input.

mod common;

use std::path::Path;

use analysis::check::history::parse;
use analysis::check::{check, Action, Verdict, DEFAULT_MAX_STATES};
use analysis::Error;
use common::generate::{linearizable_history, Shape};
use common::{history_text, Event};

fn text(events: &[Event]) -> String {
    history_text(events)
}

fn verdict(events: &[Event]) -> Verdict {
    let history = parse(Path::new("test.jsonl"), &text(events)).expect("well-formed history");
    check(&history, DEFAULT_MAX_STATES).verdict
}

fn assert_linearizable(events: &[Event]) {
    let v = verdict(events);
    assert_eq!(v, Verdict::Linearizable, "{v:?}");
}

fn assert_violation_on(events: &[Event], key: &str) -> analysis::check::Violation {
    match verdict(events) {
        Verdict::NotLinearizable(v) => {
            assert_eq!(v.key, key);
            *v
        }
        other => panic!("expected a violation on {key}, got {other:?}"),
    }
}

/// A complete operation: invoke at `t0`, `ok` at `t1`.
fn op<'a>(
    p: u64,
    f: &'a str,
    key: &'a str,
    value: Option<&'a str>,
    read: Option<&'a str>,
    t0: u64,
    t1: u64,
) -> [Event<'a>; 2] {
    let done = if f == "get" { read } else { value };
    [(p, "invoke", f, key, value, t0), (p, "ok", f, key, done, t1)]
}

fn put<'a>(p: u64, key: &'a str, v: &'a str, t0: u64, t1: u64) -> [Event<'a>; 2] {
    op(p, "put", key, Some(v), None, t0, t1)
}

fn get<'a>(p: u64, key: &'a str, read: Option<&'a str>, t0: u64, t1: u64) -> [Event<'a>; 2] {
    op(p, "get", key, None, read, t0, t1)
}

fn del(p: u64, key: &str, t0: u64, t1: u64) -> [Event<'_>; 2] {
    op(p, "del", key, None, None, t0, t1)
}

fn history<'a>(ops: &[[Event<'a>; 2]]) -> Vec<Event<'a>> {
    let mut events: Vec<Event> = ops.iter().flatten().copied().collect();
    events.sort_by_key(|e| e.5);
    events
}

#[test]
fn sequential_puts_gets_and_deletes_are_linearizable() {
    assert_linearizable(&history(&[
        get(1, "x", None, 0, 5),
        put(1, "x", "a", 10, 20),
        get(1, "x", Some("a"), 30, 40),
        del(1, "x", 50, 60),
        get(1, "x", None, 70, 80),
    ]));
}

#[test]
fn reads_concurrent_with_a_write_may_see_the_old_or_the_new_value() {
    assert_linearizable(&history(&[
        put(1, "x", "a", 0, 10),
        put(1, "x", "b", 20, 60),
        get(2, "x", Some("a"), 30, 40),
        get(3, "x", Some("b"), 30, 50),
    ]));
}

#[test]
fn a_stale_read_after_an_acknowledged_write_is_a_violation() {
    let v = assert_violation_on(
        &history(&[put(1, "x", "a", 0, 10), put(1, "x", "b", 20, 30), get(2, "x", Some("a"), 40, 50)]),
        "x",
    );
    assert_eq!(v.stuck.action, Action::Get(Some("a".to_string())));
    assert_eq!((v.linearized, v.state.as_deref()), (2, Some("b")));
    assert_eq!(v.window.len(), 3);
    let shown = v.to_string();
    assert!(shown.contains("key \"x\"") && shown.contains("get -> \"a\""), "{shown}");
}

#[test]
fn a_read_of_a_value_never_written_is_a_violation() {
    assert_violation_on(&history(&[put(1, "x", "a", 0, 10), get(2, "x", Some("zzz"), 20, 30)]), "x");
}

#[test]
fn a_lost_write_is_a_violation() {
    assert_violation_on(&history(&[put(1, "x", "a", 0, 10), get(2, "x", None, 20, 30)]), "x");
}

#[test]
fn two_readers_seeing_two_writes_in_opposite_orders_is_a_violation() {
    assert_violation_on(
        &history(&[
            put(1, "x", "a", 0, 100),
            put(2, "x", "b", 0, 100),
            get(3, "x", Some("a"), 10, 20),
            get(3, "x", Some("b"), 30, 40),
            get(4, "x", Some("b"), 10, 20),
            get(4, "x", Some("a"), 30, 40),
        ]),
        "x",
    );
}

#[test]
fn two_readers_seeing_two_writes_in_the_same_order_is_linearizable() {
    assert_linearizable(&history(&[
        put(1, "x", "a", 0, 100),
        put(2, "x", "b", 0, 100),
        get(3, "x", Some("a"), 10, 20),
        get(3, "x", Some("b"), 30, 40),
        get(4, "x", Some("a"), 10, 20),
        get(4, "x", Some("b"), 30, 40),
    ]));
}

#[test]
fn a_deleted_key_coming_back_is_a_violation() {
    assert_violation_on(&history(&[put(1, "x", "a", 0, 10), del(1, "x", 20, 30), get(2, "x", Some("a"), 40, 50)]), "x");
}

#[test]
fn an_unknown_write_may_take_effect_long_after_it_returned() {
    let mut events = history(&[get(2, "x", None, 20, 30), get(2, "x", Some("a"), 40, 50)]);
    events.extend([(1, "invoke", "put", "x", Some("a"), 0), (1, "info", "put", "x", Some("a"), 10)]);
    assert_linearizable(&events);
}

#[test]
fn an_unknown_write_may_never_take_effect() {
    let mut events = history(&[get(2, "x", None, 20, 30), get(2, "x", None, 40, 50)]);
    events.extend([(1, "invoke", "put", "x", Some("a"), 0), (1, "info", "put", "x", Some("a"), 10)]);
    assert_linearizable(&events);
}

#[test]
fn an_unknown_write_cannot_take_effect_before_its_invocation() {
    let mut events = history(&[get(2, "x", Some("a"), 0, 10)]);
    events.extend([(1, "invoke", "put", "x", Some("a"), 20), (1, "info", "put", "x", Some("a"), 30)]);
    assert_violation_on(&events, "x");
}

#[test]
fn an_unknown_write_once_seen_cannot_be_unseen() {
    let mut events = history(&[get(2, "x", Some("a"), 10, 20), get(2, "x", None, 30, 40)]);
    events.extend([(1, "invoke", "put", "x", Some("a"), 0), (1, "info", "put", "x", Some("a"), 5)]);
    assert_violation_on(&events, "x");
}

#[test]
fn an_unknown_delete_may_take_effect_late() {
    let mut events = history(&[put(1, "x", "a", 0, 10), get(2, "x", Some("a"), 40, 50), get(2, "x", None, 60, 70)]);
    events.extend([(3, "invoke", "del", "x", None, 20), (3, "info", "del", "x", None, 30)]);
    assert_linearizable(&events);
}

#[test]
fn a_failed_write_never_takes_effect() {
    let mut events = history(&[get(2, "x", Some("a"), 20, 30)]);
    events.extend([(1, "invoke", "put", "x", Some("a"), 0), (1, "fail", "put", "x", Some("a"), 10)]);
    assert_violation_on(&events, "x");
}

#[test]
fn a_never_completed_write_is_of_unknown_outcome_and_unknown_reads_are_dropped() {
    let mut events = history(&[get(2, "x", Some("a"), 20, 30)]);
    events.extend([
        (1, "invoke", "put", "x", Some("a"), 0),
        (3, "invoke", "get", "x", None, 1),
        (3, "info", "get", "x", None, 40),
    ]);
    let history = parse(Path::new("h"), &text(&events)).expect("parses");
    assert_eq!((history.operations.len(), history.dropped), (2, 1));
    assert_eq!(check(&history, DEFAULT_MAX_STATES).verdict, Verdict::Linearizable);
}

#[test]
fn equal_timestamps_count_as_concurrent() {
    assert_linearizable(&history(&[put(1, "x", "a", 0, 10), get(2, "x", None, 10, 20)]));
}

#[test]
fn keys_are_checked_independently_and_the_bad_one_is_named() {
    assert_violation_on(
        &history(&[
            put(1, "x", "a", 0, 10),
            put(1, "y", "b", 20, 30),
            get(2, "x", Some("a"), 40, 50),
            get(2, "y", None, 60, 70),
        ]),
        "y",
    );
}

#[test]
fn lines_out_of_order_are_ordered_by_time() {
    let mut events = history(&[put(1, "x", "a", 0, 10), get(2, "x", Some("a"), 20, 30), del(1, "x", 40, 50)]);
    events.reverse();
    assert_linearizable(&events);
}

#[test]
fn a_search_past_its_budget_is_undecided_not_guessed() {
    // Thirty overlapping acknowledged writes, then a read of a value none of them wrote: proving
    // that means trying the writes in every order that leaves a different set and last value.
    let values: Vec<String> = (0..30).map(|i| format!("v{i}")).collect();
    let mut events: Vec<Event> =
        values.iter().enumerate().flat_map(|(i, v)| put(i as u64 + 10, "x", v, i as u64, 1000 + i as u64)).collect();
    events.extend(get(1, "x", Some("nobody"), 2000, 2010));
    let history = parse(Path::new("h"), &text(&events)).expect("parses");
    match check(&history, 1000).verdict {
        Verdict::Undecided { key, states, .. } => assert_eq!((key.as_str(), states > 1000), ("x", true)),
        other => panic!("expected undecided, got {other:?}"),
    }
}

#[test]
fn unknown_writes_nobody_read_do_not_slow_the_search() {
    // Forty writes of unknown outcome that no read observed: they can never matter, so the
    // violation is found without trying their 2^40 subsets.
    let values: Vec<String> = (0..40).map(|i| format!("v{i}")).collect();
    let mut events: Vec<Event> = values
        .iter()
        .enumerate()
        .flat_map(|(i, v)| {
            let p = i as u64 + 10;
            [(p, "invoke", "put", "x", Some(v.as_str()), i as u64), (p, "info", "put", "x", Some(v.as_str()), 100)]
        })
        .collect();
    events.extend(get(1, "x", Some("nobody"), 200, 210));
    let history = parse(Path::new("h"), &text(&events)).expect("parses");
    assert!(matches!(check(&history, 1000).verdict, Verdict::NotLinearizable(_)));
}

#[test]
fn many_unknown_deletes_are_tried_in_invocation_order_only() {
    // Forty deletes of unknown outcome and reads that alternate between a value and a missing
    // key: the deletes are interchangeable, so the search stays small.
    let mut events: Vec<Event> = Vec::new();
    for i in 0..40u64 {
        events.extend([(100 + i, "invoke", "del", "x", None, i), (100 + i, "info", "del", "x", None, 50)]);
    }
    let values: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
    for (i, v) in values.iter().enumerate() {
        let t = 1000 + 100 * i as u64;
        events.extend(put(1, "x", v, t, t + 10));
        events.extend(get(2, "x", Some(v), t + 20, t + 30));
        events.extend(get(2, "x", None, t + 40, t + 50));
    }
    events.sort_by_key(|e| e.5);
    let history = parse(Path::new("h"), &text(&events)).expect("parses");
    assert_eq!(check(&history, 10_000).verdict, Verdict::Linearizable);
}

#[test]
fn a_generated_history_of_100k_operations_on_1000_keys_is_linearizable() {
    let shape =
        Shape { processes: 50, ops_per_process: 2000, keys: 1000, info_per_mille: 5, fail_per_mille: 5, seed: 1 };
    let history = parse(Path::new("generated"), &linearizable_history(&shape)).expect("parses");
    let report = check(&history, DEFAULT_MAX_STATES);
    assert_eq!(report.verdict, Verdict::Linearizable);
    assert_eq!(report.keys, 1000);
    assert!(report.operations + report.dropped == 100_000);
}

#[test]
fn a_contended_generated_history_with_unknown_outcomes_is_linearizable() {
    let shape = Shape { processes: 8, ops_per_process: 500, keys: 5, info_per_mille: 20, fail_per_mille: 20, seed: 7 };
    let history = parse(Path::new("contended"), &linearizable_history(&shape)).expect("parses");
    assert_eq!(check(&history, DEFAULT_MAX_STATES).verdict, Verdict::Linearizable);
}

#[test]
fn a_corrupted_read_in_a_generated_history_is_found() {
    let shape = Shape { processes: 8, ops_per_process: 500, keys: 5, info_per_mille: 0, fail_per_mille: 0, seed: 3 };
    let text = linearizable_history(&shape);
    let target = text
        .lines()
        .position(|l| l.contains("\"type\":\"ok\",\"f\":\"get\"") && l.contains("\"value\":\"v"))
        .expect("a read of a value");
    let corrupted: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == target {
                let start = l.find("\"value\":").expect("value");
                let end = l.find(",\"time_ns\"").expect("time");
                format!("{}\"value\":\"never-written\"{}\n", &l[..start], &l[end..])
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let history = parse(Path::new("corrupted"), &corrupted).expect("parses");
    match check(&history, DEFAULT_MAX_STATES).verdict {
        Verdict::NotLinearizable(v) => {
            assert_eq!(v.stuck.action, Action::Get(Some("never-written".to_string())));
            assert_eq!(v.stuck.lines.1, Some(target + 1));
        }
        other => panic!("expected a violation, got {other:?}"),
    }
}

fn parse_error(text: &str) -> (Option<usize>, String) {
    match parse(Path::new("bad.jsonl"), text) {
        Err(Error::BadInput { line, message, .. }) => (line, message),
        other => panic!("expected bad input, got {other:?}"),
    }
}

const PUT_X: &str = r#"{"process":1,"type":"invoke","f":"put","key":"x","value":"a","time_ns":0}"#;

#[test]
fn a_line_that_is_not_json_is_named() {
    let (line, _) = parse_error(&format!("{PUT_X}\n\nnot json\n"));
    assert_eq!(line, Some(3));
}

#[test]
fn an_unknown_event_type_is_named() {
    let bad = r#"{"process":1,"type":"maybe","f":"put","key":"x","value":"a","time_ns":5}"#;
    let (line, message) = parse_error(&format!("{PUT_X}\n{bad}\n"));
    assert_eq!(line, Some(2));
    assert!(message.contains("maybe"), "{message}");
}

#[test]
fn a_missing_field_is_named() {
    let (line, message) = parse_error(r#"{"process":1,"type":"invoke","f":"get","key":"x","value":null}"#);
    assert_eq!(line, Some(1));
    assert!(message.contains("time_ns"), "{message}");
}

#[test]
fn a_completion_without_an_invocation_is_rejected() {
    let done = r#"{"process":2,"type":"ok","f":"put","key":"x","value":"a","time_ns":5}"#;
    let (line, message) = parse_error(&format!("{PUT_X}\n{done}\n"));
    assert_eq!(line, Some(2));
    assert!(message.contains("process 2"), "{message}");
}

#[test]
fn a_second_invocation_on_a_busy_process_is_rejected() {
    let again = r#"{"process":1,"type":"invoke","f":"get","key":"y","value":null,"time_ns":5}"#;
    let (line, message) = parse_error(&format!("{PUT_X}\n{again}\n"));
    assert_eq!(line, Some(2));
    assert!(message.contains("line 1"), "{message}");
}

#[test]
fn a_completion_of_another_operation_is_rejected() {
    let other = r#"{"process":1,"type":"ok","f":"put","key":"y","value":"a","time_ns":5}"#;
    let (line, _) = parse_error(&format!("{PUT_X}\n{other}\n"));
    assert_eq!(line, Some(2));
}

#[test]
fn a_put_without_its_value_is_rejected() {
    let (line, _) = parse_error(r#"{"process":1,"type":"invoke","f":"put","key":"x","value":null,"time_ns":0}"#);
    assert_eq!(line, Some(1));
}

/// Decides linearizability by trying every order of the operations: slow, obviously right.
fn brute_force(ops: &[analysis::check::Operation]) -> bool {
    fn place(ops: &[analysis::check::Operation], placed: &mut Vec<bool>, state: Option<&str>) -> bool {
        let required_left = ops.iter().zip(placed.iter()).any(|(op, done)| !done && op.ret.is_some());
        if !required_left {
            return true;
        }
        for x in 0..ops.len() {
            let blocked =
                (0..ops.len()).any(|y| !placed[y] && y != x && ops[y].ret.is_some_and(|ret| ret < ops[x].call));
            if placed[x] || blocked {
                continue;
            }
            let next = match &ops[x].action {
                Action::Get(read) if read.as_deref() == state => state,
                Action::Get(_) => continue,
                Action::Put(v) => Some(v.as_str()),
                Action::Del => None,
            };
            placed[x] = true;
            let ok = place(ops, placed, next);
            placed[x] = false;
            if ok {
                return true;
            }
        }
        false
    }
    place(ops, &mut vec![false; ops.len()], None)
}

#[test]
fn the_search_agrees_with_brute_force_on_small_random_histories() {
    let mut rng = common::generate::Lcg::new(42);
    let values = ["a", "b"];
    let (mut linearizable, mut violations) = (0, 0);
    for _ in 0..3000 {
        let mut events: Vec<Event> = Vec::new();
        for process in 0..4u64 {
            let mut t = rng.below(20);
            for _ in 0..1 + rng.below(3) {
                let (f, value) = match rng.below(3) {
                    0 => ("get", None),
                    1 => ("put", Some(values[rng.below(2) as usize])),
                    _ => ("del", None),
                };
                let end = t + 1 + rng.below(30);
                let outcome = match rng.below(10) {
                    0 => "info",
                    1 => "fail",
                    _ => "ok",
                };
                let done = match (f, outcome) {
                    ("get", "ok") => [None, Some("a"), Some("b")][rng.below(3) as usize],
                    _ => value,
                };
                events.push((process, "invoke", f, "x", value, t));
                events.push((process, outcome, f, "x", done, end));
                t = end + rng.below(10);
            }
        }
        let history = parse(Path::new("random"), &text(&events)).expect("parses");
        let expected = brute_force(&history.operations);
        let verdict = check(&history, DEFAULT_MAX_STATES).verdict;
        assert_eq!(verdict == Verdict::Linearizable, expected, "{}{verdict:?}", text(&events));
        if expected {
            linearizable += 1;
        } else {
            violations += 1;
        }
    }
    // Both verdicts are well represented, so the agreement means something.
    assert!(linearizable > 300 && violations > 300, "{linearizable} / {violations}");
}
