//! The end of a connection: the will, the session's expiry, takeover by a
//! new connection and the resumption of a session.

use std::time::Duration;

use super::*;
use crate::channel::CloseCause;
use crate::codec::ConnAck;
use crate::message::Delivery;

/// A v5 CONNECT with a session expiry and a will.
fn connect_will(expiry: Option<u32>, will: Option<LastWill>) -> Connect {
    Connect {
        will,
        properties: ConnectProperties {
            session_expiry_interval: expiry,
            ..ConnectProperties::default()
        },
        ..connect_v5("c")
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn closing_with_a_will_and_no_delay_publishes_it() {
    // MQTT-3.1.2-8: the will is published when the connection ends
    // without a normal DISCONNECT.
    let w = will("w", None);
    let mut ch = open(connect_will(None, Some(w.clone())));
    assert_actions(
        &close(&mut ch),
        &[
            Action::PublishWill(will_message(&w, "c")),
            Action::Terminate,
        ],
    );
    // Closing again does nothing.
    assert_actions(&close(&mut ch), &[]);
}

#[test]
fn a_will_delay_is_cut_short_by_the_session_end() {
    // MQTT-3.1.3-9: the will is published after the Will Delay Interval or
    // when the session ends, whichever comes first.
    let cases = [
        // (will delay, session expiry, scheduled, parked)
        (30, Some(60), secs(30), Some(secs(60))),
        (100, Some(10), secs(10), Some(secs(10))),
        (30, Some(u32::MAX), secs(30), None),
    ];
    for (delay, expiry, scheduled, parked) in cases {
        let mut ch = open(connect_will(expiry, Some(will("w", Some(delay)))));
        assert_actions(
            &close(&mut ch),
            &[Action::ScheduleWill(scheduled), Action::Park(parked)],
        );
    }
    // A session that ends with the connection takes the will with it now.
    let w = will("w", Some(30));
    let mut ch = open(connect_will(None, Some(w.clone())));
    assert_actions(
        &close(&mut ch),
        &[
            Action::PublishWill(will_message(&w, "c")),
            Action::Terminate,
        ],
    );
}

#[test]
fn the_will_timer_publishes_the_will_once() {
    let w = will("w", Some(30));
    let mut ch = open(connect_will(Some(60), Some(w.clone())));
    close(&mut ch);
    let mut out = Vec::new();
    ch.will_timer(&mut out);
    assert_actions(
        &out,
        &[Action::PublishWill(will_message_at(&w, "c", at(30)))],
    );
    // The session then expires without a second will.
    let mut out = Vec::new();
    ch.will_timer(&mut out);
    ch.expire(&mut out);
    assert_actions(&out, &[Action::Terminate]);
    // Expiry is final.
    let mut out = Vec::new();
    ch.expire(&mut out);
    ch.will_timer(&mut out);
    assert_actions(&out, &[]);
}

#[test]
fn expiry_publishes_a_pending_will_then_terminates() {
    let w = will("w", Some(300));
    let mut ch = open(connect_will(Some(300), Some(w.clone())));
    close(&mut ch);
    let mut out = Vec::new();
    ch.expire(&mut out);
    assert_actions(
        &out,
        &[
            Action::PublishWill(will_message_at(&w, "c", at(300))),
            Action::Terminate,
        ],
    );
}

#[test]
fn the_will_message_expiry_runs_from_its_publication() {
    // MQTT 5 section 3.1.3.2.4: the Message Expiry Interval of the will is
    // its lifetime once published, however long the connection lasted.
    let w = LastWill {
        properties: WillProperties {
            message_expiry_interval: Some(10),
            ..WillProperties::default()
        },
        ..will("w", None)
    };
    let mut ch = open(connect_will(None, Some(w.clone())));
    let mut out = Vec::new();
    ch.closed(CloseCause::SocketClosed, at(100), &mut out);
    let [Action::PublishWill(message), Action::Terminate] = out.as_slice() else {
        panic!("expected the will then Terminate, got {out:?}");
    };
    assert_eq!(**message, *will_message_at(&w, "c", at(100)));
    assert_eq!(
        (message.received_at, message.expires_at),
        (at(100), Some(at(110)))
    );

    // A delayed will is dated when its delay ends.
    let w = LastWill {
        properties: WillProperties {
            will_delay_interval: Some(30),
            message_expiry_interval: Some(10),
            ..WillProperties::default()
        },
        ..will("w", None)
    };
    let mut ch = open(connect_will(Some(60), Some(w.clone())));
    let mut out = Vec::new();
    ch.closed(CloseCause::SocketClosed, at(100), &mut out);
    ch.will_timer(&mut out);
    assert_actions(
        &out,
        &[
            Action::ScheduleWill(secs(30)),
            Action::Park(Some(secs(60))),
            Action::PublishWill(will_message_at(&w, "c", at(130))),
        ],
    );
    // A clean-start takeover publishes it at the takeover.
    let mut ch = open(connect_will(Some(60), Some(w.clone())));
    let mut out = Vec::new();
    ch.takeover(true, at(7), &mut out);
    assert_actions(
        &out,
        &[
            send_disconnect(ReasonCode::SessionTakenOver),
            Action::Close,
            Action::PublishWill(will_message_at(&w, "c", at(7))),
        ],
    );
}

#[test]
fn a_normal_disconnect_discards_the_will() {
    // MQTT-3.1.2-10 / MQTT-3.14.4-3.
    let mut ch = open(connect_will(None, Some(will("w", None))));
    assert_actions(
        &step(&mut ch, disconnect(ReasonCode::Success, None)),
        &[Action::Close, Action::Terminate],
    );
    // MQTT 3.1.1: DISCONNECT always discards the will.
    let mut ch = open(Connect {
        will: Some(will("w", None)),
        ..connect_v3("c")
    });
    assert_actions(
        &step(&mut ch, disconnect(ReasonCode::Success, None)),
        &[Action::Close, Action::Terminate],
    );
}

#[test]
fn disconnect_with_will_message_keeps_the_will() {
    // MQTT 5 section 3.14.2.1, reason 0x04.
    let w = will("w", None);
    let mut ch = open(connect_will(None, Some(w.clone())));
    assert_actions(
        &step(
            &mut ch,
            disconnect(ReasonCode::DisconnectWithWillMessage, None),
        ),
        &[
            Action::Close,
            Action::PublishWill(will_message(&w, "c")),
            Action::Terminate,
        ],
    );
}

#[test]
fn session_expiry_decides_between_terminate_and_park() {
    let mut ch = open(connect_will(None, None));
    assert_actions(&close(&mut ch), &[Action::Terminate]);
    let mut ch = open(connect_will(Some(90), None));
    assert_actions(&close(&mut ch), &[Action::Park(Some(secs(90)))]);
    assert!(ch.session().is_some_and(|s| !s.is_connected()));
    let mut ch = open(connect_will(Some(u32::MAX), None));
    assert_actions(&close(&mut ch), &[Action::Park(None)]);
}

#[test]
fn disconnect_may_change_a_nonzero_session_expiry() {
    // MQTT 5 section 3.14.2.2.2.
    let mut ch = open(connect_will(Some(60), None));
    assert_actions(
        &step(&mut ch, disconnect(ReasonCode::Success, Some(120))),
        &[Action::Close, Action::Park(Some(secs(120)))],
    );
    let mut ch = open(connect_will(Some(60), None));
    assert_actions(
        &step(&mut ch, disconnect(ReasonCode::Success, Some(0))),
        &[Action::Close, Action::Terminate],
    );
}

#[test]
fn disconnect_raising_a_zero_session_expiry_is_a_protocol_error() {
    // MQTT-3.14.2-2: the server answers DISCONNECT 0x82, and the will is
    // published since the connection did not end normally.
    let w = will("w", None);
    let mut ch = open(connect_will(None, Some(w.clone())));
    assert_actions(
        &step(&mut ch, disconnect(ReasonCode::Success, Some(30))),
        &[
            send_disconnect(ReasonCode::ProtocolError),
            Action::Close,
            Action::PublishWill(will_message(&w, "c")),
            Action::Terminate,
        ],
    );
}

#[test]
fn server_disconnect_tells_a_v5_client_why() {
    // MQTT-3.1.2-22 keep-alive timeout: DISCONNECT 0x8D, will published.
    let w = will("w", None);
    let mut ch = open(connect_will(None, Some(w.clone())));
    let mut out = Vec::new();
    ch.server_disconnect(
        ReasonCode::KeepAliveTimeout,
        CloseCause::KeepAliveTimeout,
        t0(),
        &mut out,
    );
    assert_actions(
        &out,
        &[
            send_disconnect(ReasonCode::KeepAliveTimeout),
            Action::Close,
            Action::PublishWill(will_message(&w, "c")),
            Action::Terminate,
        ],
    );
    // MQTT 3.1.1: the socket just closes.
    let mut ch = open(connect_v3("c"));
    let mut out = Vec::new();
    ch.server_disconnect(
        ReasonCode::ServerShuttingDown,
        CloseCause::ServerShutdown,
        t0(),
        &mut out,
    );
    assert_actions(&out, &[Action::Close, Action::Terminate]);
}

/// A persistent v5 client "c" with a will, subscribed to "a" (QoS 1) and
/// "b" (QoS 2), holding two unacknowledged deliveries (ids 1 and 2).
fn busy_client() -> (Channel, LastWill) {
    let w = will("w", None);
    let connect = Connect {
        clean_start: false,
        ..connect_will(Some(600), Some(w.clone()))
    };
    let mut ch = open(connect);
    step(
        &mut ch,
        subscribe(
            1,
            &[("a", qos(QoS::AtLeastOnce)), ("b", qos(QoS::ExactlyOnce))],
        ),
    );
    let mut out = Vec::new();
    ch.deliver(
        [
            Delivery::new(
                message("a", QoS::AtLeastOnce),
                SubOpts::with_qos(QoS::AtLeastOnce),
            ),
            Delivery::new(
                message("b", QoS::ExactlyOnce),
                SubOpts::with_qos(QoS::ExactlyOnce),
            ),
        ],
        t0(),
        &mut out,
    );
    assert_eq!(sent_publishes(&out).len(), 2);
    (ch, w)
}

#[test]
fn takeover_continuing_the_session_moves_it_and_drops_the_will() {
    // MQTT-3.1.4-3: the old connection gets DISCONNECT 0x8E and is closed.
    let (mut ch, _) = busy_client();
    let mut out = Vec::new();
    let session = ch.takeover(false, at(1), &mut out);
    assert_actions(
        &out,
        &[send_disconnect(ReasonCode::SessionTakenOver), Action::Close],
    );
    let session = session.expect("the session moves to the new connection");
    assert_eq!(session.subscriptions().count(), 2);
    assert_eq!(session.info().inflight, 2);
    assert!(!session.is_connected());
    assert!(!ch.is_connected());
    // Nothing is left behind: no will, no second end.
    let mut out = Vec::new();
    ch.will_timer(&mut out);
    ch.expire(&mut out);
    close(&mut ch);
    assert_actions(&out, &[]);
}

#[test]
fn takeover_with_clean_start_publishes_the_will_and_ends_the_session() {
    let (mut ch, w) = busy_client();
    let mut out = Vec::new();
    let session = ch.takeover(true, at(1), &mut out);
    assert!(session.is_none());
    assert_actions(
        &out,
        &[
            send_disconnect(ReasonCode::SessionTakenOver),
            Action::Close,
            Action::PublishWill(will_message_at(&w, "c", at(1))),
        ],
    );
}

#[test]
fn takeover_of_a_v3_or_parked_client_sends_no_disconnect() {
    let mut ch = open(Connect {
        clean_start: false,
        ..connect_v3("c")
    });
    let mut out = Vec::new();
    assert!(ch.takeover(false, t0(), &mut out).is_some());
    assert_actions(&out, &[Action::Close]);

    // Parked, with its will scheduled: the new connection cancels the will
    // (MQTT-3.1.2-8: it reconnected before the will delay elapsed).
    let mut ch = open(connect_will(Some(60), Some(will("w", Some(30)))));
    close(&mut ch);
    let mut out = Vec::new();
    assert!(ch.takeover(false, t0(), &mut out).is_some());
    ch.will_timer(&mut out);
    assert_actions(&out, &[]);
}

#[test]
fn a_resumed_session_is_resubscribed_then_replayed() {
    // MQTT-3.2.2-2: session present; MQTT-4.4.0-1: unacknowledged PUBLISH
    // packets are resent with DUP 1 and their original packet ids.
    let (mut old, _) = busy_client();
    close(&mut old);
    let mut out = Vec::new();
    let session = old.takeover(false, at(1), &mut out);
    assert_actions(&out, &[]);

    let mut ch = channel(ChannelConfig::default());
    let connect = Connect {
        clean_start: false,
        ..connect_will(Some(600), None)
    };
    assert_actions(
        &step(&mut ch, Packet::Connect(Box::new(connect))),
        &[Action::Open {
            client_id: ByteStr::from("c"),
            clean_start: false,
        }],
    );
    let mut out = Vec::new();
    ch.opened(session, at(2), &mut out);
    assert_eq!(out.len(), 5, "{out:?}");

    let Action::Send(Packet::ConnAck(connack)) = &out[0] else {
        panic!("expected CONNACK first, got {out:?}");
    };
    let expected = ConnAck {
        session_present: true,
        ..(**connack).clone()
    };
    assert_eq!(**connack, expected);
    assert_eq!(connack.reason_code, ReasonCode::Success);

    // Every subscription goes back into the index, retained messages not
    // resent; the session keeps them in no particular order.
    let mut subs: Vec<_> = out[1..3].iter().collect();
    subs.sort_by_key(|a| match a {
        Action::Subscribe { filter, .. } => filter.to_string(),
        _ => String::new(),
    });
    assert_actions(
        &[sub_clone(subs[0]), sub_clone(subs[1])],
        &[
            sub_action("a", SubOpts::with_qos(QoS::AtLeastOnce), false),
            sub_action("b", SubOpts::with_qos(QoS::ExactlyOnce), false),
        ],
    );

    let resent: Vec<_> = sent_publishes(&out[3..])
        .iter()
        .map(|p| (p.topic.to_string(), p.packet_id, p.dup, p.qos))
        .collect();
    assert_eq!(
        resent,
        [
            ("a".to_owned(), Some(1), true, QoS::AtLeastOnce),
            ("b".to_owned(), Some(2), true, QoS::ExactlyOnce),
        ]
    );
    assert!(ch.is_connected());
    assert!(ch.session().is_some_and(|s| s.is_connected()));
}

#[test]
fn a_new_session_is_not_present() {
    let (_, connack) = open_with(ChannelConfig::default(), connect_will(Some(600), None));
    assert!(!connack.session_present);
}

/// A copy of a `Subscribe` action (actions are not `Clone`).
fn sub_clone(action: &Action) -> Action {
    match action {
        Action::Subscribe {
            filter,
            opts,
            send_retained,
        } => Action::Subscribe {
            filter: filter.clone(),
            opts: *opts,
            send_retained: *send_retained,
        },
        other => panic!("expected Subscribe, got {other:?}"),
    }
}
