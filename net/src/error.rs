//! Errors. [`WireError`] travels inside frames, so a client in any language can act on it;
//! its variants are grouped by what the receiver can do. [`NetError`] is what the codec
//! reports while reading or writing frames.

use serde::{Deserialize, Serialize};

use crate::ids::{Epoch, NodeId};
use crate::limits::MAX_ERROR_DETAIL_LEN;

/// An error sent in a frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum WireError {
    // Bad input: the sender must change what it sends. The connection is closed after
    // `BadFrame` and `Protocol`; `BadRequest` only refuses the one request.
    /// The bytes were not a frame of this protocol.
    #[error("bad frame: {detail}")]
    BadFrame { detail: String },
    /// A well-formed request that cannot be served as asked (e.g. a key over the limit).
    #[error("bad request: {detail}")]
    BadRequest { detail: String },
    /// A frame out of place: before the handshake, a second handshake, the wrong role.
    #[error("protocol error: {detail}")]
    Protocol { detail: String },

    /// The peer did not prove it may connect: no cluster key or the wrong one, no password
    /// or the wrong one, no verified certificate. The connection is closed.
    #[error("unauthorized: {detail}")]
    Unauthorized { detail: String },

    // Unavailable: retrying later may succeed.
    /// The request was not carried out anywhere; it is safe to retry.
    #[error("unavailable: {detail}")]
    Unavailable { detail: String },
    /// The write was sent to replicas but did not reach a majority in time: it may or may
    /// not take effect. Retrying a write blindly could apply it after a later one.
    #[error("unavailable, outcome unknown: {detail}")]
    OutcomeUnknown { detail: String },
    /// This node is not the master. `master` is the address of the one it knows, if any.
    #[error("not master{}", .master.as_ref().map(|m| format!(", try {m}")).unwrap_or_default())]
    NotMaster { master: Option<String> },

    // Fencing.
    /// The request carried epoch `sent`, but the receiver has accepted `current`.
    #[error("stale epoch {sent}: this node has accepted epoch {current}")]
    StaleEpoch { sent: Epoch, current: Epoch },
    /// The receiver promised `epoch` to another node, `holder`: requests from anyone else in
    /// that epoch are refused.
    #[error("epoch {epoch} was promised to {holder} here")]
    Fenced { epoch: Epoch, holder: NodeId },

    /// A bug or an unexpected local failure on the server.
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

impl WireError {
    pub fn bad_frame(detail: impl Into<String>) -> Self {
        WireError::BadFrame { detail: clip(detail.into()) }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        WireError::BadRequest { detail: clip(detail.into()) }
    }

    pub fn protocol(detail: impl Into<String>) -> Self {
        WireError::Protocol { detail: clip(detail.into()) }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        WireError::Unauthorized { detail: clip(detail.into()) }
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        WireError::Unavailable { detail: clip(detail.into()) }
    }

    pub fn outcome_unknown(detail: impl Into<String>) -> Self {
        WireError::OutcomeUnknown { detail: clip(detail.into()) }
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        WireError::Internal { detail: clip(detail.into()) }
    }
}

fn clip(mut detail: String) -> String {
    if detail.len() > MAX_ERROR_DETAIL_LEN {
        let mut cut = MAX_ERROR_DETAIL_LEN;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
        detail.push('…');
    }
    detail
}

/// What can go wrong while reading or writing frames.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The length prefix announced more than the limit; nothing was buffered.
    #[error("frame of {len} bytes is over the limit of {max}")]
    FrameTooLong { len: usize, max: usize },
    /// The frame body was not a valid message: not MessagePack, an unknown message, a
    /// missing field, a key or value over its limit.
    #[error("malformed message: {0}")]
    Decode(String),
    /// A message could not be encoded (too big for a frame).
    #[error("cannot encode message: {0}")]
    Encode(String),
}

impl NetError {
    /// The error frame to send the peer before closing, when the peer caused the failure.
    pub fn to_wire(&self) -> Option<WireError> {
        match self {
            NetError::Io(_) | NetError::Encode(_) => None,
            NetError::FrameTooLong { .. } | NetError::Decode(_) => Some(WireError::bad_frame(self.to_string())),
        }
    }
}
