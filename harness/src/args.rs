//! The command line, as clap types. Flag names and defaults are an interface that scripts and
//! the analysis tool rely on: add to them, never rename.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::nemesis::compose::MAX_ACTIVE;
use crate::nemesis::fabric::NetMode;
use crate::nemesis::fault::FaultKind;

#[derive(Debug, Parser)]
#[command(name = "harness", version, about = "Load harness for the replicated key-value store")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One load run: against a cluster it starts, or an existing one (`--master`).
    Run(RunArgs),
    /// A grid of runs over slave and client counts, each on a fresh cluster.
    Sweep(SweepArgs),
    /// A concurrent workload on a few keys while faults are injected; then heal, read every
    /// key, and check the history (linearizable, no lost writes, serving again).
    Nemesis(NemesisArgs),
    /// Fill an existing cluster with `key0` .. `key{N-1}`, pipelined, as fast as it takes them.
    Load(FillArgs),
}

#[derive(Debug, Args)]
pub struct FillArgs {
    /// The cluster's master.
    #[arg(long)]
    pub master: String,
    /// The cluster's backup, tried when the master is unreachable.
    #[arg(long)]
    pub backup: Option<String>,
    /// The cluster's client password (its --client-password-file).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Connect over TLS, verifying the cluster against this CA certificate.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Number of keys to write.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub keys: u64,
    /// The first key's index: writes key{first} .. key{first + keys - 1}.
    #[arg(long, default_value_t = 0)]
    pub first: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    pub value_size: u64,
    /// Client connections.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub connections: u32,
    /// Writes in flight on each connection.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub pipeline: u32,
    /// Deadline for one write.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Number of slaves to start (ignored with --master: the cluster's own count is used).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub slaves: u32,
    /// Number of clients; each opens --conns-per-client connections.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub clients: u32,
    /// Folder for metrics.csv, metrics.jsonl, summary.json and the nodes' logs
    /// (default: harness-runs/run-<unix time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Drive an existing cluster at this master address instead of starting one.
    #[arg(long)]
    pub master: Option<String>,
    /// The existing cluster's backup, tried when the master is unreachable.
    #[arg(long, requires = "master")]
    pub backup: Option<String>,
    /// The existing cluster's client password (its --client-password-file).
    #[arg(long, requires = "master")]
    pub password_file: Option<PathBuf>,
    /// Connect to the existing cluster over TLS, verifying it against this CA certificate.
    #[arg(long, requires = "master")]
    pub tls_ca: Option<PathBuf>,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Slave counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,3,5,7",
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub slaves: Vec<u32>,
    /// Client counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,5,10,20,50",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub clients: Vec<u32>,
    /// Runs per cell of the grid.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Folder for one sub-folder per run and index.json
    /// (default: harness-runs/sweep-<unix time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// The flags a run and a sweep share.
#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// Replication factor for a started master.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub replicas: u32,
    /// Connections per client; each is its own TCP connection with one request in flight
    /// (closed loop).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub conns_per_client: u32,
    /// Percentage of operations that are writes.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub write_pct: u32,
    /// Percentage of writes that are deletes instead of puts.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub del_pct: u32,
    /// Number of keys: key0 .. key{N-1} (fill them first with `harness load` to read values).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub keys: u64,
    /// Zipf exponent for skewed key choice (key0 the most popular); uniform when absent.
    #[arg(long)]
    pub zipf: Option<f64>,
    /// Bytes per written value (at least what it takes to make the value unique).
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Seconds of load before measuring starts (measured, not counted).
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// Seconds of measured load.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub duration: u64,
    /// Pause between a connection's operations, in milliseconds (closed loop only).
    #[arg(long, default_value_t = 0)]
    pub think_ms: u64,
    /// Open loop: operations per second over all connections, issued on a timetable;
    /// latency counts from the scheduled time.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seed for key and operation choice (default: random; the summary records it).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Record a history of every operation (JSON lines) to this file.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Deadline for one request; a request without an answer by then is an error.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,
    /// The `nodes` binary (default: `nodes` next to this executable).
    #[arg(long)]
    pub nodes_bin: Option<PathBuf>,
    /// Start the cluster secured: a cluster key, a client password and TLS between every
    /// process, all made in the run folder's `secrets/` (to measure what they cost).
    #[arg(long)]
    pub secure: bool,
}

#[derive(Debug, Args)]
pub struct NemesisArgs {
    /// Seconds of workload with faults (healing and checking come after).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duration: u64,
    /// Fault kinds to inject, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "kill-master,pause-master,kill-slave,partition,kill-both-masters"
    )]
    pub faults: Vec<FaultKind>,
    /// Seed for the fault schedule and the workload (default: random; the summary records it).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Folder for history.jsonl, summary.json and the nodes' logs
    /// (default: harness-runs/nemesis-<unix time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Number of slaves.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub slaves: u32,
    /// Replication factor.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub replicas: u32,
    /// Number of keys: key0 .. key{N-1}. Few keys make operations collide.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub keys: u64,
    /// Before the faults, fill the cluster with this many more keys (key{keys} onwards, 100-byte
    /// values, as `harness load` does), so takeovers, restarts and refills move a large data
    /// set; after healing, a sample of them (up to 10,000, evenly spread) must read back as
    /// written, or each one that does not is a lost write.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
    pub preload: u64,
    /// Concurrent clients, each with its own connection and one operation at a time.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub clients: u32,
    /// Percentage of operations that are writes.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub write_pct: u32,
    /// Percentage of writes that are deletes.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub del_pct: u32,
    /// Pause between a client's operations, in milliseconds.
    #[arg(long, default_value_t = 5)]
    pub think_ms: u64,
    /// Deadline for one request; a write without an answer by then has an unknown outcome.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,
    /// Seconds the healed cluster has to serve again and answer the final reads.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub settle_timeout: u64,
    /// The checker gives up on a key (no verdict, exit 3) after this many search states.
    #[arg(long, default_value_t = analysis::check::DEFAULT_MAX_STATES)]
    pub max_states: usize,
    /// The `nodes` binary (default: `nodes` next to this executable).
    #[arg(long)]
    pub nodes_bin: Option<PathBuf>,
    /// Run the cluster secured: a cluster key, a client password and TLS on every link (the
    /// proxies carry the TLS bytes as they are), made in the run folder's `secrets/`.
    #[arg(long)]
    pub secure: bool,
    /// Let faults overlap: each fault starts on its own schedule, while earlier ones may still
    /// be active (at most --max-active at once); without it, one fault at a time.
    #[arg(long)]
    pub compose: bool,
    /// With --compose: the most faults active at once.
    #[arg(long, default_value_t = MAX_ACTIVE as u32, requires = "compose",
          value_parser = clap::value_parser!(u32).range(1..=8))]
    pub max_active: u32,
    /// How the processes are wired and cut: `proxies` (loopback and a TCP proxy on every link)
    /// or `namespaces` (a network namespace for every process on one bridge, partitions by
    /// nftables rules; root only).
    #[arg(long, value_enum, default_value = "proxies")]
    pub net: NetMode,
    /// With --net namespaces: `tc netem` arguments for every interface for the whole run, to
    /// delay and reorder packets, e.g. "delay 20ms 10ms reorder 25% 50%".
    #[arg(long)]
    pub netem: Option<String>,
}
