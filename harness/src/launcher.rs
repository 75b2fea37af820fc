//! Child processes of the `nodes` binary: started with their stderr in a log file, killed if
//! dropped (`kill_on_drop`), sent a signal by the kernel if the harness itself dies
//! (`PR_SET_PDEATHSIG`: SIGTERM, or SIGKILL for a nemesis whose nodes may be stopped), and
//! stopped in order by [`Launcher::stop_all`]: SIGTERM (and SIGCONT, for a node that is
//! paused) to all, then SIGKILL to any that has not exited within [`STOP_GRACE`].
//!
//! The nemesis also signals single nodes ([`Launcher::signal`]), kills them
//! ([`Launcher::kill`]) and starts them again with the same command line
//! ([`Launcher::restart`]); a restarted node appends to its log.

use std::ffi::{OsStr, OsString};
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

/// How long a killed node has to be reaped.
const REAP_DEADLINE: Duration = Duration::from_secs(5);

/// One running node.
pub struct Node {
    pub name: String,
    pub log: PathBuf,
    child: Child,
    /// Its command line (after `wrapper`, if any) and whether it announces its address, to
    /// start it again.
    wrapper: Vec<OsString>,
    args: Vec<OsString>,
    announces: bool,
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
    /// What the kernel sends a node when the harness dies.
    death_signal: libc::c_int,
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
        Ok(Launcher {
            bin: bin.to_path_buf(),
            log_dir: log_dir.to_path_buf(),
            nodes: Vec::new(),
            death_signal: libc::SIGTERM,
        })
    }

    /// Nodes get SIGKILL instead of SIGTERM when the harness dies: a stopped (SIGSTOP) node
    /// would keep a SIGTERM pending forever.
    pub fn kill_when_orphaned(mut self) -> Launcher {
        self.death_signal = libc::SIGKILL;
        self
    }

    /// Starts `nodes ARGS...` as `name`. With `announces`, its stdout is kept for
    /// [`Node::listening_addr`]; otherwise it goes nowhere.
    pub fn spawn<A: AsRef<OsStr>>(
        &mut self,
        name: &str,
        args: &[A],
        announces: bool,
    ) -> Result<&mut Node, HarnessError> {
        self.spawn_wrapped(name, &[] as &[OsString], args, announces)
    }

    /// As [`Launcher::spawn`], but runs `WRAPPER... nodes ARGS...` (e.g. `ip netns exec NS`);
    /// the wrapper must exec the binary, so that the pid signalled is the node's.
    pub fn spawn_wrapped<W: AsRef<OsStr>, A: AsRef<OsStr>>(
        &mut self,
        name: &str,
        wrapper: &[W],
        args: &[A],
        announces: bool,
    ) -> Result<&mut Node, HarnessError> {
        let wrapper: Vec<OsString> = wrapper.iter().map(|a| a.as_ref().to_os_string()).collect();
        let args: Vec<OsString> = args.iter().map(|a| a.as_ref().to_os_string()).collect();
        let log = self.log_dir.join(format!("{name}.log"));
        let stderr = std::fs::File::create(&log).map_err(HarnessError::io(&log))?;
        let child = self.start_child(name, &wrapper, &args, announces, stderr)?;
        self.nodes.push(Node { name: name.to_string(), log, child, wrapper, args, announces });
        Ok(self.nodes.last_mut().expect("just pushed"))
    }

    fn start_child(
        &self,
        name: &str,
        wrapper: &[OsString],
        args: &[OsString],
        announces: bool,
        stderr: std::fs::File,
    ) -> Result<Child, HarnessError> {
        let mut command = match wrapper.split_first() {
            None => Command::new(&self.bin),
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(&self.bin);
                command
            }
        };
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(if announces { Stdio::piped() } else { Stdio::null() })
            .stderr(stderr)
            .kill_on_drop(true);
        let death_signal = self.death_signal;
        // SAFETY: prctl(2) is async-signal-safe and touches only the child being started.
        unsafe {
            command.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, death_signal);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|cause| HarnessError::Spawn {
            name: name.to_string(),
            bin: self.bin.clone(),
            cause,
        })?;
        tracing::debug!(node = name, pid = child.id(), "started");
        Ok(child)
    }

    /// Node `name`.
    pub fn node(&mut self, name: &str) -> Result<&mut Node, HarnessError> {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .ok_or_else(|| HarnessError::Config(format!("no node named {name} was started")))
    }

    /// Sends `signal` to node `name` if it is running.
    pub fn signal(&mut self, name: &str, signal: libc::c_int) -> Result<(), HarnessError> {
        let node = self.node(name)?;
        if let Some(pid) = node.child.id() {
            // SAFETY: kill(2) on our own child with a valid signal number.
            unsafe { libc::kill(pid as libc::pid_t, signal) };
        }
        Ok(())
    }

    /// SIGKILLs node `name` and reaps it.
    pub async fn kill(&mut self, name: &str) -> Result<(), HarnessError> {
        let node = self.node(name)?;
        let _ = node.child.start_kill();
        match tokio::time::timeout(REAP_DEADLINE, node.child.wait()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(HarnessError::io(&node.log)(err)),
            Err(_) => Err(HarnessError::NodeStop {
                name: name.to_string(),
                reason: format!("still running {REAP_DEADLINE:?} after SIGKILL"),
                log: node.log.clone(),
            }),
        }
    }

    /// True while node `name` has not exited.
    pub fn is_running(&mut self, name: &str) -> bool {
        self.node(name).is_ok_and(|n| matches!(n.child.try_wait(), Ok(None)))
    }

    /// Starts node `name` again with its first command line, its log appended to; the node
    /// must have exited (see [`Launcher::kill`]).
    pub fn restart(&mut self, name: &str) -> Result<&mut Node, HarnessError> {
        let index = self
            .nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| HarnessError::Config(format!("no node named {name} was started")))?;
        let (log, wrapper, args, announces) = {
            let node = &mut self.nodes[index];
            if matches!(node.child.try_wait(), Ok(None)) {
                return Err(HarnessError::NodeStop {
                    name: name.to_string(),
                    reason: "it is still running; kill it before starting it again".into(),
                    log: node.log.clone(),
                });
            }
            (node.log.clone(), node.wrapper.clone(), node.args.clone(), node.announces)
        };
        let stderr =
            std::fs::OpenOptions::new().create(true).append(true).open(&log).map_err(HarnessError::io(&log))?;
        let child = self.start_child(name, &wrapper, &args, announces, stderr)?;
        let node = &mut self.nodes[index];
        node.child = child;
        Ok(node)
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

    /// SIGTERM to every node (and SIGCONT, so a paused one acts on it), then SIGKILL to
    /// those still running after [`STOP_GRACE`].
    pub async fn stop_all(&mut self) {
        for node in &self.nodes {
            if let Some(pid) = node.child.id() {
                // SAFETY: kill(2) on our own child with valid signal numbers.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGTERM);
                    libc::kill(pid as libc::pid_t, libc::SIGCONT);
                }
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
