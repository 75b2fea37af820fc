//! Quorum reads and writes against real processes: round trips, concurrency, slaves killed
//! with SIGKILL or stopped with SIGSTOP, and slaves that come back empty.

mod support;

use std::collections::BTreeMap;

use actors::Error;
use bytes::Bytes;
use net::WireError;
use support::{slave_field, Cluster};

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

#[test]
fn put_get_del_round_trip_through_the_library() {
    let cluster = Cluster::start("round-trip", 3, &[]);
    cluster.with_client(|client| async move {
        assert_eq!(client.get(b("k")).await.unwrap(), None);
        let v1 = client.put(b("k"), b("one")).await.unwrap();
        assert_eq!(client.get(b("k")).await.unwrap(), Some(b("one")));
        let v2 = client.put(b("k"), Bytes::from_static(b"\x00binary\xff")).await.unwrap();
        assert!(v2 > v1, "versions grow");
        assert_eq!(client.get(b("k")).await.unwrap(), Some(Bytes::from_static(b"\x00binary\xff")));
        let v3 = client.del(b("k")).await.unwrap();
        assert!(v3 > v2);
        let (value, version) = client.get_versioned(b("k")).await.unwrap();
        assert_eq!((value, version), (None, Some(v3)), "a delete is a versioned tombstone");
        client.put(b("empty"), Bytes::new()).await.unwrap();
        assert_eq!(client.get(b("empty")).await.unwrap(), Some(Bytes::new()));
    });
}

/// Many clients write and read the same few keys at once. Every read returns a value some
/// client wrote, and once the writers are done every key holds the value of the acknowledged
/// write with the highest version.
#[test]
fn concurrent_clients_on_the_same_keys_agree_on_the_newest_write() {
    let cluster = Cluster::start("concurrent", 3, &[]);
    let keys = ["a", "b", "c"];
    let newest = cluster.with_client(|client| async move {
        let mut tasks = Vec::new();
        for writer in 0..8 {
            let client = client.clone();
            tasks.push(actix_rt::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..40 {
                    let key = keys[(writer + i) % keys.len()];
                    let value = format!("w{writer}-{i}");
                    let version = client.put(b(key), b(&value)).await.expect("put");
                    acked.push((key, version, value));
                    let read = client.get(b(key)).await.expect("get").expect("a written key exists");
                    assert!(read.starts_with(b"w"), "read {read:?} was never written");
                }
                acked
            }));
        }
        let mut newest: BTreeMap<&str, (net::Version, String)> = BTreeMap::new();
        for task in tasks {
            for (key, version, value) in task.await.unwrap() {
                let slot = newest.entry(key).or_insert((version, value.clone()));
                if version > slot.0 {
                    *slot = (version, value);
                }
            }
        }
        for (key, (_, value)) in &newest {
            assert_eq!(client.get(b(key)).await.unwrap(), Some(b(value)), "key {key}");
        }
        newest
    });
    assert_eq!(newest.len(), 3);
    // A fresh client (a new process) sees the same values.
    for (key, (_, value)) in newest {
        assert_eq!(support::stdout(&cluster.cli(&["get", key])), value);
    }
}

#[test]
fn reads_and_writes_go_on_after_a_slave_is_killed() {
    let mut cluster = Cluster::start("kill-one", 3, &[]);
    cluster.with_client(|client| async move {
        for i in 0..20 {
            client.put(b(&format!("k{i}")), b(&format!("v{i}"))).await.unwrap();
        }
    });
    cluster.kill_slave("slave-2");
    cluster.with_client(|client| async move {
        for i in 0..20 {
            let key = format!("k{i}");
            assert_eq!(client.get(b(&key)).await.unwrap(), Some(b(&format!("v{i}"))), "{key}");
            client.put(b(&key), b(&format!("after-{i}"))).await.unwrap();
            assert_eq!(client.get(b(&key)).await.unwrap(), Some(b(&format!("after-{i}"))));
        }
    });
    cluster.wait_for_slaves(&["slave-1", "slave-3"]);
}

#[test]
fn losing_two_of_three_replicas_gives_unavailable_not_ok_and_not_a_hang() {
    let mut cluster = Cluster::start("kill-two", 3, &[]);
    cluster.with_client(|client| async move { client.put(b("k"), b("v")).await.unwrap() });
    cluster.kill_slave("slave-1");
    cluster.kill_slave("slave-2");
    cluster.wait_for_slaves(&["slave-3"]);
    cluster.with_client(|client| async move {
        let write = client.put(b("k"), b("new")).await;
        assert!(
            matches!(write, Err(Error::Server(WireError::Unavailable { .. }))),
            "the master must refuse, got {write:?}"
        );
        let read = client.get(b("k")).await;
        assert!(matches!(read, Err(Error::Server(WireError::Unavailable { .. }))), "got {read:?}");
    });
    let out = cluster.cli(&["put", "k", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(support::stderr(&out).contains("unavailable"), "{}", support::stderr(&out));
}

/// Replicas that stop answering mid-write (SIGSTOP: the connection stays open) make the write
/// fail with an unknown outcome once the request timeout passes, never OK and never a hang.
#[test]
fn a_write_that_cannot_reach_a_majority_in_time_is_reported_as_unknown() {
    let mut cluster = Cluster::start("stopped", 3, &["--request-timeout-ms", "300", "--slave-timeout-ms", "60000"]);
    cluster.with_client(|client| async move { client.put(b("k"), b("v")).await.unwrap() });
    cluster.slave("slave-1").signal(libc::SIGSTOP);
    cluster.slave("slave-2").signal(libc::SIGSTOP);
    let result = cluster.with_client(|client| async move { client.put(b("k"), b("new")).await });
    cluster.slave("slave-1").signal(libc::SIGCONT);
    cluster.slave("slave-2").signal(libc::SIGCONT);
    match result {
        Err(err @ Error::Server(WireError::OutcomeUnknown { .. })) => {
            assert!(err.outcome_unknown())
        }
        other => panic!("expected an unknown outcome, got {other:?}"),
    }
}

#[test]
fn a_slave_restarted_empty_gets_its_keys_back_through_read_repair() {
    let mut cluster = Cluster::start("read-repair", 3, &["--repair-concurrency", "0"]);
    support::write_keys(&cluster, "key", 30);
    cluster.kill_slave("slave-1");
    cluster.start_slave("slave-1");
    cluster.wait_status("slave-1 back, empty", |s| {
        support::slave_ids(s).len() == 3 && s["under_replicated"].as_u64() == Some(30)
    });
    support::assert_keys(&cluster, "key", 30);
    cluster.wait_status("slave-1 repaired by the reads", |s| {
        slave_field(s, "slave-1", "keys_held") == 30 && s["under_replicated"].as_u64() == Some(0)
    });
}

/// A slave that restarts comes back empty with a new incarnation; the master refills it in the
/// background (and reads repair it too) until it holds every key placed on it again.
#[test]
fn a_slave_restarted_empty_is_refilled_in_the_background() {
    let mut cluster = Cluster::start("refill", 3, &[]);
    support::write_keys(&cluster, "key", 30);
    cluster.kill_slave("slave-1");
    cluster.start_slave("slave-1");
    let status = cluster.wait_status("slave-1 refilled without a single read", |s| {
        support::slave_ids(s).len() == 3
            && slave_field(s, "slave-1", "keys_held") == 30
            && s["under_replicated"].as_u64() == Some(0)
    });
    assert_eq!(slave_field(&status, "slave-1", "keys_placed"), 30);
}

/// The trap: a write acknowledged by exactly a majority {A, B}; B restarts empty; C missed the
/// write. Counting B's empty answer with C's stale one would return the old value. With A
/// stopped, the only honest answer is "unavailable".
#[test]
fn a_restarted_slave_cannot_hide_an_acknowledged_write() {
    // Background repair off, so that nothing refills B before the read.
    let mut cluster = Cluster::start("amnesia", 3, &["--request-timeout-ms", "1000", "--repair-concurrency", "0"]);
    cluster.with_client(|client| async move { client.put(b("k"), b("old")).await.unwrap() });

    // C (slave-3) misses the write: stopped until the master drops it.
    cluster.slave("slave-3").signal(libc::SIGSTOP);
    cluster.wait_for_slaves(&["slave-1", "slave-2"]);
    cluster.with_client(|client| async move { client.put(b("k"), b("new")).await.unwrap() });
    cluster.slave("slave-3").signal(libc::SIGCONT);
    cluster.wait_for_slaves(&["slave-1", "slave-2", "slave-3"]);

    // B (slave-2) forgets everything.
    cluster.kill_slave("slave-2");
    cluster.start_slave("slave-2");
    cluster.wait_for_slaves(&["slave-1", "slave-2", "slave-3"]);

    // A (slave-1) stops answering; B and C alone must not answer "old".
    cluster.slave("slave-1").signal(libc::SIGSTOP);
    let read = cluster.with_client(|client| async move { client.get(b("k")).await });
    cluster.slave("slave-1").signal(libc::SIGCONT);
    cluster.wait_for_slaves(&["slave-1", "slave-2", "slave-3"]);
    match read {
        Ok(Some(value)) => assert_eq!(value, b("new"), "an acknowledged write was hidden"),
        Ok(None) => panic!("an acknowledged write vanished"),
        Err(err) => assert!(matches!(err, Error::Server(WireError::Unavailable { .. })), "{err:?}"),
    }
    let after = cluster.with_client(|client| async move { client.get(b("k")).await.unwrap() });
    assert_eq!(after, Some(b("new")));
}
