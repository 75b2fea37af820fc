//! What a nemesis run reports: `summary.json` and the text printed at the end.
//!
//! ```text
//! { "config": {...}, "interrupted": false, "verdict": "pass" | "violation" | "undecided" | "interrupted",
//!   "elapsed_s": 60.2,
//!   "operations": {"invoked", "ok", "fail", "info", "unanswered", "get", "put", "del"},
//!   "errors": {"unavailable": n, "outcome_unknown": n, "timeout": n, "no_master": n, "other": n},
//!   "faults": {"kill-master": 3, ...},
//!   "fault_log": [{"id", "kind", "at_s", "healed_s", "detail", "overlaps": [ids]}, ...],
//!   "most_active": 3, "skipped": [{"id", "kind", "at_s", "reason"}, ...],
//!   "takeovers": 7, "epochs": [{"at_s", "node", "epoch"}, ...],
//!   "serving_again_s": 1.4, "final_values": {"key0": "v3-17-..." | null, ...},
//!   "checks": {"operations", "keys", "dropped", "linearizability", "lost_writes", "recovery"},
//!   "violations": ["(a) ...", ...] }
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::error::HarnessError;
use crate::nemesis::conduct::Skipped;
use crate::nemesis::config::NemesisConfig;
use crate::nemesis::fabric::NetMode;
use crate::nemesis::fault::FaultKind;
use crate::nemesis::inject::FaultRecord;
use crate::nemesis::monitor::EpochSeen;
use crate::nemesis::verdict::{Judgement, Linearizability, EXIT_PASS, EXIT_UNDECIDED};
use crate::signal::EXIT_INTERRUPTED;

/// Overlapping faults listed in the text; `summary.json` has them all.
const OVERLAPS_SHOWN: usize = 12;

/// Operations in the history, by how they ended and by function.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OpCounts {
    pub invoked: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// Invoked and never answered (dropped at the end): outcome unknown, like `info`.
    pub unanswered: u64,
    pub get: u64,
    pub put: u64,
    pub del: u64,
}

impl OpCounts {
    /// Counts the lines of the history in `path`.
    pub fn of_history(path: &Path) -> Result<OpCounts, HarnessError> {
        let text = std::fs::read_to_string(path).map_err(HarnessError::io(path))?;
        let mut counts = OpCounts::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let event: serde_json::Value = serde_json::from_str(line).map_err(HarnessError::json(path))?;
            match event["type"].as_str() {
                Some("invoke") => counts.invoked += 1,
                Some("ok") => counts.ok += 1,
                Some("fail") => counts.fail += 1,
                Some("info") => counts.info += 1,
                Some(_) | None => {}
            }
            if event["type"] == "invoke" {
                match event["f"].as_str() {
                    Some("get") => counts.get += 1,
                    Some("put") => counts.put += 1,
                    Some("del") => counts.del += 1,
                    Some(_) | None => {}
                }
            }
        }
        counts.unanswered = counts.invoked.saturating_sub(counts.ok + counts.fail + counts.info);
        Ok(counts)
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct NemesisSummary {
    pub config: NemesisConfig,
    pub interrupted: bool,
    pub verdict: &'static str,
    /// Seconds of workload with faults.
    pub elapsed_s: f64,
    pub operations: OpCounts,
    /// The workload's failed requests by kind: unavailable, outcome_unknown, timeout,
    /// no_master, other.
    pub errors: BTreeMap<&'static str, u64>,
    pub faults: BTreeMap<&'static str, u64>,
    pub fault_log: Vec<FaultRecord>,
    /// The most faults active at once (1 without `--compose`, 0 without faults).
    pub most_active: usize,
    /// Faults of a `--compose` plan that did not start: they aimed at a process another
    /// active fault held.
    pub skipped: Vec<Skipped>,
    pub takeovers: usize,
    pub epochs: Vec<EpochSeen>,
    /// Seconds from healing until the cluster reported every slave and a standby.
    pub serving_again_s: Option<f64>,
    pub final_values: BTreeMap<String, Option<String>>,
    /// `None` when the run was interrupted before the checks.
    pub checks: Option<Judgement>,
    pub violations: Vec<String>,
}

impl NemesisSummary {
    /// Faults injected, by kind (every enabled kind listed, with 0 if it never came).
    pub fn count_faults(config: &NemesisConfig, log: &[FaultRecord]) -> BTreeMap<&'static str, u64> {
        let mut counts: BTreeMap<&'static str, u64> = config.faults.iter().map(|k| (k.name(), 0)).collect();
        for record in log {
            *counts.entry(record.kind.name()).or_default() += 1;
        }
        counts
    }

    /// The verdict's name and the exit code it gives.
    pub fn verdict_of(interrupted: bool, checks: Option<&Judgement>) -> (&'static str, i32) {
        match checks.filter(|_| !interrupted) {
            None => ("interrupted", EXIT_INTERRUPTED),
            Some(judgement) => match judgement.exit_code() {
                EXIT_PASS => ("pass", EXIT_PASS),
                EXIT_UNDECIDED => ("undecided", EXIT_UNDECIDED),
                code => ("violation", code),
            },
        }
    }

    /// Writes `summary.json` into `out`.
    pub fn write(&self, out: &Path) -> Result<(), HarnessError> {
        let path = out.join("summary.json");
        let text = serde_json::to_string_pretty(self).map_err(HarnessError::json(&path))?;
        std::fs::write(&path, text + "\n").map_err(HarnessError::io(&path))
    }

    /// Which faults overlapped, and what was skipped.
    fn write_overlaps(&self, s: &mut String) {
        let overlapping: Vec<&FaultRecord> = self.fault_log.iter().filter(|r| !r.overlaps.is_empty()).collect();
        let _ = writeln!(
            s,
            "overlapping faults: {} of {}, at most {} active at once; {} skipped",
            overlapping.len(),
            self.fault_log.len(),
            self.most_active,
            self.skipped.len()
        );
        let name = |id: usize| {
            let kind = self.fault_log.iter().find(|r| r.id == id).map_or("?", |r| r.kind.name());
            format!("#{id} {kind}")
        };
        for record in overlapping.iter().take(OVERLAPS_SHOWN) {
            let others: Vec<String> = record.overlaps.iter().map(|&id| name(id)).collect();
            let _ = writeln!(s, "  {} with {}", name(record.id), others.join(", "));
        }
        if overlapping.len() > OVERLAPS_SHOWN {
            let _ = writeln!(s, "  ... (every overlap is in summary.json's fault_log)");
        }
    }

    /// The text printed at the end of a run.
    pub fn text(&self) -> String {
        let c = &self.config;
        let o = &self.operations;
        let mut s = String::new();
        let kinds: Vec<&str> = c.faults.iter().map(|k: &FaultKind| k.name()).collect();
        let mode = match (c.compose, c.net) {
            (false, NetMode::Proxies) => String::new(),
            (true, NetMode::Proxies) => format!(", composed (at most {} at once)", c.max_active),
            (false, NetMode::Namespaces) => ", network namespaces".to_string(),
            (true, NetMode::Namespaces) => {
                format!(", composed (at most {} at once), network namespaces", c.max_active)
            }
        };
        let _ = writeln!(
            s,
            "nemesis: {:.1} s of faults ({}), seed {}, {} slaves, R={}, {} keys, {} clients{mode}",
            self.elapsed_s,
            kinds.join(","),
            c.seed,
            c.slaves,
            c.replicas,
            c.keys,
            c.clients
        );
        let _ = writeln!(
            s,
            "operations: {} (get {}, put {}, del {}); ok {}, fail {}, info {}, unanswered {}",
            o.invoked, o.get, o.put, o.del, o.ok, o.fail, o.info, o.unanswered
        );
        let errors: Vec<String> =
            self.errors.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
        if !errors.is_empty() {
            let _ = writeln!(s, "errors: {}", errors.join(", "));
        }
        let total: u64 = self.faults.values().sum();
        let by_kind: Vec<String> = self.faults.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(s, "faults injected: {total} ({})", by_kind.join(", "));
        if c.compose {
            self.write_overlaps(&mut s);
        }
        let epochs = match (self.epochs.first(), self.epochs.last()) {
            (Some(first), Some(last)) => format!(" (epoch {} -> {})", first.epoch, last.epoch),
            _ => String::new(),
        };
        let _ = writeln!(s, "takeovers observed: {}{epochs}", self.takeovers);
        match self.serving_again_s {
            Some(t) => {
                let _ = writeln!(s, "serving again {t:.1} s after healing; {} keys read", self.final_values.len());
            }
            None if self.interrupted => {}
            None => {
                let _ = writeln!(s, "NOT serving again after healing");
            }
        }
        if let Some(checks) = &self.checks {
            let lin = match &checks.linearizability {
                Linearizability::Linearizable => "yes".to_string(),
                Linearizability::NotLinearizable(_) => "NO".to_string(),
                Linearizability::Undecided(why) => format!("undecided: {why}"),
            };
            let _ =
                writeln!(s, "linearizable: {lin} ({} operations on {} keys checked)", checks.operations, checks.keys);
            let _ = writeln!(s, "lost writes: {}", checks.lost_writes.len());
            if self.config.preload > 0 {
                let sampled = crate::nemesis::preload::sample(self.config.keys, self.config.preload).len();
                let _ = writeln!(
                    s,
                    "preloaded {} keys before the faults; {sampled} of them read back after healing (lost ones count above)",
                    self.config.preload
                );
            }
            if let Linearizability::NotLinearizable(why) = &checks.linearizability {
                let _ = write!(s, "{why}");
            }
        }
        let _ = writeln!(s, "violations: {}", self.violations.len());
        for violation in &self.violations {
            let _ = writeln!(s, "  {violation}");
        }
        let _ = writeln!(s, "verdict: {}", self.verdict.to_uppercase());
        s
    }
}
