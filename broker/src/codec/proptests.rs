//! Property tests: encode→decode round trips for arbitrary valid packets in
//! every version, streams split at every position, and arbitrary bytes.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use super::*;

const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

fn text() -> impl Strategy<Value = ByteStr> {
    "[a-zA-Z0-9 _é€-]{0,12}".prop_map(ByteStr::from)
}

fn topic() -> impl Strategy<Value = ByteStr> {
    "[a-z0-9]{1,6}(/[a-z0-9é]{0,6}){0,3}".prop_map(ByteStr::from)
}

fn filter() -> impl Strategy<Value = ByteStr> {
    (
        vec(prop_oneof!["[a-z]{1,4}", Just("+".to_string())], 1..4),
        any::<bool>(),
    )
        .prop_map(|(levels, hash)| {
            let mut f = levels.join("/");
            if hash {
                f.push_str("/#");
            }
            ByteStr::from(f)
        })
}

fn binary() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn qos() -> impl Strategy<Value = QoS> {
    select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
}

fn packet_id() -> impl Strategy<Value = u16> {
    1..=u16::MAX
}

fn sub_id() -> impl Strategy<Value = u32> {
    1..=268_435_455u32
}

fn users() -> impl Strategy<Value = Vec<UserProperty>> {
    vec((text(), text()), 0..3)
}

fn reason(packet: PacketType) -> impl Strategy<Value = ReasonCode> {
    let codes: Vec<ReasonCode> = (0..=u8::MAX)
        .filter_map(ReasonCode::from_u8)
        .filter(|c| c.is_valid_for(packet))
        .collect();
    select(codes)
}

fn ack_props(v5: bool) -> BoxedStrategy<AckProperties> {
    if !v5 {
        return Just(AckProperties::default()).boxed();
    }
    (option::of(text()), users())
        .prop_map(|(reason_string, user_properties)| AckProperties {
            reason_string,
            user_properties,
        })
        .boxed()
}

fn payload_format() -> impl Strategy<Value = Option<PayloadFormat>> {
    option::of(select(vec![
        PayloadFormat::Unspecified,
        PayloadFormat::Utf8,
    ]))
}

fn publish_props() -> impl Strategy<Value = PublishProperties> {
    (
        payload_format(),
        option::of(any::<u32>()),
        option::of(1..=u16::MAX),
        option::of(topic()),
        option::of(binary()),
        users(),
        vec(sub_id(), 0..3),
        option::of(text()),
    )
        .prop_map(|(pf, mei, ta, rt, cd, up, si, ct)| PublishProperties {
            payload_format_indicator: pf,
            message_expiry_interval: mei,
            topic_alias: ta,
            response_topic: rt,
            correlation_data: cd,
            user_properties: up,
            subscription_identifiers: si,
            content_type: ct,
        })
}

fn publish(v5: bool) -> impl Strategy<Value = Publish> {
    let props = if v5 {
        publish_props().boxed()
    } else {
        Just(PublishProperties::default()).boxed()
    };
    (
        qos(),
        any::<(bool, bool)>(),
        topic(),
        packet_id(),
        binary(),
        props,
    )
        .prop_map(
            |(qos, (dup, retain), topic, id, payload, properties)| Publish {
                dup: dup && qos != QoS::AtMostOnce,
                qos,
                retain,
                topic,
                packet_id: (qos != QoS::AtMostOnce).then_some(id),
                payload,
                properties,
            },
        )
}

fn will(v5: bool) -> impl Strategy<Value = LastWill> {
    let props = if v5 {
        (
            option::of(any::<u32>()),
            payload_format(),
            option::of(any::<u32>()),
            option::of(text()),
            option::of(topic()),
            option::of(binary()),
            users(),
        )
            .prop_map(|(wd, pf, mei, ct, rt, cd, up)| WillProperties {
                will_delay_interval: wd,
                payload_format_indicator: pf,
                message_expiry_interval: mei,
                content_type: ct,
                response_topic: rt,
                correlation_data: cd,
                user_properties: up,
            })
            .boxed()
    } else {
        Just(WillProperties::default()).boxed()
    };
    (topic(), binary(), qos(), any::<bool>(), props).prop_map(
        |(topic, payload, qos, retain, properties)| LastWill {
            topic,
            payload,
            qos,
            retain,
            properties,
        },
    )
}

fn connect(version: ProtocolVersion) -> impl Strategy<Value = Connect> {
    let v5 = version.is_v5();
    let props = if v5 {
        (
            option::of(any::<u32>()),
            option::of(1..=u16::MAX),
            option::of(1..=u32::MAX),
            option::of(any::<u16>()),
            option::of(any::<bool>()),
            option::of(any::<bool>()),
            users(),
            option::of((text(), option::of(binary()))),
        )
            .prop_map(|(se, rm, mps, tam, rri, rpi, up, auth)| ConnectProperties {
                session_expiry_interval: se,
                receive_maximum: rm,
                maximum_packet_size: mps,
                topic_alias_maximum: tam,
                request_response_information: rri,
                request_problem_information: rpi,
                user_properties: up,
                authentication_method: auth.as_ref().map(|(m, _)| m.clone()),
                authentication_data: auth.and_then(|(_, d)| d),
            })
            .boxed()
    } else {
        Just(ConnectProperties::default()).boxed()
    };
    (
        any::<(bool, u16)>(),
        "[a-zA-Z0-9]{1,23}",
        option::of(will(v5)),
        option::of((text(), option::of(binary()))),
        option::of(binary()),
        props,
    )
        .prop_map(
            move |(
                (clean_start, keep_alive),
                client_id,
                will,
                credentials,
                v5_password,
                properties,
            )| {
                let (username, password) = match credentials {
                    Some((user, password)) => (Some(user), password),
                    // Only v5 allows a password without a user name.
                    None => (None, if v5 { v5_password } else { None }),
                };
                Connect {
                    protocol: version,
                    clean_start,
                    keep_alive,
                    client_id: ByteStr::from(client_id),
                    will,
                    username,
                    password,
                    properties,
                }
            },
        )
}

fn connack(version: ProtocolVersion) -> BoxedStrategy<ConnAck> {
    if !version.is_v5() {
        let codes: Vec<ReasonCode> = (0..=5).filter_map(ReasonCode::from_v3_connack).collect();
        return (any::<bool>(), select(codes))
            .prop_map(|(session_present, reason_code)| ConnAck {
                session_present: session_present && reason_code == ReasonCode::Success,
                reason_code,
                properties: ConnAckProperties::default(),
            })
            .boxed();
    }
    let props = (
        (
            option::of(any::<u32>()),
            option::of(1..=u16::MAX),
            option::of(select(vec![QoS::AtMostOnce, QoS::AtLeastOnce])),
            option::of(any::<bool>()),
            option::of(1..=u32::MAX),
            option::of(text()),
            option::of(any::<u16>()),
            option::of(text()),
        ),
        (
            users(),
            option::of(any::<bool>()),
            option::of(any::<bool>()),
            option::of(any::<bool>()),
            option::of(any::<u16>()),
            option::of(text()),
            option::of(text()),
            option::of((text(), option::of(binary()))),
        ),
    )
        .prop_map(
            |((se, rm, mq, ra, mps, aci, tam, rs), (up, wsa, sia, ssa, ska, ri, sr, auth))| {
                ConnAckProperties {
                    session_expiry_interval: se,
                    receive_maximum: rm,
                    maximum_qos: mq,
                    retain_available: ra,
                    maximum_packet_size: mps,
                    assigned_client_identifier: aci,
                    topic_alias_maximum: tam,
                    reason_string: rs,
                    user_properties: up,
                    wildcard_subscription_available: wsa,
                    subscription_identifiers_available: sia,
                    shared_subscription_available: ssa,
                    server_keep_alive: ska,
                    response_information: ri,
                    server_reference: sr,
                    authentication_method: auth.as_ref().map(|(m, _)| m.clone()),
                    authentication_data: auth.and_then(|(_, d)| d),
                }
            },
        );
    (any::<bool>(), reason(PacketType::ConnAck), props)
        .prop_map(|(session_present, reason_code, properties)| ConnAck {
            session_present: session_present && !reason_code.is_error(),
            reason_code,
            properties,
        })
        .boxed()
}

fn ack_reason(version: ProtocolVersion, packet: PacketType) -> BoxedStrategy<ReasonCode> {
    if version.is_v5() {
        reason(packet).boxed()
    } else {
        Just(ReasonCode::Success).boxed()
    }
}

fn options(v5: bool) -> impl Strategy<Value = SubscriptionOptions> {
    (
        qos(),
        any::<(bool, bool)>(),
        select(vec![
            RetainHandling::SendAtSubscribe,
            RetainHandling::SendIfNewSubscription,
            RetainHandling::DoNotSend,
        ]),
    )
        .prop_map(move |(qos, (nl, rap), rh)| {
            if v5 {
                SubscriptionOptions {
                    qos,
                    no_local: nl,
                    retain_as_published: rap,
                    retain_handling: rh,
                }
            } else {
                SubscriptionOptions::with_qos(qos)
            }
        })
}

/// Any packet valid in `version`, as a peer of either side may send it
/// (CONNECT excluded: it is only valid as the first packet).
fn packet(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let v5 = version.is_v5();
    let suback_codes = if v5 {
        vec(reason(PacketType::SubAck), 1..4).boxed()
    } else {
        let codes = vec![
            ReasonCode::Success,
            ReasonCode::GrantedQoS1,
            ReasonCode::GrantedQoS2,
            ReasonCode::UnspecifiedError,
        ];
        vec(select(codes), 1..4).boxed()
    };
    let unsuback_codes = if v5 {
        vec(reason(PacketType::UnsubAck), 1..4).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    let sub_props = if v5 {
        (option::of(sub_id()), users())
            .prop_map(
                |(subscription_identifier, user_properties)| SubscribeProperties {
                    subscription_identifier,
                    user_properties,
                },
            )
            .boxed()
    } else {
        Just(SubscribeProperties::default()).boxed()
    };
    let unsub_props = if v5 {
        users()
            .prop_map(|user_properties| UnsubscribeProperties { user_properties })
            .boxed()
    } else {
        Just(UnsubscribeProperties::default()).boxed()
    };
    macro_rules! ack {
        ($t:ident) => {
            (
                packet_id(),
                ack_reason(version, PacketType::$t),
                ack_props(v5),
            )
                .prop_map(|(packet_id, reason_code, properties)| {
                    Packet::$t($t {
                        packet_id,
                        reason_code,
                        properties,
                    })
                })
        };
    }
    let mut choices = vec![
        connack(version)
            .prop_map(|c| Packet::ConnAck(Box::new(c)))
            .boxed(),
        publish(v5).prop_map(Packet::Publish).boxed(),
        ack!(PubAck).boxed(),
        ack!(PubRec).boxed(),
        ack!(PubRel).boxed(),
        ack!(PubComp).boxed(),
        (packet_id(), vec((filter(), options(v5)), 1..4), sub_props)
            .prop_map(|(packet_id, filters, properties)| {
                Packet::Subscribe(Subscribe {
                    packet_id,
                    filters,
                    properties,
                })
            })
            .boxed(),
        (packet_id(), suback_codes, ack_props(v5))
            .prop_map(|(packet_id, reason_codes, properties)| {
                Packet::SubAck(SubAck {
                    packet_id,
                    reason_codes,
                    properties,
                })
            })
            .boxed(),
        (packet_id(), vec(filter(), 1..4), unsub_props)
            .prop_map(|(packet_id, filters, properties)| {
                Packet::Unsubscribe(Unsubscribe {
                    packet_id,
                    filters,
                    properties,
                })
            })
            .boxed(),
        (packet_id(), unsuback_codes, ack_props(v5))
            .prop_map(|(packet_id, reason_codes, properties)| {
                Packet::UnsubAck(UnsubAck {
                    packet_id,
                    reason_codes,
                    properties,
                })
            })
            .boxed(),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
    ];
    if v5 {
        choices.push(
            (
                reason(PacketType::Disconnect),
                option::of(any::<u32>()),
                option::of(text()),
                users(),
                option::of(text()),
            )
                .prop_map(|(reason_code, se, rs, up, sr)| {
                    Packet::Disconnect(Disconnect {
                        reason_code,
                        properties: DisconnectProperties {
                            session_expiry_interval: se,
                            reason_string: rs,
                            user_properties: up,
                            server_reference: sr,
                        },
                    })
                })
                .boxed(),
        );
        choices.push(
            (
                reason(PacketType::Auth),
                option::of((text(), option::of(binary()))),
                option::of(text()),
                users(),
            )
                .prop_map(|(reason_code, auth, rs, up)| {
                    Packet::Auth(Auth {
                        reason_code,
                        properties: AuthProperties {
                            authentication_method: auth.as_ref().map(|(m, _)| m.clone()),
                            authentication_data: auth.and_then(|(_, d)| d),
                            reason_string: rs,
                            user_properties: up,
                        },
                    })
                })
                .boxed(),
        );
    } else {
        choices.push(Just(Packet::Disconnect(Disconnect::default())).boxed());
    }
    proptest::strategy::Union::new(choices).boxed()
}

fn version() -> impl Strategy<Value = ProtocolVersion> {
    select(VERSIONS.to_vec())
}

fn version_and_packet() -> impl Strategy<Value = (ProtocolVersion, Packet)> {
    version().prop_flat_map(|v| (Just(v), packet(v)))
}

/// A CONNECT followed by packets of its version.
fn session() -> impl Strategy<Value = (ProtocolVersion, Vec<Packet>)> {
    version().prop_flat_map(|v| {
        (connect(v), vec(packet(v), 0..6)).prop_map(move |(c, mut rest)| {
            rest.insert(0, Packet::Connect(Box::new(c)));
            (v, rest)
        })
    })
}

fn encode_all(version: ProtocolVersion, packets: &[Packet]) -> BytesMut {
    let mut buf = BytesMut::new();
    for p in packets {
        encode(p, version, &mut buf).expect("valid packet encodes");
    }
    buf
}

/// Drains every complete packet from `buf`.
fn drain(decoder: &mut Decoder, buf: &mut BytesMut, out: &mut Vec<Packet>) {
    while let Some(p) = decoder.decode(buf).expect("valid stream decodes") {
        out.push(p);
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn packets_round_trip((version, packet) in version_and_packet()) {
        let mut buf = BytesMut::new();
        encode(&packet, version, &mut buf).expect("encode");
        prop_assert_eq!(encoded_len(&packet, version), Ok(buf.len()));
        let mut decoder = Decoder::with_version(version, PROTOCOL_MAX_PACKET_SIZE);
        let decoded = decoder.decode(&mut buf).expect("decode");
        prop_assert_eq!(decoded, Some(packet));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn connect_round_trips_and_fixes_the_version(
        (version, c) in version().prop_flat_map(|v| (Just(v), connect(v)))
    ) {
        let packet = Packet::Connect(Box::new(c));
        let mut buf = encode_all(version, std::slice::from_ref(&packet));
        let mut decoder = Decoder::new(PROTOCOL_MAX_PACKET_SIZE);
        prop_assert_eq!(decoder.decode(&mut buf).expect("decode"), Some(packet));
        prop_assert_eq!(decoder.version(), Some(version));
    }

    #[test]
    fn a_stream_split_anywhere_yields_the_same_packets((version, packets) in session()) {
        let bytes = encode_all(version, &packets).freeze();
        for split in 0..=bytes.len() {
            let mut decoder = Decoder::new(PROTOCOL_MAX_PACKET_SIZE);
            let mut buf = BytesMut::from(&bytes[..split]);
            let mut out = Vec::new();
            drain(&mut decoder, &mut buf, &mut out);
            buf.extend_from_slice(&bytes[split..]);
            drain(&mut decoder, &mut buf, &mut out);
            prop_assert_eq!(&out, &packets);
            prop_assert!(buf.is_empty());
        }
    }

    #[test]
    fn a_stream_fed_byte_by_byte_yields_the_same_packets((version, packets) in session()) {
        let bytes = encode_all(version, &packets);
        let mut decoder = Decoder::new(PROTOCOL_MAX_PACKET_SIZE);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &byte in bytes.iter() {
            buf.extend_from_slice(&[byte]);
            drain(&mut decoder, &mut buf, &mut out);
        }
        prop_assert_eq!(out, packets);
    }

    #[test]
    fn shared_publish_frames_match_encode(
        p in publish(true),
        id in packet_id(),
        dup in any::<bool>(),
        version in version(),
    ) {
        let mut p = p;
        if !version.is_v5() {
            p.properties = PublishProperties::default();
        }
        let shared = EncodedPublish::new(&p, version).expect("encode");
        let frame = shared.with_packet_id(id, dup).expect("patch");
        let expected = match p.qos {
            QoS::AtMostOnce => p,
            _ => Publish { packet_id: Some(id), dup, ..p },
        };
        let encoded = encode_all(version, &[Packet::Publish(expected)]);
        prop_assert_eq!(&frame[..], &encoded[..]);
        let [head, rest] = shared.parts_with_packet_id(id, dup).expect("parts");
        prop_assert_eq!([&head[..], &rest[..]].concat(), encoded.to_vec());
        if !rest.is_empty() {
            // The tail is shared with the frame, not copied.
            prop_assert_eq!(rest.as_ptr(), shared.frame()[head.len()..].as_ptr());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_nor_allocate(
        bytes in vec(any::<u8>(), 0..512),
        version in option::of(version()),
    ) {
        let max = 256;
        let mut decoder = match version {
            Some(v) => Decoder::with_version(v, max),
            None => Decoder::new(max),
        };
        let mut buf = BytesMut::from(&bytes[..]);
        let capacity = buf.capacity();
        let mut consumed = 0;
        while let Ok(Some(_)) = decoder.decode(&mut buf) {
            prop_assert!(bytes.len() - buf.len() - consumed <= max as usize);
            consumed = bytes.len() - buf.len();
        }
        prop_assert!(buf.capacity() <= capacity);
    }

    #[test]
    fn corrupted_valid_streams_never_panic(
        (version, packets) in session(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = encode_all(version, &packets);
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let mut decoder = Decoder::new(PROTOCOL_MAX_PACKET_SIZE);
        while let Ok(Some(_)) = decoder.decode(&mut bytes) {}
    }
}
