//! `analysis report DIR`: `report.md` and its plots, written into DIR.

mod run_report;
mod sweep_report;
mod table;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::run::Dataset;

/// Name of the markdown file a report writes.
pub const REPORT_FILE: &str = "report.md";

/// What a report wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub report: PathBuf,
    /// Every plot file, PNG and SVG.
    pub plots: Vec<PathBuf>,
}

/// Reads DIR (a run or a sweep) and writes its report and plots into it.
pub fn write_report(dir: &Path) -> Result<Written> {
    let (markdown, plots) = match Dataset::load(dir)? {
        Dataset::Run(run) => run_report::write(&run, dir)?,
        Dataset::Sweep(sweep) => sweep_report::write(&sweep, dir)?,
    };
    let report = dir.join(REPORT_FILE);
    std::fs::write(&report, markdown).map_err(|e| Error::io(&report, e))?;
    Ok(Written { report, plots })
}
