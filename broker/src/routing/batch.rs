//! [`DeliveryBatch`]: the deliveries a publisher collected while handling
//! one batch of input, grouped by subscriber so that each subscriber is
//! handed all of its deliveries at once, and by node for the messages that
//! other nodes' subscribers must get.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::Subscriber;
use crate::message::{Delivery, Message};

/// One message for another node's subscribers.
#[derive(Debug, Clone)]
pub struct RemoteDelivery {
    /// The message.
    pub message: Arc<Message>,
    /// Whether the node's plain subscriptions get it.
    pub plain: bool,
    /// The shared groups (group, filter) the node was picked to serve.
    pub groups: Vec<(Arc<str>, Arc<str>)>,
}

/// Deliveries grouped by subscriber, and messages grouped by node, each
/// node's in the order they were routed. Draining keeps its table's
/// capacity, so a publisher that routes the same fan-out again does not
/// reallocate it.
pub struct DeliveryBatch<S> {
    by_subscriber: HashMap<u64, (S, Vec<Delivery>), BuildHasherDefault<IdHasher>>,
    /// Few nodes per batch: a vector searched in order.
    by_node: Vec<(Arc<str>, Vec<RemoteDelivery>)>,
}

impl<S> Default for DeliveryBatch<S> {
    fn default() -> Self {
        Self {
            by_subscriber: HashMap::default(),
            by_node: Vec::new(),
        }
    }
}

impl<S> fmt::Debug for DeliveryBatch<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryBatch")
            .field("subscribers", &self.by_subscriber.len())
            .field("nodes", &self.by_node.len())
            .finish()
    }
}

impl<S> DeliveryBatch<S> {
    /// The entry of `message` in `node`'s list: the last one when it is the
    /// same message (one route of a message pushes all of its entries
    /// before the next message's), else a new one.
    /// Also says whether the entry is new.
    fn remote_entry(
        &mut self,
        node: &Arc<str>,
        message: &Arc<Message>,
    ) -> (&mut RemoteDelivery, bool) {
        let list = match self.by_node.iter().position(|(n, _)| n == node) {
            Some(i) => &mut self.by_node[i].1,
            None => {
                self.by_node.push((Arc::clone(node), Vec::new()));
                &mut self.by_node.last_mut().expect("just pushed").1
            }
        };
        let new = !list
            .last()
            .is_some_and(|last| Arc::ptr_eq(&last.message, message));
        if new {
            list.push(RemoteDelivery {
                message: Arc::clone(message),
                plain: false,
                groups: Vec::new(),
            });
        }
        (list.last_mut().expect("just pushed"), new)
    }

    /// `node`'s plain subscriptions get `message` (once, however many of
    /// its filters match). Returns whether `node` is new for `message`.
    pub fn push_remote(&mut self, node: &Arc<str>, message: &Arc<Message>) -> bool {
        let (entry, new) = self.remote_entry(node, message);
        entry.plain = true;
        new
    }

    /// `node` serves the shared `group` on `filter` for `message`. Returns
    /// whether `node` is new for `message`.
    pub fn push_remote_group(
        &mut self,
        node: &Arc<str>,
        message: &Arc<Message>,
        group: &Arc<str>,
        filter: &Arc<str>,
    ) -> bool {
        let (entry, new) = self.remote_entry(node, message);
        entry.groups.push((Arc::clone(group), Arc::clone(filter)));
        new
    }

    /// Whether any message waits for another node.
    pub fn has_remote(&self) -> bool {
        !self.by_node.is_empty()
    }

    /// Takes every node's messages out, each node's in routing order.
    pub fn drain_remote(&mut self) -> impl Iterator<Item = (Arc<str>, Vec<RemoteDelivery>)> + '_ {
        self.by_node.drain(..)
    }
}

impl<S: Subscriber> DeliveryBatch<S> {
    /// Adds a delivery for `sub`.
    pub fn push(&mut self, sub: &S, delivery: Delivery) {
        self.by_subscriber
            .entry(sub.id())
            .or_insert_with(|| (sub.clone(), Vec::new()))
            .1
            .push(delivery);
    }

    /// Whether nothing is waiting, for a subscriber or a node.
    pub fn is_empty(&self) -> bool {
        self.by_subscriber.is_empty() && self.by_node.is_empty()
    }

    /// Number of subscribers with deliveries waiting.
    pub fn subscribers(&self) -> usize {
        self.by_subscriber.len()
    }

    /// The deliveries waiting for the subscriber with id `id`.
    pub fn deliveries_for(&self, id: u64) -> &[Delivery] {
        self.by_subscriber
            .get(&id)
            .map_or(&[], |(_, deliveries)| deliveries.as_slice())
    }

    /// Takes every subscriber's deliveries out, in no particular order.
    pub fn drain(&mut self) -> impl Iterator<Item = (S, Vec<Delivery>)> + '_ {
        self.by_subscriber.drain().map(|(_, entry)| entry)
    }
}

/// Hashes a subscriber id (a counter: unique, never chosen by a client) with
/// one multiplication; the batch looks one up for every delivery, where
/// SipHash was a visible share of a fan-out's CPU.
#[derive(Debug, Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0 ^ id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        // The high bits of the product are the well-mixed ones; hashbrown
        // takes the bucket from the low bits and its tag from the top 7.
        self.0.rotate_left(32)
    }
}
