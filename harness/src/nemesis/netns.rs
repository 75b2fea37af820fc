//! `--net namespaces`: every process of the nemesis in its own Linux network namespace on one
//! bridge, and partitions made by the kernel rather than by proxies.
//!
//! ```text
//!   nemesis-switch:  br0 ── v-harness ── eth0 10.77.0.1   nemesis-harness (monitor, probes)
//!                        ── v-clients ── eth0 10.77.0.2   nemesis-clients (the workload)
//!                        ── v-master  ── eth0 10.77.0.10  nemesis-master
//!                        ── v-backup  ── eth0 10.77.0.11  nemesis-backup
//!                        ── v-slave-k ── eth0 10.77.0.(19+k) nemesis-slave-k
//! ```
//!
//! Each node runs as `ip netns exec nemesis-NAME nodes ...` (which execs, so the node keeps
//! the pid the launcher signals) and listens on its namespace's address, port [`PORT`]. The
//! harness process itself moves its main thread into `nemesis-harness` (the status monitor and
//! the probes, never cut) and runs the workload's clients on a second thread that it moves
//! into `nemesis-clients` (cut like any node): a network namespace belongs to a thread, and
//! actix runs a client's connection on the thread that started it.
//!
//! A cut of the link A -> B is an nftables rule. A black hole drops A's packets on their way
//! into B (B's input chain, by source address): A's kernel sent them, as through a failed
//! switch, so A's TCP retransmits and both sides notice only by their timeouts. A reset is a
//! `reject with tcp reset` on A's way out (A's output chain, by destination): A's connections
//! to B are reset at once and new ones refused, and with both directions cut B's are too. (A
//! reset made on B's way in would send its RST back over a link that is cut too.) A one-way
//! cut drops one direction only, so B's packets still reach A, though A's acknowledgements do
//! not reach B. With `--netem "delay 20ms 10ms
//! reorder 25% 50%"` every namespace's interface also gets that `tc netem` qdisc for the whole
//! run, so packets are delayed and reordered (the kernel needs `sch_netem`).
//!
//! Only root may make namespaces; without root, `ip` or `nft` the mode refuses to start, naming
//! what is missing. Everything is named `nemesis-*` and lives in 10.77.0.0/24 inside those
//! namespaces; the machine's own namespace is left alone. One run at a time holds
//! [`LOCK`]; a run removes every `nemesis-*` namespace it finds at start (the leftovers of one
//! that crashed) and its own at the end, also after an error or Ctrl-C ([`Drop`]); a second
//! Ctrl-C exits at once and leaves them to the next run.
//!
//! Caveat: with namespaces a client redirected by a standby reaches the master at its real
//! address, so cutting the clients from the master hides it from redirected clients too
//! (through proxies it does not, see `topology.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use actors::client::{Client, ClientConfig};

use crate::error::HarnessError;
use crate::nemesis::partition::{Endpoint, Link};
use crate::nemesis::proxy::LinkState;
use crate::nemesis::topology::NODE_NAMES;

/// The port every node listens on, in its own namespace.
pub const PORT: u16 = 7000;

/// The first three bytes of every address (a /24 that exists only inside the namespaces).
pub const SUBNET: &str = "10.77.0";

/// What every name this mode makes starts with.
pub const PREFIX: &str = "nemesis-";

/// Held (flock) by the run that owns the `nemesis-*` namespaces.
pub const LOCK: &str = "/run/harness-nemesis-netns.lock";

const SWITCH: &str = "nemesis-switch";
const HARNESS: &str = "nemesis-harness";
const BRIDGE: &str = "br0";

/// How long the clients' thread has to enter its namespace.
const ENTER_DEADLINE: Duration = Duration::from_secs(5);

/// The namespaces of one run.
pub struct Namespaces {
    slaves: usize,
    /// The main thread's namespace before the run moved it, to go back to.
    home: Option<File>,
    /// The thread in `nemesis-clients` that runs the workload's clients.
    clients: Option<actix_rt::Arbiter>,
    /// Every link not open, and its state.
    cut: BTreeMap<Link, LinkState>,
    /// Namespaces made, to remove.
    made: Vec<String>,
    _lock: File,
}

/// The namespace of `endpoint`.
pub fn namespace(endpoint: Endpoint) -> String {
    match endpoint {
        Endpoint::Node(i) => format!("{PREFIX}{}", NODE_NAMES.get(i).copied().unwrap_or("node")),
        Endpoint::Slave(k) => format!("{PREFIX}slave-{}", k + 1),
        Endpoint::Clients => format!("{PREFIX}clients"),
    }
}

/// The address of `endpoint`.
pub fn address(endpoint: Endpoint) -> String {
    match endpoint {
        Endpoint::Clients => format!("{SUBNET}.2"),
        Endpoint::Node(i) => format!("{SUBNET}.{}", 10 + i),
        Endpoint::Slave(k) => format!("{SUBNET}.{}", 20 + k),
    }
}

/// The nftables script that gives `of`'s namespace exactly the rules of the links in `cut`
/// that concern it: both chains flushed, then a reset rule on output for each link from it
/// that is reset, and a drop rule on input for each link into it that is a black hole.
pub fn rules(of: Endpoint, cut: &BTreeMap<Link, LinkState>) -> String {
    let mut script = String::from("flush chain inet nemesis out\nflush chain inet nemesis in\n");
    for (link, state) in cut {
        match state {
            LinkState::Reset if link.from == of => {
                let daddr = address(link.to);
                script.push_str(&format!(
                    "add rule inet nemesis out ip daddr {daddr} meta l4proto tcp reject with tcp reset\n"
                ));
                script.push_str(&format!("add rule inet nemesis out ip daddr {daddr} drop\n"));
            }
            LinkState::Blackhole if link.to == of => {
                script.push_str(&format!("add rule inet nemesis in ip saddr {} drop\n", address(link.from)));
            }
            LinkState::Open | LinkState::Reset | LinkState::Blackhole => {}
        }
    }
    script
}

/// The table every endpoint's namespace starts with: an output and an input chain, empty.
const TABLE: &str = "table inet nemesis {
  chain out {
    type filter hook output priority 0; policy accept;
  }
  chain in {
    type filter hook input priority 0; policy accept;
  }
}
";

impl Namespaces {
    /// Makes the namespaces of a cluster of `slaves` slaves, moves the main thread into the
    /// harness's, and starts the clients' thread. `netem`: `tc netem` arguments for every
    /// interface, if any.
    pub fn create(slaves: usize, netem: Option<&str>) -> Result<Namespaces, HarnessError> {
        preflight()?;
        let lock = take_lock()?;
        remove_leftovers()?;
        let mut ns =
            Namespaces { slaves, home: None, clients: None, cut: BTreeMap::new(), made: Vec::new(), _lock: lock };
        ns.add(SWITCH)?;
        ip(&["-n", SWITCH, "link", "add", BRIDGE, "type", "bridge"])?;
        ip(&["-n", SWITCH, "link", "set", BRIDGE, "up"])?;
        ns.plug(HARNESS, &format!("{SUBNET}.1"), "v-harness")?;
        for endpoint in Endpoint::all(slaves) {
            let name = namespace(endpoint);
            let veth = format!("v-{}", name.trim_start_matches(PREFIX));
            ns.plug(&name, &address(endpoint), &veth)?;
            nft(&name, TABLE)?;
            if let Some(netem) = netem {
                let mut args = vec!["-n", &name, "qdisc", "add", "dev", "eth0", "root", "netem"];
                args.extend(netem.split_whitespace());
                run("tc", &args).map_err(|err| {
                    HarnessError::Network(format!("{err} (does this kernel have sch_netem, CONFIG_NET_SCH_NETEM?)"))
                })?;
            }
        }
        ns.home = Some(File::open("/proc/thread-self/ns/net").map_err(HarnessError::io("/proc/thread-self/ns/net"))?);
        enter(HARNESS)?;
        ns.clients = Some(clients_thread()?);
        Ok(ns)
    }

    /// Where node `i` listens.
    pub fn node_addr(&self, i: usize) -> String {
        format!("{}:{PORT}", address(Endpoint::Node(i)))
    }

    /// `ip netns exec NS`, for a command to run in `endpoint`'s namespace.
    pub fn wrapper(endpoint: Endpoint) -> Vec<OsString> {
        ["ip", "netns", "exec"].iter().map(OsString::from).chain([namespace(endpoint).into()]).collect()
    }

    /// Puts each link in its state: rewrites the rules of every namespace at either end of a
    /// link that changed.
    pub fn apply(&mut self, changes: &[(Link, LinkState)]) -> Result<(), HarnessError> {
        let mut touched = BTreeSet::new();
        for &(link, state) in changes {
            touched.extend([link.from, link.to]);
            match state {
                LinkState::Open => self.cut.remove(&link),
                LinkState::Reset | LinkState::Blackhole => self.cut.insert(link, state),
            };
        }
        for endpoint in touched {
            nft(&namespace(endpoint), &rules(endpoint, &self.cut))?;
        }
        Ok(())
    }

    /// A client whose connections start on the clients' thread, in `nemesis-clients`.
    pub async fn start_client(&self, config: ClientConfig) -> Result<Client, HarnessError> {
        let gone = || HarnessError::Network("the clients' thread is gone".to_string());
        let arbiter = self.clients.as_ref().ok_or_else(gone)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !arbiter.spawn(async move {
            let _ = tx.send(Client::start(config));
        }) {
            return Err(gone());
        }
        rx.await.map_err(|_| gone())
    }

    /// Stops the clients' thread, moves the main thread home, and removes every namespace
    /// made (their interfaces go with them). Safe to call twice.
    pub fn remove(&mut self) {
        if let Some(arbiter) = self.clients.take() {
            arbiter.stop();
            let _ = arbiter.join();
        }
        if let Some(home) = self.home.take() {
            // SAFETY: setns(2) on a descriptor we opened, for the calling thread only.
            if unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                tracing::warn!(err = %std::io::Error::last_os_error(), "cannot go back to the first namespace");
            }
        }
        for name in self.made.drain(..).rev() {
            if let Err(err) = ip(&["netns", "del", &name]) {
                tracing::warn!(%err, "cannot remove a namespace");
            }
        }
        tracing::debug!(slaves = self.slaves, "namespaces removed");
    }

    fn add(&mut self, name: &str) -> Result<(), HarnessError> {
        ip(&["netns", "add", name])?;
        self.made.push(name.to_string());
        Ok(())
    }

    /// Makes namespace `name` with `eth0` at `addr`, plugged into the bridge by `veth`.
    fn plug(&mut self, name: &str, addr: &str, veth: &str) -> Result<(), HarnessError> {
        self.add(name)?;
        ip(&["-n", SWITCH, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name])?;
        ip(&["-n", SWITCH, "link", "set", veth, "master", BRIDGE, "up"])?;
        ip(&["-n", name, "addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
        ip(&["-n", name, "link", "set", "eth0", "up"])?;
        ip(&["-n", name, "link", "set", "lo", "up"])
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Root, `ip` and `nft`, or a message naming what is missing.
pub fn preflight() -> Result<(), HarnessError> {
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(HarnessError::Config(
            "--net namespaces needs root (it makes network namespaces); run as root, or use --net proxies".into(),
        ));
    }
    for (tool, flag, package) in [("ip", "-V", "iproute2"), ("nft", "--version", "nftables")] {
        let found = Command::new(tool).arg(flag).stdout(Stdio::null()).stderr(Stdio::null()).status();
        if !found.is_ok_and(|s| s.success()) {
            return Err(HarnessError::Config(format!(
                "--net namespaces needs `{tool}` (Debian package {package}: apt-get install {package})"
            )));
        }
    }
    Ok(())
}

/// Takes [`LOCK`], or says that another run holds it.
fn take_lock() -> Result<File, HarnessError> {
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(LOCK);
    let file = file.map_err(HarnessError::io(LOCK))?;
    // SAFETY: flock(2) on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(HarnessError::Network(format!(
            "another `harness nemesis --net namespaces` runs (it holds {LOCK}); one at a time"
        )));
    }
    Ok(file)
}

/// Removes every `nemesis-*` namespace: with the lock held, they are a crashed run's.
fn remove_leftovers() -> Result<(), HarnessError> {
    let listed = Command::new("ip").args(["netns", "list"]).output().map_err(HarnessError::io("ip netns list"))?;
    let text = String::from_utf8_lossy(&listed.stdout);
    for name in text.lines().filter_map(|l| l.split_whitespace().next()).filter(|n| n.starts_with(PREFIX)) {
        eprintln!("removing namespace {name}, left by an earlier run");
        ip(&["netns", "del", name])?;
    }
    Ok(())
}

/// Moves the calling thread into namespace `name`.
fn enter(name: &str) -> Result<(), HarnessError> {
    let path = format!("/run/netns/{name}");
    let file = File::open(&path).map_err(HarnessError::io(&path))?;
    // SAFETY: setns(2) on a descriptor we opened, for the calling thread only.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        let err = std::io::Error::last_os_error();
        return Err(HarnessError::Network(format!("cannot enter {name}: {err}")));
    }
    Ok(())
}

/// A thread of the actix system, moved into `nemesis-clients`.
fn clients_thread() -> Result<actix_rt::Arbiter, HarnessError> {
    let arbiter = actix_rt::Arbiter::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let name = namespace(Endpoint::Clients);
    arbiter.spawn_fn(move || {
        let _ = tx.send(enter(&name));
    });
    match rx.recv_timeout(ENTER_DEADLINE) {
        Ok(Ok(())) => Ok(arbiter),
        Ok(Err(err)) => Err(err),
        Err(_) => Err(HarnessError::Network("the clients' thread did not start".to_string())),
    }
}

fn ip(args: &[&str]) -> Result<(), HarnessError> {
    run("ip", args).map_err(HarnessError::Network)
}

/// Loads an nftables script in namespace `name`.
fn nft(name: &str, script: &str) -> Result<(), HarnessError> {
    let fail = |what: String| HarnessError::Network(format!("nft in {name}: {what}"));
    let mut child = Command::new("ip")
        .args(["netns", "exec", name, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(fail(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))),
    }
}

/// Runs `program ARGS...`; what went wrong, if anything.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program).args(args).stdout(Stdio::null()).stderr(Stdio::piped()).output();
    let out = out.map_err(|e| format!("{program} {}: {e}", args.join(" ")))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_has_its_own_namespace_and_address() {
        let all = Endpoint::all(16);
        let names: BTreeSet<String> = all.iter().map(|&e| namespace(e)).collect();
        let addrs: BTreeSet<String> = all.iter().map(|&e| address(e)).collect();
        assert_eq!((names.len(), addrs.len()), (all.len(), all.len()));
        assert!(names.iter().all(|n| n.starts_with(PREFIX) && n.len() <= 15 + PREFIX.len()));
        assert!(addrs.iter().all(|a| a.starts_with("10.77.0.")));
        assert!(!addrs.contains(&format!("{SUBNET}.1")), "the harness's address is nobody else's");
    }

    #[test]
    fn a_black_hole_drops_on_the_way_in_and_a_reset_rejects_on_the_way_out() {
        let (m, b, c) = (Endpoint::Node(0), Endpoint::Node(1), Endpoint::Clients);
        let cut: BTreeMap<Link, LinkState> =
            [(Link::new(m, b), LinkState::Blackhole), (Link::new(m, c), LinkState::Reset)].into();
        assert_eq!(
            rules(m, &cut),
            "flush chain inet nemesis out\nflush chain inet nemesis in\n\
             add rule inet nemesis out ip daddr 10.77.0.2 meta l4proto tcp reject with tcp reset\n\
             add rule inet nemesis out ip daddr 10.77.0.2 drop\n"
        );
        assert_eq!(
            rules(b, &cut),
            "flush chain inet nemesis out\nflush chain inet nemesis in\n\
             add rule inet nemesis in ip saddr 10.77.0.10 drop\n"
        );
        assert_eq!(rules(c, &cut), "flush chain inet nemesis out\nflush chain inet nemesis in\n", "nothing at c");
        assert_eq!(rules(m, &BTreeMap::new()), "flush chain inet nemesis out\nflush chain inet nemesis in\n");
    }
}
