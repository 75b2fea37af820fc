//! The standby: follows the master's log over the network and takes over when it falls silent.
//!
//! It connects to the master as a backup, naming the epoch it has recorded and the next LSN it
//! needs. Records arrive durable on the master; the standby appends them to its own log (same
//! LSNs) and applies them to its cache of the state. A snapshot replaces both. It pings every
//! `--heartbeat-ms`; after `--failover-after-ms` without a frame from the master it takes over:
//! it records a new epoch (above every epoch it has seen, with its own parity so the two nodes
//! never choose the same one) durably, and hands its replayed state to the node, which starts the
//! coordinator from it. The coordinator serves once it has read enough slaves' inventories.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, StreamHandler, WrapFuture,
};
use futures_util::StreamExt;

use net::{
    Entry, Epoch, FromServer, Key, LogRecord, Lsn, NetError, NodeId, PeerRole, ServerRole, Ship, ToServer, WireError,
};

use super::role::{NodeActor, Promote};
use crate::dial::{dial, Dialed};
use crate::master::coordinator::SlaveWait;
use crate::master::quorum::majority;
use crate::master::wal_writer::{Append, AppendDurable, Durable, LogEntry, Stop, WalConfig, WalWriter};
use crate::master::MasterConfig;
use crate::outbox::{frames, Outbox};
use crate::wal::{snapshot, DataDir, Recovered, Snapshot};

/// A frame from connection `conn`, or its end.
struct Incoming {
    conn: u64,
    frame: Option<Result<FromServer, NetError>>,
}

pub struct Standby {
    config: Arc<MasterConfig>,
    master: String,
    parity: u64,
    dir: Arc<DataDir>,
    wal: Addr<WalWriter>,
    node: Addr<NodeActor>,
    cache: HashMap<Key, Entry>,
    epoch: Epoch,
    next_lsn: Lsn,
    acked: Lsn,
    conn: Option<(u64, Outbox<ToServer>)>,
    conns: u64,
    connecting: bool,
    last_heard: Instant,
    /// The master's live slaves, from its last Pong.
    slaves: Vec<NodeId>,
    incoming_snapshot: Option<Snapshot>,
    promoting: bool,
}

impl Standby {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Arc<MasterConfig>,
        master: String,
        parity: u64,
        dir: Arc<DataDir>,
        wal: Addr<WalWriter>,
        node: Addr<NodeActor>,
        recovered: Recovered,
    ) -> Self {
        let epoch = recovered.epoch.max(recovered.max_version.epoch);
        Standby {
            config,
            master,
            parity,
            dir,
            wal,
            node,
            cache: recovered.entries,
            epoch,
            next_lsn: recovered.next_lsn,
            acked: Lsn(recovered.next_lsn.0.saturating_sub(1)),
            conn: None,
            conns: 0,
            connecting: false,
            last_heard: Instant::now(),
            slaves: Vec::new(),
            incoming_snapshot: None,
            promoting: false,
        }
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        if self.connecting || self.conn.is_some() || self.promoting {
            return;
        }
        self.connecting = true;
        let role = PeerRole::Backup { id: self.config.node.clone(), epoch: self.epoch, next_lsn: self.next_lsn };
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
        tracing::info!(master = %addr, epoch = %welcome.epoch, from = self.next_lsn.0, "following the master");
        self.conns += 1;
        let conn = self.conns;
        self.last_heard = Instant::now();
        let stream = frames(reader).map(move |f| Incoming { conn, frame: Some(f) });
        let end = futures_util::stream::once(async move { Incoming { conn, frame: None } });
        ctx.add_stream(stream.chain(end));
        self.conn = Some((conn, Outbox::spawn(writer)));
        self.node.do_send(super::role::Following {
            master: addr,
            epoch: welcome.epoch.max(self.epoch),
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
        if record.lsn() != self.next_lsn {
            return Err(format!("expected LSN {}, got {}", self.next_lsn.0, record.lsn().0));
        }
        self.next_lsn = Lsn(self.next_lsn.0 + 1);
        match &record {
            LogRecord::Write { version, key, value, .. } => {
                let entry = Entry { version: *version, value: value.clone() };
                match self.cache.get_mut(key) {
                    Some(old) if old.version >= entry.version => {}
                    Some(old) => *old = entry,
                    None => {
                        self.cache.insert(key.clone(), entry);
                    }
                }
                self.epoch = self.epoch.max(version.epoch);
            }
            LogRecord::Epoch { epoch, .. } => self.epoch = self.epoch.max(*epoch),
        }
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
        let cache: HashMap<Key, Entry> = snap.entries.iter().cloned().collect();
        let work = actix_rt::task::spawn_blocking(move || reset_to_snapshot(&dir, &snap));
        ctx.wait(work.into_actor(self).map(move |result, act, ctx| {
            match result {
                Ok(Ok(())) => {}
                Ok(Err(err)) => return act.fail(&format!("cannot install the snapshot: {err}"), ctx),
                Err(err) => return act.fail(&format!("cannot install the snapshot: {err}"), ctx),
            }
            let recovered = Recovered { next_lsn: Lsn(lsn.0 + 1), epoch, ..Recovered::default() };
            match WalWriter::start(act.dir.clone(), &recovered, standby_wal(&act.config)) {
                Ok(wal) => act.wal = wal,
                Err(err) => return act.fail(&format!("cannot reopen the log: {err}"), ctx),
            }
            act.cache = cache;
            act.epoch = act.epoch.max(epoch);
            act.next_lsn = Lsn(lsn.0 + 1);
            act.acked = lsn;
            if let Some((_, outbox)) = &act.conn {
                outbox.send(ToServer::StandbyAck { lsn });
            }
        }));
    }

    fn fail(&mut self, reason: &str, ctx: &mut Context<Self>) {
        tracing::error!(reason, "the standby cannot go on; stopping the process");
        ctx.stop();
        actix_rt::System::current().stop_with_code(1);
    }

    fn promote(&mut self, ctx: &mut Context<Self>) {
        if self.promoting {
            return;
        }
        self.promoting = true;
        self.disconnect("taking over");
        let epoch = next_epoch(self.epoch, self.parity);
        // Every key lives on a majority of its replicas, and at most f = (R-1)/2 of the slaves
        // the master had can be missed without missing one of them for some key.
        let f = (self.config.replicas.saturating_sub(1)) / 2;
        let wait = match self.slaves.len() {
            0 => SlaveWait { slaves: majority(self.config.replicas), deadline: true },
            known => SlaveWait { slaves: known.saturating_sub(f).max(1), deadline: false },
        };
        tracing::warn!(silent = ?self.last_heard.elapsed(), new_epoch = %epoch, ?wait, "the master is silent; taking over");
        let record = self.wal.send(AppendDurable(LogEntry::Epoch(epoch)));
        ctx.wait(record.into_actor(self).map(move |result, act, ctx| match result {
            Ok(Ok(_)) => {
                let entries = std::mem::take(&mut act.cache);
                act.node.do_send(Promote { epoch, entries, wal: act.wal.clone(), wait });
                ctx.stop();
            }
            Ok(Err(err)) => act.fail(&format!("cannot record the new epoch: {err}"), ctx),
            Err(err) => act.fail(&format!("cannot record the new epoch: {err}"), ctx),
        }));
    }
}

/// The smallest epoch above `above` with the node's parity (0 or 1).
pub fn next_epoch(above: Epoch, parity: u64) -> Epoch {
    let mut next = above.0 + 1;
    if next % 2 != parity {
        next += 1;
    }
    Epoch(next)
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
        ctx.run_interval(interval, |act, ctx| {
            if act.promoting {
                return;
            }
            if act.last_heard.elapsed() >= act.config.failover_after {
                return act.promote(ctx);
            }
            match &act.conn {
                Some((_, outbox)) => {
                    outbox.send(ToServer::StandbyPing);
                }
                None => act.connect(ctx),
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
            Some(Err(err)) => return self.disconnect(&err.to_string()),
            None => return self.disconnect("the master closed the connection"),
        };
        self.last_heard = Instant::now();
        let result = match frame {
            FromServer::Ship(Ship::Records { records }) => {
                records.into_iter().try_for_each(|record| self.apply(record, ctx))
            }
            FromServer::Ship(Ship::SnapshotBegin { lsn, epoch }) => {
                self.incoming_snapshot = Some(Snapshot { lsn, epoch, entries: Vec::new() });
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
            FromServer::Ship(Ship::Pong { durable, slaves }) => {
                self.slaves = slaves;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_nodes_never_choose_the_same_epoch() {
        assert_eq!(next_epoch(Epoch(0), 0), Epoch(2));
        assert_eq!(next_epoch(Epoch(0), 1), Epoch(1));
        assert_eq!(next_epoch(Epoch(2), 1), Epoch(3));
        assert_eq!(next_epoch(Epoch(3), 0), Epoch(4));
        for above in 0..20 {
            assert_ne!(next_epoch(Epoch(above), 0), next_epoch(Epoch(above), 1));
            assert!(next_epoch(Epoch(above), 0) > Epoch(above));
        }
    }
}
