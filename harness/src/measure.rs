//! The measured load: start the connections, collect their tallies once a second into a row
//! (warmup seconds are collected and dropped), then stop the connections.
//!
//! Seconds are cut on an absolute schedule (load start + k s); a late tick makes that second
//! longer and the next one shorter, and throughput divides by each second's actual length.
//! At the end the connections finish the request they have in flight (so the history gets
//! its outcome) within the request timeout; those late answers are not counted. After a
//! signal they are dropped at once.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actors::client::Client;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::config::RunConfig;
use crate::driver::{self, Connection, Driver};
use crate::error::HarnessError;
use crate::history::{History, ProcessIds};
use crate::keys::KeySpace;
use crate::metrics::{second_row, MetricsFiles};
use crate::progress::Progress;
use crate::signal::Interrupt;
use crate::stats::Tally;
use crate::workload::Workload;

/// Time the connections get, beyond the request timeout, to finish at the end.
const DRAIN_MARGIN: Duration = Duration::from_secs(1);

/// What the measured seconds add up to.
pub struct Measurement {
    pub tally: Tally,
    /// The measured seconds' total length.
    pub elapsed: Duration,
    pub interrupted: bool,
}

/// Runs the load of `config` against `cluster`, writing the per-second files into `out`.
/// `slaves` is the slave count the rows report; a poller keeps it current.
pub async fn measure(
    cluster: &Cluster,
    config: &RunConfig,
    slaves: u32,
    out: &Path,
    label: &str,
    interrupt: &Interrupt,
) -> Result<Measurement, HarnessError> {
    let mut files = MetricsFiles::create(out)?;
    let start = Instant::now();
    let history = match &config.history {
        Some(path) => Some(History::create(path, start)?),
        None => None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let driver = Rc::new(Driver {
        workload: Workload::new(
            KeySpace::new(config.keys, config.zipf),
            config.write_pct,
            config.del_pct,
            config.value_size,
        ),
        history,
        processes: ProcessIds::new(config.connections()),
        think: config.think(),
        interval: config.open_loop_interval(),
        stop: stop_rx.clone(),
    });
    let client_config = cluster.client_config(config.request_timeout());
    let conns = config.connections();
    let mut tallies = Vec::new();
    let mut tasks = Vec::new();
    for id in 0..conns {
        let conn = Connection::new(id, Client::start(client_config.clone()), config.seed);
        tallies.push(conn.tally.clone());
        tasks.push(driver::spawn(driver.clone(), conn, start, conns));
    }
    let slave_count = Rc::new(Cell::new(slaves));
    tasks.push(actix_rt::spawn(poll_slave_count(
        Client::start(cluster.client_config(Duration::from_secs(1))),
        slave_count.clone(),
        stop_rx,
    )));

    let progress = Progress::new(label, config.warmup_s, config.duration_s);
    let ticked = tick(config, &tallies, start, &slave_count, &mut files, &progress, interrupt).await;
    progress.finish();
    let _ = stop_tx.send(true);
    let graceful = matches!(ticked, Ok((_, _, false)));
    drain(&mut tasks, graceful.then(|| config.request_timeout() + DRAIN_MARGIN)).await;
    let recorded = driver.history.as_ref().map(History::finish).transpose();
    let (tally, elapsed, interrupted) = ticked?;
    recorded?;
    Ok(Measurement { tally, elapsed, interrupted })
}

/// The once-a-second collector. Returns the measured total, its length, and whether a
/// signal cut it short.
async fn tick(
    config: &RunConfig,
    tallies: &[Rc<RefCell<Tally>>],
    start: Instant,
    slaves: &Cell<u32>,
    files: &mut MetricsFiles,
    progress: &Progress,
    interrupt: &Interrupt,
) -> Result<(Tally, Duration, bool), HarnessError> {
    let mut total = Tally::default();
    let mut elapsed = Duration::ZERO;
    let mut last = start;
    for k in 1..=config.total_seconds() {
        let due = start + Duration::from_secs(k);
        tokio::select! {
            _ = tokio::time::sleep_until(due.into()) => {}
            _ = interrupt.wait() => return Ok((total, elapsed, true)),
        }
        let now = Instant::now();
        let length = now - last;
        last = now;
        let mut second = Tally::default();
        for tally in tallies {
            second.absorb(&mut tally.borrow_mut());
        }
        progress.second(k, &second, length);
        if k > config.warmup_s {
            let n = k - config.warmup_s;
            files.append(&second_row(n, config.clients, slaves.get(), &second, length))?;
            total.absorb(&mut second);
            elapsed += length;
        }
    }
    Ok((total, elapsed, false))
}

/// Waits up to `grace` for the tasks to end, then aborts those still running.
pub(crate) async fn drain(tasks: &mut [JoinHandle<()>], grace: Option<Duration>) {
    if let Some(grace) = grace {
        let all = async {
            for task in tasks.iter_mut() {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("some requests were still unanswered after {grace:?}; dropping them");
        }
    }
    for task in tasks.iter() {
        task.abort();
    }
}

/// Keeps `count` at the number of slaves the master reports, once a second.
async fn poll_slave_count(probe: Client, count: Rc<Cell<u32>>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
        if let Ok(status) = probe.status().await {
            count.set(u32::try_from(status.slaves.len()).unwrap_or(u32::MAX));
        }
    }
}
