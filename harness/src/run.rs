//! One run from start to end: start (or find) the cluster, measure, ask the master where the
//! keys ended up, write `summary.json` and `cluster.json`, and stop every node it started,
//! whether the run succeeded, failed or was interrupted.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actors::client::Client;
use net::StatusReport;

use crate::args::RunArgs;
use actors::security::{Credentials, TlsFiles};

use crate::cluster::{Cluster, Target};
use crate::config::RunConfig;
use crate::error::HarnessError;
use crate::measure::measure;
use crate::signal::Interrupt;
use crate::summary::Summary;

/// Time after the load for a few heartbeats to bring the slaves' key counts up to date.
pub const SETTLE: Duration = Duration::from_secs(1);

/// Deadline for the status requests around the load.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub config: RunConfig,
    pub target: Target,
    /// The run's folder.
    pub out: PathBuf,
    /// The progress bar's label.
    pub label: String,
}

impl RunPlan {
    /// The plan for `harness run`.
    pub fn from_args(args: &RunArgs) -> Result<RunPlan, HarnessError> {
        let config = RunConfig::new(&args.load, args.clients, args.slaves)?;
        let target = match &args.master {
            Some(master) => Target::Existing {
                master: master.clone(),
                backup: args.backup.clone(),
                credentials: client_credentials(args)?,
            },
            None => Target::Launch {
                nodes_bin: nodes_bin(args.load.nodes_bin.as_deref())?,
                slaves: args.slaves,
                replicas: args.load.replicas,
                secure: args.load.secure,
            },
        };
        let out = args.out.clone().unwrap_or_else(|| default_out("run"));
        Ok(RunPlan { config, target, out, label: "run".to_string() })
    }
}

/// The password and TLS for an existing cluster (`--password-file`, `--tls-ca`).
fn client_credentials(args: &RunArgs) -> Result<Credentials, HarnessError> {
    let tls = TlsFiles { ca: args.tls_ca.clone(), ..TlsFiles::default() };
    Credentials::for_client(args.password_file.as_deref(), &tls).map_err(|err| HarnessError::Config(err.to_string()))
}

/// `--nodes-bin`, or the `nodes` binary next to this executable.
pub fn nodes_bin(given: Option<&Path>) -> Result<PathBuf, HarnessError> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    let exe = std::env::current_exe().map_err(HarnessError::io("the harness executable"))?;
    Ok(exe.with_file_name("nodes"))
}

/// `harness-runs/<kind>-<unix seconds>` in the current folder.
pub fn default_out(kind: &str) -> PathBuf {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    PathBuf::from("harness-runs").join(format!("{kind}-{now}"))
}

/// Carries out `plan` on a fresh actix system (so nothing of it outlives the run).
pub fn execute(plan: RunPlan) -> Result<Summary, HarnessError> {
    actix_rt::System::new().block_on(async move {
        let interrupt = Interrupt::install();
        run(plan, &interrupt).await
    })
}

/// Carries out `plan` on the current actix system.
pub async fn run(plan: RunPlan, interrupt: &Interrupt) -> Result<Summary, HarnessError> {
    std::fs::create_dir_all(&plan.out).map_err(HarnessError::io(&plan.out))?;
    let mut cluster = Cluster::new(plan.target, &plan.out)?;
    let result = start_and_measure(&mut cluster, plan.config, &plan.out, &plan.label, interrupt).await;
    cluster.stop().await;
    result
}

async fn start_and_measure(
    cluster: &mut Cluster,
    mut config: RunConfig,
    out: &Path,
    label: &str,
    interrupt: &Interrupt,
) -> Result<Summary, HarnessError> {
    if interrupt.is_set() {
        return Err(HarnessError::Interrupted);
    }
    tokio::select! {
        started = cluster.start() => started?,
        _ = interrupt.wait() => return Err(HarnessError::Interrupted),
    }
    write_json(&out.join("cluster.json"), &cluster.info())?;
    let probe = Client::start(cluster.client_config(STATUS_TIMEOUT));
    let status = probe.status().await?;
    let slaves = u32::try_from(status.slaves.len()).unwrap_or(u32::MAX);
    if !cluster.is_launched() {
        config.slaves = slaves;
        config.replicas = status.replicas;
    }
    let measured = measure(cluster, &config, slaves, out, label, interrupt).await?;
    let end = final_status(&probe, measured.interrupted).await;
    let summary = Summary::new(config, measured.interrupted, &measured.tally, measured.elapsed, end.as_ref())
        .with_cpu(measured.cpu_us_per_op);
    summary.write(out)?;
    Ok(summary)
}

/// The master's report after the load, once the slaves' heartbeats have caught up.
async fn final_status(probe: &Client, interrupted: bool) -> Option<StatusReport> {
    if !interrupted {
        tokio::time::sleep(SETTLE).await;
    }
    match probe.status().await {
        Ok(status) => Some(status),
        Err(err) => {
            tracing::warn!(%err, "no status after the run; summary.json has no load distribution");
            None
        }
    }
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), HarnessError> {
    let text = serde_json::to_string_pretty(value).map_err(HarnessError::json(path))?;
    std::fs::write(path, text + "\n").map_err(HarnessError::io(path))
}
