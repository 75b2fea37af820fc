//! One nemesis run from start to end: start the cluster with its proxies, run the workload
//! while faults come on schedule, heal everything, wait for the cluster to serve, read every
//! key, stop every node, check the history, and report. Every node is stopped whether the run
//! passed, found a violation, failed, or was interrupted; the data directories are kept unless
//! the run passed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::error::HarnessError;
use crate::nemesis::conduct::{conduct, most_active, Composed, Skipped};
use crate::nemesis::config::NemesisConfig;
use crate::nemesis::fault::Schedule;
use crate::nemesis::inject::{inject, FaultRecord, Stage};
use crate::nemesis::ledger::Ledger;
use crate::nemesis::load::{FinalReads, Load};
use crate::nemesis::monitor::{EpochSeen, Monitor};
use crate::nemesis::preload;
use crate::nemesis::report::{NemesisSummary, OpCounts};
use crate::nemesis::topology::{describe, Topology};
use crate::nemesis::verdict::{judge, Recovery, EXIT_PASS};
use crate::signal::Interrupt;

/// The history file in the run's folder.
pub const HISTORY: &str = "history.jsonl";

/// Time between two status requests while waiting for the cluster to be whole.
const SETTLE_POLL: Duration = Duration::from_millis(100);

/// What a run ends with: its summary and the exit code it asks for.
pub struct Outcome {
    pub summary: NemesisSummary,
    pub exit_code: i32,
}

/// What happened while the cluster ran.
struct Exercised {
    interrupted: bool,
    elapsed: Duration,
    faults: Vec<FaultRecord>,
    /// Faults of a `--compose` plan that could not start.
    skipped: Vec<Skipped>,
    /// Nodes that did not come back, or exited by themselves.
    node_problems: Vec<String>,
    serving_again: Result<Duration, String>,
    finals: FinalReads,
    /// What reading back a sample of the preloaded keys found.
    preloaded: preload::Checked,
    errors: BTreeMap<&'static str, u64>,
    takeovers: usize,
    epochs: Vec<EpochSeen>,
}

/// Carries out a run on a fresh actix system (so nothing of it outlives the run).
pub fn execute(config: NemesisConfig) -> Result<Outcome, HarnessError> {
    actix_rt::System::new().block_on(async move {
        let interrupt = Interrupt::install();
        run(config, &interrupt).await
    })
}

/// Carries out a run on the current actix system.
pub async fn run(config: NemesisConfig, interrupt: &Interrupt) -> Result<Outcome, HarnessError> {
    std::fs::create_dir_all(&config.out).map_err(HarnessError::io(&config.out))?;
    if interrupt.is_set() {
        return Err(HarnessError::Interrupted);
    }
    let wiring = config.wiring();
    let mut topology = tokio::select! {
        started = Topology::start(
            &config.nodes_bin, &config.out, config.slaves, config.replicas, config.secure, &wiring,
        ) => started?,
        _ = interrupt.wait() => return Err(HarnessError::Interrupted),
    };
    let filled = tokio::select! {
        filled = preload::fill(&topology, &config) => filled,
        _ = interrupt.wait() => Err(HarnessError::Interrupted),
    };
    let exercised = match filled {
        Ok(()) => exercise(&mut topology, &config, interrupt).await,
        Err(err) => Err(err),
    };
    topology.stop_nodes().await;
    topology.remove_network();
    let exercised = exercised?;
    let history = config.out.join(HISTORY);
    let checks = if exercised.interrupted {
        None
    } else {
        let unread_preload = (exercised.preloaded.unread > 0)
            .then(|| format!("no read answered for {} of the preloaded keys", exercised.preloaded.unread));
        let recovery = Recovery {
            not_serving: exercised
                .serving_again
                .as_ref()
                .err()
                .cloned()
                .or_else(|| unread(&exercised.finals))
                .or(unread_preload),
            node_problems: exercised.node_problems.clone(),
        };
        let mut judged = judge(&history, &exercised.finals.values, recovery, config.max_states)?;
        judged.lost_writes.extend(exercised.preloaded.lost.iter().cloned());
        Some(judged)
    };
    let (verdict, exit_code) = NemesisSummary::verdict_of(exercised.interrupted, checks.as_ref());
    if exit_code == EXIT_PASS {
        topology.remove_data();
    }
    let summary = NemesisSummary {
        faults: NemesisSummary::count_faults(&config, &exercised.faults),
        operations: OpCounts::of_history(&history)?,
        errors: exercised.errors,
        interrupted: exercised.interrupted,
        verdict,
        elapsed_s: exercised.elapsed.as_secs_f64(),
        most_active: most_active(&exercised.faults),
        fault_log: exercised.faults,
        skipped: exercised.skipped,
        takeovers: exercised.takeovers,
        epochs: exercised.epochs,
        serving_again_s: exercised.serving_again.ok().map(|d| d.as_secs_f64()),
        final_values: exercised.finals.values,
        violations: checks.as_ref().map(|c| c.violations()).unwrap_or_default(),
        checks,
        config,
    };
    summary.write(&summary.config.out)?;
    Ok(Outcome { summary, exit_code })
}

fn unread(finals: &FinalReads) -> Option<String> {
    (!finals.unread.is_empty()).then(|| format!("no final read succeeded on {}", finals.unread.join(", ")))
}

/// The workload with faults, healing, settling and the final reads.
async fn exercise(
    topology: &mut Topology,
    config: &NemesisConfig,
    interrupt: &Interrupt,
) -> Result<Exercised, HarnessError> {
    let mut clients = Vec::new();
    for _ in 0..config.clients {
        clients.push(topology.start_client(config.request_timeout()).await?);
    }
    let mut load = Load::start(config, clients, &config.out.join(HISTORY))?;
    let monitor = Monitor::start(topology.node_addrs.clone(), topology.credentials.clone(), load.start);
    let mut stage = Stage {
        topology,
        monitor: &monitor,
        start: load.start,
        interrupt,
        down: BTreeSet::new(),
        ledger: Ledger::default(),
    };
    let mut problems = Vec::new();
    let injected = match config.compose {
        true => conduct(&mut stage, config, &mut problems).await,
        false => inject_faults(&mut stage, config, &mut problems)
            .await
            .map(|records| Composed { records, skipped: Vec::new() }),
    };
    let elapsed = load.start.elapsed();
    stage.topology.heal_all();
    let revived = stage.revive(&mut problems, true).await;
    load.stop(config.request_timeout()).await;
    let Composed { records: faults, skipped } = injected?;
    revived?;
    let (serving_again, finals, preloaded, interrupted) = if interrupt.is_set() {
        (Err("interrupted".to_string()), FinalReads::default(), preload::Checked::default(), true)
    } else {
        let deadline = Instant::now() + config.settle_timeout();
        let client = stage.topology.start_client(config.request_timeout()).await?;
        let settled = async {
            let serving = wait_whole(stage.topology, deadline).await;
            let finals = load.final_reads(&client, deadline).await;
            (serving, finals, preload::check(&client, config, deadline).await)
        };
        tokio::select! {
            (serving, finals, preloaded) = settled => (serving, finals, preloaded, false),
            _ = interrupt.wait() => {
                (Err("interrupted".to_string()), FinalReads::default(), preload::Checked::default(), true)
            }
        }
    };
    load.finish()?;
    let observed = monitor.observed.borrow();
    Ok(Exercised {
        interrupted,
        elapsed,
        faults,
        skipped,
        node_problems: problems,
        serving_again,
        finals,
        preloaded,
        errors: load.errors(),
        takeovers: observed.takeovers(),
        epochs: observed.epochs.clone(),
    })
}

/// Injects faults from the schedule until `--duration` has passed (or Ctrl-C). A fault's
/// hold is cut to the time left, so the last one ends by the deadline (plus its restarts).
async fn inject_faults(
    stage: &mut Stage<'_>,
    config: &NemesisConfig,
    problems: &mut Vec<String>,
) -> Result<Vec<FaultRecord>, HarnessError> {
    let end = stage.start + config.duration();
    let mut schedule = Schedule::new(&config.faults, stage.topology.slaves.len(), config.seed);
    let mut records = Vec::new();
    while !stage.interrupt.is_set() {
        let now = Instant::now();
        let left = end.saturating_duration_since(now);
        let Some(mut fault) = schedule.next_fault().filter(|f| f.gap < left) else {
            stage.hold(left).await;
            break;
        };
        stage.hold(fault.gap).await;
        if stage.interrupt.is_set() {
            break;
        }
        stage.revive(problems, false).await?;
        fault.hold = fault.hold.min(end.saturating_duration_since(Instant::now()));
        let record = inject(stage, records.len(), &fault).await?;
        eprintln!("[{:>6.1} s] {}: {}", record.at_s, record.kind.name(), record.detail);
        for problem in &record.problems {
            eprintln!("           {problem}");
        }
        problems.extend(record.problems.iter().cloned());
        records.push(record);
    }
    Ok(records)
}

/// Polls the cluster (directly, not through the proxies) until it reports every slave and a
/// standby, or `deadline` passes; returns how long it took, or what it last saw.
async fn wait_whole(topology: &Topology, deadline: Instant) -> Result<Duration, String> {
    let probe = topology.probe(Duration::from_secs(1));
    let start = Instant::now();
    let mut last = "no answer".to_string();
    while Instant::now() < deadline {
        match probe.status().await {
            Ok(status) if topology.is_whole(&status) => return Ok(start.elapsed()),
            Ok(status) => last = describe(&status, topology.slaves.len()),
            Err(err) => last = format!("status failed: {err}"),
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
    Err(format!("{last}, {:.1} s after healing", start.elapsed().as_secs_f64()))
}
