//! State-machine tests: feed events, assert the exact packets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::codec::{Publish, PublishProperties, SubscriptionOptions};
use crate::message::{Message, MessageProperties};

const Q0: QoS = QoS::AtMostOnce;
const Q1: QoS = QoS::AtLeastOnce;
const Q2: QoS = QoS::ExactlyOnce;

fn msg(tag: &str, qos: QoS, t0: Instant) -> Arc<Message> {
    Arc::new(Message {
        topic: "t/1".into(),
        payload: Bytes::copy_from_slice(tag.as_bytes()),
        qos,
        retain: false,
        from: "publisher".into(),
        received_at: t0,
        expires_at: None,
        expiry_sent: true,
        properties: MessageProperties::default(),
        frames: Default::default(),
    })
}

fn delivery(tag: &str, qos: QoS, t0: Instant) -> Delivery {
    Delivery::new(msg(tag, qos, t0), SubOpts::with_qos(Q2))
}

fn session(config: SessionConfig, t0: Instant) -> Session {
    Session::new("sub".into(), config, t0)
}

fn publish(tag: &str, qos: QoS, packet_id: Option<u16>, dup: bool) -> Packet {
    Packet::Publish(Publish {
        dup,
        qos,
        retain: false,
        topic: "t/1".into(),
        packet_id,
        payload: Bytes::copy_from_slice(tag.as_bytes()),
        properties: PublishProperties::default(),
    })
}

fn pubrel(id: u16) -> Packet {
    Packet::PubRel(PubRel::new(id))
}

/// The packets `out` stands for.
fn packets(out: &[Outgoing]) -> Vec<Packet> {
    out.iter().map(Outgoing::to_packet).collect()
}

/// Runs `f` with a fresh output buffer and returns what it pushed.
fn sent(f: impl FnOnce(&mut Vec<Outgoing>)) -> Vec<Packet> {
    let mut out = Vec::new();
    f(&mut out);
    packets(&out)
}

#[test]
fn qos0_is_sent_at_once_without_a_slot() {
    let t0 = Instant::now();
    let mut s = session(SessionConfig::default(), t0);
    let out = sent(|o| s.deliver([delivery("a", Q0, t0)], t0, o));
    assert_eq!(out, vec![publish("a", Q0, None, false)]);
    assert_eq!(s.info().inflight, 0);
    assert_eq!(s.stats().delivered, 1);
}

#[test]
fn qos1_outgoing_flow() {
    let t0 = Instant::now();
    let mut s = session(SessionConfig::default(), t0);
    let out = sent(|o| s.deliver([delivery("a", Q1, t0), delivery("b", Q1, t0)], t0, o));
    assert_eq!(
        out,
        vec![
            publish("a", Q1, Some(1), false),
            publish("b", Q1, Some(2), false)
        ]
    );
    assert_eq!(s.info().inflight, 2);
    assert_eq!(sent(|o| s.on_puback(2, t0, o).unwrap()), vec![]);
    assert_eq!(sent(|o| s.on_puback(1, t0, o).unwrap()), vec![]);
    assert_eq!(s.info().inflight, 0);
    assert_eq!(s.stats().acked, 2);
    // Acked twice: the id is no longer known.
    assert_eq!(
        s.on_puback(1, t0, &mut Vec::new()),
        Err(SessionError::PacketIdNotFound(1))
    );
}

#[test]
fn qos2_outgoing_flow() {
    let t0 = Instant::now();
    let mut s = session(SessionConfig::default(), t0);
    let out = sent(|o| s.deliver([delivery("a", Q2, t0)], t0, o));
    assert_eq!(out, vec![publish("a", Q2, Some(1), false)]);

    // Wrong acknowledgements for the phase are refused and change nothing.
    assert_eq!(
        s.on_puback(1, t0, &mut Vec::new()),
        Err(SessionError::PacketIdInUse(1))
    );
    assert_eq!(
        s.on_pubcomp(1, t0, &mut Vec::new()),
        Err(SessionError::PacketIdInUse(1))
    );

    let out = sent(|o| s.on_pubrec(1, ReasonCode::Success, t0, o).unwrap());
    assert_eq!(out, vec![pubrel(1)]);
    // The slot stays taken until PUBCOMP; a repeated PUBREC repeats PUBREL.
    assert_eq!(s.info().inflight, 1);
    let out = sent(|o| s.on_pubrec(1, ReasonCode::Success, t0, o).unwrap());
    assert_eq!(out, vec![pubrel(1)]);

    assert_eq!(sent(|o| s.on_pubcomp(1, t0, o).unwrap()), vec![]);
    assert_eq!(s.info().inflight, 0);
    assert_eq!(s.stats().acked, 1);
    assert_eq!(
        s.on_pubrec(1, ReasonCode::Success, t0, &mut Vec::new()),
        Err(SessionError::PacketIdNotFound(1))
    );
    assert_eq!(
        SessionError::PacketIdNotFound(1).reason_code().as_u8(),
        0x92
    );
}

#[test]
fn pubrec_with_an_error_ends_the_exchange_without_pubrel() {
    let t0 = Instant::now();
    let config = SessionConfig {
        max_inflight: 1,
        ..SessionConfig::default()
    };
    let mut s = session(config, t0);
    s.deliver(
        [delivery("a", Q2, t0), delivery("b", Q2, t0)],
        t0,
        &mut Vec::new(),
    );
    let out = sent(|o| s.on_pubrec(1, ReasonCode::QuotaExceeded, t0, o).unwrap());
    // No PUBREL; the freed slot goes to the queued message.
    assert_eq!(out, vec![publish("b", Q2, Some(2), false)]);
    assert_eq!(s.stats().acked, 1);
}

#[test]
fn pubrec_for_a_qos1_exchange_is_refused() {
    let t0 = Instant::now();
    let mut s = session(SessionConfig::default(), t0);
    s.deliver([delivery("a", Q1, t0)], t0, &mut Vec::new());
    assert_eq!(
        s.on_pubrec(1, ReasonCode::Success, t0, &mut Vec::new()),
        Err(SessionError::PacketIdInUse(1))
    );
    assert_eq!(s.info().inflight, 1);
}

#[test]
fn full_window_queues_and_acks_drain_the_queue_in_order() {
    let t0 = Instant::now();
    let config = SessionConfig {
        max_inflight: 2,
        ..SessionConfig::default()
    };
    let mut s = session(config, t0);
    let out = sent(|o| {
        s.deliver(
            [
                delivery("a", Q1, t0),
                delivery("b", Q2, t0),
                delivery("c", Q1, t0),
                delivery("d", Q0, t0),
                delivery("e", Q1, t0),
            ],
            t0,
            o,
        )
    });
    // QoS 0 is never held back by the window.
    assert_eq!(
        out,
        vec![
            publish("a", Q1, Some(1), false),
            publish("b", Q2, Some(2), false),
            publish("d", Q0, None, false),
        ]
    );
    let info = s.info();
    assert_eq!((info.inflight, info.mqueue_len), (2, 2));

    let out = sent(|o| s.on_puback(1, t0, o).unwrap());
    assert_eq!(out, vec![publish("c", Q1, Some(3), false)]);
    // PUBREC frees nothing.
    let out = sent(|o| s.on_pubrec(2, ReasonCode::Success, t0, o).unwrap());
    assert_eq!(out, vec![pubrel(2)]);
    let out = sent(|o| s.on_pubcomp(2, t0, o).unwrap());
    assert_eq!(out, vec![publish("e", Q1, Some(4), false)]);
    assert_eq!(s.info().mqueue_len, 0);
    assert_eq!(s.stats().enqueued, 2);
}

#[test]
fn packet_ids_wrap_and_skip_ids_in_use() {
    let t0 = Instant::now();
    let config = SessionConfig {
        max_inflight: 2,
        ..SessionConfig::default()
    };
    let mut s = session(config, t0);
    // Id 1 stays in flight for the whole run.
    s.deliver([delivery("held", Q1, t0)], t0, &mut Vec::new());
    let mut out = Vec::new();
    for expected in 2..=u16::MAX {
        out.clear();
        s.deliver([delivery("x", Q1, t0)], t0, &mut out);
        assert_eq!(packets(&out), vec![publish("x", Q1, Some(expected), false)]);
        s.on_puback(expected, t0, &mut Vec::new()).unwrap();
    }
    // After 65535 comes 1, which is in use: the next free id is 2.
    out.clear();
    s.deliver([delivery("y", Q1, t0)], t0, &mut out);
    assert_eq!(packets(&out), vec![publish("y", Q1, Some(2), false)]);
    s.on_puback(1, t0, &mut Vec::new()).unwrap();
    out.clear();
    s.deliver([delivery("z", Q1, t0)], t0, &mut out);
    assert_eq!(packets(&out), vec![publish("z", Q1, Some(3), false)]);
}

#[test]
fn duplicate_incoming_qos2_is_not_routed_twice() {
    let t0 = Instant::now();
    let mut s = session(SessionConfig::default(), t0);
    assert_eq!(s.on_publish_qos2(5, false, t0), Ok(true));
    assert_eq!(s.on_publish_qos2(5, true, t0), Ok(false));
    assert_eq!(
        s.on_publish_qos2(5, false, t0),
        Err(SessionError::PacketIdInUse(5))
    );
    assert_eq!(s.info().awaiting_rel, 1);
    assert_eq!(s.on_pubrel(5), Ok(()));
    assert_eq!(s.info().awaiting_rel, 0);
    // Released: the same id now starts a new message.
    assert_eq!(s.on_publish_qos2(5, false, t0), Ok(true));
}

#[test]
fn pubrel_for_an_unknown_id() {
    let t0 = Instant::now();
    let mut s = session(SessionConfig::default(), t0);
    assert_eq!(s.on_pubrel(9), Err(SessionError::PacketIdNotFound(9)));
    s.on_publish_qos2(9, false, t0).unwrap();
    s.on_pubrel(9).unwrap();
    assert_eq!(s.on_pubrel(9), Err(SessionError::PacketIdNotFound(9)));
}

#[test]
fn awaiting_rel_is_bounded_and_times_out() {
    let t0 = Instant::now();
    let config = SessionConfig {
        max_awaiting_rel: 2,
        await_rel_timeout: Duration::from_secs(10),
        ..SessionConfig::default()
    };
    let mut s = session(config, t0);
    assert_eq!(s.on_publish_qos2(1, false, t0), Ok(true));
    let t5 = t0 + Duration::from_secs(5);
    assert_eq!(s.on_publish_qos2(2, false, t5), Ok(true));
    let err = s.on_publish_qos2(3, false, t5).unwrap_err();
    assert_eq!(err, SessionError::ReceiveMaximumExceeded(2));
    assert_eq!(err.reason_code().as_u8(), 0x93);
    // A DUP of a waiting id is still recognised when full.
    assert_eq!(s.on_publish_qos2(2, true, t5), Ok(false));

    assert_eq!(
        s.awaiting_rel_deadline(),
        Some(t0 + Duration::from_secs(10))
    );
    assert_eq!(s.expire_awaiting_rel(t0 + Duration::from_millis(9_999)), 0);
    assert_eq!(s.expire_awaiting_rel(t0 + Duration::from_secs(10)), 1);
    assert_eq!(s.stats().awaiting_rel_expired, 1);
    assert_eq!(s.on_pubrel(1), Err(SessionError::PacketIdNotFound(1)));
    assert_eq!(s.on_publish_qos2(3, false, t5), Ok(true));
}

#[test]
fn offline_messages_are_queued_and_replayed_after_the_inflight_ones() {
    let t0 = Instant::now();
    let config = SessionConfig {
        max_inflight: 3,
        ..SessionConfig::default()
    };
    let mut s = session(config, t0);
    s.deliver(
        [
            delivery("a", Q1, t0),
            delivery("b", Q2, t0),
            delivery("c", Q2, t0),
        ],
        t0,
        &mut Vec::new(),
    );
    // c is past PUBREC, b is not; a is acked.
    s.on_pubrec(3, ReasonCode::Success, t0, &mut Vec::new())
        .unwrap();
    s.on_puback(1, t0, &mut Vec::new()).unwrap();
    s.on_disconnect(t0);
    assert!(!s.is_connected());

    let out = sent(|o| {
        s.deliver(
            [
                delivery("d", Q0, t0),
                delivery("e", Q1, t0),
                delivery("f", Q1, t0),
            ],
            t0,
            o,
        )
    });
    assert_eq!(out, vec![], "nothing is sent while away");
    assert_eq!(s.info().mqueue_len, 3);

    let out = sent(|o| s.replay(t0, o));
    assert_eq!(
        out,
        vec![
            publish("b", Q2, Some(2), true),
            pubrel(3),
            publish("d", Q0, None, false),
            publish("e", Q1, Some(4), false),
        ]
    );
    assert!(s.is_connected());
    let info = s.info();
    assert_eq!((info.inflight, info.mqueue_len), (3, 1));
    assert_eq!(s.stats().resent, 2);
}

#[test]
fn replay_keeps_the_original_order_across_id_wrap() {
    let t0 = Instant::now();
    let mut s = session(SessionConfig::default(), t0);
    // Force the allocator near the wrap: send and ack 65533 messages.
    for id in 1..=65533u16 {
        s.deliver([delivery("x", Q1, t0)], t0, &mut Vec::new());
        s.on_puback(id, t0, &mut Vec::new()).unwrap();
    }
    s.deliver(
        [
            delivery("a", Q1, t0),
            delivery("b", Q1, t0),
            delivery("c", Q1, t0),
        ],
        t0,
        &mut Vec::new(),
    );
    s.on_disconnect(t0);
    let out = sent(|o| s.replay(t0, o));
    assert_eq!(
        out,
        vec![
            publish("a", Q1, Some(65534), true),
            publish("b", Q1, Some(65535), true),
            publish("c", Q1, Some(1), true),
        ]
    );
}

#[test]
fn queue_bound_drops_oldest_qos0_first_and_counts() {
    let t0 = Instant::now();
    let config = SessionConfig {
        max_mqueue_len: 2,
        ..SessionConfig::default()
    };
    let mut s = session(config, t0);
    s.on_disconnect(t0);
    s.deliver(
        [
            delivery("a", Q0, t0),
            delivery("b", Q1, t0),
            delivery("c", Q1, t0),
            delivery("d", Q1, t0),
        ],
        t0,
        &mut Vec::new(),
    );
    assert_eq!(s.stats().dropped.queue_full, 2);
    assert_eq!(s.stats().enqueued, 4);
    let out = sent(|o| s.replay(t0, o));
    assert_eq!(
        out,
        vec![
            publish("c", Q1, Some(1), false),
            publish("d", Q1, Some(2), false),
        ]
    );
}

#[test]
fn qos0_is_not_stored_offline_unless_configured() {
    let t0 = Instant::now();
    let config = SessionConfig {
        mqueue_store_qos0: false,
        ..SessionConfig::default()
    };
    let mut s = session(config, t0);
    s.on_disconnect(t0);
    s.deliver(
        [delivery("a", Q0, t0), delivery("b", Q1, t0)],
        t0,
        &mut Vec::new(),
    );
    assert_eq!(s.stats().dropped.qos0_offline, 1);
    let out = sent(|o| s.replay(t0, o));
    assert_eq!(out, vec![publish("b", Q1, Some(1), false)]);
}

fn expiring(tag: &str, qos: QoS, t0: Instant, secs: u64) -> Delivery {
    let mut m = (*msg(tag, qos, t0)).clone();
    m.expires_at = Some(t0 + Duration::from_secs(secs));
    Delivery::new(Arc::new(m), SubOpts::with_qos(Q2))
}

#[test]
fn expired_messages_are_dropped_wherever_they_wait() {
    let t0 = Instant::now();
    let config = SessionConfig {
        max_inflight: 1,
        ..SessionConfig::default()
    };
    let mut s = session(config, t0);
    let out = sent(|o| {
        s.deliver(
            [
                expiring("a", Q1, t0, 10),
                expiring("b", Q1, t0, 10),
                expiring("c", Q1, t0, 60),
            ],
            t0,
            o,
        )
    });
    assert_eq!(out.len(), 1);
    let Packet::Publish(p) = &out[0] else {
        panic!("expected a PUBLISH, got {out:?}");
    };
    assert_eq!(p.properties.message_expiry_interval, Some(10));

    // Already expired on arrival.
    let t20 = t0 + Duration::from_secs(20);
    s.deliver([expiring("late", Q1, t0, 5)], t20, &mut Vec::new());
    assert_eq!(s.stats().dropped.expired, 1);

    // b expired in the queue: the freed slot goes to c, with 40 s left.
    let out = sent(|o| s.on_puback(1, t20, o).unwrap());
    assert_eq!(out.len(), 1);
    let Packet::Publish(p) = &out[0] else {
        panic!("expected a PUBLISH, got {out:?}");
    };
    assert_eq!(&p.payload[..], b"c");
    assert_eq!(p.properties.message_expiry_interval, Some(40));
    assert_eq!(s.stats().dropped.expired, 2);

    // c expires in flight: on replay it is dropped, not resent.
    s.on_disconnect(t20);
    let out = sent(|o| s.replay(t0 + Duration::from_secs(61), o));
    assert_eq!(out, vec![]);
    assert_eq!(s.stats().dropped.expired, 3);
    assert_eq!(s.info().inflight, 0);
}

#[test]
fn no_local_messages_are_not_delivered_to_their_publisher() {
    let t0 = Instant::now();
    let mut s = session(SessionConfig::default(), t0);
    let mut own = (*msg("own", Q1, t0)).clone();
    own.from = "sub".into();
    let own = Arc::new(own);
    let nl = SubOpts {
        options: SubscriptionOptions {
            no_local: true,
            ..SubscriptionOptions::with_qos(Q1)
        },
        subscription_id: None,
    };
    let out = sent(|o| {
        s.deliver(
            [
                Delivery::new(own.clone(), nl),
                Delivery::new(own.clone(), SubOpts::with_qos(Q1)),
                Delivery::new(msg("other", Q1, t0), nl),
            ],
            t0,
            o,
        )
    });
    assert_eq!(
        out,
        vec![
            publish("own", Q1, Some(1), false),
            publish("other", Q1, Some(2), false),
        ]
    );
    assert_eq!(s.stats().dropped.no_local, 1);
}

#[test]
fn upgrade_qos_delivers_at_the_granted_qos() {
    let t0 = Instant::now();
    let config = SessionConfig {
        upgrade_qos: true,
        ..SessionConfig::default()
    };
    let mut s = session(config, t0);
    let out = sent(|o| {
        s.deliver(
            [
                Delivery::new(msg("a", Q0, t0), SubOpts::with_qos(Q2)),
                Delivery::new(msg("b", Q2, t0), SubOpts::with_qos(Q1)),
            ],
            t0,
            o,
        )
    });
    assert_eq!(
        out,
        vec![
            publish("a", Q2, Some(1), false),
            publish("b", Q1, Some(2), false),
        ]
    );

    let mut plain = session(SessionConfig::default(), t0);
    let out = sent(|o| {
        plain.deliver(
            [Delivery::new(msg("a", Q0, t0), SubOpts::with_qos(Q2))],
            t0,
            o,
        )
    });
    assert_eq!(out, vec![publish("a", Q0, None, false)]);
}

#[test]
fn receive_maximum_caps_the_window_and_resume_may_change_it() {
    let t0 = Instant::now();
    let config = SessionConfig {
        max_inflight: 4,
        ..SessionConfig::default()
    };
    let mut s = session(config, t0);
    s.set_receive_maximum(Some(2));
    assert_eq!(s.info().inflight_max, 2);
    s.set_receive_maximum(Some(100));
    assert_eq!(s.info().inflight_max, 4, "capped by max_inflight");
    s.set_receive_maximum(Some(2));
    let deliveries = ["a", "b", "c", "d"].map(|t| delivery(t, Q1, t0));
    let out = sent(|o| s.deliver(deliveries, t0, o));
    assert_eq!(out.len(), 2);

    // Resumed by a connection with a receive maximum of 1: the two in
    // flight are resent, nothing new until both are acked.
    s.on_disconnect(t0);
    s.set_receive_maximum(Some(1));
    let out = sent(|o| s.replay(t0, o));
    assert_eq!(
        out,
        vec![
            publish("a", Q1, Some(1), true),
            publish("b", Q1, Some(2), true)
        ]
    );
    assert_eq!(sent(|o| s.on_puback(1, t0, o).unwrap()), vec![]);
    let out = sent(|o| s.on_puback(2, t0, o).unwrap());
    assert_eq!(out, vec![publish("c", Q1, Some(3), false)]);

    // Resumed with a larger window: the queue drains on replay.
    s.on_disconnect(t0);
    s.set_receive_maximum(None);
    let out = sent(|o| s.replay(t0, o));
    assert_eq!(
        out,
        vec![
            publish("c", Q1, Some(3), true),
            publish("d", Q1, Some(4), false)
        ]
    );
}

#[test]
fn retry_resends_what_is_due_only_when_configured() {
    let t0 = Instant::now();
    let mut never = session(SessionConfig::default(), t0);
    never.deliver([delivery("a", Q1, t0)], t0, &mut Vec::new());
    assert_eq!(never.retry_deadline(), None);
    let out = sent(|o| never.retry(t0 + Duration::from_secs(3600), o));
    assert_eq!(out, vec![]);

    let config = SessionConfig {
        retry_interval: Some(Duration::from_secs(30)),
        ..SessionConfig::default()
    };
    let mut s = session(config, t0);
    let t10 = t0 + Duration::from_secs(10);
    s.deliver(
        [delivery("a", Q1, t0), delivery("b", Q2, t0)],
        t0,
        &mut Vec::new(),
    );
    s.deliver([delivery("c", Q1, t10)], t10, &mut Vec::new());
    s.on_pubrec(2, ReasonCode::Success, t10, &mut Vec::new())
        .unwrap();
    assert_eq!(s.retry_deadline(), Some(t0 + Duration::from_secs(30)));
    assert_eq!(sent(|o| s.retry(t0 + Duration::from_secs(29), o)), vec![]);
    let t30 = t0 + Duration::from_secs(30);
    assert_eq!(
        sent(|o| s.retry(t30, o)),
        vec![publish("a", Q1, Some(1), true)]
    );
    let t40 = t0 + Duration::from_secs(40);
    assert_eq!(
        sent(|o| s.retry(t40, o)),
        vec![pubrel(2), publish("c", Q1, Some(3), true)]
    );
    // Away: retries wait for the replay.
    s.on_disconnect(t40);
    assert_eq!(s.retry_deadline(), None);
    assert_eq!(sent(|o| s.retry(t40 + Duration::from_secs(60), o)), vec![]);
}

#[test]
fn session_expiry_runs_only_while_away() {
    let t0 = Instant::now();
    let mut s = session(SessionConfig::default(), t0);
    assert_eq!(s.expiry_interval(), Some(Duration::ZERO));
    s.set_expiry_interval(Some(Duration::from_secs(60)));
    assert_eq!(s.expires_at(), None, "connected sessions do not expire");
    let t5 = t0 + Duration::from_secs(5);
    s.on_disconnect(t5);
    assert_eq!(s.expires_at(), Some(t5 + Duration::from_secs(60)));
    assert!(!s.is_expired(t5 + Duration::from_secs(59)));
    assert!(s.is_expired(t5 + Duration::from_secs(60)));
    s.replay(t5, &mut Vec::new());
    assert_eq!(s.expires_at(), None);
    s.set_expiry_interval(None);
    s.on_disconnect(t5);
    assert!(!s.is_expired(t5 + Duration::from_secs(1 << 40)));
}

#[test]
fn subscriptions_report_whether_they_are_new() {
    let t0 = Instant::now();
    let mut s = session(SessionConfig::default(), t0);
    let first = SubOpts::with_qos(Q1);
    let second = SubOpts {
        subscription_id: Some(7),
        ..SubOpts::with_qos(Q2)
    };
    assert_eq!(s.subscribe("a/+".into(), first), None);
    assert_eq!(s.subscribe("a/+".into(), second), Some(first));
    assert_eq!(s.subscription("a/+"), Some(&second));
    assert_eq!(s.subscriptions().count(), 1);
    assert_eq!(s.info().subscriptions, 1);
    assert_eq!(s.unsubscribe("a/+"), Some(second));
    assert_eq!(s.unsubscribe("a/+"), None);
}

#[test]
fn session_moves_between_threads() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Session>();
    assert_send::<Delivery>();
    let t0 = Instant::now();
    let mut s = session(SessionConfig::default(), t0);
    s.deliver([delivery("a", Q1, t0)], t0, &mut Vec::new());
    s.on_disconnect(t0);
    let mut s = std::thread::spawn(move || s)
        .join()
        .expect("thread finished");
    let out = sent(|o| s.replay(t0, o));
    assert_eq!(out, vec![publish("a", Q1, Some(1), true)]);
}

#[test]
fn a_new_delivery_never_overtakes_the_queue() {
    let t0 = Instant::now();
    let config = SessionConfig {
        max_inflight: 4,
        ..SessionConfig::default()
    };
    let mut s = session(config, t0);
    s.set_receive_maximum(Some(1));
    s.deliver(
        [delivery("a", Q1, t0), delivery("b", Q1, t0)],
        t0,
        &mut Vec::new(),
    );
    assert_eq!(s.info().mqueue_len, 1);
    // The window grows while connected (no replay): the next delivery must
    // first let the queued one out.
    s.set_receive_maximum(Some(4));
    let out = sent(|o| s.deliver([delivery("c", Q1, t0)], t0, o));
    assert_eq!(
        out,
        vec![
            publish("b", Q1, Some(2), false),
            publish("c", Q1, Some(3), false)
        ]
    );
}
