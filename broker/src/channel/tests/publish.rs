//! PUBLISH from the client: routing, acknowledgements, QoS 2 receipt,
//! limits and topic aliases.

use super::*;
use crate::channel::PendingAck;
use crate::codec::{PubAck, PubComp, PubRec, PubRel, PublishProperties};
use crate::session::SessionConfig;

/// The `Publish` action the channel of `from` pushes for `publish`.
fn routed(publish: Publish, from: &'static str, ack: Option<PendingAck>) -> Action {
    Action::Publish {
        message: Arc::new(Message::from_publish(publish, ByteStr::from(from), t0())),
        ack,
    }
}

fn ack(packet_id: u16, qos: QoS, v5: bool) -> Option<PendingAck> {
    Some(PendingAck { packet_id, qos, v5 })
}

#[test]
fn qos0_is_routed_without_acknowledgement() {
    let mut ch = open(connect_v5("c"));
    let p = publish("a/b", QoS::AtMostOnce, None);
    assert_actions(
        &step(&mut ch, Packet::Publish(p.clone())),
        &[routed(p, "c", None)],
    );
}

#[test]
fn qos1_is_routed_then_acknowledged_with_puback() {
    let mut ch = open(connect_v5("c"));
    let p = publish("a/b", QoS::AtLeastOnce, Some(7));
    assert_actions(
        &step(&mut ch, Packet::Publish(p.clone())),
        &[routed(p, "c", ack(7, QoS::AtLeastOnce, true))],
    );
}

#[test]
fn qos2_is_routed_then_acknowledged_with_pubrec() {
    let mut ch = open(connect_v3("c"));
    let p = publish("a/b", QoS::ExactlyOnce, Some(9));
    assert_actions(
        &step(&mut ch, Packet::Publish(p.clone())),
        &[routed(p, "c", ack(9, QoS::ExactlyOnce, false))],
    );
}

#[test]
fn pending_ack_reports_no_matching_subscribers_in_v5_only() {
    let v5_puback = PendingAck {
        packet_id: 3,
        qos: QoS::AtLeastOnce,
        v5: true,
    };
    let mut no_match = PubAck::new(3);
    no_match.reason_code = ReasonCode::NoMatchingSubscribers;
    assert_eq!(v5_puback.packet(0), Packet::PubAck(no_match));
    assert_eq!(v5_puback.packet(2), Packet::PubAck(PubAck::new(3)));

    let v5_pubrec = PendingAck {
        qos: QoS::ExactlyOnce,
        ..v5_puback
    };
    let mut no_match = PubRec::new(3);
    no_match.reason_code = ReasonCode::NoMatchingSubscribers;
    assert_eq!(v5_pubrec.packet(0), Packet::PubRec(no_match));
    assert_eq!(v5_pubrec.packet(1), Packet::PubRec(PubRec::new(3)));

    // MQTT 3 has no reason code: always a plain acknowledgement.
    let v3 = PendingAck {
        v5: false,
        ..v5_puback
    };
    assert_eq!(v3.packet(0), Packet::PubAck(PubAck::new(3)));
    let v3 = PendingAck {
        v5: false,
        ..v5_pubrec
    };
    assert_eq!(v3.packet(0), Packet::PubRec(PubRec::new(3)));
}

#[test]
fn a_resent_qos2_publish_is_acknowledged_but_not_routed_again() {
    // MQTT-4.3.3-10: until PUBREL, the same packet id is acknowledged with
    // PUBREC and never delivered twice.
    let mut ch = open(connect_v5("c"));
    let p = publish("a/b", QoS::ExactlyOnce, Some(5));
    assert_eq!(step(&mut ch, Packet::Publish(p.clone())).len(), 1);
    let dup = Publish {
        dup: true,
        ..p.clone()
    };
    assert_actions(
        &step(&mut ch, Packet::Publish(dup)),
        &[Action::Send(Packet::PubRec(PubRec::new(5)))],
    );
    // The same id without DUP while it awaits PUBREL: 0x91, not routed.
    let mut in_use = PubRec::new(5);
    in_use.reason_code = ReasonCode::PacketIdentifierInUse;
    assert_actions(
        &step(&mut ch, Packet::Publish(p.clone())),
        &[Action::Send(Packet::PubRec(in_use))],
    );
    // Once released, the id starts a new exchange that is routed.
    assert_actions(
        &step(&mut ch, Packet::PubRel(PubRel::new(5))),
        &[Action::Send(Packet::PubComp(PubComp::new(5)))],
    );
    assert_actions(
        &step(&mut ch, Packet::Publish(p.clone())),
        &[routed(p, "c", ack(5, QoS::ExactlyOnce, true))],
    );
}

#[test]
fn pubrel_for_an_unknown_packet_id_gets_pubcomp_0x92() {
    let mut ch = open(connect_v5("c"));
    let mut not_found = PubComp::new(4);
    not_found.reason_code = ReasonCode::PacketIdentifierNotFound;
    assert_actions(
        &step(&mut ch, Packet::PubRel(PubRel::new(4))),
        &[Action::Send(Packet::PubComp(not_found.clone()))],
    );
    // A second PUBREL for a released id is unknown too.
    step(
        &mut ch,
        Packet::Publish(publish("t", QoS::ExactlyOnce, Some(4))),
    );
    step(&mut ch, Packet::PubRel(PubRel::new(4)));
    assert_actions(
        &step(&mut ch, Packet::PubRel(PubRel::new(4))),
        &[Action::Send(Packet::PubComp(not_found))],
    );
}

#[test]
fn too_many_qos2_awaiting_pubrel_is_0x93() {
    let config = ChannelConfig {
        session: SessionConfig {
            max_awaiting_rel: 1,
            ..SessionConfig::default()
        }
        .into(),
        ..ChannelConfig::default()
    };
    let (mut ch, _) = open_with(config, connect_v5("c"));
    step(
        &mut ch,
        Packet::Publish(publish("t", QoS::ExactlyOnce, Some(1))),
    );
    assert_actions(
        &step(
            &mut ch,
            Packet::Publish(publish("t", QoS::ExactlyOnce, Some(2))),
        ),
        &[
            send_disconnect(ReasonCode::ReceiveMaximumExceeded),
            Action::Close,
            Action::Terminate,
        ],
    );
}

/// MQTT-3.3.4-9: a v5 client told Receive Maximum 2 is disconnected at its
/// third unreleased QoS 2 message; a v3.1.1 client, told no limit, is
/// bounded by `max_awaiting_rel` alone.
#[test]
fn unreleased_qos2_is_bounded_by_receive_maximum_for_v5_only() {
    let config = ChannelConfig {
        receive_maximum: 2,
        session: SessionConfig {
            max_awaiting_rel: 100,
            ..SessionConfig::default()
        }
        .into(),
        ..ChannelConfig::default()
    };
    let (mut v5, _) = open_with(config.clone(), connect_v5("c5"));
    let (mut v3, _) = open_with(config, connect_v3("c3"));
    for id in 1..=2 {
        let p = Packet::Publish(publish("t", QoS::ExactlyOnce, Some(id)));
        assert!(matches!(step(&mut v5, p)[..], [Action::Publish { .. }]));
    }
    // A resend of one already received is still answered.
    let mut dup = publish("t", QoS::ExactlyOnce, Some(2));
    dup.dup = true;
    assert_actions(
        &step(&mut v5, Packet::Publish(dup)),
        &[Action::Send(Packet::PubRec(PubRec::new(2)))],
    );
    assert_actions(
        &step(
            &mut v5,
            Packet::Publish(publish("t", QoS::ExactlyOnce, Some(3))),
        ),
        &[
            send_disconnect(ReasonCode::ReceiveMaximumExceeded),
            Action::Close,
            Action::Terminate,
        ],
    );
    for id in 1..=50 {
        let p = Packet::Publish(publish("t", QoS::ExactlyOnce, Some(id)));
        assert!(
            matches!(step(&mut v3, p)[..], [Action::Publish { .. }]),
            "{id}"
        );
    }
}

#[test]
fn qos_above_the_maximum_is_0x9b() {
    // MQTT-3.2.2-11.
    let config = ChannelConfig {
        max_qos_allowed: QoS::AtLeastOnce,
        ..ChannelConfig::default()
    };
    let p = publish("t", QoS::ExactlyOnce, Some(1));
    let (mut ch, _) = open_with(config.clone(), connect_v5("c"));
    assert_actions(
        &step(&mut ch, Packet::Publish(p.clone())),
        &[
            send_disconnect(ReasonCode::QoSNotSupported),
            Action::Close,
            Action::Terminate,
        ],
    );
    let (mut ch, _) = open_with(config, connect_v3("c"));
    assert_actions(
        &step(&mut ch, Packet::Publish(p)),
        &[Action::Close, Action::Terminate],
    );
}

#[test]
fn retain_when_unavailable_is_0x9a() {
    // MQTT-3.2.2-14.
    let config = ChannelConfig {
        retain_available: false,
        ..ChannelConfig::default()
    };
    let (mut ch, _) = open_with(config, connect_v5("c"));
    let p = Publish {
        retain: true,
        ..publish("t", QoS::AtMostOnce, None)
    };
    assert_actions(
        &step(&mut ch, Packet::Publish(p)),
        &[
            send_disconnect(ReasonCode::RetainNotSupported),
            Action::Close,
            Action::Terminate,
        ],
    );
}

#[test]
fn a_topic_name_with_a_wildcard_is_0x90() {
    // MQTT-3.3.2-2.
    let mut ch = open(connect_v5("c"));
    assert_actions(
        &step(
            &mut ch,
            Packet::Publish(publish("a/+", QoS::AtMostOnce, None)),
        ),
        &[
            send_disconnect(ReasonCode::TopicNameInvalid),
            Action::Close,
            Action::Terminate,
        ],
    );
}

fn aliased(topic: &'static str, alias: u16) -> Publish {
    Publish {
        properties: PublishProperties {
            topic_alias: Some(alias),
            ..PublishProperties::default()
        },
        ..publish(topic, QoS::AtMostOnce, None)
    }
}

#[test]
fn a_topic_alias_is_set_then_used() {
    // MQTT 5 section 3.3.2.3.4: a topic with an alias binds it; an empty
    // topic with the alias means the bound topic. Routed messages carry the
    // topic, never the alias.
    let mut ch = open(connect_v5("c"));
    let plain = publish("a/b", QoS::AtMostOnce, None);
    assert_actions(
        &step(&mut ch, Packet::Publish(aliased("a/b", 1))),
        &[routed(plain.clone(), "c", None)],
    );
    assert_actions(
        &step(&mut ch, Packet::Publish(aliased("", 1))),
        &[routed(plain, "c", None)],
    );
    // Rebinding the alias changes what it means.
    step(&mut ch, Packet::Publish(aliased("x", 1)));
    assert_actions(
        &step(&mut ch, Packet::Publish(aliased("", 1))),
        &[routed(publish("x", QoS::AtMostOnce, None), "c", None)],
    );
}

#[test]
fn invalid_topic_aliases() {
    let config = ChannelConfig {
        max_topic_alias: 2,
        ..ChannelConfig::default()
    };
    let cases = [
        // MQTT-3.3.2-8: alias 0 is not permitted.
        (aliased("t", 0), ReasonCode::TopicAliasInvalid),
        // MQTT-3.3.2-9: above the advertised Topic Alias Maximum.
        (aliased("t", 3), ReasonCode::TopicAliasInvalid),
        // An empty topic with an alias never set: a protocol error.
        (aliased("", 1), ReasonCode::ProtocolError),
    ];
    for (p, reason) in cases {
        let (mut ch, _) = open_with(config.clone(), connect_v5("c"));
        assert_actions(
            &step(&mut ch, Packet::Publish(p)),
            &[send_disconnect(reason), Action::Close, Action::Terminate],
        );
    }
}

#[test]
fn the_message_expiry_interval_becomes_a_deadline() {
    // MQTT-3.3.2-5: the message expires that long after it was received.
    let mut ch = open(connect_v5("c"));
    let p = Publish {
        properties: PublishProperties {
            message_expiry_interval: Some(10),
            ..PublishProperties::default()
        },
        ..publish("t", QoS::AtLeastOnce, Some(1))
    };
    let out = step_at(&mut ch, Packet::Publish(p), at(3));
    let [Action::Publish { message, .. }] = out.as_slice() else {
        panic!("expected Publish, got {out:?}");
    };
    assert_eq!(message.expires_at, Some(at(13)));
    assert_eq!(message.received_at, at(3));
    assert_eq!(message.remaining_expiry(at(5)), Some(8));
}

#[test]
fn pingreq_gets_pingresp() {
    let mut ch = open(connect_v3("c"));
    assert_actions(
        &step(&mut ch, Packet::PingReq),
        &[Action::Send(Packet::PingResp)],
    );
}

#[test]
fn a_server_to_client_packet_from_the_client_is_a_protocol_error() {
    let mut ch = open(connect_v5("c"));
    assert_actions(
        &step(
            &mut ch,
            Packet::SubAck(crate::codec::SubAck {
                packet_id: 1,
                reason_codes: vec![ReasonCode::Success],
                properties: Default::default(),
            }),
        ),
        &[
            send_disconnect(ReasonCode::ProtocolError),
            Action::Close,
            Action::Terminate,
        ],
    );
}

#[test]
fn packets_after_the_close_are_ignored() {
    let mut ch = open(connect_v5("c"));
    close(&mut ch);
    assert_actions(
        &step(
            &mut ch,
            Packet::Publish(publish("t", QoS::AtMostOnce, None)),
        ),
        &[],
    );
    assert_actions(&step(&mut ch, Packet::PingReq), &[]);
}
