//! A data set far larger than the other tests use (200,000 keys in a release build, which CI
//! runs; 20,000 in a debug build; `KV_SCALE_KEYS` changes it):
//! a takeover after SIGKILL serves again, slaves stay joined through it, every acknowledged
//! write reads back, and a slave restarted empty is refilled while writes go on.

mod support;

use std::future::Future;
use std::ops::Range;
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

/// Runs `job(client, i)` for every `i` in `keys`, `lanes` at a time.
async fn spread<F, Fut>(client: &Client, keys: Range<usize>, lanes: usize, job: F)
where
    F: Fn(Client, usize) -> Fut + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let next = Arc::new(AtomicUsize::new(keys.start));
    let mut tasks = Vec::new();
    for _ in 0..lanes {
        let (client, next, job, end) = (client.clone(), next.clone(), job.clone(), keys.end);
        tasks.push(actix_rt::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    return;
                }
                job(client.clone(), i).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("a lane");
    }
}

/// Retries `attempt` until it succeeds (the cluster may be failing over), failing the test
/// once [`SCALE_DEADLINE`] has passed since `start`.
async fn retry<T, E: std::fmt::Display, Fut: Future<Output = Result<T, E>>>(
    what: &str,
    start: Instant,
    mut attempt: impl FnMut() -> Fut,
) -> T {
    loop {
        match attempt().await {
            Ok(done) => return done,
            Err(err) => assert!(start.elapsed() < SCALE_DEADLINE, "{what} never succeeded: {err}"),
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes `value(i, round)` to every key in `keys`; each write is retried until acknowledged.
async fn write_all(client: &Client, keys: Range<usize>, round: usize, lanes: usize) {
    let start = Instant::now();
    spread(client, keys, lanes, move |client, i| async move {
        retry(&format!("writing key{i}"), start, || client.put(key(i), value(i, round))).await;
    })
    .await;
}

/// Reads every key in `keys` back and checks it holds `value(i, round)`.
async fn read_all(client: &Client, keys: Range<usize>, round: usize, lanes: usize) {
    let start = Instant::now();
    spread(client, keys, lanes, move |client, i| async move {
        let got = retry(&format!("reading key{i}"), start, || client.get(key(i))).await;
        assert_eq!(got, Some(value(i, round)), "key{i} does not hold its acknowledged value");
    })
    .await;
}

/// Times the backup's log says a slave connected, after it began to take over.
fn joins_after_takeover(log: &str) -> usize {
    log.split("campaigning to take over").nth(1).map_or(0, |after| after.matches("slave connected").count())
}

#[test]
fn a_takeover_with_many_keys_serves_keeps_the_slaves_and_loses_nothing() {
    let n = keys();
    let mut cluster = Cluster::start_pair("scale", 3, &[]);
    cluster.with_client(|client| async move { write_all(&client, 0..n, 1, 64).await });
    let status = cluster.wait_status_within("the standby caught up", SCALE_DEADLINE, |s| s["standby"]["lag"] == 0);
    assert!(status["keys"].as_u64().unwrap_or(0) >= n as u64, "the master maps every key: {status}");

    cluster.master.kill();
    // The first write after the kill waits for the takeover; then half the keys get a new value.
    cluster.with_client(|client| async move { write_all(&client, 0..n / 2, 2, 64).await });
    let status = cluster.wait_status_within("the new master with every slave", SCALE_DEADLINE, |s| {
        support::slave_ids(s) == ["slave-1", "slave-2", "slave-3"] && s["role"] != "Candidate"
    });
    assert!(status["epoch"].as_u64().unwrap_or(0) >= 2, "a takeover happened: {status}");

    cluster.with_client(|client| async move {
        read_all(&client, 0..n / 2, 2, 64).await;
        // The rest still hold the first round.
        read_all(&client, n / 2..n, 1, 64).await;
    });
    let backup_log = cluster.backup.as_ref().expect("a backup").log_text();
    let joins = joins_after_takeover(&backup_log);
    assert!(joins <= 3, "each slave joins the new master once, but the log shows {joins} joins");

    // A slave restarted empty is refilled while writes go on.
    cluster.kill_slave("slave-2");
    cluster.start_slave("slave-2");
    cluster.with_client(|client| async move { write_all(&client, 0..1000, 3, 8).await });
    let status = cluster.wait_status_within("slave-2 refilled", SCALE_DEADLINE, |s| {
        support::slave_ids(s).contains(&"slave-2")
            && s["under_replicated"] == 0
            && support::slave_field(s, "slave-2", "keys_held") >= n as u64
    });
    assert_eq!(status["under_replicated"], 0);
    cluster.with_client(|client| async move { read_all(&client, 0..1000, 3, 8).await });
}
