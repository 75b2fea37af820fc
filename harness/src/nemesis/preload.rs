//! `--preload N`: a large data set under the faults. Before the workload starts, the cluster is
//! filled with `N` keys after the workload's own (`key{keys}` onwards, 100-byte values) by the
//! same pipelined writer as `harness load`, straight to the nodes; every one of those writes
//! was acknowledged, or the run stops. After healing, a sample of them is read back: a key
//! that does not hold what was written is a lost write.

use std::time::{Duration, Instant};

use actors::client::{Client, ClientConfig};

use crate::error::HarnessError;
use crate::load::{load, value_for, LoadPlan};
use crate::nemesis::config::NemesisConfig;
use crate::nemesis::topology::Topology;
use crate::nemesis::verdict::LostWrite;

/// Bytes per preloaded value.
const VALUE_SIZE: usize = 100;
/// Preloaded keys read back after healing, at most.
const SAMPLE: u64 = 10_000;

/// Fills the cluster with the preload, if any.
pub async fn fill(topology: &Topology, config: &NemesisConfig) -> Result<(), HarnessError> {
    if config.preload == 0 {
        return Ok(());
    }
    let client = ClientConfig {
        servers: topology.node_addrs.to_vec(),
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(10),
        credentials: topology.credentials.clone(),
    };
    let plan = LoadPlan {
        config: client,
        keys: config.preload,
        first: config.keys,
        value_size: VALUE_SIZE,
        connections: 8,
        pipeline: 32,
    };
    let loaded = load(plan).await?;
    eprintln!("preloaded {} keys at {:.0} writes/s", loaded.keys, loaded.rate());
    Ok(())
}

/// The preloaded keys a sample reads back: evenly spread, the first and the last included.
pub fn sample(first: u64, count: u64) -> Vec<u64> {
    if count <= SAMPLE {
        return (first..first + count).collect();
    }
    let mut picked: Vec<u64> = (0..SAMPLE - 1).map(|i| first + i * count / (SAMPLE - 1)).collect();
    picked.push(first + count - 1);
    picked
}

/// What reading the sample back found.
#[derive(Debug, Default)]
pub struct Checked {
    pub lost: Vec<LostWrite>,
    /// Keys no read answered before the deadline.
    pub unread: usize,
}

/// Reads the sample back through `client`, each key until a read answers or `deadline` passes.
pub async fn check(client: &Client, config: &NemesisConfig, deadline: Instant) -> Checked {
    let mut checked = Checked::default();
    if config.preload == 0 {
        return checked;
    }
    for index in sample(config.keys, config.preload) {
        let name = format!("key{index}");
        let expected = value_for(index, VALUE_SIZE);
        let found = loop {
            match client.get(name.clone()).await {
                Ok(value) => break Some(value),
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(_) => break None,
            }
        };
        match found {
            None => checked.unread += 1,
            Some(value) if value.as_ref() == Some(&expected) => {}
            Some(value) => checked.lost.push(LostWrite {
                key: name,
                process: 0,
                value: Some(String::from_utf8_lossy(&expected).into_owned()),
                call_s: 0.0,
                ack_s: 0.0,
                final_value: value.map(|v| String::from_utf8_lossy(&v).into_owned()),
            }),
        }
    }
    checked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_spreads_over_every_preloaded_key_and_stays_bounded() {
        assert_eq!(sample(8, 3), [8, 9, 10]);
        let picked = sample(8, 1_000_000);
        assert_eq!(picked.len() as u64, SAMPLE);
        assert_eq!(picked.first(), Some(&8));
        assert_eq!(picked.last(), Some(&(8 + 1_000_000 - 1)));
        assert!(picked.windows(2).all(|w| w[0] < w[1]), "distinct and in order");
    }
}
