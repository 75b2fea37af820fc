//! The hot standby: log shipping, takeover with epoch fencing, and roles that swap back.
//! Real processes, SIGKILL and SIGSTOP; conditions awaited with deadlines.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actors::client::{Client, ClientConfig};
use bytes::Bytes;
use support::{Cluster, Proc};

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

/// Writes until one succeeds (the cluster is failing over), within the test deadline.
async fn write_until_accepted(client: &Client, key: &str, value: &str) {
    let start = std::time::Instant::now();
    loop {
        match client.put(b(key), b(value)).await {
            Ok(_) => return,
            Err(err) => assert!(start.elapsed() < support::DEADLINE, "no master accepted writes: {err}"),
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn backup_addr(cluster: &Cluster) -> String {
    cluster.backup_addr.clone().expect("a backup")
}

/// The status as the node at `addr` answers it, if it serves as master.
fn status_of(addr: &str) -> Option<serde_json::Value> {
    let out = std::process::Command::new(support::NODES)
        .args(["client", "--master", addr, "--backup", support::NOWHERE, "status", "--json"])
        .output()
        .ok()?;
    out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
}

#[test]
fn the_standby_follows_the_log_and_shows_its_lag() {
    let cluster = Cluster::start_pair("ship", 3, &[]);
    cluster.with_client(|client| async move {
        for i in 0..50 {
            client.put(b(&format!("k{i}")), b("v")).await.unwrap();
        }
    });
    let status = cluster.wait_status("the standby caught up", |s| s["standby"]["lag"] == 0);
    assert_eq!(status["standby"]["id"], "backup");
    assert!(status["last_lsn"].as_u64().unwrap() >= 50);
}

/// SIGKILL the master under a concurrent write load: the backup takes over, clients and slaves
/// follow by themselves, and every write acknowledged before or after reads back.
#[test]
fn acknowledged_writes_survive_a_takeover_under_load() {
    let cluster = Cluster::start_pair("takeover", 3, &[]);
    let first_epoch = cluster.status()["epoch"].as_u64().expect("an epoch");
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let pid = cluster.master.pid();
    let (watch, halt) = (acked.clone(), stop.clone());
    let killer = std::thread::spawn(move || {
        support::wait_for(|| (watch.load(Ordering::SeqCst) >= 100).then_some(()));
        // SAFETY: kill(2) on the master, a child of this test.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let mark = watch.load(Ordering::SeqCst);
        support::wait_for(|| (watch.load(Ordering::SeqCst) >= mark + 100).then_some(()));
        halt.store(true, Ordering::SeqCst);
    });
    let counter = acked.clone();
    let last: BTreeMap<String, (String, Vec<String>)> = cluster.with_client(|client| async move {
        let mut tasks = Vec::new();
        for writer in 0..6 {
            let (client, counter, stop) = (client.clone(), counter.clone(), stop.clone());
            tasks.push(actix_rt::spawn(async move {
                // Per key: the last acknowledged value, and values whose outcome is unknown since.
                let mut mine: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let (key, value) = (format!("w{writer}-k{}", i % 10), format!("w{writer}-v{i}"));
                    let slot = mine.entry(key.clone()).or_insert_with(|| (String::new(), Vec::new()));
                    match client.put(b(&key), b(&value)).await {
                        Ok(_) => {
                            *slot = (value, Vec::new());
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(err) if err.outcome_unknown() => slot.1.push(value),
                        Err(_) => actix_rt::time::sleep(Duration::from_millis(20)).await,
                    }
                }
                mine
            }));
        }
        let mut all = BTreeMap::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });
    killer.join().unwrap();
    cluster.with_client(|client| async move {
        for (key, (value, unknown)) in &last {
            if value.is_empty() {
                continue;
            }
            let got = client.get(b(key)).await.unwrap().expect("acknowledged key");
            let ok = got == b(value) || unknown.iter().any(|u| got == b(u));
            assert!(ok, "{key} = {got:?}, but its last acknowledged value was {value}");
        }
    });
    let backup = backup_addr(&cluster);
    let status = support::wait_for(|| {
        let s = status_of(&backup)?;
        (s["slaves"].as_array()?.len() == 3).then_some(s)
    });
    assert_eq!(status["role"], "Master", "slaves followed the new master");
    assert!(status["epoch"].as_u64().unwrap() > first_epoch, "a takeover starts a new epoch");
}

/// The old master comes back on its data directory as the standby, catches up, and takes over
/// again when the new master dies: roles swap twice and nothing is lost.
#[test]
fn roles_swap_twice_and_nothing_is_lost() {
    let mut cluster = Cluster::start_pair("swap", 3, &[]);
    let config = cluster.client_config();
    let sys = actix_rt::System::new();
    let client = sys.block_on(async { Client::start(config) });
    sys.block_on(async {
        for i in 0..20 {
            client.put(b(&format!("a{i}")), b("first")).await.unwrap();
        }
    });

    cluster.master.kill();
    sys.block_on(write_until_accepted(&client, "b0", "second"));
    sys.block_on(async {
        for i in 1..20 {
            client.put(b(&format!("b{i}")), b("second")).await.unwrap();
        }
    });

    // The old master restarts with its original command and finds a newer master.
    let backup = backup_addr(&cluster);
    let old = cluster.addr.clone();
    cluster.master = Cluster::spawn_pair_node(&cluster.dir, "master", &old, &backup, &[]);
    support::wait_for(|| {
        let s = status_of(&backup)?;
        (s["standby"]["id"] == "master" && s["standby"]["lag"] == 0).then_some(())
    });

    cluster.backup.as_mut().unwrap().kill();
    sys.block_on(write_until_accepted(&client, "c0", "third"));
    sys.block_on(async {
        for i in 0..20 {
            assert_eq!(client.get(b(&format!("a{i}"))).await.unwrap(), Some(b("first")), "a{i}");
            assert_eq!(client.get(b(&format!("b{i}"))).await.unwrap(), Some(b("second")), "b{i}");
        }
    });
    assert_eq!(status_of(&old).expect("the old master serves again")["role"], "Master");
}

/// SIGSTOP the master until the backup takes over, write through the new master, then wake the
/// old one and talk to it directly: it must not acknowledge a write the new master then cannot
/// see, nor return a value older than the new master's. Then it steps down.
#[test]
fn a_paused_master_cannot_complete_writes_or_stale_reads_after_a_takeover() {
    let cluster = Cluster::start_pair("split-brain", 3, &["--request-timeout-ms", "1000"]);
    cluster.with_client(|client| async move { client.put(b("k"), b("old")).await.unwrap() });
    cluster.master.signal(libc::SIGSTOP);

    let backup = backup_addr(&cluster);
    let new_only = ClientConfig {
        servers: vec![backup.clone()],
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(5),
        credentials: Default::default(),
    };
    let sys = actix_rt::System::new();
    let fresh = sys.block_on(async { Client::start(new_only.clone()) });
    sys.block_on(write_until_accepted(&fresh, "k", "new"));

    cluster.master.signal(libc::SIGCONT);
    let old_only = ClientConfig { servers: vec![cluster.addr.clone()], ..new_only };
    let (write, read) = sys.block_on(async {
        let stale = Client::start(old_only);
        (stale.put(b("k"), b("from-the-deposed")).await, stale.get(b("k")).await)
    });
    let now = sys.block_on(async { fresh.get(b("k")).await.unwrap() });
    eprintln!("deposed master: write {write:?}, read {read:?}; new master reads {now:?}");
    if write.is_ok() {
        assert_eq!(now, Some(b("from-the-deposed")), "an acknowledged write must be visible to the new master");
    }
    if let Ok(value) = &read {
        assert_ne!(
            value.as_ref(),
            Some(&b("old")),
            "the deposed master returned a value older than an acknowledged one"
        );
    }
    // It steps down and rejoins as the standby.
    support::wait_for(|| {
        let s = status_of(&backup)?;
        (s["standby"]["id"] == "master").then_some(())
    });
}

/// Master and backup both killed and restarted on their data directories: the newer one serves,
/// the other follows, and nothing acknowledged is lost.
#[test]
fn both_masters_killed_and_restarted_lose_nothing() {
    let mut cluster = Cluster::start_pair("both", 3, &[]);
    cluster.with_client(|client| async move {
        for i in 0..30 {
            client.put(b(&format!("k{i}")), b(&format!("v{i}"))).await.unwrap();
        }
    });
    cluster.wait_status("the standby caught up", |s| s["standby"]["lag"] == 0);
    cluster.master.kill();
    cluster.backup.as_mut().unwrap().kill();
    let (master, backup) = (cluster.addr.clone(), backup_addr(&cluster));
    cluster.master = Cluster::spawn_pair_node(&cluster.dir, "master", &master, &backup, &[]);
    cluster.backup = Some(Cluster::spawn_pair_node(&cluster.dir, "backup", &backup, &master, &[]));
    cluster.with_client(|client| async move {
        write_until_accepted(&client, "after", "restart").await;
        for i in 0..30 {
            assert_eq!(client.get(b(&format!("k{i}"))).await.unwrap(), Some(b(&format!("v{i}"))), "k{i}");
        }
    });
}

/// Cut only the link between master and backup while every slave still reaches the master. The
/// backup may take over, but two masters never both complete writes on the same key, and once
/// the link heals one master remains and no acknowledged write is lost.
#[test]
fn a_cut_link_between_the_masters_never_gives_two_masters_that_both_complete_writes() {
    let proxies = std::cell::RefCell::new(Vec::new());
    let cluster = Cluster::start_pair_linked("cut-link", 3, &["--request-timeout-ms", "500"], |addr| {
        let proxy = support::Proxy::start(addr);
        let via = proxy.addr.clone();
        proxies.borrow_mut().push(proxy);
        via
    });
    let (master, backup) = (cluster.addr.clone(), backup_addr(&cluster));
    cluster.with_client(|client| async move { client.put(b("k"), b("before")).await.unwrap() });
    for proxy in proxies.borrow().iter() {
        proxy.cut();
    }

    // One writer talks only to the master, one only to the backup, for a while.
    let only = |addr: &str| ClientConfig {
        servers: vec![addr.to_string()],
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(700),
        credentials: Default::default(),
    };
    let (to_master, to_backup) = (only(&master), only(&backup));
    // Acknowledged writes (by whom, when, at which version) and writes whose outcome is unknown.
    type Acks = Vec<(&'static str, std::time::Instant, net::Version, String)>;
    let (acks, unknown): (Acks, Vec<String>) = actix_rt::System::new().block_on(async move {
        let mut tasks = Vec::new();
        for (name, config) in [("master", to_master), ("backup", to_backup)] {
            tasks.push(actix_rt::spawn(async move {
                let client = Client::start(config);
                let (mut acks, mut unknown) = (Vec::new(), Vec::new());
                let start = std::time::Instant::now();
                for i in 0..60 {
                    if start.elapsed() > Duration::from_secs(4) {
                        break;
                    }
                    let value = format!("{name}-{i}");
                    match client.put(b("k"), b(&value)).await {
                        Ok(version) => acks.push((name, std::time::Instant::now(), version, value)),
                        Err(err) if err.outcome_unknown() => unknown.push(value),
                        Err(_) => {}
                    }
                    actix_rt::time::sleep(Duration::from_millis(50)).await;
                }
                (acks, unknown)
            }));
        }
        let (mut all, mut unknown) = (Vec::new(), Vec::new());
        for task in tasks {
            let (acks, maybe) = task.await.unwrap();
            all.extend(acks);
            unknown.extend(maybe);
        }
        (all, unknown)
    });
    let last_master_ack = acks.iter().filter(|a| a.0 == "master").map(|a| a.1).max();
    let first_backup_ack = acks.iter().filter(|a| a.0 == "backup").map(|a| a.1).min();
    if let (Some(m), Some(b)) = (last_master_ack, first_backup_ack) {
        assert!(m < b, "both masters completed writes on k at the same time");
    }

    for proxy in proxies.borrow().iter() {
        proxy.heal();
    }
    let newest = acks.iter().max_by_key(|a| a.2).map(|a| a.3.clone()).unwrap_or_else(|| "before".into());
    // One master: both addresses lead to the same node (the standby redirects), with every slave.
    support::wait_for(|| {
        let serving: Vec<serde_json::Value> = [&master, &backup].iter().filter_map(|a| status_of(a)).collect();
        let one = serving.len() == 2 && serving[0]["node"] == serving[1]["node"];
        (one && serving[0]["slaves"].as_array()?.len() == 3).then_some(())
    });
    let now = cluster.with_client(|client| async move { client.get(b("k")).await.unwrap() }).expect("k exists");
    // The newest acknowledged write, or a write whose outcome was unknown and took effect later.
    let allowed = now == b(&newest) || unknown.iter().any(|u| now == b(u));
    assert!(allowed, "k = {now:?}: the newest acknowledged write {newest} was lost");
}

#[allow(dead_code)]
fn unused(_: Proc) {}

#[test]
fn a_client_gives_up_on_a_paused_master_instead_of_waiting_out_its_deadline() {
    let cluster = Cluster::start_pair("paused-client", 3, &[]);
    let config = ClientConfig { request_timeout: Duration::from_secs(30), ..cluster.client_config() };
    let sys = actix_rt::System::new();
    let client = sys.block_on(async { Client::start(config) });
    sys.block_on(async { client.put(b("k"), b("before")).await.expect("a write to the master") });
    cluster.master.signal(libc::SIGSTOP);

    // The paused master neither answers nor closes. The write in flight is reported as having
    // an unknown outcome once the master has been silent too long, not after the deadline.
    let during = sys.block_on(client.put(b("k"), b("during")));
    assert!(
        matches!(during, Err(actors::Error::ConnectionLost { .. })),
        "expected the silent master to be given up as lost, got {during:?}"
    );
    sys.block_on(write_until_accepted(&client, "k", "after"));
    let server = sys.block_on(client.server()).expect("connected");
    assert_eq!(Some(server.addr), cluster.backup_addr, "the client follows the takeover");
    let read = sys.block_on(client.get(b("k"))).expect("a read after the takeover");
    assert_eq!(read, Some(b("after")));
}

#[test]
fn a_client_that_stalls_itself_does_not_blame_the_server() {
    let cluster = Cluster::start("client-stall", 3, &[]);
    let sys = actix_rt::System::new();
    let client = sys.block_on(async { Client::start(cluster.client_config()) });
    sys.block_on(async { client.put(b("k"), b("v0")).await.expect("a first write") });
    let result = sys.block_on(async {
        let call = {
            let client = client.clone();
            actix_rt::spawn(async move { client.put(b("k"), b("v1")).await })
        };
        // Let the request go out, then stall this thread (as a starved or stopped process
        // would) while the answer waits in the socket.
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        std::thread::sleep(Duration::from_secs(3));
        call.await.expect("the call's task")
    });
    assert!(result.is_ok(), "the client's own stall was taken for a silent server: {result:?}");
}

/// A request made while the cluster is between masters (the master just died, the standby
/// has not taken over yet) waits for the new master within its deadline instead of failing.
#[test]
fn a_write_made_between_masters_waits_for_the_takeover() {
    let mut cluster = Cluster::start_pair("between-masters", 3, &[]);
    cluster.with_client(|client| async move { client.put(b("k"), b("before")).await.expect("a first write") });
    cluster.master.kill();
    // A fresh client, so nothing it learned before helps it: it finds only a standby at first.
    let written = cluster.with_client(|client| async move { client.put(b("k"), b("after")).await });
    assert!(written.is_ok(), "a write made during the takeover failed instead of waiting: {written:?}");
    let read = cluster.with_client(|client| async move { client.get(b("k")).await });
    assert_eq!(read.expect("a read from the new master"), Some(b("after")));
}

/// Nothing answers at all (no cluster at these addresses): the client says so at once rather
/// than waiting out its deadline.
#[test]
fn a_client_with_no_cluster_to_reach_fails_at_once() {
    let config = ClientConfig {
        servers: vec![support::free_addr(), support::free_addr()],
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(20),
        credentials: Default::default(),
    };
    let result = actix_rt::System::new().block_on(async move { Client::start(config).put(b("k"), b("v")).await });
    assert!(matches!(result, Err(actors::Error::NoMaster(_))), "expected no reachable master, got {result:?}");
}
