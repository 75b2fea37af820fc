//! The checked configuration of one run. It is also the `config` object of `summary.json`,
//! so its field names are part of the contract with the analysis tool.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::args::LoadArgs;
use crate::error::HarnessError;

/// What one run does. Built from the command line by [`RunConfig::new`], which checks it.
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    pub clients: u32,
    /// Slaves started, or (against an existing cluster) the slaves the master reported.
    pub slaves: u32,
    pub conns_per_client: u32,
    pub write_pct: u32,
    pub del_pct: u32,
    pub keys: u64,
    pub zipf: Option<f64>,
    pub value_size: usize,
    pub warmup_s: u64,
    pub duration_s: u64,
    pub think_ms: u64,
    pub rate: Option<f64>,
    pub seed: u64,
    /// Replication factor asked of a started master, or the existing master's.
    pub replicas: u32,
    pub request_timeout_ms: u64,
    #[serde(skip)]
    pub history: Option<PathBuf>,
}

impl RunConfig {
    /// Checks the flags that clap cannot check alone. `seed` is drawn when not given.
    pub fn new(load: &LoadArgs, clients: u32, slaves: u32) -> Result<RunConfig, HarnessError> {
        let config = RunConfig {
            clients,
            slaves,
            conns_per_client: load.conns_per_client,
            write_pct: load.write_pct,
            del_pct: load.del_pct,
            keys: load.keys,
            zipf: load.zipf,
            value_size: load.value_size,
            warmup_s: load.warmup,
            duration_s: load.duration,
            think_ms: load.think_ms,
            rate: load.rate,
            seed: load.seed.unwrap_or_else(|| u64::from(rand::random::<u32>())),
            replicas: load.replicas,
            request_timeout_ms: load.request_timeout_ms,
            history: load.history.clone(),
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), HarnessError> {
        let bad = |msg: String| Err(HarnessError::Config(msg));
        if let Some(s) = self.zipf {
            if !(s.is_finite() && s > 0.0) {
                return bad(format!("--zipf must be a positive number, got {s}"));
            }
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return bad(format!("--rate must be a positive number, got {rate}"));
            }
        }
        if self.value_size > net::limits::MAX_VALUE_LEN {
            return bad(format!(
                "--value-size {} is over the store's limit of {} bytes",
                self.value_size,
                net::limits::MAX_VALUE_LEN
            ));
        }
        if let Some(rate) = self.rate {
            let interval = self.connections() as f64 / rate;
            if Duration::try_from_secs_f64(interval).is_err() {
                return bad(format!("--rate {rate} is too low for {} connections", self.connections()));
            }
        }
        if self.rate.is_some() && self.think_ms > 0 {
            return bad("--think-ms applies to the closed loop only; drop it or --rate".into());
        }
        Ok(())
    }

    /// Connections over all clients.
    pub fn connections(&self) -> u64 {
        u64::from(self.clients) * u64::from(self.conns_per_client)
    }

    /// Seconds of load in all: warmup then measured.
    pub fn total_seconds(&self) -> u64 {
        self.warmup_s + self.duration_s
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Open loop: the time between one connection's scheduled operations.
    pub fn open_loop_interval(&self) -> Option<Duration> {
        let rate = self.rate?;
        Duration::try_from_secs_f64(self.connections() as f64 / rate).ok()
    }

    pub fn think(&self) -> Duration {
        Duration::from_millis(self.think_ms)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};

    fn config(flags: &[&str]) -> Result<RunConfig, HarnessError> {
        let mut argv = vec!["harness", "run"];
        argv.extend_from_slice(flags);
        let Command::Run(args) = Cli::try_parse_from(argv).expect("flags parse").command else {
            unreachable!("parsed a run")
        };
        RunConfig::new(&args.load, args.clients, args.slaves)
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = config(&["--seed", "7"]).expect("defaults are valid");
        assert_eq!((c.clients, c.slaves, c.conns_per_client), (10, 3, 10));
        assert_eq!((c.write_pct, c.keys, c.value_size), (30, 1000, 100));
        assert_eq!((c.warmup_s, c.duration_s, c.think_ms), (5, 30, 0));
        assert_eq!((c.zipf, c.rate, c.seed, c.replicas), (None, None, 7, 3));
    }

    #[test]
    fn nonsense_numbers_are_refused() {
        assert!(config(&["--zipf", "0"]).is_err());
        assert!(config(&["--zipf", "NaN"]).is_err());
        assert!(config(&["--rate=-5"]).is_err());
        assert!(config(&["--rate", "1e-300"]).is_err());
        assert!(config(&["--rate", "100", "--think-ms", "10"]).is_err());
        assert!(config(&["--value-size", "9999999999"]).is_err());
    }
}
