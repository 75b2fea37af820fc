//! The frames. A connecting peer sends [`ToServer`] frames and receives [`FromServer`]
//! frames; the master and the backup are servers, clients and slaves connect to them.
//!
//! ```text
//! client/slave                      master
//!   Hello { protocol, role }  ───▶
//!                             ◀───  Welcome { node, role, epoch }   (or Error, then close)
//! cluster members, when the cluster has a key (see `Hello::nonce`):
//!   Hello { .., nonce }       ───▶
//!                             ◀───  Challenge { nonce, proof }
//!   Proof { proof }           ───▶
//!                             ◀───  Welcome { .. }                  (or Error, then close)
//! client:
//!   Request { id, op }        ───▶
//!                             ◀───  Response { id, result }         (any order)
//! slave:
//!                             ◀───  SlaveRequest { id, epoch, op }
//!   SlaveResponse { id, .. }  ───▶
//! ```

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::WireError;
use crate::ids::{Epoch, Incarnation, Lsn, NodeId, RequestId, Version};
use crate::log::{LogRecord, MemberRecord};
use crate::payload::{Key, Value};

/// The protocol version this build speaks. A peer with another version is refused in the
/// handshake with an error naming both.
pub const PROTOCOL_VERSION: u32 = 1;

/// The first frame on every connection, sent by the side that connected. Its `Debug` leaves
/// the password out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Must equal [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// Who is connecting, and what the server needs to know about it.
    pub role: PeerRole,
    /// A cluster member (slave, backup, peer) of a cluster with a key: a fresh random
    /// [`NONCE_LEN`]-byte nonce. The server answers with a [`FromServer::Challenge`] proving
    /// it holds the key for this nonce, and the member proves it in turn with a
    /// [`ToServer::Proof`] over the server's nonce, so the key never crosses the wire and an
    /// old handshake replayed is refused.
    #[serde(default)]
    pub nonce: Option<Bytes>,
    /// A client of a server that requires a password (`--client-password-file`).
    #[serde(default)]
    pub password: Option<String>,
}

impl std::fmt::Debug for Hello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hello")
            .field("protocol", &self.protocol)
            .field("role", &self.role)
            .field("nonce", &self.nonce)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Hello {
    /// A `Hello` of this protocol version, with no proof of membership and no password.
    pub fn new(role: PeerRole) -> Self {
        Hello { protocol: PROTOCOL_VERSION, role, nonce: None, password: None }
    }
}

/// The length of the nonces in the membership challenge-response.
pub const NONCE_LEN: usize = 32;

/// The role a connecting peer claims in its [`Hello`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PeerRole {
    /// A client: sends `Request`s, receives `Response`s.
    Client,
    /// A storage node offering itself to the master.
    Slave {
        /// The operator's name for the slave (`--id`); unique in a cluster.
        id: NodeId,
        /// The highest epoch the slave has accepted; a master with a lower one is deposed.
        epoch: Epoch,
        /// Drawn at process start: a new value means the slave's memory is empty.
        incarnation: Incarnation,
        /// The highest version the slave holds for any key.
        max_version: Version,
        /// How many keys (tombstones included) the slave holds.
        keys: u64,
    },
    /// A master-capable node asking what this one is (at start, and a master checking that
    /// its peer has not taken over). The server answers with a `Welcome` and closes.
    Peer { id: NodeId, epoch: Epoch, last_lsn: Lsn },
    /// A standby master following the log.
    Backup {
        id: NodeId,
        /// The highest epoch the backup has recorded.
        epoch: Epoch,
        /// The first log position the backup does not yet hold.
        next_lsn: Lsn,
    },
}

/// The server's answer to a [`Hello`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol: u32,
    /// The server's own name.
    pub node: NodeId,
    pub role: ServerRole,
    /// The server's current epoch.
    pub epoch: Epoch,
    /// The last LSN in the server's log.
    pub last_lsn: Lsn,
    /// Where the server speaks the Redis protocol, if it does (so a standby can point Redis
    /// clients at its master).
    #[serde(default)]
    pub redis: Option<String>,
}

/// What a master-capable node is doing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerRole {
    /// Serving: its epoch was granted by enough slaves' promises and it has read what it needed.
    Master,
    /// Following a master's log (or looking for one).
    Standby,
    /// Trying to become master in the epoch its `Welcome` names: asking slaves for promises,
    /// or reading them. Slaves should connect and answer; clients' commands wait.
    Candidate,
}

/// Frames sent to a server (master or backup).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToServer {
    /// The handshake; only valid as the first frame.
    Hello(Hello),
    /// A client request. `id` is chosen by the client and echoed in the response.
    Request { id: RequestId, op: ClientOp },
    /// A slave's answer to a [`FromServer::SlaveRequest`] with the same `id`.
    SlaveResponse { id: RequestId, result: Result<SlaveReply, WireError> },
    /// A connection-level error (a slave refusing a malformed frame from its master); the
    /// sender closes the connection after it.
    Error(WireError),
    /// From a standby: it holds every record up to `lsn` durably.
    StandbyAck { lsn: Lsn },
    /// From a standby: a heartbeat; the master answers with [`Ship::Pong`].
    StandbyPing,
    /// A member's answer to a [`FromServer::Challenge`]: HMAC-SHA256 under the cluster key
    /// over both nonces and the `Hello`'s role.
    Proof { proof: Bytes },
}

/// Frames sent by a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromServer {
    /// The answer to a good [`Hello`].
    Welcome(Welcome),
    /// The answer to a member's `Hello` carrying a nonce: the server's own fresh nonce, and
    /// its proof that it holds the cluster key (HMAC-SHA256 over both nonces and the role,
    /// under another label than the member's proof).
    Challenge { nonce: Bytes, proof: Bytes },
    /// The answer to a client `Request` with the same `id`.
    Response { id: RequestId, result: Result<ClientReply, WireError> },
    /// A request to a slave, carrying the sender's epoch for fencing.
    SlaveRequest { id: RequestId, epoch: Epoch, op: SlaveOp },
    /// A connection-level error; the server closes the connection after sending it.
    Error(WireError),
    /// Log shipping, from the master to its standby.
    Ship(Ship),
}

/// What a master sends its standby.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Ship {
    /// Records durable on the master, consecutive, following what the standby holds.
    Records {
        records: Vec<LogRecord>,
    },
    /// The standby's log cannot be resumed: a full copy of the state at `lsn` follows as
    /// `SnapshotChunk`s and a `SnapshotEnd`; records after `lsn` come next.
    SnapshotBegin {
        lsn: Lsn,
        epoch: Epoch,
        /// The node that was granted `epoch`.
        #[serde(default)]
        master: Option<NodeId>,
        /// The cluster's recorded slave membership at `lsn`.
        #[serde(default)]
        members: Vec<MemberRecord>,
        /// The last stamp the master had issued when it copied its state: the standby's log
        /// then covers every write a slave received with a stamp up to it.
        #[serde(default)]
        stamp: crate::ids::Version,
    },
    SnapshotChunk {
        entries: Vec<(Key, Entry)>,
    },
    SnapshotEnd,
    /// Answer to a `StandbyPing`: the master's last durable LSN and its live slaves.
    Pong {
        durable: Lsn,
        slaves: Vec<NodeId>,
    },
}

/// What a client can ask of the master.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClientOp {
    Get {
        key: Key,
    },
    Put {
        key: Key,
        value: Value,
    },
    Del {
        key: Key,
    },
    /// The master's view of the cluster.
    Status,
    /// Liveness: answered at once by the connection, without touching any data. A client
    /// with requests in flight sends it when the server has been silent for a while.
    Ping,
}

/// A successful answer to a [`ClientOp`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClientReply {
    /// For `Get`: the value, or `None` for a key that is missing or deleted, and the version
    /// that was read (`None` when no replica ever held the key).
    Value { value: Option<Value>, version: Option<Version> },
    /// For `Put` and `Del`: the write is durable on a majority of the key's replicas.
    /// `existed`: the key held a value just before this write, in the order the master
    /// gave the key's writes (what Redis's `DEL` counts).
    Written { version: Version, existed: bool },
    /// For `Status`.
    Status(StatusReport),
    /// For `Ping`.
    Pong,
}

/// A versioned value as a replica holds it. `value: None` is a tombstone: the key was
/// deleted at `version`, which keeps older writes from coming back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub version: Version,
    pub value: Option<Value>,
}

/// What a master can ask of a slave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SlaveOp {
    /// The slave's entry for `key`, if any.
    Read { key: Key },
    /// Store `value` (a tombstone when `None`) at `version`, unless the slave already holds
    /// the key at this version or a newer one. `stamp` places the write in the master's log
    /// order (`None`: the version itself, a write the master minted): the slave keeps the
    /// highest stamp each key was written with, also when the version was already there, so
    /// that a takeover can ask for what was written after the last record its log holds.
    Write {
        key: Key,
        version: Version,
        value: Option<Value>,
        #[serde(default)]
        stamp: Option<Version>,
    },
    /// Heartbeat.
    Ping,
    /// A page of every entry the slave holds. `cursor: 0` starts an inventory (the slave lists
    /// its keys); later pages continue from the cursor the previous page returned, and a cursor
    /// from an inventory that was started again since is refused (`BadRequest`). With `since`,
    /// only the entries written with a stamp above it are listed: what a standby's log may lack.
    Inventory {
        cursor: u64,
        #[serde(default)]
        since: Option<Version>,
    },
    /// A candidate asks the slave to promise, durably, to refuse every request from an epoch
    /// older than the request's, and every other node's request in that epoch. Answered with
    /// [`SlaveReply::Promised`].
    Promise,
}

/// A slave's successful answer to a [`SlaveOp`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SlaveReply {
    Read {
        entry: Option<Entry>,
    },
    /// The version the slave holds after the write: the written one or a newer one.
    Written {
        current: Version,
    },
    Pong {
        keys: u64,
    },
    /// A page of the inventory, and the cursor of the next page (`None`: that was the last).
    Inventory {
        entries: Vec<(Key, Entry)>,
        next: Option<u64>,
    },
    /// The answer to [`SlaveOp::Promise`]: whether the slave now promises the request's epoch
    /// to the sender, and what it has promised (`epoch` to `to`) after answering. `served` is
    /// the highest epoch in which the slave carried out a read or a write, as it was before.
    Promised {
        granted: bool,
        epoch: Epoch,
        to: Option<NodeId>,
        served: Epoch,
    },
}

/// The master's view of the cluster, for `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub node: NodeId,
    pub role: ServerRole,
    pub epoch: Epoch,
    /// The replication factor the master aims for.
    pub replicas: u32,
    /// Keys in the master's key map.
    pub keys: u64,
    /// Keys holding a value (not deleted), as the master's log has them.
    #[serde(default)]
    pub values: u64,
    /// Keys with fewer live, complete replicas than they should have.
    pub under_replicated: u64,
    pub slaves: Vec<SlaveStatus>,
    /// The last durable LSN of the master's log.
    pub last_lsn: Lsn,
    /// The standby following this master, if one is connected.
    pub standby: Option<StandbyStatus>,
    /// The cluster's recorded slave membership (live or not).
    #[serde(default)]
    pub members: Vec<MemberStatus>,
    /// Why a candidate does not serve yet (`None` once it serves).
    #[serde(default)]
    pub waiting: Option<String>,
}

/// One slave of the recorded membership.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub id: NodeId,
    /// Replica sets may use it (its joining was recorded where every future master sees it).
    pub active: bool,
    /// Connected now.
    pub live: bool,
}

/// The standby as its master sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandbyStatus {
    pub id: NodeId,
    /// The last LSN the standby holds durably.
    pub acked_lsn: Lsn,
    /// Records the standby is behind the master's durable log.
    pub lag: u64,
}

/// One slave as the master sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaveStatus {
    pub id: NodeId,
    /// The address the slave connected from.
    pub addr: String,
    /// Keys the slave said it held at its last heartbeat.
    pub keys_held: u64,
    /// Keys whose replica set includes the slave.
    pub keys_placed: u64,
}
