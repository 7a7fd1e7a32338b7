//! Timed work ([`Channel::tick`] at [`Channel::next_deadline`]): retries
//! for MQTT 3 clients only (MQTT-4.4.0-1), the awaiting-PUBREL expiry, and
//! the reason the channel gives for the connections it ends.

use std::time::Duration;

use super::*;
use crate::codec::PubComp;
use crate::message::Delivery;
use crate::session::SessionConfig;

fn config(retry: Option<Duration>, await_rel: Duration) -> ChannelConfig {
    ChannelConfig {
        session: Arc::new(SessionConfig {
            retry_interval: retry,
            await_rel_timeout: await_rel,
            ..SessionConfig::default()
        }),
        ..ChannelConfig::default()
    }
}

fn tick(ch: &mut Channel, now: Instant) -> Vec<Action> {
    let mut out = Vec::new();
    ch.tick(now, &mut out);
    out
}

fn deliver_qos1(ch: &mut Channel) -> Publish {
    let mut out = Vec::new();
    let delivery = Delivery::new(
        message("a", QoS::AtLeastOnce),
        SubOpts::with_qos(QoS::AtLeastOnce),
    );
    ch.deliver([delivery], t0(), &mut out);
    let sent = sent_publishes(&out);
    assert_eq!(sent.len(), 1, "{out:?}");
    sent[0].clone()
}

#[test]
fn an_mqtt3_client_gets_unacknowledged_messages_again_at_the_retry_deadline() {
    let retry = Duration::from_secs(10);
    let (mut ch, _) = open_with(
        config(Some(retry), Duration::from_secs(300)),
        connect_v3("c"),
    );
    assert_eq!(ch.next_deadline(), None);
    let first = deliver_qos1(&mut ch);
    assert_eq!(ch.next_deadline(), Some(t0() + retry));
    assert!(tick(&mut ch, at(9)).is_empty());
    let again = sent_publishes(&tick(&mut ch, at(10)));
    assert_eq!(again.len(), 1);
    assert!(again[0].dup);
    assert_eq!(
        (again[0].packet_id, &again[0].payload),
        (first.packet_id, &first.payload)
    );
    assert_eq!(ch.next_deadline(), Some(at(20)));
}

#[test]
fn a_v5_client_gets_no_resend_while_connected() {
    let retry = Duration::from_secs(10);
    let (mut ch, _) = open_with(
        config(Some(retry), Duration::from_secs(300)),
        connect_v5("c"),
    );
    deliver_qos1(&mut ch);
    assert_eq!(ch.next_deadline(), None);
    assert!(tick(&mut ch, at(60)).is_empty());
}

#[test]
fn an_unreleased_qos2_packet_id_is_forgotten_at_its_deadline() {
    let timeout = Duration::from_secs(5);
    let (mut ch, _) = open_with(config(None, timeout), connect_v5("c"));
    step(
        &mut ch,
        Packet::Publish(publish("t", QoS::ExactlyOnce, Some(4))),
    );
    assert_eq!(ch.next_deadline(), Some(t0() + timeout));
    assert!(tick(&mut ch, at(5)).is_empty());
    assert_eq!(ch.next_deadline(), None);
    // A late PUBREL: the id is unknown now.
    let out = step_at(&mut ch, Packet::PubRel(crate::codec::PubRel::new(4)), at(6));
    let mut comp = PubComp::new(4);
    comp.reason_code = ReasonCode::PacketIdentifierNotFound;
    assert_actions(&out, &[Action::Send(Packet::PubComp(comp))]);
}

#[test]
fn without_a_client_nothing_is_due() {
    let (mut ch, _) = open_with(
        config(Some(Duration::from_secs(1)), Duration::from_secs(1)),
        connect_v3("c"),
    );
    deliver_qos1(&mut ch);
    close(&mut ch);
    assert_eq!(ch.next_deadline(), None);
}

#[test]
fn the_channel_names_the_reason_of_the_closes_it_decides() {
    // A refused CONNECT.
    let mut ch = channel(ChannelConfig::default());
    let refused = Connect {
        client_id: ByteStr::from(""),
        clean_start: false,
        ..connect_v3("")
    };
    step(&mut ch, Packet::Connect(Box::new(refused)));
    assert_eq!(
        ch.server_close_reason(),
        Some(ReasonCode::ClientIdentifierNotValid)
    );

    // A first packet that is not CONNECT.
    let mut ch = channel(ChannelConfig::default());
    step(&mut ch, Packet::PingReq);
    assert_eq!(ch.server_close_reason(), Some(ReasonCode::ProtocolError));

    // A protocol error of an MQTT 3 client, which gets no DISCONNECT.
    let mut ch = open(connect_v3("c"));
    assert_eq!(ch.server_close_reason(), None);
    step(&mut ch, Packet::Connect(Box::new(connect_v3("c"))));
    assert_eq!(ch.server_close_reason(), Some(ReasonCode::ProtocolError));

    // The client's own DISCONNECT is not the channel's decision.
    let mut ch = open(connect_v5("c"));
    step(&mut ch, disconnect(ReasonCode::Success, None));
    assert_eq!(ch.server_close_reason(), None);
}
