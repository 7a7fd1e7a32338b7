//! The bounded message queue: messages waiting for a free inflight slot or
//! for the client to come back (EMQX's `emqx_mqueue`, without priorities).

use std::collections::VecDeque;
use std::sync::Arc;

use crate::codec::QoS;
use crate::message::{Message, PublishOpts};

/// Which message a full queue gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum QueueDropPolicy {
    /// The oldest QoS 0 message (the incoming one included), and only when
    /// there is none the oldest message: QoS 0 carries no delivery promise.
    #[default]
    OldestQos0First,
    /// The oldest message, whatever its QoS.
    Oldest,
}

/// One queued delivery.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    /// The shared message.
    pub(crate) message: Arc<Message>,
    /// What this subscriber gets.
    pub(crate) opts: PublishOpts,
}

/// A FIFO of at most `max_len` deliveries.
#[derive(Debug, Clone)]
pub(crate) struct MQueue {
    items: VecDeque<Queued>,
    /// QoS 0 items in `items`, so that a queue without any skips the scan.
    qos0: u32,
    /// The bound (u32: every session holds the queue inline).
    max_len: u32,
    policy: QueueDropPolicy,
}

impl MQueue {
    /// An empty queue (a bound beyond 4 billion deliveries is that).
    pub(crate) fn new(max_len: usize, policy: QueueDropPolicy) -> Self {
        Self {
            items: VecDeque::new(),
            qos0: 0,
            max_len: u32::try_from(max_len).unwrap_or(u32::MAX - 1),
            policy,
        }
    }

    /// Number of queued deliveries.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The bound.
    pub(crate) fn max_len(&self) -> usize {
        self.max_len as usize
    }

    /// Appends `item`; if the queue is then over its bound, removes and
    /// returns the victim chosen by the drop policy (possibly `item`).
    pub(crate) fn push(&mut self, item: Queued) -> Option<Queued> {
        if item.opts.qos == QoS::AtMostOnce {
            self.qos0 += 1;
        }
        self.items.push_back(item);
        if self.items.len() <= self.max_len as usize {
            return None;
        }
        let victim = match self.policy {
            QueueDropPolicy::OldestQos0First if self.qos0 > 0 => self
                .items
                .iter()
                .position(|q| q.opts.qos == QoS::AtMostOnce)
                .unwrap_or(0),
            _ => 0,
        };
        self.remove(victim)
    }

    /// The next delivery to send, if any.
    pub(crate) fn front(&self) -> Option<&Queued> {
        self.items.front()
    }

    /// Removes the next delivery.
    pub(crate) fn pop(&mut self) -> Option<Queued> {
        self.remove(0)
    }

    /// The queued deliveries, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Queued> {
        self.items.iter()
    }

    fn remove(&mut self, index: usize) -> Option<Queued> {
        let item = self.items.remove(index)?;
        if item.opts.qos == QoS::AtMostOnce {
            self.qos0 -= 1;
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bytes::Bytes;

    use super::*;
    use crate::message::MessageProperties;

    fn item(tag: &'static str, qos: QoS) -> Queued {
        Queued {
            message: Arc::new(Message {
                topic: "t".into(),
                payload: Bytes::from_static(tag.as_bytes()),
                qos,
                retain: false,
                from: "p".into(),
                received_at: Instant::now(),
                expires_at: None,
                expiry_sent: true,
                properties: MessageProperties::default(),
                frames: Default::default(),
            }),
            opts: PublishOpts {
                qos,
                retain: false,
                subscription_id: None,
            },
        }
    }

    fn tags(q: &MQueue) -> Vec<&[u8]> {
        q.iter().map(|i| &i.message.payload[..]).collect()
    }

    fn dropped(v: Option<Queued>) -> Option<Bytes> {
        v.map(|q| q.message.payload.clone())
    }

    #[test]
    fn full_queue_drops_the_oldest_qos0_first() {
        let mut q = MQueue::new(3, QueueDropPolicy::OldestQos0First);
        assert!(q.push(item("a1", QoS::AtLeastOnce)).is_none());
        assert!(q.push(item("b0", QoS::AtMostOnce)).is_none());
        assert!(q.push(item("c0", QoS::AtMostOnce)).is_none());
        assert_eq!(
            dropped(q.push(item("d2", QoS::ExactlyOnce))).as_deref(),
            Some(&b"b0"[..])
        );
        assert_eq!(
            dropped(q.push(item("e1", QoS::AtLeastOnce))).as_deref(),
            Some(&b"c0"[..])
        );
        // No QoS 0 queued: an incoming QoS 0 is the one to go.
        assert_eq!(
            dropped(q.push(item("f0", QoS::AtMostOnce))).as_deref(),
            Some(&b"f0"[..])
        );
        // Only QoS > 0 left: the oldest goes.
        assert_eq!(
            dropped(q.push(item("g1", QoS::AtLeastOnce))).as_deref(),
            Some(&b"a1"[..])
        );
        assert_eq!(tags(&q), vec![&b"d2"[..], b"e1", b"g1"]);
        assert_eq!(q.qos0, 0);
    }

    #[test]
    fn oldest_policy_ignores_qos() {
        let mut q = MQueue::new(2, QueueDropPolicy::Oldest);
        q.push(item("a1", QoS::AtLeastOnce));
        q.push(item("b0", QoS::AtMostOnce));
        assert_eq!(
            dropped(q.push(item("c1", QoS::AtLeastOnce))).as_deref(),
            Some(&b"a1"[..])
        );
        assert_eq!(
            dropped(q.push(item("d1", QoS::AtLeastOnce))).as_deref(),
            Some(&b"b0"[..])
        );
        assert_eq!(q.qos0, 0);
        assert_eq!(tags(&q), vec![&b"c1"[..], b"d1"]);
    }

    #[test]
    fn zero_length_queue_keeps_nothing() {
        let mut q = MQueue::new(0, QueueDropPolicy::OldestQos0First);
        assert_eq!(
            dropped(q.push(item("a1", QoS::AtLeastOnce))).as_deref(),
            Some(&b"a1"[..])
        );
        assert_eq!(q.len(), 0);
        assert!(q.front().is_none());
        assert!(q.pop().is_none());
    }
}
