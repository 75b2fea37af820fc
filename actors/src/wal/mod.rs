//! The master's write-ahead log on disk: the data directory and its lock, the record framing,
//! snapshots and recovery. The actor that appends to the log is `master/wal_writer.rs`.
//! `docs/STORAGE.md` describes the files.

pub mod dir;
pub mod format;
pub mod recovery;
pub mod snapshot;

pub use dir::DataDir;
pub use recovery::{recover, Recovered};
pub use snapshot::Snapshot;
