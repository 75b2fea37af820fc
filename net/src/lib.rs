//! `net`: everything that crosses the wire between the store's processes.
//!
//! Nothing else in the workspace defines bytes on the wire. A connection carries
//! length-delimited frames (a 4-byte big-endian length, then the body); each body is one
//! MessagePack value (maps with named fields, enums externally tagged). The first frame a
//! connecting peer sends is a [`Hello`] naming the protocol version and its role; the server
//! answers with a [`Welcome`] or an error frame, then the two sides exchange requests and
//! responses tagged with request ids, so many can be in flight on one connection.
//!
//! Map of the crate:
//! - `ids.rs`: the newtypes that carry meaning (`NodeId`, `Epoch`, `Seq`, `Version`,
//!   `RequestId`, `Lsn`, `Incarnation`).
//! - `limits.rs`: the framing and size limits, enforced before anything is allocated.
//! - `payload.rs`: `Key` and `Value`, byte strings whose deserializer checks the length
//!   before copying.
//! - `message.rs`: the frames themselves: handshake, client, slave and status messages.
//! - `log.rs`: write-ahead log records (on disk, and shipped to the standby).
//! - `error.rs`: [`WireError`] (errors that travel in frames) and [`NetError`] (what can go
//!   wrong while reading or writing frames).
//! - `codec.rs`: [`MsgCodec`], the tokio-util codec that turns frames into messages.
//!
//! `docs/PROTOCOL.md` describes the same frames for people writing their own clients.

mod codec;
mod error;
mod ids;
pub mod limits;
mod log;
mod message;
mod payload;

pub use codec::{encode_frame, MsgCodec};
pub use error::{NetError, WireError};
pub use ids::{Epoch, Incarnation, Lsn, NodeId, RequestId, Seq, Version};
pub use log::{LogRecord, MemberRecord};
pub use message::{
    ClientOp, ClientReply, Entry, FromServer, Hello, MemberStatus, PeerRole, ServerRole, Ship, SlaveOp, SlaveReply,
    SlaveStatus, StandbyStatus, StatusReport, ToServer, Welcome, NONCE_LEN, PROTOCOL_VERSION,
};
pub use payload::{Key, Value};
