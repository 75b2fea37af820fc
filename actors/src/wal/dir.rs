//! The master's data directory: a lock file, log segments `wal-<first lsn>.log` and snapshots
//! `snapshot-<last lsn>.snap` (both numbers zero-padded to 20 digits, so names sort by LSN).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use net::Lsn;

use crate::error::Error;

const LOCK_FILE: &str = "LOCK";

/// An open, locked data directory. The lock is held for as long as this value lives, and a
/// second process that opens the same directory is refused.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates the directory if needed and takes its lock.
    pub fn open(path: &Path) -> Result<DataDir, Error> {
        std::fs::create_dir_all(path).map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(format!("cannot open {}", lock_path.display()), e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked { dir: path.display().to_string() }),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io(format!("cannot lock {}", lock_path.display()), e))
            }
        }
        Ok(DataDir { path: path.to_path_buf(), _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn segment_path(&self, first: Lsn) -> PathBuf {
        self.path.join(format!("wal-{:020}.log", first.0))
    }

    pub fn snapshot_path(&self, last: Lsn) -> PathBuf {
        self.path.join(format!("snapshot-{:020}.snap", last.0))
    }

    /// Log segments, oldest first, with their first LSN.
    pub fn segments(&self) -> Result<Vec<(Lsn, PathBuf)>, Error> {
        self.list("wal-", ".log")
    }

    /// Snapshots, oldest first, with their last LSN.
    pub fn snapshots(&self) -> Result<Vec<(Lsn, PathBuf)>, Error> {
        self.list("snapshot-", ".snap")
    }

    /// Leftovers of snapshots that a crash interrupted before they were renamed into place.
    pub fn temp_files(&self) -> Result<Vec<PathBuf>, Error> {
        Ok(self.entries()?.into_iter().filter(|p| p.extension().is_some_and(|e| e == "tmp")).collect())
    }

    /// Makes renames and new files in the directory durable.
    pub fn sync(&self) -> Result<(), Error> {
        File::open(&self.path)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(format!("cannot sync {}", self.path.display()), e))
    }

    fn entries(&self) -> Result<Vec<PathBuf>, Error> {
        let read =
            std::fs::read_dir(&self.path).map_err(|e| Error::io(format!("cannot list {}", self.path.display()), e))?;
        let mut out = Vec::new();
        for entry in read {
            let entry = entry.map_err(|e| Error::io(format!("cannot list {}", self.path.display()), e))?;
            out.push(entry.path());
        }
        Ok(out)
    }

    fn list(&self, prefix: &str, suffix: &str) -> Result<Vec<(Lsn, PathBuf)>, Error> {
        let mut out = Vec::new();
        for path in self.entries()? {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let Some(number) = name.strip_prefix(prefix).and_then(|n| n.strip_suffix(suffix)) else { continue };
            if let Ok(lsn) = number.parse::<u64>() {
                out.push((Lsn(lsn), path));
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_open_of_the_same_directory_is_refused() {
        let dir = std::env::temp_dir().join(format!("kv-dir-lock-{}", std::process::id()));
        let first = DataDir::open(&dir).unwrap();
        assert!(matches!(DataDir::open(&dir), Err(Error::Locked { .. })));
        drop(first);
        assert!(DataDir::open(&dir).is_ok(), "the lock goes with its holder");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn files_are_listed_in_lsn_order() {
        let dir = std::env::temp_dir().join(format!("kv-dir-list-{}", std::process::id()));
        let data = DataDir::open(&dir).unwrap();
        for lsn in [30, 2, 100] {
            std::fs::write(data.segment_path(Lsn(lsn)), b"").unwrap();
        }
        std::fs::write(dir.join("unrelated.txt"), b"").unwrap();
        let firsts: Vec<u64> = data.segments().unwrap().into_iter().map(|(l, _)| l.0).collect();
        assert_eq!(firsts, vec![2, 30, 100]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
