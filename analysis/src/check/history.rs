//! Reading a history file: JSON lines of invocations and completions, paired per process into
//! operations.
//!
//! Events are ordered by `time_ns` (ties keep file order) before pairing, so a file whose lines
//! are slightly out of order still pairs correctly. An invocation with no completion by the end
//! of the history is treated like `info`: its outcome is unknown.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{read_file, Error, Result};

/// The operation a line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Func {
    Get,
    Put,
    Del,
}

/// What a line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// One line of the file.
#[derive(Debug, Clone, Deserialize)]
struct Event {
    process: u64,
    #[serde(rename = "type")]
    kind: EventType,
    f: Func,
    key: String,
    #[serde(default)]
    value: Option<String>,
    time_ns: u64,
}

/// What an operation did to, or saw in, its key's register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Read this value (`None`: the key was missing).
    Get(Option<String>),
    Put(String),
    Del,
}

/// A completed (or possibly completed) operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub process: u64,
    pub key: String,
    pub action: Action,
    /// Invocation time.
    pub call: u64,
    /// Completion time; `None` when the outcome is unknown (`info`, or never completed).
    pub ret: Option<u64>,
    /// Lines of the invocation and, when there is one, of the completion.
    pub lines: (usize, Option<usize>),
}

/// An invocation waiting for its completion.
struct Pending {
    event: Event,
    line: usize,
}

/// The operations of a history, in the order their completions were read.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub operations: Vec<Operation>,
    /// `fail` operations and `info` gets, which cannot constrain the search.
    pub dropped: usize,
}

/// Reads and pairs the history in `path`.
pub fn load(path: &Path) -> Result<History> {
    parse(path, &read_file(path)?)
}

/// Parses history text; `path` only names the file in errors.
pub fn parse(path: &Path, text: &str) -> Result<History> {
    let mut events = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let event: Event = serde_json::from_str(raw).map_err(|e| Error::json_at(path, i, &e))?;
        events.push((i + 1, event));
    }
    events.sort_by_key(|(line, e)| (e.time_ns, *line));
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut history = History::default();
    for (line, event) in events {
        let completion = match event.kind {
            EventType::Invoke => {
                invoke(path, &mut pending, line, event)?;
                continue;
            }
            EventType::Ok => Completion::Ok,
            EventType::Fail => Completion::Fail,
            EventType::Info => Completion::Info,
        };
        let call = pending.remove(&event.process).ok_or_else(|| {
            let what = format!("process {} completes a {:?}", event.process, event.f);
            Error::at_line(path, line, format!("{what} with no invocation outstanding before it"))
        })?;
        match complete(path, call, line, event, completion)? {
            Some(op) => history.operations.push(op),
            None => history.dropped += 1,
        }
    }
    let mut open: Vec<Pending> = pending.into_values().collect();
    open.sort_by_key(|p| p.line);
    for p in open {
        match unknown_outcome(p.event, p.line, None) {
            Some(op) => history.operations.push(op),
            None => history.dropped += 1,
        }
    }
    Ok(history)
}

fn invoke(path: &Path, pending: &mut HashMap<u64, Pending>, line: usize, event: Event) -> Result<()> {
    if event.f == Func::Put && event.value.is_none() {
        return Err(Error::at_line(path, line, "a put invocation needs the value it writes"));
    }
    if let Some(other) = pending.get(&event.process) {
        return Err(Error::at_line(
            path,
            line,
            format!(
                "process {} invokes again while its invocation on line {} is outstanding",
                event.process, other.line
            ),
        ));
    }
    pending.insert(event.process, Pending { event, line });
    Ok(())
}

/// How an invocation ended.
#[derive(Debug, Clone, Copy)]
enum Completion {
    Ok,
    Fail,
    Info,
}

/// Pairs a completion with its invocation; `None` for operations that cannot matter.
fn complete(path: &Path, call: Pending, line: usize, done: Event, completion: Completion) -> Result<Option<Operation>> {
    let inv = &call.event;
    if done.f != inv.f || done.key != inv.key {
        return Err(Error::at_line(
            path,
            line,
            format!(
                "process {} completes {:?} on key {:?} but invoked {:?} on key {:?} at line {}",
                done.process, done.f, done.key, inv.f, inv.key, call.line
            ),
        ));
    }
    if inv.f == Func::Put && done.value.is_some() && done.value != inv.value {
        return Err(Error::at_line(
            path,
            line,
            format!("put completes with value {:?} but line {} wrote {:?}", done.value, call.line, inv.value),
        ));
    }
    Ok(match completion {
        Completion::Fail => None,
        Completion::Info => unknown_outcome(call.event, call.line, Some(line)),
        Completion::Ok => Some(Operation {
            process: inv.process,
            key: inv.key.clone(),
            action: action(inv, done.value),
            call: inv.time_ns,
            ret: Some(done.time_ns),
            lines: (call.line, Some(line)),
        }),
    })
}

/// An operation that may or may not have taken effect; gets of unknown outcome constrain
/// nothing and are dropped.
fn unknown_outcome(inv: Event, line: usize, done_line: Option<usize>) -> Option<Operation> {
    match inv.f {
        Func::Get => None,
        Func::Put | Func::Del => Some(Operation {
            process: inv.process,
            action: action(&inv, None),
            key: inv.key,
            call: inv.time_ns,
            ret: None,
            lines: (line, done_line),
        }),
    }
}

fn action(inv: &Event, read: Option<String>) -> Action {
    match inv.f {
        Func::Get => Action::Get(read),
        Func::Put => Action::Put(inv.value.clone().unwrap_or_default()),
        Func::Del => Action::Del,
    }
}
