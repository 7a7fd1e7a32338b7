//! CONNACK (section 3.2): the server's answer to CONNECT.

use bytes::Bytes;

use super::{ByteStr, QoS, ReasonCode, UserProperty};

/// CONNACK: accepts or refuses a CONNECT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnAck {
    /// Whether the server resumed an existing session.
    pub session_present: bool,
    /// The v5 reason code; in v3 it is mapped to a return code
    /// ([`ReasonCode::to_v3_connack`]).
    pub reason_code: ReasonCode,
    /// v5 properties.
    pub properties: ConnAckProperties,
}

/// v5 CONNACK properties (section 3.2.2.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnAckProperties {
    /// Session expiry interval chosen by the server.
    pub session_expiry_interval: Option<u32>,
    /// How many QoS 1/2 publishes the server accepts at once.
    pub receive_maximum: Option<u16>,
    /// Highest QoS the server supports (0 or 1; absent means 2).
    pub maximum_qos: Option<QoS>,
    /// Whether the server supports retained messages.
    pub retain_available: Option<bool>,
    /// Largest packet the server accepts.
    pub maximum_packet_size: Option<u32>,
    /// Client identifier assigned by the server to an empty one.
    pub assigned_client_identifier: Option<ByteStr>,
    /// Highest topic alias the server accepts from the client.
    pub topic_alias_maximum: Option<u16>,
    /// Human-readable diagnostic.
    pub reason_string: Option<ByteStr>,
    /// User properties, in order.
    pub user_properties: Vec<UserProperty>,
    /// Whether wildcard subscriptions are supported.
    pub wildcard_subscription_available: Option<bool>,
    /// Whether subscription identifiers are supported.
    pub subscription_identifiers_available: Option<bool>,
    /// Whether shared subscriptions are supported.
    pub shared_subscription_available: Option<bool>,
    /// Keep alive imposed by the server.
    pub server_keep_alive: Option<u16>,
    /// Basis for response topics.
    pub response_information: Option<ByteStr>,
    /// Another server the client may use.
    pub server_reference: Option<ByteStr>,
    /// Extended authentication method.
    pub authentication_method: Option<ByteStr>,
    /// Extended authentication data.
    pub authentication_data: Option<Bytes>,
}
