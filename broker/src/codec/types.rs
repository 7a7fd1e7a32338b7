//! Small value types shared by every packet: protocol version, QoS, the
//! `Bytes`-backed UTF-8 string, subscription options.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// The MQTT protocol revision spoken on a connection.
///
/// Unknown until the CONNECT packet arrives: the CONNECT itself carries the
/// protocol name and level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V3_1,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    V3_1_1,
    /// MQTT 5.0: protocol name `MQTT`, level 5.
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte of the CONNECT variable header.
    pub const fn level(self) -> u8 {
        match self {
            Self::V3_1 => 3,
            Self::V3_1_1 => 4,
            Self::V5 => 5,
        }
    }

    /// The protocol name of the CONNECT variable header.
    pub const fn protocol_name(self) -> &'static str {
        match self {
            Self::V3_1 => "MQIsdp",
            Self::V3_1_1 | Self::V5 => "MQTT",
        }
    }

    /// The version named by a CONNECT's protocol name and level, if any.
    pub fn from_name_and_level(name: &str, level: u8) -> Option<Self> {
        match (name, level) {
            ("MQIsdp", 3) => Some(Self::V3_1),
            ("MQTT", 4) => Some(Self::V3_1_1),
            ("MQTT", 5) => Some(Self::V5),
            _ => None,
        }
    }

    /// True for MQTT 5.0, the only version with properties and reason codes.
    pub const fn is_v5(self) -> bool {
        matches!(self, Self::V5)
    }
}

/// Quality of service of a message or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum QoS {
    /// QoS 0: fire and forget.
    #[default]
    AtMostOnce = 0,
    /// QoS 1: acknowledged with PUBACK, may be duplicated.
    AtLeastOnce = 1,
    /// QoS 2: four-way handshake, delivered exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS encoded in two bits, or `None` for the forbidden value 3.
    pub const fn from_bits(bits: u8) -> Option<Self> {
        match bits {
            0 => Some(Self::AtMostOnce),
            1 => Some(Self::AtLeastOnce),
            2 => Some(Self::ExactlyOnce),
            _ => None,
        }
    }

    /// The two-bit wire value.
    pub const fn bits(self) -> u8 {
        self as u8
    }
}

/// A UTF-8 string backed by [`Bytes`]: cloning it is a reference count
/// increment, and a decoded one is a slice of the packet it came from.
///
/// The contents are checked to be UTF-8 once, on construction; reading the
/// string afterwards costs nothing (the check-once wrapper is
/// `bytestring::ByteString`, whose `unsafe` stays in that crate).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ByteStr(bytestring::ByteString);

impl ByteStr {
    /// The empty string.
    pub const fn new() -> Self {
        Self(bytestring::ByteString::new())
    }

    /// A string from a `'static` literal, without copying.
    pub const fn from_static(s: &'static str) -> Self {
        Self(bytestring::ByteString::from_static(s))
    }

    /// A string copied from `s` (one allocation).
    pub fn copy_from_str(s: &str) -> Self {
        Self(bytestring::ByteString::from(s))
    }

    /// Wraps `bytes` after checking that they are UTF-8.
    pub fn from_utf8(bytes: Bytes) -> Result<Self, std::str::Utf8Error> {
        bytestring::ByteString::try_from(bytes).map(Self)
    }

    /// The string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        self.0.as_bytes()
    }

    /// Unwraps the underlying bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0.into_bytes()
    }

    /// A copy in an allocation of its own. Decoded strings are slices of the
    /// read buffer they came in; a string kept for long (a client id, a
    /// subscription filter) is compacted so that it does not keep the whole
    /// buffer alive.
    pub fn compact(&self) -> Self {
        Self::copy_from_str(self.as_str())
    }

    /// The part `subset` of this string, sharing its bytes (no copy).
    ///
    /// # Panics
    ///
    /// When `subset` is not a slice of this string's own bytes.
    pub fn slice_ref(&self, subset: &str) -> Self {
        Self(self.0.slice_ref(subset))
    }
}

impl Deref for ByteStr {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ByteStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&'static str> for ByteStr {
    fn from(s: &'static str) -> Self {
        Self::from_static(s)
    }
}

impl From<String> for ByteStr {
    fn from(s: String) -> Self {
        Self(bytestring::ByteString::from(s))
    }
}

impl PartialEq<str> for ByteStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ByteStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for ByteStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ByteStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A v5 user property: a name and value pair, which may repeat.
pub type UserProperty = (ByteStr, ByteStr);

/// The v5 payload format indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum PayloadFormat {
    /// 0: unspecified bytes.
    #[default]
    Unspecified = 0,
    /// 1: UTF-8 encoded character data.
    Utf8 = 1,
}

impl PayloadFormat {
    /// The format of an indicator byte already checked to be 0 or 1.
    pub const fn from_bit(bit: u8) -> Self {
        if bit == 0 {
            Self::Unspecified
        } else {
            Self::Utf8
        }
    }
}

/// When retained messages are sent for a new subscription (v5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe = 0,
    /// 1: send them only if the subscription did not already exist.
    SendIfNewSubscription = 1,
    /// 2: do not send retained messages.
    DoNotSend = 2,
}

impl RetainHandling {
    /// The retain handling encoded in two bits, or `None` for 3.
    pub const fn from_bits(bits: u8) -> Option<Self> {
        match bits {
            0 => Some(Self::SendAtSubscribe),
            1 => Some(Self::SendIfNewSubscription),
            2 => Some(Self::DoNotSend),
            _ => None,
        }
    }
}

/// The options byte that follows each topic filter in SUBSCRIBE.
///
/// MQTT 3 only has the QoS; the other fields keep their defaults there and
/// are ignored by the v3 encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS the subscriber accepts.
    pub qos: QoS,
    /// v5: do not forward messages published by this same client.
    pub no_local: bool,
    /// v5: keep the RETAIN flag of forwarded messages as published.
    pub retain_as_published: bool,
    /// v5: when to send retained messages.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with the given QoS and every v5 option at its default.
    pub const fn with_qos(qos: QoS) -> Self {
        Self {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }
}
