//! The codec: tokio-util's length-delimited framing carrying one MessagePack value per frame.

use std::marker::PhantomData;

use bytes::{BufMut, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use crate::error::NetError;
use crate::limits::{LENGTH_PREFIX_LEN, MAX_FRAME_LEN};

/// Decodes `In` frames and encodes `Out` frames.
pub struct MsgCodec<In, Out> {
    frames: LengthDelimitedCodec,
    _types: PhantomData<fn(Out) -> In>,
}

impl<In, Out> MsgCodec<In, Out> {
    pub fn new() -> Self {
        MsgCodec {
            frames: LengthDelimitedCodec::builder()
                .length_field_length(LENGTH_PREFIX_LEN)
                .max_frame_length(MAX_FRAME_LEN)
                .new_codec(),
            _types: PhantomData,
        }
    }
}

impl<In, Out> Default for MsgCodec<In, Out> {
    fn default() -> Self {
        Self::new()
    }
}

impl<In: DeserializeOwned, Out> Decoder for MsgCodec<In, Out> {
    type Item = In;
    type Error = NetError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, NetError> {
        let announced = announced_len(src);
        let frame = match self.frames.decode(src) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(None),
            Err(err) => {
                return Err(match announced {
                    Some(len) if len > MAX_FRAME_LEN => NetError::FrameTooLong { len, max: MAX_FRAME_LEN },
                    _ => NetError::Io(err),
                })
            }
        };
        rmp_serde::from_slice(&frame).map(Some).map_err(|e| NetError::Decode(e.to_string()))
    }
}

impl<In, Out: Serialize> Encoder<Out> for MsgCodec<In, Out> {
    type Error = NetError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), NetError> {
        encode_frame(&item, dst)
    }
}

/// Appends one frame holding `item` to `dst`. On error `dst` is left as it was.
pub fn encode_frame<T: Serialize + ?Sized>(item: &T, dst: &mut BytesMut) -> Result<(), NetError> {
    let start = dst.len();
    dst.put_u32(0);
    if let Err(err) = rmp_serde::encode::write_named(&mut dst.writer(), item) {
        dst.truncate(start);
        return Err(NetError::Encode(err.to_string()));
    }
    let body = dst.len() - start - LENGTH_PREFIX_LEN;
    if body > MAX_FRAME_LEN {
        dst.truncate(start);
        return Err(NetError::Encode(format!("frame of {body} bytes is over the limit of {MAX_FRAME_LEN}")));
    }
    dst[start..start + LENGTH_PREFIX_LEN].copy_from_slice(&(body as u32).to_be_bytes());
    Ok(())
}

fn announced_len(src: &BytesMut) -> Option<usize> {
    let prefix: [u8; LENGTH_PREFIX_LEN] = src.get(..LENGTH_PREFIX_LEN)?.try_into().ok()?;
    Some(u32::from_be_bytes(prefix) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{ClientOp, FromServer, Hello, PeerRole, ToServer, PROTOCOL_VERSION};
    use crate::payload::Key;
    use crate::WireError;

    type ServerCodec = MsgCodec<ToServer, FromServer>;

    fn encoded(msg: &ToServer) -> BytesMut {
        let mut buf = BytesMut::new();
        encode_frame(msg, &mut buf).unwrap();
        buf
    }

    #[test]
    fn frames_round_trip_even_when_split() {
        let hello = ToServer::Hello(Hello::new(PeerRole::Client));
        let get = ToServer::Request { id: 7, op: ClientOp::Get { key: Key::new("k").unwrap() } };
        let mut wire = encoded(&hello);
        wire.extend_from_slice(&encoded(&get));

        let mut codec = ServerCodec::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for byte in wire.iter() {
            buf.put_u8(*byte);
            while let Some(msg) = codec.decode(&mut buf).unwrap() {
                out.push(msg);
            }
        }
        assert_eq!(out, vec![hello, get]);
    }

    #[test]
    fn a_hello_without_nonce_or_password_still_decodes() {
        // The shape of a `Hello` before membership proofs and passwords existed.
        #[derive(serde::Serialize)]
        enum OldToServer {
            Hello(OldHello),
        }
        #[derive(serde::Serialize)]
        struct OldHello {
            protocol: u32,
            role: PeerRole,
        }
        let mut buf = BytesMut::new();
        let old = OldToServer::Hello(OldHello { protocol: PROTOCOL_VERSION, role: PeerRole::Client });
        encode_frame(&old, &mut buf).unwrap();
        let decoded = ServerCodec::new().decode(&mut buf).unwrap().unwrap();
        assert_eq!(decoded, ToServer::Hello(Hello::new(PeerRole::Client)));
    }

    #[test]
    fn oversized_length_prefix_is_refused_before_buffering() {
        let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        let err = ServerCodec::new().decode(&mut buf).unwrap_err();
        assert!(matches!(err, NetError::FrameTooLong { len, .. } if len == u32::MAX as usize));
    }

    #[test]
    fn garbage_and_unknown_messages_are_decode_errors() {
        let mut garbage = BytesMut::new();
        garbage.put_u32(3);
        garbage.put_slice(&[0xc1, 0xff, 0x00]);
        assert!(matches!(ServerCodec::new().decode(&mut garbage), Err(NetError::Decode(_))));

        let mut unknown = BytesMut::new();
        encode_frame(&serde_json_like_unknown(), &mut unknown).unwrap();
        assert!(matches!(ServerCodec::new().decode(&mut unknown), Err(NetError::Decode(_))));
    }

    fn serde_json_like_unknown() -> std::collections::BTreeMap<String, u32> {
        [("Launch".to_string(), 1)].into_iter().collect()
    }

    #[test]
    fn decode_errors_become_bad_frame_errors() {
        let err = NetError::Decode("x".into()).to_wire().unwrap();
        assert!(matches!(err, WireError::BadFrame { .. }));
        assert!(NetError::Io(std::io::ErrorKind::BrokenPipe.into()).to_wire().is_none());
    }
}
