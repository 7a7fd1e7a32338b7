//! Listener and `mqtt.*` features: mountpoints, exclusive subscriptions,
//! the default message expiry and strict mode.

use super::*;
use crate::codec::{PayloadFormat, PubAck, PubRec, SubAck, Unsubscribe, UnsubscribeProperties};
use crate::exclusive::ExclusiveTable;
use crate::message::Delivery;

use super::super::Mountpoint;

fn mounted(template: &str) -> ChannelConfig {
    ChannelConfig {
        mountpoint: Mountpoint::parse(template).expect("valid"),
        ..ChannelConfig::default()
    }
}

fn unsubscribe(packet_id: u16, filters: &[&'static str]) -> Packet {
    Packet::Unsubscribe(Unsubscribe {
        packet_id,
        filters: filters.iter().map(|f| ByteStr::from(*f)).collect(),
        properties: UnsubscribeProperties::default(),
    })
}

fn suback_codes(actions: &[Action]) -> Vec<ReasonCode> {
    match actions.first() {
        Some(Action::Send(Packet::SubAck(SubAck { reason_codes, .. }))) => reason_codes.clone(),
        other => panic!("expected a SUBACK first, got {other:?}"),
    }
}

fn routed(actions: &[Action]) -> Arc<Message> {
    match actions {
        [Action::Publish { message, .. }, ..] => Arc::clone(message),
        other => panic!("expected a Publish, got {other:?}"),
    }
}

#[test]
fn a_mountpoint_prefixes_what_comes_in_and_is_stripped_from_what_goes_out() {
    let config = mounted("tenant/${clientid}/");
    let (mut ch, _) = open_with(config, connect_v5("c1"));
    let out = step(
        &mut ch,
        Packet::Publish(publish("a/b", QoS::AtMostOnce, None)),
    );
    assert_eq!(routed(&out).topic, "tenant/c1/a/b");

    let out = step(
        &mut ch,
        subscribe(
            2,
            &[
                ("x/#", qos(QoS::AtMostOnce)),
                ("$share/g/y", qos(QoS::AtMostOnce)),
            ],
        ),
    );
    let filters: Vec<_> = out
        .iter()
        .filter_map(|a| match a {
            Action::Subscribe { filter, .. } => Some(filter.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(filters, ["tenant/c1/x/#", "$share/g/tenant/c1/y"]);
    assert!(ch
        .session()
        .is_some_and(|s| s.subscription("tenant/c1/x/#").is_some()));

    // A message on the mounted topic reaches the client without the prefix.
    let m = message("tenant/c1/x/1", QoS::AtMostOnce);
    let mut out = Vec::new();
    ch.deliver(
        [Delivery::new(m, SubOpts::with_qos(QoS::AtMostOnce))],
        t0(),
        &mut out,
    );
    let sent = sent_publishes(&out);
    assert_eq!(sent[0].topic, "x/1");

    let out = step(&mut ch, unsubscribe(3, &["x/#"]));
    assert!(out.iter().any(|a| same(
        a,
        &Action::Unsubscribe {
            filter: ByteStr::from("tenant/c1/x/#")
        }
    )));
}

#[test]
fn the_will_is_mounted_and_wildcards_in_placeholders_are_refused() {
    let mut connect = connect_v5("c1");
    connect.will = Some(will("gone", None));
    let (mut ch, _) = open_with(mounted("dev/${clientid}/"), connect);
    let out = close(&mut ch);
    let Some(Action::PublishWill(will)) = out.first() else {
        panic!("expected the will, got {out:?}");
    };
    assert_eq!(will.topic, "dev/c1/gone");

    let mut ch = channel(mounted("dev/${clientid}/"));
    let out = step(&mut ch, Packet::Connect(Box::new(connect_v5("a+b"))));
    assert!(same(
        &out[0],
        &send_refusal(ReasonCode::ClientIdentifierNotValid)
    ));
    let mut ch = channel(mounted("dev/${username}/"));
    let mut connect = connect_v5("c");
    connect.username = Some(ByteStr::from("u#"));
    let out = step(&mut ch, Packet::Connect(Box::new(connect)));
    assert!(same(
        &out[0],
        &send_refusal(ReasonCode::BadUserNameOrPassword)
    ));
}

#[test]
fn a_mounted_filter_too_deep_is_invalid() {
    let mut config = mounted("a/b/");
    config.topic_limits.max_levels = 3;
    let (mut ch, _) = open_with(config, connect_v5("c"));
    let out = step(
        &mut ch,
        subscribe(
            1,
            &[("x", qos(QoS::AtMostOnce)), ("x/y", qos(QoS::AtMostOnce))],
        ),
    );
    assert_eq!(
        suback_codes(&out),
        [ReasonCode::Success, ReasonCode::TopicFilterInvalid]
    );
}

fn exclusive(table: &Arc<ExclusiveTable>) -> ChannelConfig {
    ChannelConfig {
        exclusive: Some(Arc::clone(table)),
        ..ChannelConfig::default()
    }
}

#[test]
fn one_client_at_a_time_holds_an_exclusive_filter() {
    let table = Arc::new(ExclusiveTable::new());
    let (mut a, _) = open_with(exclusive(&table), connect_v5("a"));
    let (mut b, _) = open_with(exclusive(&table), connect_v5("b"));
    let (mut c, _) = open_with(exclusive(&table), connect_v3("c"));
    let sub = |ch: &mut Channel| {
        suback_codes(&step(
            ch,
            subscribe(1, &[("$exclusive/t/#", qos(QoS::AtLeastOnce))]),
        ))
    };

    assert_eq!(sub(&mut a), [ReasonCode::GrantedQoS1]);
    assert_eq!(sub(&mut b), [ReasonCode::QuotaExceeded], "0x97, as EMQX");
    assert_eq!(sub(&mut c), [ReasonCode::UnspecifiedError], "0x80 in v3");
    assert_eq!(
        sub(&mut a),
        [ReasonCode::GrantedQoS1],
        "the holder resubscribes"
    );
    assert!(b
        .session()
        .is_some_and(|s| s.subscription("$exclusive/t/#").is_none()));

    step(&mut a, unsubscribe(2, &["$exclusive/t/#"]));
    assert_eq!(
        sub(&mut b),
        [ReasonCode::GrantedQoS1],
        "free after UNSUBSCRIBE"
    );
    // The holder's session ends with its connection (expiry 0).
    close(&mut b);
    assert_eq!(
        sub(&mut c),
        [ReasonCode::GrantedQoS1],
        "free after the session ended"
    );
    assert_eq!(table.holder("$exclusive/t/#"), Some(ByteStr::from("c")));
}

#[test]
fn a_session_kept_offline_keeps_its_exclusive_filters() {
    let table = Arc::new(ExclusiveTable::new());
    let mut connect = connect_v5("a");
    connect.properties.session_expiry_interval = Some(60);
    let (mut a, _) = open_with(exclusive(&table), connect);
    step(
        &mut a,
        subscribe(1, &[("$exclusive/t", qos(QoS::AtMostOnce))]),
    );
    close(&mut a);
    assert_eq!(table.holder("$exclusive/t"), Some(ByteStr::from("a")));
    let mut out = Vec::new();
    a.expire(&mut out);
    assert!(table.is_empty(), "released when the session expires");
}

#[test]
fn without_exclusive_subscriptions_the_prefix_is_an_ordinary_filter() {
    let (mut a, _) = open_with(ChannelConfig::default(), connect_v5("a"));
    let (mut b, _) = open_with(ChannelConfig::default(), connect_v5("b"));
    for ch in [&mut a, &mut b] {
        let out = step(ch, subscribe(1, &[("$exclusive/t", qos(QoS::AtMostOnce))]));
        assert_eq!(suback_codes(&out), [ReasonCode::Success]);
    }
    let table = Arc::new(ExclusiveTable::new());
    let (mut c, _) = open_with(exclusive(&table), connect_v5("c"));
    let out = step(
        &mut c,
        subscribe(1, &[("$exclusive/$share/g/t", qos(QoS::AtMostOnce))]),
    );
    assert_eq!(suback_codes(&out), [ReasonCode::TopicFilterInvalid]);
}

#[test]
fn messages_without_an_expiry_get_the_default_unsent() {
    let config = ChannelConfig {
        message_expiry_interval: Some(Duration::from_secs(10)),
        ..ChannelConfig::default()
    };
    let (mut ch, _) = open_with(config, connect_v5("c"));
    let out = step(
        &mut ch,
        Packet::Publish(publish("t", QoS::AtMostOnce, None)),
    );
    let m = routed(&out);
    assert_eq!(m.expires_at, Some(at(10)));
    assert!(!m.expiry_sent);

    let mut own = publish("t", QoS::AtMostOnce, None);
    own.properties.message_expiry_interval = Some(100);
    let out = step(&mut ch, Packet::Publish(own));
    assert_eq!(
        routed(&out).expires_at,
        Some(at(100)),
        "its own expiry stays"
    );

    // Delivered before the default expiry without an interval; dropped after.
    let sub = SubOpts::with_qos(QoS::AtMostOnce);
    let mut out = Vec::new();
    ch.deliver([Delivery::new(Arc::clone(&m), sub)], at(9), &mut out);
    let sent = sent_publishes(&out);
    assert_eq!(sent[0].properties.message_expiry_interval, None);
    let mut out = Vec::new();
    ch.deliver([Delivery::new(m, sub)], at(10), &mut out);
    assert!(out.is_empty(), "expired: {out:?}");
}

#[test]
fn strict_mode_refuses_payloads_that_are_not_the_utf8_they_claim() {
    let bad = |q: QoS, id: Option<u16>| {
        let mut p = publish("t", q, id);
        p.payload = Bytes::from_static(b"\xff\xfe");
        p.properties.payload_format_indicator = Some(PayloadFormat::Utf8);
        Packet::Publish(p)
    };
    let strict = ChannelConfig {
        strict_mode: true,
        ..ChannelConfig::default()
    };
    let (mut ch, _) = open_with(strict.clone(), connect_v5("c"));
    let mut puback = PubAck::new(1);
    puback.reason_code = ReasonCode::PayloadFormatInvalid;
    assert_actions(
        &step(&mut ch, bad(QoS::AtLeastOnce, Some(1))),
        &[Action::Send(Packet::PubAck(puback))],
    );
    let mut pubrec = PubRec::new(2);
    pubrec.reason_code = ReasonCode::PayloadFormatInvalid;
    assert_actions(
        &step(&mut ch, bad(QoS::ExactlyOnce, Some(2))),
        &[Action::Send(Packet::PubRec(pubrec))],
    );
    // Valid UTF-8 with the indicator passes.
    let mut good = publish("t", QoS::AtMostOnce, None);
    good.properties.payload_format_indicator = Some(PayloadFormat::Utf8);
    routed(&step(&mut ch, Packet::Publish(good)));
    let out = step(&mut ch, bad(QoS::AtMostOnce, None));
    assert!(same(
        &out[0],
        &send_disconnect(ReasonCode::PayloadFormatInvalid)
    ));
    assert!(out.iter().any(|a| same(a, &Action::Close)));

    // Without strict mode the payload is routed as it is.
    let (mut ch, _) = open_with(ChannelConfig::default(), connect_v5("c"));
    routed(&step(&mut ch, bad(QoS::AtLeastOnce, Some(1))));

    // A will that is not the UTF-8 it claims is refused at CONNECT.
    let mut connect = connect_v5("w");
    let mut w = will("gone", None);
    w.payload = Bytes::from_static(b"\xff");
    w.properties.payload_format_indicator = Some(PayloadFormat::Utf8);
    connect.will = Some(w);
    let mut ch = channel(strict);
    let out = step(&mut ch, Packet::Connect(Box::new(connect)));
    assert!(same(
        &out[0],
        &send_refusal(ReasonCode::PayloadFormatInvalid)
    ));
}

#[test]
fn topic_aliases_work_on_the_topics_the_client_sees() {
    let mut connect = connect_v5("c1");
    connect.properties.topic_alias_maximum = Some(4);
    let (mut ch, _) = open_with(mounted("m/${clientid}/"), connect);
    // Inbound: an alias set on a topic stands for the same mounted topic.
    let mut set = publish("a", QoS::AtMostOnce, None);
    set.properties.topic_alias = Some(1);
    assert_eq!(routed(&step(&mut ch, Packet::Publish(set))).topic, "m/c1/a");
    let mut by_alias = publish("", QoS::AtMostOnce, None);
    by_alias.properties.topic_alias = Some(1);
    assert_eq!(
        routed(&step(&mut ch, Packet::Publish(by_alias))).topic,
        "m/c1/a"
    );
    // Outbound: the alias is set with the stripped topic, then used alone.
    let m = message("m/c1/x", QoS::AtMostOnce);
    let sub = SubOpts::with_qos(QoS::AtMostOnce);
    let mut out = Vec::new();
    ch.deliver(
        [Delivery::new(Arc::clone(&m), sub), Delivery::new(m, sub)],
        t0(),
        &mut out,
    );
    let sent: Vec<_> = sent_publishes(&out)
        .into_iter()
        .map(|p| (p.topic.to_string(), p.properties.topic_alias))
        .collect();
    assert_eq!(sent, [("x".to_owned(), Some(1)), (String::new(), Some(1))]);
}
