//! The promise request: a short-lived actor that asks one slave, through its proxy, to promise
//! the candidate's epoch, and reports the answer to the node actor's role core.

use std::time::Duration;

use actix::prelude::{Actor, ActorContext, Addr, AsyncContext, Context, Handler};

use net::{Epoch, NodeId, SlaveOp, SlaveReply};

use super::role::{NodeActor, RoleUpdate};
use crate::master::slave_proxy::{Call, SlaveAnswer, SlaveProxy};
use crate::role::{Event, PromiseAnswer};

pub struct PromiseRequest {
    node: NodeId,
    epoch: Epoch,
    proxy: Addr<SlaveProxy>,
    reply_to: Addr<NodeActor>,
    timeout: Duration,
    answered: bool,
}

impl PromiseRequest {
    pub fn new(
        node: NodeId,
        epoch: Epoch,
        proxy: Addr<SlaveProxy>,
        reply_to: Addr<NodeActor>,
        timeout: Duration,
    ) -> Self {
        PromiseRequest { node, epoch, proxy, reply_to, timeout, answered: false }
    }

    fn report(&mut self, answer: Option<PromiseAnswer>, ctx: &mut Context<Self>) {
        if !self.answered {
            self.answered = true;
            let event = Event::Promise { node: self.node.clone(), asked: self.epoch, answer };
            self.reply_to.do_send(RoleUpdate::Event(event));
        }
        ctx.stop();
    }
}

impl Actor for PromiseRequest {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if !self.proxy.connected() {
            return self.report(None, ctx);
        }
        let reply_to = ctx.address().recipient();
        self.proxy.do_send(Call { epoch: self.epoch, op: SlaveOp::Promise, reply_to, tag: 0 });
        // A proxy that stops answers every call in flight; this only bounds a lost message.
        ctx.run_later(self.timeout, |act, ctx| act.report(None, ctx));
    }
}

impl Handler<SlaveAnswer> for PromiseRequest {
    type Result = ();

    fn handle(&mut self, msg: SlaveAnswer, ctx: &mut Context<Self>) {
        let answer = match msg.result {
            Ok(SlaveReply::Promised { granted, epoch, to, served }) => {
                Some(PromiseAnswer { granted, epoch, to, served })
            }
            Ok(other) => {
                tracing::error!(slave = %self.node, ?other, "slave answered a promise request wrongly");
                None
            }
            Err(err) => {
                tracing::info!(slave = %self.node, ?err, "promise request failed");
                None
            }
        };
        self.report(answer, ctx);
    }
}
