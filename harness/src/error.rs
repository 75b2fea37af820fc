//! The harness's error enum, grouped by what the operator can do about it. Each message
//! carries its cause; none is also exposed as a `source`, so a report that prints the chain
//! (`{:#}`) says everything once.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    // Bad input: change the command line.
    #[error("invalid configuration: {0}")]
    Config(String),

    // The cluster: a node would not start, or the cluster never became ready.
    #[error("cannot start {name} from {}: {cause}", bin.display())]
    Spawn { name: String, bin: PathBuf, cause: std::io::Error },
    #[error("{name} failed to start: {reason} (its log: {})", log.display())]
    NodeStart { name: String, reason: String, log: PathBuf },
    #[error("{name} did not stop: {reason} (its log: {})", log.display())]
    NodeStop { name: String, reason: String, log: PathBuf },
    #[error("the cluster is not ready: {0}")]
    NotReady(String),
    #[error("the cluster does not answer: {0}")]
    Cluster(actors::Error),
    /// A key of `harness load` could not be written, even after retries.
    #[error("the load is incomplete: {0}")]
    Load(String),

    // Local files.
    #[error("{}: {cause}", path.display())]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("cannot write JSON to {}: {cause}", path.display())]
    Json { path: PathBuf, cause: serde_json::Error },
    /// The history the harness wrote cannot be read back (the message names file and line).
    #[error("cannot check the history: {0}")]
    Check(analysis::Error),

    // The nemesis's network namespaces (`--net namespaces`): making them, or a rule.
    #[error("network namespaces: {0}")]
    Network(String),

    /// Ctrl-C or SIGTERM before the cluster was ready.
    #[error("interrupted")]
    Interrupted,
}

impl From<actors::Error> for HarnessError {
    fn from(err: actors::Error) -> Self {
        HarnessError::Cluster(err)
    }
}

impl From<analysis::Error> for HarnessError {
    fn from(err: analysis::Error) -> Self {
        HarnessError::Check(err)
    }
}

impl HarnessError {
    /// Wraps an I/O error with the file it concerns.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> HarnessError {
        let path = path.into();
        move |cause| HarnessError::Io { path, cause }
    }

    /// Wraps a JSON error with the file it concerns.
    pub fn json(path: impl Into<PathBuf>) -> impl FnOnce(serde_json::Error) -> HarnessError {
        let path = path.into();
        move |cause| HarnessError::Json { path, cause }
    }
}
