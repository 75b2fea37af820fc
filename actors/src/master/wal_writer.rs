//! The WAL writer: the one actor that appends to the master's log.
//!
//! Appends are numbered (LSN) and encoded as they arrive and collected into a batch. The file
//! work runs on a dedicated I/O thread, one batch at a time: one `write` and one `fdatasync`
//! per batch. Every append that arrives while a batch is being synced goes into the next batch
//! (group commit), so a crowd of writers shares each fsync. Each append's `notify` is told when
//! its record is durable.
//!
//! When the log since the last snapshot passes the threshold, the writer asks the coordinator
//! for its state; it starts a new log file at the next LSN, writes the snapshot on another
//! thread, and then deletes the older log files and snapshots.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;

use actix::prelude::{
    Actor, ActorContext, Addr, AsyncContext, Context, Handler, Message, MessageResult, Recipient, ResponseFuture,
    Supervised, Supervisor,
};
use tokio::sync::oneshot;

use net::{Epoch, Incarnation, Key, LogRecord, Lsn, MemberRecord, NodeId, Value, Version};

use super::keytable::KeyTable;
use crate::error::Error;
use crate::wal::{format, snapshot, DataDir, Recovered, Snapshot};

/// How the log is kept.
#[derive(Debug, Clone, Copy)]
pub struct WalConfig {
    /// `fdatasync` after every batch. Without it a crash of the machine (not of the process)
    /// can lose acknowledged writes: for benchmarks only.
    pub sync: bool,
    /// Take a snapshot when the log since the last one passes this many bytes.
    pub snapshot_after_bytes: u64,
    /// Keep recent durable records and send them to subscribers (standbys).
    pub ship: bool,
}

/// Records standbys can resume from without a snapshot.
pub const RECENT_RECORDS: usize = 100_000;

/// Durable records for a standby's session, in LSN order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shipped(pub Vec<LogRecord>);

/// Send durable records to `to`, starting at `from` if the writer still has them.
#[derive(Message)]
#[rtype(result = "Subscribed")]
pub struct Subscribe {
    pub from: Lsn,
    pub to: Recipient<Shipped>,
}

/// The answer to [`Subscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, actix::MessageResponse)]
pub enum Subscribed {
    /// Records from `from` on follow.
    Resumed,
    /// `from` is gone (or ahead): send the subscriber the state at `durable` first; records
    /// after `durable` follow.
    NeedSnapshot { durable: Lsn },
}

/// From now on keep durable records for standbys (a standby that became master).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShipFromNowOn;

/// Stop, closing the log file.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

/// What to append; the writer gives it its LSN.
#[derive(Debug, Clone)]
pub enum LogEntry {
    /// `stamp`: see [`LogRecord::Write`].
    Write { version: Version, key: Key, value: Option<Value>, stamp: Option<Version> },
    /// `master` was granted `epoch`.
    Epoch { epoch: Epoch, master: NodeId },
    /// A slave joined, became usable, or came back in a new incarnation.
    Member { node: NodeId, incarnation: Incarnation, active: bool },
    /// A record from the master's log, appended by its standby with the same LSN.
    Shipped(LogRecord),
}

/// Append `entry` and tell `notify` when it is durable.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Append {
    pub entry: LogEntry,
    pub notify: Option<Recipient<Durable>>,
}

/// The record with `lsn` is durable (or the log failed and it may not be).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Durable {
    pub lsn: Lsn,
    pub result: Result<(), String>,
}

/// Append `entry` and answer once it is durable.
#[derive(Message)]
#[rtype(result = "Result<Lsn, String>")]
pub struct AppendDurable(pub LogEntry);

/// Ask `0` for the state when a snapshot is due.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SnapshotsFrom(pub Recipient<SnapshotDue>);

/// The keys and versions of the write records a batch made durable, in log order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Synced(pub Vec<(Key, Version)>);

/// Tell `0` of every batch's write records once durable (the coordinator, whose reads wait
/// for the log to hold what they return).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SyncedTo(pub Recipient<Synced>);

/// Who waits for a record to be durable.
enum Notify {
    Actor(Recipient<Durable>),
    Once(oneshot::Sender<Durable>),
}

impl Notify {
    fn send(self, durable: Durable) {
        match self {
            Notify::Actor(recipient) => recipient.do_send(durable),
            Notify::Once(tx) => {
                let _ = tx.send(durable);
            }
        }
    }
}

/// Sent to the coordinator: answer with [`WriteSnapshot`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct SnapshotDue;

/// The coordinator's state, for a snapshot at the LSN of the last append before it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WriteSnapshot {
    pub epoch: Epoch,
    pub master: NodeId,
    pub members: Vec<MemberRecord>,
    /// A copy of the coordinator's key map: its shards are shared until next changed (see
    /// `sharded.rs`), and the entries are unpacked and encoded on the snapshot's own thread, so
    /// a large data set never holds up the coordinator (a stall there starves heartbeats and
    /// the standby takes over).
    pub entries: KeyTable,
    /// The last stamp issued when the copy was taken (see `State::stamp`).
    pub stamp: Version,
}

/// The log failed (it stays failed until the process restarts); sent to whoever asked
/// with [`WatchFailure`].
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct LogFailed {
    pub reason: String,
}

/// Tell `0` when the log fails for good.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchFailure(pub Recipient<LogFailed>);

/// Counters, for tests and status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    pub appends: u64,
    pub batches: u64,
    pub snapshots: u64,
    pub durable: Lsn,
}

#[derive(Message)]
#[rtype(result = "WalStats")]
pub struct Stats;

enum Work {
    /// `injected`: what the `wal-write-io-error` and `wal-write-stall` failpoints chose for it.
    Batch {
        bytes: Vec<u8>,
        last: Lsn,
        waiters: Vec<(Lsn, Notify)>,
        records: Vec<LogRecord>,
        /// The write records' keys and versions, if someone is told of them (`SyncedTo`).
        written: Vec<(Key, Version)>,
        injected: Injected,
    },
    Rotate {
        first: Lsn,
    },
}

/// What the I/O thread is doing.
enum InIo {
    Batch { last: Lsn, waiters: Vec<(Lsn, Notify)>, records: Vec<LogRecord>, written: Vec<(Key, Version)> },
    Rotate { path: PathBuf },
}

/// Faults the failpoints injected into one batch (never set without the `failpoints` feature).
#[derive(Debug, Clone, Copy, Default)]
struct Injected {
    fail: bool,
    stall_ms: u64,
}

enum IoCommand {
    Write(Vec<u8>, Injected),
    Rotate(PathBuf),
}

#[derive(Message)]
#[rtype(result = "()")]
struct IoDone(Result<(), String>);

#[derive(Message)]
#[rtype(result = "()")]
struct SnapshotDone(Result<u64, String>);

enum SnapshotState {
    Idle,
    Requested,
    Rotating { snapshot: Snapshot, table: Box<KeyTable> },
    Writing,
}

pub struct WalWriter {
    dir: Arc<DataDir>,
    config: WalConfig,
    io: mpsc::Sender<IoCommand>,
    /// Work not yet given to the I/O thread; appends join the last batch.
    queue: VecDeque<Work>,
    in_io: Option<InIo>,
    next_lsn: Lsn,
    failed: Option<String>,
    log_bytes: u64,
    /// The size of the newest snapshot.
    snapshot_bytes: u64,
    snapshot: SnapshotState,
    coordinator: Option<Recipient<SnapshotDue>>,
    synced_to: Option<Recipient<Synced>>,
    stats: WalStats,
    /// Keep durable records for standbys (the master's log; not a standby's own).
    ship: bool,
    /// The segment being appended to.
    segment: PathBuf,
    /// Stopped on purpose (`Stop`): the supervisor may not bring it back to work.
    closed: bool,
    /// The newest durable records, for a standby that resumes.
    recent: VecDeque<LogRecord>,
    subscribers: Vec<Recipient<Shipped>>,
    failure_watchers: Vec<Recipient<LogFailed>>,
}

impl WalWriter {
    /// Opens the log's tail for appending and starts the I/O thread.
    pub fn start(dir: Arc<DataDir>, recovered: &Recovered, config: WalConfig) -> Result<Addr<WalWriter>, Error> {
        let (path, len) = match &recovered.tail {
            Some((_, path, len)) => (path.clone(), *len),
            None => (dir.segment_path(recovered.next_lsn), 0),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        debug_assert_eq!(file.metadata().map(|m| m.len()).unwrap_or(len), len, "recovery cut the tail");
        dir.sync()?;
        let (tx, rx) = mpsc::channel();
        let next_lsn = recovered.next_lsn;
        let log_bytes = recovered.log_bytes;
        let snapshot_bytes =
            dir.snapshots()?.pop().and_then(|(_, path)| std::fs::metadata(path).ok()).map_or(0, |m| m.len());
        let addr = Supervisor::start(move |ctx: &mut Context<WalWriter>| {
            let me = ctx.address();
            std::thread::Builder::new()
                .name("wal-io".into())
                .spawn(move || io_thread(file, config.sync, rx, me))
                .expect("spawn the WAL I/O thread");
            WalWriter {
                segment: path,
                closed: false,
                dir,
                config,
                io: tx,
                queue: VecDeque::new(),
                in_io: None,
                next_lsn,
                failed: None,
                log_bytes,
                snapshot_bytes,
                snapshot: SnapshotState::Idle,
                coordinator: None,
                synced_to: None,
                stats: WalStats { durable: Lsn(next_lsn.0.saturating_sub(1)), ..WalStats::default() },
                ship: config.ship,
                recent: VecDeque::new(),
                subscribers: Vec::new(),
                failure_watchers: Vec::new(),
            }
        });
        Ok(addr)
    }

    fn append(&mut self, entry: LogEntry, notify: Option<Notify>) {
        let lsn = self.next_lsn;
        let refuse = |notify: Option<Notify>, reason: String| {
            if let Some(notify) = notify {
                notify.send(Durable { lsn, result: Err(reason) });
            }
        };
        if let Some(reason) = &self.failed {
            return refuse(notify, reason.clone());
        }
        let record = match entry {
            LogEntry::Write { version, key, value, stamp } => LogRecord::Write { lsn, version, key, value, stamp },
            LogEntry::Epoch { epoch, master } => LogRecord::Epoch { lsn, epoch, master: Some(master) },
            LogEntry::Member { node, incarnation, active } => LogRecord::Member { lsn, node, incarnation, active },
            LogEntry::Shipped(record) if record.lsn() == lsn => record,
            LogEntry::Shipped(record) => {
                return refuse(notify, format!("shipped record {} does not follow {}", record.lsn().0, lsn.0 - 1))
            }
        };
        // Fails the batch holding the chosen write (counted in writes, not batches, so a test
        // can name the write whatever else the log appended first).
        let chosen = || -> bool {
            fail::fail_point!("wal-write-io-error", |_| true);
            false
        };
        let poison = matches!(record, LogRecord::Write { .. }) && chosen();
        // Holds the batch with the chosen write for the given milliseconds before it is written.
        let stall = || -> u64 {
            fail::fail_point!("wal-write-stall", |ms: Option<String>| ms.and_then(|ms| ms.parse().ok()).unwrap_or(0));
            0
        };
        let stall_ms = if matches!(record, LogRecord::Write { .. }) { stall() } else { 0 };
        if !matches!(self.queue.back(), Some(Work::Batch { .. })) {
            let bytes = Vec::with_capacity(4096);
            let batch = Work::Batch {
                bytes,
                last: lsn,
                waiters: Vec::new(),
                records: Vec::new(),
                written: Vec::new(),
                injected: Injected::default(),
            };
            self.queue.push_back(batch);
        }
        let Some(Work::Batch { bytes, last, waiters, records, written, injected }) = self.queue.back_mut() else {
            unreachable!("a batch was just pushed")
        };
        injected.fail |= poison;
        injected.stall_ms = injected.stall_ms.max(stall_ms);
        if let Err(err) = format::encode(&record, bytes) {
            tracing::error!(%err, "cannot encode a log record");
            return refuse(notify, err.to_string());
        }
        self.next_lsn = Lsn(lsn.0 + 1);
        self.stats.appends += 1;
        *last = lsn;
        if let Some(notify) = notify {
            waiters.push((lsn, notify));
        }
        if let (Some(_), LogRecord::Write { key, version, .. }) = (&self.synced_to, &record) {
            written.push((key.clone(), *version));
        }
        if self.ship {
            records.push(record);
        }
    }

    /// Gives the next piece of work to the I/O thread if it is idle.
    fn pump(&mut self) {
        if self.in_io.is_some() {
            return;
        }
        let Some(work) = self.queue.pop_front() else { return };
        let (command, doing) = match work {
            Work::Batch { bytes, last, waiters, records, written, injected } => {
                self.log_bytes += bytes.len() as u64;
                (IoCommand::Write(bytes, injected), InIo::Batch { last, waiters, records, written })
            }
            Work::Rotate { first } => {
                let path = self.dir.segment_path(first);
                (IoCommand::Rotate(path.clone()), InIo::Rotate { path })
            }
        };
        if self.io.send(command).is_err() {
            self.fail("the log's I/O thread is gone".to_string(), Some(doing));
            return;
        }
        self.in_io = Some(doing);
    }

    /// The log can no longer promise durability: every waiter is told, and so is every later
    /// append. The master must be restarted.
    fn fail(&mut self, reason: String, current: Option<InIo>) {
        tracing::error!(%reason, "write-ahead log failed; writes are refused until the master restarts");
        self.failed = Some(reason.clone());
        let queued = self.queue.drain(..).filter_map(|work| match work {
            Work::Batch { waiters, .. } => Some(waiters),
            Work::Rotate { .. } => None,
        });
        let current = current.into_iter().filter_map(|doing| match doing {
            InIo::Batch { waiters, .. } => Some(waiters),
            InIo::Rotate { .. } => None,
        });
        for (lsn, notify) in current.chain(queued).flatten() {
            notify.send(Durable { lsn, result: Err(reason.clone()) });
        }
    }

    /// A snapshot is due once the log since the last one holds `snapshot_after_bytes` and as
    /// much as that snapshot: with millions of keys a snapshot is large, and writing one every
    /// few megabytes of log would spend the disk on rewriting data that did not change.
    fn maybe_request_snapshot(&mut self) {
        let due = self.config.snapshot_after_bytes.max(self.snapshot_bytes);
        if matches!(self.snapshot, SnapshotState::Idle) && self.log_bytes >= due {
            if let Some(coordinator) = &self.coordinator {
                self.snapshot = SnapshotState::Requested;
                coordinator.do_send(SnapshotDue);
            }
        }
    }
}

impl WalWriter {
    fn ship_records(&mut self, records: Vec<LogRecord>) {
        if records.is_empty() {
            return;
        }
        self.subscribers.retain(|s| s.connected());
        for subscriber in &self.subscribers {
            subscriber.do_send(Shipped(records.clone()));
        }
        self.recent.extend(records);
        while self.recent.len() > RECENT_RECORDS {
            self.recent.pop_front();
        }
    }
}

impl Actor for WalWriter {
    type Context = Context<Self>;
}

impl Supervised for WalWriter {
    /// The writer stops only when it is closed (`Stop`) or panics; it is never brought back to
    /// work after an I/O error, because appends that nobody waits for (membership records,
    /// copies found on slaves) would be gone without a trace and the master's memory would no
    /// longer match its log. A failed log stays failed; the node stops serving and restarts its
    /// process, which recovers from what is durable.
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        if !self.closed {
            tracing::error!("the log writer stopped unexpectedly; it stays failed");
            self.failed.get_or_insert_with(|| "the log writer stopped".to_string());
        }
    }
}

impl Handler<Subscribe> for WalWriter {
    type Result = Subscribed;

    fn handle(&mut self, msg: Subscribe, _ctx: &mut Context<Self>) -> Subscribed {
        let durable = self.stats.durable;
        let first = self.recent.front().map(|r| r.lsn());
        let answer = match first {
            _ if msg.from.0 == durable.0 + 1 => Subscribed::Resumed,
            Some(first) if msg.from >= first && msg.from <= durable => {
                let from = (msg.from.0 - first.0) as usize;
                msg.to.do_send(Shipped(self.recent.range(from..).cloned().collect()));
                Subscribed::Resumed
            }
            Some(_) | None => Subscribed::NeedSnapshot { durable },
        };
        self.subscribers.push(msg.to);
        answer
    }
}

impl Handler<ShipFromNowOn> for WalWriter {
    type Result = ();

    fn handle(&mut self, _msg: ShipFromNowOn, _ctx: &mut Context<Self>) {
        self.ship = true;
    }
}

impl Handler<Stop> for WalWriter {
    type Result = ();

    fn handle(&mut self, _msg: Stop, ctx: &mut Context<Self>) {
        self.closed = true;
        self.failed = Some("the log writer was closed".to_string());
        // Dropping the channel ends the I/O thread, which closes the file.
        self.io = mpsc::channel().0;
        ctx.stop();
    }
}

impl Handler<Append> for WalWriter {
    type Result = ();

    fn handle(&mut self, msg: Append, _ctx: &mut Context<Self>) {
        self.append(msg.entry, msg.notify.map(Notify::Actor));
        self.pump();
    }
}

impl Handler<AppendDurable> for WalWriter {
    type Result = ResponseFuture<Result<Lsn, String>>;

    fn handle(&mut self, msg: AppendDurable, _ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.append(msg.0, Some(Notify::Once(tx)));
        self.pump();
        Box::pin(async move {
            let durable = rx.await.map_err(|_| "the log writer stopped".to_string())?;
            durable.result.map(|()| durable.lsn)
        })
    }
}

impl Handler<WatchFailure> for WalWriter {
    type Result = ();

    fn handle(&mut self, msg: WatchFailure, _ctx: &mut Context<Self>) {
        if let Some(reason) = &self.failed {
            msg.0.do_send(LogFailed { reason: reason.clone() });
        }
        self.failure_watchers.push(msg.0);
    }
}

impl Handler<SyncedTo> for WalWriter {
    type Result = ();

    fn handle(&mut self, msg: SyncedTo, _ctx: &mut Context<Self>) {
        self.synced_to = Some(msg.0);
    }
}

impl Handler<SnapshotsFrom> for WalWriter {
    type Result = ();

    fn handle(&mut self, msg: SnapshotsFrom, _ctx: &mut Context<Self>) {
        self.coordinator = Some(msg.0);
        self.maybe_request_snapshot();
    }
}

impl Handler<IoDone> for WalWriter {
    type Result = ();

    fn handle(&mut self, msg: IoDone, ctx: &mut Context<Self>) {
        let work = self.in_io.take();
        if let Err(reason) = msg.0 {
            // The first failure is the last: what the failed batch and the queue held is gone.
            self.fail(reason.clone(), work);
            for watcher in &self.failure_watchers {
                watcher.do_send(LogFailed { reason: reason.clone() });
            }
            return;
        }
        match work {
            Some(InIo::Batch { last, waiters, records, written }) => {
                self.stats.batches += 1;
                self.stats.durable = last;
                if let (Some(to), false) = (&self.synced_to, written.is_empty()) {
                    to.do_send(Synced(written));
                }
                for (lsn, notify) in waiters {
                    notify.send(Durable { lsn, result: Ok(()) });
                }
                self.ship_records(records);
                self.maybe_request_snapshot();
            }
            Some(InIo::Rotate { path }) => {
                self.segment = path;
                self.log_bytes = 0;
                if let SnapshotState::Rotating { snapshot, table } =
                    std::mem::replace(&mut self.snapshot, SnapshotState::Writing)
                {
                    let dir = self.dir.clone();
                    let me = ctx.address();
                    std::thread::spawn(move || {
                        let result = write_snapshot(&dir, &snapshot, &table).map_err(|e| e.to_string());
                        drop(table);
                        me.do_send(SnapshotDone(result));
                    });
                }
            }
            None => debug_assert!(false, "I/O done with nothing in flight"),
        }
        self.pump();
    }
}

impl Handler<WriteSnapshot> for WalWriter {
    type Result = ();

    fn handle(&mut self, msg: WriteSnapshot, _ctx: &mut Context<Self>) {
        let lsn = Lsn(self.next_lsn.0 - 1);
        let WriteSnapshot { epoch, master, members, entries, stamp } = msg;
        let snapshot = Snapshot { lsn, epoch, master: Some(master), members, stamp, entries: Vec::new() };
        self.snapshot = SnapshotState::Rotating { snapshot, table: Box::new(entries) };
        self.queue.push_back(Work::Rotate { first: self.next_lsn });
        self.pump();
    }
}

impl Handler<SnapshotDone> for WalWriter {
    type Result = ();

    fn handle(&mut self, msg: SnapshotDone, _ctx: &mut Context<Self>) {
        match msg.0 {
            Ok(bytes) => {
                self.stats.snapshots += 1;
                self.snapshot_bytes = bytes;
            }
            Err(err) => tracing::error!(%err, "snapshot failed; the log is kept whole and it will be tried again"),
        }
        self.snapshot = SnapshotState::Idle;
        self.maybe_request_snapshot();
    }
}

impl Handler<Stats> for WalWriter {
    type Result = MessageResult<Stats>;

    fn handle(&mut self, _msg: Stats, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.stats)
    }
}

fn io_thread(mut file: File, sync: bool, rx: mpsc::Receiver<IoCommand>, actor: Addr<WalWriter>) {
    for command in rx {
        let result = match command {
            IoCommand::Write(bytes, injected) => {
                if injected.stall_ms > 0 {
                    std::thread::sleep(std::time::Duration::from_millis(injected.stall_ms));
                }
                let poisoned = injected.fail;
                let injected = || -> std::io::Result<()> {
                    if poisoned {
                        return Err(std::io::Error::other("injected by the wal-write-io-error failpoint"));
                    }
                    fail::fail_point!("wal-io-error", |_| Err(std::io::Error::other(
                        "injected by the wal-io-error failpoint"
                    )));
                    Ok(())
                };
                injected()
                    .and_then(|()| file.write_all(&bytes))
                    .and_then(|()| if sync { file.sync_data() } else { Ok(()) })
            }
            IoCommand::Rotate(path) => file.sync_all().and_then(|()| {
                let next = OpenOptions::new().create_new(true).append(true).open(&path)?;
                if let Some(dir) = path.parent() {
                    File::open(dir)?.sync_all()?;
                }
                file = next;
                Ok(())
            }),
        };
        actor.do_send(IoDone(result.map_err(|e| format!("log I/O failed: {e}"))));
    }
}

/// Writes the snapshot of `table` with `snap`'s header, streaming its entries, then drops the
/// log and snapshots it replaces.
fn write_snapshot(dir: &DataDir, snap: &Snapshot, table: &KeyTable) -> Result<u64, Error> {
    let lsn = snap.lsn;
    let started = std::time::Instant::now();
    let keys = table.count_entries();
    let path = snapshot::write_entries(dir, snap, keys, table.entries())?;
    let bytes = std::fs::metadata(&path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?.len();
    tracing::info!(
        file = %path.display(),
        lsn = lsn.0,
        keys,
        bytes,
        ms = started.elapsed().as_millis() as u64,
        "snapshot written"
    );
    for (first, old) in dir.segments()? {
        if first <= lsn {
            std::fs::remove_file(&old).map_err(|e| Error::io(format!("cannot remove {}", old.display()), e))?;
        }
    }
    for (last, old) in dir.snapshots()? {
        if last < lsn {
            std::fs::remove_file(&old).map_err(|e| Error::io(format!("cannot remove {}", old.display()), e))?;
        }
    }
    dir.sync()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::recover;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kv-wal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn write(i: u64) -> LogEntry {
        LogEntry::Write {
            version: Version::new(1, i),
            key: Key::new(format!("k{i}")).unwrap(),
            value: Some(Value::new(format!("v{i}")).unwrap()),
            stamp: None,
        }
    }

    #[actix_rt::test]
    async fn concurrent_appends_share_fsyncs_and_all_become_durable() {
        let path = temp_dir("group");
        let dir = Arc::new(DataDir::open(&path).unwrap());
        let recovered = recover(&dir).unwrap();
        let config = WalConfig { sync: true, snapshot_after_bytes: u64::MAX, ship: false };
        let wal = WalWriter::start(dir.clone(), &recovered, config).unwrap();
        let waits: Vec<_> = (1..=500).map(|i| wal.send(AppendDurable(write(i)))).collect();
        let mut lsns = Vec::new();
        for wait in waits {
            lsns.push(wait.await.unwrap().unwrap());
        }
        assert_eq!(lsns, (1..=500).map(Lsn).collect::<Vec<_>>(), "LSNs in append order");
        let stats = wal.send(Stats).await.unwrap();
        assert_eq!(stats.appends, 500);
        assert!(stats.batches < 500, "group commit: {} batches for 500 appends", stats.batches);
        assert_eq!(stats.durable, Lsn(500));
        let segment = dir.segment_path(Lsn(1));
        let data = std::fs::read(&segment).unwrap();
        let mut on_disk = 0;
        format::scan(&segment, &data, false, |_, _: LogRecord| {
            on_disk += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(on_disk, 500, "every acknowledged append is in the file");
    }

    /// Collects what `Synced` reports.
    struct Collector(Arc<std::sync::Mutex<Vec<(Key, Version)>>>);

    impl Actor for Collector {
        type Context = Context<Self>;
    }

    impl Handler<Synced> for Collector {
        type Result = ();

        fn handle(&mut self, msg: Synced, _ctx: &mut Context<Self>) {
            self.0.lock().unwrap().extend(msg.0);
        }
    }

    #[actix_rt::test]
    async fn each_write_record_made_durable_is_reported_in_log_order() {
        let path = temp_dir("synced");
        let dir = Arc::new(DataDir::open(&path).unwrap());
        let recovered = recover(&dir).unwrap();
        let config = WalConfig { sync: true, snapshot_after_bytes: u64::MAX, ship: false };
        let wal = WalWriter::start(dir, &recovered, config).unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let collector = Collector(seen.clone()).start();
        wal.do_send(SyncedTo(collector.recipient()));
        let member = LogEntry::Member { node: NodeId("s".into()), incarnation: Incarnation(1), active: true };
        wal.do_send(Append { entry: member, notify: None });
        let waits: Vec<_> = (1..=100).map(|i| wal.send(AppendDurable(write(i)))).collect();
        for wait in waits {
            wait.await.unwrap().unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while seen.lock().unwrap().len() < 100 && std::time::Instant::now() < deadline {
            actix_rt::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let want: Vec<(Key, Version)> =
            (1..=100).map(|i| (Key::new(format!("k{i}")).unwrap(), Version::new(1, i))).collect();
        assert_eq!(*seen.lock().unwrap(), want, "every write record, in order, and nothing else");
    }
}
