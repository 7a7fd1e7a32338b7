//! SUBSCRIBE and UNSUBSCRIBE.

use super::*;
use crate::codec::{RetainHandling, SubAck, UnsubAck, Unsubscribe, UnsubscribeProperties};

fn suback(packet_id: u16, reason_codes: Vec<ReasonCode>) -> Action {
    Action::Send(Packet::SubAck(SubAck {
        packet_id,
        reason_codes,
        properties: Default::default(),
    }))
}

fn with_retain_handling(q: QoS, rh: RetainHandling) -> SubscriptionOptions {
    SubscriptionOptions {
        retain_handling: rh,
        ..qos(q)
    }
}

/// Subscribes one filter with `options` and returns the actions.
fn sub_one(ch: &mut Channel, filter: &'static str, options: SubscriptionOptions) -> Vec<Action> {
    step(ch, subscribe(1, &[(filter, options)]))
}

#[test]
fn suback_comes_before_the_subscribe_actions() {
    // MQTT-3.8.4-1: SUBACK answers SUBSCRIBE. It is written first; the
    // owner then indexes each filter and sends its retained messages, so
    // that those follow the SUBACK (as EMQX orders them).
    let mut ch = open(connect_v5("c"));
    let out = step(
        &mut ch,
        subscribe(
            3,
            &[("a/+", qos(QoS::AtLeastOnce)), ("b", qos(QoS::ExactlyOnce))],
        ),
    );
    assert_actions(
        &out,
        &[
            suback(3, vec![ReasonCode::GrantedQoS1, ReasonCode::GrantedQoS2]),
            sub_action("a/+", SubOpts::with_qos(QoS::AtLeastOnce), true),
            sub_action("b", SubOpts::with_qos(QoS::ExactlyOnce), true),
        ],
    );
    assert_eq!(
        ch.session().and_then(|s| s.subscription("a/+")).copied(),
        Some(SubOpts::with_qos(QoS::AtLeastOnce))
    );
}

#[test]
fn the_granted_qos_is_capped_by_the_maximum() {
    // MQTT 5 section 3.9.3: the server may grant a lower QoS than asked.
    let config = ChannelConfig {
        max_qos_allowed: QoS::AtLeastOnce,
        ..ChannelConfig::default()
    };
    let (mut ch, _) = open_with(config, connect_v5("c"));
    assert_actions(
        &sub_one(&mut ch, "t", qos(QoS::ExactlyOnce)),
        &[
            suback(1, vec![ReasonCode::GrantedQoS1]),
            sub_action("t", SubOpts::with_qos(QoS::AtLeastOnce), true),
        ],
    );
}

#[test]
fn an_invalid_filter_is_refused_and_the_others_granted() {
    // MQTT-4.7.1-2 / MQTT-4.7.1-3: misplaced wildcards.
    let filters = [
        ("a/#/b", qos(QoS::AtMostOnce)),
        ("ok", qos(QoS::AtMostOnce)),
    ];
    let mut ch = open(connect_v5("c"));
    assert_actions(
        &step(&mut ch, subscribe(2, &filters)),
        &[
            suback(2, vec![ReasonCode::TopicFilterInvalid, ReasonCode::Success]),
            sub_action("ok", SubOpts::with_qos(QoS::AtMostOnce), true),
        ],
    );
    // MQTT 3.1.1 has a single failure return code, 0x80.
    let mut ch = open(connect_v3("c"));
    assert_actions(
        &step(&mut ch, subscribe(2, &filters)),
        &[
            suback(2, vec![ReasonCode::UnspecifiedError, ReasonCode::Success]),
            sub_action("ok", SubOpts::with_qos(QoS::AtMostOnce), true),
        ],
    );
}

#[test]
fn no_local_on_a_shared_subscription_is_a_protocol_error() {
    // MQTT-3.8.3-4: no SUBACK, DISCONNECT 0x82.
    let mut ch = open(connect_v5("c"));
    let options = SubscriptionOptions {
        no_local: true,
        ..qos(QoS::AtMostOnce)
    };
    assert_actions(
        &sub_one(&mut ch, "$share/g/t", options),
        &[
            send_disconnect(ReasonCode::ProtocolError),
            Action::Close,
            Action::Terminate,
        ],
    );
    assert!(ch
        .session()
        .is_none_or(|s| s.subscription("$share/g/t").is_none()));
}

#[test]
fn shared_and_wildcard_subscriptions_when_not_allowed() {
    let no_shared = ChannelConfig {
        shared_subscription: false,
        ..ChannelConfig::default()
    };
    let (mut ch, _) = open_with(no_shared, connect_v5("c"));
    assert_actions(
        &sub_one(&mut ch, "$share/g/t", qos(QoS::AtMostOnce)),
        &[suback(1, vec![ReasonCode::SharedSubscriptionsNotSupported])],
    );

    let no_wildcard = ChannelConfig {
        wildcard_subscription: false,
        ..ChannelConfig::default()
    };
    let (mut ch, _) = open_with(no_wildcard, connect_v5("c"));
    let filters = [
        ("a/+", qos(QoS::AtMostOnce)),
        ("$share/g/a/#", qos(QoS::AtMostOnce)),
        ("a/b", qos(QoS::AtMostOnce)),
    ];
    assert_actions(
        &step(&mut ch, subscribe(1, &filters)),
        &[
            suback(
                1,
                vec![
                    ReasonCode::WildcardSubscriptionsNotSupported,
                    ReasonCode::WildcardSubscriptionsNotSupported,
                    ReasonCode::Success,
                ],
            ),
            sub_action("a/b", SubOpts::with_qos(QoS::AtMostOnce), true),
        ],
    );
}

#[test]
fn max_subscriptions_is_0x97_for_new_filters_only() {
    let config = ChannelConfig {
        max_subscriptions: Some(1),
        ..ChannelConfig::default()
    };
    let (mut ch, _) = open_with(config, connect_v5("c"));
    assert_eq!(sub_one(&mut ch, "a", qos(QoS::AtMostOnce)).len(), 2);
    assert_actions(
        &sub_one(&mut ch, "b", qos(QoS::AtMostOnce)),
        &[suback(1, vec![ReasonCode::QuotaExceeded])],
    );
    // Replacing the existing subscription is not a new one.
    assert_actions(
        &sub_one(&mut ch, "a", qos(QoS::AtLeastOnce)),
        &[
            suback(1, vec![ReasonCode::GrantedQoS1]),
            sub_action("a", SubOpts::with_qos(QoS::AtLeastOnce), true),
        ],
    );
}

#[test]
fn retain_handling_decides_send_retained() {
    // MQTT-3.3.1-9, MQTT-3.3.1-10, MQTT-3.3.1-11.
    let mut ch = open(connect_v5("c"));
    let cases = [
        (RetainHandling::SendAtSubscribe, true, true),
        (RetainHandling::SendIfNewSubscription, true, false),
        (RetainHandling::DoNotSend, false, false),
    ];
    for (i, (rh, first, again)) in cases.into_iter().enumerate() {
        let filter = ["f0", "f1", "f2"][i];
        let options = with_retain_handling(QoS::AtMostOnce, rh);
        let opts = SubOpts {
            options,
            subscription_id: None,
        };
        assert_actions(
            &sub_one(&mut ch, filter, options),
            &[
                suback(1, vec![ReasonCode::Success]),
                sub_action(filter, opts, first),
            ],
        );
        assert_actions(
            &sub_one(&mut ch, filter, options),
            &[
                suback(1, vec![ReasonCode::Success]),
                sub_action(filter, opts, again),
            ],
        );
    }
}

#[test]
fn no_retained_messages_when_retain_is_unavailable() {
    let config = ChannelConfig {
        retain_available: false,
        ..ChannelConfig::default()
    };
    let (mut ch, _) = open_with(config, connect_v5("c"));
    assert_actions(
        &sub_one(&mut ch, "t", qos(QoS::AtMostOnce)),
        &[
            suback(1, vec![ReasonCode::Success]),
            sub_action("t", SubOpts::with_qos(QoS::AtMostOnce), false),
        ],
    );
}

#[test]
fn shared_subscriptions_never_get_retained_messages() {
    // MQTT 5 section 4.8.2: retained messages are not sent to shared
    // subscriptions when they are made.
    let mut ch = open(connect_v5("c"));
    let out = sub_one(&mut ch, "$share/g/t", qos(QoS::AtLeastOnce));
    assert_actions(
        &out,
        &[
            suback(1, vec![ReasonCode::GrantedQoS1]),
            sub_action("$share/g/t", SubOpts::with_qos(QoS::AtLeastOnce), false),
        ],
    );
}

#[test]
fn the_subscription_identifier_is_recorded() {
    // Section 3.8.2.1.2: kept with the subscription, to be sent back with
    // every message it matches (MQTT-3.3.4-3).
    let mut ch = open(connect_v5("c"));
    let packet = Packet::Subscribe(Subscribe {
        packet_id: 4,
        filters: vec![
            (ByteStr::from("a"), qos(QoS::AtLeastOnce)),
            (ByteStr::from("b"), qos(QoS::AtMostOnce)),
        ],
        properties: SubscribeProperties {
            subscription_identifier: Some(77),
            ..SubscribeProperties::default()
        },
    });
    let with_id = |q| SubOpts {
        options: qos(q),
        subscription_id: Some(77),
    };
    assert_actions(
        &step(&mut ch, packet),
        &[
            suback(4, vec![ReasonCode::GrantedQoS1, ReasonCode::Success]),
            sub_action("a", with_id(QoS::AtLeastOnce), true),
            sub_action("b", with_id(QoS::AtMostOnce), true),
        ],
    );
    assert_eq!(
        ch.session()
            .and_then(|s| s.subscription("b"))
            .and_then(|o| o.subscription_id),
        Some(77)
    );
}

#[test]
fn unsubscribe_reports_filters_that_were_not_subscribed() {
    // MQTT 5 section 3.11.3: 0x11 No subscription existed.
    let mut ch = open(connect_v5("c"));
    sub_one(&mut ch, "a", qos(QoS::AtMostOnce));
    let packet = Packet::Unsubscribe(Unsubscribe {
        packet_id: 6,
        filters: vec![ByteStr::from("a"), ByteStr::from("zz")],
        properties: UnsubscribeProperties::default(),
    });
    assert_actions(
        &step(&mut ch, packet.clone()),
        &[
            Action::Unsubscribe {
                filter: ByteStr::from("a"),
            },
            Action::Send(Packet::UnsubAck(UnsubAck {
                packet_id: 6,
                reason_codes: vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted],
                properties: Default::default(),
            })),
        ],
    );
    assert!(ch.session().is_some_and(|s| s.subscription("a").is_none()));
    // Unsubscribing again finds nothing.
    let out = step(&mut ch, packet);
    let [Action::Send(Packet::UnsubAck(ack))] = out.as_slice() else {
        panic!("expected UNSUBACK, got {out:?}");
    };
    assert_eq!(
        ack.reason_codes,
        [
            ReasonCode::NoSubscriptionExisted,
            ReasonCode::NoSubscriptionExisted
        ]
    );
}
