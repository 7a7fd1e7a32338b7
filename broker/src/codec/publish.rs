//! PUBLISH (section 3.3): the hot path.

use std::fmt;

use bytes::Bytes;

use super::properties::{
    id, not_allowed, put_binary, put_byte, put_properties, put_str, put_u16, put_u32, put_user,
    read_properties, Context, Property, WriteProperties,
};
use super::wire::{Reader, Sink};
use super::{ByteStr, DecodeError, EncodeError, PayloadFormat, ProtocolVersion, QoS, UserProperty};

/// PUBLISH: an application message.
///
/// Cheap to clone: topic and payload are reference-counted slices of the
/// packet they were decoded from.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Publish {
    /// Redelivery of an earlier attempt (QoS 1/2 only).
    pub dup: bool,
    /// Quality of service.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// The topic name; in v5 it may be empty when a topic alias is given.
    pub topic: ByteStr,
    /// The packet identifier: `Some` exactly when QoS > 0.
    pub packet_id: Option<u16>,
    /// The application payload.
    pub payload: Bytes,
    /// v5 properties.
    pub properties: PublishProperties,
}

impl fmt::Debug for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publish")
            .field("dup", &self.dup)
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("topic", &self.topic)
            .field("packet_id", &self.packet_id)
            .field("payload_len", &self.payload.len())
            .field("properties", &self.properties)
            .finish()
    }
}

/// v5 PUBLISH properties (section 3.3.2.3).
///
/// Nothing here allocates when absent (`None`, empty `Vec`), so the common
/// property-less publish costs no heap memory beyond topic and payload.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PublishProperties {
    /// Payload format indicator.
    pub payload_format_indicator: Option<PayloadFormat>,
    /// Lifetime of the message in seconds.
    pub message_expiry_interval: Option<u32>,
    /// Topic alias (never 0).
    pub topic_alias: Option<u16>,
    /// Topic for a response.
    pub response_topic: Option<ByteStr>,
    /// Correlation data of a request/response exchange.
    pub correlation_data: Option<Bytes>,
    /// User properties, in order.
    pub user_properties: Vec<UserProperty>,
    /// Identifiers of the subscriptions this delivery matched (server to
    /// client; several when overlapping subscriptions matched).
    pub subscription_identifiers: Vec<u32>,
    /// MIME type of the payload.
    pub content_type: Option<ByteStr>,
}

impl PublishProperties {
    /// True when no property is set (the common case).
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

impl fmt::Debug for PublishProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishProperties")
            .field("payload_format_indicator", &self.payload_format_indicator)
            .field("message_expiry_interval", &self.message_expiry_interval)
            .field("topic_alias", &self.topic_alias)
            .field("response_topic", &self.response_topic)
            .field(
                "correlation_data_len",
                &self.correlation_data.as_ref().map(Bytes::len),
            )
            .field("user_properties", &self.user_properties)
            .field("subscription_identifiers", &self.subscription_identifiers)
            .field("content_type", &self.content_type)
            .finish()
    }
}

/// Flag bits of the PUBLISH fixed header.
const FLAG_RETAIN: u8 = 0b0001;
const FLAG_DUP: u8 = 0b1000;

/// A topic name must not contain wildcards (MQTT-3.3.2-2) and must not be
/// empty (MQTT-4.7.3-1); U+0000 was already refused by the reader.
pub(crate) fn check_topic_name(topic: &str) -> Result<(), DecodeError> {
    if topic.is_empty() {
        Err(DecodeError::EmptyTopicName)
    } else if topic.bytes().any(|b| b == b'+' || b == b'#') {
        Err(DecodeError::WildcardInTopicName)
    } else {
        Ok(())
    }
}

impl Publish {
    /// The low nibble of the fixed header.
    pub(crate) fn flags(&self) -> u8 {
        let mut flags = self.qos.bits() << 1;
        if self.dup {
            flags |= FLAG_DUP;
        }
        if self.retain {
            flags |= FLAG_RETAIN;
        }
        flags
    }

    pub(crate) fn decode(
        flags: u8,
        r: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let qos = QoS::from_bits((flags >> 1) & 0b11).ok_or(DecodeError::InvalidQoS)?;
        let dup = flags & FLAG_DUP != 0;
        if dup && qos == QoS::AtMostOnce {
            return Err(DecodeError::DupWithQoS0);
        }
        let topic = r.string()?;
        let packet_id = match qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce | QoS::ExactlyOnce => Some(r.packet_id()?),
        };
        let properties = if version.is_v5() {
            PublishProperties::decode(r)?
        } else {
            PublishProperties::default()
        };
        // v5 allows an empty topic name when a Topic Alias stands for it
        // (section 3.3.2.1).
        if !(topic.is_empty() && properties.topic_alias.is_some()) {
            check_topic_name(&topic)?;
        }
        Ok(Self {
            dup,
            qos,
            retain: flags & FLAG_RETAIN != 0,
            topic,
            packet_id,
            payload: r.rest(),
            properties,
        })
    }

    /// Writes the body; returns the offset of the packet identifier within
    /// the body (for [`EncodedPublish`](super::EncodedPublish)).
    pub(crate) fn write<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<Option<usize>, EncodeError> {
        s.put_str(&self.topic)?;
        let offset = match (self.qos, self.packet_id) {
            (QoS::AtMostOnce, None) => None,
            (QoS::AtLeastOnce | QoS::ExactlyOnce, Some(packet_id)) if packet_id != 0 => {
                s.put_u16(packet_id);
                Some(2 + self.topic.len())
            }
            _ => return Err(EncodeError::InvalidPacketId),
        };
        if version.is_v5() {
            put_properties(s, &self.properties)?;
        }
        s.put_slice(&self.payload);
        Ok(offset)
    }
}

impl PublishProperties {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_properties(r, Context::Publish, |prop| {
            match prop {
                Property::Byte(id::PAYLOAD_FORMAT_INDICATOR, v) => {
                    p.payload_format_indicator = Some(PayloadFormat::from_bit(v))
                }
                Property::U32(id::MESSAGE_EXPIRY_INTERVAL, v) => {
                    p.message_expiry_interval = Some(v)
                }
                Property::U16(id::TOPIC_ALIAS, v) => p.topic_alias = Some(v),
                Property::Str(id::RESPONSE_TOPIC, v) => {
                    check_topic_name(&v)?;
                    p.response_topic = Some(v)
                }
                Property::Binary(id::CORRELATION_DATA, v) => p.correlation_data = Some(v),
                Property::User(k, v) => p.user_properties.push((k, v)),
                Property::VarInt(id::SUBSCRIPTION_IDENTIFIER, v) => {
                    p.subscription_identifiers.push(v)
                }
                Property::Str(id::CONTENT_TYPE, v) => p.content_type = Some(v),
                other => return Err(not_allowed(&other)),
            }
            Ok(())
        })?;
        Ok(p)
    }
}

impl WriteProperties for PublishProperties {
    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_byte(
            s,
            id::PAYLOAD_FORMAT_INDICATOR,
            self.payload_format_indicator.map(|f| f as u8),
        );
        put_u32(s, id::MESSAGE_EXPIRY_INTERVAL, self.message_expiry_interval);
        put_u16(s, id::TOPIC_ALIAS, self.topic_alias);
        put_str(s, id::RESPONSE_TOPIC, self.response_topic.as_ref())?;
        put_binary(s, id::CORRELATION_DATA, self.correlation_data.as_ref())?;
        put_user(s, &self.user_properties)?;
        for &sub_id in &self.subscription_identifiers {
            s.put_u8(id::SUBSCRIPTION_IDENTIFIER);
            s.put_var_int(sub_id)?;
        }
        put_str(s, id::CONTENT_TYPE, self.content_type.as_ref())
    }
}
