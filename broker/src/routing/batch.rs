//! [`DeliveryBatch`]: the deliveries a publisher collected while handling
//! one batch of input, grouped by subscriber so that each subscriber is
//! handed all of its deliveries at once.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use super::Subscriber;
use crate::message::Delivery;

/// Deliveries grouped by subscriber. Draining keeps its table's capacity,
/// so a publisher that routes the same fan-out again does not reallocate
/// it.
pub struct DeliveryBatch<S> {
    by_subscriber: HashMap<u64, (S, Vec<Delivery>), BuildHasherDefault<IdHasher>>,
}

impl<S> Default for DeliveryBatch<S> {
    fn default() -> Self {
        Self {
            by_subscriber: HashMap::default(),
        }
    }
}

impl<S> fmt::Debug for DeliveryBatch<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryBatch")
            .field("subscribers", &self.by_subscriber.len())
            .finish()
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

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.by_subscriber.is_empty()
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
