//! A table of malformed and protocol-violating inputs, each with the exact
//! error the decoder must return.

use bytes::BytesMut;

use super::{DecodeError as E, Decoder, PacketType, ProtocolVersion};

const V3: Option<ProtocolVersion> = Some(ProtocolVersion::V3_1_1);
const V5: Option<ProtocolVersion> = Some(ProtocolVersion::V5);
/// No version yet: the decoder expects CONNECT.
const NEW: Option<ProtocolVersion> = None;

/// A CONNECT with the given protocol name, level, flags and remaining
/// fields (client id and what follows; v5 properties included in `rest`).
fn connect(name: &str, level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(&[level, flags, 0x00, 0x3C]);
    body.extend_from_slice(rest);
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    packet
}

fn decode(version: Option<ProtocolVersion>, max: u32, bytes: &[u8]) -> Result<(), E> {
    let mut decoder = match version {
        Some(v) => Decoder::with_version(v, max),
        None => Decoder::new(max),
    };
    let mut buf = BytesMut::from(bytes);
    match decoder.decode(&mut buf)? {
        Some(packet) => panic!("{bytes:02x?} decoded as {packet:?}"),
        None => panic!("{bytes:02x?} incomplete"),
    }
}

#[test]
#[rustfmt::skip] // one case per line reads as a table
fn malformed_inputs_give_the_exact_error() {
    let client_a: &[u8] = &[0x00, 0x01, b'a'];
    let cases: Vec<(&str, Option<ProtocolVersion>, Vec<u8>, E)> = vec![
        ("remaining length of 5 bytes", V5, vec![0xC0, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], E::MalformedRemainingLength),
        ("non-minimal remaining length", V5, vec![0xC0, 0x80, 0x00], E::MalformedRemainingLength),
        ("packet type 0", V5, vec![0x00, 0x00], E::InvalidPacketType(0)),
        ("AUTH in v3", V3, vec![0xF0, 0x00], E::InvalidPacketType(15)),
        ("PUBREL flags 0", V3, vec![0x60, 0x02, 0x00, 0x01], E::InvalidFixedHeaderFlags { packet: PacketType::PubRel, flags: 0 }),
        ("SUBSCRIBE flags 0", V5, vec![0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00], E::InvalidFixedHeaderFlags { packet: PacketType::Subscribe, flags: 0 }),
        ("UNSUBSCRIBE flags 3", V3, vec![0xA3, 0x05, 0x00, 0x01, 0x00, 0x01, b'a'], E::InvalidFixedHeaderFlags { packet: PacketType::Unsubscribe, flags: 3 }),
        ("PINGREQ flags 1", V3, vec![0xC1, 0x00], E::InvalidFixedHeaderFlags { packet: PacketType::PingReq, flags: 1 }),
        ("first packet not CONNECT", NEW, vec![0xC0, 0x00], E::FirstPacketNotConnect),
        ("second CONNECT", V3, connect("MQTT", 4, 0x02, client_a), E::DuplicateConnect),
        ("unknown protocol name", NEW, connect("MQTX", 4, 0x02, client_a), E::InvalidProtocolName),
        ("unknown protocol level", NEW, connect("MQTT", 6, 0x02, client_a), E::UnsupportedProtocolVersion(6)),
        ("MQIsdp with level 4", NEW, connect("MQIsdp", 4, 0x02, client_a), E::UnsupportedProtocolVersion(4)),
        ("reserved CONNECT flag", NEW, connect("MQTT", 4, 0x03, client_a), E::ConnectReservedFlag),
        ("will QoS without will flag", NEW, connect("MQTT", 4, 0x0A, client_a), E::WillFlagsInconsistent),
        ("will retain without will flag", NEW, connect("MQTT", 4, 0x22, client_a), E::WillFlagsInconsistent),
        ("will QoS 3", NEW, connect("MQTT", 4, 0x1E, client_a), E::InvalidWillQoS),
        ("v3.1.1 password without user name", NEW, connect("MQTT", 4, 0x42, client_a), E::PasswordWithoutUsername),
        ("v3.1.1 empty client id, persistent session", NEW, connect("MQTT", 4, 0x00, &[0x00, 0x00]), E::ClientIdentifierNotValid),
        ("v3.1 empty client id", NEW, connect("MQIsdp", 3, 0x02, &[0x00, 0x00]), E::ClientIdentifierNotValid),
        ("will topic with wildcard", NEW, connect("MQTT", 4, 0x06, &[0x00, 0x01, b'a', 0x00, 0x01, b'#', 0x00, 0x00]), E::WildcardInTopicName),
        ("CONNECT truncated", NEW, vec![0x10, 0x03, 0x00, 0x04, b'M'], E::UnexpectedEof),
        ("CONNECT trailing byte", NEW, connect("MQTT", 4, 0x02, &[0x00, 0x01, b'a', 0xFF]), E::TrailingBytes),
        ("v5 receive maximum 0", NEW, connect("MQTT", 5, 0x02, &[0x03, 0x21, 0x00, 0x00, 0x00, 0x00]), E::ReceiveMaximumZero),
        ("v5 maximum packet size 0", NEW, connect("MQTT", 5, 0x02, &[0x05, 0x27, 0, 0, 0, 0, 0x00, 0x00]), E::MaximumPacketSizeZero),
        ("v5 request problem information 2", NEW, connect("MQTT", 5, 0x02, &[0x02, 0x17, 0x02, 0x00, 0x00]), E::InvalidPropertyValue(0x17)),
        ("v5 authentication data without method", NEW, connect("MQTT", 5, 0x02, &[0x03, 0x16, 0x00, 0x00, 0x00, 0x00]), E::AuthDataWithoutMethod),
        ("v5 session expiry twice", NEW, connect("MQTT", 5, 0x02, &[0x0A, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2, 0x00, 0x00]), E::DuplicateProperty(0x11)),
        ("v5 topic alias in CONNECT", NEW, connect("MQTT", 5, 0x02, &[0x03, 0x23, 0x00, 0x01, 0x00, 0x00]), E::PropertyNotAllowed(0x23)),
        ("invalid UTF-8 in topic", V3, vec![0x30, 0x04, 0x00, 0x02, 0xC3, 0x28], E::InvalidUtf8),
        ("UTF-16 surrogate in topic", V3, vec![0x30, 0x05, 0x00, 0x03, 0xED, 0xA0, 0x80], E::InvalidUtf8),
        ("U+0000 in topic", V3, vec![0x30, 0x04, 0x00, 0x02, b'a', 0x00], E::NullCharacter),
        ("PUBLISH QoS 3", V3, vec![0x36, 0x05, 0x00, 0x01, b'a', 0x00, 0x01], E::InvalidQoS),
        ("DUP on QoS 0", V3, vec![0x38, 0x03, 0x00, 0x01, b'a'], E::DupWithQoS0),
        ("+ in topic name", V3, vec![0x30, 0x05, 0x00, 0x03, b'a', b'/', b'+'], E::WildcardInTopicName),
        ("# in topic name", V5, vec![0x30, 0x04, 0x00, 0x01, b'#', 0x00], E::WildcardInTopicName),
        ("empty topic in v3", V3, vec![0x30, 0x02, 0x00, 0x00], E::EmptyTopicName),
        ("empty topic without alias in v5", V5, vec![0x30, 0x03, 0x00, 0x00, 0x00], E::EmptyTopicName),
        ("QoS 1 PUBLISH with packet id 0", V3, vec![0x32, 0x05, 0x00, 0x01, b'a', 0x00, 0x00], E::PacketIdZero),
        ("topic alias 0", V5, vec![0x30, 0x07, 0x00, 0x01, b'a', 0x03, 0x23, 0x00, 0x00], E::TopicAliasZero),
        ("topic alias twice", V5, vec![0x30, 0x0A, 0x00, 0x01, b'a', 0x06, 0x23, 0x00, 0x01, 0x23, 0x00, 0x02], E::DuplicateProperty(0x23)),
        ("session expiry in PUBLISH", V5, vec![0x30, 0x09, 0x00, 0x01, b'a', 0x05, 0x11, 0, 0, 0, 1], E::PropertyNotAllowed(0x11)),
        ("unknown property 0x05", V5, vec![0x30, 0x06, 0x00, 0x01, b'a', 0x02, 0x05, 0x00], E::UnknownProperty(0x05)),
        ("payload format 2", V5, vec![0x30, 0x06, 0x00, 0x01, b'a', 0x02, 0x01, 0x02], E::InvalidPropertyValue(0x01)),
        ("property length past the end", V5, vec![0x30, 0x05, 0x00, 0x01, b'a', 0x09, 0x01], E::UnexpectedEof),
        ("wildcard in response topic", V5, vec![0x30, 0x08, 0x00, 0x01, b'a', 0x04, 0x08, 0x00, 0x01, b'+'], E::WildcardInTopicName),
        ("empty SUBSCRIBE v3", V3, vec![0x82, 0x02, 0x00, 0x01], E::EmptySubscribe),
        ("empty SUBSCRIBE v5", V5, vec![0x82, 0x03, 0x00, 0x01, 0x00], E::EmptySubscribe),
        ("SUBSCRIBE packet id 0", V3, vec![0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'a', 0x00], E::PacketIdZero),
        ("v3 subscription option bits", V3, vec![0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x04], E::SubscriptionOptionsReserved),
        ("v5 reserved subscription option bits", V5, vec![0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0xC0], E::SubscriptionOptionsReserved),
        ("retain handling 3", V5, vec![0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0x30], E::InvalidRetainHandling),
        ("subscription QoS 3", V3, vec![0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x03], E::InvalidQoS),
        ("no local on a shared subscription", V5, vec![0x82, 0x10, 0x00, 0x01, 0x00, 0x00, 0x0A, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'a', 0x04], E::NoLocalOnSharedSubscription),
        ("# not last in filter", V3, vec![0x82, 0x0A, 0x00, 0x01, 0x00, 0x05, b'a', b'/', b'#', b'/', b'b', 0x00], E::InvalidTopicFilter),
        ("+ inside a level", V3, vec![0x82, 0x07, 0x00, 0x01, 0x00, 0x02, b'a', b'+', 0x00], E::InvalidTopicFilter),
        ("empty filter", V3, vec![0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00], E::EmptyTopicFilter),
        ("subscription identifier 0", V5, vec![0x82, 0x09, 0x00, 0x01, 0x02, 0x0B, 0x00, 0x00, 0x01, b'a', 0x00], E::SubscriptionIdentifierZero),
        ("subscription identifier twice in SUBSCRIBE", V5, vec![0x82, 0x0B, 0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, b'a', 0x00], E::DuplicateProperty(0x0B)),
        ("5-byte subscription identifier", V5, vec![0x82, 0x0C, 0x00, 0x01, 0x05, 0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x01, b'a', 0x00], E::MalformedVariableInteger),
        ("empty UNSUBSCRIBE", V3, vec![0xA2, 0x02, 0x00, 0x01], E::EmptyUnsubscribe),
        ("PUBACK trailing byte in v3", V3, vec![0x40, 0x03, 0x00, 0x01, 0x00], E::TrailingBytes),
        ("PUBACK packet id 0", V3, vec![0x40, 0x02, 0x00, 0x00], E::PacketIdZero),
        ("PUBACK reason 0x05", V5, vec![0x40, 0x03, 0x00, 0x01, 0x05], E::InvalidReasonCode { packet: PacketType::PubAck, code: 0x05 }),
        ("PUBREL reason 0x10", V5, vec![0x62, 0x03, 0x00, 0x01, 0x10], E::InvalidReasonCode { packet: PacketType::PubRel, code: 0x10 }),
        ("PINGREQ with a body", V3, vec![0xC0, 0x01, 0x00], E::TrailingBytes),
        ("v3 DISCONNECT with a body", V3, vec![0xE0, 0x01, 0x00], E::TrailingBytes),
        ("DISCONNECT reason 0x84", V5, vec![0xE0, 0x01, 0x84], E::InvalidReasonCode { packet: PacketType::Disconnect, code: 0x84 }),
        ("AUTH reason 0x80", V5, vec![0xF0, 0x01, 0x80], E::InvalidReasonCode { packet: PacketType::Auth, code: 0x80 }),
        ("CONNACK reserved flags", V3, vec![0x20, 0x02, 0x02, 0x00], E::ConnAckReservedFlags),
        ("CONNACK refusal with session present", V5, vec![0x20, 0x03, 0x01, 0x87, 0x00], E::SessionPresentOnRefusal),
        ("CONNACK return code 6", V3, vec![0x20, 0x02, 0x00, 0x06], E::InvalidReasonCode { packet: PacketType::ConnAck, code: 6 }),
        ("CONNACK maximum QoS 2", V5, vec![0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02], E::InvalidPropertyValue(0x24)),
        ("SUBACK v3 code 0x87", V3, vec![0x90, 0x03, 0x00, 0x01, 0x87], E::InvalidReasonCode { packet: PacketType::SubAck, code: 0x87 }),
    ];
    for (name, version, bytes, expected) in cases {
        assert_eq!(decode(version, 1024, &bytes), Err(expected), "{name}");
    }
}

#[test]
fn packet_too_large_is_refused_from_the_fixed_header() {
    // Only the fixed header has arrived: a 13-byte packet against a limit of 10.
    assert_eq!(
        decode(V3, 10, &[0x30, 0x0B]),
        Err(E::PacketTooLarge { size: 13, max: 10 })
    );
    // A 200 MB announcement is refused without buffering anything.
    assert_eq!(
        decode(V5, 1 << 20, &[0x30, 0x80, 0x80, 0x80, 0x64]),
        Err(E::PacketTooLarge {
            size: 209_715_205,
            max: 1 << 20
        })
    );
    // Exactly at the limit is fine.
    let mut d = Decoder::with_version(ProtocolVersion::V3_1_1, 4);
    let mut buf = BytesMut::from(&[0x40, 0x02, 0x00, 0x01][..]);
    assert!(matches!(d.decode(&mut buf), Ok(Some(_))));
}

#[test]
fn every_error_maps_to_an_error_reason_code() {
    use super::ReasonCode as R;
    assert_eq!(E::InvalidQoS.reason_code(), R::MalformedPacket);
    assert_eq!(E::DuplicateProperty(1).reason_code(), R::ProtocolError);
    assert_eq!(
        E::UnsupportedProtocolVersion(9).reason_code(),
        R::UnsupportedProtocolVersion
    );
    assert_eq!(
        E::PacketTooLarge { size: 2, max: 1 }.reason_code(),
        R::PacketTooLarge
    );
    assert_eq!(E::TopicAliasZero.reason_code(), R::TopicAliasInvalid);
    assert_eq!(E::WildcardInTopicName.reason_code(), R::TopicNameInvalid);
}
