//! Child processes of the `nodes` binary: started with their stderr in a log file, killed if
//! dropped (`kill_on_drop`), sent SIGTERM by the kernel if the harness itself dies
//! (`PR_SET_PDEATHSIG`), and stopped in order by [`Launcher::stop_all`]: SIGTERM to all,
//! then SIGKILL to any that has not exited within [`STOP_GRACE`].

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::error::HarnessError;

/// How long a node has to exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long a node has to print its address.
pub const LISTEN_DEADLINE: Duration = Duration::from_secs(10);

/// One running node.
pub struct Node {
    pub name: String,
    pub log: PathBuf,
    child: Child,
}

/// What `cluster.json` says about a node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeInfo {
    pub name: String,
    pub pid: Option<u32>,
    pub log: PathBuf,
}

/// Starts and stops the nodes of one cluster.
pub struct Launcher {
    bin: PathBuf,
    log_dir: PathBuf,
    nodes: Vec<Node>,
}

impl Launcher {
    /// Nodes run `bin` and log into `log_dir` (created if missing).
    pub fn new(bin: &Path, log_dir: &Path) -> Result<Launcher, HarnessError> {
        if !bin.is_file() {
            return Err(HarnessError::Config(format!(
                "no nodes binary at {}; build it (cargo build -p nodes) or pass --nodes-bin",
                bin.display()
            )));
        }
        std::fs::create_dir_all(log_dir).map_err(HarnessError::io(log_dir))?;
        Ok(Launcher { bin: bin.to_path_buf(), log_dir: log_dir.to_path_buf(), nodes: Vec::new() })
    }

    /// Starts `nodes ARGS...` as `name`. With `announces`, its stdout is kept for
    /// [`Node::listening_addr`]; otherwise it goes nowhere.
    pub fn spawn<A: AsRef<OsStr>>(
        &mut self,
        name: &str,
        args: &[A],
        announces: bool,
    ) -> Result<&mut Node, HarnessError> {
        let log = self.log_dir.join(format!("{name}.log"));
        let stderr = std::fs::File::create(&log).map_err(HarnessError::io(&log))?;
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(if announces { Stdio::piped() } else { Stdio::null() })
            .stderr(stderr)
            .kill_on_drop(true);
        // SAFETY: prctl(2) is async-signal-safe and touches only the child being started.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|source| HarnessError::Spawn {
            name: name.to_string(),
            bin: self.bin.clone(),
            source,
        })?;
        tracing::debug!(node = name, pid = child.id(), "started");
        self.nodes.push(Node { name: name.to_string(), log, child });
        Ok(self.nodes.last_mut().expect("just pushed"))
    }

    /// An error naming the first node that has exited, if any.
    pub fn check_alive(&mut self) -> Result<(), HarnessError> {
        for node in &mut self.nodes {
            if let Ok(Some(status)) = node.child.try_wait() {
                return Err(HarnessError::NodeStart {
                    name: node.name.clone(),
                    reason: format!("exited with {status}"),
                    log: node.log.clone(),
                });
            }
        }
        Ok(())
    }

    pub fn info(&self) -> Vec<NodeInfo> {
        self.nodes.iter().map(|n| NodeInfo { name: n.name.clone(), pid: n.child.id(), log: n.log.clone() }).collect()
    }

    /// SIGTERM to every node, then SIGKILL to those still running after [`STOP_GRACE`].
    pub async fn stop_all(&mut self) {
        for node in &self.nodes {
            if let Some(pid) = node.child.id() {
                // SAFETY: kill(2) on our own child with a valid signal number.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            }
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        for node in &mut self.nodes {
            match tokio::time::timeout_at(deadline, node.child.wait()).await {
                Ok(Ok(status)) => tracing::debug!(node = %node.name, %status, "stopped"),
                Ok(Err(err)) => tracing::warn!(node = %node.name, %err, "cannot wait for it"),
                Err(_) => {
                    tracing::warn!(node = %node.name, "did not stop on SIGTERM; killing it");
                    let _ = node.child.kill().await;
                }
            }
        }
        self.nodes.clear();
    }
}

impl Node {
    /// Reads the node's `listening on ADDR` line, then keeps draining its stdout.
    pub async fn listening_addr(&mut self) -> Result<String, HarnessError> {
        let fail = |reason: String| HarnessError::NodeStart { name: self.name.clone(), reason, log: self.log.clone() };
        let Some(stdout) = self.child.stdout.take() else {
            return Err(fail("its stdout was already taken".into()));
        };
        let mut lines = BufReader::new(stdout).lines();
        let line = match tokio::time::timeout(LISTEN_DEADLINE, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) | Ok(Err(_)) => return Err(fail("exited before listening".into())),
            Err(_) => return Err(fail(format!("not listening after {LISTEN_DEADLINE:?}"))),
        };
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            return Err(fail(format!("printed {line:?} instead of its address")));
        };
        actix_rt::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(addr.to_string())
    }
}
