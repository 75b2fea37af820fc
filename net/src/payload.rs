//! Keys and values: byte strings that are binary-safe on the wire (MessagePack `bin`) and
//! whose deserializers refuse an out-of-range length before copying a byte.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::limits::{MAX_KEY_LEN, MAX_VALUE_LEN};

/// A key: 1..=[`MAX_KEY_LEN`] bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(Bytes);

/// A value: 0..=[`MAX_VALUE_LEN`] bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Value(Bytes);

impl Key {
    /// Checks a key that came from outside.
    pub fn new(bytes: impl Into<Bytes>) -> Result<Key, String> {
        let bytes = bytes.into();
        check_key_len(bytes.len())?;
        Ok(Key(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

impl Value {
    /// Checks a value that came from outside.
    pub fn new(bytes: impl Into<Bytes>) -> Result<Value, String> {
        let bytes = bytes.into();
        check_value_len(bytes.len())?;
        Ok(Value(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

fn check_key_len(len: usize) -> Result<(), String> {
    if len == 0 {
        Err("empty key".to_string())
    } else if len > MAX_KEY_LEN {
        Err(format!("key of {len} bytes is over the limit of {MAX_KEY_LEN}"))
    } else {
        Ok(())
    }
}

fn check_value_len(len: usize) -> Result<(), String> {
    if len > MAX_VALUE_LEN {
        Err(format!("value of {len} bytes is over the limit of {MAX_VALUE_LEN}"))
    } else {
        Ok(())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() <= 32 {
            write!(f, "{:?}", String::from_utf8_lossy(&self.0))
        } else {
            write!(f, "<{} bytes>", self.0.len())
        }
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

/// Accepts MessagePack `bin` (and `str`, for clients whose libraries send text), checks the
/// length with `check`, and only then copies.
struct BoundedBytes {
    what: &'static str,
    check: fn(usize) -> Result<(), String>,
}

impl<'de> Visitor<'de> for BoundedBytes {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} as a byte string", self.what)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
        (self.check)(v.len()).map_err(E::custom)?;
        Ok(Bytes::copy_from_slice(v))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
        (self.check)(v.len()).map_err(E::custom)?;
        Ok(Bytes::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
        self.visit_bytes(v.as_bytes())
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        d.deserialize_bytes(BoundedBytes { what: "key", check: check_key_len }).map(Key)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_bytes(BoundedBytes { what: "value", check: check_value_len }).map(Value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_length_is_checked_on_decode() {
        let long = serde_bytes::ByteBuf::from(vec![b'k'; MAX_KEY_LEN + 1]);
        let encoded = rmp_serde::to_vec(&long).unwrap();
        let err = rmp_serde::from_slice::<Key>(&encoded).unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");

        let empty = rmp_serde::to_vec(&serde_bytes::ByteBuf::new()).unwrap();
        assert!(rmp_serde::from_slice::<Key>(&empty).is_err());
    }

    #[test]
    fn keys_and_values_round_trip_as_bin() {
        let key = Key::new(&b"user:\x00\xff"[..]).unwrap();
        let encoded = rmp_serde::to_vec(&key).unwrap();
        assert_eq!(encoded[0], 0xc4, "bin8 marker");
        assert_eq!(rmp_serde::from_slice::<Key>(&encoded).unwrap(), key);

        let value = Value::new(Bytes::new()).unwrap();
        let encoded = rmp_serde::to_vec(&value).unwrap();
        assert_eq!(rmp_serde::from_slice::<Value>(&encoded).unwrap(), value);
    }

    #[test]
    fn text_keys_are_accepted() {
        let encoded = rmp_serde::to_vec("user:1").unwrap();
        assert_eq!(rmp_serde::from_slice::<Key>(&encoded).unwrap().as_bytes(), b"user:1");
    }
}
