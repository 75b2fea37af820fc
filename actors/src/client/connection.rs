//! The client actor: keeps one connection to whichever server is master, numbers requests,
//! matches answers, and fails over.
//!
//! When the connection is lost, requests that only read (GET, status) are sent again on the
//! next connection; writes that were already sent are answered "outcome unknown" and never
//! replayed, because a replay after failover could apply a write twice or after a later one.
//! A server that answers "not master" did nothing, so everything it refused is sent again to
//! the master it names.
//!
//! A server can also fall silent without closing the connection (paused, hung, or cut off by
//! the network). While requests are in flight the client sends a `Ping` after [`PING_AFTER`] of
//! silence, which a live server's connection answers at once; after [`SILENCE_LIMIT`] without
//! any frame the connection is treated as lost (as above). Connecting dials every server at
//! once and takes the first that answers as master, so a paused server costs nothing either:
//! a client follows a takeover without waiting out its deadlines.
//!
//! While no server answers as master but the cluster is there (a standby or a candidate
//! answered, or this client had a master before), requests that were not sent wait for the
//! next master and are sent to it, until their deadline; the client dials again after a pause
//! that grows from 25 ms to 400 ms. A cluster that was never reached fails them at once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use actix::prelude::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, MessageResult, ResponseFuture, SpawnHandle,
    StreamHandler, WrapFuture,
};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use tokio::sync::oneshot;

use net::{
    ClientOp, ClientReply, Epoch, FromServer, NetError, PeerRole, RequestId, ServerRole, ToServer, Welcome, WireError,
};

use crate::dial::{dial, DialError, Dialed};
use crate::error::Error;
use crate::outbox::{frames, Outbox, OutputLimits};
use crate::security::Credentials;

/// How a client finds its master.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Master-capable addresses, tried in order (the master, then the backup).
    pub servers: Vec<String>,
    /// Deadline for one connection attempt, handshake included.
    pub connect_timeout: Duration,
    /// Deadline for an answer, from the moment a request is made.
    pub request_timeout: Duration,
    /// The password and TLS this client connects with.
    pub credentials: Credentials,
}

/// Which server the client is talking to.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerInfo {
    pub addr: String,
    pub welcome: Welcome,
}

/// Carry out `op`.
#[derive(Message)]
#[rtype(result = "Result<ClientReply, Error>")]
pub struct Call(pub ClientOp);

/// The server the client is connected to, if any.
#[derive(Message)]
#[rtype(result = "Option<ServerInfo>")]
pub struct CurrentServer;

/// A frame from connection number `conn`, or its end (`None`).
struct Incoming {
    conn: u64,
    frame: Option<Result<FromServer, NetError>>,
}

struct Pending {
    op: ClientOp,
    tx: oneshot::Sender<Result<ClientReply, Error>>,
    /// The connection it was sent on, if it was sent.
    sent_on: Option<u64>,
    /// Times it was sent again after a failover.
    retries: u32,
    /// When its caller stops waiting.
    deadline: Instant,
}

struct Connection {
    id: u64,
    server: ServerInfo,
    outbox: Outbox<ToServer>,
    /// The last frame from the server, or the first request sent after a quiet spell.
    last_heard: Instant,
    /// No request was in flight at the last liveness check.
    idle: bool,
    /// The task reading the connection, cancelled when the connection is given up for silence
    /// (a paused server never closes it).
    reader: SpawnHandle,
}

/// The first pause between connection attempts while no server answers as master; it doubles
/// up to [`RETRY_MAX`] and starts again once a master answers.
const RETRY_FIRST: Duration = Duration::from_millis(25);
const RETRY_MAX: Duration = Duration::from_millis(400);

/// Silence (with requests in flight) after which the client asks the server for a `Pong`.
pub const PING_AFTER: Duration = Duration::from_millis(300);

/// Silence (with requests in flight) after which the connection counts as lost.
pub const SILENCE_LIMIT: Duration = Duration::from_millis(1500);

/// Reads are sent again at most this many times after failovers.
const MAX_RETRIES: u32 = 4;

pub struct ClientActor {
    config: ClientConfig,
    conn: Option<Connection>,
    connecting: bool,
    conn_count: u64,
    /// The newest epoch a master answered with: a master with an older one has been replaced.
    newest_epoch: Epoch,
    /// When the liveness check last ran: a longer gap means this client was stalled itself.
    last_check: Instant,
    next_id: RequestId,
    pending: HashMap<RequestId, Pending>,
    waiting: VecDeque<RequestId>,
    /// A master address learned from a "not master" answer, tried first next time.
    redirect: Option<String>,
    /// The pause before the next connection attempt while no master answers.
    backoff: Duration,
}

impl ClientActor {
    pub fn new(config: ClientConfig) -> Self {
        ClientActor {
            config,
            conn: None,
            connecting: false,
            conn_count: 0,
            newest_epoch: Epoch(0),
            last_check: Instant::now(),
            next_id: 1,
            pending: HashMap::new(),
            waiting: VecDeque::new(),
            redirect: None,
            backoff: RETRY_FIRST,
        }
    }

    fn send(&mut self, id: RequestId) {
        let (Some(conn), Some(pending)) = (&mut self.conn, self.pending.get_mut(&id)) else {
            return;
        };
        if conn.outbox.send(ToServer::Request { id, op: pending.op.clone() }) {
            if conn.idle {
                // Silence is counted from the first request after a quiet spell.
                conn.idle = false;
                conn.last_heard = Instant::now();
            }
            pending.sent_on = Some(conn.id);
        } else {
            self.waiting.push_back(id);
        }
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        if self.connecting || self.conn.is_some() {
            return;
        }
        self.connecting = true;
        let mut servers = self.config.servers.clone();
        if let Some(redirect) = self.redirect.take() {
            servers.retain(|s| s != &redirect);
            servers.insert(0, redirect);
        }
        let timeout = self.config.connect_timeout;
        let credentials = self.config.credentials.clone();
        let newest = self.newest_epoch;
        // Every server is dialed at once and the first to answer as master wins, so a server
        // that is down, paused or slow to answer costs nothing when another one serves. A
        // master with an older epoch than one this client has seen was replaced and does not
        // know yet: it is kept only if no other master answers.
        let attempt = async move {
            let dial_one = |addr: String| {
                let credentials = credentials.clone();
                async move {
                    let result = dial(&addr, PeerRole::Client, timeout, &credentials).await;
                    (addr, result)
                }
            };
            let order = servers.clone();
            let mut tried: HashSet<String> = servers.iter().cloned().collect();
            let mut dials: FuturesUnordered<_> = servers.into_iter().map(&dial_one).collect();
            let mut failures: Vec<(String, String)> = Vec::new();
            // Some server answered the handshake: the cluster is up, between masters.
            let mut answered = false;
            let mut redirects = 0;
            let mut older: Option<Dialed> = None;
            let mut candidate: Option<Dialed> = None;
            while let Some((addr, result)) = dials.next().await {
                match result {
                    Ok(dialed) if dialed.welcome.role == ServerRole::Master && dialed.welcome.epoch >= newest => {
                        return Ok(dialed)
                    }
                    Ok(dialed) if dialed.welcome.role == ServerRole::Master => {
                        failures.push((addr.clone(), format!("{addr} serves an older epoch")));
                        if older.as_ref().is_none_or(|o| o.welcome.epoch < dialed.welcome.epoch) {
                            older = Some(dialed);
                        }
                    }
                    // A candidate holds commands until it serves: better than a master known to
                    // be replaced, worse than one that serves.
                    Ok(dialed) if dialed.welcome.role == ServerRole::Candidate => {
                        failures.push((addr.clone(), format!("{addr} is not serving yet")));
                        candidate.get_or_insert(dialed);
                    }
                    Ok(_) => {
                        answered = true;
                        failures.push((addr.clone(), format!("{addr} is a standby")));
                    }
                    Err(DialError::Refused(WireError::NotMaster { master })) => {
                        answered = true;
                        failures.push((addr.clone(), format!("{addr} is not master")));
                        if let Some(master) = master.filter(|m| redirects < 2 && tried.insert(m.clone())) {
                            redirects += 1;
                            dials.push(dial_one(master));
                        }
                    }
                    Err(err) => failures.push((addr.clone(), format!("{addr}: {err}"))),
                }
            }
            if let Some(dialed) = candidate.or(older) {
                return Ok(dialed);
            }
            // Reported in the order the servers were given (redirect targets last).
            failures.sort_by_key(|(addr, _)| order.iter().position(|s| s == addr).unwrap_or(usize::MAX));
            Err((failures.into_iter().map(|(_, why)| why).collect::<Vec<_>>().join("; "), answered))
        };
        ctx.spawn(attempt.into_actor(self).map(|result, act, ctx| {
            act.connecting = false;
            match result {
                Ok(dialed) => act.connected(dialed, ctx),
                Err((reason, answered)) => act.no_master(reason, answered, ctx),
            }
        }));
    }

    /// No server answered as master. While the cluster is between masters (a server answered,
    /// or this client had a master before) the requests not yet sent wait for the next one, as
    /// long as their deadlines allow; a cluster that was never reached fails them at once.
    fn no_master(&mut self, reason: String, answered: bool, ctx: &mut Context<Self>) {
        let wait = answered || self.conn_count > 0;
        let retry_at = Instant::now() + self.backoff;
        let mut kept = VecDeque::new();
        for id in std::mem::take(&mut self.waiting) {
            let Some(pending) = self.pending.get(&id) else { continue };
            if wait && !pending.tx.is_closed() && pending.deadline > retry_at {
                kept.push_back(id);
            } else if let Some(p) = self.pending.remove(&id) {
                let _ = p.tx.send(Err(Error::NoMaster(reason.clone())));
            }
        }
        self.waiting = kept;
        if !self.waiting.is_empty() {
            tracing::debug!(reason, backoff = ?self.backoff, "no master yet; trying again");
            ctx.run_later(self.backoff, |act, ctx| act.connect(ctx));
            self.backoff = (self.backoff * 2).min(RETRY_MAX);
        }
    }

    fn connected(&mut self, dialed: Dialed, ctx: &mut Context<Self>) {
        let Dialed { addr, welcome, reader, writer } = dialed;
        tracing::debug!(server = %addr, node = %welcome.node, "connected");
        self.backoff = RETRY_FIRST;
        self.newest_epoch = self.newest_epoch.max(welcome.epoch);
        self.conn_count += 1;
        let id = self.conn_count;
        let outbox = Outbox::spawn(writer, OutputLimits::DEFAULT, format_args!("server {addr}"));
        let stream = frames(reader, outbox.gate(false)).map(move |f| Incoming { conn: id, frame: Some(f) });
        let end = futures_util::stream::once(async move { Incoming { conn: id, frame: None } });
        let reader = ctx.add_stream(stream.chain(end));
        self.conn = Some(Connection {
            id,
            server: ServerInfo { addr, welcome },
            outbox,
            last_heard: Instant::now(),
            idle: true,
            reader,
        });
        for id in std::mem::take(&mut self.waiting) {
            self.send(id);
        }
    }

    /// The connection ended: resend reads, report writes as unknown, reconnect if needed.
    fn disconnected(&mut self, reason: &str, ctx: &mut Context<Self>) {
        let Some(conn) = self.conn.take() else { return };
        tracing::info!(server = %conn.server.addr, reason, "connection lost");
        let lost: Vec<RequestId> =
            self.pending.iter().filter(|(_, p)| p.sent_on == Some(conn.id)).map(|(id, _)| *id).collect();
        for id in lost {
            let Some(pending) = self.pending.get_mut(&id) else {
                continue;
            };
            let read_only = matches!(pending.op, ClientOp::Get { .. } | ClientOp::Status);
            if read_only && pending.retries < MAX_RETRIES {
                pending.retries += 1;
                pending.sent_on = None;
                self.waiting.push_back(id);
            } else if let Some(p) = self.pending.remove(&id) {
                let err = if read_only {
                    Error::NoMaster(format!("connection to {} lost", conn.server.addr))
                } else {
                    Error::ConnectionLost { server: conn.server.addr.clone() }
                };
                let _ = p.tx.send(Err(err));
            }
        }
        if !self.waiting.is_empty() {
            self.connect(ctx);
        }
    }

    /// Pings a quiet server that owes answers, and gives up on one silent for too long.
    fn check_liveness(&mut self, ctx: &mut Context<Self>) {
        let since_check = std::mem::replace(&mut self.last_check, Instant::now()).elapsed();
        let Some(conn) = &mut self.conn else { return };
        if since_check > 2 * PING_AFTER {
            // This client did not run for a while (a starved or stopped process): answers may be
            // waiting unread, so the silence says nothing about the server.
            conn.last_heard = Instant::now();
            return;
        }
        if !conn.outbox.is_open() {
            return self.disconnected("the connection's writer stopped", ctx);
        }
        let owed = self.pending.values().any(|p| p.sent_on == Some(conn.id));
        if !owed {
            conn.idle = true;
            return;
        }
        let silent = conn.last_heard.elapsed();
        if silent >= SILENCE_LIMIT {
            ctx.cancel_future(conn.reader);
            self.disconnected(&format!("no frame from the server for {silent:?}"), ctx);
        } else if silent >= PING_AFTER {
            // Not registered as pending: the answer only refreshes `last_heard`.
            let id = self.next_id;
            self.next_id += 1;
            conn.outbox.send(ToServer::Request { id, op: ClientOp::Ping });
        }
    }
}

impl Actor for ClientActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Forget requests whose callers gave up (timed out or dropped the future).
        ctx.run_interval(Duration::from_secs(1), |act, _| {
            act.pending.retain(|_, p| !p.tx.is_closed());
        });
        ctx.run_interval(PING_AFTER, |act, ctx| act.check_liveness(ctx));
    }
}

impl Handler<Call> for ClientActor {
    type Result = ResponseFuture<Result<ClientReply, Error>>;

    fn handle(&mut self, msg: Call, ctx: &mut Context<Self>) -> Self::Result {
        let id = self.next_id;
        self.next_id += 1;
        let (tx, rx) = oneshot::channel();
        let timeout = self.config.request_timeout;
        self.pending
            .insert(id, Pending { op: msg.0, tx, sent_on: None, retries: 0, deadline: Instant::now() + timeout });
        if self.conn.is_some() {
            self.send(id);
        } else {
            self.waiting.push_back(id);
            self.connect(ctx);
        }
        Box::pin(async move {
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(Error::Stopped),
                Err(_) => Err(Error::Timeout(timeout)),
            }
        })
    }
}

impl Handler<CurrentServer> for ClientActor {
    type Result = MessageResult<CurrentServer>;

    fn handle(&mut self, _msg: CurrentServer, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.conn.as_ref().map(|c| c.server.clone()))
    }
}

impl StreamHandler<Incoming> for ClientActor {
    fn handle(&mut self, msg: Incoming, ctx: &mut Context<Self>) {
        match &mut self.conn {
            Some(conn) if conn.id == msg.conn => conn.last_heard = Instant::now(),
            _ => return,
        }
        match msg.frame {
            Some(Ok(FromServer::Response { id, result })) => {
                let Some(pending) = self.pending.remove(&id) else {
                    return;
                };
                if let Err(WireError::NotMaster { master }) = &result {
                    // Refused before anything was done: safe to send again, writes included.
                    self.redirect = master.clone();
                    self.pending.insert(id, Pending { sent_on: None, ..pending });
                    self.waiting.push_back(id);
                    self.disconnected("server is not master", ctx);
                    self.connect(ctx);
                    return;
                }
                let _ = pending.tx.send(result.map_err(Error::Server));
            }
            Some(Ok(FromServer::Error(err))) => self.disconnected(&err.to_string(), ctx),
            Some(Ok(other)) => self.disconnected(&format!("unexpected frame {other:?}"), ctx),
            Some(Err(err)) => self.disconnected(&err.to_string(), ctx),
            None => self.disconnected("closed by the server", ctx),
        }
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {
        // Each connection's stream ends with an `Incoming { frame: None }`; the actor lives on.
    }
}
