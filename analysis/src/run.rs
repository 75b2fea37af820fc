//! A run directory, a sweep directory, and telling them apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{read_file, Error, Result};
use crate::metrics_csv::{self, MetricsRow};
use crate::summary::RunSummary;

/// File names inside a run directory.
pub const SUMMARY_FILE: &str = "summary.json";
pub const METRICS_FILE: &str = "metrics.csv";
/// File name that marks a sweep directory.
pub const INDEX_FILE: &str = "index.json";

/// One harness run: its summary and its measured seconds.
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: PathBuf,
    pub summary: RunSummary,
    pub rows: Vec<MetricsRow>,
}

impl Run {
    /// Reads `dir/summary.json` and `dir/metrics.csv`.
    pub fn load(dir: &Path) -> Result<Run> {
        let summary = RunSummary::load(&dir.join(SUMMARY_FILE))?;
        let rows = metrics_csv::load(&dir.join(METRICS_FILE))?;
        Ok(Run { dir: dir.to_path_buf(), summary, rows })
    }
}

/// A grid cell of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cell {
    pub slaves: u64,
    pub clients: u64,
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "slaves={} clients={}", self.slaves, self.clients)
    }
}

/// One entry of `index.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct IndexEntry {
    /// The run's directory, relative to the sweep directory.
    pub dir: String,
    pub slaves: u64,
    pub clients: u64,
    pub repeat: u64,
}

#[derive(Debug, Deserialize)]
struct Index {
    runs: Vec<IndexEntry>,
}

/// A sweep: every run of the grid, with its cell.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub dir: PathBuf,
    pub runs: Vec<(IndexEntry, Run)>,
}

impl Sweep {
    /// Reads `dir/index.json` and every run it lists.
    pub fn load(dir: &Path) -> Result<Sweep> {
        let path = dir.join(INDEX_FILE);
        let index: Index = serde_json::from_str(&read_file(&path)?).map_err(|e| Error::json(&path, &e))?;
        if index.runs.is_empty() {
            return Err(Error::in_file(&path, "lists no runs (an empty sweep)"));
        }
        let runs = index
            .runs
            .into_iter()
            .map(|entry| {
                let run = Run::load(&dir.join(&entry.dir))?;
                Ok((entry, run))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Sweep { dir: dir.to_path_buf(), runs })
    }

    /// The runs of each cell (its repetitions), in cell order.
    pub fn cells(&self) -> BTreeMap<Cell, Vec<&Run>> {
        let mut cells: BTreeMap<Cell, Vec<&Run>> = BTreeMap::new();
        for (entry, run) in &self.runs {
            let cell = Cell { slaves: entry.slaves, clients: entry.clients };
            cells.entry(cell).or_default().push(run);
        }
        cells
    }

    /// Every slave count of the grid, ascending.
    pub fn slave_counts(&self) -> BTreeSet<u64> {
        self.runs.iter().map(|(e, _)| e.slaves).collect()
    }

    /// Every client count of the grid, ascending.
    pub fn client_counts(&self) -> BTreeSet<u64> {
        self.runs.iter().map(|(e, _)| e.clients).collect()
    }
}

/// What a directory given on the command line holds.
#[derive(Debug, Clone)]
pub enum Dataset {
    Run(Box<Run>),
    Sweep(Sweep),
}

impl Dataset {
    /// A directory with `index.json` is a sweep; anything else must be a run.
    pub fn load(dir: &Path) -> Result<Dataset> {
        if !dir.is_dir() {
            return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory")));
        }
        if dir.join(INDEX_FILE).exists() {
            Sweep::load(dir).map(Dataset::Sweep)
        } else {
            Run::load(dir).map(|run| Dataset::Run(Box::new(run)))
        }
    }
}
