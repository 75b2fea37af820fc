//! Snapshots: the whole state at one LSN, so the log before it can be dropped.
//!
//! A snapshot is written to `<name>.tmp`, synced, renamed into place, and the directory synced;
//! so a file with the final name is always complete, and one that cannot be read is damage.
//! Its records: a header, one entry per key, and an end marker that repeats the count.

use std::io::{BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use net::{Entry, Epoch, Key, Lsn, MemberRecord, NodeId, Value, Version};

use super::dir::DataDir;
use super::format;
use crate::error::Error;

#[derive(Debug, Serialize, Deserialize)]
enum SnapshotRecord {
    Header {
        lsn: Lsn,
        epoch: Epoch,
        keys: u64,
        /// The node granted `epoch` (absent in snapshots written before epochs were granted).
        #[serde(default)]
        master: Option<NodeId>,
        /// The recorded slave membership.
        #[serde(default)]
        members: Vec<MemberRecord>,
        /// The highest stamp the snapshot covers (see `Recovered::stamp`).
        #[serde(default)]
        stamp: Version,
    },
    Entry {
        key: Key,
        version: Version,
        value: Option<Value>,
    },
    End {
        keys: u64,
    },
}

/// What a snapshot holds.
#[derive(Debug, Default, PartialEq)]
pub struct Snapshot {
    /// The last log record whose effect it includes.
    pub lsn: Lsn,
    /// The newest epoch granted, and to whom.
    pub epoch: Epoch,
    pub master: Option<NodeId>,
    /// The recorded slave membership at `lsn`.
    pub members: Vec<MemberRecord>,
    /// The highest stamp it covers.
    pub stamp: Version,
    pub entries: Vec<(Key, Entry)>,
}

/// Writes `snapshot` durably into `dir` and returns its path.
pub fn write(dir: &DataDir, snapshot: &Snapshot) -> Result<std::path::PathBuf, Error> {
    let keys = snapshot.entries.len() as u64;
    write_entries(dir, snapshot, keys, snapshot.entries.iter().cloned())
}

/// Writes a snapshot with `snapshot`'s header and the `keys` entries `entries` yields (its own
/// `entries` are not written), one at a time: a snapshot of millions of keys is never held
/// whole in memory. Fails if `entries` does not yield `keys` entries.
pub fn write_entries(
    dir: &DataDir,
    snapshot: &Snapshot,
    keys: u64,
    entries: impl Iterator<Item = (Key, Entry)>,
) -> Result<std::path::PathBuf, Error> {
    let path = dir.snapshot_path(snapshot.lsn);
    let tmp = path.with_extension("tmp");
    let io = |e| Error::io(format!("cannot write {}", tmp.display()), e);
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut buf = Vec::with_capacity(64 * 1024);
    let header = SnapshotRecord::Header {
        lsn: snapshot.lsn,
        epoch: snapshot.epoch,
        keys,
        master: snapshot.master.clone(),
        members: snapshot.members.clone(),
        stamp: snapshot.stamp,
    };
    format::encode(&header, &mut buf)?;
    let mut written = 0u64;
    for (key, entry) in entries {
        written += 1;
        let record = SnapshotRecord::Entry { key, version: entry.version, value: entry.value };
        format::encode(&record, &mut buf)?;
        if buf.len() >= 60 * 1024 {
            out.write_all(&buf).map_err(io)?;
            buf.clear();
        }
    }
    if written != keys {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(
            format!("cannot write {}", tmp.display()),
            std::io::Error::other(format!("{written} entries, not the {keys} announced")),
        ));
    }
    format::encode(&SnapshotRecord::End { keys }, &mut buf)?;
    out.write_all(&buf).map_err(io)?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(format!("cannot rename {}", tmp.display()), e))?;
    dir.sync()?;
    Ok(path)
}

/// Reads a snapshot; any damage is an error naming the file and offset.
pub fn read(path: &Path) -> Result<Snapshot, Error> {
    let data = std::fs::read(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let corrupt = |offset: u64, detail: &str| Error::Corrupt {
        file: path.display().to_string(),
        offset,
        detail: detail.to_string(),
    };
    let mut snapshot = Snapshot::default();
    let (mut header, mut end) = (None, None);
    format::scan(path, &data, false, |offset, record: SnapshotRecord| {
        if end.is_some() {
            return Err(corrupt(offset, "records after the end marker"));
        }
        match record {
            SnapshotRecord::Header { lsn, epoch, keys, master, members, stamp } if header.is_none() => {
                snapshot.lsn = lsn;
                snapshot.stamp = stamp;
                snapshot.epoch = epoch;
                snapshot.master = master;
                snapshot.members = members;
                snapshot.entries.reserve(keys.min(1 << 24) as usize);
                header = Some(keys);
            }
            SnapshotRecord::Header { .. } => return Err(corrupt(offset, "a second header")),
            SnapshotRecord::Entry { .. } | SnapshotRecord::End { .. } if header.is_none() => {
                return Err(corrupt(offset, "no header"))
            }
            SnapshotRecord::Entry { key, version, value } => snapshot.entries.push((key, Entry { version, value })),
            SnapshotRecord::End { keys } => end = Some((offset, keys)),
        }
        Ok(())
    })?;
    match (header, end) {
        (Some(expected), Some((offset, keys))) if keys != expected || keys != snapshot.entries.len() as u64 => {
            Err(corrupt(offset, "the key count does not match"))
        }
        (Some(_), Some(_)) => Ok(snapshot),
        _ => Err(corrupt(data.len() as u64, "the snapshot is incomplete")),
    }
}
