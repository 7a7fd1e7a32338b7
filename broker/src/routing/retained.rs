//! The router's retained store as a mirror of a replicated table: entries
//! put and removed as the table changes (no limits: the table's writers
//! applied them), and what a resync or a clearer needs to know.

use std::sync::Arc;
use std::time::Instant;

use super::{Router, Subscriber};
use crate::message::Message;

impl<S: Subscriber> Router<S> {
    /// Stores `message` as `topic`'s retained message, until `deadline`,
    /// whatever the limits (the mirror of a table holds what the table
    /// holds).
    pub fn retained_put(&self, topic: &str, message: Arc<Message>, deadline: Option<Instant>) {
        self.retained.write().put(topic, message, deadline);
    }

    /// Removes `topic`'s retained message; returns whether there was one.
    pub fn retained_remove(&self, topic: &str) -> bool {
        self.retained.write().remove(topic).is_some()
    }

    /// Removes the retained messages expired at `now` and returns their
    /// topics.
    pub fn take_expired_retained(&self, now: Instant) -> Vec<Arc<str>> {
        self.retained.write().take_expired(now)
    }

    /// The topic of every retained message held (expired or not).
    pub fn retained_topics(&self) -> Vec<Arc<str>> {
        self.retained.read().topics()
    }
}
