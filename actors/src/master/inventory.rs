//! The inventory reader: a short-lived actor that pages through what one slave holds that
//! the taking-over master's log may lack (every entry written with a stamp above the log's
//! highest, see `Coordinator::stamp`), for a master that is taking over. Its requests carry the new epoch, so the slave is fenced
//! against the old master from the first page on. Each page goes to the coordinator as it
//! arrives; nothing of the inventory is kept here.

use actix::prelude::{Actor, ActorContext, Addr, AsyncContext, Context, Handler};

use net::{Epoch, Incarnation, NodeId, SlaveOp, SlaveReply, Version};

use super::coordinator::{CoordinatorActor, InventoryDone, InventoryPage};
use super::slave_proxy::{Call, SlaveAnswer, SlaveProxy};

pub struct InventoryReader {
    node: NodeId,
    incarnation: Incarnation,
    /// This reader's number, which the coordinator matches against the slave's current reader.
    reader: u64,
    proxy: Addr<SlaveProxy>,
    epoch: Epoch,
    since: Version,
    coordinator: Addr<CoordinatorActor>,
}

impl InventoryReader {
    pub fn new(
        node: NodeId,
        incarnation: Incarnation,
        reader: u64,
        proxy: Addr<SlaveProxy>,
        epoch: Epoch,
        since: Version,
        coordinator: Addr<CoordinatorActor>,
    ) -> Self {
        InventoryReader { node, incarnation, reader, proxy, epoch, since, coordinator }
    }

    fn ask(&self, cursor: u64, ctx: &mut Context<Self>) {
        let reply_to = ctx.address().recipient();
        self.proxy.do_send(Call {
            epoch: self.epoch,
            op: SlaveOp::Inventory { cursor, since: Some(self.since) },
            reply_to,
            tag: 0,
        });
    }

    fn finish(&mut self, ok: bool, ctx: &mut Context<Self>) {
        let (node, incarnation, reader) = (self.node.clone(), self.incarnation, self.reader);
        self.coordinator.do_send(InventoryDone { node, incarnation, reader, ok });
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
                let (node, incarnation, reader) = (self.node.clone(), self.incarnation, self.reader);
                self.coordinator.do_send(InventoryPage { node, incarnation, reader, entries });
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
