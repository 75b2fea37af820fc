//! The master's side of a standby connection: it ships the log.
//!
//! The session subscribes to the WAL writer from the LSN the standby asked for. If the writer
//! still has those records they follow at once; otherwise the standby first receives a copy of
//! the coordinator's state (a snapshot taken at the writer's durable LSN, in chunks), and
//! records after that LSN follow. Only durable records are shipped, so a standby's log is always
//! a prefix of the master's. The standby acknowledges what it has made durable (shown in
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
use super::wal_writer::{Shipped, Subscribe, Subscribed, WalWriter};
use crate::outbox::{Outbox, LINGER};

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
    /// Records that arrived while a snapshot is being sent; they follow it.
    held: Option<VecDeque<LogRecord>>,
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
            held: None,
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
        self.held = Some(VecDeque::new());
        let copy = self.coordinator.send(StateCopy);
        ctx.wait(copy.into_actor(self).map(move |state, act, ctx| {
            let Ok(State { epoch, master, members, entries, stamp }) = state else {
                return act.close_with(WireError::internal("the coordinator stopped"), ctx);
            };
            tracing::info!(standby = %act.standby, lsn = durable.0, keys = entries.len(), "sending a snapshot");
            let begin = Ship::SnapshotBegin { lsn: durable, epoch, master: Some(master), members, stamp };
            act.outbox.send(FromServer::Ship(begin));
            let mut all = entries.entries().peekable();
            while all.peek().is_some() {
                let chunk: Vec<(Key, Entry)> = all.by_ref().take(CHUNK_ENTRIES).collect();
                act.outbox.send(FromServer::Ship(Ship::SnapshotChunk { entries: chunk }));
            }
            act.outbox.send(FromServer::Ship(Ship::SnapshotEnd));
            let held: Vec<LogRecord> =
                act.held.take().unwrap_or_default().into_iter().filter(|r| r.lsn() > durable).collect();
            if !held.is_empty() {
                act.outbox.send(FromServer::Ship(Ship::Records { records: held }));
            }
        }));
    }
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

    fn handle(&mut self, msg: Shipped, _ctx: &mut Context<Self>) {
        if let Some(last) = msg.0.last() {
            self.durable = last.lsn();
        }
        match &mut self.held {
            Some(held) => held.extend(msg.0),
            None => {
                self.outbox.send(FromServer::Ship(Ship::Records { records: msg.0 }));
            }
        }
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
