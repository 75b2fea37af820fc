//! `actors`: every actor of the store and the messages between them, plus the client library.
//!
//! Map of the crate:
//! - `master/`: the master's actors. `listener.rs` accepts connections and checks the
//!   handshake; `client_session.rs` is the connection actor for a client; `slave_proxy.rs`
//!   speaks for one connected slave (request ids, in-flight table, heartbeats);
//!   `backup_session.rs` ships the log to the standby; `coordinator.rs` is the quorum
//!   coordinator actor around the pure state machine in `core.rs` (versions, key map,
//!   placement, which replicas count, background repair); `write_aggregator.rs` and
//!   `read_aggregator.rs` are the short-lived actors that run one quorum write or read (with
//!   read repair); `inventory.rs` reads a slave's whole inventory for a takeover;
//!   `wal_writer.rs` appends to the write-ahead log with group commit; `quorum.rs` and
//!   `placement.rs` hold the plain arithmetic.
//! - `role/`: the role core, a plain state machine: which role a master-capable node plays,
//!   and every decision about epochs, promises, takeover, deposition and admission (`mod.rs`,
//!   with the invariant and why it holds); the recorded membership and the counts a takeover
//!   needs (`membership.rs`); a slave's promise and its fencing check (`promise.rs`).
//! - `node/`: a master-capable process. `mod.rs` recovers the data directory and starts the
//!   listeners; `role.rs` is the node actor that carries out the role core's effects (and
//!   starts the coordinator when the node campaigns); `standby.rs` follows the master's log
//!   and hands its state over when the master falls silent; `promise_request.rs` asks one slave
//!   for a promise.
//! - `wal/`: the log on disk: the locked data directory, record framing, snapshots, recovery.
//! - `slave/`: the slave's actors. `store.rs` holds the versioned data and the promise; `link.rs` finds a master and reconnects with backoff; `session.rs` is the
//!   connection actor for one master connection.
//! - `resp/`: the Redis-protocol endpoint: decoding (the `redis-protocol` crate behind a
//!   length guard), commands, replies, and the `RespSession` connection actor.
//! - `client/`: the client library: `ClientActor` and the `Client` handle.
//! - `outbox.rs`, `dial.rs`: the socket halves of a connection actor, and connecting with a
//!   handshake under a deadline. `backoff.rs`: exponential backoff with jitter.
//! - `security/`: who may connect: the cluster key's challenge-response, client passwords, TLS,
//!   and the plain-or-TLS socket the connection actors read and write.
//! - `stall.rs`: a watch that logs when this process's event loop could not run for a while.
//! - `error.rs`: the crate's error enum. `mutation.rs`: failpoints that switch a safety
//!   mechanism off, for the tests that show the nemesis catches its absence.
//!
//! Caveats: everything runs on one actix system thread per process (the log's file work has a
//! thread of its own); slaves keep their data in memory only, which the master accounts for
//! (see `master/core.rs` on amnesia).

pub mod backoff;
pub mod client;
pub mod dial;
pub mod error;
pub mod limit;
pub mod master;
pub mod mutation;
pub mod node;
pub mod outbox;
pub mod resp;
pub mod role;
pub mod security;
pub mod sharded;
pub mod slave;
pub mod stall;
pub mod wal;

pub use error::Error;
