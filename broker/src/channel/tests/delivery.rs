//! Messages to the client: QoS and packet ids, outbound topic aliases, the
//! client's Maximum Packet Size, No Local and retained messages.

use std::time::Duration;

use super::*;
use crate::codec::{PubAck, PubComp, PubRec, PubRel};
use crate::message::Delivery;

/// A v5 CONNECT with the given client-side limits.
fn connect_limits(
    receive_maximum: Option<u16>,
    maximum_packet_size: Option<u32>,
    topic_alias_maximum: Option<u16>,
) -> Connect {
    Connect {
        properties: ConnectProperties {
            receive_maximum,
            maximum_packet_size,
            topic_alias_maximum,
            ..ConnectProperties::default()
        },
        ..connect_v5("c")
    }
}

fn deliver(ch: &mut Channel, deliveries: Vec<Delivery>) -> Vec<Action> {
    let mut out = Vec::new();
    ch.deliver(deliveries, t0(), &mut out);
    out
}

fn granted(q: QoS) -> SubOpts {
    SubOpts::with_qos(q)
}

/// A message on `topic` whose payload is `len` bytes.
fn big(topic: &'static str, qos: QoS, len: usize) -> Arc<Message> {
    let mut message = (*message(topic, qos)).clone();
    message.payload = Bytes::from(vec![b'x'; len]);
    Arc::new(message)
}

#[test]
fn deliveries_get_the_granted_qos_and_fresh_packet_ids() {
    // MQTT-3.8.4-8: min(published QoS, granted QoS).
    let mut ch = open(connect_v5("c"));
    let out = deliver(
        &mut ch,
        vec![
            Delivery::new(message("a", QoS::ExactlyOnce), granted(QoS::AtLeastOnce)),
            Delivery::new(message("b", QoS::ExactlyOnce), granted(QoS::ExactlyOnce)),
            Delivery::new(message("c", QoS::AtLeastOnce), granted(QoS::AtMostOnce)),
        ],
    );
    let sent = sent_publishes(&out);
    let got: Vec<_> = sent
        .iter()
        .map(|p| (p.topic.as_str(), p.qos, p.packet_id, p.dup, p.retain))
        .collect();
    assert_eq!(
        got,
        [
            ("a", QoS::AtLeastOnce, Some(1), false, false),
            ("b", QoS::ExactlyOnce, Some(2), false, false),
            ("c", QoS::AtMostOnce, None, false, false),
        ]
    );
    assert_eq!(sent[0].payload, Bytes::from_static(b"hi"));
}

#[test]
fn the_window_is_the_clients_receive_maximum() {
    // MQTT-3.3.4-7: no more unacknowledged QoS 1/2 PUBLISH than the
    // client's Receive Maximum; the next one goes out on PUBACK.
    let mut ch = open(connect_limits(Some(1), None, None));
    let out = deliver(
        &mut ch,
        vec![
            Delivery::new(message("a", QoS::AtLeastOnce), granted(QoS::AtLeastOnce)),
            Delivery::new(message("b", QoS::AtLeastOnce), granted(QoS::AtLeastOnce)),
        ],
    );
    assert_eq!(sent_publishes(&out).len(), 1);
    let out = step(&mut ch, Packet::PubAck(PubAck::new(1)));
    let sent = sent_publishes(&out);
    assert_eq!((sent[0].topic.as_str(), sent[0].packet_id), ("b", Some(2)));
    // An acknowledgement for an unknown id is tolerated and changes nothing.
    assert_actions(&step(&mut ch, Packet::PubAck(PubAck::new(9))), &[]);
}

#[test]
fn the_outbound_qos2_flow() {
    // MQTT-4.3.3: PUBLISH, PUBREC, PUBREL, PUBCOMP.
    let mut ch = open(connect_limits(Some(1), None, None));
    let m = message("a", QoS::ExactlyOnce);
    deliver(
        &mut ch,
        vec![Delivery::new(m.clone(), granted(QoS::ExactlyOnce))],
    );
    assert_actions(
        &step(&mut ch, Packet::PubRec(PubRec::new(1))),
        &[Action::Send(Packet::PubRel(PubRel::new(1)))],
    );
    // The slot is held until PUBCOMP (MQTT-4.9.0-2).
    assert_actions(
        &deliver(
            &mut ch,
            vec![Delivery::new(m.clone(), granted(QoS::ExactlyOnce))],
        ),
        &[],
    );
    let out = step(&mut ch, Packet::PubComp(PubComp::new(1)));
    assert_eq!(sent_publishes(&out)[0].packet_id, Some(2));
}

#[test]
fn outbound_topic_aliases_are_set_then_used() {
    // MQTT 5 section 3.3.2.3.4: the server may alias topics up to the
    // client's Topic Alias Maximum.
    let mut ch = open(connect_limits(None, None, Some(1)));
    let out = deliver(
        &mut ch,
        vec![
            Delivery::new(message("a/b", QoS::AtMostOnce), granted(QoS::AtMostOnce)),
            Delivery::new(message("a/b", QoS::AtMostOnce), granted(QoS::AtMostOnce)),
            Delivery::new(message("c", QoS::AtMostOnce), granted(QoS::AtMostOnce)),
        ],
    );
    let got: Vec<_> = sent_publishes(&out)
        .iter()
        .map(|p| (p.topic.to_string(), p.properties.topic_alias))
        .collect();
    assert_eq!(
        got,
        [
            ("a/b".to_owned(), Some(1)),
            (String::new(), Some(1)),
            // Over the client's maximum: plain topic.
            ("c".to_owned(), None),
        ]
    );
    // Without a Topic Alias Maximum, or in MQTT 3, no alias at all.
    for connect in [connect_v5("c"), connect_v3("c")] {
        let mut ch = open(connect);
        let d = Delivery::new(message("a/b", QoS::AtMostOnce), granted(QoS::AtMostOnce));
        let out = deliver(&mut ch, vec![d.clone(), d]);
        for p in sent_publishes(&out) {
            assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("a/b", None));
        }
    }
}

#[test]
fn a_delivery_over_the_clients_maximum_packet_size_is_dropped() {
    // MQTT-3.1.2-25: never send a packet larger than the client accepts.
    let mut ch = open(connect_limits(None, Some(64), None));
    assert_actions(
        &deliver(
            &mut ch,
            vec![Delivery::new(
                big("t", QoS::AtMostOnce, 100),
                granted(QoS::AtMostOnce),
            )],
        ),
        &[Action::DroppedTooLarge],
    );
    let out = deliver(
        &mut ch,
        vec![Delivery::new(
            big("t", QoS::AtMostOnce, 40),
            granted(QoS::AtMostOnce),
        )],
    );
    assert_eq!(sent_publishes(&out).len(), 1);
}

#[test]
fn a_dropped_qos1_delivery_does_not_hold_a_window_slot() {
    // MQTT-3.1.2-25: the server discards the packet "and then behaves as if
    // it had completed sending that Application Message", so the window
    // slot it took is free again.
    let mut ch = open(connect_limits(Some(1), Some(64), None));
    assert_actions(
        &deliver(
            &mut ch,
            vec![Delivery::new(
                big("t", QoS::AtLeastOnce, 100),
                granted(QoS::AtLeastOnce),
            )],
        ),
        &[Action::DroppedTooLarge],
    );
    assert_eq!(ch.session().map(|s| s.info().inflight), Some(0));
    let out = deliver(
        &mut ch,
        vec![Delivery::new(
            message("t", QoS::AtLeastOnce),
            granted(QoS::AtLeastOnce),
        )],
    );
    assert_eq!(sent_publishes(&out).len(), 1);
}

#[test]
fn a_dropped_delivery_lets_the_queue_move_on() {
    // Window of 1: "b" (too large) and "c" wait behind "a". When "a" is
    // acknowledged, "b" is dropped and completed, and "c" goes out at once.
    let mut ch = open(connect_limits(Some(1), Some(64), None));
    let q1 = granted(QoS::AtLeastOnce);
    let out = deliver(
        &mut ch,
        vec![
            Delivery::new(message("a", QoS::AtLeastOnce), q1),
            Delivery::new(big("b", QoS::ExactlyOnce, 100), granted(QoS::ExactlyOnce)),
            Delivery::new(message("c", QoS::AtLeastOnce), q1),
        ],
    );
    assert_eq!(sent_publishes(&out).len(), 1);
    let out = step(&mut ch, Packet::PubAck(PubAck::new(1)));
    let [Action::DroppedTooLarge, Action::SendPublish(c)] = out.as_slice() else {
        panic!("expected a drop then PUBLISH c, got {out:?}");
    };
    let c = c.to_publish();
    assert_eq!((c.topic.as_str(), c.qos), ("c", QoS::AtLeastOnce));
    assert_eq!(ch.session().map(|s| s.info().inflight), Some(1));
}

#[test]
fn a_dropped_delivery_does_not_bind_a_topic_alias() {
    // The client never saw the alias: the next message on the topic must
    // carry the topic again (an unknown alias is a protocol error for it).
    let mut ch = open(connect_limits(None, Some(64), Some(4)));
    deliver(
        &mut ch,
        vec![Delivery::new(
            big("t", QoS::AtMostOnce, 100),
            granted(QoS::AtMostOnce),
        )],
    );
    let out = deliver(
        &mut ch,
        vec![Delivery::new(
            message("t", QoS::AtMostOnce),
            granted(QoS::AtMostOnce),
        )],
    );
    let sent = sent_publishes(&out);
    assert_eq!(
        (sent[0].topic.as_str(), sent[0].properties.topic_alias),
        ("t", Some(1))
    );
}

#[test]
fn no_local_drops_the_clients_own_messages() {
    // MQTT-3.8.3-3.
    let mut ch = open(connect_v5("c"));
    let no_local = SubOpts {
        options: SubscriptionOptions {
            no_local: true,
            ..qos(QoS::AtMostOnce)
        },
        subscription_id: None,
    };
    let out = deliver(
        &mut ch,
        vec![
            Delivery::new(message_from("t", QoS::AtMostOnce, "c"), no_local),
            Delivery::new(message_from("t", QoS::AtMostOnce, "other"), no_local),
            Delivery::new(
                message_from("u", QoS::AtMostOnce, "c"),
                granted(QoS::AtMostOnce),
            ),
        ],
    );
    let topics: Vec<_> = sent_publishes(&out)
        .iter()
        .map(|p| p.topic.to_string())
        .collect();
    assert_eq!(topics, ["t", "u"]);
}

#[test]
fn ignore_loop_deliver_drops_every_own_message() {
    let config = ChannelConfig {
        ignore_loop_deliver: true,
        ..ChannelConfig::default()
    };
    let (mut ch, _) = open_with(config, connect_v3("c"));
    let out = deliver(
        &mut ch,
        vec![
            Delivery::new(
                message_from("t", QoS::AtMostOnce, "c"),
                granted(QoS::AtMostOnce),
            ),
            Delivery::new(
                message_from("u", QoS::AtMostOnce, "d"),
                granted(QoS::AtMostOnce),
            ),
        ],
    );
    assert_eq!(sent_publishes(&out)[..].len(), 1);
    assert_eq!(sent_publishes(&out)[0].topic, "u");
}

#[test]
fn deliver_retained_sets_the_retain_flag() {
    // MQTT-3.3.1-9: a retained message sent for a new subscription has
    // RETAIN 1, whatever Retain As Published says.
    let mut ch = open(connect_v5("c"));
    step(&mut ch, subscribe(1, &[("a/#", qos(QoS::AtLeastOnce))]));
    let mut retained = (*message("a/b", QoS::AtLeastOnce)).clone();
    retained.retain = true;
    let retained = Arc::new(retained);
    let mut out = Vec::new();
    ch.deliver_retained("a/#", vec![retained.clone()], t0(), &mut out);
    let sent = sent_publishes(&out);
    assert_eq!(
        (sent[0].retain, sent[0].qos, sent[0].packet_id),
        (true, QoS::AtLeastOnce, Some(1))
    );
    // The same message routed normally loses RETAIN (MQTT-3.3.1-12).
    let out = deliver(
        &mut ch,
        vec![Delivery::new(retained.clone(), granted(QoS::AtMostOnce))],
    );
    assert!(!sent_publishes(&out)[0].retain);
    // A filter the client did not subscribe to gets nothing.
    let mut out = Vec::new();
    ch.deliver_retained("x/#", vec![retained], t0(), &mut out);
    assert_actions(&out, &[]);
}

#[test]
fn the_subscription_identifier_travels_with_the_message() {
    // MQTT-3.3.4-3.
    let mut ch = open(connect_v5("c"));
    let opts = SubOpts {
        options: qos(QoS::AtMostOnce),
        subscription_id: Some(12),
    };
    let out = deliver(
        &mut ch,
        vec![Delivery::new(message("t", QoS::AtMostOnce), opts)],
    );
    assert_eq!(
        sent_publishes(&out)[0].properties.subscription_identifiers,
        [12]
    );
}

#[test]
fn deliveries_while_away_are_sent_on_resume_not_before() {
    let connect = Connect {
        clean_start: false,
        properties: ConnectProperties {
            session_expiry_interval: Some(60),
            ..ConnectProperties::default()
        },
        ..connect_v5("c")
    };
    let mut ch = open(connect);
    close(&mut ch);
    assert_actions(
        &deliver(
            &mut ch,
            vec![Delivery::new(
                message("t", QoS::AtLeastOnce),
                granted(QoS::AtLeastOnce),
            )],
        ),
        &[],
    );
    assert_eq!(ch.session().map(|s| s.info().mqueue_len), Some(1));
}

#[test]
fn tick_resends_after_the_retry_interval_and_forgets_stale_qos2_ids() {
    let config = ChannelConfig {
        session: crate::session::SessionConfig {
            retry_interval: Some(Duration::from_secs(5)),
            await_rel_timeout: Duration::from_secs(30),
            ..crate::session::SessionConfig::default()
        }
        .into(),
        ..ChannelConfig::default()
    };
    // MQTT 3: a v5 client gets no resend while connected (tests/timers.rs).
    let (mut ch, _) = open_with(config, connect_v3("c"));
    deliver(
        &mut ch,
        vec![Delivery::new(
            message("a", QoS::AtLeastOnce),
            granted(QoS::AtLeastOnce),
        )],
    );
    step(
        &mut ch,
        Packet::Publish(publish("in", QoS::ExactlyOnce, Some(8))),
    );

    let mut out = Vec::new();
    ch.tick(at(4), &mut out);
    assert_actions(&out, &[]);
    ch.tick(at(5), &mut out);
    let resent = sent_publishes(&out);
    assert_eq!(
        (resent[0].topic.as_str(), resent[0].packet_id, resent[0].dup),
        ("a", Some(1), true)
    );

    // Past await_rel_timeout the incoming QoS 2 id is forgotten: its late
    // PUBREL is unknown (PUBCOMP 0x92).
    let mut out = Vec::new();
    ch.tick(at(30), &mut out);
    let mut not_found = PubComp::new(8);
    not_found.reason_code = ReasonCode::PacketIdentifierNotFound;
    assert_actions(
        &step_at(&mut ch, Packet::PubRel(PubRel::new(8)), at(31)),
        &[Action::Send(Packet::PubComp(not_found))],
    );
}
