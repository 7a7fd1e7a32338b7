//! A session as plain data, to move it to another node (a takeover across
//! nodes, EMQX's `emqx_session_mem` handing its state to the new
//! connection's node).
//!
//! Instants do not cross nodes: what the session timed (when an incoming
//! QoS 2 message arrived, when the session was created) travels as an age
//! at the moment of the snapshot and becomes an instant again on arrival.
//! Counters and retry times are not carried: the rebuilt session starts its
//! counters at zero, and its inflight exchanges count as sent at arrival.
//!
//! ```text
//!  node 1: session.snapshot(now) ──► SessionSnapshot ──(wire)──►
//!  node 2: Session::from_snapshot(snapshot, config, now) ──► resume
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::inflight::{Inflight, Phase};
use super::mqueue::{MQueue, Queued};
use super::{FilterKey, Session, SessionConfig, NEVER};
use crate::codec::ByteStr;
use crate::lazy_map::LazyMap;
use crate::message::{Message, PublishOpts, SubOpts};

/// One outgoing QoS 1/2 exchange in flight, as a snapshot holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InflightSnapshot {
    /// PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2): resent
    /// with DUP on resume.
    Publish {
        /// Its packet identifier.
        packet_id: u16,
        /// The message.
        message: Arc<Message>,
        /// What this subscriber gets (QoS, RETAIN, subscription id).
        opts: PublishOpts,
    },
    /// PUBREL sent, waiting for PUBCOMP: the PUBREL is resent on resume.
    Rel {
        /// Its packet identifier.
        packet_id: u16,
    },
}

/// A session's state as plain data: everything a resumed session needs
/// (MQTT-4.1.0-1: subscriptions, QoS 1/2 messages sent and not completely
/// acknowledged, QoS 1/2 messages pending, QoS 2 messages received and not
/// completely acknowledged). The will is not part of it: a takeover
/// settles the will on the node that held the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSnapshot {
    /// The client id.
    pub client_id: ByteStr,
    /// How long the session had existed.
    pub age: Duration,
    /// The session expiry interval; `None`: never expires.
    pub expiry_interval: Option<Duration>,
    /// Every subscription with its options.
    pub subscriptions: Vec<(ByteStr, SubOpts)>,
    /// The exchanges in flight, in the order they were sent.
    pub inflight: Vec<InflightSnapshot>,
    /// The next packet identifier the session would have used.
    pub next_packet_id: u16,
    /// Queued deliveries, oldest first.
    pub queue: Vec<(Arc<Message>, PublishOpts)>,
    /// Incoming QoS 2 packet ids awaiting PUBREL, with how long each had
    /// waited.
    pub awaiting_rel: Vec<(u16, Duration)>,
}

impl Session {
    /// The session's state at `now`, as plain data (messages are shared,
    /// not copied).
    pub fn snapshot(&self, now: Instant) -> SessionSnapshot {
        let inflight = self
            .inflight
            .ids_in_order()
            .into_iter()
            .filter_map(|id| {
                let entry = self.inflight.get(id)?;
                Some(match &entry.phase {
                    Phase::Publish { message, opts } => InflightSnapshot::Publish {
                        packet_id: id,
                        message: Arc::clone(message),
                        opts: *opts,
                    },
                    Phase::Rel => InflightSnapshot::Rel { packet_id: id },
                })
            })
            .collect();
        let mut awaiting_rel: Vec<(u16, Duration)> = self
            .awaiting_rel
            .iter()
            .map(|(id, at)| (*id, now.saturating_duration_since(*at)))
            .collect();
        awaiting_rel.sort_unstable();
        SessionSnapshot {
            client_id: self.client_id.clone(),
            age: now.saturating_duration_since(self.created_at),
            expiry_interval: self.expiry_interval(),
            subscriptions: self
                .subscriptions()
                .map(|(filter, opts)| (filter.clone(), *opts))
                .collect(),
            inflight,
            next_packet_id: self.inflight.next_id(),
            queue: self
                .mqueue
                .iter()
                .map(|q| (Arc::clone(&q.message), q.opts))
                .collect(),
            awaiting_rel,
        }
    }

    /// The session `snapshot` describes, arrived at `now` under this node's
    /// `config`: disconnected (call [`Session::replay`] to resume it), its
    /// exchanges in flight in their order and with their packet ids, its
    /// queue bounded by `config` (a longer queue keeps its newest entries
    /// by the drop policy, counted as `queue_full`).
    pub fn from_snapshot(
        snapshot: SessionSnapshot,
        config: impl Into<Arc<SessionConfig>>,
        now: Instant,
    ) -> Session {
        let config: Arc<SessionConfig> = config.into();
        let mut inflight = Inflight::new(config.max_inflight);
        for entry in snapshot.inflight {
            match entry {
                InflightSnapshot::Publish {
                    packet_id,
                    message,
                    opts,
                } => inflight.restore(packet_id, Phase::Publish { message, opts }, now),
                InflightSnapshot::Rel { packet_id } => {
                    inflight.restore(packet_id, Phase::Rel, now);
                }
            }
        }
        inflight.set_next_id(snapshot.next_packet_id);
        let mut subscriptions = LazyMap::new();
        for (filter, opts) in snapshot.subscriptions {
            subscriptions.insert(FilterKey(filter), opts);
        }
        let mut awaiting_rel = LazyMap::new();
        for (id, waited) in snapshot.awaiting_rel {
            awaiting_rel.insert(id, now.checked_sub(waited).unwrap_or(now));
        }
        let mut session = Session {
            client_id: snapshot.client_id,
            inflight,
            mqueue: MQueue::new(config.max_mqueue_len, config.mqueue_drop_policy),
            config,
            subscriptions,
            awaiting_rel,
            connected: false,
            created_at: now.checked_sub(snapshot.age).unwrap_or(now),
            disconnected_at: Some(now),
            expiry_secs: NEVER,
            stats: None,
        };
        session.set_expiry_interval(snapshot.expiry_interval);
        for (message, opts) in snapshot.queue {
            session.enqueue(Queued { message, opts });
        }
        session
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::codec::QoS;
    use crate::message::Delivery;
    use crate::session::Outgoing;

    fn message(topic: &str, qos: QoS, now: Instant) -> Arc<Message> {
        Arc::new(Message::new(
            ByteStr::from(topic.to_owned()),
            Bytes::from_static(b"x"),
            qos,
            false,
            ByteStr::from("pub"),
            now,
        ))
    }

    fn config(max_inflight: u16) -> SessionConfig {
        SessionConfig {
            max_inflight,
            ..SessionConfig::default()
        }
    }

    /// A session with a subscription, one QoS 1 and one QoS 2 exchange in
    /// flight (the QoS 2 one past PUBREC), one queued message and one
    /// incoming QoS 2 id awaiting PUBREL, taken away from its client.
    fn busy_session(now: Instant) -> Session {
        let mut s = Session::new("c".into(), config(2), now);
        s.set_expiry_interval(Some(Duration::from_secs(300)));
        let sub = SubOpts::with_qos(QoS::ExactlyOnce);
        s.subscribe("a/#".into(), sub);
        let mut out = Vec::new();
        for (topic, qos) in [
            ("a/1", QoS::AtLeastOnce),
            ("a/2", QoS::ExactlyOnce),
            ("a/3", QoS::AtLeastOnce),
        ] {
            s.deliver(
                [Delivery::new(message(topic, qos, now), sub)],
                now,
                &mut out,
            );
        }
        s.on_pubrec(2, crate::codec::ReasonCode::Success, now, &mut out)
            .unwrap();
        assert!(s.on_publish_qos2(7, false, now).unwrap());
        s.on_disconnect(now);
        s
    }

    #[test]
    fn a_session_moved_by_snapshot_resumes_as_the_original_would() {
        let now = Instant::now();
        let original = busy_session(now);
        let later = now + Duration::from_secs(5);
        let snapshot = original.snapshot(later);
        assert_eq!(snapshot.awaiting_rel, vec![(7, Duration::from_secs(5))]);
        assert_eq!(snapshot.queue.len(), 1);
        let mut moved = Session::from_snapshot(snapshot.clone(), config(2), later);
        // Nothing is lost on a second trip.
        assert_eq!(moved.snapshot(later), snapshot);
        assert!(!moved.is_connected());
        assert_eq!(moved.expiry_interval(), Some(Duration::from_secs(300)));
        assert!(moved.is_awaiting_rel(7));
        assert_eq!(
            moved.subscription("a/#"),
            Some(&SubOpts::with_qos(QoS::ExactlyOnce))
        );

        // Resuming both gives the same packets: PUBLISH 1 (DUP), PUBREL 2;
        // the queued message waits for a free slot.
        let mut original = original;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        original.replay(later, &mut a);
        moved.replay(later, &mut b);
        assert_eq!(a, b);
        assert!(matches!(&b[0], Outgoing::Publish(p) if p.dup && p.packet_id == Some(1)));
        assert_eq!(b[1], Outgoing::PubRel(2));
        assert_eq!(b.len(), 2);
        // The next PUBACK lets the queued message out with a fresh id.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        original.on_puback(1, later, &mut a).unwrap();
        moved.on_puback(1, later, &mut b).unwrap();
        assert_eq!(a, b);
        assert!(matches!(&b[0], Outgoing::Publish(p) if !p.dup && p.packet_id == Some(3)));
    }

    #[test]
    fn a_smaller_queue_on_arrival_keeps_its_bound() {
        let now = Instant::now();
        let mut s = Session::new("c".into(), config(1), now);
        let sub = SubOpts::with_qos(QoS::AtLeastOnce);
        s.on_disconnect(now);
        for i in 0..5 {
            s.deliver(
                [Delivery::new(
                    message(&format!("t/{i}"), QoS::AtLeastOnce, now),
                    sub,
                )],
                now,
                &mut Vec::new(),
            );
        }
        let small = SessionConfig {
            max_mqueue_len: 3,
            ..config(1)
        };
        let moved = Session::from_snapshot(s.snapshot(now), small, now);
        let topics: Vec<String> = moved
            .snapshot(now)
            .queue
            .iter()
            .map(|(m, _)| m.topic.to_string())
            .collect();
        assert_eq!(topics, ["t/2", "t/3", "t/4"]);
        assert_eq!(moved.stats().dropped.queue_full, 2);
    }
}
