//! Running the long-lived roles: logging, the actix system, and a clean exit on SIGTERM or
//! Ctrl-C.

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;
use net::{Incarnation, NodeId};

use actors::master::{Heartbeat, MasterConfig, RedisConfig, StepDown, WalConfig};
use actors::node::start_node;
use actors::slave::{start_slave, SlaveConfig};

use std::path::PathBuf;
use std::sync::Arc;

use crate::args::{BackupArgs, MasterArgs, ServerArgs, SlaveArgs, WalSync};

/// Logs to stderr; `RUST_LOG` sets the level (default `default_level`).
pub fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
}

/// Resolves when the process receives SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received; stopping"),
        _ = int.recv() => tracing::info!("SIGINT received; stopping"),
    }
}

pub fn run_master(args: MasterArgs) -> anyhow::Result<()> {
    let peer = (args.backup != "off").then_some(args.backup);
    let redis = redis_config(&args.redis_listen, &args.sentinel_listen, &args.common);
    run_server(&args.listen, &args.id, args.data_dir, peer, true, redis, args.common)
}

pub fn run_backup(args: BackupArgs) -> anyhow::Result<()> {
    let redis = redis_config(&args.redis_listen, &args.sentinel_listen, &args.common);
    run_server(&args.listen, &args.id, args.data_dir, Some(args.master), false, redis, args.common)
}

fn redis_config(listen: &str, sentinel: &str, args: &ServerArgs) -> Option<RedisConfig> {
    (listen != "off").then(|| RedisConfig {
        listen: listen.to_string(),
        sentinel_listen: (sentinel != "off").then(|| sentinel.to_string()),
        cluster_name: args.cluster_name.clone(),
        advertised: String::new(),
    })
}

fn run_server(
    listen: &str,
    id: &str,
    data_dir: PathBuf,
    peer: Option<String>,
    prefer_master: bool,
    redis: Option<RedisConfig>,
    args: ServerArgs,
) -> anyhow::Result<()> {
    let ms = Duration::from_millis;
    let (gate, credentials) = crate::security::server(&args, peer.is_some())?;
    let config = MasterConfig {
        node: NodeId::parse(id).map_err(anyhow::Error::msg)?,
        replicas: args.replicas as usize,
        request_timeout: ms(args.request_timeout_ms),
        heartbeat: Heartbeat { interval: ms(args.heartbeat_ms), timeout: ms(args.slave_timeout_ms) },
        handshake_timeout: ms(args.handshake_timeout_ms),
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        output: args.output.limits()?,
        seed: rand::random(),
        repair_concurrency: args.repair_concurrency,
        data_dir: data_dir.clone(),
        wal: WalConfig {
            sync: args.wal_sync == WalSync::Always,
            snapshot_after_bytes: args.snapshot_after_mb.saturating_mul(1 << 20),
            ship: true,
        },
        peer,
        prefer_master,
        standby_heartbeat: ms(args.heartbeat_ms),
        failover_after: ms(args.failover_after_ms),
        peer_wait: ms(args.peer_wait_ms),
        step_down: Some(StepDown(Arc::new(restart_self))),
        redis,
        gate,
        credentials,
    };
    if args.takeover_wait_ms.is_some() {
        tracing::warn!(
            "--takeover-wait-ms is ignored: a node serves when slaves' promises and reads allow, never on a timer"
        );
    }
    actix_rt::System::new().block_on(async move {
        let mut node = start_node(listen, config).await.with_context(|| format!("node on {}", data_dir.display()))?;
        announce(&format!("listening on {}", node.addr));
        if let Some(addr) = node.redis_addr {
            announce(&format!("redis listening on {addr}"));
        }
        if let Some(addr) = node.sentinel_addr {
            announce(&format!("sentinel listening on {addr}"));
        }
        tracing::info!(addr = %node.addr, replicas = args.replicas, "node started");
        tokio::select! {
            () = shutdown_signal() => Ok(()),
            Some(code) = node.exit.recv() => std::process::exit(code),
        }
    })
}

/// Set in the environment of a process started again by [`restart_self`].
pub const STEPPED_DOWN: &str = "KV_STEPPED_DOWN";

/// Steps down by starting this program again with the same arguments: the new process recovers
/// its data directory and decides its role again (a newer master makes it the standby, which
/// discards whatever of its log the new master lacks).
fn restart_self() {
    use std::os::unix::process::CommandExt;
    tracing::warn!("restarting: the new process decides its role again");
    // /proc/self/exe is this very program even if its file was replaced since it started.
    let rest: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let err = std::process::Command::new("/proc/self/exe").args(rest).env(STEPPED_DOWN, "1").exec();
    tracing::error!(%err, "cannot restart; exiting");
    std::process::exit(1);
}

pub fn run_slave(args: SlaveArgs) -> anyhow::Result<()> {
    let credentials = crate::security::slave(&args)?;
    let id = args.id.unwrap_or_else(|| format!("slave-{}", std::process::id()));
    let config = SlaveConfig {
        id: NodeId::parse(&id).map_err(anyhow::Error::msg)?,
        incarnation: Incarnation(rand::random()),
        servers: vec![args.master, args.backup],
        master_timeout: Duration::from_millis(args.master_timeout_ms),
        dial_timeout: Duration::from_secs(1),
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(500),
        credentials,
        output: args.output.limits()?,
    };
    let data_dir = args.data_dir.unwrap_or_else(|| format!("slave-data-{id}").into());
    actix_rt::System::new().block_on(async move {
        let _slave = start_slave(config, Some(&data_dir))
            .with_context(|| format!("cannot use {} as the slave's data directory", data_dir.display()))?;
        tracing::info!(id = %id, data_dir = %data_dir.display(), "slave started");
        shutdown_signal().await;
        Ok(())
    })
}

/// Prints a line on stdout for scripts and flushes it at once.
pub fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
