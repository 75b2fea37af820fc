//! The crate's one error type. Every variant is something the caller can only fix by changing
//! its input or its environment; the binary maps them all to exit code 2.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while reading the harness's files or writing a report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file exists but its content is not what the contract says. `line` is 1-based.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    BadInput { path: PathBuf, line: Option<usize>, message: String },
    /// A file could not be read or written. The cause is in the message rather than a
    /// `source`, so a report that prints the chain (`{:#}`) does not say it twice.
    #[error("{}: {cause}", path.display())]
    Io { path: PathBuf, cause: std::io::Error },
    /// Two data sets cannot be put side by side (a run against a sweep, no common cell).
    #[error("cannot compare: {0}")]
    Incomparable(String),
    /// plotters failed to draw or encode a chart.
    #[error("plot {}: {message}", path.display())]
    Plot { path: PathBuf, message: String },
}

impl Error {
    /// Bad content at a known line of `path`.
    pub fn at_line(path: &Path, line: usize, message: impl Into<String>) -> Self {
        Error::BadInput { path: path.to_path_buf(), line: Some(line), message: message.into() }
    }

    /// Bad content in `path` that no single line is to blame for.
    pub fn in_file(path: &Path, message: impl Into<String>) -> Self {
        Error::BadInput { path: path.to_path_buf(), line: None, message: message.into() }
    }

    /// An I/O failure on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io { path: path.to_path_buf(), cause: source }
    }

    /// A serde_json failure in `path`, keeping the line serde_json reports.
    pub fn json(path: &Path, err: &serde_json::Error) -> Self {
        Error::json_at(path, 0, err)
    }

    /// A serde_json failure on a document that starts at line `first_line + 1` of `path`
    /// (0 for a whole file, the line's index for JSON lines).
    pub fn json_at(path: &Path, first_line: usize, err: &serde_json::Error) -> Self {
        let text = err.to_string();
        let suffix = format!(" at line {} column {}", err.line(), err.column());
        let message = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
        match err.classify() {
            serde_json::error::Category::Io => Error::in_file(path, message),
            serde_json::error::Category::Syntax
            | serde_json::error::Category::Data
            | serde_json::error::Category::Eof => Error::at_line(path, first_line + err.line().max(1), message),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}
