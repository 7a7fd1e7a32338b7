//! Model-based property test: random deliveries, acks, disconnects,
//! resumes, retries and clock moves, checked against a model of what the
//! client has seen.
//!
//! After every step: the window is never exceeded by a fresh PUBLISH, a
//! fresh packet id is never one in use, resends carry the message first sent
//! under that id, the ids in flight are exactly those the model expects, and
//! every delivery is accounted for exactly once: sent at QoS 0, acked, in
//! flight, queued, or counted as dropped.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::message::{Message, MessageProperties};

#[derive(Debug, Clone)]
enum Op {
    /// A message of QoS `qos` to a subscription granting `granted`,
    /// expiring after `expiry` seconds if set.
    Deliver {
        qos: u8,
        granted: u8,
        expiry: Option<u8>,
    },
    /// The client acknowledges the `n`-th exchange in flight (modulo), as
    /// its phase requires: PUBACK, PUBREC or PUBCOMP.
    Ack(usize),
    /// The client refuses the `n`-th QoS 2 PUBLISH in flight with PUBREC 0x97.
    RefuseQos2(usize),
    /// An acknowledgement for a packet id that may not be in flight.
    StrayAck(u16),
    /// The connection closes.
    Disconnect,
    /// A connection resumes the session with this receive maximum.
    Resume(Option<u16>),
    /// The clock moves forward.
    Advance(u8),
    /// The retry timer fires.
    Retry,
}

fn qos(bits: u8) -> QoS {
    QoS::from_bits(bits).unwrap_or(QoS::AtMostOnce)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3u8, 0..3u8, proptest::option::weighted(0.3, 1..20u8))
            .prop_map(|(qos, granted, expiry)| Op::Deliver { qos, granted, expiry }),
        4 => any::<usize>().prop_map(Op::Ack),
        1 => any::<usize>().prop_map(Op::RefuseQos2),
        1 => (1..12u16).prop_map(Op::StrayAck),
        1 => Just(Op::Disconnect),
        1 => proptest::option::of(1..5u16).prop_map(Op::Resume),
        1 => (0..10u8).prop_map(Op::Advance),
        1 => Just(Op::Retry),
    ]
}

#[derive(Debug, Clone)]
enum ModelPhase {
    Publish(QoS),
    Rel,
}

#[derive(Debug, Clone)]
struct Exchange {
    tag: usize,
    phase: ModelPhase,
    sent_at: Instant,
}

/// What the client has seen.
#[derive(Debug, Default)]
struct Model {
    /// Every message delivered, by tag (its payload).
    messages: Vec<Arc<Message>>,
    /// Exchanges in flight, by packet id.
    inflight: BTreeMap<u16, Exchange>,
    /// Tags sent at QoS 0.
    sent_qos0: HashSet<usize>,
    /// Tags whose exchange the client ended.
    acked: HashSet<usize>,
    /// Tags of in-flight messages the session dropped as expired.
    expired_in_flight: usize,
}

impl Model {
    fn tag_of(publish: &crate::codec::Publish) -> usize {
        std::str::from_utf8(&publish.payload)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(usize::MAX)
    }

    /// Forgets in-flight PUBLISHes the session drops as expired when it
    /// resends them at `now` (all of them on resume; the due ones on retry).
    fn drop_expired(&mut self, now: Instant, only_due: Option<Duration>) {
        let messages = &self.messages;
        let before = self.inflight.len();
        self.inflight.retain(|_, ex| {
            let due = only_due.is_none_or(|i| now.saturating_duration_since(ex.sent_at) >= i);
            let expired =
                matches!(ex.phase, ModelPhase::Publish(_)) && messages[ex.tag].is_expired(now);
            !(due && expired)
        });
        self.expired_in_flight += before - self.inflight.len();
    }

    /// Checks the packets one step produced, in order, and records them.
    fn observe(&mut self, out: &[Packet], window: usize, now: Instant) {
        for packet in out {
            match packet {
                Packet::Publish(p) => {
                    let tag = Self::tag_of(p);
                    assert!(tag < self.messages.len(), "unknown payload in {p:?}");
                    match (p.qos, p.packet_id, p.dup) {
                        (QoS::AtMostOnce, None, false) => {
                            assert!(self.sent_qos0.insert(tag), "QoS 0 tag {tag} sent twice");
                            assert!(!self.acked.contains(&tag));
                        }
                        (q, Some(id), false) => {
                            assert!(self.inflight.len() < window, "window {window} exceeded");
                            assert!(!self.inflight.contains_key(&id), "id {id} reused");
                            assert!(!self.acked.contains(&tag) && !self.sent_qos0.contains(&tag));
                            assert!(
                                self.inflight.values().all(|e| e.tag != tag),
                                "tag {tag} sent twice"
                            );
                            self.inflight.insert(
                                id,
                                Exchange {
                                    tag,
                                    phase: ModelPhase::Publish(q),
                                    sent_at: now,
                                },
                            );
                        }
                        (q, Some(id), true) => {
                            let ex = self
                                .inflight
                                .get_mut(&id)
                                .unwrap_or_else(|| panic!("DUP for unknown id {id}"));
                            assert_eq!(ex.tag, tag, "DUP of id {id} carries another message");
                            assert!(matches!(ex.phase, ModelPhase::Publish(pq) if pq == q));
                            ex.sent_at = now;
                        }
                        _ => panic!("malformed PUBLISH {p:?}"),
                    }
                }
                Packet::PubRel(rel) => {
                    let ex = self
                        .inflight
                        .get_mut(&rel.packet_id)
                        .unwrap_or_else(|| panic!("PUBREL for unknown id {}", rel.packet_id));
                    assert!(matches!(ex.phase, ModelPhase::Rel));
                    ex.sent_at = now;
                }
                other => panic!("the session sent {other:?}"),
            }
        }
    }

    fn complete(&mut self, id: u16) {
        if let Some(ex) = self.inflight.remove(&id) {
            assert!(self.acked.insert(ex.tag), "tag {} acked twice", ex.tag);
        }
    }
}

fn check_invariants(s: &Session, model: &Model) {
    // The ids in flight are exactly the model's, with the same messages.
    let ids: Vec<u16> = {
        let mut v: Vec<u16> = s.inflight.iter().map(|(id, _)| id).collect();
        v.sort_unstable();
        v
    };
    let expected: Vec<u16> = model.inflight.keys().copied().collect();
    assert_eq!(ids, expected, "ids in flight");
    for (id, entry) in s.inflight.iter() {
        if let Phase::Publish { message, .. } = &entry.phase {
            let tag = model.inflight[&id].tag;
            assert!(Arc::ptr_eq(message, &model.messages[tag]));
        }
    }
    // Every delivery is accounted for exactly once.
    let queued: Vec<usize> = s
        .mqueue
        .iter()
        .map(|q| {
            model
                .messages
                .iter()
                .position(|m| Arc::ptr_eq(m, &q.message))
                .unwrap_or(usize::MAX)
        })
        .collect();
    let mut seen = HashSet::new();
    let all = model
        .sent_qos0
        .iter()
        .chain(&model.acked)
        .chain(model.inflight.values().map(|e| &e.tag))
        .chain(&queued);
    for tag in all {
        assert!(seen.insert(*tag), "tag {tag} is in two places");
    }
    let d = s.stats().dropped;
    let dropped = d.expired + d.queue_full + d.qos0_offline + d.no_local;
    assert_eq!(
        model.messages.len() as u64,
        seen.len() as u64 + dropped,
        "deliveries = sent QoS 0 + acked + in flight + queued + dropped"
    );
    assert!(d.expired >= model.expired_in_flight as u64);
    assert_eq!(s.stats().acked, model.acked.len() as u64);
}

fn run(config: SessionConfig, ops: Vec<Op>) {
    let t0 = Instant::now();
    let mut now = t0;
    let retry_interval = config.retry_interval;
    let mut s = Session::new("sub".into(), config, t0);
    let mut model = Model::default();
    let mut out = Vec::new();
    for op in ops {
        out.clear();
        match op {
            Op::Deliver {
                qos: q,
                granted,
                expiry,
            } => {
                let tag = model.messages.len();
                let message = Arc::new(Message {
                    topic: "t".into(),
                    payload: Bytes::from(tag.to_string()),
                    qos: qos(q),
                    retain: false,
                    from: "publisher".into(),
                    received_at: now,
                    expires_at: expiry.map(|e| now + Duration::from_secs(u64::from(e))),
                    expiry_sent: true,
                    properties: MessageProperties::default(),
                    frames: Default::default(),
                });
                model.messages.push(message.clone());
                s.deliver(
                    [Delivery::new(message, SubOpts::with_qos(qos(granted)))],
                    now,
                    &mut out,
                );
            }
            Op::Ack(n) | Op::RefuseQos2(n) if s.is_connected() && !model.inflight.is_empty() => {
                let refuse = matches!(op, Op::RefuseQos2(_));
                let id = *model
                    .inflight
                    .keys()
                    .nth(n % model.inflight.len())
                    .unwrap_or(&0);
                match model.inflight[&id].phase {
                    ModelPhase::Publish(QoS::ExactlyOnce) if refuse => {
                        model.complete(id);
                        s.on_pubrec(id, ReasonCode::QuotaExceeded, now, &mut out)
                            .expect("refused QoS 2 in flight");
                    }
                    ModelPhase::Publish(QoS::ExactlyOnce) => {
                        if let Some(ex) = model.inflight.get_mut(&id) {
                            ex.phase = ModelPhase::Rel;
                        }
                        s.on_pubrec(id, ReasonCode::Success, now, &mut out)
                            .expect("PUBREC in flight");
                        assert_eq!(out.first(), Some(&Outgoing::PubRel(id)));
                    }
                    ModelPhase::Publish(_) => {
                        model.complete(id);
                        s.on_puback(id, now, &mut out).expect("PUBACK in flight");
                    }
                    ModelPhase::Rel => {
                        model.complete(id);
                        s.on_pubcomp(id, now, &mut out).expect("PUBCOMP in flight");
                    }
                }
            }
            Op::Ack(_) | Op::RefuseQos2(_) => {}
            Op::StrayAck(id) => {
                let phase = model.inflight.get(&id).map(|e| e.phase.clone());
                let is_qos1 = matches!(phase, Some(ModelPhase::Publish(QoS::AtLeastOnce)));
                if is_qos1 {
                    model.complete(id);
                }
                let result = s.on_puback(id, now, &mut out);
                let expected = match phase {
                    None => Err(SessionError::PacketIdNotFound(id)),
                    Some(_) if is_qos1 => Ok(()),
                    Some(_) => Err(SessionError::PacketIdInUse(id)),
                };
                assert_eq!(result, expected);
            }
            Op::Disconnect => {
                if s.is_connected() {
                    s.on_disconnect(now);
                }
            }
            Op::Resume(rm) => {
                if !s.is_connected() {
                    s.set_receive_maximum(rm);
                    model.drop_expired(now, None);
                    s.replay(now, &mut out);
                }
            }
            Op::Advance(secs) => now += Duration::from_secs(u64::from(secs)),
            Op::Retry => {
                if s.is_connected() {
                    if let Some(interval) = retry_interval {
                        model.drop_expired(now, Some(interval));
                    }
                }
                s.retry(now, &mut out);
            }
        }
        let out: Vec<Packet> = out.iter().map(Outgoing::to_packet).collect();
        model.observe(&out, s.info().inflight_max, now);
        check_invariants(&s, &model);
    }
}

fn config() -> impl Strategy<Value = SessionConfig> {
    (
        1..5u16,
        0..5usize,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(Just(Duration::from_secs(5))),
    )
        .prop_map(
            |(max_inflight, max_mqueue_len, store_qos0, oldest, upgrade_qos, retry)| {
                SessionConfig {
                    max_inflight,
                    max_mqueue_len,
                    mqueue_store_qos0: store_qos0,
                    mqueue_drop_policy: if oldest {
                        QueueDropPolicy::Oldest
                    } else {
                        QueueDropPolicy::OldestQos0First
                    },
                    upgrade_qos,
                    retry_interval: retry,
                    ..SessionConfig::default()
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn window_ids_and_accounting_hold(
        config in config(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        run(config, ops);
    }
}
