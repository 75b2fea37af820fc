//! The slave proxy: one actor per connected slave, owning its connection. It numbers the
//! requests it sends, remembers who waits for each (the in-flight table), pings the slave
//! every heartbeat, and drops the slave when it has been silent past the timeout or its
//! connection fails. When it stops, every request still in flight is answered as
//! `Disconnected` (a failure whose effect is unknown, never a hang) and the coordinator is told.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix::prelude::{Actor, ActorContext, Addr, AsyncContext, Context, Handler, Message, Recipient, StreamHandler};

use net::{Epoch, FromServer, NetError, NodeId, RequestId, SlaveOp, SlaveReply, ToServer, Welcome, WireError};

use super::coordinator::{CoordinatorActor, Deposed, SlaveLeft, SlaveStats};
use crate::outbox::{Outbox, LINGER};

/// Send `op` to the slave and report the answer to `reply_to`, tagged with `tag`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Call {
    pub epoch: Epoch,
    pub op: SlaveOp,
    pub reply_to: Recipient<SlaveAnswer>,
    pub tag: usize,
}

/// The answer to a [`Call`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct SlaveAnswer {
    pub tag: usize,
    pub result: Result<SlaveReply, CallError>,
}

/// Why a call failed.
#[derive(Debug, Clone)]
pub enum CallError {
    /// The slave answered with an error: the request was not carried out.
    Refused(WireError),
    /// The connection ended first: the request may or may not have been carried out.
    Disconnected,
}

/// Stop: a newer connection from the same slave replaced this one.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

enum InFlight {
    Call { reply_to: Recipient<SlaveAnswer>, tag: usize },
    Ping,
}

/// Heartbeat timing for slave proxies.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    pub interval: Duration,
    pub timeout: Duration,
}

pub struct SlaveProxy {
    node: NodeId,
    conn: u64,
    addr: SocketAddr,
    outbox: Outbox<FromServer>,
    coordinator: Addr<CoordinatorActor>,
    welcome: Welcome,
    heartbeat: Heartbeat,
    next_id: RequestId,
    in_flight: HashMap<RequestId, InFlight>,
    last_heard: Instant,
    closing: bool,
}

impl SlaveProxy {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        node: NodeId,
        conn: u64,
        addr: SocketAddr,
        outbox: Outbox<FromServer>,
        coordinator: Addr<CoordinatorActor>,
        welcome: Welcome,
        heartbeat: Heartbeat,
    ) -> Self {
        SlaveProxy {
            node,
            conn,
            addr,
            outbox,
            coordinator,
            welcome,
            heartbeat,
            next_id: 1,
            in_flight: HashMap::new(),
            last_heard: Instant::now(),
            closing: false,
        }
    }

    fn send(&mut self, epoch: Epoch, op: SlaveOp, entry: InFlight) -> bool {
        let id = self.next_id;
        self.next_id += 1;
        if !self.outbox.send(FromServer::SlaveRequest { id, epoch, op }) {
            return false;
        }
        self.in_flight.insert(id, entry);
        true
    }

    fn close_with(&mut self, err: WireError, ctx: &mut Context<Self>) {
        tracing::warn!(slave = %self.node, addr = %self.addr, %err, "closing the slave's connection");
        self.outbox.send(FromServer::Error(err));
        self.outbox.close();
        self.closing = true;
        self.fail_in_flight();
        ctx.run_later(LINGER, |_, ctx| ctx.stop());
    }

    fn handle_response(&mut self, id: RequestId, result: Result<SlaveReply, WireError>, ctx: &mut Context<Self>) {
        match self.in_flight.remove(&id) {
            Some(InFlight::Call { reply_to, tag }) => {
                reply_to.do_send(SlaveAnswer { tag, result: result.map_err(CallError::Refused) })
            }
            Some(InFlight::Ping) => match result {
                Ok(SlaveReply::Pong { keys }) => {
                    self.coordinator.do_send(SlaveStats { node: self.node.clone(), conn: self.conn, keys })
                }
                Ok(other) => self.close_with(WireError::protocol(format!("expected Pong, got {other:?}")), ctx),
                Err(err) => {
                    tracing::warn!(slave = %self.node, %err, "slave refused a heartbeat");
                    ctx.stop();
                }
            },
            None => self.close_with(WireError::protocol(format!("response to unknown request {id}")), ctx),
        }
    }

    fn fail_in_flight(&mut self) {
        for (_, entry) in self.in_flight.drain() {
            match entry {
                InFlight::Call { reply_to, tag } => {
                    reply_to.do_send(SlaveAnswer { tag, result: Err(CallError::Disconnected) })
                }
                InFlight::Ping => {}
            }
        }
    }
}

impl Actor for SlaveProxy {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.outbox.send(FromServer::Welcome(self.welcome.clone()));
        ctx.run_interval(self.heartbeat.interval, |act, ctx| {
            if act.closing {
                return;
            }
            let silent = act.last_heard.elapsed();
            if silent > act.heartbeat.timeout {
                tracing::warn!(slave = %act.node, ?silent, "slave missed its heartbeats; dropping it");
                act.closing = true;
                act.fail_in_flight();
                ctx.stop();
            } else {
                let epoch = act.welcome.epoch;
                act.send(epoch, SlaveOp::Ping, InFlight::Ping);
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.fail_in_flight();
        self.coordinator.do_send(SlaveLeft { node: self.node.clone(), conn: self.conn });
    }
}

impl StreamHandler<Result<ToServer, NetError>> for SlaveProxy {
    fn handle(&mut self, frame: Result<ToServer, NetError>, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        self.last_heard = Instant::now();
        match frame {
            Ok(ToServer::SlaveResponse { id, result }) => {
                match &result {
                    Err(WireError::StaleEpoch { current, .. }) => {
                        self.coordinator.do_send(Deposed { epoch: *current, holder: None, slave: self.node.clone() })
                    }
                    Err(WireError::Fenced { epoch, holder }) => {
                        let holder = Some(holder.clone());
                        self.coordinator.do_send(Deposed { epoch: *epoch, holder, slave: self.node.clone() })
                    }
                    Ok(_) | Err(_) => {}
                }
                self.handle_response(id, result, ctx)
            }
            Ok(ToServer::Error(err)) => {
                tracing::warn!(slave = %self.node, %err, "slave sent an error");
                ctx.stop();
            }
            Ok(ToServer::Hello(_) | ToServer::Proof { .. }) => {
                self.close_with(WireError::protocol("handshake already done"), ctx)
            }
            Ok(ToServer::Request { .. } | ToServer::StandbyAck { .. } | ToServer::StandbyPing) => {
                self.close_with(WireError::protocol("a client or standby frame on a slave connection"), ctx)
            }
            Err(err) => match err.to_wire() {
                Some(wire) => self.close_with(wire, ctx),
                None => {
                    tracing::info!(slave = %self.node, %err, "slave connection failed");
                    ctx.stop();
                }
            },
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        if !self.closing {
            tracing::warn!(slave = %self.node, addr = %self.addr, "slave closed its connection");
        }
        ctx.stop();
    }
}

impl Handler<Call> for SlaveProxy {
    type Result = ();

    #[cfg_attr(not(feature = "failpoints"), allow(unused_variables))]
    fn handle(&mut self, msg: Call, ctx: &mut Context<Self>) {
        #[cfg(feature = "failpoints")]
        {
            if fail::eval("slave-proxy-drop", |_| ()).is_some() {
                tracing::error!(slave = %self.node, "injected: dropping the slave's connection");
                msg.reply_to.do_send(SlaveAnswer { tag: msg.tag, result: Err(CallError::Disconnected) });
                self.outbox.close();
                self.closing = true;
                return ctx.stop();
            }
            let stall = |arg: Option<String>| arg.and_then(|ms| ms.parse().ok()).unwrap_or(500);
            if let Some(ms) = fail::eval("slave-proxy-stall", stall) {
                ctx.run_later(Duration::from_millis(ms), move |act, _| act.forward(msg));
                return;
            }
        }
        self.forward(msg);
    }
}

impl SlaveProxy {
    fn forward(&mut self, msg: Call) {
        let Call { epoch, op, reply_to, tag } = msg;
        if self.closing || !self.send(epoch, op, InFlight::Call { reply_to: reply_to.clone(), tag }) {
            reply_to.do_send(SlaveAnswer { tag, result: Err(CallError::Disconnected) });
        }
    }
}

impl Handler<Retire> for SlaveProxy {
    type Result = ();

    fn handle(&mut self, _msg: Retire, ctx: &mut Context<Self>) {
        self.outbox.close();
        ctx.stop();
    }
}
