//! CONNECT: what is refused, what is assigned, and the CONNACK.

use std::time::Duration;

use super::*;
use crate::codec::{ConnAck, ConnAckProperties};

#[test]
fn a_first_packet_other_than_connect_closes_and_terminates() {
    // MQTT-3.1.0-1: the first packet from the client must be CONNECT.
    let mut ch = channel(ChannelConfig::default());
    assert_actions(
        &step(&mut ch, Packet::PingReq),
        &[Action::Close, Action::Terminate],
    );
    // The channel is over: nothing that follows is answered.
    assert_actions(
        &step(&mut ch, Packet::Connect(Box::new(connect_v5("c")))),
        &[],
    );
    assert!(!ch.is_connected());
}

#[test]
fn a_second_connect_is_a_protocol_error() {
    // MQTT-3.1.0-2: v5 gets DISCONNECT 0x82, then the socket closes; a
    // session with expiry 0 ends with it.
    let mut ch = open(connect_v5("c"));
    assert_actions(
        &step(&mut ch, Packet::Connect(Box::new(connect_v5("c")))),
        &[
            send_disconnect(ReasonCode::ProtocolError),
            Action::Close,
            Action::Terminate,
        ],
    );
    // MQTT 3.1.1 has no server DISCONNECT: the socket just closes.
    let mut ch = open(connect_v3("c"));
    assert_actions(
        &step(&mut ch, Packet::Connect(Box::new(connect_v3("c")))),
        &[Action::Close, Action::Terminate],
    );
}

#[test]
fn a_second_connect_before_connack_closes_once() {
    // MQTT-3.1.0-2 while the session is being opened: no DISCONNECT (no
    // CONNACK was sent yet), one Close, and the channel ends.
    let mut ch = channel(ChannelConfig::default());
    step(&mut ch, Packet::Connect(Box::new(connect_v5("c"))));
    assert_actions(
        &step(&mut ch, Packet::Connect(Box::new(connect_v5("c")))),
        &[Action::Close, Action::Terminate],
    );
    let mut out = Vec::new();
    ch.opened(None, t0(), &mut out);
    assert_actions(&out, &[]);
}

#[test]
fn v5_empty_client_id_is_assigned_and_returned_in_connack() {
    // MQTT-3.1.3-6, MQTT-3.2.2-16.
    let mut ch = channel(ChannelConfig::default());
    let out = step(&mut ch, Packet::Connect(Box::new(connect_v5(""))));
    let [Action::Open {
        client_id,
        clean_start: true,
    }] = out.as_slice()
    else {
        panic!("expected Open, got {out:?}");
    };
    assert!(client_id.starts_with("girder-"), "{client_id}");
    assert_eq!(ch.info().map(|i| i.assigned_client_id), Some(true));

    let mut out = Vec::new();
    ch.opened(None, t0(), &mut out);
    let [Action::Send(Packet::ConnAck(connack))] = out.as_slice() else {
        panic!("expected CONNACK, got {out:?}");
    };
    assert_eq!(connack.reason_code, ReasonCode::Success);
    assert_eq!(
        connack.properties.assigned_client_identifier.as_ref(),
        Some(client_id)
    );
    // Two clients without ids get two ids.
    let other = open_with(ChannelConfig::default(), connect_v5("")).1;
    assert_ne!(
        other.properties.assigned_client_identifier.as_ref(),
        Some(client_id)
    );
}

#[test]
fn v311_empty_client_id_with_clean_session_is_accepted() {
    // MQTT-3.1.3-7 (3.1.1): accepted, and the CONNACK has no properties.
    let (ch, connack) = open_with(ChannelConfig::default(), connect_v3(""));
    assert!(!connack.session_present);
    assert_eq!(connack.reason_code, ReasonCode::Success);
    assert_eq!(connack.properties, ConnAckProperties::default());
    assert!(ch.info().is_some_and(|i| !i.client_id.is_empty()));
}

#[test]
fn v311_empty_client_id_without_clean_session_is_refused() {
    // MQTT-3.1.3-8 (3.1.1): CONNACK return code 0x02, then close.
    let mut ch = channel(ChannelConfig::default());
    let connect = Connect {
        clean_start: false,
        ..connect_v3("")
    };
    assert_actions(
        &step(&mut ch, Packet::Connect(Box::new(connect))),
        &[
            send_refusal(ReasonCode::ClientIdentifierNotValid),
            Action::Close,
            Action::Terminate,
        ],
    );
    assert_eq!(ReasonCode::ClientIdentifierNotValid.to_v3_connack(), 0x02);
}

#[test]
fn v31_empty_client_id_is_refused() {
    // MQTT 3.1 requires 1 to 23 characters, clean session or not.
    let mut ch = channel(ChannelConfig::default());
    let connect = Connect {
        protocol: ProtocolVersion::V3_1,
        ..connect_v3("")
    };
    assert_actions(
        &step(&mut ch, Packet::Connect(Box::new(connect))),
        &[
            send_refusal(ReasonCode::ClientIdentifierNotValid),
            Action::Close,
            Action::Terminate,
        ],
    );
}

#[test]
fn a_client_id_over_max_clientid_len_is_refused_with_0x85() {
    let config = ChannelConfig {
        max_clientid_len: 4,
        ..ChannelConfig::default()
    };
    let mut ch = channel(config.clone());
    assert_actions(
        &step(&mut ch, Packet::Connect(Box::new(connect_v5("abcde")))),
        &[
            send_refusal(ReasonCode::ClientIdentifierNotValid),
            Action::Close,
            Action::Terminate,
        ],
    );
    // Exactly the limit is fine.
    let (_, connack) = open_with(config, connect_v5("abcd"));
    assert_eq!(connack.reason_code, ReasonCode::Success);
}

#[test]
fn refused_wills_and_authentication() {
    let cases = [
        // Will QoS above the maximum QoS (MQTT-3.2.2-12): 0x9B.
        (
            Connect {
                will: Some(LastWill {
                    qos: QoS::ExactlyOnce,
                    ..will("w", None)
                }),
                ..connect_v5("c")
            },
            ReasonCode::QoSNotSupported,
        ),
        // Will Retain when retain is unavailable (MQTT-3.2.2-13): 0x9A.
        (
            Connect {
                will: Some(LastWill {
                    retain: true,
                    ..will("w", None)
                }),
                ..connect_v5("c")
            },
            ReasonCode::RetainNotSupported,
        ),
        // A will topic with a wildcard: 0x90.
        (
            Connect {
                will: Some(will("w/#", None)),
                ..connect_v5("c")
            },
            ReasonCode::TopicNameInvalid,
        ),
        // Enhanced authentication is not offered: 0x8C.
        (
            Connect {
                properties: ConnectProperties {
                    authentication_method: Some(ByteStr::from("SCRAM-SHA-1")),
                    ..ConnectProperties::default()
                },
                ..connect_v5("c")
            },
            ReasonCode::BadAuthenticationMethod,
        ),
    ];
    let config = ChannelConfig {
        max_qos_allowed: QoS::AtLeastOnce,
        retain_available: false,
        ..ChannelConfig::default()
    };
    for (connect, reason) in cases {
        let mut ch = channel(config.clone());
        assert_actions(
            &step(&mut ch, Packet::Connect(Box::new(connect))),
            &[send_refusal(reason), Action::Close, Action::Terminate],
        );
        assert!(ch.session().is_none());
    }
}

#[test]
fn v5_connack_advertises_the_defaults() {
    let (_, connack) = open_with(ChannelConfig::default(), connect_v5("c"));
    let expected = ConnAck {
        session_present: false,
        reason_code: ReasonCode::Success,
        properties: ConnAckProperties {
            receive_maximum: Some(32),
            maximum_packet_size: Some(1024 * 1024),
            topic_alias_maximum: Some(65535),
            subscription_identifiers_available: Some(true),
            ..ConnAckProperties::default()
        },
    };
    assert_eq!(connack, expected);
}

fn restricted() -> ChannelConfig {
    ChannelConfig {
        max_packet_size: 4096,
        max_qos_allowed: QoS::AtLeastOnce,
        max_topic_alias: 8,
        retain_available: false,
        wildcard_subscription: false,
        shared_subscription: false,
        server_keepalive: Some(30),
        response_information: "reply/".to_owned(),
        receive_maximum: 10,
        ..ChannelConfig::default()
    }
}

#[test]
fn v5_connack_advertises_every_restriction() {
    let connect = Connect {
        properties: ConnectProperties {
            request_response_information: Some(true),
            ..ConnectProperties::default()
        },
        ..connect_v5("c")
    };
    let (_, connack) = open_with(restricted(), connect);
    let expected = ConnAckProperties {
        receive_maximum: Some(10),
        maximum_qos: Some(QoS::AtLeastOnce),
        retain_available: Some(false),
        maximum_packet_size: Some(4096),
        topic_alias_maximum: Some(8),
        wildcard_subscription_available: Some(false),
        subscription_identifiers_available: Some(true),
        shared_subscription_available: Some(false),
        server_keep_alive: Some(30),
        response_information: Some(ByteStr::from("reply/")),
        ..ConnAckProperties::default()
    };
    assert_eq!(connack.properties, expected);
}

#[test]
fn response_information_only_when_requested_and_configured() {
    // MQTT-3.1.2-28 leaves it optional; it is never sent unasked.
    let (_, connack) = open_with(restricted(), connect_v5("c"));
    assert_eq!(connack.properties.response_information, None);
    let connect = Connect {
        properties: ConnectProperties {
            request_response_information: Some(true),
            ..ConnectProperties::default()
        },
        ..connect_v5("c")
    };
    let (_, connack) = open_with(ChannelConfig::default(), connect);
    assert_eq!(connack.properties.response_information, None);
}

#[test]
fn v3_connack_has_no_properties_whatever_the_config() {
    let (_, connack) = open_with(restricted(), connect_v3("c"));
    assert_eq!(connack.properties, ConnAckProperties::default());
}

#[test]
fn session_expiry_of_v3_clients() {
    // Clean session 1: the session ends with the connection.
    let (ch, _) = open_with(ChannelConfig::default(), connect_v3("c"));
    assert_eq!(ch.info().map(|i| i.session_expiry), Some(0));
    assert_eq!(
        ch.session().and_then(|s| s.expiry_interval()),
        Some(Duration::ZERO)
    );
    // Clean session 0: the configured interval.
    let config = ChannelConfig {
        session_expiry_interval: Duration::from_secs(600),
        ..ChannelConfig::default()
    };
    let connect = Connect {
        clean_start: false,
        ..connect_v3("c")
    };
    let (mut ch, _) = open_with(config, connect);
    assert_eq!(ch.info().map(|i| i.session_expiry), Some(600));
    assert_actions(
        &close(&mut ch),
        &[Action::Park(Some(Duration::from_secs(600)))],
    );
}

#[test]
fn session_expiry_of_v5_clients_is_theirs() {
    let connect = |expiry| Connect {
        properties: ConnectProperties {
            session_expiry_interval: expiry,
            ..ConnectProperties::default()
        },
        ..connect_v5("c")
    };
    let (ch, _) = open_with(ChannelConfig::default(), connect(None));
    assert_eq!(
        ch.session().and_then(|s| s.expiry_interval()),
        Some(Duration::ZERO)
    );
    let (ch, _) = open_with(ChannelConfig::default(), connect(Some(45)));
    assert_eq!(
        ch.session().and_then(|s| s.expiry_interval()),
        Some(Duration::from_secs(45))
    );
    // 0xFFFFFFFF: the session never expires (MQTT 5 section 3.1.2.11.2).
    let (ch, _) = open_with(ChannelConfig::default(), connect(Some(u32::MAX)));
    assert_eq!(ch.session().and_then(|s| s.expiry_interval()), None);
}

#[test]
fn keepalive_timeout_is_one_and_a_half_keep_alives() {
    // MQTT-3.1.2-24.
    let ch = open(connect_v3("c"));
    assert_eq!(ch.keepalive_timeout(), Some(Duration::from_secs(90)));
    let ch = open(Connect {
        keep_alive: 5,
        ..connect_v5("c")
    });
    assert_eq!(ch.keepalive_timeout(), Some(Duration::from_millis(7500)));
    // Keep alive 0 turns the mechanism off.
    let ch = open(Connect {
        keep_alive: 0,
        ..connect_v5("c")
    });
    assert_eq!(ch.keepalive_timeout(), None);
    // Before CONNECT there is nothing to time.
    assert_eq!(channel(ChannelConfig::default()).keepalive_timeout(), None);
}

#[test]
fn server_keep_alive_overrides_the_v5_client_only() {
    // MQTT-3.2.2-21: the client must use the Server Keep Alive.
    let config = ChannelConfig {
        server_keepalive: Some(20),
        ..ChannelConfig::default()
    };
    let (ch, connack) = open_with(config.clone(), connect_v5("c"));
    assert_eq!(connack.properties.server_keep_alive, Some(20));
    assert_eq!(ch.info().map(|i| i.keep_alive), Some(20));
    assert_eq!(ch.keepalive_timeout(), Some(Duration::from_secs(30)));
    // MQTT 3 cannot be told: the client's own keep alive stays.
    let (ch, _) = open_with(config, connect_v3("c"));
    assert_eq!(ch.keepalive_timeout(), Some(Duration::from_secs(90)));
}

#[test]
fn username_as_client_id() {
    let config = ChannelConfig {
        use_username_as_clientid: true,
        ..ChannelConfig::default()
    };
    let mut ch = channel(config);
    let connect = Connect {
        username: Some(ByteStr::from("alice")),
        ..connect_v5("")
    };
    assert_actions(
        &step(&mut ch, Packet::Connect(Box::new(connect))),
        &[Action::Open {
            client_id: ByteStr::from("alice"),
            clean_start: true,
        }],
    );
    assert_eq!(ch.info().map(|i| i.assigned_client_id), Some(false));
}

#[test]
fn closing_before_the_session_is_opened_terminates() {
    let mut ch = channel(ChannelConfig::default());
    step(&mut ch, Packet::Connect(Box::new(connect_v5("c"))));
    assert_actions(&close(&mut ch), &[Action::Close, Action::Terminate]);
    // A late answer to Open is ignored.
    let mut out = Vec::new();
    ch.opened(None, t0(), &mut out);
    assert_actions(&out, &[]);
    assert!(!ch.is_connected());
}
