//! The inventory reader: a short-lived actor that pages through everything one slave holds,
//! for a master that is taking over. Its requests carry the new epoch, so the slave is fenced
//! against the old master from the first page on.

use actix::prelude::{Actor, ActorContext, Addr, AsyncContext, Context, Handler};

use net::{Entry, Epoch, Incarnation, Key, NodeId, SlaveOp, SlaveReply};

use super::coordinator::{CoordinatorActor, InventoryDone};
use super::slave_proxy::{Call, SlaveAnswer, SlaveProxy};

pub struct InventoryReader {
    node: NodeId,
    incarnation: Incarnation,
    proxy: Addr<SlaveProxy>,
    epoch: Epoch,
    coordinator: Addr<CoordinatorActor>,
    entries: Vec<(Key, Entry)>,
}

impl InventoryReader {
    pub fn new(
        node: NodeId,
        incarnation: Incarnation,
        proxy: Addr<SlaveProxy>,
        epoch: Epoch,
        coordinator: Addr<CoordinatorActor>,
    ) -> Self {
        InventoryReader { node, incarnation, proxy, epoch, coordinator, entries: Vec::new() }
    }

    fn ask(&self, cursor: u64, ctx: &mut Context<Self>) {
        let reply_to = ctx.address().recipient();
        self.proxy.do_send(Call { epoch: self.epoch, op: SlaveOp::Inventory { cursor }, reply_to, tag: 0 });
    }

    fn finish(&mut self, ok: bool, ctx: &mut Context<Self>) {
        let entries = std::mem::take(&mut self.entries);
        let (node, incarnation) = (self.node.clone(), self.incarnation);
        self.coordinator.do_send(InventoryDone { node, incarnation, entries, ok });
        ctx.stop();
    }
}

impl Actor for InventoryReader {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.ask(0, ctx);
    }
}

impl Handler<SlaveAnswer> for InventoryReader {
    type Result = ();

    fn handle(&mut self, msg: SlaveAnswer, ctx: &mut Context<Self>) {
        match msg.result {
            Ok(SlaveReply::Inventory { entries, next }) => {
                self.entries.extend(entries);
                match next {
                    Some(cursor) => self.ask(cursor, ctx),
                    None => self.finish(true, ctx),
                }
            }
            Ok(other) => {
                tracing::error!(slave = %self.node, ?other, "slave answered an inventory wrongly");
                self.finish(false, ctx);
            }
            Err(err) => {
                tracing::warn!(slave = %self.node, ?err, "inventory failed");
                self.finish(false, ctx);
            }
        }
    }
}
