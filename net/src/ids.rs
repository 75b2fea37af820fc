//! Identifiers and counters. Each is a newtype so that a sequence number can never be passed
//! where an epoch is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::limits::MAX_NODE_ID_LEN;

/// A master term. Every takeover (and every restart of a master) starts a new, higher epoch;
/// slaves refuse requests that carry an older one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Epoch(pub u64);

/// A per-epoch write counter assigned by the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(pub u64);

/// The version of a write: ordered by epoch, then by sequence number. A replica keeps the
/// highest version it has seen for a key, so retries, reordering and repair are harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Version {
    pub epoch: Epoch,
    pub seq: Seq,
}

impl Version {
    pub const ZERO: Version = Version { epoch: Epoch(0), seq: Seq(0) };

    pub fn new(epoch: u64, seq: u64) -> Self {
        Version { epoch: Epoch(epoch), seq: Seq(seq) }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.epoch.0, self.seq.0)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Tags a request on one connection so its response can find it; chosen by the sender.
pub type RequestId = u64;

/// A position in the master's write-ahead log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Lsn(pub u64);

/// A random number a slave draws when its process starts. Slaves keep their data in memory,
/// so a slave that comes back with a new incarnation has forgotten everything it acknowledged
/// before; the master must not count it toward a quorum until it holds data again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Incarnation(pub u64);

/// The name of a node, chosen by the operator (`--id`). At most [`MAX_NODE_ID_LEN`] bytes of
/// printable ASCII.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub String);

impl NodeId {
    /// Checks a name that came from outside.
    pub fn parse(name: &str) -> Result<NodeId, String> {
        if name.is_empty() || name.len() > MAX_NODE_ID_LEN {
            return Err(format!("node id must be 1..={MAX_NODE_ID_LEN} bytes, got {}", name.len()));
        }
        if !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("node id {name:?} must be printable ASCII without spaces"));
        }
        Ok(NodeId(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_by_epoch_then_seq() {
        assert!(Version::new(1, 9) < Version::new(2, 0));
        assert!(Version::new(2, 1) < Version::new(2, 2));
        assert!(Version::ZERO < Version::new(0, 1));
    }

    #[test]
    fn node_ids_are_checked() {
        assert!(NodeId::parse("slave-1").is_ok());
        assert!(NodeId::parse("").is_err());
        assert!(NodeId::parse("has space").is_err());
        assert!(NodeId::parse(&"x".repeat(MAX_NODE_ID_LEN + 1)).is_err());
    }
}
