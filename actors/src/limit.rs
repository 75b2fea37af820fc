//! A cap on a listener's open connections (`--max-connections`): a connection holds a
//! [`Slot`] for as long as its incoming stream lives, and a listener with no free slot
//! answers new connections with an error and closes them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::{Stream, StreamExt};

#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    open: Arc<AtomicUsize>,
    max: usize,
}

/// One open connection's place under the cap; given back when dropped.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl ConnectionLimit {
    pub fn new(max: usize) -> Self {
        ConnectionLimit { open: Arc::new(AtomicUsize::new(0)), max }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot, or `None` when `max` connections are open.
    pub fn try_take(&self) -> Option<Slot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| (open < self.max).then_some(open + 1))
            .ok()
            .map(|_| Slot(self.open.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `stream`, keeping `slot` taken until the stream is dropped (with its connection actor).
pub fn holding<S: Stream>(stream: S, slot: Slot) -> impl Stream<Item = S::Item> {
    stream.map(move |item| {
        let _held = &slot;
        item
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_and_given_back() {
        let limit = ConnectionLimit::new(2);
        let a = limit.try_take().expect("first");
        let _b = limit.try_take().expect("second");
        assert!(limit.try_take().is_none(), "the cap holds");
        drop(a);
        assert!(limit.try_take().is_some(), "a closed connection frees its slot");
    }
}
