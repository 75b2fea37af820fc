//! Recovery on hand-made data directories.

use super::*;
use crate::wal::format;
use net::Value;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kv-recovery-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn write(lsn: u64, seq: u64, key: &str, value: Option<&str>) -> LogRecord {
    LogRecord::Write {
        lsn: Lsn(lsn),
        version: Version::new(1, seq),
        key: Key::new(key.to_string()).unwrap(),
        value: value.map(|v| Value::new(v.to_string()).unwrap()),
        stamp: None,
    }
}

fn segment(records: &[LogRecord]) -> Vec<u8> {
    let mut buf = Vec::new();
    for record in records {
        format::encode(record, &mut buf).unwrap();
    }
    buf
}

fn value_of(state: &Recovered, key: &str) -> Option<Option<String>> {
    let entry = state.entries.entry(&Key::new(key.to_string()).unwrap())?;
    Some(entry.value.as_ref().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()))
}

#[test]
fn replay_rebuilds_the_newest_entry_of_every_key() {
    let path = temp_dir("replay");
    let dir = DataDir::open(&path).unwrap();
    let records = [
        LogRecord::Epoch { lsn: Lsn(1), epoch: Epoch(1), master: None },
        write(2, 1, "a", Some("1")),
        write(3, 2, "b", Some("2")),
        write(4, 3, "a", None),
    ];
    std::fs::write(dir.segment_path(Lsn(1)), segment(&records)).unwrap();
    let state = recover(&dir).unwrap();
    assert_eq!(value_of(&state, "a"), Some(None), "a delete is kept as a tombstone");
    assert_eq!(value_of(&state, "b"), Some(Some("2".into())));
    assert_eq!((state.epoch, state.next_lsn, state.max_version), (Epoch(1), Lsn(5), Version::new(1, 3)));
}

#[test]
fn snapshot_plus_replay_equals_the_state_before() {
    let path = temp_dir("snapshot");
    let dir = DataDir::open(&path).unwrap();
    let all = [write(1, 1, "a", Some("1")), write(2, 2, "b", Some("2")), write(3, 3, "a", Some("3"))];
    std::fs::write(dir.segment_path(Lsn(1)), segment(&all)).unwrap();
    let before = recover(&dir).unwrap();

    // Snapshot at LSN 2, then a new segment from LSN 3, and the old segment gone.
    let mut entries: Vec<(Key, Entry)> = Vec::new();
    let mut upto_two = Recovered::default();
    for record in &all[..2] {
        if let LogRecord::Write { version, key, value, .. } = record.clone() {
            upto_two.apply(key, Entry { version, value });
        }
    }
    entries.extend(upto_two.entries.entries());
    snapshot::write(&dir, &snapshot::Snapshot { lsn: Lsn(2), epoch: Epoch(1), entries, ..Default::default() }).unwrap();
    std::fs::remove_file(dir.segment_path(Lsn(1))).unwrap();
    std::fs::write(dir.segment_path(Lsn(3)), segment(&all[2..])).unwrap();

    let after = recover(&dir).unwrap();
    assert_eq!(after.entries, before.entries);
    assert_eq!(after.next_lsn, before.next_lsn);
}

#[test]
fn the_highest_stamp_survives_snapshot_and_replay_and_a_short_stream_writes_no_snapshot() {
    let path = temp_dir("stamp");
    let dir = DataDir::open(&path).unwrap();
    let header = snapshot::Snapshot { lsn: Lsn(2), epoch: Epoch(2), stamp: Version::new(2, 9), ..Default::default() };
    let one = (Key::new("a".to_string()).unwrap(), Entry { version: Version::new(1, 1), value: None });
    // Fewer entries than the header announced: an error, and no file with the final name.
    assert!(snapshot::write_entries(&dir, &header, 2, std::iter::once(one.clone())).is_err());
    assert!(dir.snapshots().unwrap().is_empty());
    snapshot::write_entries(&dir, &header, 1, std::iter::once(one)).unwrap();
    assert_eq!(recover(&dir).unwrap().stamp, Version::new(2, 9), "the snapshot's stamp");
    // A copy record after it carries a higher stamp of its own; a minted write's is its version.
    let mut copy = write(3, 4, "b", Some("copied"));
    if let LogRecord::Write { stamp, .. } = &mut copy {
        *stamp = Some(Version::new(2, 12));
    }
    std::fs::write(dir.segment_path(Lsn(3)), segment(&[copy, write(4, 5, "c", Some("minted"))])).unwrap();
    assert_eq!(recover(&dir).unwrap().stamp, Version::new(2, 12));
}

#[test]
fn a_torn_tail_is_cut_and_everything_before_it_kept() {
    let path = temp_dir("torn");
    let dir = DataDir::open(&path).unwrap();
    let data = segment(&[write(1, 1, "a", Some("1")), write(2, 2, "b", Some("2"))]);
    let file = dir.segment_path(Lsn(1));
    std::fs::write(&file, &data[..data.len() - 3]).unwrap();
    let state = recover(&dir).unwrap();
    assert_eq!(value_of(&state, "a"), Some(Some("1".into())));
    assert_eq!(value_of(&state, "b"), None);
    assert_eq!(state.next_lsn, Lsn(2));
    let first_len = segment(&[write(1, 1, "a", Some("1"))]).len() as u64;
    assert_eq!(std::fs::metadata(&file).unwrap().len(), first_len, "the partial record is gone");
}

#[test]
fn damage_in_the_middle_stops_recovery_and_changes_nothing() {
    let path = temp_dir("middle");
    let dir = DataDir::open(&path).unwrap();
    let mut data = segment(&[write(1, 1, "a", Some("1")), write(2, 2, "b", Some("2")), write(3, 3, "c", Some("3"))]);
    let second = segment(&[write(1, 1, "a", Some("1"))]).len();
    data[second + format::HEADER_LEN + 2] ^= 0x55;
    let file = dir.segment_path(Lsn(1));
    std::fs::write(&file, &data).unwrap();
    match recover(&dir) {
        Err(Error::Corrupt { file: named, offset, .. }) => {
            assert!(named.ends_with("wal-00000000000000000001.log"), "{named}");
            assert_eq!(offset, second as u64);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert_eq!(std::fs::read(&file).unwrap(), data, "the file is untouched");
}

#[test]
fn a_gap_in_the_lsns_is_damage() {
    let path = temp_dir("gap");
    let dir = DataDir::open(&path).unwrap();
    std::fs::write(dir.segment_path(Lsn(1)), segment(&[write(1, 1, "a", Some("1")), write(3, 2, "b", None)])).unwrap();
    assert!(matches!(recover(&dir), Err(Error::Corrupt { .. })));
}

#[test]
fn an_unreadable_snapshot_stops_recovery() {
    let path = temp_dir("bad-snapshot");
    let dir = DataDir::open(&path).unwrap();
    let snap = dir.snapshot_path(Lsn(7));
    std::fs::write(&snap, b"not a snapshot at all").unwrap();
    match recover(&dir) {
        Err(Error::Corrupt { file, .. }) => assert!(file.ends_with(".snap"), "{file}"),
        other => panic!("expected corruption, got {other:?}"),
    }
}
