//! The error enum of the actors crate, grouped by what the caller can do about it.

use std::time::Duration;

use net::{NetError, WireError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // Bad input: change the request.
    #[error("bad input: {0}")]
    BadInput(String),

    // Unavailable: nothing was sent, retrying later may succeed.
    #[error("no reachable master: {0}")]
    NoMaster(String),

    // The server's own answer (unavailable, outcome unknown, bad request, ...).
    #[error("{0}")]
    Server(WireError),

    // Outcome unknown: a write was sent and its answer never came.
    #[error("connection to {server} was lost after the write was sent; its outcome is unknown")]
    ConnectionLost { server: String },
    #[error("no answer within {0:?}; if this was a write, its outcome is unknown")]
    Timeout(Duration),

    // Transport and local failures.
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("the client was stopped")]
    Stopped,

    // Storage: the data directory.
    /// The cause is part of the message rather than a `source`, so a report that prints the
    /// chain (`{:#}`) does not print it twice.
    #[error("{context}: {cause}")]
    Io { context: String, cause: std::io::Error },
    /// Damage that recovery must not paper over. Nothing on disk was changed.
    #[error("{file}: corrupt at offset {offset}: {detail}")]
    Corrupt { file: String, offset: u64, detail: String },
    #[error("data directory {dir} is in use by another process")]
    Locked { dir: String },
}

impl Error {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { context: context.into(), cause: source }
    }
}

impl Error {
    /// True when a write that failed with this error may still take effect.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Error::Server(WireError::OutcomeUnknown { .. })
            | Error::ConnectionLost { .. }
            | Error::Timeout(_)
            | Error::Stopped => true,
            Error::Server(_)
            | Error::BadInput(_)
            | Error::NoMaster(_)
            | Error::Connect { .. }
            | Error::Net(_)
            | Error::Io { .. }
            | Error::Corrupt { .. }
            | Error::Locked { .. } => false,
        }
    }
}
