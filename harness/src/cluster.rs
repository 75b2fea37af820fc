//! The cluster under load: one the harness starts from the `nodes` binary (a master and a backup
//! on free loopback ports, then `--slaves N` slaves, ready once the master reports them all and
//! its standby), or an existing one given by address.
//!
//! A started cluster keeps its data in `<run folder>/data`, emptied before it starts (a run
//! measures a fresh cluster, not one recovering an earlier run's log) and removed after its
//! nodes stop; their logs stay in `<run folder>/logs`.
//!
//! Each role has its own start function (`start_master`, `start_backup`, `start_slave`); the
//! backup's address goes into `servers` after the master's, where clients and slaves look for it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use actors::client::{Client, ClientConfig};
use actors::security::Credentials;
use serde::Serialize;

use crate::error::HarnessError;
use crate::launcher::{Launcher, NodeInfo};
use crate::secrets::Secrets;

/// An address where nothing listens: the "backup" of a cluster that has none.
pub const NOWHERE: &str = "127.0.0.1:1";

/// How long a started cluster has to report all its slaves.
pub const READY_DEADLINE: Duration = Duration::from_secs(30);

/// Deadline for one connection attempt of a load client.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Which cluster to drive.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start one from `nodes_bin`; `secure`: with a cluster key, a client password and TLS.
    Launch { nodes_bin: PathBuf, slaves: u32, replicas: u32, secure: bool },
    /// Use a running one, with the password and TLS it asks of clients.
    Existing { master: String, backup: Option<String>, credentials: Credentials },
}

/// A cluster and, when the harness started it, its processes.
pub struct Cluster {
    target: Target,
    /// Master-capable addresses, the master first.
    servers: Vec<String>,
    launcher: Option<Launcher>,
    /// The started nodes' data, removed when they stop.
    data_dir: Option<PathBuf>,
    /// Where a secured cluster's key, password and certificates are made.
    secrets_dir: PathBuf,
    /// What clients present.
    credentials: Credentials,
}

/// What `cluster.json` records.
#[derive(Debug, Serialize)]
pub struct ClusterInfo {
    pub servers: Vec<String>,
    pub nodes: Vec<NodeInfo>,
    /// Clients use TLS.
    pub tls: bool,
    /// Clients present a password.
    pub password: bool,
}

impl Cluster {
    /// A cluster for `target`; started nodes log into `dir/logs` and keep data in `dir/data`.
    pub fn new(target: Target, dir: &Path) -> Result<Cluster, HarnessError> {
        let (servers, launcher, data_dir, credentials) = match &target {
            Target::Launch { nodes_bin, .. } => {
                let launcher = Launcher::new(nodes_bin, &dir.join("logs"))?;
                (Vec::new(), Some(launcher), Some(dir.join("data")), Credentials::default())
            }
            Target::Existing { master, backup, credentials } => {
                let servers = std::iter::once(master.clone()).chain(backup.clone()).collect();
                (servers, None, None, credentials.clone())
            }
        };
        Ok(Cluster { target, servers, launcher, data_dir, secrets_dir: dir.join("secrets"), credentials })
    }

    /// Starts the nodes (if the harness owns them) and waits until the cluster is ready.
    pub async fn start(&mut self) -> Result<(), HarnessError> {
        let (Target::Launch { nodes_bin, slaves, replicas, secure }, Some(launcher), Some(data)) =
            (&self.target, self.launcher.as_mut(), &self.data_dir)
        else {
            return Ok(());
        };
        remove_dir(data)?;
        let secrets = match secure {
            true => {
                let secrets = Secrets::make(nodes_bin, &self.secrets_dir, *slaves)?;
                self.credentials = secrets.credentials()?;
                Some(secrets)
            }
            false => None,
        };
        let flags = |name: &str, server: bool| secrets.as_ref().map(|s| s.flags(name, server)).unwrap_or_default();
        let (master_addr, backup_addr) = (free_port()?, free_port()?);
        let (master_data, backup_data) = (data.join("master"), data.join("backup"));
        let master =
            start_node(launcher, "master", &master_addr, &backup_addr, &master_data, *replicas, &flags("master", true))
                .await?;
        let backup =
            start_node(launcher, "backup", &backup_addr, &master, &backup_data, *replicas, &flags("backup", true))
                .await?;
        self.servers.push(master);
        self.servers.push(backup);
        for i in 1..=*slaves {
            let name = format!("slave-{i}");
            start_slave(launcher, &name, &data.join(&name), &self.servers, &flags(&name, false))?;
        }
        let probe = Client::start(ClientConfig {
            servers: self.servers.clone(),
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: Duration::from_secs(2),
            credentials: self.credentials.clone(),
        });
        wait_for_slaves(launcher, &probe, *slaves as usize).await
    }

    /// How a load client reaches this cluster.
    pub fn client_config(&self, request_timeout: Duration) -> ClientConfig {
        ClientConfig {
            servers: self.servers.clone(),
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout,
            credentials: self.credentials.clone(),
        }
    }

    /// True when the harness started the nodes.
    pub fn is_launched(&self) -> bool {
        self.launcher.is_some()
    }

    pub fn info(&self) -> ClusterInfo {
        ClusterInfo {
            servers: self.servers.clone(),
            nodes: self.launcher.as_ref().map(Launcher::info).unwrap_or_default(),
            tls: self.credentials.tls.is_some(),
            password: self.credentials.password.is_some(),
        }
    }

    /// Stops every node the harness started and removes their data.
    pub async fn stop(&mut self) {
        if let Some(launcher) = &mut self.launcher {
            launcher.stop_all().await;
        }
        if let Some(data) = &self.data_dir {
            if let Err(err) = remove_dir(data) {
                tracing::warn!(%err, "cannot remove the cluster's data");
            }
        }
    }
}

/// A free loopback port (bound, then released for the node to take).
pub(crate) fn free_port() -> Result<String, HarnessError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(HarnessError::io("127.0.0.1:0"))?;
    Ok(listener.local_addr().map_err(HarnessError::io("127.0.0.1:0"))?.to_string())
}

/// Starts `role` (`master` or `backup`) on `listen`, with `peer` as the other master-capable
/// node and its data in `data`; returns the address it listens on.
async fn start_node(
    launcher: &mut Launcher,
    role: &str,
    listen: &str,
    peer: &str,
    data: &Path,
    replicas: u32,
    extra: &[std::ffi::OsString],
) -> Result<String, HarnessError> {
    let replicas = replicas.to_string();
    let peer_flag = if role == "master" { "--backup" } else { "--master" };
    let args: [&OsStr; 15] = [
        role.as_ref(),
        "--listen".as_ref(),
        listen.as_ref(),
        peer_flag.as_ref(),
        peer.as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
        "--replicas".as_ref(),
        replicas.as_ref(),
        "--id".as_ref(),
        role.as_ref(),
        "--redis-listen".as_ref(),
        "off".as_ref(),
        "--sentinel-listen".as_ref(),
        "off".as_ref(),
    ];
    let args: Vec<&OsStr> = args.into_iter().chain(extra.iter().map(|a| a.as_os_str())).collect();
    launcher.spawn(role, &args, true)?.listening_addr().await
}

/// Starts slave `name` with its data in `data`, following `servers` (master, then backup).
fn start_slave(
    launcher: &mut Launcher,
    name: &str,
    data: &Path,
    servers: &[String],
    extra: &[std::ffi::OsString],
) -> Result<(), HarnessError> {
    let master = servers.first().map_or(NOWHERE, String::as_str);
    let backup = servers.get(1).map_or(NOWHERE, String::as_str);
    let args: [&OsStr; 9] = [
        "slave".as_ref(),
        "--master".as_ref(),
        master.as_ref(),
        "--backup".as_ref(),
        backup.as_ref(),
        "--id".as_ref(),
        name.as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ];
    let args: Vec<&OsStr> = args.into_iter().chain(extra.iter().map(|a| a.as_os_str())).collect();
    launcher.spawn(name, &args, false).map(|_| ())
}

/// Polls the master's status until it reports `want` slaves.
async fn wait_for_slaves(launcher: &mut Launcher, probe: &Client, want: usize) -> Result<(), HarnessError> {
    let start = Instant::now();
    loop {
        launcher.check_alive()?;
        let seen = match probe.status().await {
            Ok(status) if status.slaves.len() >= want => return Ok(()),
            Ok(status) => format!("{} of {want} slaves joined", status.slaves.len()),
            Err(err) => format!("status failed: {err}"),
        };
        if start.elapsed() > READY_DEADLINE {
            return Err(HarnessError::NotReady(format!("{seen} after {READY_DEADLINE:?}")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Removes `dir` and everything in it; a missing `dir` is fine.
pub(crate) fn remove_dir(dir: &Path) -> Result<(), HarnessError> {
    match std::fs::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(HarnessError::io(dir)(err)),
        Ok(()) | Err(_) => Ok(()),
    }
}
