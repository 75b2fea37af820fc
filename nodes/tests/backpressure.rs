//! Clients that send requests and never read the replies. A connection stops being read while
//! its unsent replies are over the soft limit and is closed past the hard one, so the node's
//! memory stays bounded by the limits, not by what the client asks for, and other clients are
//! served meanwhile. Both the native protocol and the Redis endpoint are tried.

mod support;

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use net::{encode_frame, ClientOp, Hello, Key, PeerRole, ToServer};
use support::{Cluster, Proc};

/// Small limits, so the test needs little traffic: 1 MiB before a connection stops reading,
/// 8 MiB before it is closed.
const LIMITS: &[&str] = &["--output-soft-mb", "1", "--output-hard-mb", "8", "--redis-listen", "127.0.0.1:0"];

/// The value every flood asks for: 64 KiB.
const VALUE_LEN: usize = 64 * 1024;

/// Requests a flood sends at most: 40,000 replies of 64 KiB would be 2.5 GiB if all were held.
const FLOOD: usize = 40_000;

/// The pause between two batches of a flood.
const PACE: Duration = Duration::from_millis(5);

/// What the master may grow by while a client floods it: far above the limits and what
/// requests in flight hold, far below what the flood asks for.
const GROWTH_LIMIT_MB: u64 = 100;

fn rss_mb(proc: &Proc) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", proc.pid())).expect("the master's status");
    let kb = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS in /proc/PID/status");
    kb / 1024
}

/// Sends `request` up to `FLOOD` times, 100 at a time at most every `PACE` (about as fast as
/// the master answers, so it takes them in rather than refusing them as too many in flight),
/// and never reads. Stops early once the server stops taking requests (a write blocks past its
/// timeout) or closes the connection. Returns the socket, still open on this side.
fn flood(addr: &str, preamble: &[u8], request: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_write_timeout(Some(Duration::from_secs(2))).expect("write timeout");
    stream.write_all(preamble).expect("the preamble");
    let batch = request.repeat(100);
    for _ in 0..FLOOD / 100 {
        match stream.write_all(&batch) {
            Ok(()) => std::thread::sleep(PACE),
            // The server stopped reading: its replies are not being taken.
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            // The server closed the connection: past the hard limit.
            Err(_) => break,
        }
    }
    stream
}

/// Floods the master with `request`, then checks that its memory stayed within bounds and
/// that another client is served while the flooding connection is still open.
fn flood_and_check(cluster: &Cluster, preamble: &[u8], request: &[u8], target: &str) {
    let before = rss_mb(&cluster.master);
    let held = flood(target, preamble, request);
    // Requests taken before the server stopped reading finish; their replies are held or dropped.
    let served = cluster.cli(&["put", "bystander", "served"]);
    assert!(served.status.success(), "a bystander write was refused: {}", support::stderr(&served));
    let read = cluster.cli(&["get", "bystander"]);
    assert_eq!(support::stdout(&read).trim(), "served", "a bystander read: {}", support::stderr(&read));
    // Requests taken before it stopped reading outgrow the hard limit: the connection is closed.
    support::wait_for(|| cluster.master.log_text().contains("its peer does not read").then_some(()));
    let after = rss_mb(&cluster.master);
    eprintln!("the master's resident memory: {before} MB before the flood, {after} MB after");
    assert!(
        after <= before + GROWTH_LIMIT_MB,
        "the master grew from {before} MB to {after} MB for a client that never reads"
    );
    drop(held);
}

/// A cluster with the limits above, holding `big` (a `VALUE_LEN` value).
fn big_value_cluster(name: &str) -> Cluster {
    let cluster = Cluster::start(name, 3, LIMITS);
    let value = "v".repeat(VALUE_LEN);
    let put = cluster.cli(&["put", "big", &value]);
    assert!(put.status.success(), "the big value was refused: {}", support::stderr(&put));
    cluster
}

fn frame(msg: &ToServer) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_frame(msg, &mut buf).expect("encode");
    buf.to_vec()
}

#[test]
fn a_native_client_that_never_reads_cannot_grow_the_master() {
    let cluster = big_value_cluster("backpressure-native");
    let preamble = frame(&ToServer::Hello(Hello::new(PeerRole::Client)));
    let key = Key::new(&b"big"[..]).expect("a key");
    let get = frame(&ToServer::Request { id: 2, op: ClientOp::Get { key } });
    flood_and_check(&cluster, &preamble, &get, &cluster.addr);
}

#[test]
fn a_redis_client_that_never_reads_cannot_grow_the_master() {
    let mut cluster = big_value_cluster("backpressure-redis");
    let redis = cluster.master.announced("redis listening on ");
    flood_and_check(&cluster, b"", b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n", &redis);
}

/// Keys written while the standby is away, 4 KiB each: 8 MiB in all, above the hard limit.
const BACKLOG_KEYS: usize = 2000;

fn write_backlog(cluster: &Cluster, prefix: &'static str) {
    cluster.with_client(|client| async move {
        let value = bytes::Bytes::from(vec![b'b'; 4096]);
        for i in 0..BACKLOG_KEYS {
            let key = bytes::Bytes::from(format!("{prefix}{i}"));
            client.put(key, value.clone()).await.expect("a write");
        }
    });
}

/// The standby at `backup` follows the master at `master` and holds everything it logged.
fn wait_caught_up(master: &str) {
    support::wait_for(|| {
        let out = std::process::Command::new(support::NODES)
            .args(["client", "--master", master, "--backup", support::NOWHERE, "status", "--json"])
            .output()
            .ok()?;
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (status["standby"]["id"] == "backup" && status["standby"]["lag"] == 0).then_some(())
    });
}

/// A standby that must catch up on more than the hard output limit, first as a backlog of
/// records and then (the master restarted, its recent records gone) as a snapshot, is sent it
/// as fast as it reads rather than cut off for it; then it takes over holding every write.
#[test]
fn a_standby_catches_up_on_more_than_the_output_limit() {
    let limits = ["--output-soft-mb", "1", "--output-hard-mb", "3"];
    let mut cluster = Cluster::start_pair("backpressure-standby", 3, &limits);
    let (master, backup) = (cluster.addr.clone(), cluster.backup_addr.clone().expect("a backup"));
    let dir = cluster.dir.clone();

    cluster.backup.as_mut().expect("a backup").kill();
    write_backlog(&cluster, "records-");
    cluster.backup = Some(Cluster::spawn_pair_node(&dir, "backup", &backup, &master, &limits));
    wait_caught_up(&master);

    cluster.backup.as_mut().expect("a backup").kill();
    cluster.master.kill();
    cluster.master = Cluster::spawn_pair_node(&dir, "master", &master, &backup, &limits);
    write_backlog(&cluster, "snapshot-");
    cluster.backup = Some(Cluster::spawn_pair_node(&dir, "backup", &backup, &master, &limits));
    wait_caught_up(&master);
    assert!(cluster.master.log_text().contains("sending a snapshot"), "the standby was not sent a snapshot");

    cluster.master.kill();
    let failover = actors::client::ClientConfig { servers: vec![backup.clone()], ..cluster.client_config() };
    actix_rt::System::new().block_on(async move {
        let client = actors::client::Client::start(failover);
        for prefix in ["records-", "snapshot-"] {
            for i in (0..BACKLOG_KEYS).step_by(97) {
                let key = bytes::Bytes::from(format!("{prefix}{i}"));
                let start = std::time::Instant::now();
                let value = loop {
                    match client.get(key.clone()).await {
                        Ok(value) => break value,
                        Err(err) => assert!(start.elapsed() < support::DEADLINE, "no master answers: {err}"),
                    }
                    actix_rt::time::sleep(Duration::from_millis(50)).await;
                };
                assert_eq!(value.map(|v| v.len()), Some(4096), "{prefix}{i}");
            }
        }
    });
}
