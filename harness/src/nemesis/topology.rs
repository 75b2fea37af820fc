//! The nemesis's own cluster: a master and a backup (the two master-capable nodes, index 0 and
//! 1), `--slaves` slaves, and a way to cut every link ([`Fabric`]). With `--net proxies` (the
//! default) that is a [`Proxy`](crate::nemesis::proxy::Proxy) on every link:
//!
//! ```text
//!   clients ──client[0]──▶ master ◀──peer[0]── backup      slave-k ──slave[k][0]──▶ master
//!   clients ──client[1]──▶ backup ◀──peer[1]── master      slave-k ──slave[k][1]──▶ backup
//! ```
//!
//! Each master-capable node knows its peer only by the peer proxy's address, and each slave
//! knows both nodes only by its own two proxies, so every link can be cut on its own. The
//! harness itself (the status monitor, the readiness probe) reaches the nodes directly.
//!
//! A standby refuses a client with "not master" and names the master it follows, which is its
//! peer proxy: a client redirected that way reaches the master through `peer[i]`, not
//! `client[i]`. Cutting a node's client link therefore does not hide it from clients that are
//! redirected to it; the partitions that cut the peer link hide it from both.
//!
//! With `--net namespaces` every process has its own network namespace instead, the links are
//! the kernel's, and so are the cuts (`netns.rs`). Either way a cut is asked for as directed
//! links (`partition.rs`), and [`Topology`] keeps every active fault's cuts ([`Cuts`]), so
//! that healing one fault leaves the links another still cuts.
//!
//! Nodes are started with fast failure detection ([`NODE_FLAGS`], [`SLAVE_FLAGS`]) so that a
//! fault resolves within a second or two. Data lives in `<out>/data`, logs in `<out>/logs`.
//!
//! A killed node restarts on the address it had, so the nodes listen on ports below the
//! kernel's ephemeral range: a port from that range could be handed to some outgoing
//! connection while its node is down, and the restart would fail to bind it.
//!
//! The nodes run a private link (or copy) of the `nodes` binary in `<out>/data/bin`: a rebuild
//! during a run replaces the file cargo built, and a node restarted then (by the nemesis, or by
//! itself when it steps down, which re-executes its own file) would run another program, or
//! find its file gone.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use actors::client::{Client, ClientConfig};
use actors::security::Credentials;

use crate::secrets::Secrets;
use net::StatusReport;
use rand::Rng;

use crate::cluster::{free_port, remove_dir, READY_DEADLINE};
use crate::error::HarnessError;
use crate::launcher::{Launcher, NodeInfo};
use crate::nemesis::fabric::{Fabric, NetMode, Proxies};
use crate::nemesis::fault::Cut;
use crate::nemesis::netns::Namespaces;
use crate::nemesis::partition::{Cuts, Endpoint, FaultId, Link};

/// The master-capable nodes, by index; also their `--id`.
pub const NODE_NAMES: [&str; 2] = ["master", "backup"];

/// Failure detection for master and backup: heartbeats every 100 ms, a slave or master silent
/// for 800 ms is given up.
pub const NODE_FLAGS: &[&str] = &[
    "--heartbeat-ms",
    "100",
    "--failover-after-ms",
    "800",
    "--slave-timeout-ms",
    "800",
    "--peer-wait-ms",
    "500",
    "--redis-listen",
    "off",
    "--sentinel-listen",
    "off",
];

/// Failure detection for slaves: a master silent for 800 ms is given up.
pub const SLAVE_FLAGS: &[&str] = &["--master-timeout-ms", "800"];

/// Deadline for connecting to a node, for the harness's own probes.
pub const PROBE_CONNECT: Duration = Duration::from_millis(500);

/// How a topology is wired (`--net`, `--netem`).
#[derive(Debug, Clone)]
pub struct Wiring {
    pub net: NetMode,
    /// `tc netem` arguments for every interface (namespaces only).
    pub netem: Option<String>,
}

/// A cluster whose links can be cut.
pub struct Topology {
    launcher: Launcher,
    /// Where node i listens (reached directly only by the harness).
    pub node_addrs: [String; 2],
    /// Slave names, `slave-1` ..
    pub slaves: Vec<String>,
    fabric: Fabric,
    /// Every active fault's cuts.
    cuts: Cuts,
    data_dir: PathBuf,
    /// A secured run's key, password and certificates.
    secrets: Option<Secrets>,
    /// What clients present (the password and TLS of a secured run).
    pub credentials: Credentials,
}

impl Topology {
    /// Starts the proxies and the nodes, and waits until the master reports every slave and
    /// its standby. The caller must [`Topology::stop_nodes`] it, also after an error.
    pub async fn start(
        nodes_bin: &Path,
        out: &Path,
        slaves: u32,
        replicas: u32,
        secure: bool,
        wiring: &Wiring,
    ) -> Result<Topology, HarnessError> {
        let data_dir = out.join("data");
        remove_dir(&data_dir)?;
        let secrets = match secure {
            true => Some(Secrets::make(nodes_bin, &out.join("secrets"), slaves)?),
            false => None,
        };
        let credentials = secrets.as_ref().map(Secrets::credentials).transpose()?.unwrap_or_default();
        let nodes_bin = private_copy(nodes_bin, &data_dir.join("bin"))?;
        let launcher = Launcher::new(&nodes_bin, &out.join("logs"))?.kill_when_orphaned();
        let fabric = match wiring.net {
            NetMode::Proxies => {
                Fabric::Proxies(Box::new(Proxies::start([stable_port()?, stable_port()?], slaves).await?))
            }
            NetMode::Namespaces => Fabric::Namespaces(Namespaces::create(slaves as usize, wiring.netem.as_deref())?),
        };
        let node_addrs = [fabric.node_addr(0), fabric.node_addr(1)];
        let slaves = (1..=slaves).map(|i| format!("slave-{i}")).collect();
        let mut topology =
            Topology { launcher, node_addrs, slaves, fabric, cuts: Cuts::default(), data_dir, secrets, credentials };
        if let Err(err) = topology.spawn_all(replicas).await {
            topology.stop_nodes().await;
            topology.remove_network();
            return Err(err);
        }
        Ok(topology)
    }

    async fn spawn_all(&mut self, replicas: u32) -> Result<(), HarnessError> {
        for (i, role) in NODE_NAMES.iter().enumerate() {
            let args = self.node_args(i, replicas);
            self.launcher.spawn_wrapped(role, &self.fabric.wrapper(Endpoint::Node(i)), &args, true)?;
            self.await_listening(role).await?;
        }
        for (k, name) in self.slaves.iter().enumerate() {
            let args = self.slave_args(k, name);
            self.launcher.spawn_wrapped(name, &self.fabric.wrapper(Endpoint::Slave(k)), &args, false)?;
        }
        self.wait_ready().await
    }

    /// `nodes master|backup` for node `i`: through proxies its peer is reached through
    /// `peer[1 - i]`.
    fn node_args(&self, i: usize, replicas: u32) -> Vec<OsString> {
        let role = NODE_NAMES[i];
        let peer_flag = if i == 0 { "--backup" } else { "--master" };
        let mut args: Vec<OsString> =
            [role, "--id", role, "--listen", &self.node_addrs[i], peer_flag].iter().map(OsString::from).collect();
        args.push(self.fabric.peer_addr(i).into());
        args.extend(["--data-dir".into(), self.data_dir.join(role).into_os_string()]);
        args.extend(["--replicas".into(), replicas.to_string().into()]);
        args.extend(NODE_FLAGS.iter().map(OsString::from));
        args.extend(self.secrets.iter().flat_map(|s| s.flags(role, true)));
        args
    }

    /// `nodes slave` for slave `k`: through proxies master and backup are reached through
    /// `slave[k]`.
    fn slave_args(&self, k: usize, name: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["slave".into(), "--id".into(), name.into()];
        args.extend(["--master".into(), self.fabric.slave_target(k, 0).into()]);
        args.extend(["--backup".into(), self.fabric.slave_target(k, 1).into()]);
        args.extend(["--data-dir".into(), self.data_dir.join(name).into_os_string()]);
        args.extend(SLAVE_FLAGS.iter().map(OsString::from));
        args.extend(self.secrets.iter().flat_map(|s| s.flags(name, false)));
        args
    }

    /// Waits for node `name` (master-capable) to print the address it listens on.
    async fn await_listening(&mut self, name: &str) -> Result<(), HarnessError> {
        let index = node_index(name);
        let want = index.map(|i| self.node_addrs[i].clone());
        let node = self.launcher.node(name)?;
        let addr = node.listening_addr().await?;
        match want {
            Some(want) if want != addr => Err(HarnessError::NodeStart {
                name: name.to_string(),
                reason: format!("listens on {addr} instead of {want}"),
                log: node.log.clone(),
            }),
            Some(_) | None => Ok(()),
        }
    }

    /// Polls the cluster (directly) until it reports every slave and a standby.
    async fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let probe = self.probe(Duration::from_secs(1));
        let start = Instant::now();
        loop {
            self.launcher.check_alive()?;
            let seen = match probe.status().await {
                Ok(status) if self.is_whole(&status) => return Ok(()),
                Ok(status) => describe(&status, self.slaves.len()),
                Err(err) => format!("status failed: {err}"),
            };
            if start.elapsed() > READY_DEADLINE {
                return Err(HarnessError::NotReady(format!("{seen} after {READY_DEADLINE:?}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// True when `status` shows every slave joined and a standby following.
    pub fn is_whole(&self, status: &StatusReport) -> bool {
        status.role == net::ServerRole::Master && status.slaves.len() >= self.slaves.len() && status.standby.is_some()
    }

    /// A client that reaches the nodes directly, for the harness's own requests.
    pub fn probe(&self, request_timeout: Duration) -> Client {
        Client::start(ClientConfig {
            servers: self.node_addrs.to_vec(),
            connect_timeout: PROBE_CONNECT,
            request_timeout,
            credentials: self.credentials.clone(),
        })
    }

    /// How workload clients reach the cluster: through the client proxies, or from the
    /// clients' namespace.
    pub fn client_config(&self, request_timeout: Duration) -> ClientConfig {
        ClientConfig {
            servers: self.fabric.client_addrs(),
            connect_timeout: Duration::from_secs(1),
            request_timeout,
            credentials: self.credentials.clone(),
        }
    }

    /// SIGKILLs node `name` (a master-capable node's name or a slave's) and reaps it.
    pub async fn kill(&mut self, name: &str) -> Result<(), HarnessError> {
        self.launcher.kill(name).await
    }

    /// Starts node `name` again with its first command line; a master-capable node must be
    /// listening again before this returns.
    pub async fn restart(&mut self, name: &str) -> Result<(), HarnessError> {
        self.launcher.restart(name)?;
        if node_index(name).is_some() {
            self.await_listening(name).await?;
        }
        Ok(())
    }

    pub fn pause(&mut self, name: &str) -> Result<(), HarnessError> {
        self.launcher.signal(name, libc::SIGSTOP)
    }

    pub fn resume(&mut self, name: &str) -> Result<(), HarnessError> {
        self.launcher.signal(name, libc::SIGCONT)
    }

    /// The names of started nodes that have exited.
    pub fn exited(&mut self) -> Vec<String> {
        let names: Vec<String> = NODE_NAMES.iter().map(|n| n.to_string()).chain(self.slaves.iter().cloned()).collect();
        names.into_iter().filter(|n| !self.launcher.is_running(n)).collect()
    }

    /// A workload client (its connections cut as the clients' links are), with
    /// [`Topology::client_config`].
    pub async fn start_client(&self, request_timeout: Duration) -> Result<Client, HarnessError> {
        self.fabric.start_client(self.client_config(request_timeout)).await
    }

    /// Cuts `links` for fault `id` (its only cut).
    pub fn cut(&mut self, id: FaultId, links: BTreeSet<Link>, cut: Cut) -> Result<(), HarnessError> {
        let changes = self.cuts.add(id, links, cut);
        self.fabric.apply(&changes)
    }

    /// Heals fault `id`'s cut: opens the links no other fault cuts.
    pub fn heal(&mut self, id: FaultId) -> Result<(), HarnessError> {
        let changes = self.cuts.remove(id);
        self.fabric.apply(&changes)
    }

    /// Opens every link.
    pub fn heal_links(&mut self) -> Result<(), HarnessError> {
        let changes = self.cuts.clear();
        self.fabric.apply(&changes)
    }

    /// Opens every link and continues every node (SIGCONT to a running node is harmless).
    pub fn heal_all(&mut self) {
        if let Err(err) = self.heal_links() {
            tracing::warn!(%err, "cannot open every link");
        }
        for name in NODE_NAMES.iter().map(|n| n.to_string()).chain(self.slaves.clone()) {
            let _ = self.resume(&name);
        }
    }

    pub fn info(&self) -> Vec<NodeInfo> {
        self.launcher.info()
    }

    /// Stops every node (healing first, so a paused node can act on SIGTERM).
    pub async fn stop_nodes(&mut self) {
        self.heal_all();
        self.launcher.stop_all().await;
    }

    /// Tears down the network (the namespaces, with `--net namespaces`), after
    /// [`Topology::stop_nodes`]; dropping the topology does it too.
    pub fn remove_network(&mut self) {
        self.fabric.remove();
    }

    /// Removes the nodes' data directories (after [`Topology::stop_nodes`]).
    pub fn remove_data(&self) {
        if let Err(err) = remove_dir(&self.data_dir) {
            tracing::warn!(%err, "cannot remove the cluster's data");
        }
    }
}

/// Index of a master-capable node's name.
pub fn node_index(name: &str) -> Option<usize> {
    NODE_NAMES.iter().position(|n| *n == name)
}

/// One line about a cluster that is not whole yet.
pub fn describe(status: &StatusReport, want: usize) -> String {
    let serves = match status.role {
        net::ServerRole::Master => "serves",
        net::ServerRole::Candidate | net::ServerRole::Standby => "does not serve yet",
    };
    format!(
        "{} {serves} at epoch {} with {} of {want} slaves and {}",
        status.node,
        status.epoch,
        status.slaves.len(),
        if status.standby.is_some() { "a standby" } else { "no standby" }
    )
}

/// Links (or, across file systems, copies) `bin` into `dir`; returns the new path.
fn private_copy(bin: &Path, dir: &Path) -> Result<PathBuf, HarnessError> {
    if !bin.is_file() {
        return Err(HarnessError::Config(format!(
            "no nodes binary at {}; build it (cargo build -p nodes) or pass --nodes-bin",
            bin.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(HarnessError::io(dir))?;
    let copy = dir.join("nodes");
    if std::fs::hard_link(bin, &copy).is_err() {
        std::fs::copy(bin, &copy).map_err(HarnessError::io(&copy))?;
    }
    Ok(copy)
}

/// Lowest port [`stable_port`] picks.
const STABLE_PORTS_FROM: u16 = 10_000;

/// A free loopback port below the ephemeral range (or any free port if there is no room).
fn stable_port() -> Result<String, HarnessError> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next().and_then(|low| low.parse::<u16>().ok()))
        .unwrap_or(32_768);
    if ephemeral_low > STABLE_PORTS_FROM {
        let mut rng = rand::rng();
        for _ in 0..100 {
            let port = rng.random_range(STABLE_PORTS_FROM..ephemeral_low);
            if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                drop(listener);
                return Ok(format!("127.0.0.1:{port}"));
            }
        }
    }
    free_port()
}
