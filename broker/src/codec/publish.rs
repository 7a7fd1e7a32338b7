//! PUBLISH (section 3.3): the hot path.

use std::fmt;

use bytes::Bytes;

use super::{ByteStr, PayloadFormat, QoS, UserProperty};

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
