//! The harness's error enum, grouped by what the operator can do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    // Bad input: change the command line.
    #[error("invalid configuration: {0}")]
    Config(String),

    // The cluster: a node would not start, or the cluster never became ready.
    #[error("cannot start {name} from {}: {source}", bin.display())]
    Spawn { name: String, bin: PathBuf, source: std::io::Error },
    #[error("{name} failed to start: {reason} (its log: {})", log.display())]
    NodeStart { name: String, reason: String, log: PathBuf },
    #[error("{name} did not stop: {reason} (its log: {})", log.display())]
    NodeStop { name: String, reason: String, log: PathBuf },
    #[error("the cluster is not ready: {0}")]
    NotReady(String),
    #[error("the cluster does not answer: {0}")]
    Cluster(#[from] actors::Error),

    // Local files.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot write JSON to {}: {source}", path.display())]
    Json { path: PathBuf, source: serde_json::Error },
    /// The history the harness wrote cannot be read back (the message names file and line).
    #[error("cannot check the history: {0}")]
    Check(#[from] analysis::Error),

    /// Ctrl-C or SIGTERM before the cluster was ready.
    #[error("interrupted")]
    Interrupted,
}

impl HarnessError {
    /// Wraps an I/O error with the file it concerns.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> HarnessError {
        let path = path.into();
        move |source| HarnessError::Io { path, source }
    }

    /// Wraps a JSON error with the file it concerns.
    pub fn json(path: impl Into<PathBuf>) -> impl FnOnce(serde_json::Error) -> HarnessError {
        let path = path.into();
        move |source| HarnessError::Json { path, source }
    }
}
