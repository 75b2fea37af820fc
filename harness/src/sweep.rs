//! `harness sweep`: every (slaves, clients) pair of the grid, `--repeat` times, each on a fresh
//! cluster in its own folder `s<slaves>-c<clients>-r<repeat>`, and `index.json` listing the
//! completed runs:
//!
//! ```text
//! {"runs": [{"dir": "s3-c10-r1", "slaves": 3, "clients": 10, "repeat": 1}, ...]}
//! ```
//!
//! Repetitions are the outer loop, so slow drift of the machine spreads over all cells
//! instead of biasing one. Run `n` (from 0) is seeded with `seed + n`. With `--history
//! FILE`, each run records into `FILE`'s name inside its own folder. The index is rewritten
//! after every run, so an interrupted sweep still lists what it completed.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::args::SweepArgs;
use crate::cluster::Target;
use crate::config::RunConfig;
use crate::error::HarnessError;
use crate::report;
use crate::run::{self, RunPlan};
use crate::signal;

#[derive(Debug, Default, Serialize)]
pub struct Index {
    pub runs: Vec<IndexEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexEntry {
    pub dir: String,
    pub slaves: u32,
    pub clients: u32,
    pub repeat: u32,
}

/// How a sweep ended.
pub struct SweepOutcome {
    pub out: PathBuf,
    pub completed: usize,
    pub interrupted: bool,
}

/// The cells in the order they run: (repeat, slaves, clients).
pub fn cells(args: &SweepArgs) -> Vec<IndexEntry> {
    let mut cells = Vec::new();
    for repeat in 1..=args.repeat {
        for &slaves in &args.slaves {
            for &clients in &args.clients {
                cells.push(IndexEntry { dir: format!("s{slaves}-c{clients}-r{repeat}"), slaves, clients, repeat });
            }
        }
    }
    cells
}

/// Runs the grid, printing one summary line per run.
pub fn execute(args: &SweepArgs) -> Result<SweepOutcome, HarnessError> {
    let out = args.out.clone().unwrap_or_else(|| run::default_out("sweep"));
    std::fs::create_dir_all(&out).map_err(HarnessError::io(&out))?;
    let nodes_bin = run::nodes_bin(args.load.nodes_bin.as_deref())?;
    let base_seed = args.load.seed.unwrap_or_else(|| u64::from(rand::random::<u32>()));
    let cells = cells(args);
    let mut index = Index::default();
    for (n, cell) in cells.iter().enumerate() {
        if signal::signalled() {
            return Ok(outcome(out, &index, true));
        }
        let dir = out.join(&cell.dir);
        let mut load = args.load.clone();
        load.seed = Some(base_seed.wrapping_add(n as u64));
        load.history = args.load.history.as_ref().and_then(|h| h.file_name()).map(|name| dir.join(name));
        let plan = RunPlan {
            config: RunConfig::new(&load, cell.clients, cell.slaves)?,
            target: Target::Launch {
                nodes_bin: nodes_bin.clone(),
                slaves: cell.slaves,
                replicas: load.replicas,
                secure: load.secure,
            },
            out: dir,
            label: format!("[{}/{}] {}", n + 1, cells.len(), cell.dir),
        };
        let summary = match run::execute(plan) {
            Err(HarnessError::Interrupted) => return Ok(outcome(out, &index, true)),
            other => other?,
        };
        println!("{}: {}", cell.dir, report::one_line(&summary));
        if summary.interrupted {
            return Ok(outcome(out, &index, true));
        }
        index.runs.push(cell.clone());
        write_index(&out, &index)?;
    }
    Ok(outcome(out, &index, false))
}

fn outcome(out: PathBuf, index: &Index, interrupted: bool) -> SweepOutcome {
    SweepOutcome { out, completed: index.runs.len(), interrupted }
}

fn write_index(out: &Path, index: &Index) -> Result<(), HarnessError> {
    let path = out.join("index.json");
    let text = serde_json::to_string_pretty(index).map_err(HarnessError::json(&path))?;
    std::fs::write(&path, text + "\n").map_err(HarnessError::io(&path))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};

    #[test]
    fn the_grid_has_every_cell_with_repeats_outermost() {
        let cli = Cli::parse_from(["harness", "sweep", "--slaves", "1,3", "--clients", "5,10", "--repeat", "2"]);
        let Command::Sweep(args) = cli.command else { unreachable!("parsed a sweep") };
        let dirs: Vec<String> = cells(&args).into_iter().map(|c| c.dir).collect();
        assert_eq!(
            dirs,
            ["s1-c5-r1", "s1-c10-r1", "s3-c5-r1", "s3-c10-r1", "s1-c5-r2", "s1-c10-r2", "s3-c5-r2", "s3-c10-r2"]
        );
    }

    #[test]
    fn sweep_defaults_are_the_documented_grid() {
        let Command::Sweep(args) = Cli::parse_from(["harness", "sweep"]).command else {
            unreachable!("parsed a sweep")
        };
        assert_eq!(args.slaves, [1, 3, 5, 7]);
        assert_eq!(args.clients, [1, 5, 10, 20, 50]);
        assert_eq!(cells(&args).len(), 60);
    }
}
