//! The master's key map, packed: one allocation per key holding its replica set, its key and
//! its value, next to the entry's version.
//!
//! A `HashMap<Key, State>` with a `Vec` of named replicas and a `Bytes` value costs about
//! 700 bytes a key at a million keys (a 96-byte table slot in a table twice the key count,
//! a vector and three node-name strings per key, and values that keep whole receive buffers
//! alive). Here a table slot is 32 bytes, replicas are 10 bytes each (an index into a table of
//! the slaves' names and the incarnation), and the value is copied out of the frame it came
//! in, so the master's map costs about what a slave's does plus the replica sets.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use net::{Entry, Incarnation, Key, NodeId, Value, Version};

use crate::sharded::{Sharded, SHARDS};

/// A replica-set member: a slave, and the incarnation in which it received the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub node: NodeId,
    pub incarnation: Incarnation,
}

/// One key's state, unpacked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyState {
    /// The replica set; empty for a key known only from the log.
    pub replicas: Vec<Replica>,
    /// The newest entry this master minted, copied or recovered.
    pub entry: Option<Entry>,
}

/// `[key length: u16][flags: u8][members: u8][members × (slave: u16, incarnation: u64)][key][value]`
///
/// The bytes are never changed once packed, and are shared: a shard copied because a snapshot
/// still holds it copies pointers, not keys and values.
#[derive(Clone)]
struct Packed {
    version: Version,
    data: Arc<[u8]>,
}

const HEADER: usize = 4;
const MEMBER: usize = 10;
const HAS_ENTRY: u8 = 1;
const TOMBSTONE: u8 = 2;

impl Packed {
    fn key_len(&self) -> usize {
        usize::from(u16::from_le_bytes([self.data[0], self.data[1]]))
    }

    fn flags(&self) -> u8 {
        self.data[2]
    }

    fn key_entry(&self) -> Option<(Key, Entry)> {
        let entry = self.entry()?;
        Some((self.owned_key(), entry))
    }

    fn members(&self) -> usize {
        usize::from(self.data[3])
    }

    fn key_at(&self) -> usize {
        HEADER + MEMBER * self.members()
    }

    fn key(&self) -> &[u8] {
        let at = self.key_at();
        &self.data[at..at + self.key_len()]
    }

    fn owned_key(&self) -> Key {
        Key::new(Bytes::copy_from_slice(self.key())).expect("a key was checked when it arrived")
    }

    fn value(&self) -> &[u8] {
        &self.data[self.key_at() + self.key_len()..]
    }

    fn member(&self, i: usize) -> (u16, Incarnation) {
        let at = HEADER + MEMBER * i;
        let d = &self.data[at..at + MEMBER];
        let node = u16::from_le_bytes([d[0], d[1]]);
        let mut inc = [0u8; 8];
        inc.copy_from_slice(&d[2..]);
        (node, Incarnation(u64::from_le_bytes(inc)))
    }

    fn entry(&self) -> Option<Entry> {
        if self.flags() & HAS_ENTRY == 0 {
            return None;
        }
        let value = (self.flags() & TOMBSTONE == 0)
            .then(|| Value::new(Bytes::copy_from_slice(self.value())).expect("a value was checked when it arrived"));
        Some(Entry { version: self.version, value })
    }

    fn has_value(&self) -> bool {
        self.flags() & HAS_ENTRY != 0 && self.flags() & TOMBSTONE == 0
    }
}

impl PartialEq for Packed {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Packed {}

impl Hash for Packed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl Borrow<[u8]> for Packed {
    fn borrow(&self) -> &[u8] {
        self.key()
    }
}

/// A census of the map under way (see [`KeyTable::count_shards`]).
#[derive(Debug, Clone, Default)]
pub struct CensusPass {
    next_shard: usize,
    under_replicated: u64,
    /// Keys placed on each slave, by its index in the table.
    placed: Vec<u64>,
}

/// What [`KeyTable::census`] counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Census {
    pub values: u64,
    pub under_replicated: u64,
    pub placed: BTreeMap<NodeId, u64>,
}

/// The key map.
#[derive(Default, Clone)]
pub struct KeyTable {
    set: Sharded<Packed>,
    nodes: Vec<NodeId>,
    index: HashMap<NodeId, u16>,
    /// Keys whose entry holds a value (not a tombstone), kept as entries change.
    values: u64,
    /// Where an entry is packed before it is copied into its own allocation of the exact size.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyTable").field("keys", &self.len()).finish()
    }
}

/// Equal when every key has the same entry and replica set (for tests).
impl PartialEq for KeyTable {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.set.iter().all(|p| {
                let key = p.owned_key();
                self.get(&key) == other.get(&key)
            })
    }
}

impl KeyTable {
    /// Keeps `entry` for `key` if the table has no newer one (a key known only from the log:
    /// no replica set yet).
    pub fn apply_newest(&mut self, key: &Key, entry: Entry) {
        if self.version(key).is_some_and(|v| v >= entry.version) {
            return;
        }
        let replicas = self.members(key);
        let packed = self.pack(key.as_bytes(), &replicas, Some(&entry));
        self.store(packed);
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    pub fn contains(&self, key: &Key) -> bool {
        self.set.contains(key.as_bytes())
    }

    /// Whether the key has a replica set (`None`: the map lacks the key).
    pub fn placed(&self, key: &Key) -> Option<bool> {
        self.set.get(key.as_bytes()).map(|p| p.members() > 0)
    }

    /// The version of the key's entry, if it has one.
    pub fn version(&self, key: &Key) -> Option<Version> {
        self.set.get(key.as_bytes()).filter(|p| p.flags() & HAS_ENTRY != 0).map(|p| p.version)
    }

    /// Whether the key's entry holds a value (not a tombstone).
    pub fn has_value(&self, key: &Key) -> bool {
        self.set.get(key.as_bytes()).is_some_and(Packed::has_value)
    }

    /// The key's entry, value copied out.
    pub fn entry(&self, key: &Key) -> Option<Entry> {
        self.set.get(key.as_bytes()).and_then(Packed::entry)
    }

    /// The key's replica set.
    pub fn members(&self, key: &Key) -> Vec<Replica> {
        self.set.get(key.as_bytes()).map(|p| self.members_of(p)).unwrap_or_default()
    }

    fn members_of(&self, packed: &Packed) -> Vec<Replica> {
        (0..packed.members())
            .map(|i| {
                let (node, incarnation) = packed.member(i);
                Replica { node: self.nodes[usize::from(node)].clone(), incarnation }
            })
            .collect()
    }

    pub fn get(&self, key: &Key) -> Option<KeyState> {
        self.set.get(key.as_bytes()).map(|p| KeyState { replicas: self.members_of(p), entry: p.entry() })
    }

    /// Inserts or replaces the key's state.
    pub fn put(&mut self, key: &Key, state: &KeyState) {
        let packed = self.pack(key.as_bytes(), &state.replicas, state.entry.as_ref());
        self.store(packed);
    }

    /// Replaces the key's entry, keeping its replica set; a key the map lacks is left alone.
    pub fn set_entry(&mut self, key: &Key, entry: Option<&Entry>) {
        let Some(replicas) = self.set.get(key.as_bytes()).map(|p| self.members_of(p)) else { return };
        let packed = self.pack(key.as_bytes(), &replicas, entry);
        self.store(packed);
    }

    /// Replaces the key's replica set, keeping its entry; a key the map lacks is left alone.
    pub fn set_members(&mut self, key: &Key, replicas: &[Replica]) {
        let Some(entry) = self.set.get(key.as_bytes()).map(Packed::entry) else { return };
        let packed = self.pack(key.as_bytes(), replicas, entry.as_ref());
        self.store(packed);
    }

    pub fn remove(&mut self, key: &Key) {
        if self.has_value(key) {
            self.values -= 1;
        }
        self.set.remove(key.as_bytes());
    }

    /// Keys whose entry holds a value (what `DBSIZE` counts).
    pub fn values(&self) -> u64 {
        self.values
    }

    fn store(&mut self, packed: Packed) {
        let adds = u64::from(packed.has_value());
        let had = self.set.replace(packed).is_some_and(|old| old.has_value());
        self.values = self.values + adds - u64::from(had);
    }

    /// Every key, copied out.
    pub fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.set.iter().map(|p| p.owned_key())
    }

    /// How many keys have an entry: what [`KeyTable::entries`] yields.
    pub fn count_entries(&self) -> u64 {
        self.set.iter().filter(|p| p.flags() & HAS_ENTRY != 0).count() as u64
    }

    /// The keys of one shard of the table (`shard < SHARDS`), sorted: a scan of the whole map
    /// lists one shard at a time.
    pub fn shard_keys(&self, shard: usize) -> Vec<Key> {
        let mut keys: Vec<Key> = self.set.shard(shard).map(|p| p.owned_key()).collect();
        keys.sort_unstable();
        keys
    }

    /// Every key's entry, for a snapshot.
    pub fn entries(&self) -> impl Iterator<Item = (Key, Entry)> + '_ {
        self.set.iter().filter_map(Packed::key_entry)
    }

    /// The entries of one shard of the table (`shard < SHARDS`), for a snapshot sent a few
    /// shards at a time.
    pub fn shard_entries(&self, shard: usize) -> impl Iterator<Item = (Key, Entry)> + '_ {
        self.set.shard(shard).filter_map(Packed::key_entry)
    }

    /// Counts for `status` in one pass without unpacking: keys holding a value, keys with
    /// fewer than `target` members on a live slave in their recorded incarnation (`live`
    /// gives a slave's incarnation if it is live), and keys placed on each slave.
    pub fn census(&self, live: impl Fn(&NodeId) -> Option<Incarnation>, target: usize) -> Census {
        let mut pass = CensusPass::default();
        while !self.count_shards(&mut pass, SHARDS, &live, target) {}
        self.census_of(pass)
    }

    /// Counts up to `shards` more shards of the map into `pass` (a census a few shards at a
    /// time, between other work); true once every shard is counted.
    pub fn count_shards(
        &self,
        pass: &mut CensusPass,
        shards: usize,
        live: impl Fn(&NodeId) -> Option<Incarnation>,
        target: usize,
    ) -> bool {
        let live: Vec<Option<Incarnation>> = self.nodes.iter().map(live).collect();
        pass.placed.resize(self.nodes.len().max(pass.placed.len()), 0);
        let last = (pass.next_shard + shards).min(SHARDS);
        for shard in pass.next_shard..last {
            for packed in self.set.shard(shard) {
                let mut good = 0;
                for i in 0..packed.members() {
                    let (node, incarnation) = packed.member(i);
                    let node = usize::from(node);
                    pass.placed[node] += 1;
                    good += usize::from(live.get(node).copied().flatten() == Some(incarnation));
                }
                pass.under_replicated += u64::from(good < target);
            }
        }
        pass.next_shard = last;
        last == SHARDS
    }

    /// What a finished `pass` counted; the count of values is the table's, always current.
    pub fn census_of(&self, pass: CensusPass) -> Census {
        let placed = self.nodes.iter().cloned().zip(pass.placed).filter(|(_, n)| *n > 0).collect();
        Census { values: self.values, under_replicated: pass.under_replicated, placed }
    }

    fn node_index(&mut self, node: &NodeId) -> u16 {
        if let Some(&i) = self.index.get(node) {
            return i;
        }
        let i = u16::try_from(self.nodes.len()).expect("fewer than 65,536 slaves");
        self.nodes.push(node.clone());
        self.index.insert(node.clone(), i);
        i
    }

    fn pack(&mut self, key: &[u8], replicas: &[Replica], entry: Option<&Entry>) -> Packed {
        let value = entry.and_then(|e| e.value.as_ref()).map_or(&[][..], Value::as_bytes);
        let members = replicas.len().min(usize::from(u8::MAX));
        let mut data = std::mem::take(&mut self.scratch);
        data.clear();
        // Keys are at most MAX_KEY_LEN (1024) bytes, which fits in a u16.
        data.extend_from_slice(&(key.len() as u16).to_le_bytes());
        let flags = match entry {
            None => 0,
            Some(e) if e.value.is_none() => HAS_ENTRY | TOMBSTONE,
            Some(_) => HAS_ENTRY,
        };
        data.push(flags);
        data.push(members as u8);
        for member in &replicas[..members] {
            let node = self.node_index(&member.node);
            data.extend_from_slice(&node.to_le_bytes());
            data.extend_from_slice(&member.incarnation.0.to_le_bytes());
        }
        data.extend_from_slice(key);
        data.extend_from_slice(value);
        let packed = Packed { version: entry.map(|e| e.version).unwrap_or_default(), data: Arc::from(&data[..]) };
        self.scratch = data;
        packed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Key {
        Key::new(s.to_string()).unwrap()
    }

    fn replica(n: &str, i: u64) -> Replica {
        Replica { node: NodeId(n.to_string()), incarnation: Incarnation(i) }
    }

    #[test]
    fn a_state_reads_back_as_it_was_put() {
        let mut table = KeyTable::default();
        let value = Entry { version: Version::new(3, 7), value: Some(Value::new("hello").unwrap()) };
        let state = KeyState { replicas: vec![replica("s1", 5), replica("s2", 0)], entry: Some(value.clone()) };
        table.put(&key("k"), &state);
        table.put(
            &key("gone"),
            &KeyState { replicas: vec![], entry: Some(Entry { version: Version::new(1, 1), value: None }) },
        );
        table.put(&key("bare"), &KeyState::default());
        assert_eq!(table.get(&key("k")), Some(state.clone()));
        assert_eq!(table.version(&key("k")), Some(Version::new(3, 7)));
        assert!(table.has_value(&key("k")));
        assert!(!table.has_value(&key("gone")));
        assert_eq!(table.entry(&key("gone")).map(|e| e.value), Some(None));
        assert_eq!(table.placed(&key("gone")), Some(false));
        assert_eq!(table.get(&key("bare")), Some(KeyState::default()));
        assert_eq!(table.version(&key("bare")), None);
        assert_eq!(table.get(&key("other")), None);
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn entry_and_members_change_apart() {
        let mut table = KeyTable::default();
        let first = Entry { version: Version::new(1, 1), value: Some(Value::new("a").unwrap()) };
        table.put(&key("k"), &KeyState { replicas: vec![replica("s1", 1)], entry: Some(first) });
        let second = Entry { version: Version::new(1, 2), value: Some(Value::new("bb").unwrap()) };
        table.set_entry(&key("k"), Some(&second));
        assert_eq!(table.members(&key("k")), vec![replica("s1", 1)]);
        table.set_members(&key("k"), &[replica("s2", 9), replica("s3", 4)]);
        assert_eq!(
            table.get(&key("k")),
            Some(KeyState { replicas: vec![replica("s2", 9), replica("s3", 4)], entry: Some(second) })
        );
        table.set_entry(&key("missing"), None);
        assert!(!table.contains(&key("missing")));
        table.remove(&key("k"));
        assert!(table.is_empty());
    }

    #[test]
    fn a_census_counted_a_few_shards_a_step_equals_one_pass() {
        let mut table = KeyTable::default();
        let live = |n: &NodeId| (n.0 != "s3").then_some(Incarnation(1));
        for i in 0..5000 {
            let replicas = match i % 3 {
                0 => vec![replica("s1", 1), replica("s2", 1)],
                1 => vec![replica("s1", 1), replica("s3", 1)],
                _ => Vec::new(),
            };
            let entry = Entry { version: Version::new(1, i), value: Some(Value::new("v").unwrap()) };
            table.put(&key(&format!("k{i}")), &KeyState { replicas, entry: Some(entry) });
        }
        let mut pass = CensusPass::default();
        let mut steps = 0;
        while !table.count_shards(&mut pass, 16, live, 2) {
            steps += 1;
        }
        assert_eq!(steps + 1, SHARDS / 16, "every step counts 16 shards");
        assert_eq!(table.census_of(pass), table.census(live, 2));
        assert_eq!(table.census(live, 2).under_replicated, 3333, "sets with s3 or no members");
    }

    #[test]
    fn a_census_counts_values_short_sets_and_placements_and_every_shard_once() {
        let mut table = KeyTable::default();
        let value =
            |v: &str| Some(Entry { version: Version::new(1, 1), value: Some(Value::new(v.to_string()).unwrap()) });
        // Live: s1 in incarnation 1 and s2 in 2; s3 is away.
        let live = |n: &NodeId| match n.0.as_str() {
            "s1" => Some(Incarnation(1)),
            "s2" => Some(Incarnation(2)),
            _ => None,
        };
        let full = vec![replica("s1", 1), replica("s2", 2)];
        table.put(&key("whole"), &KeyState { replicas: full.clone(), entry: value("a") });
        // s2 restarted since it received this one: not a good replica until refilled.
        table.put(&key("stale"), &KeyState { replicas: vec![replica("s1", 1), replica("s2", 1)], entry: value("b") });
        table.put(&key("away"), &KeyState { replicas: vec![replica("s1", 1), replica("s3", 1)], entry: value("c") });
        let tombstone = Some(Entry { version: Version::new(1, 2), value: None });
        table.put(&key("deleted"), &KeyState { replicas: full, entry: tombstone });
        table.put(&key("unplaced"), &KeyState { replicas: Vec::new(), entry: value("d") });
        let census = table.census(live, 2);
        assert_eq!(census.values, 4, "the tombstone holds no value");
        assert_eq!(table.values(), 4, "the running count agrees");
        assert_eq!(census.under_replicated, 3, "stale, away and unplaced");
        let placed: Vec<(&str, u64)> = census.placed.iter().map(|(n, c)| (n.0.as_str(), *c)).collect();
        assert_eq!(placed, [("s1", 4), ("s2", 3), ("s3", 1)]);
        assert_eq!(table.count_entries(), 5);
        let mut listed: Vec<Key> = (0..crate::sharded::SHARDS).flat_map(|i| table.shard_keys(i)).collect();
        listed.sort();
        assert_eq!(listed, [key("away"), key("deleted"), key("stale"), key("unplaced"), key("whole")]);
        table.set_entry(&key("whole"), None);
        table.remove(&key("stale"));
        table.put(&key("deleted"), &KeyState { replicas: Vec::new(), entry: value("again") });
        assert_eq!((table.values(), table.census(live, 2).values), (3, 3));
    }
}
