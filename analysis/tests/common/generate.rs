//! Generated histories that are linearizable by construction: every operation gets a
//! linearization point inside its interval (or, for unknown outcomes, any time after its
//! invocation, or none), reads return what a register applied in that order holds.

use std::collections::HashMap;
use std::fmt::Write;

/// A small deterministic generator (64-bit LCG, high bits).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407))
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// How a generated history looks.
pub struct Shape {
    pub processes: u64,
    pub ops_per_process: u64,
    pub keys: u64,
    /// Out of 1000 operations, how many end `info` and how many `fail`.
    pub info_per_mille: u64,
    pub fail_per_mille: u64,
    pub seed: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum F {
    Get,
    Put,
    Del,
}

#[derive(Clone, Copy, PartialEq)]
enum End {
    Ok,
    Fail,
    Info,
}

struct Op {
    process: u64,
    f: F,
    key: u64,
    value: u64,
    call: u64,
    ret: u64,
    /// When it takes effect; `None`: never.
    point: Option<u64>,
    end: End,
    read: Option<u64>,
}

/// JSON lines of a linearizable history of `shape`.
pub fn linearizable_history(shape: &Shape) -> String {
    let mut rng = Lcg::new(shape.seed);
    let mut ops = Vec::new();
    let mut next_value = 0;
    for process in 0..shape.processes {
        let mut t = rng.below(100);
        for _ in 0..shape.ops_per_process {
            let f = match rng.below(100) {
                0..=49 => F::Get,
                50..=84 => F::Put,
                _ => F::Del,
            };
            let duration = 1 + rng.below(1000);
            let (call, ret) = (t, t + duration);
            let roll = rng.below(1000);
            let end = if roll < shape.info_per_mille {
                End::Info
            } else if roll < shape.info_per_mille + shape.fail_per_mille {
                End::Fail
            } else {
                End::Ok
            };
            let point = match end {
                End::Ok => Some(call + rng.below(duration + 1)),
                End::Fail => None,
                End::Info if rng.below(2) == 0 => Some(call + rng.below(20 * duration)),
                End::Info => None,
            };
            next_value += 1;
            ops.push(Op {
                process,
                f,
                key: rng.below(shape.keys),
                value: next_value,
                call,
                ret,
                point,
                end,
                read: None,
            });
            t = ret + rng.below(50);
        }
    }
    let mut order: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].point.is_some()).collect();
    order.sort_by_key(|&i| (ops[i].point, i));
    let mut register: HashMap<u64, u64> = HashMap::new();
    for i in order {
        let op = &mut ops[i];
        match op.f {
            F::Get => op.read = register.get(&op.key).copied(),
            F::Put => {
                register.insert(op.key, op.value);
            }
            F::Del => {
                register.remove(&op.key);
            }
        }
    }
    let mut events: Vec<(u64, usize, String)> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        let f = match op.f {
            F::Get => "get",
            F::Put => "put",
            F::Del => "del",
        };
        let written = match op.f {
            F::Put => format!("\"v{}\"", op.value),
            F::Get | F::Del => "null".to_string(),
        };
        let line = |kind: &str, value: &str, time: u64| {
            format!(
                "{{\"process\":{},\"type\":\"{kind}\",\"f\":\"{f}\",\"key\":\"key{}\",\"value\":{value},\"time_ns\":{time}}}",
                op.process, op.key
            )
        };
        events.push((op.call, 2 * i, line("invoke", &written, op.call)));
        let (kind, value) = match (op.end, op.f) {
            (End::Ok, F::Get) => ("ok", op.read.map_or("null".to_string(), |v| format!("\"v{v}\""))),
            (End::Ok, F::Put | F::Del) => ("ok", written.clone()),
            (End::Fail, _) => ("fail", written.clone()),
            (End::Info, _) => ("info", written.clone()),
        };
        events.push((op.ret, 2 * i + 1, line(kind, &value, op.ret)));
    }
    events.sort_by_key(|(t, i, _)| (*t, *i));
    let mut text = String::new();
    for (_, _, line) in events {
        let _ = writeln!(text, "{line}");
    }
    text
}
