//! The load itself: one task per connection, each with its own [`Client`] (one TCP
//! connection), its own seeded RNG and its own [`Tally`].
//!
//! - Closed loop: a connection sends one request, waits for its answer (or error), optionally
//!   thinks, and sends the next. Latency runs from send to answer.
//! - Open loop (`--rate`): a connection sends on a fixed timetable whether or not earlier
//!   requests have been answered, and latency runs from the *scheduled* time, so a stall shows
//!   up in the percentiles instead of silently lowering the offered load (no coordinated
//!   omission). The connections' timetables are staggered over one interval.
//!
//! Everything runs on the actix system's single thread: the tallies are `Rc<RefCell<_>>` that
//! the run's once-a-second collector empties; there are no locks.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actors::client::Client;
use actors::Error;
use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::history::{History, ProcessIds};
use crate::outcome::{ErrorKind, EventType};
use crate::stats::Tally;
use crate::workload::{Op, ValueSource, Workload};

/// What every connection shares.
pub struct Driver {
    pub workload: Workload,
    pub history: Option<History>,
    pub processes: ProcessIds,
    /// Pause between operations (closed loop).
    pub think: Duration,
    /// Time between one connection's operations (open loop).
    pub interval: Option<Duration>,
    /// Turns true when the connections must stop sending.
    pub stop: watch::Receiver<bool>,
}

/// One connection's own state.
pub struct Connection {
    pub id: u64,
    pub client: Client,
    pub tally: Rc<RefCell<Tally>>,
    rng: SmallRng,
    values: ValueSource,
}

impl Connection {
    /// Connection `id` of a run seeded with `seed`.
    pub fn new(id: u64, client: Client, seed: u64) -> Connection {
        Connection {
            id,
            client,
            tally: Rc::new(RefCell::new(Tally::default())),
            rng: SmallRng::seed_from_u64(seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            values: ValueSource::new(id),
        }
    }
}

/// Starts `conn`'s task on the current actix system; `start` is when the load begins and
/// `of` the number of connections (to stagger open-loop timetables).
pub fn spawn(driver: Rc<Driver>, conn: Connection, start: Instant, of: u64) -> JoinHandle<()> {
    match driver.interval {
        None => actix_rt::spawn(closed_loop(driver, conn)),
        Some(interval) => {
            let phase = interval.mul_f64(conn.id as f64 / of.max(1) as f64);
            actix_rt::spawn(open_loop(driver, conn, interval, start + phase))
        }
    }
}

async fn closed_loop(driver: Rc<Driver>, mut conn: Connection) {
    let mut stop = driver.stop.clone();
    let mut process = conn.id;
    while !stopped(&stop) {
        let op = driver.workload.next_op(&mut conn.rng, &mut conn.values);
        let sent = Instant::now();
        driver.invoke(process, &op, sent);
        let result = execute(&conn.client, &driver.workload, &op).await;
        let done = Instant::now();
        if driver.complete(&conn.tally, process, &op, &result, done - sent, done) {
            process = driver.processes.fresh();
        }
        if !driver.think.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(driver.think) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

async fn open_loop(driver: Rc<Driver>, mut conn: Connection, interval: Duration, first: Instant) {
    let mut stop = driver.stop.clone();
    let mut next = first;
    let mut in_flight = FuturesUnordered::new();
    let mut idle: Vec<u64> = vec![conn.id];
    while !stopped(&stop) {
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {
                let op = driver.workload.next_op(&mut conn.rng, &mut conn.values);
                let process = idle.pop().unwrap_or_else(|| driver.processes.fresh());
                driver.invoke(process, &op, Instant::now());
                in_flight.push(scheduled_call(driver.clone(), conn.client.clone(), op, process, next));
                next += interval;
            }
            Some((op, process, scheduled, result)) = in_flight.next(), if !in_flight.is_empty() => {
                let done = Instant::now();
                if !driver.complete(&conn.tally, process, &op, &result, done - scheduled, done) {
                    idle.push(process);
                }
            }
            _ = stop.changed() => {}
        }
    }
    while let Some((op, process, scheduled, result)) = in_flight.next().await {
        let done = Instant::now();
        driver.complete(&conn.tally, process, &op, &result, done - scheduled, done);
    }
}

/// True once the stop flag is set, or its sender is gone.
fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

type Answer = Result<Option<Bytes>, Error>;

async fn scheduled_call(
    driver: Rc<Driver>,
    client: Client,
    op: Op,
    process: u64,
    scheduled: Instant,
) -> (Op, u64, Instant, Answer) {
    let result = execute(&client, &driver.workload, &op).await;
    (op, process, scheduled, result)
}

/// Sends `op`; a GET answers the value read, a write `None`.
async fn execute(client: &Client, workload: &Workload, op: &Op) -> Answer {
    let key = workload.keys.key(op.key());
    match op {
        Op::Get { .. } => client.get(key).await,
        Op::Put { value, .. } => client.put(key, value.clone()).await.map(|_| None),
        Op::Del { .. } => client.del(key).await.map(|_| None),
    }
}

impl Driver {
    fn invoke(&self, process: u64, op: &Op, at: Instant) {
        if let Some(history) = &self.history {
            let key = self.workload.keys.name(op.key());
            let value = op.written().map(|v| &v[..]);
            history.record(process, EventType::Invoke, op.kind(), key, value, at);
        }
    }

    /// Counts the answer and records it in the history. Returns true when the operation's
    /// outcome is unknown, so its process must not be used again.
    fn complete(
        &self,
        tally: &RefCell<Tally>,
        process: u64,
        op: &Op,
        result: &Answer,
        latency: Duration,
        at: Instant,
    ) -> bool {
        let kind = op.kind();
        let (event, value) = match result {
            Ok(read) => {
                tally.borrow_mut().record_ok(kind.is_write(), latency);
                let value = match op {
                    Op::Get { .. } => read.as_deref(),
                    Op::Put { value, .. } => Some(&value[..]),
                    Op::Del { .. } => None,
                };
                (EventType::Ok, value)
            }
            Err(err) => {
                tracing::debug!(op = kind.name(), %err, "request failed");
                tally.borrow_mut().record_error(ErrorKind::of(err));
                (EventType::of_error(kind, err), op.written().map(|v| &v[..]))
            }
        };
        if let Some(history) = &self.history {
            let key = self.workload.keys.name(op.key());
            history.record(process, event, kind, key, value, at);
        }
        event == EventType::Info
    }
}
