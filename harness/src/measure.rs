//! The measured load: start the connections, collect their tallies once a second into a row
//! (warmup seconds are collected and dropped), then stop the connections.
//!
//! Seconds are cut on an absolute schedule (load start + k s); a late tick makes that second
//! longer and the next one shorter, and throughput divides by each second's actual length.
//! At the end the connections finish the request they have in flight (so the history gets
//! its outcome) within the request timeout; those late answers are not counted. After a
//! signal they are dropped at once.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actors::client::Client;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::config::RunConfig;
use crate::cpu::CpuSample;
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
    /// Microseconds of CPU per completed operation, by process (see `cpu.rs`).
    pub cpu_us_per_op: BTreeMap<String, f64>,
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
    let processes: Vec<(String, u32)> =
        cluster.info().nodes.into_iter().filter_map(|node| Some((node.name, node.pid?))).collect();
    let clocks = Clocks { start, processes: &processes };
    let ticked = tick(config, &tallies, clocks, &slave_count, &mut files, &progress, interrupt).await;
    progress.finish();
    let _ = stop_tx.send(true);
    let graceful = matches!(ticked, Ok(Ticked { interrupted: false, .. }));
    drain(&mut tasks, graceful.then(|| config.request_timeout() + DRAIN_MARGIN)).await;
    let recorded = driver.history.as_ref().map(History::finish).transpose();
    let Ticked { tally, elapsed, interrupted, cpu_us_per_op } = ticked?;
    recorded?;
    Ok(Measurement { tally, elapsed, interrupted, cpu_us_per_op })
}

/// When the run started, and the processes whose CPU time it samples.
#[derive(Clone, Copy)]
struct Clocks<'a> {
    start: Instant,
    processes: &'a [(String, u32)],
}

/// What the collector adds up.
struct Ticked {
    tally: Tally,
    elapsed: Duration,
    interrupted: bool,
    cpu_us_per_op: BTreeMap<String, f64>,
}

/// The once-a-second collector. Returns the measured total, its length, whether a signal cut
/// it short, and the CPU each process used per operation over the measured seconds.
async fn tick(
    config: &RunConfig,
    tallies: &[Rc<RefCell<Tally>>],
    clocks: Clocks<'_>,
    slaves: &Cell<u32>,
    files: &mut MetricsFiles,
    progress: &Progress,
    interrupt: &Interrupt,
) -> Result<Ticked, HarnessError> {
    let Clocks { start, processes } = clocks;
    let mut total = Tally::default();
    let mut elapsed = Duration::ZERO;
    let mut last = start;
    let mut cpu_start = CpuSample::take(processes);
    let ticked = |tally: Tally, elapsed, interrupted, cpu_start: &CpuSample| {
        let cpu_us_per_op = CpuSample::take(processes).per_op_since(cpu_start, tally.successes());
        Ok(Ticked { tally, elapsed, interrupted, cpu_us_per_op })
    };
    for k in 1..=config.total_seconds() {
        let due = start + Duration::from_secs(k);
        tokio::select! {
            _ = tokio::time::sleep_until(due.into()) => {}
            _ = interrupt.wait() => return ticked(total, elapsed, true, &cpu_start),
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
        } else if k == config.warmup_s {
            cpu_start = CpuSample::take(processes);
        }
    }
    ticked(total, elapsed, false, &cpu_start)
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
