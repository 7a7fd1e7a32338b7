//! Codec errors: [`DecodeError`] for what a peer sent, [`EncodeError`] for
//! what the caller asked to send.
//!
//! Decode errors are named after the conformance statement of the MQTT 5.0
//! specification they enforce (`MQTT-x.y.z-n`) where one exists; otherwise
//! the section is cited. Each maps to its v5 reason code with
//! [`DecodeError::reason_code`].

use super::{PacketType, ReasonCode};

/// A packet that breaks the MQTT rules: the connection must be closed,
/// after a CONNACK or DISCONNECT where the version allows one (see
/// [`Decoder::error_reply`](super::Decoder::error_reply)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The remaining length runs past four bytes, or is not in its shortest
    /// form (MQTT-1.5.5-1, section 2.1.4).
    #[error("malformed remaining length")]
    MalformedRemainingLength,
    /// A variable byte integer runs past four bytes or is not minimal
    /// (MQTT-1.5.5-1).
    #[error("malformed variable byte integer")]
    MalformedVariableInteger,
    /// The packet is larger than the maximum packet size (section 3.1.2.11.4,
    /// MQTT-3.2.2-15); `size` is the whole packet, fixed header included.
    #[error("packet of {size} bytes exceeds the maximum packet size {max}")]
    PacketTooLarge {
        /// Size of the whole packet.
        size: usize,
        /// The enforced maximum.
        max: u32,
    },
    /// Packet type 0 is reserved; AUTH (15) does not exist before v5.
    #[error("invalid packet type {0}")]
    InvalidPacketType(u8),
    /// The reserved flags of the fixed header are wrong (MQTT-2.1.3-1).
    #[error("invalid fixed header flags {flags:#06b} for {packet:?}")]
    InvalidFixedHeaderFlags {
        /// The packet type.
        packet: PacketType,
        /// The low nibble received.
        flags: u8,
    },
    /// The first packet of a connection is not a CONNECT (MQTT-3.1.0-1).
    #[error("the first packet must be CONNECT")]
    FirstPacketNotConnect,
    /// A second CONNECT on a connection (MQTT-3.1.0-2).
    #[error("a second CONNECT is a protocol error")]
    DuplicateConnect,
    /// A field runs past the end of the packet (section 1.5 data types).
    #[error("packet ends before its fields do")]
    UnexpectedEof,
    /// Bytes remain after the last field of the packet.
    #[error("unexpected bytes after the end of the packet")]
    TrailingBytes,
    /// A string is not well-formed UTF-8 (MQTT-1.5.4-1).
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A string contains U+0000 (MQTT-1.5.4-2).
    #[error("string contains U+0000")]
    NullCharacter,
    /// The protocol name is neither `MQTT` nor `MQIsdp` (MQTT-3.1.2-1).
    #[error("unknown protocol name")]
    InvalidProtocolName,
    /// The protocol level is not supported (MQTT-3.1.2-2).
    #[error("unsupported protocol level {0}")]
    UnsupportedProtocolVersion(u8),
    /// The reserved CONNECT flag is set (MQTT-3.1.2-3).
    #[error("reserved CONNECT flag is set")]
    ConnectReservedFlag,
    /// Will QoS or Will Retain set without the Will Flag (MQTT-3.1.2-11,
    /// MQTT-3.1.2-13).
    #[error("will QoS or retain set without the will flag")]
    WillFlagsInconsistent,
    /// Will QoS is 3 (MQTT-3.1.2-12).
    #[error("will QoS 3")]
    InvalidWillQoS,
    /// v3.1.1: a password without a user name (v3.1.1 MQTT-3.1.2-22).
    #[error("password flag set without user name flag")]
    PasswordWithoutUsername,
    /// v3: an empty client identifier with a persistent session (v3.1.1
    /// MQTT-3.1.3-8), or any empty client identifier in v3.1.
    #[error("client identifier not valid")]
    ClientIdentifierNotValid,
    /// PUBLISH QoS bits both set (MQTT-3.3.1-4).
    #[error("QoS 3 in PUBLISH")]
    InvalidQoS,
    /// DUP set on a QoS 0 PUBLISH (MQTT-3.3.1-2).
    #[error("DUP set on a QoS 0 PUBLISH")]
    DupWithQoS0,
    /// A wildcard in a PUBLISH topic name (MQTT-3.3.2-2).
    #[error("wildcard in topic name")]
    WildcardInTopicName,
    /// An empty topic name: in v3 always (MQTT-4.7.3-1); in v5 without a
    /// Topic Alias (section 3.3.4).
    #[error("empty topic name")]
    EmptyTopicName,
    /// An empty topic filter (MQTT-4.7.3-1).
    #[error("empty topic filter")]
    EmptyTopicFilter,
    /// A topic filter with a misplaced `#` or `+` (MQTT-4.7.1-1,
    /// MQTT-4.7.1-2).
    #[error("invalid wildcard in topic filter")]
    InvalidTopicFilter,
    /// Packet identifier 0 where a non-zero one is required (MQTT-2.2.1-3).
    #[error("packet identifier 0")]
    PacketIdZero,
    /// SUBSCRIBE with no topic filter (MQTT-3.8.3-2).
    #[error("SUBSCRIBE without topic filters")]
    EmptySubscribe,
    /// UNSUBSCRIBE with no topic filter (MQTT-3.10.3-2).
    #[error("UNSUBSCRIBE without topic filters")]
    EmptyUnsubscribe,
    /// Reserved bits of the subscription options are set (MQTT-3.8.3-5).
    #[error("reserved subscription option bits set")]
    SubscriptionOptionsReserved,
    /// Retain Handling is 3 (section 3.8.3.1).
    #[error("retain handling 3")]
    InvalidRetainHandling,
    /// No Local on a shared subscription (MQTT-3.8.3-4).
    #[error("no local on a shared subscription")]
    NoLocalOnSharedSubscription,
    /// An unknown property identifier (section 2.2.2.2).
    #[error("unknown property {0:#04x}")]
    UnknownProperty(u8),
    /// A property that the packet may not carry (section 2.2.2.2).
    #[error("property {0:#04x} not allowed in this packet")]
    PropertyNotAllowed(u8),
    /// A property given twice where only one is allowed (section 2.2.2.2).
    #[error("property {0:#04x} given more than once")]
    DuplicateProperty(u8),
    /// A property value out of its range, e.g. a byte flag other than 0 or
    /// 1, or Maximum QoS 2 (section 3.1.2.11, 3.2.2.3).
    #[error("invalid value for property {0:#04x}")]
    InvalidPropertyValue(u8),
    /// Topic Alias 0 (MQTT-3.3.2-8).
    #[error("topic alias 0")]
    TopicAliasZero,
    /// Subscription Identifier 0 (section 3.3.2.3.8, 3.8.2.1.2).
    #[error("subscription identifier 0")]
    SubscriptionIdentifierZero,
    /// Receive Maximum 0 (section 3.1.2.11.3, 3.2.2.3.3).
    #[error("receive maximum 0")]
    ReceiveMaximumZero,
    /// Maximum Packet Size 0 (section 3.1.2.11.4, 3.2.2.3.6).
    #[error("maximum packet size 0")]
    MaximumPacketSizeZero,
    /// Authentication Data without Authentication Method (section
    /// 3.1.2.11.10).
    #[error("authentication data without authentication method")]
    AuthDataWithoutMethod,
    /// A reason code the spec does not list for this packet.
    #[error("reason code {code:#04x} is not valid in {packet:?}")]
    InvalidReasonCode {
        /// The packet type.
        packet: PacketType,
        /// The byte received.
        code: u8,
    },
    /// The CONNACK acknowledge flags have reserved bits set (MQTT-3.2.2-1).
    #[error("reserved CONNACK flags set")]
    ConnAckReservedFlags,
    /// A refusing CONNACK with Session Present set (MQTT-3.2.2-6; v3.1.1
    /// MQTT-3.2.2-4).
    #[error("session present on a refused connection")]
    SessionPresentOnRefusal,
}

impl DecodeError {
    /// The v5 reason code that reports this error in a CONNACK or
    /// DISCONNECT.
    pub const fn reason_code(self) -> ReasonCode {
        use DecodeError as E;
        match self {
            E::PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            E::UnsupportedProtocolVersion(_) | E::InvalidProtocolName => {
                ReasonCode::UnsupportedProtocolVersion
            }
            E::ClientIdentifierNotValid => ReasonCode::ClientIdentifierNotValid,
            E::WildcardInTopicName | E::EmptyTopicName => ReasonCode::TopicNameInvalid,
            E::TopicAliasZero => ReasonCode::TopicAliasInvalid,
            E::FirstPacketNotConnect
            | E::DuplicateConnect
            | E::DuplicateProperty(_)
            | E::InvalidPropertyValue(_)
            | E::SubscriptionIdentifierZero
            | E::ReceiveMaximumZero
            | E::MaximumPacketSizeZero
            | E::AuthDataWithoutMethod
            | E::InvalidRetainHandling
            | E::NoLocalOnSharedSubscription
            | E::PacketIdZero
            | E::EmptySubscribe
            | E::EmptyUnsubscribe => ReasonCode::ProtocolError,
            E::MalformedRemainingLength
            | E::MalformedVariableInteger
            | E::InvalidPacketType(_)
            | E::InvalidFixedHeaderFlags { .. }
            | E::UnexpectedEof
            | E::TrailingBytes
            | E::InvalidUtf8
            | E::NullCharacter
            | E::ConnectReservedFlag
            | E::WillFlagsInconsistent
            | E::InvalidWillQoS
            | E::PasswordWithoutUsername
            | E::InvalidQoS
            | E::DupWithQoS0
            | E::EmptyTopicFilter
            | E::InvalidTopicFilter
            | E::SubscriptionOptionsReserved
            | E::UnknownProperty(_)
            | E::PropertyNotAllowed(_)
            | E::InvalidReasonCode { .. }
            | E::ConnAckReservedFlags => ReasonCode::MalformedPacket,
            E::SessionPresentOnRefusal => ReasonCode::ProtocolError,
        }
    }
}

/// A packet that cannot be put on the wire as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A string or binary field is longer than 65,535 bytes.
    #[error("string or binary field longer than 65535 bytes")]
    FieldTooLong,
    /// The remaining length exceeds 268,435,455 bytes.
    #[error("packet body longer than 268435455 bytes")]
    PacketTooLarge,
    /// A variable byte integer (e.g. a subscription identifier) exceeds
    /// 268,435,455.
    #[error("variable byte integer out of range")]
    VariableIntegerOutOfRange,
    /// A QoS 1/2 PUBLISH without a packet identifier, a QoS 0 one with one,
    /// or a packet identifier of 0.
    #[error("packet identifier missing, zero or not allowed")]
    InvalidPacketId,
    /// The packet type does not exist in the target version (AUTH in v3).
    #[error("{0:?} does not exist in this protocol version")]
    UnsupportedInVersion(PacketType),
}
