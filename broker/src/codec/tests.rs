//! Byte-literal tests: every packet in each version, spec examples, and the
//! shared-frame encoder.

use bytes::{Bytes, BytesMut};

use super::wire::{parse_var_int, VarInt};
use super::*;

const MAX: u32 = 1024;

/// Decodes exactly one packet from `bytes`, asserting that it used them all.
fn decode_one(decoder: &mut Decoder, bytes: &[u8]) -> Packet {
    let mut buf = BytesMut::from(bytes);
    let packet = decoder
        .decode(&mut buf)
        .unwrap_or_else(|e| panic!("decode {bytes:02x?}: {e}"))
        .unwrap_or_else(|| panic!("incomplete: {bytes:02x?}"));
    assert!(buf.is_empty(), "left over: {:02x?}", &buf[..]);
    packet
}

fn encode_to_vec(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode(packet, version, &mut buf).expect("encode");
    assert_eq!(encoded_len(packet, version), Ok(buf.len()));
    buf.to_vec()
}

/// Decodes `bytes` as `expected` and encodes `expected` back to `bytes`.
fn both_ways(version: ProtocolVersion, bytes: &[u8], expected: Packet) {
    let mut decoder = match expected {
        Packet::Connect(_) => Decoder::new(MAX),
        _ => Decoder::with_version(version, MAX),
    };
    assert_eq!(decode_one(&mut decoder, bytes), expected);
    assert_eq!(encode_to_vec(&expected, version), bytes);
}

fn s(v: &'static str) -> ByteStr {
    ByteStr::from_static(v)
}

fn connect(protocol: ProtocolVersion, client_id: &'static str) -> Connect {
    Connect {
        protocol,
        clean_start: true,
        keep_alive: 60,
        client_id: s(client_id),
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties::default(),
    }
}

#[test]
fn remaining_length_spec_examples() {
    // MQTT 3.1.1 table 2.4 / MQTT 5.0 table 1-1.
    let cases: [(&[u8], u32); 8] = [
        (&[0x00], 0),
        (&[0x7F], 127),
        (&[0x80, 0x01], 128),
        (&[0xFF, 0x7F], 16_383),
        (&[0x80, 0x80, 0x01], 16_384),
        (&[0xFF, 0xFF, 0x7F], 2_097_151),
        (&[0x80, 0x80, 0x80, 0x01], 2_097_152),
        (&[0xFF, 0xFF, 0xFF, 0x7F], 268_435_455),
    ];
    for (bytes, value) in cases {
        assert_eq!(
            parse_var_int(bytes),
            VarInt::Value {
                value,
                len: bytes.len()
            }
        );
        let mut out = BytesMut::new();
        wire::Sink::put_var_int(&mut out, value).expect("in range");
        assert_eq!(&out[..], bytes);
    }
    assert_eq!(parse_var_int(&[0x80, 0x80]), VarInt::Incomplete);
    assert_eq!(parse_var_int(&[0xFF, 0xFF, 0xFF, 0xFF]), VarInt::Malformed);
}

#[test]
fn utf8_spec_example_is_decoded() {
    // MQTT 5.0 figure 1-1: "A\u{2A6D4}" encoded as 00 05 41 F0 AA 9B 94.
    let bytes = [0x30, 0x07, 0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94];
    let mut d = Decoder::with_version(ProtocolVersion::V3_1_1, MAX);
    match decode_one(&mut d, &bytes) {
        Packet::Publish(p) => assert_eq!(p.topic, "A\u{2A6D4}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn connect_v3_1_1_minimal() {
    let bytes = [
        0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00,
    ];
    both_ways(
        ProtocolVersion::V3_1_1,
        &bytes,
        Packet::Connect(Box::new(connect(ProtocolVersion::V3_1_1, ""))),
    );
}

#[test]
fn connect_v3_1_1_spec_flags_with_will_and_credentials() {
    // Flags 0xEE: user name, password, will retain, will QoS 1, will, clean.
    let bytes = [
        0x10, 0x1D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xEE, 0x00, 0x0A, 0x00, 0x03, b'c',
        b'i', b'd', 0x00, 0x01, b'w', 0x00, 0x02, b'h', b'i', 0x00, 0x01, b'u', 0x00, 0x02, b'p',
        b'w',
    ];
    let mut c = connect(ProtocolVersion::V3_1_1, "cid");
    c.keep_alive = 10;
    c.will = Some(LastWill {
        topic: s("w"),
        payload: Bytes::from_static(b"hi"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: WillProperties::default(),
    });
    c.username = Some(s("u"));
    c.password = Some(Bytes::from_static(b"pw"));
    both_ways(
        ProtocolVersion::V3_1_1,
        &bytes,
        Packet::Connect(Box::new(c)),
    );
}

#[test]
fn connect_v3_1_uses_mqisdp() {
    let bytes = [
        0x10, 0x0F, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x02, 0x00, 0x3C, 0x00,
        0x01, b'a',
    ];
    both_ways(
        ProtocolVersion::V3_1,
        &bytes,
        Packet::Connect(Box::new(connect(ProtocolVersion::V3_1, "a"))),
    );
}

#[test]
fn connect_v5_with_properties_and_will_properties() {
    let bytes = [
        0x10, 0x1F, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x06, 0x00, 0x3C, // header
        0x05, 0x11, 0x00, 0x00, 0x00, 0x78, // session expiry 120
        0x00, 0x01, b'a', // client id
        0x05, 0x18, 0x00, 0x00, 0x00, 0x0A, // will delay 10
        0x00, 0x01, b't', 0x00, 0x01, b'x',
    ];
    let mut c = connect(ProtocolVersion::V5, "a");
    c.properties.session_expiry_interval = Some(120);
    c.will = Some(LastWill {
        topic: s("t"),
        payload: Bytes::from_static(b"x"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: WillProperties {
            will_delay_interval: Some(10),
            ..WillProperties::default()
        },
    });
    both_ways(ProtocolVersion::V5, &bytes, Packet::Connect(Box::new(c)));
}

#[test]
fn connect_v5_allows_password_without_user_name() {
    let bytes = [
        0x10, 0x11, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x42, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x02, b'p', b'w',
    ];
    let mut c = connect(ProtocolVersion::V5, "");
    c.keep_alive = 0;
    c.password = Some(Bytes::from_static(b"pw"));
    both_ways(ProtocolVersion::V5, &bytes, Packet::Connect(Box::new(c)));
}

#[test]
fn connack_in_each_version() {
    let accepted = ConnAck {
        session_present: true,
        ..ConnAck::default()
    };
    for v in [ProtocolVersion::V3_1, ProtocolVersion::V3_1_1] {
        both_ways(
            v,
            &[0x20, 0x02, 0x01, 0x00],
            Packet::ConnAck(Box::new(accepted.clone())),
        );
        let refused = ConnAck {
            reason_code: ReasonCode::BadUserNameOrPassword,
            ..ConnAck::default()
        };
        both_ways(
            v,
            &[0x20, 0x02, 0x00, 0x04],
            Packet::ConnAck(Box::new(refused)),
        );
    }
    let mut v5 = ConnAck::default();
    v5.properties.receive_maximum = Some(10);
    both_ways(
        ProtocolVersion::V5,
        &[0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x0A],
        Packet::ConnAck(Box::new(v5)),
    );
    // A v5-only reason is mapped to the closest v3 return code.
    let banned = Packet::ConnAck(Box::new(ConnAck {
        reason_code: ReasonCode::Banned,
        ..ConnAck::default()
    }));
    assert_eq!(
        encode_to_vec(&banned, ProtocolVersion::V3_1_1),
        [0x20, 0x02, 0x00, 0x05]
    );
}

#[test]
fn publish_v3_qos0_and_qos1() {
    let qos0 = Publish {
        topic: s("a/b"),
        payload: Bytes::from_static(b"hi"),
        ..Publish::default()
    };
    let bytes = [0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'];
    both_ways(ProtocolVersion::V3_1_1, &bytes, Packet::Publish(qos0));
    let qos1 = Publish {
        dup: true,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: s("a/b"),
        packet_id: Some(10),
        payload: Bytes::from_static(b"hi"),
        properties: PublishProperties::default(),
    };
    let bytes = [
        0x3B, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0A, b'h', b'i',
    ];
    both_ways(ProtocolVersion::V3_1, &bytes, Packet::Publish(qos1));
}

#[test]
fn publish_v5_with_topic_alias_and_empty_topic() {
    let mut p = Publish {
        qos: QoS::AtLeastOnce,
        topic: s("a/b"),
        packet_id: Some(1),
        payload: Bytes::from_static(b"x"),
        ..Publish::default()
    };
    p.properties.topic_alias = Some(5);
    let bytes = [
        0x32, 0x0C, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x01, 0x03, 0x23, 0x00, 0x05, b'x',
    ];
    both_ways(ProtocolVersion::V5, &bytes, Packet::Publish(p.clone()));

    p.qos = QoS::AtMostOnce;
    p.packet_id = None;
    p.topic = ByteStr::new();
    let bytes = [0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x05, b'x'];
    both_ways(ProtocolVersion::V5, &bytes, Packet::Publish(p));
}

#[test]
fn publish_v5_may_carry_several_subscription_identifiers() {
    let bytes = [
        0x30, 0x09, 0x00, 0x01, b't', 0x05, 0x0B, 0x01, 0x0B, 0x80, 0x01,
    ];
    let mut d = Decoder::with_version(ProtocolVersion::V5, MAX);
    match decode_one(&mut d, &bytes) {
        Packet::Publish(p) => assert_eq!(p.properties.subscription_identifiers, [1, 128]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn publish_payload_is_a_slice_of_the_input() {
    let mut buf = BytesMut::from(&[0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'][..]);
    let start = buf.as_ptr() as usize;
    let mut d = Decoder::with_version(ProtocolVersion::V3_1_1, MAX);
    match d.decode(&mut buf) {
        Ok(Some(Packet::Publish(p))) => {
            assert_eq!(p.payload.as_ptr() as usize, start + 7);
            assert_eq!(p.topic.as_bytes().as_ptr() as usize, start + 4);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn publish_acknowledgements() {
    for v in [
        ProtocolVersion::V3_1,
        ProtocolVersion::V3_1_1,
        ProtocolVersion::V5,
    ] {
        both_ways(v, &[0x40, 0x02, 0x00, 0x01], Packet::PubAck(PubAck::new(1)));
        both_ways(v, &[0x50, 0x02, 0x00, 0x02], Packet::PubRec(PubRec::new(2)));
        both_ways(v, &[0x62, 0x02, 0x00, 0x03], Packet::PubRel(PubRel::new(3)));
        both_ways(
            v,
            &[0x70, 0x02, 0x00, 0x04],
            Packet::PubComp(PubComp::new(4)),
        );
    }
    let mut ack = PubAck::new(1);
    ack.reason_code = ReasonCode::NoMatchingSubscribers;
    both_ways(
        ProtocolVersion::V5,
        &[0x40, 0x03, 0x00, 0x01, 0x10],
        Packet::PubAck(ack.clone()),
    );
    // v3 has no reason codes: they are left out.
    assert_eq!(
        encode_to_vec(&Packet::PubAck(ack), ProtocolVersion::V3_1_1),
        [0x40, 0x02, 0x00, 0x01]
    );
    let mut rec = PubRec::new(1);
    rec.reason_code = ReasonCode::UnspecifiedError;
    rec.properties.reason_string = Some(s("e"));
    both_ways(
        ProtocolVersion::V5,
        &[0x50, 0x08, 0x00, 0x01, 0x80, 0x04, 0x1F, 0x00, 0x01, b'e'],
        Packet::PubRec(rec),
    );
    // Reason code without property length (remaining length 3) is allowed.
    let mut d = Decoder::with_version(ProtocolVersion::V5, MAX);
    let mut comp = PubComp::new(7);
    comp.reason_code = ReasonCode::PacketIdentifierNotFound;
    assert_eq!(
        decode_one(&mut d, &[0x70, 0x03, 0x00, 0x07, 0x92]),
        Packet::PubComp(comp)
    );
}

#[test]
fn subscribe_in_each_version() {
    let sub = Subscribe {
        packet_id: 10,
        filters: vec![
            (s("a/b"), SubscriptionOptions::with_qos(QoS::AtLeastOnce)),
            (s("c/#"), SubscriptionOptions::with_qos(QoS::ExactlyOnce)),
        ],
        properties: SubscribeProperties::default(),
    };
    let bytes = [
        0x82, 0x0E, 0x00, 0x0A, 0x00, 0x03, b'a', b'/', b'b', 0x01, 0x00, 0x03, b'c', b'/', b'#',
        0x02,
    ];
    both_ways(ProtocolVersion::V3_1_1, &bytes, Packet::Subscribe(sub));

    let sub = Subscribe {
        packet_id: 10,
        filters: vec![(
            s("a/b"),
            SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend,
            },
        )],
        properties: SubscribeProperties {
            subscription_identifier: Some(5),
            user_properties: Vec::new(),
        },
    };
    let bytes = [
        0x82, 0x0B, 0x00, 0x0A, 0x02, 0x0B, 0x05, 0x00, 0x03, b'a', b'/', b'b', 0x2D,
    ];
    both_ways(ProtocolVersion::V5, &bytes, Packet::Subscribe(sub));
}

#[test]
fn suback_unsubscribe_unsuback() {
    let suback = SubAck {
        packet_id: 10,
        reason_codes: vec![ReasonCode::GrantedQoS1, ReasonCode::UnspecifiedError],
        properties: AckProperties::default(),
    };
    both_ways(
        ProtocolVersion::V3_1_1,
        &[0x90, 0x04, 0x00, 0x0A, 0x01, 0x80],
        Packet::SubAck(suback),
    );
    let suback = SubAck {
        packet_id: 10,
        reason_codes: vec![ReasonCode::Success, ReasonCode::NotAuthorized],
        properties: AckProperties::default(),
    };
    both_ways(
        ProtocolVersion::V5,
        &[0x90, 0x05, 0x00, 0x0A, 0x00, 0x00, 0x87],
        Packet::SubAck(suback.clone()),
    );
    assert_eq!(
        encode_to_vec(&Packet::SubAck(suback), ProtocolVersion::V3_1_1),
        [0x90, 0x04, 0x00, 0x0A, 0x00, 0x80]
    );

    let unsub = Unsubscribe {
        packet_id: 10,
        filters: vec![s("a")],
        properties: UnsubscribeProperties::default(),
    };
    both_ways(
        ProtocolVersion::V3_1_1,
        &[0xA2, 0x05, 0x00, 0x0A, 0x00, 0x01, b'a'],
        Packet::Unsubscribe(unsub.clone()),
    );
    both_ways(
        ProtocolVersion::V5,
        &[0xA2, 0x06, 0x00, 0x0A, 0x00, 0x00, 0x01, b'a'],
        Packet::Unsubscribe(unsub),
    );

    let unsuback = UnsubAck {
        packet_id: 10,
        reason_codes: vec![ReasonCode::NoSubscriptionExisted],
        properties: AckProperties::default(),
    };
    both_ways(
        ProtocolVersion::V5,
        &[0xB0, 0x04, 0x00, 0x0A, 0x00, 0x11],
        Packet::UnsubAck(unsuback.clone()),
    );
    assert_eq!(
        encode_to_vec(&Packet::UnsubAck(unsuback), ProtocolVersion::V3_1_1),
        [0xB0, 0x02, 0x00, 0x0A]
    );
}

#[test]
fn ping_disconnect_auth() {
    for v in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        both_ways(v, &[0xC0, 0x00], Packet::PingReq);
        both_ways(v, &[0xD0, 0x00], Packet::PingResp);
        both_ways(v, &[0xE0, 0x00], Packet::Disconnect(Disconnect::default()));
    }
    let taken_over = Disconnect {
        reason_code: ReasonCode::SessionTakenOver,
        properties: DisconnectProperties::default(),
    };
    both_ways(
        ProtocolVersion::V5,
        &[0xE0, 0x01, 0x8E],
        Packet::Disconnect(taken_over.clone()),
    );
    assert_eq!(
        encode_to_vec(&Packet::Disconnect(taken_over), ProtocolVersion::V3_1_1),
        [0xE0, 0x00]
    );
    let with_will = Disconnect {
        reason_code: ReasonCode::DisconnectWithWillMessage,
        properties: DisconnectProperties {
            session_expiry_interval: Some(0),
            ..DisconnectProperties::default()
        },
    };
    both_ways(
        ProtocolVersion::V5,
        &[0xE0, 0x07, 0x04, 0x05, 0x11, 0x00, 0x00, 0x00, 0x00],
        Packet::Disconnect(with_will),
    );

    both_ways(
        ProtocolVersion::V5,
        &[0xF0, 0x00],
        Packet::Auth(Auth::default()),
    );
    let auth = Auth {
        reason_code: ReasonCode::ContinueAuthentication,
        properties: AuthProperties {
            authentication_method: Some(s("ab")),
            ..AuthProperties::default()
        },
    };
    both_ways(
        ProtocolVersion::V5,
        &[0xF0, 0x07, 0x18, 0x05, 0x15, 0x00, 0x02, b'a', b'b'],
        Packet::Auth(auth.clone()),
    );
    assert_eq!(
        encode(
            &Packet::Auth(auth),
            ProtocolVersion::V3_1_1,
            &mut BytesMut::new()
        ),
        Err(EncodeError::UnsupportedInVersion(PacketType::Auth))
    );
}

#[test]
fn incremental_and_batched_input() {
    let mut d = Decoder::with_version(ProtocolVersion::V3_1_1, MAX);
    let mut buf = BytesMut::new();
    // A PUBLISH split across reads, then two pings in one read.
    buf.extend_from_slice(&[0x30]);
    assert_eq!(d.decode(&mut buf), Ok(None));
    buf.extend_from_slice(&[0x07, 0x00, 0x03, b'a']);
    assert_eq!(d.decode(&mut buf), Ok(None));
    buf.extend_from_slice(&[b'/', b'b', b'h', b'i', 0xC0, 0x00, 0xD0]);
    assert!(matches!(d.decode(&mut buf), Ok(Some(Packet::Publish(_)))));
    assert_eq!(d.decode(&mut buf), Ok(Some(Packet::PingReq)));
    assert_eq!(d.decode(&mut buf), Ok(None));
    buf.extend_from_slice(&[0x00]);
    assert_eq!(d.decode(&mut buf), Ok(Some(Packet::PingResp)));
    assert!(buf.is_empty());
}

#[test]
fn connect_fixes_the_decoder_version() {
    let mut d = Decoder::new(MAX);
    assert_eq!(d.version(), None);
    let bytes = [
        0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x00, 0x00, 0x00,
    ];
    decode_one(&mut d, &bytes);
    assert_eq!(d.version(), Some(ProtocolVersion::V5));
    // Now a v5 PUBACK with a reason code decodes.
    assert!(matches!(
        decode_one(&mut d, &[0x40, 0x03, 0x00, 0x01, 0x10]),
        Packet::PubAck(_)
    ));
}

#[test]
fn encoded_publish_is_shared_and_patched() {
    let mut p = Publish {
        qos: QoS::AtLeastOnce,
        topic: s("a/b"),
        packet_id: Some(1),
        payload: Bytes::from_static(b"hi"),
        ..Publish::default()
    };
    p.properties.message_expiry_interval = Some(9);
    let shared = EncodedPublish::new(&p, ProtocolVersion::V5).expect("encode");
    assert_eq!(shared.qos(), QoS::AtLeastOnce);
    let frame = shared.with_packet_id(0x1234, true).expect("patch");
    let mut d = Decoder::with_version(ProtocolVersion::V5, MAX);
    let expected = Publish {
        dup: true,
        packet_id: Some(0x1234),
        ..p.clone()
    };
    assert_eq!(decode_one(&mut d, &frame), Packet::Publish(expected));
    assert_eq!(
        shared.with_packet_id(0, false),
        Err(EncodeError::InvalidPacketId)
    );

    let qos0 = Publish {
        qos: QoS::AtMostOnce,
        packet_id: None,
        ..p
    };
    let shared = EncodedPublish::new(&qos0, ProtocolVersion::V3_1_1).expect("encode");
    let a = shared.with_packet_id(7, false).expect("qos0");
    assert_eq!(
        a.as_ptr(),
        shared.frame().as_ptr(),
        "QoS 0 frames are shared"
    );
    assert_eq!(
        &a[..],
        &encode_to_vec(&Packet::Publish(qos0), ProtocolVersion::V3_1_1)
    );
}

#[test]
fn debug_hides_secrets_and_payloads() {
    let mut c = connect(ProtocolVersion::V5, "c");
    c.password = Some(Bytes::from_static(b"hunter2"));
    c.properties.authentication_data = Some(Bytes::from_static(b"secretdata"));
    let text = format!("{c:?}");
    assert!(
        !text.contains("hunter2") && !text.contains("secretdata"),
        "{text}"
    );
    assert!(text.contains("<REDACTED>"));
    let p = Publish {
        payload: Bytes::from_static(b"private-payload"),
        ..Publish::default()
    };
    let text = format!("{p:?}");
    assert!(
        !text.contains("private") && text.contains("payload_len: 15"),
        "{text}"
    );
}

#[test]
fn encode_rejects_bad_packet_ids() {
    let mut buf = BytesMut::new();
    let p = Publish {
        qos: QoS::AtLeastOnce,
        topic: s("t"),
        ..Publish::default()
    };
    assert_eq!(
        encode(&Packet::Publish(p), ProtocolVersion::V5, &mut buf),
        Err(EncodeError::InvalidPacketId)
    );
    assert_eq!(
        encode(
            &Packet::PubAck(PubAck::new(0)),
            ProtocolVersion::V5,
            &mut buf
        ),
        Err(EncodeError::InvalidPacketId)
    );
    assert!(buf.is_empty(), "nothing is written on error");
}

#[test]
fn error_replies_follow_the_connection_stage() {
    let unknown_level = [
        0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x06, 0x02, 0x00, 0x3C, 0x00, 0x00,
    ];
    let mut d = Decoder::new(MAX);
    let err = d
        .decode(&mut BytesMut::from(&unknown_level[..]))
        .expect_err("level 6");
    assert_eq!(err, DecodeError::UnsupportedProtocolVersion(6));
    assert_eq!(
        d.error_reply(&err),
        ErrorReply::ConnAck(
            ProtocolVersion::V3_1_1,
            ReasonCode::UnsupportedProtocolVersion
        )
    );

    // A v5 CONNECT with a bad property: CONNACK 0x82 in v5.
    let bad = [
        0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x03, 0x21, 0x00,
        0x00, 0x00, 0x00,
    ];
    let mut d = Decoder::new(MAX);
    let err = d.decode(&mut BytesMut::from(&bad[..])).expect_err("rm 0");
    assert_eq!(err, DecodeError::ReceiveMaximumZero);
    assert_eq!(
        d.error_reply(&err),
        ErrorReply::ConnAck(ProtocolVersion::V5, ReasonCode::ProtocolError)
    );

    let v5 = Decoder::with_version(ProtocolVersion::V5, MAX);
    assert_eq!(
        v5.error_reply(&DecodeError::PacketTooLarge { size: 9, max: 8 }),
        ErrorReply::Disconnect(ReasonCode::PacketTooLarge)
    );
    let v3 = Decoder::with_version(ProtocolVersion::V3_1_1, MAX);
    assert_eq!(v3.error_reply(&DecodeError::InvalidQoS), ErrorReply::Close);
}

#[test]
fn trim_to_size_drops_reason_string_then_user_properties() {
    let mut ack = PubAck::new(1);
    ack.reason_code = ReasonCode::QuotaExceeded;
    ack.properties.reason_string = Some(s("quota exceeded for this client"));
    ack.properties.user_properties = vec![(s("k"), s("v"))];
    let full = Packet::PubAck(ack);
    let v5 = ProtocolVersion::V5;
    let full_len = encoded_len(&full, v5).expect("len");

    let mut p = full.clone();
    assert_eq!(trim_to_size(&mut p, v5, 1024), Ok(full_len));
    assert_eq!(p, full, "untouched when it fits");

    let mut p = full.clone();
    // Header 2 + id 2 + reason 1 + props len 1 + user property 7.
    assert_eq!(trim_to_size(&mut p, v5, 13), Ok(13));
    match &p {
        Packet::PubAck(a) => {
            assert_eq!(a.properties.reason_string, None);
            assert_eq!(a.properties.user_properties.len(), 1);
        }
        other => panic!("{other:?}"),
    }

    // Without properties the property length is left out as well.
    let mut p = full;
    assert_eq!(trim_to_size(&mut p, v5, 6), Ok(5));

    // A PUBLISH is never altered.
    let mut publish = Packet::Publish(Publish {
        topic: s("t"),
        payload: Bytes::from_static(b"0123456789"),
        ..Publish::default()
    });
    let before = publish.clone();
    assert_eq!(trim_to_size(&mut publish, v5, 4), Ok(16));
    assert_eq!(publish, before);
}

#[test]
fn hot_path_types_stay_small() {
    // Messages sit in session queues and inflight windows: keep the
    // property-less PUBLISH compact (topic 32 + payload 32 + properties).
    let publish = std::mem::size_of::<Publish>();
    assert!(publish <= 232, "Publish is {publish} bytes");
    // CONNECT and CONNACK are boxed so that a Packet stays PUBLISH-sized.
    assert!(std::mem::size_of::<Packet>() <= publish + 8);
}
