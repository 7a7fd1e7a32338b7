//! Channel state-machine tests: no runtime, no socket. Each test feeds a
//! [`Channel`] events and compares the exact [`Action`]s it pushes, as
//! openraft's engine tests compare `Command`s.
//!
//! Conformance statements are cited as `MQTT-x.y.z-n` (MQTT 5.0 unless
//! the test says 3.1.1).
//!
//! # Layout
//!
//! - `tests.rs`: packet builders, the channel drivers and
//!   [`assert_actions`].
//! - `tests/connect.rs`: CONNECT checks and the CONNACK.
//! - `tests/publish.rs`: PUBLISH from the client, QoS 2 receipt, aliases.
//! - `tests/subscribe.rs`: SUBSCRIBE and UNSUBSCRIBE.
//! - `tests/delivery.rs`: messages to the client: QoS, aliases, size.
//! - `tests/lifecycle.rs`: close, will, session expiry, takeover, resume.
//! - `tests/features.rs`: mountpoints, exclusive subscriptions, default
//!   message expiry, strict mode.
//! - `tests/timers.rs`: retries, awaiting-PUBREL expiry, close reasons.

mod connect;
mod delivery;
mod features;
mod lifecycle;
mod publish;
mod subscribe;
mod timers;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Action, Channel, ChannelConfig};
use crate::codec::{
    ByteStr, Connect, ConnectProperties, Disconnect, DisconnectProperties, LastWill, Packet,
    ProtocolVersion, Publish, QoS, ReasonCode, Subscribe, SubscribeProperties, SubscriptionOptions,
    WillProperties,
};
use crate::message::{Message, SubOpts};

/// The instant every test starts at, so that messages built by a test and
/// by the channel carry the same receipt time.
fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

/// `secs` seconds after [`t0`].
fn at(secs: u64) -> Instant {
    t0() + Duration::from_secs(secs)
}

/// A v5 CONNECT with clean start, keep alive 60 and no properties.
fn connect_v5(client_id: &'static str) -> Connect {
    Connect {
        protocol: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 60,
        client_id: ByteStr::from(client_id),
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties::default(),
    }
}

/// The same CONNECT in MQTT 3.1.1.
fn connect_v3(client_id: &'static str) -> Connect {
    Connect {
        protocol: ProtocolVersion::V3_1_1,
        ..connect_v5(client_id)
    }
}

/// A will on `topic` with payload "bye" at QoS 0.
fn will(topic: &'static str, delay: Option<u32>) -> LastWill {
    LastWill {
        topic: ByteStr::from(topic),
        payload: Bytes::from_static(b"bye"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: WillProperties {
            will_delay_interval: delay,
            ..WillProperties::default()
        },
    }
}

/// The message the channel of `client_id` publishes for `will` at [`t0`].
fn will_message(will: &LastWill, client_id: &'static str) -> Arc<Message> {
    will_message_at(will, client_id, t0())
}

/// The message the channel of `client_id` publishes for `will` at `at`.
fn will_message_at(will: &LastWill, client_id: &'static str, at: Instant) -> Arc<Message> {
    Arc::new(super::will_message(will, ByteStr::from(client_id), at))
}

/// A PUBLISH on `topic` with payload "hi".
fn publish(topic: &'static str, qos: QoS, packet_id: Option<u16>) -> Publish {
    Publish {
        qos,
        topic: ByteStr::from(topic),
        packet_id,
        payload: Bytes::from_static(b"hi"),
        ..Publish::default()
    }
}

/// The message another client ("other") published on `topic` at `qos`.
fn message(topic: &'static str, qos: QoS) -> Arc<Message> {
    message_from(topic, qos, "other")
}

/// A message `from` published on `topic` at `qos`, received at [`t0`].
fn message_from(topic: &'static str, qos: QoS, from: &'static str) -> Arc<Message> {
    Arc::new(Message::from_publish(
        publish(topic, qos, (qos != QoS::AtMostOnce).then_some(1)),
        ByteStr::from(from),
        t0(),
    ))
}

/// A SUBSCRIBE with one options byte per filter.
fn subscribe(packet_id: u16, filters: &[(&'static str, SubscriptionOptions)]) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id,
        filters: filters
            .iter()
            .map(|(f, o)| (ByteStr::from(*f), *o))
            .collect(),
        properties: SubscribeProperties::default(),
    })
}

/// Subscription options with only a QoS.
fn qos(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions::with_qos(qos)
}

/// A DISCONNECT from the client.
fn disconnect(reason: ReasonCode, session_expiry: Option<u32>) -> Packet {
    Packet::Disconnect(Disconnect {
        reason_code: reason,
        properties: DisconnectProperties {
            session_expiry_interval: session_expiry,
            ..DisconnectProperties::default()
        },
    })
}

/// The action that sends the server's DISCONNECT with `reason`.
fn send_disconnect(reason: ReasonCode) -> Action {
    Action::Send(Packet::Disconnect(Disconnect {
        reason_code: reason,
        properties: DisconnectProperties::default(),
    }))
}

/// The action that sends a CONNACK refusing the connection with `reason`.
fn send_refusal(reason: ReasonCode) -> Action {
    Action::Send(super::refusal_packet(reason))
}

/// A `Subscribe` action.
fn sub_action(filter: &'static str, opts: SubOpts, send_retained: bool) -> Action {
    Action::Subscribe {
        filter: ByteStr::from(filter),
        opts,
        send_retained,
    }
}

/// A new channel.
fn channel(config: ChannelConfig) -> Channel {
    Channel::new(Arc::new(config))
}

/// Feeds one packet at `now` and returns what the channel did.
fn step_at(ch: &mut Channel, packet: Packet, now: Instant) -> Vec<Action> {
    let mut out = Vec::new();
    ch.handle_in(packet, now, &mut out);
    out
}

/// Feeds one packet at [`t0`] and returns what the channel did.
fn step(ch: &mut Channel, packet: Packet) -> Vec<Action> {
    step_at(ch, packet, t0())
}

/// CONNECT then `opened(None)`: a connected channel with a new session. Both
/// steps are checked, then the CONNACK is returned.
fn open_with(config: ChannelConfig, connect: Connect) -> (Channel, crate::codec::ConnAck) {
    let mut ch = channel(config);
    let (client_id, clean_start) = (connect.client_id.clone(), connect.clean_start);
    let out = step(&mut ch, Packet::Connect(Box::new(connect)));
    let [Action::Open {
        client_id: opened_id,
        clean_start: opened_clean,
    }] = out.as_slice()
    else {
        panic!("expected Open, got {out:?}");
    };
    assert_eq!(*opened_clean, clean_start);
    // An empty client id is replaced by an assigned one.
    assert!(client_id.is_empty() || *opened_id == client_id);
    assert!(!opened_id.is_empty());
    let mut out = Vec::new();
    ch.opened(None, t0(), &mut out);
    let [Action::Send(Packet::ConnAck(connack))] = out.as_slice() else {
        panic!("expected one CONNACK, got {out:?}");
    };
    assert!(ch.is_connected());
    (ch, (**connack).clone())
}

/// A connected channel for `connect` under the default configuration.
fn open(connect: Connect) -> Channel {
    open_with(ChannelConfig::default(), connect).0
}

/// Calls `closed(SocketClosed)` and returns what the channel did.
fn close(ch: &mut Channel) -> Vec<Action> {
    let mut out = Vec::new();
    ch.closed(super::CloseCause::SocketClosed, t0(), &mut out);
    out
}

/// Whether two actions are equal, field by field (`Action` does not
/// implement `PartialEq`).
fn same(a: &Action, b: &Action) -> bool {
    use Action as A;
    match (a, b) {
        (A::Send(x), A::Send(y)) => x == y,
        (A::SendPublish(x), A::SendPublish(y)) => x == y,
        (
            A::Open {
                client_id: c1,
                clean_start: s1,
            },
            A::Open {
                client_id: c2,
                clean_start: s2,
            },
        ) => c1 == c2 && s1 == s2,
        (
            A::Publish {
                message: m1,
                ack: a1,
            },
            A::Publish {
                message: m2,
                ack: a2,
            },
        ) => m1 == m2 && a1 == a2,
        (
            A::Subscribe {
                filter: f1,
                opts: o1,
                send_retained: r1,
            },
            A::Subscribe {
                filter: f2,
                opts: o2,
                send_retained: r2,
            },
        ) => f1 == f2 && o1 == o2 && r1 == r2,
        (A::Unsubscribe { filter: f1 }, A::Unsubscribe { filter: f2 }) => f1 == f2,
        (A::PublishWill(m1), A::PublishWill(m2)) => m1 == m2,
        (A::ScheduleWill(d1), A::ScheduleWill(d2)) => d1 == d2,
        (A::Park(e1), A::Park(e2)) => e1 == e2,
        (A::Close, A::Close) | (A::DroppedTooLarge, A::DroppedTooLarge) => true,
        (A::Terminate, A::Terminate) => true,
        _ => false,
    }
}

/// Asserts that `actual` is exactly `expected`, in order.
#[track_caller]
fn assert_actions(actual: &[Action], expected: &[Action]) {
    let equal =
        actual.len() == expected.len() && actual.iter().zip(expected).all(|(a, e)| same(a, e));
    assert!(
        equal,
        "actions differ\n  actual:   {actual:#?}\n  expected: {expected:#?}"
    );
}

/// The PUBLISH packets among `actions`, failing on anything else.
#[track_caller]
fn sent_publishes(actions: &[Action]) -> Vec<Publish> {
    actions
        .iter()
        .map(|a| match a {
            Action::SendPublish(p) => p.to_publish(),
            other => panic!("expected a PUBLISH, got {other:?}"),
        })
        .collect()
}
