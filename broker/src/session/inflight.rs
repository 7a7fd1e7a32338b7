//! The outgoing inflight window: QoS 1/2 PUBLISHes sent and not yet fully
//! acknowledged, keyed by packet identifier, plus the packet id allocator.
//!
//! Lookups by packet id are O(1) (acks arrive in any order); the send order
//! is kept as a sequence number per entry and restored by sorting when the
//! whole window is resent (replay and retry, both rare).

use crate::lazy_map::LazyMap;
use std::sync::Arc;
use std::time::Instant;

use crate::message::{Message, PublishOpts};

/// Where one outgoing QoS 1/2 exchange stands.
#[derive(Debug, Clone)]
pub(crate) enum Phase {
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Publish {
        /// The message, kept for resending.
        message: Arc<Message>,
        /// Its per-subscriber options; `opts.qos` tells PUBACK from PUBREC.
        opts: PublishOpts,
    },
    /// QoS 2 PUBREL sent after PUBREC; waiting for PUBCOMP. The message
    /// itself is no longer needed.
    Rel,
}

/// One inflight exchange.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Send order (monotonic per session).
    pub(crate) seq: u64,
    /// Where the exchange stands.
    pub(crate) phase: Phase,
    /// When its last packet (PUBLISH or PUBREL) was sent, for retries.
    pub(crate) sent_at: Instant,
}

/// The window and the packet identifier allocator.
#[derive(Debug, Clone)]
pub(crate) struct Inflight {
    entries: LazyMap<u16, Entry>,
    next_seq: u64,
    max: u16,
    next_id: u16,
}

impl Inflight {
    /// An empty window of `max` slots (at least 1).
    pub(crate) fn new(max: u16) -> Self {
        Self {
            entries: LazyMap::new(),
            max: max.max(1),
            next_seq: 0,
            next_id: 1,
        }
    }

    /// Number of exchanges in flight.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The window size.
    pub(crate) fn max(&self) -> usize {
        usize::from(self.max)
    }

    /// Resizes the window (at least 1). Shrinking below the current count
    /// keeps the entries: nothing new is sent until enough are acked.
    pub(crate) fn set_max(&mut self, max: u16) {
        self.max = max.max(1);
    }

    /// True when no further PUBLISH may be sent.
    pub(crate) fn is_full(&self) -> bool {
        self.entries.len() >= usize::from(self.max)
    }

    /// Inserts a new exchange under a fresh packet id and returns the id.
    ///
    /// Ids run 1..=65535 and wrap, skipping those still in use. The caller
    /// checks [`Self::is_full`] first; since the window never exceeds 65535
    /// slots a free id then always exists.
    pub(crate) fn insert(&mut self, phase: Phase, now: Instant) -> u16 {
        debug_assert!(self.entries.len() < usize::from(u16::MAX));
        let mut id = self.next_id;
        while self.entries.contains_key(&id) {
            id = next_id(id);
        }
        self.next_id = next_id(id);
        self.restore(id, phase, now);
        id
    }

    /// Puts an exchange under the packet id `id`, after every exchange
    /// already held (send order): a new one ([`Self::insert`]), or one of
    /// a moved session put back under its own id.
    pub(crate) fn restore(&mut self, id: u16, phase: Phase, now: Instant) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert(
            id,
            Entry {
                seq,
                phase,
                sent_at: now,
            },
        );
    }

    /// The packet id the allocator tries next.
    pub(crate) fn next_id(&self) -> u16 {
        self.next_id
    }

    /// Sets the packet id the allocator tries next (0 is not an id: 1).
    pub(crate) fn set_next_id(&mut self, id: u16) {
        self.next_id = id.max(1);
    }

    /// The exchange using `id`.
    pub(crate) fn get_mut(&mut self, id: u16) -> Option<&mut Entry> {
        self.entries.get_mut(&id)
    }

    /// The exchange using `id`.
    pub(crate) fn get(&self, id: u16) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// Ends the exchange using `id`, freeing its slot and id.
    pub(crate) fn remove(&mut self, id: u16) -> Option<Entry> {
        self.entries.remove(&id)
    }

    /// The ids in flight, in send order.
    pub(crate) fn ids_in_order(&self) -> Vec<u16> {
        let mut ids: Vec<(u64, u16)> = self.entries.iter().map(|(id, e)| (e.seq, *id)).collect();
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// Every exchange, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u16, &Entry)> {
        self.entries.iter().map(|(id, e)| (*id, e))
    }
}

/// The id after `id`, wrapping from 65535 to 1 (0 is not a packet id).
fn next_id(id: u16) -> u16 {
    if id == u16::MAX {
        1
    } else {
        id + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_wrap_and_skip_those_in_use() {
        let now = Instant::now();
        let mut w = Inflight::new(u16::MAX);
        w.next_id = u16::MAX - 1;
        let a = w.insert(Phase::Rel, now);
        let b = w.insert(Phase::Rel, now);
        let c = w.insert(Phase::Rel, now);
        assert_eq!((a, b, c), (u16::MAX - 1, u16::MAX, 1));
        // 2 is taken: the allocator must skip it.
        w.next_id = 1;
        w.remove(1);
        let d = w.insert(Phase::Rel, now);
        assert_eq!(d, 1);
        assert_eq!(w.ids_in_order(), vec![u16::MAX - 1, u16::MAX, 1]);
        w.next_id = u16::MAX - 1;
        assert_eq!(w.insert(Phase::Rel, now), 2);
    }

    #[test]
    fn window_size_is_at_least_one() {
        let mut w = Inflight::new(0);
        assert_eq!(w.max(), 1);
        w.set_max(0);
        assert!(!w.is_full());
        w.insert(Phase::Rel, Instant::now());
        assert!(w.is_full());
    }
}
