//! Startup: load the newest snapshot, replay the log after it, cut a torn tail.
//!
//! Recovery reads everything before it changes anything: damage anywhere but the tail of the
//! newest log file stops startup with an error naming the file and offset, and leaves every
//! file as it was. Only after the whole log has been read is a torn tail cut off.

use std::path::PathBuf;

use net::{Entry, Epoch, Key, LogRecord, Lsn, NodeId, Version};

use super::dir::DataDir;
use super::format::{self, TornTail};
use super::snapshot;
use crate::error::Error;
use crate::master::keytable::KeyTable;
use crate::role::membership::Membership;
use crate::role::LogFacts;

/// The state found in a data directory.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The newest entry of every key.
    pub entries: KeyTable,
    /// The highest epoch recorded.
    pub epoch: Epoch,
    /// The newest `Epoch` record: its epoch and the node it was granted to.
    pub newest_grant: Option<(Epoch, Option<NodeId>)>,
    /// The recorded slave membership.
    pub members: Membership,
    /// The highest version of any entry.
    pub max_version: Version,
    /// The highest stamp of any write record (and of the snapshot): a slave holds nothing this
    /// log lacks that it was written with a stamp at or below it (see `Coordinator::stamp`).
    pub stamp: Version,
    /// The LSN the next record gets.
    pub next_lsn: Lsn,
    /// The segment to keep appending to: its first LSN and its valid length.
    pub tail: Option<(Lsn, PathBuf, u64)>,
    /// Log bytes after the snapshot.
    pub log_bytes: u64,
}

impl Recovered {
    /// What the role core needs to know of this log.
    pub fn facts(&self) -> LogFacts {
        LogFacts {
            highest_epoch: self.epoch.max(self.max_version.epoch),
            newest_grant: self.newest_grant.clone(),
            last_lsn: Lsn(self.next_lsn.0.saturating_sub(1)),
            members: self.members.clone(),
        }
    }

    /// Applies a record that is not a write.
    pub fn apply_record(&mut self, record: LogRecord) {
        if let Some(stamp) = record.stamp() {
            self.stamp = self.stamp.max(stamp);
        }
        match record {
            LogRecord::Write { version, key, value, .. } => self.apply(key, Entry { version, value }),
            LogRecord::Epoch { epoch, master, .. } => {
                self.epoch = self.epoch.max(epoch);
                self.newest_grant = Some((epoch, master));
            }
            LogRecord::Member { node, incarnation, active, .. } => self.members.apply(node, incarnation, active),
        }
    }

    fn apply(&mut self, key: Key, entry: Entry) {
        self.max_version = self.max_version.max(entry.version);
        self.entries.apply_newest(&key, entry);
    }
}

pub fn recover(dir: &DataDir) -> Result<Recovered, Error> {
    let mut state = Recovered { next_lsn: Lsn(1), ..Recovered::default() };
    if let Some((_, path)) = dir.snapshots()?.pop() {
        let snap = snapshot::read(&path)?;
        tracing::info!(file = %path.display(), lsn = snap.lsn.0, keys = snap.entries.len(), "loaded snapshot");
        state.epoch = snap.epoch;
        state.newest_grant = Some((snap.epoch, snap.master));
        state.members = Membership::from_records(snap.members);
        state.stamp = snap.stamp;
        state.next_lsn = Lsn(snap.lsn.0 + 1);
        for (key, entry) in snap.entries {
            state.apply(key, entry);
        }
    }
    let after_snapshot = state.next_lsn;
    let segments = dir.segments()?;
    let mut torn: Option<(PathBuf, TornTail)> = None;
    for (i, (first, path)) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        let data = std::fs::read(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let tail = format::scan(path, &data, last, |offset, record: LogRecord| {
            let lsn = record.lsn();
            if lsn < after_snapshot {
                return Ok(());
            }
            if lsn != state.next_lsn {
                return Err(Error::Corrupt {
                    file: path.display().to_string(),
                    offset,
                    detail: format!("expected LSN {}, found {}", state.next_lsn.0, lsn.0),
                });
            }
            state.next_lsn = Lsn(lsn.0 + 1);
            state.apply_record(record);
            Ok(())
        })?;
        let valid = tail.map_or(data.len() as u64, |t| t.offset);
        if *first >= after_snapshot || last {
            state.log_bytes += valid;
        }
        if last {
            state.tail = Some((*first, path.clone(), valid));
        }
        if let Some(tail) = tail {
            torn = Some((path.clone(), tail));
        }
    }
    if let Some((path, tail)) = torn {
        tracing::warn!(
            file = %path.display(),
            offset = tail.offset,
            bytes = tail.bytes,
            "cutting off a torn record at the end of the log (a write interrupted by a crash, never acknowledged)"
        );
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        file.set_len(tail.offset)
            .and_then(|_| file.sync_all())
            .map_err(|e| Error::io(format!("cannot truncate {}", path.display()), e))?;
    }
    for tmp in dir.temp_files()? {
        tracing::info!(file = %tmp.display(), "removing an unfinished snapshot");
        let _ = std::fs::remove_file(tmp);
    }
    Ok(state)
}

#[cfg(test)]
mod tests;
