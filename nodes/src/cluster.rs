//! `nodes cluster`: a master, a backup and N slaves on this machine, as child processes of this
//! one. Their logs go to files in the cluster's folder; the addresses go to stdout. A node that
//! dies is reported and the others go on (so a failover can be tried by killing the master).
//! Ctrl-C or SIGTERM stops them all (SIGTERM, then SIGKILL for any that lingers).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::args::ClusterArgs;
use crate::security::SecretFiles;
use crate::serve::{announce, shutdown_signal};

struct Node {
    name: String,
    child: Child,
    exited: bool,
}

pub fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("kvstore-cluster-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let exe = std::env::current_exe().context("cannot find the nodes binary")?;
    actix_rt::System::new().block_on(async move {
        let mut nodes = Vec::new();
        let result = start_all(&exe, &dir, &args, &mut nodes).await;
        if result.is_ok() {
            announce(&format!("cluster running; logs in {}; Ctrl-C stops it", dir.display()));
            // A node that dies (or is killed to try a failover) is reported; the rest go on.
            let mut watch = tokio::time::interval(Duration::from_millis(500));
            let shutdown = shutdown_signal();
            tokio::pin!(shutdown);
            loop {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = watch.tick() => report_exits(&mut nodes),
                }
            }
        }
        stop_all(&mut nodes).await;
        result
    })
}

async fn start_all(exe: &Path, dir: &Path, args: &ClusterArgs, nodes: &mut Vec<Node>) -> anyhow::Result<()> {
    let (master_listen, backup_listen) = if args.listen.ends_with(":0") {
        let (a, b) = (free_port(&args.listen)?, free_port(&args.listen)?);
        (a.local_addr()?.to_string(), b.local_addr()?.to_string())
    } else {
        (args.listen.clone(), args.backup_listen.clone())
    };
    let replicas = args.replicas.to_string();
    let path =
        |name: &str| dir.join(name).to_str().map(str::to_string).context("the cluster folder's path is not UTF-8");
    let free = args.listen.ends_with(":0");
    let redis_addr = |flag: &str| if free && flag != "off" { "127.0.0.1:0".to_string() } else { flag.to_string() };
    let (redis, sentinel) = (redis_addr(&args.redis_listen), redis_addr(&args.sentinel_listen));
    let (backup_redis, backup_sentinel) =
        (redis_addr(&args.backup_redis_listen), redis_addr(&args.backup_sentinel_listen));
    let secrets = if args.secure { make_secrets(dir, args.slaves)? } else { SecretFiles::default() };
    let server_flags = |role: &str| secrets.server_flags(role);
    let master_data = path("master")?;
    let master_args = [
        "master",
        "--listen",
        &master_listen,
        "--backup",
        &backup_listen,
        "--replicas",
        &replicas,
        "--data-dir",
        &master_data,
        "--redis-listen",
        &redis,
        "--sentinel-listen",
        &sentinel,
    ];
    let master_args: Vec<String> = master_args.iter().map(|a| a.to_string()).chain(server_flags("master")).collect();
    nodes.push(spawn(exe, dir, "master", &master_args)?);
    let extra = endpoints(&redis, &sentinel);
    let (addr, more) = listening_addrs(nodes.last_mut().expect("just pushed"), extra).await?;
    announce(&format!("master  {addr}{more}  pid {}", pid(&nodes[0])));
    // The master's Redis address is the word after "redis" in its line.
    let master_redis = more.split_whitespace().skip_while(|w| *w != "redis").nth(1).map(str::to_string);
    let backup_data = path("backup")?;
    let backup_args = [
        "backup",
        "--listen",
        &backup_listen,
        "--master",
        &addr,
        "--replicas",
        &replicas,
        "--data-dir",
        &backup_data,
        "--redis-listen",
        &backup_redis,
        "--sentinel-listen",
        &backup_sentinel,
    ];
    let backup_args: Vec<String> = backup_args.iter().map(|a| a.to_string()).chain(server_flags("backup")).collect();
    nodes.push(spawn(exe, dir, "backup", &backup_args)?);
    let extra = endpoints(&backup_redis, &backup_sentinel);
    let (backup, more) = listening_addrs(nodes.last_mut().expect("just pushed"), extra).await?;
    announce(&format!("backup  {backup}{more}  pid {}", pid(&nodes[1])));
    for i in 1..=args.slaves {
        let name = format!("slave-{i}");
        let data = path(&name)?;
        let slave_args = ["slave", "--master", &addr, "--backup", &backup, "--id", &name, "--data-dir", &data];
        let slave_args: Vec<String> =
            slave_args.iter().map(|a| a.to_string()).chain(secrets.slave_flags(&name)).collect();
        let slave = spawn(exe, dir, &name, &slave_args)?;
        announce(&format!("{name} -> {addr}  pid {}", slave.child.id().unwrap_or(0)));
        nodes.push(slave);
    }
    if let (Some(password), Some(ca)) = (&secrets.password, secrets.cert_file("ca.pem")) {
        announce(&format!("secured; connect with: nodes client {}", secrets.client_flags().join(" ")));
        if let Some((host, port)) = master_redis.as_deref().and_then(|a| a.rsplit_once(':')) {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            announce(&format!(
                "redis: REDISCLI_AUTH=\"$(cat '{}')\" redis-cli -h {host} -p {port} --tls --cacert '{ca}'",
                password.display()
            ));
        }
    }
    Ok(())
}

/// Makes (or reuses) a key, a password and certificates for the master, the backup, each slave
/// and a client.
fn make_secrets(dir: &Path, slaves: u32) -> anyhow::Result<SecretFiles> {
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).with_context(|| format!("cannot create {}", secrets.display()))?;
    let key = secrets.join("cluster.key");
    if !key.exists() {
        actors::security::ClusterKey::generate(&key)?;
    }
    let password = secrets.join("client.password");
    if !password.exists() {
        actors::security::password::generate_password_file(&password)?;
    }
    let certs = secrets.join("certs");
    let mut names: Vec<String> = ["master", "backup", "client"].map(String::from).to_vec();
    names.extend((1..=slaves).map(|i| format!("slave-{i}")));
    // Every process is started here, so a new CA (when a certificate is missing, say for a slave
    // added since) replaces the old one everywhere at once.
    if !names.iter().all(|name| certs.join(format!("{name}.pem")).exists()) {
        let _ = std::fs::remove_dir_all(&certs);
        let hosts = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        crate::security::write_certs(&certs, &names, &hosts, 365)?;
    }
    Ok(SecretFiles { key: Some(key), password: Some(password), certs: Some(certs) })
}

/// A free port on the host of `addr` (which names port 0), held until the listener is dropped.
fn free_port(addr: &str) -> anyhow::Result<std::net::TcpListener> {
    std::net::TcpListener::bind(addr).with_context(|| format!("cannot bind {addr}"))
}

fn spawn<S: AsRef<std::ffi::OsStr>>(exe: &Path, dir: &Path, name: &str, args: &[S]) -> anyhow::Result<Node> {
    let log_path: PathBuf = dir.join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut command = Command::new(exe);
    // SAFETY: prctl in the child before exec only sets its parent-death signal, so the nodes
    // stop even if this process is killed with SIGKILL.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {name}"))?;
    Ok(Node { name: name.to_string(), child, exited: false })
}

/// How many more `... listening on ADDR` lines a master-capable node prints.
fn endpoints(redis: &str, sentinel: &str) -> usize {
    match (redis, sentinel) {
        ("off", _) => 0,
        (_, "off") => 1,
        _ => 2,
    }
}

/// Reads the node's `listening on ADDR` line and `extra` more (`redis listening on ADDR`, ...),
/// then keeps draining its stdout. Returns the address and the others as ` redis ADDR ...`.
async fn listening_addrs(node: &mut Node, extra: usize) -> anyhow::Result<(String, String)> {
    let Some(stdout) = node.child.stdout.take() else { bail!("{} has no stdout", node.name) };
    let mut lines = BufReader::new(stdout).lines();
    let mut addr = None;
    let mut more = String::new();
    for _ in 0..=extra {
        let wait = tokio::time::timeout(Duration::from_secs(10), lines.next_line());
        let line = match wait.await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) | Ok(Err(_)) => bail!("{} exited before listening; see its log", node.name),
            Err(_) => bail!("{} did not start listening within 10 s", node.name),
        };
        let Some((what, at)) = line.split_once("listening on ") else { bail!("{} said {line:?}", node.name) };
        match what.trim() {
            "" => addr = Some(at.trim().to_string()),
            what => more.push_str(&format!("  {what} {}", at.trim())),
        }
    }
    let Some(addr) = addr else { bail!("{} did not say where it listens", node.name) };
    actix_rt::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((addr, more))
}

/// Logs nodes that exited since the last look.
fn report_exits(nodes: &mut [Node]) {
    for node in nodes.iter_mut().filter(|n| !n.exited) {
        if let Ok(Some(status)) = node.child.try_wait() {
            node.exited = true;
            tracing::warn!(node = %node.name, %status, "node exited; the others go on");
            announce(&format!("{} exited ({status})", node.name));
        }
    }
}

async fn stop_all(nodes: &mut [Node]) {
    for node in nodes.iter() {
        if let Some(id) = node.child.id() {
            // SAFETY: kill(2) with a pid of our own child and a valid signal number.
            unsafe { libc::kill(id as libc::pid_t, libc::SIGTERM) };
        }
    }
    for node in nodes.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(5), node.child.wait()).await.is_err() {
            tracing::warn!(node = %node.name, "did not stop on SIGTERM; killing it");
            let _ = node.child.kill().await;
        }
    }
}

fn pid(node: &Node) -> u32 {
    node.child.id().unwrap_or(0)
}
