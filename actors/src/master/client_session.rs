//! The client connection actor: one per client connection. Requests go to the coordinator
//! tagged with the client's request id; answers come back as they complete, in any order.
//! A malformed frame or a frame out of place gets an error frame, and the connection closes.

use std::net::SocketAddr;

use actix::prelude::{Actor, ActorContext, Addr, AsyncContext, Context, Handler, StreamHandler};

use net::{ClientOp, ClientReply, FromServer, NetError, ToServer, Welcome, WireError};

use super::coordinator::{ClientDone, CoordinatorActor, Execute};
use crate::outbox::{Outbox, LINGER};

/// Requests one connection may have in flight; more are refused until answers go out.
pub const MAX_IN_FLIGHT: usize = 4096;

pub struct ClientSession {
    peer: SocketAddr,
    outbox: Outbox<FromServer>,
    coordinator: Addr<CoordinatorActor>,
    welcome: Option<Welcome>,
    in_flight: usize,
    closing: bool,
    /// The client closed its side: stop once every answer has gone out.
    half_closed: bool,
    /// The in-flight cap was hit and logged (once per connection).
    warned_busy: bool,
}

impl ClientSession {
    pub fn new(
        peer: SocketAddr,
        outbox: Outbox<FromServer>,
        coordinator: Addr<CoordinatorActor>,
        welcome: Welcome,
    ) -> Self {
        ClientSession {
            peer,
            outbox,
            coordinator,
            welcome: Some(welcome),
            in_flight: 0,
            closing: false,
            half_closed: false,
            warned_busy: false,
        }
    }

    fn close_with(&mut self, err: WireError, ctx: &mut Context<Self>) {
        tracing::info!(peer = %self.peer, %err, "closing a client connection");
        self.outbox.send(FromServer::Error(err));
        self.outbox.close();
        self.closing = true;
        ctx.run_later(LINGER, |_, ctx| ctx.stop());
    }
}

impl Actor for ClientSession {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        if let Some(welcome) = self.welcome.take() {
            self.outbox.send(FromServer::Welcome(welcome));
        }
    }
}

impl StreamHandler<Result<ToServer, NetError>> for ClientSession {
    fn handle(&mut self, frame: Result<ToServer, NetError>, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        match frame {
            Ok(ToServer::Request { id, op: ClientOp::Ping }) => {
                self.outbox.send(FromServer::Response { id, result: Ok(ClientReply::Pong) });
            }
            Ok(ToServer::Request { id, op }) => {
                if self.in_flight >= MAX_IN_FLIGHT {
                    if !self.warned_busy {
                        self.warned_busy = true;
                        tracing::warn!(peer = %self.peer, max = MAX_IN_FLIGHT, "refusing requests: too many in flight");
                    }
                    let err = WireError::unavailable(format!("more than {MAX_IN_FLIGHT} requests in flight"));
                    self.outbox.send(FromServer::Response { id, result: Err(err) });
                    return;
                }
                self.in_flight += 1;
                self.coordinator.do_send(Execute { id, op, reply: ctx.address().recipient() });
            }
            Ok(ToServer::Hello(_) | ToServer::Proof { .. }) => {
                self.close_with(WireError::protocol("handshake already done"), ctx)
            }
            Ok(ToServer::SlaveResponse { .. } | ToServer::StandbyAck { .. } | ToServer::StandbyPing) => {
                self.close_with(WireError::protocol("a slave or standby frame on a client connection"), ctx)
            }
            Ok(ToServer::Error(err)) => {
                tracing::info!(peer = %self.peer, %err, "client sent an error");
                ctx.stop();
            }
            Err(err) => match err.to_wire() {
                Some(wire) => self.close_with(wire, ctx),
                None => ctx.stop(),
            },
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        // The client may have only shut down its writing side: answer what it asked first.
        self.half_closed = true;
        if !self.closing && self.in_flight == 0 {
            ctx.stop();
        }
    }
}

impl Handler<ClientDone> for ClientSession {
    type Result = ();

    fn handle(&mut self, msg: ClientDone, ctx: &mut Context<Self>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.outbox.send(FromServer::Response { id: msg.id, result: msg.result });
        if self.half_closed && self.in_flight == 0 && !self.closing {
            ctx.stop();
        }
    }
}
