//! A data set far larger than the other tests use (200,000 keys in a release build, which CI
//! runs; 20,000 in a debug build; `KV_SCALE_KEYS` changes it):
//! a takeover after SIGKILL serves again, slaves stay joined through it, every acknowledged
//! write reads back, and a slave restarted empty is refilled while writes go on.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::client::Client;
use bytes::Bytes;
use support::Cluster;

/// Generous: a debug build on 2 shared cores. The figures that matter are measured by
/// `bench/scale.py` on a release build, not asserted here.
const SCALE_DEADLINE: Duration = Duration::from_secs(300);

fn keys() -> usize {
    let default = if cfg!(debug_assertions) { 20_000 } else { 200_000 };
    std::env::var("KV_SCALE_KEYS").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn key(i: usize) -> Bytes {
    Bytes::from(format!("key{i}"))
}

/// A 100-byte value that names its key and round.
fn value(i: usize, round: usize) -> Bytes {
    let mut v = format!("{round}:{i}:").into_bytes();
    v.resize(100, b'x');
    Bytes::from(v)
}

/// Writes `value(i, round)` to every key, `lanes` at a time; retries each write until it is
/// acknowledged (the cluster may be failing over), within the deadline.
async fn write_all(client: &Client, keys: usize, round: usize, lanes: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..lanes {
        let (client, next) = (client.clone(), next.clone());
        tasks.push(actix_rt::spawn(async move {
            let start = Instant::now();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= keys {
                    return;
                }
                while let Err(err) = client.put(key(i), value(i, round)).await {
                    assert!(start.elapsed() < SCALE_DEADLINE, "key{i} was never acknowledged: {err}");
                    actix_rt::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("a writer");
    }
}

/// Reads every key back and checks it holds `value(i, round)`.
async fn read_all(client: &Client, keys: usize, round: usize, lanes: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..lanes {
        let (client, next) = (client.clone(), next.clone());
        tasks.push(actix_rt::spawn(async move {
            let start = Instant::now();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= keys {
                    return;
                }
                let got = loop {
                    match client.get(key(i)).await {
                        Ok(got) => break got,
                        Err(err) => assert!(start.elapsed() < SCALE_DEADLINE, "key{i} could not be read: {err}"),
                    }
                    actix_rt::time::sleep(Duration::from_millis(20)).await;
                };
                assert_eq!(got, Some(value(i, round)), "key{i} does not hold its acknowledged value");
            }
        }));
    }
    for task in tasks {
        task.await.expect("a reader");
    }
}

/// Times the backup's log says a slave connected, after it began to take over.
fn joins_after_takeover(log: &str) -> usize {
    log.split("campaigning to take over").nth(1).map_or(0, |after| after.matches("slave connected").count())
}

fn wait_status_long(cluster: &Cluster, what: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let start = Instant::now();
    let mut last = None;
    loop {
        if let Some(status) = cluster.try_status() {
            if done(&status) {
                return status;
            }
            last = Some(status);
        }
        assert!(start.elapsed() < SCALE_DEADLINE, "timed out waiting for {what}; last status: {last:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_takeover_with_many_keys_serves_keeps_the_slaves_and_loses_nothing() {
    let n = keys();
    let mut cluster = Cluster::start_pair("scale", 3, &[]);
    cluster.with_client(|client| async move { write_all(&client, n, 1, 64).await });
    let status = wait_status_long(&cluster, "the standby caught up", |s| s["standby"]["lag"] == 0);
    assert!(status["keys"].as_u64().unwrap_or(0) >= n as u64, "the master maps every key: {status}");

    cluster.master.kill();
    // The first write after the kill waits for the takeover; then half the keys get a new value.
    cluster.with_client(|client| async move {
        write_all(&client, n / 2, 2, 64).await;
    });
    let status = wait_status_long(&cluster, "the new master with every slave", |s| {
        support::slave_ids(s) == ["slave-1", "slave-2", "slave-3"] && s["role"] != "Candidate"
    });
    assert!(status["epoch"].as_u64().unwrap_or(0) >= 2, "a takeover happened: {status}");

    cluster.with_client(|client| async move {
        read_all(&client, n / 2, 2, 64).await;
        // The rest still hold the first round.
        let rest: Vec<usize> = (n / 2..n).collect();
        let next = Arc::new(AtomicUsize::new(0));
        let rest = Arc::new(rest);
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let (client, next, rest) = (client.clone(), next.clone(), rest.clone());
            tasks.push(actix_rt::spawn(async move {
                let start = Instant::now();
                while let Some(&i) = rest.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let got = loop {
                        match client.get(key(i)).await {
                            Ok(got) => break got,
                            Err(err) => assert!(start.elapsed() < SCALE_DEADLINE, "key{i}: {err}"),
                        }
                        actix_rt::time::sleep(Duration::from_millis(20)).await;
                    };
                    assert_eq!(got, Some(value(i, 1)), "key{i} lost its acknowledged value");
                }
            }));
        }
        for task in tasks {
            task.await.expect("a reader");
        }
    });
    let backup_log = cluster.backup.as_ref().expect("a backup").log_text();
    let joins = joins_after_takeover(&backup_log);
    assert!(joins <= 3, "each slave joins the new master once, but the log shows {joins} joins");

    // A slave restarted empty is refilled while writes go on.
    cluster.kill_slave("slave-2");
    cluster.start_slave("slave-2");
    cluster.with_client(|client| async move { write_all(&client, 1000, 3, 8).await });
    let status = wait_status_long(&cluster, "slave-2 refilled", |s| {
        support::slave_ids(s).contains(&"slave-2")
            && s["under_replicated"] == 0
            && support::slave_field(s, "slave-2", "keys_held") >= n as u64
    });
    assert_eq!(status["under_replicated"], 0);
    cluster.with_client(|client| async move { read_all(&client, 1000, 3, 8).await });
}
