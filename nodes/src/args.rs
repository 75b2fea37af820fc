//! The command line, as clap types. The names and defaults of `master`, `slave`, `client` and
//! `cluster` are an interface that scripts rely on: add to them, never rename.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "nodes", version, about = "A fault-tolerant, replicated key-value store")]
#[command(args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the master: takes client requests and replicates them to quorums of slaves.
    Master(MasterArgs),
    /// Run the hot standby: follows the master's log and takes over when the master dies.
    Backup(BackupArgs),
    /// Run a storage node that follows the master.
    Slave(SlaveArgs),
    /// Talk to the store: one command, or an interactive prompt when none is given.
    Client(ClientArgs),
    /// Start a master, a backup and slaves on this machine as child processes; Ctrl-C stops them all.
    Cluster(ClusterArgs),
    /// Write a new random cluster key to FILE (mode 0600) for --cluster-key-file.
    Keygen {
        /// Where to write the key; an existing file is never overwritten.
        file: PathBuf,
    },
    /// Write a self-signed CA and a certificate and key per node into DIR, for a TLS test cluster.
    GenCerts(GenCertsArgs),
}

#[derive(Debug, Args)]
pub struct GenCertsArgs {
    /// Folder to write into (created if missing): ca.pem, ca-key.pem, NAME.pem, NAME-key.pem.
    /// Existing files are never replaced.
    pub dir: PathBuf,
    /// One certificate per name (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "master,backup,slave-1,slave-2,slave-3,client")]
    pub names: Vec<String>,
    /// Host names and IP addresses every certificate is valid for (comma-separated); servers are
    /// verified against the host part of the address they are dialed at.
    #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1,::1")]
    pub hosts: Vec<String>,
    /// Days the certificates are valid.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
}

/// TLS, for every role. A listener serves TLS when it has a certificate; a connecting side
/// uses TLS when it has a CA.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// This node's certificate chain (PEM): served on every listener, and presented when
    /// connecting to a server that verifies its peers.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The CA certificate (PEM) that signed the cluster's certificates. Connecting sides use
    /// TLS and verify the server against it; listeners ask peers for a certificate and admit
    /// slaves, the standby and the peer master only with one it signed (mutual TLS).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MasterArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:12345")]
    pub listen: String,
    /// The backup's address (`off`: run without one).
    #[arg(long, default_value = "127.0.0.1:12346")]
    pub backup: String,
    /// This node's name.
    #[arg(long, default_value = "master")]
    pub id: String,
    /// Where the write-ahead log and snapshots live (locked while the node runs).
    #[arg(long, default_value = "master-data")]
    pub data_dir: PathBuf,
    /// Where to serve the Redis protocol (`off`: nowhere).
    #[arg(long, default_value = "127.0.0.1:16379")]
    pub redis_listen: String,
    /// Where to answer Sentinel queries for Sentinel-aware Redis clients (`off`: nowhere).
    #[arg(long, default_value = "127.0.0.1:26379")]
    pub sentinel_listen: String,
    #[command(flatten)]
    pub common: ServerArgs,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:12346")]
    pub listen: String,
    /// The master's address.
    #[arg(long, default_value = "127.0.0.1:12345")]
    pub master: String,
    /// This node's name.
    #[arg(long, default_value = "backup")]
    pub id: String,
    /// Where the standby's copy of the log lives (locked while the node runs).
    #[arg(long, default_value = "backup-data")]
    pub data_dir: PathBuf,
    /// Where to serve the Redis protocol (`off`: nowhere).
    #[arg(long, default_value = "127.0.0.1:16380")]
    pub redis_listen: String,
    /// Where to answer Sentinel queries for Sentinel-aware Redis clients (`off`: nowhere).
    #[arg(long, default_value = "127.0.0.1:26380")]
    pub sentinel_listen: String,
    #[command(flatten)]
    pub common: ServerArgs,
}

/// Flags shared by `master` and `backup` (either may serve as master).
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Replication factor: slaves per key (capped by the number of live slaves).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub replicas: u32,
    /// Time a quorum read or write may take before the client gets an error.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,
    /// Interval of heartbeats: master to slaves, standby to master.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat_ms: u64,
    /// Silence after which the master counts a slave gone: it closes the connection and refills
    /// the slave's replicas elsewhere (the slave stays in the recorded membership).
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u64).range(1..))]
    pub slave_timeout_ms: u64,
    /// Silence from the master after which the standby campaigns to take over.
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u64).range(1..))]
    pub failover_after_ms: u64,
    /// How long to try reaching the peer at start; a node started as master then campaigns
    /// (slaves' promises decide), a backup waits for a master.
    #[arg(long, default_value_t = 1000)]
    pub peer_wait_ms: u64,
    /// Ignored: a node serves once slaves' promises and reads allow it, never on a timer.
    #[arg(long, hide = true)]
    pub takeover_wait_ms: Option<u64>,
    /// Open connections each listener accepts at most (clients, slaves and the peer count on
    /// the native one); more are answered with an error and closed.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,
    /// Time a new connection has to send its handshake.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    pub handshake_timeout_ms: u64,
    /// `always`: fdatasync every group commit before acknowledging. `none`: never fsync,
    /// so a machine crash can lose acknowledged writes -- for benchmarks only.
    #[arg(long, value_enum, default_value_t = WalSync::Always)]
    pub wal_sync: WalSync,
    /// Write a snapshot (and drop the log before it) when the log passes this many MiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub snapshot_after_mb: u64,
    /// Background copies (refilling slaves, re-replicating keys) in flight at once; 0 turns
    /// background repair off and leaves it to reads.
    #[arg(long, default_value_t = 32)]
    pub repair_concurrency: usize,
    /// The master name Sentinel-aware clients ask for.
    #[arg(long, default_value = "mymaster")]
    pub cluster_name: String,
    /// The cluster's shared key (`nodes keygen FILE`): slaves, the standby and the peer master
    /// must prove they hold it. Without one the cluster is open to anyone who reaches it.
    #[arg(long)]
    pub cluster_key_file: Option<PathBuf>,
    /// A file holding the password clients must present (native clients in the handshake,
    /// Redis clients with AUTH). Without one any client may read and write.
    #[arg(long)]
    pub client_password_file: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// What a connection may hold that its peer has not read (like Redis's
/// `client-output-buffer-limit`).
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// MiB of unread replies after which a connection stops reading requests until its peer
    /// reads.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub output_soft_mb: u64,
    /// MiB of unread output after which a connection is closed (with a log line naming the
    /// peer). At least the soft limit plus 2.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(3..=65536))]
    pub output_hard_mb: u64,
}

impl OutputArgs {
    pub fn limits(&self) -> anyhow::Result<actors::outbox::OutputLimits> {
        actors::outbox::OutputLimits::from_mib(self.output_soft_mb as usize, self.output_hard_mb as usize)
            .map_err(anyhow::Error::msg)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WalSync {
    Always,
    None,
}

#[derive(Debug, Args)]
pub struct SlaveArgs {
    /// The master's address.
    #[arg(long, default_value = "127.0.0.1:12345")]
    pub master: String,
    /// The backup's address, tried when the master does not answer as master.
    #[arg(long, default_value = "127.0.0.1:12346")]
    pub backup: String,
    /// This slave's name, unique in the cluster (default: slave-<pid>).
    #[arg(long)]
    pub id: Option<String>,
    /// Where the slave records the highest epoch it has accepted (data stays in memory).
    /// Default: slave-data-<id>.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Silence from the master after which the slave reconnects.
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u64).range(1..))]
    pub master_timeout_ms: u64,
    /// The cluster's shared key, which the master checks (`nodes keygen FILE`).
    #[arg(long)]
    pub cluster_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The master's address.
    #[arg(long, default_value = "127.0.0.1:12345")]
    pub master: String,
    /// The backup's address, tried when the master is unreachable or not master.
    #[arg(long, default_value = "127.0.0.1:12346")]
    pub backup: String,
    /// Time to wait for an answer.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
    /// A file holding the password the servers require (their --client-password-file).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(subcommand)]
    pub command: Option<ClientCommand>,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Print the value of KEY (exit 1 if it is missing).
    Get { key: String },
    /// Store VALUE under KEY and print OK.
    Put { key: String, value: String },
    /// Delete KEY and print OK.
    Del { key: String },
    /// Print the master's view: role, epoch, slaves and their key counts.
    Status {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Number of slaves.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub slaves: u32,
    /// Folder for the nodes' logs and data (default: a new temporary folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Address of the master (port 0: free ports for master and backup).
    #[arg(long, default_value = "127.0.0.1:12345")]
    pub listen: String,
    /// Address of the backup.
    #[arg(long, default_value = "127.0.0.1:12346")]
    pub backup_listen: String,
    /// Replication factor.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub replicas: u32,
    /// The master's Redis-protocol address (`off`: none; with `--listen` on port 0, free ports
    /// are used for every Redis and Sentinel address that is not off).
    #[arg(long, default_value = "127.0.0.1:16379")]
    pub redis_listen: String,
    /// The backup's Redis-protocol address (`off`: none).
    #[arg(long, default_value = "127.0.0.1:16380")]
    pub backup_redis_listen: String,
    /// The master's Sentinel address (`off`: none).
    #[arg(long, default_value = "127.0.0.1:26379")]
    pub sentinel_listen: String,
    /// The backup's Sentinel address (`off`: none).
    #[arg(long, default_value = "127.0.0.1:26380")]
    pub backup_sentinel_listen: String,
    /// Run secured: a cluster key, a client password and TLS certificates are made in the
    /// cluster's folder (kept if already there) and every node uses them.
    #[arg(long)]
    pub secure: bool,
}
