//! `harness load`: fills an existing cluster with `key0` .. `key{N-1}` as fast as it takes them,
//! so a run, a nemesis or a takeover can start from a large data set.
//!
//! Each of `--connections` clients keeps `--pipeline` writes in flight on its one connection
//! (the client numbers requests, so they travel pipelined) and takes the next key from a shared
//! counter. A write that fails is tried again (up to `RETRIES` times, e.g. through a takeover);
//! the load fails if one still fails, since the data set would then be incomplete.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::client::{Client, ClientConfig};
use bytes::{BufMut, Bytes, BytesMut};
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::HarnessError;

/// Times one key's write is tried before the load gives up.
const RETRIES: u32 = 5;

/// What to load, and where.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub config: ClientConfig,
    pub keys: u64,
    /// The first key's index (`key{first}` .. `key{first + keys - 1}`).
    pub first: u64,
    pub value_size: usize,
    pub connections: u32,
    pub pipeline: u32,
}

/// What a load did.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub keys: u64,
    pub elapsed: Duration,
    /// Writes tried again after an error.
    pub retried: u64,
}

impl Loaded {
    pub fn rate(&self) -> f64 {
        self.keys as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// The value written to `key{index}`: its index, padded to `size` bytes.
pub fn value_for(index: u64, size: usize) -> Bytes {
    let mut value = BytesMut::with_capacity(size.max(20));
    value.put_slice(format!("v{index}-").as_bytes());
    while value.len() < size {
        value.put_u8(b'x');
    }
    value.freeze()
}

/// Writes every key of `plan` once; fails on the first key whose every try failed.
pub async fn load(plan: LoadPlan) -> Result<Loaded, HarnessError> {
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let retried = Arc::new(AtomicU64::new(0));
    let bar = progress(plan.keys);
    let start = Instant::now();
    let mut lanes = Vec::new();
    for _ in 0..plan.connections {
        let client = Client::start(plan.config.clone());
        for _ in 0..plan.pipeline {
            let (client, next, done, retried, bar) =
                (client.clone(), next.clone(), done.clone(), retried.clone(), bar.clone());
            let plan = plan.clone();
            lanes.push(actix_rt::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= plan.keys {
                        return Ok(());
                    }
                    let index = plan.first + i;
                    let key = Bytes::from(format!("key{index}"));
                    let value = value_for(index, plan.value_size);
                    let mut tries = 0;
                    loop {
                        match client.put(key.clone(), value.clone()).await {
                            Ok(_) => break,
                            Err(err) if tries + 1 >= RETRIES => {
                                return Err(HarnessError::Load(format!("key{index} was not written: {err}")))
                            }
                            Err(_) => {
                                tries += 1;
                                retried.fetch_add(1, Ordering::Relaxed);
                                actix_rt::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                    if done.fetch_add(1, Ordering::Relaxed) % 1024 == 0 {
                        bar.set_position(done.load(Ordering::Relaxed));
                    }
                }
            }));
        }
    }
    let mut first_error = None;
    for lane in lanes {
        let result = lane.await.unwrap_or_else(|err| Err(HarnessError::Load(format!("a load task failed: {err}"))));
        if let Err(err) = result {
            // Stop handing out keys; the other lanes finish what they hold.
            next.store(plan.keys, Ordering::Relaxed);
            first_error.get_or_insert(err);
        }
    }
    bar.finish_and_clear();
    match first_error {
        Some(err) => Err(err),
        None => Ok(Loaded { keys: plan.keys, elapsed: start.elapsed(), retried: retried.load(Ordering::Relaxed) }),
    }
}

fn progress(keys: u64) -> ProgressBar {
    let bar = ProgressBar::new(keys);
    let style = ProgressStyle::with_template("load [{bar:24}] {pos}/{len} keys  {per_sec}  eta {eta}")
        .map(|s| s.progress_chars("=> "));
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_asked_size_and_name_their_key() {
        let value = value_for(42, 100);
        assert_eq!(value.len(), 100);
        assert!(value.starts_with(b"v42-"));
        assert!(value_for(123_456_789, 4).starts_with(b"v123456789-"), "never cut below its index");
    }
}
