//! Resident memory of a slave's store holding 1 million keys with 100-byte values.
//!
//! `cargo bench -p actors --bench slave_memory` (`SLAVE_MEMORY_KEYS` changes the count).
//! The entries go through the same path as on a slave: decoded from a MessagePack write
//! request, then stored.

use actors::slave::store::StoreMap;
use net::{Key, SlaveOp, Value, Version};

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let keys: u64 = std::env::var("SLAVE_MEMORY_KEYS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let before = resident_kib();
    let mut map = StoreMap::default();
    for i in 0..keys {
        let op = SlaveOp::Write {
            key: Key::new(format!("key{i}")).expect("key"),
            version: Version::new(1, i + 1),
            value: Some(Value::new(vec![b'v'; 100]).expect("value")),
            stamp: None,
        };
        let wire = rmp_serde::to_vec_named(&op).expect("encode");
        let SlaveOp::Write { key, version, value, stamp } = rmp_serde::from_slice(&wire).expect("decode") else {
            unreachable!("a write was encoded")
        };
        map.write(key, version, value, stamp);
    }
    let after = resident_kib();
    println!(
        "{} keys with 100-byte values: {:.1} MiB resident ({:.0} bytes per key); process total {:.1} MiB",
        map.len(),
        (after - before) as f64 / 1024.0,
        (after - before) as f64 * 1024.0 / keys as f64,
        after as f64 / 1024.0
    );
}
