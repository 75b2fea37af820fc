//! The slave's link to its master: finds a master among the configured addresses, starts a
//! session on the connection, and after the session ends reconnects with exponential backoff
//! and jitter. It tries the master address first and then the backup, and takes a node that
//! answers as master or as a candidate (which asks for this slave's promise). A master older
//! than the epoch this slave promised refuses it in the handshake, and steps down.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::{Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Supervised, WrapFuture};
use rand::rngs::StdRng;
use rand::SeedableRng;

use net::{Incarnation, NodeId, PeerRole, ServerRole, WireError};

use super::session::{SessionEnded, SlaveSession};
use super::store::{Describe, Store};
use crate::backoff::Backoff;
use crate::dial::{dial, DialError, Dialed};
use crate::outbox::{frames, Outbox, OutputLimits};
use crate::security::Credentials;

/// How a slave finds and watches its master.
#[derive(Debug, Clone)]
pub struct SlaveConfig {
    pub id: NodeId,
    pub incarnation: Incarnation,
    /// Master-capable addresses, tried in order: the master, then the backup.
    pub servers: Vec<String>,
    /// Give up on a connection whose master has been silent this long.
    pub master_timeout: Duration,
    /// Deadline for one connection attempt, handshake included.
    pub dial_timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// The cluster key and TLS this slave connects with.
    pub credentials: Credentials,
    /// Answers to the master it may hold unread before it stops reading requests, and closes.
    pub output: OutputLimits,
}

pub struct MasterLink {
    config: Arc<SlaveConfig>,
    store: Addr<Store>,
    backoff: Backoff,
    rng: StdRng,
    connected: bool,
}

impl MasterLink {
    pub fn new(config: SlaveConfig, store: Addr<Store>) -> Self {
        let backoff = Backoff::new(config.backoff_base, config.backoff_cap);
        MasterLink { config: Arc::new(config), store, backoff, rng: StdRng::from_os_rng(), connected: false }
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        let config = self.config.clone();
        let store = self.store.clone();
        let attempt = async move {
            let info = store.send(Describe).await.map_err(|e| format!("store unavailable: {e}"))?;
            let role = PeerRole::Slave {
                id: config.id.clone(),
                epoch: info.epoch,
                incarnation: config.incarnation,
                max_version: info.max_version,
                keys: info.keys,
            };
            let mut failures = Vec::new();
            for addr in &config.servers {
                // A master older than this slave's promise refuses it (and learns it was
                // deposed, so it steps down); a candidate asks for a promise above it.
                match dial(addr, role.clone(), config.dial_timeout, &config.credentials).await {
                    // The master's name goes into this slave's promise file: it must be one.
                    Ok(dialed) if NodeId::parse(dialed.welcome.node.as_str()).is_err() => {
                        failures.push(format!("{addr}: a server whose name is not a node id"))
                    }
                    Ok(dialed) if matches!(dialed.welcome.role, ServerRole::Master | ServerRole::Candidate) => {
                        return Ok(dialed)
                    }
                    Ok(dialed) => failures.push(format!("{addr}: {:?}", dialed.welcome.role)),
                    Err(DialError::Refused(WireError::NotMaster { .. })) => {
                        failures.push(format!("{addr}: not master"))
                    }
                    Err(err) => failures.push(format!("{addr}: {err}")),
                }
            }
            Err(failures.join("; "))
        };
        ctx.wait(attempt.into_actor(self).map(|result, act, ctx| match result {
            Ok(dialed) => act.start_session(dialed, ctx),
            Err(reason) => {
                let delay = act.backoff.next_delay(&mut act.rng);
                tracing::warn!(%reason, ?delay, "no master reachable; retrying");
                ctx.run_later(delay, |act, ctx| act.connect(ctx));
            }
        }));
    }

    fn start_session(&mut self, dialed: Dialed, ctx: &mut Context<Self>) {
        let Dialed { addr, welcome, reader, writer } = dialed;
        tracing::info!(master = %addr, node = %welcome.node, epoch = %welcome.epoch, "connected to master");
        self.backoff.reset();
        self.connected = true;
        let outbox = Outbox::spawn(writer, self.config.output, format_args!("master {addr}"));
        let (store, link, timeout) = (self.store.clone(), ctx.address(), self.config.master_timeout);
        let master_node = welcome.node.clone();
        let requests = frames(reader, outbox.gate(true));
        SlaveSession::create(move |session_ctx| {
            <SlaveSession as actix::StreamHandler<_>>::add_stream(requests, session_ctx);
            SlaveSession::new(addr, master_node, outbox, store, link, timeout)
        });
    }
}

impl Actor for MasterLink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.connect(ctx);
    }
}

impl Supervised for MasterLink {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.connected = false;
        self.backoff.reset();
    }
}

impl Handler<SessionEnded> for MasterLink {
    type Result = ();

    fn handle(&mut self, msg: SessionEnded, ctx: &mut Context<Self>) {
        tracing::info!(master = %msg.master, "disconnected from master");
        self.connected = false;
        let delay = self.backoff.next_delay(&mut self.rng);
        ctx.run_later(delay, |act, ctx| act.connect(ctx));
    }
}
