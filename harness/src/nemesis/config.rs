//! The checked configuration of one nemesis run; also the `config` object of its
//! `summary.json`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::args::NemesisArgs;
use crate::error::HarnessError;
use crate::nemesis::fabric::NetMode;
use crate::nemesis::fault::FaultKind;
use crate::nemesis::topology::Wiring;
use crate::run::{default_out, nodes_bin};

/// Bytes per written value: enough for the unique `v<client>-<counter>-` prefix.
pub const VALUE_SIZE: usize = 16;

#[derive(Debug, Clone, Serialize)]
pub struct NemesisConfig {
    pub duration_s: u64,
    /// Enabled fault kinds, sorted, without duplicates.
    pub faults: Vec<FaultKind>,
    pub seed: u64,
    pub slaves: u32,
    pub replicas: u32,
    pub keys: u64,
    /// Keys loaded before the faults (see `--preload`).
    pub preload: u64,
    pub clients: u32,
    pub write_pct: u32,
    pub del_pct: u32,
    pub think_ms: u64,
    pub request_timeout_ms: u64,
    pub settle_timeout_s: u64,
    /// Every process ran with a cluster key, a client password and TLS.
    pub secure: bool,
    /// Faults overlapped (`--compose`), at most `max_active` at once.
    pub compose: bool,
    pub max_active: usize,
    /// How the processes were wired and cut.
    pub net: NetMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netem: Option<String>,
    #[serde(skip)]
    pub max_states: usize,
    #[serde(skip)]
    pub nodes_bin: PathBuf,
    #[serde(skip)]
    pub out: PathBuf,
}

impl NemesisConfig {
    pub fn new(args: &NemesisArgs) -> Result<NemesisConfig, HarnessError> {
        let mut faults = args.faults.clone();
        faults.sort();
        faults.dedup();
        if args.replicas > args.slaves {
            return Err(HarnessError::Config(format!(
                "--replicas {} needs at least as many slaves (--slaves {})",
                args.replicas, args.slaves
            )));
        }
        if args.netem.is_some() && args.net != NetMode::Namespaces {
            return Err(HarnessError::Config("--netem needs --net namespaces".into()));
        }
        if args.secure && args.net == NetMode::Namespaces {
            return Err(HarnessError::Config(
                "--secure with --net namespaces is not supported: the certificates name loopback addresses".into(),
            ));
        }
        Ok(NemesisConfig {
            duration_s: args.duration,
            faults,
            seed: args.seed.unwrap_or_else(|| u64::from(rand::random::<u32>())),
            slaves: args.slaves,
            replicas: args.replicas,
            keys: args.keys,
            preload: args.preload,
            clients: args.clients,
            write_pct: args.write_pct,
            del_pct: args.del_pct,
            think_ms: args.think_ms,
            request_timeout_ms: args.request_timeout_ms,
            settle_timeout_s: args.settle_timeout,
            secure: args.secure,
            compose: args.compose,
            max_active: args.max_active as usize,
            net: args.net,
            netem: args.netem.clone(),
            max_states: args.max_states,
            nodes_bin: nodes_bin(args.nodes_bin.as_deref())?,
            out: args.out.clone().unwrap_or_else(|| default_out("nemesis")),
        })
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration_s)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn settle_timeout(&self) -> Duration {
        Duration::from_secs(self.settle_timeout_s)
    }

    pub fn wiring(&self) -> Wiring {
        Wiring { net: self.net, netem: self.netem.clone() }
    }

    pub fn think(&self) -> Duration {
        Duration::from_millis(self.think_ms)
    }
}
