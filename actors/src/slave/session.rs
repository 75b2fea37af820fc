//! The slave's connection actor: one per connection to a master. Requests go to the store,
//! answers come back here and go out on the socket. A master that stays silent for longer
//! than the timeout (it pings every heartbeat) is given up, and the link reconnects.

use std::time::{Duration, Instant};

use actix::prelude::{Actor, ActorContext, Addr, AsyncContext, Context, Handler, Message, StreamHandler};

use net::{FromServer, NetError, NodeId, ToServer, WireError};

use super::link::MasterLink;
use super::store::{Applied, Apply, Store};
use crate::outbox::{Outbox, LINGER};

pub struct SlaveSession {
    master: String,
    /// The master's node id, from its welcome: the node this slave's requests come from.
    master_node: NodeId,
    outbox: Outbox<ToServer>,
    store: Addr<Store>,
    link: Addr<MasterLink>,
    last_heard: Instant,
    timeout: Duration,
    closing: bool,
}

/// Sent to the link when a session ends.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionEnded {
    pub master: String,
}

impl SlaveSession {
    pub fn new(
        master: String,
        master_node: NodeId,
        outbox: Outbox<ToServer>,
        store: Addr<Store>,
        link: Addr<MasterLink>,
        timeout: Duration,
    ) -> Self {
        SlaveSession { master, master_node, outbox, store, link, last_heard: Instant::now(), timeout, closing: false }
    }

    fn close_with(&mut self, err: WireError, ctx: &mut Context<Self>) {
        tracing::warn!(master = %self.master, %err, "closing the connection to the master");
        self.outbox.send(ToServer::Error(err));
        self.outbox.close();
        self.closing = true;
        ctx.run_later(LINGER, |_, ctx| ctx.stop());
    }
}

impl Actor for SlaveSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.timeout / 4, |act, ctx| {
            if act.last_heard.elapsed() > act.timeout {
                tracing::warn!(master = %act.master, timeout = ?act.timeout, "master silent; reconnecting");
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.link.do_send(SessionEnded { master: self.master.clone() });
    }
}

impl StreamHandler<Result<FromServer, NetError>> for SlaveSession {
    fn handle(&mut self, frame: Result<FromServer, NetError>, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        self.last_heard = Instant::now();
        match frame {
            Ok(FromServer::SlaveRequest { id, epoch, op }) => {
                let from = self.master_node.clone();
                self.store.do_send(Apply { id, from, epoch, op, reply_to: ctx.address().recipient() });
            }
            Ok(FromServer::Error(err)) => {
                tracing::warn!(master = %self.master, %err, "master sent an error");
                ctx.stop();
            }
            Ok(FromServer::Welcome(_) | FromServer::Challenge { .. }) => {
                self.close_with(WireError::protocol("a second handshake answer"), ctx)
            }
            Ok(FromServer::Response { .. } | FromServer::Ship(_)) => {
                self.close_with(WireError::protocol("a client or standby frame on a slave connection"), ctx)
            }
            Err(err) => match err.to_wire() {
                Some(wire) => self.close_with(wire, ctx),
                None => {
                    tracing::info!(master = %self.master, %err, "connection to the master failed");
                    ctx.stop();
                }
            },
        }
    }
}

impl Handler<Applied> for SlaveSession {
    type Result = ();

    fn handle(&mut self, msg: Applied, _ctx: &mut Context<Self>) {
        self.outbox.send(ToServer::SlaveResponse { id: msg.id, result: msg.result });
    }
}
