//! The standby: follows the master's log over the network and hands its state to the node when
//! the master falls silent.
//!
//! It connects to the master as a backup, naming the epoch it has recorded and the next LSN it
//! needs. Records arrive durable on the master; the standby appends them to its own log (same
//! LSNs) and applies them to its replayed state (entries, membership, newest epoch). A snapshot
//! replaces both. It pings every `--heartbeat-ms`; after `--failover-after-ms` without a frame
//! from the master it hands its state and its log writer to the node actor, whose role core
//! then campaigns: silence only makes the node *try*; slaves' promises decide.
//!
//! A standby that was itself stalled (paused, starved of CPU) must not take its own stall for
//! the master's silence: a heartbeat tick that runs far later than scheduled starts the silence
//! over, so frames already waiting in the socket are read first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, StreamHandler, WrapFuture,
};
use futures_util::StreamExt;

use net::{FromServer, LogRecord, Lsn, NetError, PeerRole, ServerRole, Ship, ToServer, WireError};

use super::role::{NodeActor, RoleUpdate};
use super::Exit;
use crate::dial::{dial, DialError, Dialed};
use crate::master::wal_writer::{Append, Durable, LogEntry, Stop, WalConfig, WalWriter};
use crate::master::MasterConfig;
use crate::outbox::{frames, Outbox};
use crate::role::membership::Membership;
use crate::wal::{snapshot, DataDir, Recovered, Snapshot};

/// A heartbeat tick this many intervals late means this process was stalled, not its master.
const STALLED_TICKS: u32 = 3;

/// After the master closes the connection, the standby dials it again this soon: if nothing
/// listens there any more, its process is gone and the standby campaigns at once rather than
/// waiting out `--failover-after-ms` (whether it may serve is still the slaves' decision).
const REDIAL_AFTER_CLOSE: Duration = Duration::from_millis(100);

/// A frame from connection `conn`, or its end.
struct Incoming {
    conn: u64,
    frame: Option<Result<FromServer, NetError>>,
}

pub struct Standby {
    config: Arc<MasterConfig>,
    master: String,
    dir: Arc<DataDir>,
    wal: Addr<WalWriter>,
    node: Addr<NodeActor>,
    /// The replayed log: entries, membership, epochs, next LSN.
    state: Recovered,
    acked: Lsn,
    /// The LSN last reported to the node actor (what its peer is told of this log).
    reported: Lsn,
    conn: Option<(u64, Outbox<ToServer>)>,
    conns: u64,
    connecting: bool,
    last_heard: Instant,
    last_tick: Instant,
    incoming_snapshot: Option<Snapshot>,
    promoting: bool,
    /// The master closed the connection and has not been reached since.
    closed: bool,
    exit: Exit,
}

impl Standby {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Arc<MasterConfig>,
        master: String,
        dir: Arc<DataDir>,
        wal: Addr<WalWriter>,
        node: Addr<NodeActor>,
        recovered: Recovered,
        exit: Exit,
    ) -> Self {
        Standby {
            config,
            master,
            dir,
            wal,
            node,
            acked: Lsn(recovered.next_lsn.0.saturating_sub(1)),
            reported: Lsn(recovered.next_lsn.0.saturating_sub(1)),
            state: recovered,
            conn: None,
            conns: 0,
            connecting: false,
            last_heard: Instant::now(),
            last_tick: Instant::now(),
            incoming_snapshot: None,
            promoting: false,
            closed: false,
            exit,
        }
    }

    fn epoch(&self) -> net::Epoch {
        self.state.facts().highest_epoch
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        if self.connecting || self.conn.is_some() || self.promoting {
            return;
        }
        self.connecting = true;
        let role =
            PeerRole::Backup { id: self.config.node.clone(), epoch: self.epoch(), next_lsn: self.state.next_lsn };
        let (addr, deadline) = (self.master.clone(), self.config.heartbeat.timeout.min(Duration::from_secs(1)));
        let credentials = self.config.credentials.clone();
        ctx.spawn(async move { dial(&addr, role, deadline, &credentials).await }.into_actor(self).map(
            |result, act, ctx| {
                act.connecting = false;
                match result {
                    Ok(dialed) if dialed.welcome.role == ServerRole::Master && !act.promoting => {
                        act.connected(dialed, ctx)
                    }
                    Ok(_) => tracing::debug!(master = %act.master, "the peer is not serving as master yet"),
                    // The master answered: it is alive, and taking over would make two masters.
                    Err(DialError::NoListener(err)) if act.closed => {
                        let why = format!("the master closed the connection and its port refuses ({err})");
                        act.take_over(&why, ctx);
                    }
                    Err(err) if err.is_unauthorized() => {
                        act.last_heard = Instant::now();
                        tracing::error!(
                            master = %act.master,
                            %err,
                            "the master and this standby do not trust each other; check --cluster-key-file and the certificates"
                        )
                    }
                    Err(err) => tracing::debug!(master = %act.master, %err, "cannot reach the master"),
                }
            },
        ));
    }

    fn connected(&mut self, dialed: Dialed, ctx: &mut Context<Self>) {
        let Dialed { addr, welcome, reader, writer } = dialed;
        tracing::info!(master = %addr, epoch = %welcome.epoch, from = self.state.next_lsn.0, "following the master");
        self.conns += 1;
        let conn = self.conns;
        self.last_heard = Instant::now();
        self.closed = false;
        let outbox = Outbox::spawn(writer, self.config.output, format_args!("master {addr}"));
        // The log's records are requests to this standby: it stops reading them while its
        // acknowledgements are not read.
        let stream = frames(reader, outbox.gate(true)).map(move |f| Incoming { conn, frame: Some(f) });
        let end = futures_util::stream::once(async move { Incoming { conn, frame: None } });
        ctx.add_stream(stream.chain(end));
        self.conn = Some((conn, outbox));
        self.reported = self.acked;
        self.node.do_send(RoleUpdate::Followed {
            master: addr,
            epoch: welcome.epoch.max(self.epoch()),
            last_lsn: self.acked,
            redis: welcome.redis,
        });
    }

    fn disconnect(&mut self, reason: &str) {
        if let Some((_, mut outbox)) = self.conn.take() {
            tracing::warn!(master = %self.master, reason, "lost the master");
            outbox.close();
        }
        self.incoming_snapshot = None;
    }

    fn apply(&mut self, record: LogRecord, ctx: &mut Context<Self>) -> Result<(), String> {
        if record.lsn() != self.state.next_lsn {
            return Err(format!("expected LSN {}, got {}", self.state.next_lsn.0, record.lsn().0));
        }
        self.state.next_lsn = Lsn(self.state.next_lsn.0 + 1);
        self.state.apply_record(record.clone());
        self.wal.do_send(Append { entry: LogEntry::Shipped(record), notify: Some(ctx.address().recipient()) });
        Ok(())
    }

    /// Replaces the log and the cache with a snapshot from the master.
    fn install(&mut self, snap: Snapshot, ctx: &mut Context<Self>) {
        tracing::info!(lsn = snap.lsn.0, keys = snap.entries.len(), "installing the master's snapshot");
        self.wal.do_send(Stop);
        let dir = self.dir.clone();
        let lsn = snap.lsn;
        let epoch = snap.epoch;
        let mut state = Recovered {
            next_lsn: Lsn(lsn.0 + 1),
            epoch,
            newest_grant: Some((epoch, snap.master.clone())),
            members: Membership::from_records(snap.members.clone()),
            stamp: snap.stamp,
            ..Recovered::default()
        };
        for (key, entry) in &snap.entries {
            state.max_version = state.max_version.max(entry.version);
            state.entries.apply_newest(key, entry.clone());
        }
        let work = actix_rt::task::spawn_blocking(move || reset_to_snapshot(&dir, &snap));
        ctx.wait(work.into_actor(self).map(move |result, act, ctx| {
            match result {
                Ok(Ok(())) => {}
                Ok(Err(err)) => return act.fail(&format!("cannot install the snapshot: {err}"), ctx),
                Err(err) => return act.fail(&format!("cannot install the snapshot: {err}"), ctx),
            }
            let fresh = Recovered { next_lsn: Lsn(lsn.0 + 1), epoch, ..Recovered::default() };
            match WalWriter::start(act.dir.clone(), &fresh, standby_wal(&act.config)) {
                Ok(wal) => act.wal = wal,
                Err(err) => return act.fail(&format!("cannot reopen the log: {err}"), ctx),
            }
            act.state = state;
            act.acked = lsn;
            if let Some((_, outbox)) = &act.conn {
                outbox.send(ToServer::StandbyAck { lsn });
            }
        }));
    }

    fn fail(&mut self, reason: &str, ctx: &mut Context<Self>) {
        tracing::error!(reason, "the standby cannot go on; stopping the process");
        ctx.stop();
        self.exit.now(1);
    }

    /// The master closed the connection: dial it again shortly to tell a dead process from a
    /// broken connection.
    fn redial_soon(&mut self, ctx: &mut Context<Self>) {
        self.closed = true;
        ctx.run_later(REDIAL_AFTER_CLOSE, |act, ctx| act.connect(ctx));
    }

    /// Hands the replayed state and the log writer to the node, which campaigns with them.
    fn take_over(&mut self, why: &str, ctx: &mut Context<Self>) {
        if self.promoting {
            return;
        }
        self.promoting = true;
        // A snapshot half received is dropped with the connection: the log and state it would
        // have replaced are intact, and are what the takeover campaigns with.
        self.disconnect("taking over");
        tracing::warn!(%why, silent = ?self.last_heard.elapsed(), "campaigning to take over");
        let facts = self.state.facts();
        let entries = std::mem::take(&mut self.state.entries);
        let stamp = self.state.stamp;
        self.node.do_send(RoleUpdate::TakeOver { facts, entries, stamp, wal: self.wal.clone() });
        ctx.stop();
    }
}

/// A standby's own log neither ships nor needs frequent snapshots of its own making.
pub fn standby_wal(config: &MasterConfig) -> WalConfig {
    WalConfig { ship: false, ..config.wal }
}

/// Writes `snap` and removes every other log and snapshot file.
fn reset_to_snapshot(dir: &DataDir, snap: &Snapshot) -> Result<(), crate::Error> {
    snapshot::write(dir, snap)?;
    for (_, path) in dir.segments()? {
        std::fs::remove_file(&path).map_err(|e| crate::Error::io(format!("cannot remove {}", path.display()), e))?;
    }
    for (lsn, path) in dir.snapshots()? {
        if lsn != snap.lsn {
            std::fs::remove_file(&path)
                .map_err(|e| crate::Error::io(format!("cannot remove {}", path.display()), e))?;
        }
    }
    dir.sync()
}

impl Actor for Standby {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.connect(ctx);
        let interval = self.config.standby_heartbeat;
        ctx.run_interval(interval, move |act, ctx| {
            if act.promoting {
                return;
            }
            let late = act.last_tick.elapsed();
            act.last_tick = Instant::now();
            if late > interval * STALLED_TICKS && !crate::mutation::enabled("mutation-standby-no-stall-check") {
                // This process was stalled: what waits in the socket is read before silence counts.
                tracing::warn!(?late, "this standby was stalled; counting the master's silence afresh");
                act.last_heard = Instant::now();
            }
            if act.last_heard.elapsed() >= act.config.failover_after {
                return act.take_over("the master is silent", ctx);
            }
            match &act.conn {
                Some((_, outbox)) => {
                    outbox.send(ToServer::StandbyPing);
                }
                None => act.connect(ctx),
            }
            if act.acked != act.reported && act.conn.is_some() {
                act.reported = act.acked;
                act.node.do_send(RoleUpdate::Progress { epoch: act.epoch(), last_lsn: act.acked });
            }
        });
    }
}

impl StreamHandler<Incoming> for Standby {
    fn handle(&mut self, msg: Incoming, ctx: &mut Context<Self>) {
        if self.conn.as_ref().map(|c| c.0) != Some(msg.conn) {
            return;
        }
        let frame = match msg.frame {
            Some(Ok(frame)) => frame,
            Some(Err(err)) => {
                self.disconnect(&err.to_string());
                return self.redial_soon(ctx);
            }
            None => {
                self.disconnect("the master closed the connection");
                return self.redial_soon(ctx);
            }
        };
        self.last_heard = Instant::now();
        let result = match frame {
            FromServer::Ship(Ship::Records { records }) => {
                records.into_iter().try_for_each(|record| self.apply(record, ctx))
            }
            FromServer::Ship(Ship::SnapshotBegin { lsn, epoch, master, members, stamp }) => {
                self.incoming_snapshot = Some(Snapshot { lsn, epoch, master, members, stamp, entries: Vec::new() });
                Ok(())
            }
            FromServer::Ship(Ship::SnapshotChunk { entries }) => match &mut self.incoming_snapshot {
                Some(snap) => {
                    snap.entries.extend(entries);
                    Ok(())
                }
                None => Err("a snapshot chunk without a beginning".to_string()),
            },
            FromServer::Ship(Ship::SnapshotEnd) => match self.incoming_snapshot.take() {
                Some(snap) => {
                    self.install(snap, ctx);
                    Ok(())
                }
                None => Err("a snapshot end without a beginning".to_string()),
            },
            FromServer::Ship(Ship::Pong { durable, .. }) => {
                tracing::debug!(lag = durable.0.saturating_sub(self.acked.0), "master pong");
                Ok(())
            }
            FromServer::Error(err) => Err(format!("the master sent an error: {err}")),
            FromServer::Welcome(_)
            | FromServer::Challenge { .. }
            | FromServer::Response { .. }
            | FromServer::SlaveRequest { .. } => {
                Err("a frame that does not belong on a standby connection".to_string())
            }
        };
        if let Err(reason) = result {
            if let Some((_, outbox)) = &self.conn {
                outbox.send(ToServer::Error(WireError::protocol(reason.clone())));
            }
            self.disconnect(&reason);
        }
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {}
}

impl Handler<Durable> for Standby {
    type Result = ();

    fn handle(&mut self, msg: Durable, ctx: &mut Context<Self>) {
        match msg.result {
            Ok(()) if msg.lsn > self.acked => {
                self.acked = msg.lsn;
                if let Some((_, outbox)) = &self.conn {
                    outbox.send(ToServer::StandbyAck { lsn: msg.lsn });
                }
            }
            Ok(()) => {}
            Err(err) => self.fail(&format!("the standby's log failed: {err}"), ctx),
        }
    }
}
