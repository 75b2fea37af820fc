//! `actors`: every actor of the store and the messages between them, plus the client library.
//!
//! Map of the crate:
//! - `master/`: the master's actors. `listener.rs` accepts connections and checks the
//!   handshake; `client_session.rs` is the connection actor for a client; `slave_proxy.rs`
//!   speaks for one connected slave (request ids, in-flight table, heartbeats);
//!   `coordinator.rs` is the quorum coordinator actor around the pure state machine in
//!   `core.rs` (versions, key map, placement, which replicas count); `write_aggregator.rs`
//!   and `read_aggregator.rs` are the short-lived actors that run one quorum write or read
//!   (with read repair); `quorum.rs` and `placement.rs` hold the plain arithmetic.
//! - `slave/`: the slave's actors. `store.rs` holds the versioned data and the accepted
//!   epoch; `link.rs` finds a master and reconnects with backoff; `session.rs` is the
//!   connection actor for one master connection.
//! - `client/`: the client library: `ClientActor` and the `Client` handle.
//! - `outbox.rs`, `dial.rs`: the socket halves of a connection actor, and connecting with a
//!   handshake under a deadline. `backoff.rs`: exponential backoff with jitter.
//! - `error.rs`: the crate's error enum.
//!
//! Caveats: everything runs on one actix system thread per process; slaves keep their data in
//! memory only, which the master accounts for (see `master/core.rs` on amnesia).

pub mod backoff;
pub mod client;
pub mod dial;
pub mod error;
pub mod master;
pub mod node;
pub mod outbox;
pub mod slave;
pub mod wal;

pub use error::Error;
