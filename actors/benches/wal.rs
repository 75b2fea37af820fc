//! WAL appends per second: group commit (the WAL writer actor) against one fdatasync per write,
//! with 1, 16 and 128 concurrent writers, 100-byte values. Prints a Markdown table.
//!
//! `cargo bench -p actors --bench wal` (set `WAL_BENCH_SECS` to change the 3 s per cell, and
//! `WAL_BENCH_DIR` to put the files on another disk).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actors::master::wal_writer::{AppendDurable, LogEntry, WalConfig, WalWriter};
use actors::wal::{format, recover, DataDir};
use net::{Key, LogRecord, Lsn, Value, Version};

fn entry(i: u64) -> LogEntry {
    LogEntry::Write {
        version: Version::new(1, i),
        key: Key::new(format!("key{}", i % 1000)).expect("key"),
        value: Some(Value::new(vec![b'v'; 100]).expect("value")),
        stamp: None,
    }
}

fn scratch(name: &str) -> PathBuf {
    let base = std::env::var_os("WAL_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("kv-wal-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn group_commit(writers: usize, secs: Duration) -> f64 {
    let path = scratch(&format!("group-{writers}"));
    let rate = actix_rt::System::new().block_on(async move {
        let dir = Arc::new(DataDir::open(&path).expect("data dir"));
        let recovered = recover(&dir).expect("recover");
        let config = WalConfig { sync: true, snapshot_after_bytes: u64::MAX, ship: false };
        let wal = WalWriter::start(dir, &recovered, config).expect("wal");
        let done = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (wal, done) = (wal.clone(), done.clone());
            tasks.push(actix_rt::spawn(async move {
                let mut i = w as u64 * 1_000_000_000;
                while start.elapsed() < secs {
                    i += 1;
                    wal.send(AppendDurable(entry(i))).await.expect("mailbox").expect("durable");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for task in tasks {
            task.await.expect("writer");
        }
        let _ = std::fs::remove_dir_all(&path);
        done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
    });
    rate
}

fn fsync_per_write(writers: usize, secs: Duration) -> f64 {
    let path = scratch(&format!("single-{writers}"));
    std::fs::create_dir_all(&path).expect("dir");
    let file = OpenOptions::new().create(true).append(true).open(path.join("wal.log")).expect("file");
    let file = Arc::new(Mutex::new(file));
    let (done, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let start = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let (file, done, stop) = (file.clone(), done.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = w as u64 * 1_000_000_000;
                let mut buf = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    buf.clear();
                    let LogEntry::Write { version, key, value, stamp } = entry(i) else { unreachable!() };
                    let record = LogRecord::Write { lsn: Lsn(i), version, key, value, stamp };
                    format::encode(&record, &mut buf).expect("encode");
                    let mut file = file.lock().expect("lock");
                    file.write_all(&buf).and_then(|()| file.sync_data()).expect("write");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(secs);
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("writer");
    }
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&path);
    rate
}

fn main() {
    let secs = std::env::var("WAL_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let secs = Duration::from_secs(secs);
    println!("| writers | group commit (appends/s) | one fdatasync per write (appends/s) | ratio |");
    println!("|---:|---:|---:|---:|");
    for writers in [1, 16, 128] {
        let group = group_commit(writers, secs);
        let single = fsync_per_write(writers, secs);
        println!("| {writers} | {group:.0} | {single:.0} | {:.1}x |", group / single);
    }
}
