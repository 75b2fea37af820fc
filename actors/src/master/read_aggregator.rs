//! The read aggregator: a short-lived actor per quorum read (and per discovery).
//!
//! A client read asks every target, waits until `needed` counting answers are in, takes the
//! newest entry, writes it back to every answer that was older or empty, and answers the
//! client once `needed` replicas hold it, and the master's log too: a value the log may not
//! hold yet (the key had a record in flight, or the slaves hold a version newer than the
//! master's copy) is answered through the coordinator, once the log made it durable. Answers that arrive later are repaired too, after the
//! client has its value. A discovery asks every live slave and reports all answers to the
//! coordinator; one missing answer makes it incomplete.
//!
//! Repairs carry the stamp the read was planned with (see `Coordinator::stamp`). A winner newer
//! than the master's copy is a version the master's log may not have: the coordinator appends
//! it with a stamp of its own, and the read writes that stamp to every replica it counts, the
//! ones that already held the version included, before it answers.

use std::time::Duration;

use actix::prelude::{Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, WrapFuture};

use net::{ClientReply, Entry, Epoch, Key, SlaveOp, SlaveReply, Version, WireError};

use super::coordinator::{Caller, CoordinatorActor, Discovered, ReadWon, Revalidated, SettleRead};
use super::core::{Found, Target};
use super::quorum::{decide_read, ReadAnswer};
use super::slave_proxy::{Call, CallError, SlaveAnswer, SlaveProxy};

/// Why the read is made.
pub enum Purpose {
    Client(Caller),
    Discover,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Pending,
    Answered(Option<Entry>),
    /// A write-back is in flight.
    Repairing,
    /// Holds the winning version (or newer).
    Holds,
    Failed,
}

pub struct ReadAggregator {
    key: Key,
    targets: Vec<(Target, Option<Addr<SlaveProxy>>)>,
    needed: usize,
    slots: Vec<Slot>,
    purpose: Option<Purpose>,
    discover: bool,
    winner: Option<Entry>,
    /// The master's copy's version when the read was planned: a newer winner is reported.
    known: Option<Version>,
    /// The answer goes through the coordinator, which sends it once the log holds it.
    settle: bool,
    /// The stamp repairs carry.
    stamp: Version,
    /// Waiting for the coordinator to stamp a winner newer than its copy.
    restamping: bool,
    /// The winner was stamped: a replica counts only once it holds the stamp too.
    stamped: bool,
    coordinator: Addr<CoordinatorActor>,
    timeout: Duration,
    epoch: Epoch,
}

impl ReadAggregator {
    pub fn new(
        key: Key,
        targets: Vec<(Target, Option<Addr<SlaveProxy>>)>,
        needed: usize,
        purpose: Purpose,
        coordinator: Addr<CoordinatorActor>,
        timeout: Duration,
        epoch: Epoch,
    ) -> Self {
        let slots = vec![Slot::Pending; targets.len()];
        let discover = matches!(purpose, Purpose::Discover);
        ReadAggregator {
            key,
            targets,
            needed,
            slots,
            purpose: Some(purpose),
            discover,
            winner: None,
            known: None,
            settle: false,
            stamp: Version::ZERO,
            restamping: false,
            stamped: false,
            coordinator,
            timeout,
            epoch,
        }
    }

    /// The version of the master's own copy of the key when the read was planned, and the
    /// stamp of its repairs.
    pub fn known(mut self, known: Option<Version>, unsynced: bool, stamp: Version) -> Self {
        self.known = known;
        self.settle = unsynced;
        self.stamp = stamp;
        self
    }

    fn send(&self, tag: usize, op: SlaveOp, ctx: &mut Context<Self>) -> bool {
        match &self.targets[tag].1 {
            Some(proxy) if proxy.connected() => {
                proxy.do_send(Call { epoch: self.epoch, op, reply_to: ctx.address().recipient(), tag });
                true
            }
            Some(_) | None => false,
        }
    }

    fn repair(&mut self, tag: usize, winner: &Entry, ctx: &mut Context<Self>) {
        let op = SlaveOp::Write {
            key: self.key.clone(),
            version: winner.version,
            value: winner.value.clone(),
            stamp: Some(self.stamp),
        };
        self.slots[tag] = if self.send(tag, op, ctx) { Slot::Repairing } else { Slot::Failed };
    }

    fn answer(&mut self, result: Result<ClientReply, WireError>) {
        if let Some(Purpose::Client(caller)) = self.purpose.take() {
            caller.answer(result);
        }
    }

    fn settled(&self) -> bool {
        !self.slots.iter().any(|s| matches!(s, Slot::Pending | Slot::Repairing))
    }

    fn check(&mut self, ctx: &mut Context<Self>) {
        if self.discover {
            return self.check_discovery(ctx);
        }
        if self.restamping {
            return;
        }
        if self.winner.is_none() && self.purpose.is_some() {
            self.decide(ctx);
            if self.restamping {
                return;
            }
        }
        if let (Some(winner), true) = (&self.winner, self.purpose.is_some()) {
            let holders = self.slots.iter().filter(|s| **s == Slot::Holds).count();
            let possible = holders + self.slots.iter().filter(|s| matches!(s, Slot::Pending | Slot::Repairing)).count();
            if holders >= self.needed {
                let reply = ClientReply::Value { value: winner.value.clone(), version: Some(winner.version) };
                match self.purpose.take() {
                    Some(Purpose::Client(caller)) if self.settle => {
                        let (key, version) = (self.key.clone(), winner.version);
                        self.coordinator.do_send(SettleRead { key, version, caller, reply });
                    }
                    purpose => {
                        self.purpose = purpose;
                        self.answer(Ok(reply));
                    }
                }
            } else if possible < self.needed {
                self.answer(Err(WireError::unavailable(format!(
                    "read repair of {} reached {holders} of the {} replicas it needs",
                    self.key, self.needed
                ))));
            }
        }
        if self.settled() {
            ctx.stop();
        }
    }

    /// The gather phase: decide once enough counting answers are in.
    fn decide(&mut self, ctx: &mut Context<Self>) {
        let answered: Vec<(usize, ReadAnswer<'_>)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| match slot {
                Slot::Answered(entry) => {
                    Some((i, ReadAnswer { counts: self.targets[i].0.counts, entry: entry.as_ref() }))
                }
                Slot::Pending | Slot::Repairing | Slot::Holds | Slot::Failed => None,
            })
            .collect();
        let answers: Vec<ReadAnswer<'_>> = answered.iter().map(|(_, a)| a.clone()).collect();
        let Some(decision) = decide_read(&answers, self.needed) else {
            let counting_left = self
                .slots
                .iter()
                .enumerate()
                .filter(|(i, s)| self.targets[*i].0.counts && matches!(s, Slot::Pending | Slot::Answered(_)))
                .count();
            if counting_left < self.needed {
                self.answer(Err(WireError::unavailable(format!(
                    "only {counting_left} replicas of {} can answer, {} needed",
                    self.key, self.needed
                ))));
            }
            return;
        };
        let stale: Vec<usize> = decision.stale.iter().map(|&j| answered[j].0).collect();
        let holders: Vec<usize> = answered.iter().map(|(i, _)| *i).filter(|i| !stale.contains(i)).collect();
        let Some(winner) = decision.winner else {
            self.answer(Ok(ClientReply::Value { value: None, version: None }));
            return;
        };
        // The master's copy is raised to the winner before the read can answer, so that no
        // refill copies an older value back, and the answer waits for the log to hold it.
        let newer = !matches!(self.known, Some(known) if winner.version <= known);
        if newer && !crate::mutation::enabled("mutation-no-read-raise") {
            self.settle = true;
            self.restamping = true;
            let restamp_holders = !crate::mutation::enabled("mutation-no-restamp");
            if !restamp_holders {
                for &i in &holders {
                    self.slots[i] = Slot::Holds;
                }
            }
            let won = self.coordinator.send(ReadWon { key: self.key.clone(), entry: winner.clone() });
            ctx.spawn(won.into_actor(self).map(move |stamp, act, ctx| {
                act.restamping = false;
                let Ok(stamp) = stamp else {
                    act.answer(Err(WireError::internal("the coordinator stopped")));
                    return ctx.stop();
                };
                act.stamp = stamp;
                act.stamped = !crate::mutation::enabled("mutation-no-restamp");
                let Some(winner) = act.winner.clone() else { return };
                // Every answer in so far (late ones included) gets the stamp; holders that
                // already had the version count once they hold the stamp too.
                for i in 0..act.slots.len() {
                    if matches!(act.slots[i], Slot::Answered(_)) {
                        act.repair(i, &winner, ctx);
                    }
                }
                act.check(ctx);
            }));
            self.winner = Some(winner);
            return;
        }
        if newer {
            self.settle = true;
        }
        for i in holders {
            self.slots[i] = Slot::Holds;
        }
        for i in stale {
            self.repair(i, &winner, ctx);
        }
        self.winner = Some(winner);
    }

    fn check_discovery(&mut self, ctx: &mut Context<Self>) {
        if !self.settled() {
            return;
        }
        let complete = !self.slots.contains(&Slot::Failed);
        let found = self
            .slots
            .iter()
            .zip(&self.targets)
            .filter_map(|(slot, (target, _))| match slot {
                Slot::Answered(entry) => {
                    Some(Found { node: target.node.clone(), incarnation: target.incarnation, entry: entry.clone() })
                }
                Slot::Pending | Slot::Repairing | Slot::Holds | Slot::Failed => None,
            })
            .collect();
        self.coordinator.do_send(Discovered { key: self.key.clone(), found, complete });
        ctx.stop();
    }
}

impl Actor for ReadAggregator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for tag in 0..self.targets.len() {
            if !self.send(tag, SlaveOp::Read { key: self.key.clone() }, ctx) {
                self.slots[tag] = Slot::Failed;
            }
        }
        ctx.run_later(self.timeout, |act, ctx| {
            if act.discover {
                for slot in act.slots.iter_mut().filter(|s| **s == Slot::Pending) {
                    *slot = Slot::Failed;
                }
                return act.check_discovery(ctx);
            }
            let detail = format!("read of {} did not reach a majority within {:?}", act.key, act.timeout);
            act.answer(Err(WireError::unavailable(detail)));
            ctx.stop();
        });
        self.check(ctx);
    }
}

impl Handler<SlaveAnswer> for ReadAggregator {
    type Result = ();

    fn handle(&mut self, msg: SlaveAnswer, ctx: &mut Context<Self>) {
        let tag = msg.tag;
        let target = self.targets[tag].0.clone();
        match (self.slots[tag].clone(), msg.result) {
            (Slot::Pending, Ok(SlaveReply::Read { entry })) => match self.winner.clone() {
                None => self.slots[tag] = Slot::Answered(entry),
                // A late answer while the winner is being stamped: repaired with the stamp.
                Some(_) if self.restamping => self.slots[tag] = Slot::Answered(entry),
                // A late answer, after the decision: repair it if it is behind.
                Some(winner) => match entry {
                    Some(e) if e.version > winner.version || (e.version == winner.version && !self.stamped) => {
                        self.slots[tag] = Slot::Holds
                    }
                    Some(_) | None => self.repair(tag, &winner, ctx),
                },
            },
            (Slot::Repairing, Ok(SlaveReply::Written { current })) => {
                let winner = self.winner.as_ref().map(|w| w.version);
                if winner.is_some_and(|w| current >= w) {
                    self.slots[tag] = Slot::Holds;
                    self.coordinator.do_send(Revalidated {
                        key: self.key.clone(),
                        node: target.node.clone(),
                        incarnation: target.incarnation,
                    });
                } else {
                    tracing::error!(slave = %target.node, %current, "slave answered a repair wrongly");
                    self.slots[tag] = Slot::Failed;
                }
            }
            (Slot::Pending | Slot::Repairing, Err(err)) => {
                if let CallError::Refused(err) = err {
                    tracing::warn!(slave = %target.node, %err, "slave refused a read");
                }
                self.slots[tag] = Slot::Failed;
            }
            (slot, result) => {
                tracing::error!(slave = %target.node, ?slot, ?result, "unexpected answer to a read");
                self.slots[tag] = Slot::Failed;
            }
        }
        self.check(ctx);
    }
}
