//! Framing and size limits. Every limit is checked before the memory it guards is allocated:
//! the frame length before the frame is buffered, key and value lengths before they are
//! copied out of the frame.

/// Longest key, in bytes. Keys are never empty.
pub const MAX_KEY_LEN: usize = 1024;

/// Longest value, in bytes. Empty values are allowed.
pub const MAX_VALUE_LEN: usize = 1024 * 1024;

/// Room in a frame for everything but the key and the value: envelope, ids, version.
pub const FRAME_OVERHEAD: usize = 16 * 1024;

/// Longest frame body. A frame whose length prefix says more is refused unread.
pub const MAX_FRAME_LEN: usize = MAX_VALUE_LEN + MAX_KEY_LEN + FRAME_OVERHEAD;

/// Longest node name.
pub const MAX_NODE_ID_LEN: usize = 64;

/// Longest free-text detail in an error frame; longer texts are cut.
pub const MAX_ERROR_DETAIL_LEN: usize = 1024;

/// Bytes of the length prefix in front of every frame.
pub const LENGTH_PREFIX_LEN: usize = 4;
