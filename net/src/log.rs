//! Write-ahead log records. The master appends them to its log file, and (with the standby)
//! ships them over the network, so they are defined here with the other wire types.
//! `docs/STORAGE.md` describes how they are framed on disk.

use serde::{Deserialize, Serialize};

use crate::ids::{Epoch, Lsn, Version};
use crate::payload::{Key, Value};

/// One log record. Every record has the next log sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LogRecord {
    /// `key` was written at `version`; `value: None` is a delete (tombstone).
    Write { lsn: Lsn, version: Version, key: Key, value: Option<Value> },
    /// From here on the master serves in `epoch`. Written, and made durable, before the first
    /// write of the epoch.
    Epoch { lsn: Lsn, epoch: Epoch },
}

impl LogRecord {
    pub fn lsn(&self) -> Lsn {
        match self {
            LogRecord::Write { lsn, .. } | LogRecord::Epoch { lsn, .. } => *lsn,
        }
    }
}
