//! The slave's store actor: `key -> (version, value or tombstone)`, and the highest epoch the
//! slave has accepted.
//!
//! A write is applied only if its version is newer than what the store holds, so a retried,
//! reordered or repaired write never moves a key backwards. A delete stores a tombstone with
//! its version instead of forgetting the key, so a stale copy elsewhere can never be repaired
//! back over it. Requests carrying an older epoch than the store has accepted are refused:
//! that is what keeps a deposed master from completing reads or writes.

use std::collections::HashMap;

use actix::prelude::{Actor, Context, Handler, Message, MessageResult, Recipient};

use net::{Entry, Epoch, Key, RequestId, SlaveOp, SlaveReply, Value, Version, WireError};

/// The data, without the actor: plain methods, tested directly.
#[derive(Default)]
pub struct StoreMap {
    entries: HashMap<Key, Entry>,
    max_version: Version,
}

impl StoreMap {
    pub fn read(&self, key: &Key) -> Option<Entry> {
        self.entries.get(key).cloned()
    }

    /// Applies the write if `version` is newer than the key's; returns the version now held.
    pub fn write(&mut self, key: Key, version: Version, value: Option<Value>) -> Version {
        self.max_version = self.max_version.max(version);
        match self.entries.get_mut(&key) {
            Some(entry) if entry.version >= version => entry.version,
            Some(entry) => {
                *entry = Entry { version, value };
                version
            }
            None => {
                self.entries.insert(key, Entry { version, value });
                version
            }
        }
    }

    /// Keys held, tombstones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn max_version(&self) -> Version {
        self.max_version
    }
}

pub struct Store {
    map: StoreMap,
    epoch: Epoch,
}

impl Store {
    pub fn new() -> Self {
        Store { map: StoreMap::default(), epoch: Epoch(0) }
    }

    fn apply(&mut self, epoch: Epoch, op: SlaveOp) -> Result<SlaveReply, WireError> {
        if epoch < self.epoch {
            return Err(WireError::StaleEpoch { sent: epoch, current: self.epoch });
        }
        if epoch > self.epoch {
            tracing::info!(old = %self.epoch, new = %epoch, "accepting a newer epoch");
            self.epoch = epoch;
        }
        match op {
            SlaveOp::Read { key } => Ok(SlaveReply::Read { entry: self.map.read(&key) }),
            SlaveOp::Write { key, version, value } => {
                if version.epoch > epoch {
                    return Err(WireError::bad_request(format!(
                        "version {version} is from a later epoch than the request's {epoch}"
                    )));
                }
                Ok(SlaveReply::Written { current: self.map.write(key, version, value) })
            }
            SlaveOp::Ping => Ok(SlaveReply::Pong { keys: self.map.len() as u64 }),
        }
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Actor for Store {
    type Context = Context<Self>;
}

/// Carry out `op` for the master connection `reply_to` and answer it there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Apply {
    pub id: RequestId,
    pub epoch: Epoch,
    pub op: SlaveOp,
    pub reply_to: Recipient<Applied>,
}

/// The answer to an [`Apply`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct Applied {
    pub id: RequestId,
    pub result: Result<SlaveReply, WireError>,
}

/// What the slave tells a master in its handshake.
#[derive(Debug, Clone, Copy)]
pub struct StoreInfo {
    pub epoch: Epoch,
    pub max_version: Version,
    pub keys: u64,
}

#[derive(Message)]
#[rtype(result = "StoreInfo")]
pub struct Describe;

impl Handler<Apply> for Store {
    type Result = ();

    fn handle(&mut self, msg: Apply, _ctx: &mut Context<Self>) {
        let result = self.apply(msg.epoch, msg.op);
        msg.reply_to.do_send(Applied { id: msg.id, result });
    }
}

impl Handler<Describe> for Store {
    type Result = MessageResult<Describe>;

    fn handle(&mut self, _msg: Describe, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(StoreInfo { epoch: self.epoch, max_version: self.map.max_version(), keys: self.map.len() as u64 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Key {
        Key::new(k.to_string()).unwrap()
    }

    fn val(v: &str) -> Option<Value> {
        Some(Value::new(v.to_string()).unwrap())
    }

    #[test]
    fn only_newer_versions_are_applied() {
        let mut map = StoreMap::default();
        assert_eq!(map.write(key("k"), Version::new(1, 5), val("five")), Version::new(1, 5));
        assert_eq!(map.write(key("k"), Version::new(1, 3), val("three")), Version::new(1, 5));
        assert_eq!(map.read(&key("k")).unwrap().value, val("five"));
        assert_eq!(map.write(key("k"), Version::new(2, 1), val("new")), Version::new(2, 1));
        assert_eq!(map.read(&key("k")).unwrap().value, val("new"));
    }

    #[test]
    fn a_tombstone_keeps_older_writes_out() {
        let mut map = StoreMap::default();
        map.write(key("k"), Version::new(1, 1), val("a"));
        map.write(key("k"), Version::new(1, 2), None);
        map.write(key("k"), Version::new(1, 1), val("a"));
        let entry = map.read(&key("k")).unwrap();
        assert_eq!(entry, Entry { version: Version::new(1, 2), value: None });
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn older_epochs_are_refused_and_newer_ones_adopted() {
        let mut store = Store::new();
        assert!(store.apply(Epoch(2), SlaveOp::Ping).is_ok());
        let err = store.apply(Epoch(1), SlaveOp::Read { key: key("k") }).unwrap_err();
        assert_eq!(err, WireError::StaleEpoch { sent: Epoch(1), current: Epoch(2) });
        let write = SlaveOp::Write { key: key("k"), version: Version::new(1, 1), value: val("x") };
        assert_eq!(store.apply(Epoch(1), write.clone()).unwrap_err(), err);
        assert!(store.apply(Epoch(2), write).is_ok(), "copied versions keep their older epoch");
    }

    #[test]
    fn a_version_from_a_later_epoch_than_its_request_is_refused() {
        let mut store = Store::new();
        let write = SlaveOp::Write { key: key("k"), version: Version::new(5, 1), value: val("x") };
        assert!(matches!(store.apply(Epoch(1), write), Err(WireError::BadRequest { .. })));
    }
}
