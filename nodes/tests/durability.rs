//! Nothing acknowledged is lost: the master's write-ahead log, crash recovery, torn tails and
//! damage, the data-directory lock, and slaves coming and going. Real processes, SIGKILL.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use net::Version;
use support::{assert_keys, slave_field, stderr, write_keys, Cluster, Proc};

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

fn segments(cluster: &Cluster) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cluster.dir.join("master-data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

#[test]
fn acknowledged_writes_survive_a_master_sigkill_mid_stream() {
    let mut cluster = Cluster::start("master-crash", 3, &[]);
    let acked = Arc::new(AtomicUsize::new(0));
    let pid = cluster.master.pid();
    let watcher_acked = acked.clone();
    let killer = std::thread::spawn(move || {
        support::wait_for(|| (watcher_acked.load(Ordering::SeqCst) >= 150).then_some(()));
        // SAFETY: kill(2) on the master, a child of this test.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let counter = acked.clone();
    // Each writer owns its keys and stops at its first error, so a key ends up holding either
    // its last acknowledged value or the value of that one failed write (its outcome unknown).
    type Outcome = (BTreeMap<String, (String, Version)>, Vec<(String, String)>);
    let (confirmed, unknown): Outcome = cluster.with_client(|client| async move {
        let mut tasks = Vec::new();
        for writer in 0..8 {
            let (client, counter) = (client.clone(), counter.clone());
            tasks.push(actix_rt::spawn(async move {
                let (mut acked, mut unknown) = (Vec::new(), None);
                for i in 0..10_000 {
                    let (key, value) = (format!("w{writer}-k{}", i % 25), format!("w{writer}-v{i}"));
                    match client.put(b(&key), b(&value)).await {
                        Ok(version) => {
                            counter.fetch_add(1, Ordering::SeqCst);
                            acked.push((key, value, version));
                        }
                        Err(_) => {
                            unknown = Some((key, value));
                            break;
                        }
                    }
                }
                (acked, unknown)
            }));
        }
        let (mut last, mut unknown) = (BTreeMap::new(), Vec::new());
        for task in tasks {
            let (acked, failed) = task.await.unwrap();
            for (key, value, version) in acked {
                last.insert(key, (value, version));
            }
            unknown.extend(failed);
        }
        (last, unknown)
    });
    killer.join().unwrap();
    assert!(acked.load(Ordering::SeqCst) >= 150);
    let before = confirmed.values().map(|(_, v)| *v).max().unwrap();

    cluster.restart_master();
    cluster.wait_for_slaves(&["slave-1", "slave-2", "slave-3"]);
    let expected = confirmed.clone();
    let after = cluster.with_client(|client| async move {
        for (key, (value, _)) in &expected {
            let got = client.get(b(key)).await.unwrap().expect("an acknowledged key exists");
            let allowed = got == b(value) || unknown.iter().any(|(k, v)| k == key && got == b(v));
            assert!(allowed, "{key} holds {got:?}, not its acknowledged value {value}");
        }
        client.put(b("after"), b("restart")).await.unwrap()
    });
    assert!(after > before, "versions after the restart ({after}) must exceed those before ({before})");
}

#[test]
fn a_torn_tail_is_cut_with_a_warning_and_acknowledged_writes_remain() {
    let mut cluster = Cluster::start("torn", 3, &[]);
    write_keys(&cluster, "t", 20);
    cluster.master.kill();
    let log = segments(&cluster).pop().expect("a log file");
    let original = std::fs::read(&log).unwrap();
    let len = original.len();
    // A partial record: the head of a record that a crash interrupted.
    let garbage = [120, 0, 0, 0, 1, 2, 3, 4, 5, 6];
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, &garbage).unwrap();
    drop(file);

    cluster.restart_master();
    let now = std::fs::read(&log).unwrap();
    assert!(now.starts_with(&original), "everything before the torn record is kept");
    assert_ne!(now.get(len..len + garbage.len()), Some(&garbage[..]), "the torn record is gone");
    support::wait_for(|| cluster.master.log_text().contains("cutting off a torn record").then_some(()));
    assert!(cluster.master.log_text().contains(&format!("offset={len}")), "the warning names the offset");
    cluster.wait_for_slaves(&["slave-1", "slave-2", "slave-3"]);
    assert_keys(&cluster, "t", 20);
}

/// Runs a master on `data_dir` to its exit (for data directories it must refuse).
fn start_master_once(data_dir: &std::path::Path) -> std::process::Output {
    std::process::Command::new(support::NODES)
        .args(["master", "--listen", "127.0.0.1:0", "--data-dir", data_dir.to_str().unwrap()])
        .args(["--redis-listen", "off", "--sentinel-listen", "off"])
        .output()
        .unwrap()
}

#[test]
fn damage_in_the_middle_of_the_log_stops_startup_and_changes_nothing() {
    let mut cluster = Cluster::start("damage", 1, &[]);
    write_keys(&cluster, "d", 20);
    cluster.master.kill();
    let log = segments(&cluster).pop().expect("a log file");
    let mut data = std::fs::read(&log).unwrap();
    let middle = data.len() / 2;
    data[middle] ^= 0xff;
    std::fs::write(&log, &data).unwrap();

    let data_dir = cluster.dir.join("master-data");
    let out = start_master_once(&data_dir);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("corrupt at offset") && err.contains(log.file_name().unwrap().to_str().unwrap()), "{err}");
    assert_eq!(std::fs::read(&log).unwrap(), data, "the log is unchanged");
}

#[test]
fn a_second_master_on_the_same_data_directory_refuses_to_start() {
    let cluster = Cluster::start("lock", 1, &[]);
    let data_dir = cluster.dir.join("master-data");
    let out = start_master_once(&data_dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("in use by another process"), "{}", stderr(&out));
    assert!(cluster.cli(&["put", "still", "serving"]).status.success());
}

#[test]
fn a_lost_slave_is_replaced_until_no_key_is_under_replicated() {
    let mut cluster = Cluster::start("rereplicate", 4, &[]);
    write_keys(&cluster, "r", 40);
    let status = cluster.status();
    assert_eq!(status["under_replicated"], 0);
    let victim = ["slave-1", "slave-2", "slave-3", "slave-4"]
        .into_iter()
        .max_by_key(|s| slave_field(&status, s, "keys_placed"))
        .unwrap();
    cluster.kill_slave(victim);
    let survivors: Vec<&str> =
        ["slave-1", "slave-2", "slave-3", "slave-4"].into_iter().filter(|s| *s != victim).collect();
    let status = cluster.wait_status("every key back at 3 live replicas", |s| {
        support::slave_ids(s) == survivors && s["under_replicated"].as_u64() == Some(0)
    });
    let placed: u64 = survivors.iter().map(|s| slave_field(&status, s, "keys_placed")).sum();
    assert_eq!(placed, 40 * 3);
    assert_keys(&cluster, "r", 40);
}

#[test]
fn all_slaves_restarted_at_once_are_repopulated_from_the_log() {
    let mut cluster = Cluster::start("all-slaves", 3, &[]);
    write_keys(&cluster, "s", 30);
    for name in ["slave-1", "slave-2", "slave-3"] {
        cluster.kill_slave(name);
    }
    for name in ["slave-1", "slave-2", "slave-3"] {
        cluster.start_slave(name);
    }
    cluster
        .wait_status("repopulated", |s| support::slave_ids(s).len() == 3 && s["under_replicated"].as_u64() == Some(0));
    assert_keys(&cluster, "s", 30);
}

#[test]
fn every_process_killed_and_restarted_loses_nothing() {
    let mut cluster = Cluster::start("everything", 3, &[]);
    write_keys(&cluster, "e", 30);
    cluster.with_client(|client| async move { client.del(b("e7")).await.unwrap() });
    for name in ["slave-1", "slave-2", "slave-3"] {
        cluster.kill_slave(name);
    }
    cluster.restart_master();
    for name in ["slave-1", "slave-2", "slave-3"] {
        cluster.start_slave(name);
    }
    cluster.wait_for_slaves(&["slave-1", "slave-2", "slave-3"]);
    cluster.with_client(|client| async move {
        for i in 0..30 {
            let key = format!("e{i}");
            let expected = (i != 7).then(|| b(&format!("e-value-{i}")));
            assert_eq!(client.get(b(&key)).await.unwrap(), expected, "{key}");
        }
    });
    cluster.wait_status("placed again", |s| s["under_replicated"].as_u64() == Some(0));
}

#[test]
fn snapshots_bound_the_log_and_restore_the_state() {
    let mut cluster = Cluster::start("snapshot", 3, &["--snapshot-after-mb", "1"]);
    let big = "x".repeat(16 * 1024);
    let value = big.clone();
    cluster.with_client(|client| async move {
        for round in 0..3 {
            for i in 0..50 {
                client.put(b(&format!("big{i}")), b(&format!("{round}{value}"))).await.unwrap();
            }
        }
    });
    let data_dir = cluster.dir.join("master-data");
    support::wait_for(|| {
        let names: Vec<String> =
            std::fs::read_dir(&data_dir).ok()?.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        (names.iter().any(|n| n.ends_with(".snap")) && !names.iter().any(|n| n == "wal-00000000000000000001.log"))
            .then_some(())
    });
    cluster.restart_master();
    cluster.wait_for_slaves(&["slave-1", "slave-2", "slave-3"]);
    cluster.with_client(|client| async move {
        for i in 0..50 {
            assert_eq!(client.get(b(&format!("big{i}"))).await.unwrap(), Some(b(&format!("2{big}"))));
        }
    });
}

#[allow(dead_code)]
fn unused(_: Proc) {}
