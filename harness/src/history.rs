//! Recording a history for the linearizability checker: one JSON object per line,
//!
//! ```text
//! {"process":3,"type":"invoke","f":"put","key":"key7","value":"v3-12-....","time_ns":1200345}
//! {"process":3,"type":"ok","f":"put","key":"key7","value":"v3-12-....","time_ns":1450991}
//! ```
//!
//! `time_ns` is monotonic, in nanoseconds since the run started. A put carries the value it
//! writes on both lines; a get's invoke has `null` and its `ok` the value read (`null` for a
//! missing key); a del has `null`. `fail` means the operation certainly did not take effect,
//! `info` that its outcome is unknown.
//!
//! Processes: each process has at most one operation open at a time. A connection starts as
//! process `<connection id>`; after an `info` it continues as a fresh process (ids from the
//! number of connections up), because the unknown operation may still take effect while the
//! connection goes on. In open-loop runs a connection has several operations in flight and
//! takes one process per operation in flight.
//!
//! Lines go through a buffer on the run's thread; the first write error stops the recording
//! and is reported when the run ends.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::error::HarnessError;
use crate::outcome::EventType;
use crate::workload::OpKind;

/// Bytes buffered before a write to the file.
const BUFFER: usize = 256 * 1024;

#[derive(Serialize)]
struct Event<'a> {
    process: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    f: &'static str,
    key: &'a str,
    value: Option<&'a str>,
    time_ns: u64,
}

/// An open history file.
pub struct History {
    path: PathBuf,
    start: Instant,
    out: RefCell<Option<BufWriter<File>>>,
    error: RefCell<Option<std::io::Error>>,
}

impl History {
    /// Creates (truncates) `path`; times are counted from `start`.
    pub fn create(path: &Path, start: Instant) -> Result<History, HarnessError> {
        let file = File::create(path).map_err(HarnessError::io(path))?;
        Ok(History {
            path: path.to_path_buf(),
            start,
            out: RefCell::new(Some(BufWriter::with_capacity(BUFFER, file))),
            error: RefCell::new(None),
        })
    }

    /// Appends one line.
    pub fn record(&self, process: u64, kind: EventType, op: OpKind, key: &str, value: Option<&[u8]>, at: Instant) {
        let mut out = self.out.borrow_mut();
        let Some(writer) = out.as_mut() else { return };
        let lossy;
        let value = match value.map(std::str::from_utf8) {
            None => None,
            Some(Ok(text)) => Some(text),
            Some(Err(_)) => {
                lossy = String::from_utf8_lossy(value.unwrap_or_default()).into_owned();
                Some(lossy.as_str())
            }
        };
        let event = Event {
            process,
            kind: kind.name(),
            f: op.name(),
            key,
            value,
            time_ns: u64::try_from(at.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX),
        };
        let written = serde_json::to_writer(&mut *writer, &event)
            .map_err(std::io::Error::from)
            .and_then(|()| writer.write_all(b"\n"));
        if let Err(err) = written {
            *out = None;
            *self.error.borrow_mut() = Some(err);
        }
    }

    /// Flushes the file; reports the first error met while recording.
    pub fn finish(&self) -> Result<(), HarnessError> {
        if let Some(mut writer) = self.out.borrow_mut().take() {
            writer.flush().map_err(HarnessError::io(&self.path))?;
        }
        match self.error.borrow_mut().take() {
            Some(err) => Err(HarnessError::io(&self.path)(err)),
            None => Ok(()),
        }
    }
}

/// Hands out process ids beyond the connections' own.
pub struct ProcessIds {
    next: Cell<u64>,
}

impl ProcessIds {
    /// Fresh ids start at `first` (the number of connections).
    pub fn new(first: u64) -> ProcessIds {
        ProcessIds { next: Cell::new(first) }
    }

    pub fn fresh(&self) -> u64 {
        let id = self.next.get();
        self.next.set(id + 1);
        id
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn lines_follow_the_documented_format() {
        let dir = std::env::temp_dir().join(format!("harness-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("h.jsonl");
        let start = Instant::now();
        let history = History::create(&path, start).expect("create");
        let later = start + Duration::from_micros(1500);
        history.record(2, EventType::Invoke, OpKind::Get, "key1", None, start);
        history.record(2, EventType::Ok, OpKind::Get, "key1", Some(b"v\"1"), later);
        history.record(5, EventType::Info, OpKind::Put, "key2", Some(&[0xff]), later);
        history.finish().expect("finish");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
        assert_eq!(
            lines[0],
            serde_json::json!({"process": 2, "type": "invoke", "f": "get", "key": "key1",
                               "value": null, "time_ns": 0})
        );
        assert_eq!(lines[1]["value"], "v\"1");
        assert_eq!(lines[1]["time_ns"], 1_500_000);
        assert_eq!(lines[2]["type"], "info");
        assert_eq!(lines[2]["value"], "\u{fffd}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn fresh_process_ids_count_up_from_the_first() {
        let ids = ProcessIds::new(10);
        assert_eq!((ids.fresh(), ids.fresh()), (10, 11));
    }
}
