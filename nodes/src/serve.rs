//! Running the long-lived roles: logging, the actix system, and a clean exit on SIGTERM or
//! Ctrl-C.

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;
use net::{Incarnation, NodeId};

use actors::master::{start_master, Heartbeat, MasterConfig, WalConfig};
use actors::slave::{start_slave, SlaveConfig};

use crate::args::{MasterArgs, SlaveArgs, WalSync};

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
    let node = NodeId::parse(&args.id).map_err(anyhow::Error::msg)?;
    let config = MasterConfig {
        node,
        replicas: args.replicas as usize,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        heartbeat: Heartbeat {
            interval: Duration::from_millis(args.heartbeat_ms),
            timeout: Duration::from_millis(args.slave_timeout_ms),
        },
        handshake_timeout: Duration::from_millis(args.handshake_timeout_ms),
        seed: rand::random(),
        repair_concurrency: args.repair_concurrency,
        data_dir: args.data_dir.clone(),
        wal: WalConfig {
            sync: args.wal_sync == WalSync::Always,
            snapshot_after_bytes: args.snapshot_after_mb.saturating_mul(1 << 20),
        },
    };
    actix_rt::System::new().block_on(async move {
        let master = start_master(&args.listen, config)
            .await
            .with_context(|| format!("master on {}", args.data_dir.display()))?;
        announce(&format!("listening on {}", master.addr));
        tracing::info!(addr = %master.addr, epoch = %master.epoch, replicas = args.replicas, "master started");
        shutdown_signal().await;
        Ok(())
    })
}

pub fn run_slave(args: SlaveArgs) -> anyhow::Result<()> {
    let id = args.id.unwrap_or_else(|| format!("slave-{}", std::process::id()));
    let config = SlaveConfig {
        id: NodeId::parse(&id).map_err(anyhow::Error::msg)?,
        incarnation: Incarnation(rand::random()),
        servers: vec![args.master, args.backup],
        master_timeout: Duration::from_millis(args.master_timeout_ms),
        dial_timeout: Duration::from_secs(1),
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_secs(2),
    };
    actix_rt::System::new().block_on(async move {
        tracing::info!(id = %config.id, "slave started");
        let _slave = start_slave(config);
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
