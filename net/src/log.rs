//! Write-ahead log records. The master appends them to its log file, and (with the standby)
//! ships them over the network, so they are defined here with the other wire types.
//! `docs/STORAGE.md` describes how they are framed on disk.

use serde::{Deserialize, Serialize};

use crate::ids::{Epoch, Incarnation, Lsn, NodeId, Version};
use crate::payload::{Key, Value};

/// One log record. Every record has the next log sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LogRecord {
    /// `key` was written at `version`; `value: None` is a delete (tombstone). `stamp` is the
    /// record's place in the order the master wrote to slaves: a record of a version copied
    /// from the slaves (found newer than the log) has a stamp of its own, above every stamp
    /// before it; `None` is the version itself, a write the master minted.
    Write {
        lsn: Lsn,
        version: Version,
        key: Key,
        value: Option<Value>,
        #[serde(default)]
        stamp: Option<Version>,
    },
    /// From here on `master` serves in `epoch`, which enough slaves promised it. Written, and
    /// made durable, before the first write of the epoch. `master` is `None` in logs written
    /// before epochs were granted.
    Epoch {
        lsn: Lsn,
        epoch: Epoch,
        #[serde(default)]
        master: Option<NodeId>,
    },
    /// The cluster's slave membership changed: `node` joined (`active: false`, not yet used),
    /// became usable by replica sets (`active: true`), or came back in a new `incarnation`
    /// (its memory was lost; from this record on, what it holds covers what it acknowledged).
    Member { lsn: Lsn, node: NodeId, incarnation: Incarnation, active: bool },
}

impl LogRecord {
    /// A write record's stamp (see [`LogRecord::Write`]).
    pub fn stamp(&self) -> Option<Version> {
        match self {
            LogRecord::Write { version, stamp, .. } => Some(stamp.unwrap_or(*version)),
            LogRecord::Epoch { .. } | LogRecord::Member { .. } => None,
        }
    }

    pub fn lsn(&self) -> Lsn {
        match self {
            LogRecord::Write { lsn, .. } | LogRecord::Epoch { lsn, .. } | LogRecord::Member { lsn, .. } => *lsn,
        }
    }
}

/// One slave of the recorded membership, as a snapshot carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub node: NodeId,
    /// The incarnation whose memory, together with the log up to the record that named it,
    /// holds everything the slave acknowledged.
    pub incarnation: Incarnation,
    /// Replica sets may use it.
    pub active: bool,
}
