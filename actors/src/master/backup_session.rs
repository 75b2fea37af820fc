//! The master's side of a standby connection: it ships the log.
//!
//! The session subscribes to the WAL writer from the LSN the standby asked for. If the writer
//! still has those records they follow at once; otherwise the standby first receives a copy of
//! the coordinator's state (a snapshot taken at the writer's durable LSN, in chunks, a few shards
//! of the map at a time as the standby reads them, so neither the master's event loop nor its
//! memory holds the whole map at once), and records after that LSN follow. Only durable records
//! are shipped, so a standby's log is always a prefix of the master's. The standby acknowledges what it has made durable (shown in
//! `status` as its lag) and pings; the master answers with its durable LSN and its live slaves
//! (the standby only logs its lag: a takeover counts the membership its log recorded, never
//! the slaves it last heard of).

use std::collections::VecDeque;
use std::net::SocketAddr;

use actix::prelude::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, StreamHandler, WrapFuture,
};

use net::{Entry, FromServer, Key, LogRecord, Lsn, NetError, NodeId, Ship, ToServer, Welcome, WireError};

use super::coordinator::{CoordinatorActor, SlaveList, StandbyState, State, StateCopy, WatchSlaves};
use super::keytable::KeyTable;
use super::wal_writer::{Shipped, Subscribe, Subscribed, WalWriter, RECENT_RECORDS};
use crate::outbox::{Outbox, LINGER};
use crate::sharded::SHARDS;

/// Entries per snapshot chunk.
const CHUNK_ENTRIES: usize = 512;

/// The coordinator stopped serving: end the session (the standby then sees its master silent).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retired;

pub struct BackupSession {
    standby: NodeId,
    peer: SocketAddr,
    outbox: Outbox<FromServer>,
    coordinator: Addr<CoordinatorActor>,
    wal: Addr<WalWriter>,
    welcome: Option<Welcome>,
    from: Lsn,
    /// Durable records not yet handed to the outbox (while a snapshot is sent, or while the
    /// standby has a soft limit's worth to read). They share their keys and values with the
    /// log writer's recent records, and there are never more of them.
    queued: VecDeque<LogRecord>,
    /// The snapshot being sent, paced by what the standby reads.
    sending: Option<Sending>,
    /// A wait for the standby to read is under way.
    waiting: bool,
    closing: bool,
    /// The newest durable LSN shipped, and the live slaves, for pongs.
    durable: Lsn,
    slaves: Vec<NodeId>,
}

impl BackupSession {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        standby: NodeId,
        peer: SocketAddr,
        outbox: Outbox<FromServer>,
        coordinator: Addr<CoordinatorActor>,
        wal: Addr<WalWriter>,
        welcome: Welcome,
        from: Lsn,
    ) -> Self {
        BackupSession {
            standby,
            peer,
            outbox,
            coordinator,
            wal,
            from,
            durable: welcome.last_lsn,
            welcome: Some(welcome),
            queued: VecDeque::new(),
            sending: None,
            waiting: false,
            closing: false,
            slaves: Vec::new(),
        }
    }

    fn close_with(&mut self, err: WireError, ctx: &mut Context<Self>) {
        tracing::warn!(standby = %self.standby, %err, "closing the standby's connection");
        self.outbox.send(FromServer::Error(err));
        self.outbox.close();
        self.closing = true;
        ctx.run_later(LINGER, |_, ctx| ctx.stop());
    }

    /// Tells the standby the durable LSN and the live slaves (which it must wait for if it
    /// takes over): whenever the slaves change, and at every ping.
    fn send_pong(&mut self, _ctx: &mut Context<Self>) {
        let pong = Ship::Pong { durable: self.durable, slaves: self.slaves.clone() };
        self.outbox.send(FromServer::Ship(pong));
    }

    fn send_snapshot(&mut self, durable: Lsn, ctx: &mut Context<Self>) {
        let copy = self.coordinator.send(StateCopy);
        ctx.wait(copy.into_actor(self).map(move |state, act, ctx| {
            let Ok(State { epoch, master, members, entries, stamp }) = state else {
                return act.close_with(WireError::internal("the coordinator stopped"), ctx);
            };
            tracing::info!(standby = %act.standby, lsn = durable.0, keys = entries.len(), "sending a snapshot");
            let begin = Ship::SnapshotBegin { lsn: durable, epoch, master: Some(master), members, stamp };
            act.outbox.send(FromServer::Ship(begin));
            act.sending = Some(Sending { table: entries, shard: 0, durable });
            act.send_more(ctx);
        }));
    }

    /// Hands the outbox what is due, until the standby has a soft limit's worth to read: the
    /// snapshot's next shards while one is being sent, then queued records, in frames of at
    /// most [`FRAME_BYTES`]. With more to send it waits for the standby to read (answering pings
    /// meanwhile) and goes on.
    fn send_more(&mut self, ctx: &mut Context<Self>) {
        if self.waiting {
            return;
        }
        self.send_snapshot_part();
        if self.sending.is_none() {
            while !self.queued.is_empty() && !self.outbox.over_soft() {
                let mut records = Vec::new();
                let mut bytes = 0;
                while let Some(record) = self.queued.front() {
                    let size = record_bytes(record);
                    if !records.is_empty() && bytes + size > FRAME_BYTES {
                        break;
                    }
                    bytes += size;
                    records.extend(self.queued.pop_front());
                }
                self.outbox.send(FromServer::Ship(Ship::Records { records }));
            }
        }
        if (self.sending.is_some() || !self.queued.is_empty()) && self.outbox.is_open() {
            self.waiting = true;
            ctx.spawn(self.outbox.writable().into_actor(self).map(|(), act, ctx| {
                act.waiting = false;
                act.send_more(ctx);
            }));
        }
    }

    /// The snapshot's next shards, while the standby has less than a soft limit's worth to
    /// read; after the last, the end of the snapshot, and records up to it are dropped from the
    /// queue.
    fn send_snapshot_part(&mut self) {
        let Some(sending) = &mut self.sending else { return };
        while sending.shard < SHARDS && !self.outbox.over_soft() {
            let mut chunk: Vec<(Key, Entry)> = Vec::with_capacity(CHUNK_ENTRIES);
            for entry in sending.table.shard_entries(sending.shard) {
                chunk.push(entry);
                if chunk.len() == CHUNK_ENTRIES {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_ENTRIES));
                    self.outbox.send(FromServer::Ship(Ship::SnapshotChunk { entries: full }));
                }
            }
            if !chunk.is_empty() {
                self.outbox.send(FromServer::Ship(Ship::SnapshotChunk { entries: chunk }));
            }
            sending.shard += 1;
        }
        if sending.shard < SHARDS {
            return;
        }
        let durable = sending.durable;
        self.sending = None;
        self.outbox.send(FromServer::Ship(Ship::SnapshotEnd));
        while self.queued.front().is_some_and(|r| r.lsn() <= durable) {
            self.queued.pop_front();
        }
    }
}

/// Bytes of records one `Records` frame carries at most (a single larger record goes alone;
/// every record fits a frame).
const FRAME_BYTES: usize = 256 * 1024;

/// About what `record` takes on the wire.
fn record_bytes(record: &LogRecord) -> usize {
    const OVERHEAD: usize = 64;
    match record {
        LogRecord::Write { key, value, .. } => {
            OVERHEAD + key.as_bytes().len() + value.as_ref().map_or(0, |v| v.as_bytes().len())
        }
        LogRecord::Epoch { .. } | LogRecord::Member { .. } => OVERHEAD,
    }
}

/// A snapshot on its way to the standby: the state copied for it and the next shard to send.
struct Sending {
    table: KeyTable,
    shard: usize,
    durable: Lsn,
}

impl Actor for BackupSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(welcome) = self.welcome.take() {
            self.outbox.send(FromServer::Welcome(welcome));
        }
        tracing::info!(standby = %self.standby, peer = %self.peer, from = self.from.0, "standby connected");
        self.coordinator.do_send(WatchSlaves { list: ctx.address().recipient(), retire: ctx.address().recipient() });
        let subscribe = self.wal.send(Subscribe { from: self.from, to: ctx.address().recipient() });
        ctx.wait(subscribe.into_actor(self).map(|answer, act, ctx| match answer {
            Ok(Subscribed::Resumed) => {}
            Ok(Subscribed::NeedSnapshot { durable }) => act.send_snapshot(durable, ctx),
            Err(_) => act.close_with(WireError::internal("the log writer stopped"), ctx),
        }));
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        tracing::info!(standby = %self.standby, "standby disconnected");
        self.coordinator.do_send(StandbyState { standby: self.standby.clone(), acked: None });
    }
}

impl Handler<Retired> for BackupSession {
    type Result = ();

    fn handle(&mut self, _msg: Retired, ctx: &mut Context<Self>) {
        tracing::warn!(standby = %self.standby, "this node stopped serving; ending the standby's session");
        self.outbox.close();
        self.closing = true;
        ctx.stop();
    }
}

impl Handler<SlaveList> for BackupSession {
    type Result = ();

    fn handle(&mut self, msg: SlaveList, _ctx: &mut Context<Self>) {
        self.slaves = msg.0.clone();
        self.outbox.send(FromServer::Ship(Ship::Pong { durable: self.durable, slaves: msg.0 }));
    }
}

impl Handler<Shipped> for BackupSession {
    type Result = ();

    fn handle(&mut self, msg: Shipped, ctx: &mut Context<Self>) {
        if let Some(last) = msg.0.last() {
            self.durable = last.lsn();
        }
        self.queued.extend(msg.0);
        if self.queued.len() > RECENT_RECORDS {
            // The standby fell further behind than the log writer keeps records for: it
            // resumes from what it has, from a snapshot if need be.
            tracing::warn!(
                standby = %self.standby,
                queued = self.queued.len(),
                "closing the standby's connection: it does not keep up with the log"
            );
            self.outbox.close();
            self.closing = true;
            return ctx.stop();
        }
        self.send_more(ctx);
    }
}

impl StreamHandler<Result<ToServer, NetError>> for BackupSession {
    fn handle(&mut self, frame: Result<ToServer, NetError>, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        match frame {
            Ok(ToServer::StandbyAck { lsn }) => {
                self.coordinator.do_send(StandbyState { standby: self.standby.clone(), acked: Some(lsn) })
            }
            Ok(ToServer::StandbyPing) => self.send_pong(ctx),
            Ok(ToServer::Error(err)) => {
                tracing::warn!(standby = %self.standby, %err, "standby sent an error");
                ctx.stop();
            }
            Ok(ToServer::Hello(_) | ToServer::Proof { .. }) => {
                self.close_with(WireError::protocol("handshake already done"), ctx)
            }
            Ok(ToServer::Request { .. } | ToServer::SlaveResponse { .. }) => {
                self.close_with(WireError::protocol("a client or slave frame on a standby connection"), ctx)
            }
            Err(err) => match err.to_wire() {
                Some(wire) => self.close_with(wire, ctx),
                None => ctx.stop(),
            },
        }
    }
}
