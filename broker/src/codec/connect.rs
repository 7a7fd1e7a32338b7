//! CONNECT (section 3.1): the first packet of every connection.

use std::fmt;

use bytes::Bytes;

use super::{ByteStr, ProtocolVersion, QoS, UserProperty};

/// CONNECT: a client asks to open a session.
#[derive(Clone, PartialEq, Eq)]
pub struct Connect {
    /// The protocol revision named by the packet.
    pub protocol: ProtocolVersion,
    /// v5 Clean Start / v3 Clean Session.
    pub clean_start: bool,
    /// Keep alive in seconds; 0 disables it.
    pub keep_alive: u16,
    /// The client identifier; may be empty (the server then assigns one).
    pub client_id: ByteStr,
    /// The will message, if the Will Flag is set.
    pub will: Option<LastWill>,
    /// The user name, if the User Name Flag is set.
    pub username: Option<ByteStr>,
    /// The password, if the Password Flag is set.
    pub password: Option<Bytes>,
    /// v5 properties.
    pub properties: ConnectProperties,
}

impl fmt::Debug for Connect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connect")
            .field("protocol", &self.protocol)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("client_id", &self.client_id)
            .field("will", &self.will)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<REDACTED>"))
            .field("properties", &self.properties)
            .finish()
    }
}

/// The will message of a CONNECT, published if the connection ends without
/// a normal DISCONNECT.
#[derive(Clone, PartialEq, Eq)]
pub struct LastWill {
    /// The topic the will is published to.
    pub topic: ByteStr,
    /// The will payload.
    pub payload: Bytes,
    /// The QoS of the will message.
    pub qos: QoS,
    /// Whether the will message is retained.
    pub retain: bool,
    /// v5 will properties.
    pub properties: WillProperties,
}

impl fmt::Debug for LastWill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LastWill")
            .field("topic", &self.topic)
            .field("payload_len", &self.payload.len())
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("properties", &self.properties)
            .finish()
    }
}

/// v5 will properties (section 3.1.3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WillProperties {
    /// Seconds to wait after the connection ends before publishing the will.
    pub will_delay_interval: Option<u32>,
    /// Payload format indicator.
    pub payload_format_indicator: Option<super::PayloadFormat>,
    /// Lifetime of the will message in seconds.
    pub message_expiry_interval: Option<u32>,
    /// MIME type of the payload.
    pub content_type: Option<ByteStr>,
    /// Topic for a response.
    pub response_topic: Option<ByteStr>,
    /// Correlation data of a request/response exchange.
    pub correlation_data: Option<Bytes>,
    /// User properties, in order.
    pub user_properties: Vec<UserProperty>,
}

/// v5 CONNECT properties (section 3.1.2.11).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnectProperties {
    /// Seconds the session outlives the connection; absent means 0.
    pub session_expiry_interval: Option<u32>,
    /// How many QoS 1/2 publishes the client accepts at once.
    pub receive_maximum: Option<u16>,
    /// Largest packet the client accepts.
    pub maximum_packet_size: Option<u32>,
    /// Highest topic alias the client accepts from the server.
    pub topic_alias_maximum: Option<u16>,
    /// Whether the client wants response information in the CONNACK.
    pub request_response_information: Option<bool>,
    /// Whether the server may send reason strings and user properties on
    /// packets other than PUBLISH, CONNACK and DISCONNECT.
    pub request_problem_information: Option<bool>,
    /// User properties, in order.
    pub user_properties: Vec<UserProperty>,
    /// Extended authentication method.
    pub authentication_method: Option<ByteStr>,
    /// Extended authentication data.
    pub authentication_data: Option<Bytes>,
}

impl fmt::Debug for ConnectProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectProperties")
            .field("session_expiry_interval", &self.session_expiry_interval)
            .field("receive_maximum", &self.receive_maximum)
            .field("maximum_packet_size", &self.maximum_packet_size)
            .field("topic_alias_maximum", &self.topic_alias_maximum)
            .field(
                "request_response_information",
                &self.request_response_information,
            )
            .field(
                "request_problem_information",
                &self.request_problem_information,
            )
            .field("user_properties", &self.user_properties)
            .field("authentication_method", &self.authentication_method)
            .field(
                "authentication_data",
                &self.authentication_data.as_ref().map(|_| "<REDACTED>"),
            )
            .finish()
    }
}
