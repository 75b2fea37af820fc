//! The slave's store actor: `key -> (version, value or tombstone)` in memory, and the slave's
//! promise (the epoch it accepted, from whom, and the newest epoch it served) on disk.
//!
//! A write is applied only if its version is newer than what the store holds, so a retried,
//! reordered or repaired write never moves a key backwards. A delete stores a tombstone with
//! its version instead of forgetting the key, so a stale copy elsewhere can never be repaired
//! back over it. Every request first passes the promise's fencing check
//! (`role/promise.rs`): that is what keeps a deposed master from completing reads or writes,
//! and what grants a candidate its epoch. A changed promise is on disk before the request is
//! carried out.

use std::borrow::Borrow;
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use actix::prelude::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, MessageResult, Recipient, WrapFuture,
};

use bytes::Bytes;
use net::{Entry, Epoch, Key, NodeId, RequestId, SlaveOp, SlaveReply, Value, Version, WireError};

use crate::sharded::{Sharded, SHARDS};

use crate::role::promise::{Check, Kind, Promise};

/// The data, without the actor: plain methods, tested directly.
///
/// Each entry is one allocation holding the key and the value together, next to its version,
/// so a table slot is 32 bytes: a slave holding a million 100-byte values stays small.
#[derive(Default)]
pub struct StoreMap {
    entries: Sharded<Stored>,
    max_version: Version,
    /// The keys of the latest writes, as they arrived, each with the stamp it was written with:
    /// a takeover asks for what was written after its log's last stamp, which after a crash is
    /// among them, so the answer does not scan the whole map.
    recent: VecDeque<(Version, Box<[u8]>)>,
    /// The highest stamp of a write no longer in `recent`.
    forgotten: Version,
}

/// Writes [`StoreMap`] remembers the keys of (about 4 MB of keys and stamps).
const RECENT_WRITES: usize = 1 << 16;

/// A stored entry: `[key length: u16][flags: u8][stamp: 16 bytes, if flagged][key][value]`,
/// and its version. Most entries were written with the stamp of their own version (a write the
/// master minted), which is not stored again; a copy or repair with a later stamp carries it.
#[derive(Clone)]
struct Stored {
    version: Version,
    data: Box<[u8]>,
}

const STORED_HEADER: usize = 3;
const TOMBSTONE: u8 = 1;
const STAMPED: u8 = 2;
const STAMP_LEN: usize = 16;

impl Stored {
    fn new(key: &[u8], version: Version, value: Option<&[u8]>, stamp: Version) -> Stored {
        let stamped = stamp > version;
        let mut data = Vec::with_capacity(
            STORED_HEADER + if stamped { STAMP_LEN } else { 0 } + key.len() + value.map_or(0, <[u8]>::len),
        );
        // Keys are at most MAX_KEY_LEN (1024) bytes, which fits in a u16.
        data.extend_from_slice(&(key.len() as u16).to_le_bytes());
        data.push(if value.is_none() { TOMBSTONE } else { 0 } | if stamped { STAMPED } else { 0 });
        if stamped {
            data.extend_from_slice(&stamp.epoch.0.to_le_bytes());
            data.extend_from_slice(&stamp.seq.0.to_le_bytes());
        }
        data.extend_from_slice(key);
        data.extend_from_slice(value.unwrap_or_default());
        Stored { version, data: data.into_boxed_slice() }
    }

    fn key_len(&self) -> usize {
        usize::from(u16::from_le_bytes([self.data[0], self.data[1]]))
    }

    fn key_start(&self) -> usize {
        STORED_HEADER + if self.data[2] & STAMPED != 0 { STAMP_LEN } else { 0 }
    }

    fn key(&self) -> &[u8] {
        let start = self.key_start();
        &self.data[start..start + self.key_len()]
    }

    fn value(&self) -> Option<&[u8]> {
        (self.data[2] & TOMBSTONE == 0).then(|| &self.data[self.key_start() + self.key_len()..])
    }

    /// The highest stamp the entry was written with.
    fn stamp(&self) -> Version {
        if self.data[2] & STAMPED == 0 {
            return self.version;
        }
        let word = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&self.data[at..at + 8]);
            u64::from_le_bytes(bytes)
        };
        Version { epoch: net::Epoch(word(STORED_HEADER)), seq: net::Seq(word(STORED_HEADER + 8)) }
    }

    fn entry(&self) -> Entry {
        let value = self.value().map(|bytes| {
            Value::new(Bytes::copy_from_slice(bytes)).expect("a stored value was checked when it arrived")
        });
        Entry { version: self.version, value }
    }

    fn key_value(&self) -> (Key, Entry) {
        let key = Key::new(Bytes::copy_from_slice(self.key())).expect("a stored key was checked when it arrived");
        (key, self.entry())
    }
}

impl PartialEq for Stored {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Stored {}

impl Hash for Stored {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl Borrow<[u8]> for Stored {
    fn borrow(&self) -> &[u8] {
        self.key()
    }
}

impl StoreMap {
    pub fn read(&self, key: &Key) -> Option<Entry> {
        self.entries.get(key.as_bytes()).map(Stored::entry)
    }

    /// Applies the write if `version` is newer than the key's; returns the version now held.
    /// `stamp` (the version itself when `None`) raises the entry's stamp when the version
    /// written is the one held, and is the new entry's stamp when it is newer.
    pub fn write(&mut self, key: Key, version: Version, value: Option<Value>, stamp: Option<Version>) -> Version {
        self.max_version = self.max_version.max(version);
        let stamp = stamp.unwrap_or(version).max(version);
        match self.entries.get(key.as_bytes()) {
            Some(stored) if stored.version > version => stored.version,
            Some(stored) if stored.version == version => {
                if stamp > stored.stamp() {
                    let raised = Stored::new(stored.key(), version, stored.value(), stamp);
                    self.entries.replace(raised);
                    self.remember(stamp, key.as_bytes());
                }
                version
            }
            Some(_) | None => {
                self.entries.replace(Stored::new(key.as_bytes(), version, value.as_ref().map(Value::as_bytes), stamp));
                self.remember(stamp, key.as_bytes());
                version
            }
        }
    }

    fn remember(&mut self, stamp: Version, key: &[u8]) {
        if self.recent.len() >= RECENT_WRITES {
            if let Some((old, _)) = self.recent.pop_front() {
                self.forgotten = self.forgotten.max(old);
            }
        }
        self.recent.push_back((stamp, key.into()));
    }

    /// The keys written with a stamp above `since`, packed (see [`StoreMap::packed_keys`]),
    /// from the latest writes alone; `None` when an older write forgotten since had a stamp
    /// above it, so only a scan of the whole map can tell.
    fn recent_keys(&self, since: Version) -> Option<Vec<u8>> {
        if self.forgotten > since {
            return None;
        }
        let mut listed: HashSet<&[u8]> = HashSet::new();
        let mut keys = Vec::new();
        for (stamp, key) in &self.recent {
            if *stamp > since && listed.insert(key) {
                keys.extend_from_slice(&(key.len() as u16).to_le_bytes());
                keys.extend_from_slice(key);
            }
        }
        Some(keys)
    }

    /// Every entry, copied out.
    pub fn all(&self) -> Vec<(Key, Entry)> {
        self.entries.iter().map(Stored::key_value).collect()
    }

    /// Every entry written with a stamp above `since` (all with `None`), copied out: what one
    /// inventory lists, in one piece.
    pub fn written_since(&self, since: Option<Version>) -> Vec<(Key, Entry)> {
        self.entries.iter().filter(|e| since.is_none_or(|s| e.stamp() > s)).map(Stored::key_value).collect()
    }

    /// Appends the keys of shard `shard` of the map (with `since`, those written with a stamp
    /// above it) to `keys`, packed one after another as `[length: u16][key]`: what an
    /// inventory pages through, a few bytes a key rather than a copy of the data.
    fn pack_shard(&self, shard: usize, since: Option<Version>, keys: &mut Vec<u8>) {
        for stored in self.entries.shard(shard).filter(|e| since.is_none_or(|since| e.stamp() > since)) {
            keys.extend_from_slice(&stored.data[..2]);
            keys.extend_from_slice(stored.key());
        }
    }

    /// Every key (with `since`, every key written with a stamp above it), packed.
    #[cfg(test)]
    fn packed_keys(&self, since: Option<Version>) -> Vec<u8> {
        let mut keys = Vec::new();
        for shard in 0..SHARDS {
            self.pack_shard(shard, since, &mut keys);
        }
        keys
    }

    fn entry_of(&self, key: &[u8]) -> Option<(Key, Entry)> {
        self.entries.get(key).map(Stored::key_value)
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

/// Bytes of entries in one inventory page (at least one entry per page).
const INVENTORY_PAGE_BYTES: usize = 256 * 1024;

/// Shards of the map one inventory page lists at most: a sixty-fourth of it.
const SHARDS_A_PAGE: usize = SHARDS / 64;

/// An inventory cursor is `[session: 24 bits][offset into the packed keys: 40 bits]`, so a
/// cursor from an inventory that was started again since is recognised and refused.
const CURSOR_OFFSET_BITS: u32 = 40;

/// The keys an inventory is being paged through. Only the holder of the slave's promise may
/// read one, and it writes nothing meanwhile (a takeover reads before it serves), so the keys
/// present when it began are all there are; each page reads their entries as they are then.
/// The list comes from the latest writes when they cover `since`; otherwise it is built a few
/// shards of the map a page (until a page's worth of keys waits), so no page scans more than a
/// sixty-fourth of it.
struct InventoryKeys {
    session: u64,
    keys: Vec<u8>,
    since: Option<Version>,
    /// The next shard to list ([`SHARDS`]: all are listed).
    shard: usize,
}

/// Where a slave keeps its promise, in its data directory.
pub const PROMISE_FILE: &str = "promise";
/// Where slaves before promises kept the bare epoch; read once if no promise file exists.
const OLD_EPOCH_FILE: &str = "epoch";

pub struct Store {
    map: StoreMap,
    promise: Promise,
    /// The data directory the promise is kept in; `None` keeps it in memory only.
    dir: Option<PathBuf>,
    /// The keys an inventory is being paged through, and the number of inventories begun.
    inventory: Option<InventoryKeys>,
    inventories: u64,
}

impl Store {
    /// A store in memory whose promise is kept in `dir` if given, read from it now.
    pub fn open(dir: Option<PathBuf>) -> std::io::Result<Self> {
        let promise = match &dir {
            Some(dir) => read_promise(dir)?,
            None => Promise::default(),
        };
        Ok(Store { map: StoreMap::default(), promise, dir, inventory: None, inventories: 0 })
    }

    pub fn new() -> Self {
        Store { map: StoreMap::default(), promise: Promise::default(), dir: None, inventory: None, inventories: 0 }
    }

    fn inventory_page(&mut self, cursor: u64, since: Option<Version>) -> Result<SlaveReply, WireError> {
        let offset_mask = (1u64 << CURSOR_OFFSET_BITS) - 1;
        if cursor == 0 {
            self.inventories += 1;
            let session = self.inventories & ((1 << (64 - CURSOR_OFFSET_BITS)) - 1);
            let recent = since.and_then(|since| self.map.recent_keys(since));
            let shard = if recent.is_some() { SHARDS } else { 0 };
            let keys = recent.unwrap_or_default();
            self.inventory = Some(InventoryKeys { session: session.max(1), keys, since, shard });
        }
        let session = match cursor {
            0 => self.inventory.as_ref().map_or(0, |inv| inv.session),
            cursor => cursor >> CURSOR_OFFSET_BITS,
        };
        let mut at = usize::try_from(cursor & offset_mask).unwrap_or(usize::MAX);
        let Some(inventory) = self.inventory.as_mut().filter(|inv| inv.session == session) else {
            return Err(WireError::bad_request("that inventory is no longer in progress; start again from cursor 0"));
        };
        // Lists shards until a page's worth of keys waits, a sixty-fourth of the map at most.
        let last = (inventory.shard + SHARDS_A_PAGE).min(SHARDS);
        while inventory.keys.len().saturating_sub(at) < INVENTORY_PAGE_BYTES && inventory.shard < last {
            self.map.pack_shard(inventory.shard, inventory.since, &mut inventory.keys);
            inventory.shard += 1;
        }
        let (keys, more) = (&inventory.keys, inventory.shard < SHARDS);
        let (mut entries, mut bytes) = (Vec::new(), 0);
        while at < keys.len() && (entries.is_empty() || bytes < INVENTORY_PAGE_BYTES) {
            let Some(key) = keys
                .get(at..at + 2)
                .map(|len| usize::from(u16::from_le_bytes([len[0], len[1]])))
                .and_then(|len| keys.get(at + 2..at + 2 + len))
            else {
                return Err(WireError::bad_request("an inventory cursor that points at no key"));
            };
            at += 2 + key.len();
            if let Some((key, entry)) = self.map.entry_of(key) {
                bytes += key.as_bytes().len() + entry.value.as_ref().map_or(0, |v| v.as_bytes().len()) + 32;
                entries.push((key, entry));
            }
        }
        if at > keys.len() {
            return Err(WireError::bad_request("an inventory cursor that points at no key"));
        }
        let next = (at < keys.len() || more).then_some((session << CURSOR_OFFSET_BITS) | at as u64);
        if next.is_none() {
            self.inventory = None;
        }
        Ok(SlaveReply::Inventory { entries, next })
    }

    /// Carries out `op`, which the fencing check let through, under promise `after`.
    fn carry_out(&mut self, epoch: Epoch, op: SlaveOp, before: &Promise) -> Result<SlaveReply, WireError> {
        match op {
            SlaveOp::Read { key } => Ok(SlaveReply::Read { entry: self.map.read(&key) }),
            SlaveOp::Write { key, version, value, stamp } => {
                if version.epoch > epoch {
                    return Err(WireError::bad_request(format!(
                        "version {version} is from a later epoch than the request's {epoch}"
                    )));
                }
                Ok(SlaveReply::Written { current: self.map.write(key, version, value, stamp) })
            }
            SlaveOp::Ping => Ok(SlaveReply::Pong { keys: self.map.len() as u64 }),
            SlaveOp::Inventory { cursor, since } => self.inventory_page(cursor, since),
            SlaveOp::Promise => Ok(self.promise.granted(before)),
        }
    }

    /// Checks and carries out `op` from `from` in `epoch` when the promise needs no change on
    /// disk; otherwise returns the promise to record first.
    fn apply(&mut self, from: &NodeId, epoch: Epoch, op: SlaveOp) -> Applying {
        match self.promise.check(from, epoch, Kind::of(&op)) {
            Check::Answer(answer) => Applying::Done(answer),
            Check::Proceed(next) if next == self.promise => {
                let before = self.promise.clone();
                Applying::Done(self.carry_out(epoch, op, &before))
            }
            Check::Proceed(next) => Applying::Record(next, op),
        }
    }

    /// Adopts `next` (now durable) and carries out `op`.
    fn adopt(&mut self, next: Promise, epoch: Epoch, op: SlaveOp) -> Result<SlaveReply, WireError> {
        if next.epoch > self.promise.epoch {
            tracing::info!(old = %self.promise.epoch, new = %next.epoch, to = ?next.to, "promised a newer epoch");
            // Whoever was reading an inventory can no longer use it.
            self.inventory = None;
        }
        let before = std::mem::replace(&mut self.promise, next);
        self.carry_out(epoch, op, &before)
    }
}

enum Applying {
    Done(Result<SlaveReply, WireError>),
    /// Record this promise durably, then carry out the request.
    Record(Promise, SlaveOp),
}

/// Reads the recorded promise; none recorded is the empty promise.
fn read_promise(dir: &Path) -> std::io::Result<Promise> {
    for name in [PROMISE_FILE, OLD_EPOCH_FILE] {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                return Promise::decode(&text)
                    .map_err(|e| std::io::Error::other(format!("{}: not a promise: {e}", path.display())))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    Ok(Promise::default())
}

/// Records `promise` durably: a temporary file, fsync, rename, fsync of the directory.
fn write_promise(dir: &Path, promise: &Promise) -> std::io::Result<()> {
    let path = dir.join(PROMISE_FILE);
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(promise.encode().as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Actor for Store {
    type Context = Context<Self>;
}

/// Carry out `op` for the master connection `reply_to` (to master `from`) and answer it there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Apply {
    pub id: RequestId,
    pub from: NodeId,
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

    fn handle(&mut self, msg: Apply, ctx: &mut Context<Self>) {
        let Apply { id, from, epoch, op, reply_to } = msg;
        let (next, op) = match self.apply(&from, epoch, op) {
            Applying::Done(result) => return reply_to.do_send(Applied { id, result }),
            Applying::Record(next, op) => (next, op),
        };
        let Some(dir) = self.dir.clone() else {
            let result = self.adopt(next, epoch, op);
            return reply_to.do_send(Applied { id, result });
        };
        // A new promise is recorded before it is acted on (and before any other message), so a
        // slave that restarts still refuses what it promised to refuse.
        let durable = next.clone();
        let record = actix_rt::task::spawn_blocking(move || write_promise(&dir, &durable));
        ctx.wait(record.into_actor(self).map(move |written, act, _| {
            let result = match written {
                Ok(Ok(())) => act.adopt(next, epoch, op),
                Ok(Err(err)) => {
                    tracing::error!(%err, "cannot record a promise");
                    Err(WireError::internal(format!("cannot record the promise of epoch {}: {err}", next.epoch)))
                }
                Err(err) => {
                    Err(WireError::internal(format!("cannot record the promise of epoch {}: {err}", next.epoch)))
                }
            };
            reply_to.do_send(Applied { id, result });
        }));
    }
}

impl Handler<Describe> for Store {
    type Result = MessageResult<Describe>;

    fn handle(&mut self, _msg: Describe, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(StoreInfo {
            epoch: self.promise.epoch,
            max_version: self.map.max_version(),
            keys: self.map.len() as u64,
        })
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
        assert_eq!(map.write(key("k"), Version::new(1, 5), val("five"), None), Version::new(1, 5));
        assert_eq!(map.write(key("k"), Version::new(1, 3), val("three"), None), Version::new(1, 5));
        assert_eq!(map.read(&key("k")).unwrap().value, val("five"));
        assert_eq!(map.write(key("k"), Version::new(2, 1), val("new"), None), Version::new(2, 1));
        assert_eq!(map.read(&key("k")).unwrap().value, val("new"));
    }

    #[test]
    fn an_empty_value_is_not_a_tombstone_and_long_keys_fit() {
        let mut map = StoreMap::default();
        map.write(key("k"), Version::new(1, 1), Some(Value::new(Bytes::new()).unwrap()), None);
        assert_eq!(map.read(&key("k")).unwrap().value, Some(Value::new(Bytes::new()).unwrap()));
        let long = Key::new(vec![b'x'; net::limits::MAX_KEY_LEN]).unwrap();
        map.write(long.clone(), Version::new(1, 2), val("v"), None);
        assert_eq!(map.read(&long).unwrap().value, val("v"));
        assert_eq!(map.all().len(), 2);
    }

    #[test]
    fn a_tombstone_keeps_older_writes_out() {
        let mut map = StoreMap::default();
        map.write(key("k"), Version::new(1, 1), val("a"), None);
        map.write(key("k"), Version::new(1, 2), None, None);
        map.write(key("k"), Version::new(1, 1), val("a"), None);
        let entry = map.read(&key("k")).unwrap();
        assert_eq!(entry, Entry { version: Version::new(1, 2), value: None });
        assert_eq!(map.len(), 1);
    }

    /// What an inventory `since` a stamp lists.
    fn listed_since(map: &StoreMap, since: Version) -> Vec<String> {
        let packed = map.packed_keys(Some(since));
        let (mut keys, mut at) = (Vec::new(), 0);
        while at < packed.len() {
            let len = usize::from(u16::from_le_bytes([packed[at], packed[at + 1]]));
            keys.push(String::from_utf8(packed[at + 2..at + 2 + len].to_vec()).unwrap());
            at += 2 + len;
        }
        keys.sort();
        keys
    }

    #[test]
    fn an_inventory_since_a_stamp_lists_what_was_written_after_it_copies_included() {
        let mut map = StoreMap::default();
        map.write(key("old"), Version::new(1, 1), val("a"), None);
        map.write(key("copied"), Version::new(1, 2), val("b"), None);
        map.write(key("minted"), Version::new(2, 7), val("c"), None);
        assert_eq!(listed_since(&map, Version::new(2, 5)), ["minted"]);
        // The same version again, with a later stamp (a copy the master logged): listed now,
        // and the value and version are unchanged.
        assert_eq!(
            map.write(key("copied"), Version::new(1, 2), val("b"), Some(Version::new(2, 9))),
            Version::new(1, 2)
        );
        assert_eq!(listed_since(&map, Version::new(2, 5)), ["copied", "minted"]);
        assert_eq!(map.read(&key("copied")), Some(Entry { version: Version::new(1, 2), value: val("b") }));
        // A lower stamp never lowers it; a newer version takes its own.
        map.write(key("copied"), Version::new(1, 2), val("b"), Some(Version::new(1, 9)));
        assert_eq!(listed_since(&map, Version::new(2, 8)), ["copied"]);
        map.write(key("copied"), Version::new(1, 3), None, None);
        assert_eq!(listed_since(&map, Version::new(2, 5)), ["minted"]);
        assert_eq!(map.read(&key("copied")), Some(Entry { version: Version::new(1, 3), value: None }));
        assert_eq!(listed_since(&map, Version::ZERO).len(), 3);
    }

    /// Every key an inventory `since` a stamp pages out, page by page.
    fn inventory_since(store: &mut Store, since: Version) -> Vec<String> {
        let (mut keys, mut cursor, mut pages) = (Vec::new(), 0, 0);
        loop {
            pages += 1;
            let op = SlaveOp::Inventory { cursor, since: Some(since) };
            let Ok(SlaveReply::Inventory { entries, next }) = run(store, Epoch(1), op) else { panic!("a page") };
            keys.extend(entries.into_iter().map(|(k, _)| String::from_utf8(k.as_bytes().to_vec()).unwrap()));
            match next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        assert!(pages <= SHARDS + 1, "{pages} pages");
        keys.sort();
        keys
    }

    #[test]
    fn a_takeover_inventory_comes_from_the_latest_writes_or_a_scan_one_shard_a_page() {
        let mut store = Store::new();
        let total = RECENT_WRITES as u64 + 100;
        for i in 1..=total {
            store.map.write(key(&format!("k{i}")), Version::new(1, i), val("v"), None);
        }
        // The last ten writes are among the latest: found without a scan.
        let since = Version::new(1, total - 10);
        assert!(store.map.recent_keys(since).is_some());
        let expected: Vec<String> = {
            let mut keys: Vec<String> = (total - 9..=total).map(|i| format!("k{i}")).collect();
            keys.sort();
            keys
        };
        assert_eq!(inventory_since(&mut store, since), expected);
        // Writes older than the latest were forgotten: the map is scanned, with the same answer.
        let early = Version::new(1, 50);
        assert!(store.map.recent_keys(early).is_none(), "a forgotten write had a stamp above it");
        assert_eq!(inventory_since(&mut store, early).len() as u64, total - 50);
        // A copy restamped later is among the latest again.
        store.map.write(key("k7"), Version::new(1, 7), val("v"), Some(Version::new(2, 1)));
        assert_eq!(inventory_since(&mut store, Version::new(1, total)), ["k7"]);
    }

    fn master() -> NodeId {
        NodeId("master".to_string())
    }

    /// Applies `op` as the actor would, recording promises in memory.
    fn run(store: &mut Store, epoch: Epoch, op: SlaveOp) -> Result<SlaveReply, WireError> {
        match store.apply(&master(), epoch, op) {
            Applying::Done(result) => result,
            Applying::Record(next, op) => store.adopt(next, epoch, op),
        }
    }

    #[test]
    fn older_epochs_are_refused_and_newer_ones_adopted() {
        let mut store = Store::new();
        assert!(run(&mut store, Epoch(2), SlaveOp::Inventory { cursor: 0, since: None }).is_ok());
        let err = run(&mut store, Epoch(1), SlaveOp::Read { key: key("k") }).unwrap_err();
        assert_eq!(err, WireError::StaleEpoch { sent: Epoch(1), current: Epoch(2) });
        let write = SlaveOp::Write { key: key("k"), version: Version::new(1, 1), value: val("x"), stamp: None };
        assert_eq!(run(&mut store, Epoch(1), write.clone()).unwrap_err(), err);
        assert!(run(&mut store, Epoch(2), write).is_ok(), "copied versions keep their older epoch");
        assert_eq!(store.promise.served, Epoch(2), "a write in epoch 2 is recorded as served");
    }

    #[test]
    fn the_promise_survives_a_restart_and_old_epoch_files_are_read() {
        let dir = std::env::temp_dir().join(format!("kv-promise-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(Store::open(Some(dir.clone())).unwrap().promise, Promise::default());
        std::fs::write(dir.join(OLD_EPOCH_FILE), "5\n").unwrap();
        assert_eq!(Store::open(Some(dir.clone())).unwrap().promise.epoch, Epoch(5));
        let promise = Promise { epoch: Epoch(7), to: Some(master()), served: Epoch(6) };
        write_promise(&dir, &promise).unwrap();
        assert_eq!(Store::open(Some(dir)).unwrap().promise, promise);
    }

    #[test]
    fn an_inventory_pages_through_every_entry() {
        let mut store = Store::new();
        let big = Value::new(vec![b'x'; 100 * 1024]).unwrap();
        for i in 0..10 {
            store.map.write(key(&format!("k{i}")), Version::new(1, i), Some(big.clone()), None);
        }
        let (mut seen, mut cursor, mut pages) = (0, 0, 0);
        loop {
            let Ok(SlaveReply::Inventory { entries, next }) =
                run(&mut store, Epoch(1), SlaveOp::Inventory { cursor, since: None })
            else {
                panic!()
            };
            seen += entries.len();
            pages += 1;
            match next {
                Some(n) => cursor = n,
                None => break,
            }
        }
        assert_eq!(seen, 10);
        assert!(pages > 1, "pages are bounded in size");
    }

    #[test]
    fn a_cursor_from_an_inventory_started_again_is_refused() {
        let mut store = Store::new();
        let big = Value::new(vec![b'x'; 200 * 1024]).unwrap();
        for i in 0..4 {
            store.map.write(key(&format!("k{i}")), Version::new(1, i), Some(big.clone()), None);
        }
        let page = |store: &mut Store, cursor| match run(store, Epoch(1), SlaveOp::Inventory { cursor, since: None }) {
            Ok(SlaveReply::Inventory { entries, next }) => Ok((entries.len(), next)),
            Ok(other) => panic!("{other:?}"),
            Err(err) => Err(err),
        };
        let (_, first) = page(&mut store, 0).unwrap();
        let first = first.expect("more than one page");
        let (_, second) = page(&mut store, 0).unwrap();
        assert_ne!(Some(first), second, "a new inventory has new cursors");
        assert!(matches!(page(&mut store, first), Err(WireError::BadRequest { .. })));
        assert!(page(&mut store, second.unwrap()).is_ok(), "the newest inventory goes on");
        assert!(matches!(page(&mut store, u64::MAX), Err(WireError::BadRequest { .. })), "a made-up cursor");
        // A newer promise ends an inventory in progress.
        let (_, third) = page(&mut store, 0).unwrap();
        assert!(run(&mut store, Epoch(2), SlaveOp::Ping).is_ok());
        assert!(run(&mut store, Epoch(2), SlaveOp::Promise).is_ok());
        assert!(matches!(
            run(&mut store, Epoch(2), SlaveOp::Inventory { cursor: third.unwrap(), since: None }),
            Err(WireError::BadRequest { .. })
        ));
    }

    #[test]
    fn a_version_from_a_later_epoch_than_its_request_is_refused() {
        let mut store = Store::new();
        let write = SlaveOp::Write { key: key("k"), version: Version::new(5, 1), value: val("x"), stamp: None };
        assert!(matches!(run(&mut store, Epoch(1), write), Err(WireError::BadRequest { .. })));
    }
}
