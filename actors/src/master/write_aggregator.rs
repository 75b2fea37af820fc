//! The write aggregator: a short-lived actor per write. It sends the write to every target,
//! counts acknowledgements, answers as soon as `needed` targets hold the version (or as soon
//! as that has become impossible), stays until every target has answered so that late
//! acknowledgements still refill replicas, and stops.
//!
//! The answer to a failed write says whether it may still take effect: once any target may
//! have applied it (it acknowledged, or its connection died with the write in flight), the
//! client is told the outcome is unknown, never that the write failed.

use std::time::Duration;

use actix::prelude::{Actor, ActorContext, Addr, AsyncContext, Context, Handler};

use net::{ClientReply, Epoch, Incarnation, NodeId, SlaveOp, SlaveReply, WireError};

use super::coordinator::{Caller, CoordinatorActor, Refilled, RestartWrite, Revalidated, Seeded};
use super::core::{Target, WritePlan};
use super::slave_proxy::{Call, CallError, SlaveAnswer, SlaveProxy};
use super::wal_writer::Durable;

/// Who is told when the write completes.
pub enum Completion {
    /// A client's PUT or DEL.
    Client(Caller),
    /// The coordinator, copying a discovered entry into a new replica set.
    Seed,
    /// The coordinator, copying its entry to one member in the background.
    Refill { node: NodeId, incarnation: Incarnation },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Pending,
    Acked,
    Failed,
}

pub struct WriteAggregator {
    plan: WritePlan,
    targets: Vec<(Target, Option<Addr<SlaveProxy>>)>,
    slots: Vec<Slot>,
    maybe_applied: bool,
    /// The master's log holds the record (always true for copies, which need no record).
    durable: bool,
    completion: Option<Completion>,
    coordinator: Addr<CoordinatorActor>,
    timeout: Duration,
    epoch: Epoch,
    /// Stopped by a crash rather than by finishing: the coordinator, its supervisor, starts
    /// the write again (the same version, so a replica that has it already is unchanged).
    crashed: bool,
}

impl WriteAggregator {
    pub fn new(
        plan: WritePlan,
        targets: Vec<(Target, Option<Addr<SlaveProxy>>)>,
        completion: Completion,
        coordinator: Addr<CoordinatorActor>,
        timeout: Duration,
        epoch: Epoch,
    ) -> Self {
        let slots = vec![Slot::Pending; targets.len()];
        let plan_log = plan.log;
        WriteAggregator {
            plan,
            targets,
            slots,
            // A logged write may be replayed from the log after a crash: once appended, it may
            // take effect whatever the replicas say.
            maybe_applied: plan_log,
            durable: !plan_log,
            completion: Some(completion),
            coordinator,
            timeout,
            epoch,
            crashed: false,
        }
    }

    /// For a write whose record an earlier attempt already saw made durable.
    pub fn already_durable(mut self) -> Self {
        self.durable = true;
        self
    }

    fn count(&self, slot: Slot) -> usize {
        self.slots.iter().filter(|s| **s == slot).count()
    }

    fn check(&mut self, ctx: &mut Context<Self>) {
        let (acked, pending) = (self.count(Slot::Acked), self.count(Slot::Pending));
        if acked >= self.plan.needed && self.durable {
            self.complete(Ok(()));
        } else if acked + pending < self.plan.needed {
            let detail =
                format!("write of {} reached {acked} of the {} replicas it needs", self.plan.key, self.plan.needed);
            let err =
                if self.maybe_applied { WireError::outcome_unknown(detail) } else { WireError::unavailable(detail) };
            self.complete(Err(err));
        }
        if pending == 0 && self.completion.is_none() {
            ctx.stop();
        }
    }

    fn complete(&mut self, result: Result<(), WireError>) {
        let Some(completion) = self.completion.take() else {
            return;
        };
        match completion {
            Completion::Client(caller) => caller.answer(
                result.map(|()| ClientReply::Written { version: self.plan.entry.version, existed: self.plan.existed }),
            ),
            Completion::Seed => self.coordinator.do_send(Seeded { key: self.plan.key.clone(), ok: result.is_ok() }),
            Completion::Refill { node, incarnation } => {
                self.coordinator.do_send(Refilled { key: self.plan.key.clone(), node, incarnation, ok: result.is_ok() })
            }
        }
    }
}

impl Actor for WriteAggregator {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if self.crashed {
            return self.restart_by_supervisor();
        }
        let detail = format!("the write of {} stopped before it finished", self.plan.key);
        self.complete(Err(WireError::outcome_unknown(detail)));
    }

    fn started(&mut self, ctx: &mut Context<Self>) {
        fail::fail_point!("write-aggregator-crash", |_| {
            tracing::error!(key = %self.plan.key, "injected write aggregator crash");
            self.crashed = true;
            ctx.stop();
        });
        let me = ctx.address().recipient();
        for (tag, (_, proxy)) in self.targets.iter().enumerate() {
            match proxy {
                Some(proxy) if proxy.connected() => proxy.do_send(Call {
                    epoch: self.epoch,
                    op: SlaveOp::Write {
                        key: self.plan.key.clone(),
                        version: self.plan.entry.version,
                        value: self.plan.entry.value.clone(),
                        stamp: self.plan.stamp,
                    },
                    reply_to: me.clone(),
                    tag,
                }),
                Some(_) | None => self.slots[tag] = Slot::Failed,
            }
        }
        ctx.run_later(self.timeout, |act, ctx| {
            let detail = format!("no majority acknowledged the write of {} within {:?}", act.plan.key, act.timeout);
            act.complete(Err(WireError::outcome_unknown(detail)));
            ctx.stop();
        });
        self.check(ctx);
    }
}

impl WriteAggregator {
    /// Hands the write back to the coordinator after a crash.
    fn restart_by_supervisor(&mut self) {
        if let Some(completion) = self.completion.take() {
            let plan = self.plan.clone();
            let durable = self.durable;
            self.coordinator.do_send(RestartWrite { plan, completion, durable });
        }
    }
}

impl Handler<SlaveAnswer> for WriteAggregator {
    type Result = ();

    fn handle(&mut self, msg: SlaveAnswer, ctx: &mut Context<Self>) {
        let Some(slot) = self.slots.get_mut(msg.tag).filter(|s| **s == Slot::Pending) else {
            debug_assert!(false, "answer for tag {} that is not pending", msg.tag);
            return;
        };
        let target = &self.targets[msg.tag].0;
        let version = self.plan.entry.version;
        *slot = match msg.result {
            Ok(SlaveReply::Written { current }) if current >= version => {
                self.maybe_applied = true;
                if !target.counts {
                    self.coordinator.do_send(Revalidated {
                        key: self.plan.key.clone(),
                        node: target.node.clone(),
                        incarnation: target.incarnation,
                    });
                }
                Slot::Acked
            }
            Ok(reply) => {
                tracing::error!(slave = %target.node, ?reply, %version, "slave answered a write wrongly");
                Slot::Failed
            }
            Err(CallError::Refused(err)) => {
                tracing::warn!(slave = %target.node, %err, "slave refused a write");
                Slot::Failed
            }
            Err(CallError::Disconnected) => {
                self.maybe_applied = true;
                Slot::Failed
            }
        };
        self.check(ctx);
    }
}

impl Handler<Durable> for WriteAggregator {
    type Result = ();

    fn handle(&mut self, msg: Durable, ctx: &mut Context<Self>) {
        debug_assert!(self.plan.log, "only logged writes wait for the log");
        match msg.result {
            Ok(()) => {
                self.durable = true;
                self.check(ctx);
            }
            Err(reason) => {
                let detail = format!("the master's write-ahead log failed: {reason}");
                self.complete(Err(WireError::outcome_unknown(detail)));
                ctx.stop();
            }
        }
    }
}
