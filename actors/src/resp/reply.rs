//! Replies, and their encoding by the RESP crate.

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::encode::extend_encode;
use redis_protocol::resp2::types::BytesFrame;

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(&'static str),
    /// The whole error line: a code (`ERR`, `READONLY`, ...) and a message.
    Error(String),
    Int(i64),
    Bulk(Bytes),
    /// The null bulk string (`$-1`): a missing key.
    Nil,
    Array(Vec<Reply>),
}

impl Reply {
    pub fn error(text: impl Into<String>) -> Reply {
        let mut text: String = text.into();
        // An error is one line.
        if text.contains(['\r', '\n']) {
            text = text.replace(['\r', '\n'], " ");
        }
        Reply::Error(text)
    }

    pub fn ok() -> Reply {
        Reply::Simple("OK")
    }

    pub fn bulk(text: impl Into<Bytes>) -> Reply {
        Reply::Bulk(text.into())
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    fn frame(self) -> BytesFrame {
        match self {
            Reply::Simple(s) => BytesFrame::SimpleString(Bytes::from_static(s.as_bytes())),
            Reply::Error(text) => BytesFrame::Error(text.into()),
            Reply::Int(n) => BytesFrame::Integer(n),
            Reply::Bulk(b) => BytesFrame::BulkString(b),
            Reply::Nil => BytesFrame::Null,
            Reply::Array(items) => BytesFrame::Array(items.into_iter().map(Reply::frame).collect()),
        }
    }

    /// Appends the reply's RESP2 encoding to `buf`.
    pub fn encode(self, buf: &mut BytesMut) {
        if let Err(err) = extend_encode(buf, &self.frame(), false) {
            // Encoding into a growable buffer fails only on a bug; say so on the wire.
            tracing::error!(%err, "cannot encode a RESP reply");
            let _ = extend_encode(buf, &BytesFrame::Error("ERR internal error encoding the reply".into()), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(reply: Reply) -> Vec<u8> {
        let mut buf = BytesMut::new();
        reply.encode(&mut buf);
        buf.to_vec()
    }

    #[test]
    fn encodes_as_resp2() {
        assert_eq!(wire(Reply::ok()), b"+OK\r\n");
        assert_eq!(wire(Reply::error("ERR bad\r\nthing")), b"-ERR bad  thing\r\n");
        assert_eq!(wire(Reply::Int(-3)), b":-3\r\n");
        assert_eq!(wire(Reply::bulk("a\r\nb")), b"$4\r\na\r\nb\r\n");
        assert_eq!(wire(Reply::Nil), b"$-1\r\n");
        assert_eq!(wire(Reply::Array(vec![Reply::Int(1), Reply::Nil])), b"*2\r\n:1\r\n$-1\r\n");
    }
}
