//! A slave's promise: the fencing decision every slave makes for every request.
//!
//! A slave keeps, durably, the highest epoch it has accepted, the node it accepted it from, and
//! the highest epoch in which it carried out a read or a write (`served`). A request is checked
//! against that before anything else happens:
//! - an older epoch is refused (`StaleEpoch`): the sender was replaced;
//! - the same epoch from another node is refused (`Fenced`): epochs are granted to one node;
//! - a newer epoch is taken (the sender was granted it: candidates ask with `Promise`, and only
//!   a granted master sends anything else carrying an epoch);
//! - a read or a write in an epoch above `served` raises `served`.
//!
//! Whatever changed is written to disk before the request is carried out or answered, so a
//! slave that restarts keeps refusing what it refused, and a later candidate learns from
//! `served` whether the master of an epoch ever completed anything.

use net::{Epoch, NodeId, SlaveOp, SlaveReply, WireError};

/// What a slave has promised.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Promise {
    /// The highest epoch accepted.
    pub epoch: Epoch,
    /// Who `epoch` was accepted from; `None` for a promise recorded before promises named
    /// their node (then any node may use that epoch).
    pub to: Option<NodeId>,
    /// The highest epoch in which a read or a write was carried out.
    pub served: Epoch,
}

/// How a request relates to fencing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A candidate asks for the promise.
    Promise,
    /// A read or a write: the sender serves.
    Serve,
    /// A request of a granted master that serves nothing to clients (a takeover's inventory).
    Other,
    /// A heartbeat: no effect, never fenced.
    Ping,
}

impl Kind {
    pub fn of(op: &SlaveOp) -> Kind {
        match op {
            SlaveOp::Promise => Kind::Promise,
            SlaveOp::Read { .. } | SlaveOp::Write { .. } => Kind::Serve,
            SlaveOp::Inventory { .. } => Kind::Other,
            SlaveOp::Ping => Kind::Ping,
        }
    }
}

/// The outcome of checking a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// Carry it out; first record `0` durably if it differs from the current promise.
    Proceed(Promise),
    /// Answer this without carrying anything out (a refusal, or a promise not given).
    Answer(Result<SlaveReply, WireError>),
}

impl Promise {
    /// Checks a request of `kind` carrying `epoch` from `from`.
    pub fn check(&self, from: &NodeId, epoch: Epoch, kind: Kind) -> Check {
        if kind == Kind::Ping {
            return Check::Proceed(self.clone());
        }
        let fenced_off = crate::mutation::fencing_off();
        if epoch < self.epoch && !fenced_off {
            return match kind {
                Kind::Promise => Check::Answer(Ok(self.refusal())),
                Kind::Serve | Kind::Other | Kind::Ping => {
                    Check::Answer(Err(WireError::StaleEpoch { sent: epoch, current: self.epoch }))
                }
            };
        }
        if epoch == self.epoch && self.to.as_ref().is_some_and(|to| to != from) && !fenced_off {
            return match kind {
                Kind::Promise => Check::Answer(Ok(self.refusal())),
                Kind::Serve | Kind::Other | Kind::Ping => {
                    let holder = self.to.clone().unwrap_or_else(|| from.clone());
                    Check::Answer(Err(WireError::Fenced { epoch, holder }))
                }
            };
        }
        let mut next = self.clone();
        // A newer epoch is taken; an epoch recorded before promises named their node is claimed
        // by the first node that uses it, so no other can use it too.
        if epoch > self.epoch || (epoch == self.epoch && self.to.is_none() && kind != Kind::Ping) {
            next.epoch = epoch;
            next.to = Some(from.clone());
        }
        if kind == Kind::Serve && epoch > next.served {
            next.served = epoch;
        }
        Check::Proceed(next)
    }

    /// The answer to a `Promise` request once `self` (after the check) is durable; `before`
    /// is the promise as it was.
    pub fn granted(&self, before: &Promise) -> SlaveReply {
        SlaveReply::Promised { granted: true, epoch: self.epoch, to: self.to.clone(), served: before.served }
    }

    fn refusal(&self) -> SlaveReply {
        SlaveReply::Promised { granted: false, epoch: self.epoch, to: self.to.clone(), served: self.served }
    }

    /// The file format: three lines, `epoch N`, `to NAME` (or `to -`), `served N`.
    pub fn encode(&self) -> String {
        let to = self.to.as_ref().map_or("-", NodeId::as_str);
        format!("epoch {}\nto {to}\nserved {}\n", self.epoch.0, self.served.0)
    }

    /// Parses [`Promise::encode`]'s format, or a bare epoch number (the older `epoch` file).
    pub fn decode(text: &str) -> Result<Promise, String> {
        let text = text.trim();
        if let Ok(epoch) = text.parse::<u64>() {
            // Written before promises named their node: assume the epoch also served.
            return Ok(Promise { epoch: Epoch(epoch), to: None, served: Epoch(epoch) });
        }
        let mut promise = Promise::default();
        let mut seen = [false; 3];
        for line in text.lines() {
            let (field, value) = line.split_once(' ').ok_or_else(|| format!("not a promise line: {line:?}"))?;
            let number = || value.parse::<u64>().map(Epoch).map_err(|e| format!("{field}: {e}"));
            match field {
                "epoch" => (promise.epoch, seen[0]) = (number()?, true),
                "served" => (promise.served, seen[2]) = (number()?, true),
                "to" if value == "-" => (promise.to, seen[1]) = (None, true),
                "to" => (promise.to, seen[1]) = (Some(NodeId::parse(value)?), true),
                other => return Err(format!("unknown promise field {other:?}")),
            }
        }
        if seen != [true; 3] {
            return Err("a promise needs the lines epoch, to and served".to_string());
        }
        Ok(promise)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> NodeId {
        NodeId(name.to_string())
    }

    fn promised(epoch: u64, to: &str, served: u64) -> Promise {
        Promise { epoch: Epoch(epoch), to: Some(node(to)), served: Epoch(served) }
    }

    #[test]
    fn a_newer_epoch_is_promised_to_its_sender() {
        let before = promised(2, "a", 2);
        let Check::Proceed(after) = before.check(&node("b"), Epoch(3), Kind::Promise) else { panic!() };
        assert_eq!(after, promised(3, "b", 2), "a promise does not raise served");
        assert_eq!(
            after.granted(&before),
            SlaveReply::Promised { granted: true, epoch: Epoch(3), to: Some(node("b")), served: Epoch(2) }
        );
    }

    #[test]
    fn an_epoch_belongs_to_one_node() {
        let p = promised(3, "a", 2);
        assert!(matches!(
            p.check(&node("b"), Epoch(3), Kind::Promise),
            Check::Answer(Ok(SlaveReply::Promised { granted: false, .. }))
        ));
        assert_eq!(
            p.check(&node("b"), Epoch(3), Kind::Serve),
            Check::Answer(Err(WireError::Fenced { epoch: Epoch(3), holder: node("a") }))
        );
        assert_eq!(p.check(&node("a"), Epoch(3), Kind::Promise), Check::Proceed(p.clone()), "asking again is fine");
    }

    #[test]
    fn older_epochs_are_refused_and_serving_is_recorded() {
        let p = promised(3, "a", 2);
        assert_eq!(
            p.check(&node("a"), Epoch(2), Kind::Serve),
            Check::Answer(Err(WireError::StaleEpoch { sent: Epoch(2), current: Epoch(3) }))
        );
        assert_eq!(p.check(&node("a"), Epoch(3), Kind::Serve), Check::Proceed(promised(3, "a", 3)));
        assert_eq!(p.check(&node("a"), Epoch(3), Kind::Other), Check::Proceed(p.clone()), "an inventory serves nobody");
        assert_eq!(p.check(&node("z"), Epoch(1), Kind::Ping), Check::Proceed(p.clone()), "pings are never fenced");
    }

    #[test]
    fn the_file_round_trips_and_old_files_are_read() {
        for p in [promised(7, "backup", 5), Promise::default()] {
            assert_eq!(Promise::decode(&p.encode()), Ok(p));
        }
        assert_eq!(Promise::decode("4\n"), Ok(Promise { epoch: Epoch(4), to: None, served: Epoch(4) }));
        // Such an epoch is claimed by the first node that uses it, and refused to others.
        let old = Promise { epoch: Epoch(4), to: None, served: Epoch(4) };
        let Check::Proceed(claimed) = old.check(&node("a"), Epoch(4), Kind::Promise) else { panic!() };
        assert_eq!(claimed.to, Some(node("a")));
        assert!(matches!(
            claimed.check(&node("b"), Epoch(4), Kind::Promise),
            Check::Answer(Ok(SlaveReply::Promised { granted: false, .. }))
        ));
        assert!(Promise::decode("epoch x\nto a\nserved 1").is_err());
        assert!(Promise::decode("epoch 1\nserved 1").is_err());
    }
}
