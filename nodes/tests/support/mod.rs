//! Test support: real `nodes` processes on free loopback ports, stopped when dropped (also
//! when a test fails, in which case their logs are printed).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use actors::client::{Client, ClientConfig};
use actors::security::{Credentials, TlsFiles};
use nodes::security::SecretFiles;
use serde_json::Value as Json;

pub const NODES: &str = env!("CARGO_BIN_EXE_nodes");

/// The `nodes` binary the cluster processes run: this build's, or another one named by
/// `KV_TEST_NODES` (to show that a regression test fails on an older build).
pub fn nodes_bin() -> String {
    std::env::var("KV_TEST_NODES").unwrap_or_else(|_| NODES.to_string())
}
/// An address where nothing listens: used as the "backup" so no test reaches a stray server.
pub const NOWHERE: &str = "127.0.0.1:1";
/// How long any awaited condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Fast failure detection for tests.
pub const MASTER_FLAGS: &[&str] = &[
    "--heartbeat-ms",
    "100",
    "--slave-timeout-ms",
    "800",
    "--backup",
    "off",
    "--redis-listen",
    "off",
    "--sentinel-listen",
    "off",
];
pub const SLAVE_FLAGS: &[&str] = &["--master-timeout-ms", "800"];

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// A fresh folder for one test's files.
pub fn test_dir(name: &str) -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("kvtest-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

/// A child process of the `nodes` binary. Dropping it kills it.
pub struct Proc {
    pub name: String,
    child: Child,
    log: PathBuf,
    stdout: Option<BufReader<std::process::ChildStdout>>,
}

impl Proc {
    pub fn spawn(dir: &std::path::Path, name: &str, args: &[&str]) -> Proc {
        Proc::spawn_env(dir, name, args, &[])
    }

    /// As `spawn`, with extra environment variables (FAILPOINTS, for instance).
    pub fn spawn_env(dir: &std::path::Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
        let mut child = Command::new(nodes_bin())
            .args(args)
            .env("RUST_LOG", std::env::var("TEST_NODE_LOG").unwrap_or_else(|_| "info".into()))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn nodes");
        let stdout = child.stdout.take().map(BufReader::new);
        Proc { name: name.to_string(), child, log, stdout }
    }

    /// Waits for the `listening on ADDR` line and returns ADDR.
    pub fn listening_addr(&mut self) -> String {
        let mut line = String::new();
        let stdout = self.stdout.as_mut().expect("stdout");
        stdout.read_line(&mut line).expect("read stdout");
        let addr = line.trim().strip_prefix("listening on ").unwrap_or_else(|| {
            panic!("{} printed {line:?} instead of its address; log:\n{}", self.name, self.log_text())
        });
        addr.to_string()
    }

    /// Waits for the next stdout line, which must start with `prefix` (`redis listening on `,
    /// for instance), and returns the rest.
    pub fn announced(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        let stdout = self.stdout.as_mut().expect("stdout");
        stdout.read_line(&mut line).expect("read stdout");
        match line.trim().strip_prefix(prefix) {
            Some(rest) => rest.to_string(),
            None => panic!("{} printed {line:?}, not {prefix:?}; log:\n{}", self.name, self.log_text()),
        }
    }

    /// The raw stdout, for processes that print more than their address.
    pub fn take_stdout(&mut self) -> std::process::ChildStdout {
        self.stdout.take().expect("stdout").into_inner()
    }

    pub fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child with a valid signal number.
        unsafe { libc::kill(self.pid(), signal) };
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(start.elapsed() < DEADLINE, "{} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A stopped process must be continued to die promptly on some kernels' accounting.
        self.signal(libc::SIGCONT);
        self.kill();
        if std::thread::panicking() {
            let text = self.log_text();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!("---- last lines of {} ----", self.name);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// A master (with or without a backup) and its slaves.
pub struct Cluster {
    pub dir: PathBuf,
    pub addr: String,
    pub master: Proc,
    pub slaves: BTreeMap<String, Proc>,
    master_args: Vec<String>,
    /// The backup's address and process, when the cluster has one.
    pub backup_addr: Option<String>,
    pub backup: Option<Proc>,
    /// The key, password and certificates every process is given.
    pub secrets: Secrets,
}

/// What a secured test cluster runs with, made with `nodes keygen` and `nodes gen-certs`; the
/// files and the flags for each role are the binary's own (`SecretFiles`).
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    files: SecretFiles,
}

impl std::ops::Deref for Secrets {
    type Target = SecretFiles;

    fn deref(&self) -> &SecretFiles {
        &self.files
    }
}

/// The names `Secrets::make` writes certificates for.
pub const CERT_NAMES: &str = "master,backup,slave-1,slave-2,slave-3,slave-4,client";

impl Secrets {
    /// Makes the secrets asked for in `dir` with the `nodes` commands a user would run.
    pub fn make(dir: &std::path::Path, key: bool, password: bool, tls: bool) -> Secrets {
        let run = |args: &[&str]| {
            let out = Command::new(NODES).args(args).output().expect("run nodes");
            assert!(out.status.success(), "nodes {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        };
        let key = key.then(|| {
            let path = dir.join("cluster.key");
            run(&["keygen", path.to_str().expect("utf-8 path")]);
            path
        });
        let password = password.then(|| {
            let path = dir.join("client.password");
            std::fs::write(&path, "open sesame\n").expect("write the password file");
            path
        });
        let certs = tls.then(|| {
            let path = dir.join("certs");
            run(&["gen-certs", path.to_str().expect("utf-8 path"), "--names", CERT_NAMES]);
            path
        });
        Secrets { files: SecretFiles { key, password, certs } }
    }

    /// The same as `client_flags`, for the client library.
    pub fn credentials(&self) -> Credentials {
        let tls = TlsFiles { ca: self.certs.as_ref().map(|c| c.join("ca.pem")), ..TlsFiles::default() };
        Credentials::for_client(self.password.as_deref(), &tls).expect("the client's secrets")
    }
}

/// Flags for master-capable nodes in clusters with a backup: fast failure detection.
pub const PAIR_FLAGS: &[&str] = &[
    "--heartbeat-ms",
    "100",
    "--slave-timeout-ms",
    "800",
    "--failover-after-ms",
    "800",
    "--peer-wait-ms",
    "500",
    "--redis-listen",
    "off",
    "--sentinel-listen",
    "off",
];

/// Borrowed views of owned arguments.
pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// A free loopback port (bound and released: good enough for tests).
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}

impl Cluster {
    /// A master on a free port with `slaves` slaves named slave-1.., all joined.
    pub fn start(name: &str, slaves: usize, master_args: &[&str]) -> Cluster {
        Cluster::start_env(name, slaves, master_args, &[])
    }

    /// As `start`, with extra environment variables for the master.
    pub fn start_env(name: &str, slaves: usize, master_args: &[&str], env: &[(&str, &str)]) -> Cluster {
        Cluster::start_with(test_dir(name), "127.0.0.1:0", slaves, master_args, env, Secrets::default())
    }

    /// As `start_env`, with the master on a fixed free port, so that a master that restarts
    /// itself (stepping down) comes back at the address its slaves know.
    pub fn start_env_fixed(name: &str, slaves: usize, master_args: &[&str], env: &[(&str, &str)]) -> Cluster {
        Cluster::start_with(test_dir(name), &free_addr(), slaves, master_args, env, Secrets::default())
    }

    /// As `start`, with every process given `secrets` (made in the cluster's folder by `make`).
    pub fn start_secured(
        name: &str,
        slaves: usize,
        master_args: &[&str],
        make: impl FnOnce(&std::path::Path) -> Secrets,
    ) -> Cluster {
        let dir = test_dir(name);
        let secrets = make(&dir);
        Cluster::start_with(dir, "127.0.0.1:0", slaves, master_args, &[], secrets)
    }

    fn start_with(
        dir: PathBuf,
        listen: &str,
        slaves: usize,
        master_args: &[&str],
        env: &[(&str, &str)],
        secrets: Secrets,
    ) -> Cluster {
        let mut master_args: Vec<String> = master_args.iter().map(|a| a.to_string()).collect();
        master_args.extend(secrets.server_flags("master"));
        let args: Vec<&str> = master_args.iter().map(String::as_str).collect();
        let (master, addr) = Cluster::spawn_master_env(&dir, listen, &args, env);
        let mut cluster = Cluster {
            dir,
            addr,
            master,
            slaves: BTreeMap::new(),
            master_args,
            backup_addr: None,
            backup: None,
            secrets,
        };
        let names: Vec<String> = (1..=slaves).map(|i| format!("slave-{i}")).collect();
        for name in &names {
            cluster.start_slave(name);
        }
        cluster.wait_for_slaves(&names.iter().map(String::as_str).collect::<Vec<_>>());
        cluster
    }

    /// A master and a backup on fixed free ports, and `slaves` slaves following both.
    pub fn start_pair(name: &str, slaves: usize, extra: &[&str]) -> Cluster {
        Cluster::start_pair_linked(name, slaves, extra, |addr| addr.to_string())
    }

    /// As `start_pair`, but each of the two nodes reaches the other at `link(address)` (a proxy).
    pub fn start_pair_linked(name: &str, slaves: usize, extra: &[&str], link: impl Fn(&str) -> String) -> Cluster {
        Cluster::start_pair_with(test_dir(name), slaves, extra, link, Secrets::default())
    }

    /// As `start_pair`, with every process given `secrets` (made in the cluster's folder by `make`).
    pub fn start_pair_secured(
        name: &str,
        slaves: usize,
        extra: &[&str],
        make: impl FnOnce(&std::path::Path) -> Secrets,
    ) -> Cluster {
        let dir = test_dir(name);
        let secrets = make(&dir);
        Cluster::start_pair_with(dir, slaves, extra, |addr| addr.to_string(), secrets)
    }

    fn start_pair_with(
        dir: PathBuf,
        slaves: usize,
        extra: &[&str],
        link: impl Fn(&str) -> String,
        secrets: Secrets,
    ) -> Cluster {
        let (master_addr, backup_addr) = (free_addr(), free_addr());
        let with = |role: &str| -> Vec<String> {
            extra.iter().map(|a| a.to_string()).chain(secrets.server_flags(role)).collect()
        };
        let (master_extra, backup_extra) = (with("master"), with("backup"));
        let master = Cluster::spawn_pair_node(&dir, "master", &master_addr, &link(&backup_addr), &strs(&master_extra));
        let backup = Cluster::spawn_pair_node(&dir, "backup", &backup_addr, &link(&master_addr), &strs(&backup_extra));
        let mut cluster = Cluster {
            dir,
            addr: master_addr,
            master,
            slaves: BTreeMap::new(),
            master_args: master_extra,
            backup_addr: Some(backup_addr),
            backup: Some(backup),
            secrets,
        };
        let names: Vec<String> = (1..=slaves).map(|i| format!("slave-{i}")).collect();
        for name in &names {
            cluster.start_slave(name);
        }
        cluster.wait_for_slaves(&names.iter().map(String::as_str).collect::<Vec<_>>());
        cluster.wait_status("the standby following", |s| !s["standby"].is_null());
        cluster
    }

    /// Starts `role` (master or backup) on `listen` with `peer` as the other node; its data is
    /// in `dir/<role>-data`.
    pub fn spawn_pair_node(dir: &std::path::Path, role: &str, listen: &str, peer: &str, extra: &[&str]) -> Proc {
        Cluster::spawn_pair_node_env(dir, role, listen, peer, extra, &[])
    }

    /// As `spawn_pair_node`, with extra environment variables (FAILPOINTS, for instance).
    pub fn spawn_pair_node_env(
        dir: &std::path::Path,
        role: &str,
        listen: &str,
        peer: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Proc {
        let data = dir.join(format!("{role}-data"));
        let data = data.to_str().expect("utf-8 path").to_string();
        let peer_flag = if role == "master" { "--backup" } else { "--master" };
        let mut args = vec![role, "--listen", listen, peer_flag, peer, "--data-dir", &data, "--id", role];
        args.extend_from_slice(PAIR_FLAGS);
        args.extend_from_slice(extra);
        let mut proc = Proc::spawn_env(dir, role, &args, env);
        assert_eq!(proc.listening_addr(), listen);
        proc
    }

    /// Starts a master on `listen` with its data in `dir/master-data`.
    pub fn spawn_master(dir: &std::path::Path, listen: &str, extra: &[&str]) -> (Proc, String) {
        Cluster::spawn_master_env(dir, listen, extra, &[])
    }

    pub fn spawn_master_env(
        dir: &std::path::Path,
        listen: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> (Proc, String) {
        let data = dir.join("master-data");
        let data = data.to_str().expect("utf-8 path").to_string();
        let mut args = vec!["master", "--listen", listen, "--data-dir", &data];
        args.extend_from_slice(MASTER_FLAGS);
        args.extend_from_slice(extra);
        let mut master = Proc::spawn_env(dir, "master", &args, env);
        let addr = master.listening_addr();
        (master, addr)
    }

    /// SIGKILLs the master and starts it again on the same address and data directory.
    pub fn restart_master(&mut self) {
        self.master.kill();
        let extra: Vec<&str> = self.master_args.iter().map(String::as_str).collect();
        let (master, addr) = Cluster::spawn_master(&self.dir, &self.addr, &extra);
        assert_eq!(addr, self.addr);
        self.master = master;
    }

    pub fn start_slave(&mut self, name: &str) {
        let data = self.dir.join(name);
        let data = data.to_str().expect("utf-8 path").to_string();
        let backup = self.backup_addr.clone().unwrap_or_else(|| NOWHERE.to_string());
        let mut args = vec!["slave", "--master", &self.addr, "--backup", &backup, "--id", name, "--data-dir", &data];
        args.extend_from_slice(SLAVE_FLAGS);
        let secured = self.secrets.slave_flags(name);
        args.extend(secured.iter().map(String::as_str));
        let proc = Proc::spawn(&self.dir, name, &args);
        self.slaves.insert(name.to_string(), proc);
    }

    pub fn slave(&mut self, name: &str) -> &mut Proc {
        self.slaves.get_mut(name).expect("no such slave")
    }

    /// SIGKILL a slave.
    pub fn kill_slave(&mut self, name: &str) {
        if let Some(mut proc) = self.slaves.remove(name) {
            proc.kill();
        }
    }

    /// Runs `nodes client --master ADDR --backup BACKUP ARGS...`.
    pub fn cli(&self, args: &[&str]) -> Output {
        let backup = self.backup_addr.clone().unwrap_or_else(|| NOWHERE.to_string());
        let mut all = vec!["client", "--master", &self.addr, "--backup", &backup];
        let secured = self.secrets.client_flags();
        all.extend(secured.iter().map(String::as_str));
        all.extend_from_slice(args);
        Command::new(nodes_bin()).args(&all).output().expect("run client")
    }

    pub fn status(&self) -> Json {
        let out = self.cli(&["status", "--json"]);
        assert!(out.status.success(), "status failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("status is JSON")
    }

    /// `status --json`, or `None` while no master answers.
    pub fn try_status(&self) -> Option<Json> {
        let out = self.cli(&["status", "--json"]);
        out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
    }

    /// Polls `status --json` until `done` holds.
    pub fn wait_status(&self, what: &str, done: impl Fn(&Json) -> bool) -> Json {
        self.wait_status_within(what, DEADLINE, done)
    }

    /// As `wait_status`, failing the test after `limit` instead of [`DEADLINE`].
    pub fn wait_status_within(&self, what: &str, limit: Duration, done: impl Fn(&Json) -> bool) -> Json {
        let start = Instant::now();
        let mut last = None;
        loop {
            if let Some(status) = self.try_status() {
                if done(&status) {
                    return status;
                }
                last = Some(status);
            }
            assert!(start.elapsed() < limit, "timed out waiting for {what}; last status: {last:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until exactly these slaves are members.
    pub fn wait_for_slaves(&self, names: &[&str]) -> Json {
        let mut want: Vec<&str> = names.to_vec();
        want.sort();
        self.wait_status(&format!("slaves {want:?}"), |s| slave_ids(s) == want)
    }

    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            servers: vec![self.addr.clone(), self.backup_addr.clone().unwrap_or_else(|| NOWHERE.to_string())],
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            credentials: self.secrets.credentials(),
        }
    }

    /// Runs `f` with a library client on a fresh actix system.
    pub fn with_client<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce(Client) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let config = self.client_config();
        actix_rt::System::new().block_on(async move { f(Client::start(config)).await })
    }
}

/// Polls `probe` until it returns something, or fails the test at the deadline.
pub fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "condition not reached within {DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn slave_ids(status: &Json) -> Vec<&str> {
    let mut ids: Vec<&str> =
        status["slaves"].as_array().into_iter().flatten().filter_map(|s| s["id"].as_str()).collect();
    ids.sort();
    ids
}

pub fn slave_field(status: &Json, id: &str, field: &str) -> u64 {
    status["slaves"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["id"] == id)
        .and_then(|s| s[field].as_u64())
        .unwrap_or(0)
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim_end().to_string()
}

/// A TCP forwarder between two nodes whose link a test can cut, hold and heal.
pub struct Proxy {
    pub addr: String,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    held: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    /// Forwards connections made to `addr` (a free port) to `target`.
    pub fn start(target: &str) -> Proxy {
        use std::sync::atomic::Ordering::SeqCst;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("addr").to_string();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let held = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (target, flag, hold, list) = (target.to_string(), cut.clone(), held.clone(), conns.clone());
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { continue };
                if flag.load(SeqCst) {
                    continue;
                }
                let Ok(outbound) = std::net::TcpStream::connect(&target) else { continue };
                let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
                let mut guard = list.lock().expect("lock");
                for pair in [(&inbound, &outbound), (&outbound, &inbound)] {
                    let (Ok(from), Ok(to)) = (pair.0.try_clone(), pair.1.try_clone()) else { continue };
                    let hold = hold.clone();
                    std::thread::spawn(move || forward(from, to, &hold));
                }
                guard.extend([inbound, outbound]);
            }
        });
        Proxy { addr, cut, held, conns }
    }

    /// Breaks every connection through the proxy (bytes held are dropped) and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for conn in self.conns.lock().expect("lock").drain(..) {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
        self.held.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stops forwarding without closing anything, as when packets are lost: the nodes notice
    /// only by silence. Bytes sent meanwhile are delivered on `heal`, or dropped by `cut`.
    pub fn hold(&self) {
        self.held.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn heal(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
        self.held.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Copies `from` to `to` chunk by chunk, waiting while the link is held.
fn forward(mut from: std::net::TcpStream, mut to: std::net::TcpStream, held: &std::sync::atomic::AtomicBool) {
    use std::io::{Read, Write};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while held.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

fn bytes_of(s: &str) -> bytes::Bytes {
    bytes::Bytes::from(s.to_string())
}

/// Writes `count` keys `prefix0..` with values `prefix-value-i` and returns their versions.
pub fn write_keys(cluster: &Cluster, prefix: &str, count: usize) -> Vec<net::Version> {
    let prefix = prefix.to_string();
    cluster.with_client(|client| async move {
        let mut versions = Vec::new();
        for i in 0..count {
            let (key, value) = (format!("{prefix}{i}"), format!("{prefix}-value-{i}"));
            versions.push(client.put(bytes_of(&key), bytes_of(&value)).await.unwrap());
        }
        versions
    })
}

/// Every key `write_keys` wrote reads back with its value.
pub fn assert_keys(cluster: &Cluster, prefix: &str, count: usize) {
    let prefix = prefix.to_string();
    cluster.with_client(|client| async move {
        for i in 0..count {
            let key = format!("{prefix}{i}");
            let got = client.get(bytes_of(&key)).await.unwrap_or_else(|e| panic!("{key}: {e}"));
            assert_eq!(got, Some(bytes_of(&format!("{prefix}-value-{i}"))), "{key}");
        }
    });
}

/// Everything a server sent on `stream` until it closed the connection, decoded as native
/// frames.
pub fn frames_until_close(stream: &mut std::net::TcpStream) -> Vec<net::FromServer> {
    frames_from_peer::<net::FromServer, net::ToServer>(stream)
}

/// Everything the peer on `stream` sent until it closed the connection, decoded as `In` (what a
/// slave sends is `ToServer`, what a server sends `FromServer`).
pub fn frames_from_peer<In: serde::de::DeserializeOwned, Out>(stream: &mut std::net::TcpStream) -> Vec<In> {
    use std::io::Read;
    use tokio_util::codec::Decoder;
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("read timeout");
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(err) => panic!("the peer neither answered nor closed: {err}"),
        }
    }
    let mut codec = net::MsgCodec::<In, Out>::new();
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    let mut out = Vec::new();
    while let Some(msg) = codec.decode(&mut buf).expect("the peer sends valid frames") {
        out.push(msg);
    }
    out
}

/// `redis-cli`, or `None` (and a notice) when it is not installed, unless REQUIRE_REDIS_TOOLS
/// says it must be.
pub fn redis_cli() -> Option<&'static str> {
    let found = Command::new("redis-cli").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("REQUIRE_REDIS_TOOLS").is_none(), "redis-cli is required but not installed");
        eprintln!("redis-cli is not installed; skipping (apt-get install redis-tools)");
    }
    found.then_some("redis-cli")
}

/// Master, backup and slaves with a [`Proxy`] on every link between them, so a test can cut any
/// link alone: the peer link both ways, and each slave's link to each of the two nodes.
pub struct Linked {
    pub dir: PathBuf,
    pub master_addr: String,
    pub backup_addr: String,
    pub master: Proc,
    pub backup: Proc,
    pub slaves: BTreeMap<String, Proc>,
    /// `to_backup` is how the master reaches the backup, `to_master` the other way.
    pub to_backup: Proxy,
    pub to_master: Proxy,
    /// For each slave: its proxy to the master and its proxy to the backup.
    pub slave_links: BTreeMap<String, (Proxy, Proxy)>,
    master_extra: Vec<String>,
    env: Vec<(String, String)>,
}

impl Linked {
    /// Starts master and backup (with `extra` flags) and `slaves` slaves, and waits until the
    /// master reports every slave and a standby.
    pub fn start(name: &str, slaves: usize, extra: &[&str]) -> Linked {
        Linked::start_env(name, slaves, extra, &[])
    }

    /// As `start`, with extra environment variables for master and backup.
    pub fn start_env(name: &str, slaves: usize, extra: &[&str], env: &[(&str, &str)]) -> Linked {
        Linked::start_envs(name, slaves, extra, env, env)
    }

    /// As `start`, with extra environment variables for the master and for the backup.
    pub fn start_envs(
        name: &str,
        slaves: usize,
        extra: &[&str],
        env: &[(&str, &str)],
        backup_env: &[(&str, &str)],
    ) -> Linked {
        let dir = test_dir(name);
        let (master_addr, backup_addr) = (free_addr(), free_addr());
        let (to_backup, to_master) = (Proxy::start(&backup_addr), Proxy::start(&master_addr));
        let master = Cluster::spawn_pair_node_env(&dir, "master", &master_addr, &to_backup.addr, extra, env);
        let backup = Cluster::spawn_pair_node_env(&dir, "backup", &backup_addr, &to_master.addr, extra, backup_env);
        let mut linked = Linked {
            dir,
            master_addr,
            backup_addr,
            master,
            backup,
            slaves: BTreeMap::new(),
            to_backup,
            to_master,
            slave_links: BTreeMap::new(),
            master_extra: extra.iter().map(|a| a.to_string()).collect(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        for i in 1..=slaves {
            let name = format!("slave-{i}");
            let links = (Proxy::start(&linked.master_addr), Proxy::start(&linked.backup_addr));
            linked.slave_links.insert(name.clone(), links);
            linked.start_slave(&name);
        }
        let names: Vec<String> = (1..=slaves).map(|i| format!("slave-{i}")).collect();
        linked.wait_serving(&linked.master_addr.clone(), "every slave and a standby", |s| {
            slave_ids(s) == names.iter().map(String::as_str).collect::<Vec<_>>() && !s["standby"].is_null()
        });
        linked
    }

    pub fn start_slave(&mut self, name: &str) {
        let data = self.dir.join(name);
        let data = data.to_str().expect("utf-8 path").to_string();
        let (to_master, to_backup) = &self.slave_links[name];
        let mut args =
            vec!["slave", "--master", &to_master.addr, "--backup", &to_backup.addr, "--id", name, "--data-dir", &data];
        args.extend_from_slice(SLAVE_FLAGS);
        let proc = Proc::spawn(&self.dir, name, &args);
        self.slaves.insert(name.to_string(), proc);
    }

    /// SIGKILLs a slave and starts it again: it comes back empty, in a new incarnation.
    pub fn restart_slave(&mut self, name: &str) {
        if let Some(mut proc) = self.slaves.remove(name) {
            proc.kill();
        }
        self.start_slave(name);
    }

    /// SIGKILLs the master and starts it again on its address and data, with `more` flags.
    pub fn restart_master(&mut self, more: &[&str]) {
        self.master.kill();
        let mut extra: Vec<&str> = self.master_extra.iter().map(String::as_str).collect();
        extra.extend_from_slice(more);
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (dir, addr, peer) = (&self.dir, &self.master_addr, &self.to_backup.addr);
        self.master = Cluster::spawn_pair_node_env(dir, "master", addr, peer, &extra, &env);
    }

    /// Cuts (or, with `heal`, opens) both of a slave's links to the given nodes.
    pub fn slave_link(&self, name: &str, to_master: bool, to_backup: bool, heal: bool) {
        let (m, b) = &self.slave_links[name];
        for (proxy, chosen) in [(m, to_master), (b, to_backup)] {
            match (chosen, heal) {
                (true, false) => proxy.cut(),
                (true, true) => proxy.heal(),
                (false, _) => {}
            }
        }
    }

    /// Cuts or heals the link between master and backup, both ways.
    pub fn peer_link(&self, heal: bool) {
        for proxy in [&self.to_backup, &self.to_master] {
            if heal {
                proxy.heal()
            } else {
                proxy.cut()
            }
        }
    }

    /// Heals every link.
    pub fn heal_all(&self) {
        self.peer_link(true);
        for (m, b) in self.slave_links.values() {
            m.heal();
            b.heal();
        }
    }

    /// `status --json` of the node at `addr` alone (it answers while it serves or campaigns).
    pub fn status_of(addr: &str) -> Option<Json> {
        let out = Command::new(nodes_bin())
            .args(["client", "--master", addr, "--backup", NOWHERE, "status", "--json"])
            .output()
            .ok()?;
        out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
    }

    /// Waits until the node at `addr` serves as master and its status satisfies `done`.
    pub fn wait_serving(&self, addr: &str, what: &str, done: impl Fn(&Json) -> bool) -> Json {
        let start = Instant::now();
        let mut last = None;
        loop {
            if let Some(status) = Linked::status_of(addr) {
                if status["role"] == "Master" && done(&status) {
                    return status;
                }
                last = Some(status);
            }
            assert!(start.elapsed() < DEADLINE, "timed out waiting for {addr}: {what}; last status: {last:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client of the node at `addr` alone.
    pub fn only(addr: &str, request_timeout: Duration) -> ClientConfig {
        ClientConfig {
            servers: vec![addr.to_string()],
            connect_timeout: Duration::from_millis(500),
            request_timeout,
            credentials: Credentials::default(),
        }
    }

    /// A client of both nodes, directly.
    pub fn both(&self) -> ClientConfig {
        ClientConfig {
            servers: vec![self.master_addr.clone(), self.backup_addr.clone()],
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
            credentials: Credentials::default(),
        }
    }
}
