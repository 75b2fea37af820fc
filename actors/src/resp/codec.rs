//! Requests off the wire: RESP arrays of bulk strings (what client libraries send, pipelined
//! or not) and inline commands (a line of words, what `telnet` sends).
//!
//! The `redis-protocol` crate parses a request once it is whole. Before that, a guard reads
//! only the headers: it checks every declared length against this store's limits (the same
//! frame limit as the native protocol) as soon as the header arrives, so an absurd length is
//! refused at once instead of buffered for, and it refuses nesting, which no client sends and
//! which would make the parser recurse without bound.

use bytes::{Buf, Bytes, BytesMut};
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame;
use tokio_util::codec::Decoder;

use net::limits::{MAX_FRAME_LEN, MAX_VALUE_LEN};

/// The longest inline command line.
pub const MAX_INLINE_LEN: usize = 64 * 1024;
/// The most arguments one request may have: every argument takes at least 6 bytes
/// (`$0\r\n\r\n`), so more could not fit in a frame anyway.
pub const MAX_ARGS: usize = MAX_FRAME_LEN / 6;

/// A request that breaks the protocol; the connection is answered with it and closed.
#[derive(Debug, thiserror::Error)]
pub enum RespError {
    #[error("Protocol error: {0}")]
    Protocol(String),
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Default)]
pub struct RespCodec;

enum Scan {
    /// More bytes are needed; the headers so far are within the limits.
    Incomplete,
    /// A whole request of this many bytes.
    Whole(usize),
    /// `*0` or `*-1`: an empty request of this many bytes, skipped as Redis skips it.
    Empty(usize),
}

fn protocol(detail: impl Into<String>) -> RespError {
    RespError::Protocol(detail.into())
}

/// Reads a `<prefix><integer>\r\n` header at `at`; `None` if it is not all there yet.
fn header(buf: &[u8], at: usize, prefix: u8) -> Result<Option<(i64, usize)>, RespError> {
    let Some(&first) = buf.get(at) else { return Ok(None) };
    if first != prefix {
        return Err(protocol(format!("expected '{}', got '{}'", prefix as char, (first as char).escape_default())));
    }
    let rest = &buf[at + 1..];
    let limit = rest.len().min(24);
    match rest[..limit].iter().position(|&b| b == b'\r') {
        None if rest.len() >= 24 => Err(protocol("a length line is too long")),
        None => Ok(None),
        Some(cr) => {
            if rest.get(cr + 1).is_none() {
                return Ok(None);
            }
            if rest[cr + 1] != b'\n' {
                return Err(protocol("a length line must end with CRLF"));
            }
            let text = std::str::from_utf8(&rest[..cr]).map_err(|_| protocol("a length is not a number"))?;
            let n: i64 = text.parse().map_err(|_| protocol(format!("'{text}' is not a length")))?;
            Ok(Some((n, at + 1 + cr + 2)))
        }
    }
}

fn scan_multibulk(buf: &[u8]) -> Result<Scan, RespError> {
    let Some((count, mut at)) = header(buf, 0, b'*')? else { return Ok(Scan::Incomplete) };
    if count == 0 || count == -1 {
        return Ok(Scan::Empty(at));
    }
    if count < 0 || count as u64 > MAX_ARGS as u64 {
        return Err(protocol(format!("invalid multibulk length {count}")));
    }
    for _ in 0..count {
        let Some((len, data)) = header(buf, at, b'$')? else { return Ok(Scan::Incomplete) };
        if len < 0 || len as u64 > MAX_VALUE_LEN as u64 {
            return Err(protocol(format!("invalid bulk length {len} (at most {MAX_VALUE_LEN})")));
        }
        at = data + len as usize + 2;
        if at > MAX_FRAME_LEN {
            return Err(protocol(format!("request of more than {MAX_FRAME_LEN} bytes")));
        }
        if buf.len() < at {
            return Ok(Scan::Incomplete);
        }
        if &buf[at - 2..at] != b"\r\n" {
            return Err(protocol("a bulk string must end with CRLF"));
        }
    }
    Ok(Scan::Whole(at))
}

/// Splits an inline command into words: runs of spaces or tabs separate them, and a word in
/// double quotes may hold spaces and the escapes `\"`, `\\`, `\n`, `\r`, `\t`, `\xHH`.
fn split_inline(line: &[u8]) -> Result<Vec<Bytes>, RespError> {
    let mut words = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && matches!(line[i], b' ' | b'\t') {
            i += 1;
        }
        if i == line.len() {
            break;
        }
        let mut word = Vec::new();
        if line[i] == b'"' {
            i += 1;
            loop {
                match line.get(i) {
                    None => return Err(protocol("unbalanced quotes in request")),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let (byte, used) = match line.get(i + 1) {
                            Some(b'n') => (b'\n', 2),
                            Some(b'r') => (b'\r', 2),
                            Some(b't') => (b'\t', 2),
                            Some(b'x') => match line.get(i + 2..i + 4).and_then(|h| std::str::from_utf8(h).ok()) {
                                Some(hex) => match u8::from_str_radix(hex, 16) {
                                    Ok(b) => (b, 4),
                                    Err(_) => (b'x', 2),
                                },
                                None => (b'x', 2),
                            },
                            Some(&other) => (other, 2),
                            None => return Err(protocol("unbalanced quotes in request")),
                        };
                        word.push(byte);
                        i += used;
                    }
                    Some(&b) => {
                        word.push(b);
                        i += 1;
                    }
                }
            }
            if i < line.len() && !matches!(line[i], b' ' | b'\t') {
                return Err(protocol("unbalanced quotes in request"));
            }
        } else {
            while i < line.len() && !matches!(line[i], b' ' | b'\t') {
                word.push(line[i]);
                i += 1;
            }
        }
        words.push(Bytes::from(word));
    }
    Ok(words)
}

impl Decoder for RespCodec {
    /// The arguments of one request, the command name first.
    type Item = Vec<Bytes>;
    type Error = RespError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Vec<Bytes>>, RespError> {
        loop {
            let Some(&first) = src.first() else { return Ok(None) };
            if first != b'*' {
                let Some(end) = src.iter().position(|&b| b == b'\n') else {
                    if src.len() > MAX_INLINE_LEN {
                        return Err(protocol("too big inline request"));
                    }
                    return Ok(None);
                };
                if end > MAX_INLINE_LEN {
                    return Err(protocol("too big inline request"));
                }
                let line = src.split_to(end + 1);
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let words = split_inline(line)?;
                if words.is_empty() {
                    continue;
                }
                return Ok(Some(words));
            }
            match scan_multibulk(src)? {
                Scan::Incomplete => {
                    src.reserve(4096);
                    return Ok(None);
                }
                Scan::Empty(len) => {
                    src.advance(len);
                    continue;
                }
                Scan::Whole(len) => {
                    let parsed = decode_bytes_mut(src).map_err(|e| protocol(e.to_string()))?;
                    let Some((frame, used, _)) = parsed else {
                        return Err(protocol("the request could not be parsed"));
                    };
                    debug_assert_eq!(used, len);
                    let BytesFrame::Array(items) = frame else {
                        return Err(protocol("expected an array of bulk strings"));
                    };
                    let args = items
                        .into_iter()
                        .map(|item| match item {
                            BytesFrame::BulkString(b) => Ok(b),
                            _ => Err(protocol("expected an array of bulk strings")),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    return Ok(Some(args));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> (Vec<Vec<Bytes>>, Option<String>, usize) {
        let mut codec = RespCodec;
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(args)) => out.push(args),
                Ok(None) => return (out, None, buf.len()),
                Err(err) => return (out, Some(err.to_string()), buf.len()),
            }
        }
    }

    fn words(list: &[&str]) -> Vec<Bytes> {
        list.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
    }

    #[test]
    fn pipelined_arrays_and_inline_commands() {
        let (out, err, left) =
            decode_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\\x41\"\r\n*1\r\n$4\r\nPI");
        assert_eq!(err, None);
        assert_eq!(out, vec![words(&["GET", "k"]), words(&["PING"]), words(&["set", "a", "b cA"])]);
        assert_eq!(left, 10, "the partial request waits for its rest");
    }

    #[test]
    fn a_request_split_into_single_bytes_decodes_once_whole() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nva\r\nl\r\n";
        let mut codec = RespCodec;
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &byte in input.iter() {
            buf.extend_from_slice(&[byte]);
            if let Some(args) = codec.decode(&mut buf).unwrap() {
                got.push(args);
            }
        }
        assert_eq!(got, vec![words(&["SET", "k", "va\r\nl"])]);
    }

    #[test]
    fn absurd_lengths_are_refused_before_the_bytes_arrive() {
        let (_, err, _) = decode_all(b"*1\r\n$999999999999\r\n");
        assert!(err.unwrap().contains("invalid bulk length"));
        let (_, err, _) = decode_all(b"*-5\r\n");
        assert!(err.unwrap().contains("invalid multibulk length"));
        let (_, err, _) = decode_all(b"*99999999\r\n");
        assert!(err.unwrap().contains("invalid multibulk length"));
        let (_, err, _) = decode_all(b"*1\r\n$-3\r\n");
        assert!(err.unwrap().contains("invalid bulk length"));
    }

    #[test]
    fn nesting_and_garbage_are_protocol_errors() {
        let (_, err, _) = decode_all(b"*1\r\n*1\r\n*1\r\n");
        assert!(err.unwrap().contains("expected '$'"));
        let (_, err, _) = decode_all(b"*1\r\n$3\r\nabcde\r\n");
        assert!(err.unwrap().contains("CRLF"));
        let (_, err, _) = decode_all(b"*x\r\n");
        assert!(err.is_some());
        let (_, err, _) = decode_all(&vec![b'a'; MAX_INLINE_LEN + 10]);
        assert!(err.unwrap().contains("too big inline request"));
    }

    #[test]
    fn empty_requests_are_skipped() {
        let (out, err, _) = decode_all(b"*0\r\n*-1\r\n\r\n   \r\nPING\r\n");
        assert_eq!((out, err), (vec![words(&["PING"])], None));
    }

    #[test]
    fn a_value_at_the_limit_is_accepted_and_one_over_refused() {
        let mut ok = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${MAX_VALUE_LEN}\r\n").into_bytes();
        ok.extend(std::iter::repeat_n(b'v', MAX_VALUE_LEN));
        ok.extend_from_slice(b"\r\n");
        let (out, err, _) = decode_all(&ok);
        assert_eq!((out.len(), err), (1, None));
        let over = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", MAX_VALUE_LEN + 1);
        let (_, err, _) = decode_all(over.as_bytes());
        assert!(err.unwrap().contains("invalid bulk length"));
    }
}
