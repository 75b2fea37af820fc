//! The nemesis's workload, made of the load harness's own parts: `--clients` closed-loop
//! connections of [`driver`] over a small uniform key space, recording every operation in the
//! history file of `history.rs` (the format `harness run --history` writes). At the end,
//! [`Load::final_reads`] reads every key once more through a fresh client and records those
//! reads in the same history, so the checker sees them.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actors::client::Client;
use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::driver::{self, Connection, Driver};
use crate::error::HarnessError;
use crate::history::{History, ProcessIds};
use crate::keys::KeySpace;
use crate::measure::drain;
use crate::nemesis::config::{NemesisConfig, VALUE_SIZE};
use crate::outcome::{ErrorKind, EventType};
use crate::stats::Tally;
use crate::workload::{OpKind, Workload};

/// Time between two attempts of a final read that failed.
const RETRY: Duration = Duration::from_millis(100);

/// Time the connections get, beyond the request timeout, to finish at the end.
const DRAIN_MARGIN: Duration = Duration::from_secs(1);

/// The running workload.
pub struct Load {
    driver: Rc<Driver>,
    tasks: Vec<JoinHandle<()>>,
    tallies: Vec<Rc<RefCell<Tally>>>,
    stop: watch::Sender<bool>,
    /// When it started: the origin of the history's times.
    pub start: Instant,
}

/// What the final reads found.
#[derive(Debug, Clone, Default)]
pub struct FinalReads {
    /// Every key read, with the value found (`None`: missing).
    pub values: BTreeMap<String, Option<String>>,
    /// Keys no read succeeded on before the deadline.
    pub unread: Vec<String>,
}

impl Load {
    /// Starts one connection on each of `clients` (one per `--clients`); the history goes to
    /// `history`.
    pub fn start(config: &NemesisConfig, clients: Vec<Client>, history: &Path) -> Result<Load, HarnessError> {
        let start = Instant::now();
        let recorder = History::create(history, start)?;
        let (stop, stop_rx) = watch::channel(false);
        let connections = clients.len() as u64;
        let driver = Rc::new(Driver {
            workload: Workload::new(KeySpace::new(config.keys, None), config.write_pct, config.del_pct, VALUE_SIZE),
            history: Some(recorder),
            processes: ProcessIds::new(connections),
            think: config.think(),
            interval: None,
            stop: stop_rx,
        });
        let mut tasks = Vec::new();
        let mut tallies = Vec::new();
        for (id, client) in (0..connections).zip(clients) {
            let conn = Connection::new(id, client, config.seed);
            tallies.push(conn.tally.clone());
            tasks.push(driver::spawn(driver.clone(), conn, start, connections));
        }
        Ok(Load { driver, tasks, tallies, stop, start })
    }

    /// Stops the connections; each finishes the operation it has in flight within
    /// `request_timeout` (plus a margin), or is dropped, leaving its operation unanswered in
    /// the history (outcome unknown).
    pub async fn stop(&mut self, request_timeout: Duration) {
        let _ = self.stop.send(true);
        drain(&mut self.tasks, Some(request_timeout + DRAIN_MARGIN)).await;
    }

    /// Reads every key through `client` until each read succeeds or `deadline` passes,
    /// recording each attempt in the history.
    pub async fn final_reads(&self, client: &Client, deadline: Instant) -> FinalReads {
        let keys = &self.driver.workload.keys;
        let process = self.driver.processes.fresh();
        let mut found = FinalReads::default();
        for index in 0..keys.len() {
            let name = keys.name(index).to_string();
            match self.read_until(client, process, &keys.key(index), &name, deadline).await {
                Some(value) => {
                    found.values.insert(name, value.map(|v| String::from_utf8_lossy(&v).into_owned()));
                }
                None => found.unread.push(name),
            }
        }
        found
    }

    async fn read_until(
        &self,
        client: &Client,
        process: u64,
        key: &Bytes,
        name: &str,
        deadline: Instant,
    ) -> Option<Option<Bytes>> {
        let history = self.driver.history.as_ref()?;
        while Instant::now() < deadline {
            history.record(process, EventType::Invoke, OpKind::Get, name, None, Instant::now());
            let result = client.get(key.clone()).await;
            let done = Instant::now();
            match result {
                Ok(value) => {
                    history.record(process, EventType::Ok, OpKind::Get, name, value.as_deref(), done);
                    return Some(value);
                }
                Err(err) => {
                    tracing::debug!(key = name, %err, "final read failed");
                    history.record(process, EventType::of_error(OpKind::Get, &err), OpKind::Get, name, None, done);
                }
            }
            tokio::time::sleep(RETRY).await;
        }
        None
    }

    /// The workload's failed requests by kind (as in `harness run`'s `summary.json`).
    pub fn errors(&self) -> BTreeMap<&'static str, u64> {
        let mut total = Tally::default();
        for tally in &self.tallies {
            total.add(&tally.borrow());
        }
        ErrorKind::ALL.iter().map(|kind| (kind.name(), total.errors_of(*kind))).collect()
    }

    /// Flushes the history; reports the first error met while recording.
    pub fn finish(&self) -> Result<(), HarnessError> {
        self.driver.history.as_ref().map_or(Ok(()), History::finish)
    }
}
