//! CONNECT (section 3.1): the first packet of every connection.

use std::fmt;

use bytes::Bytes;

use super::properties::{
    id, not_allowed, put_binary, put_bool, put_byte, put_properties, put_str, put_u16, put_u32,
    put_user, read_properties, Context, Property, WriteProperties,
};
use super::wire::{Reader, Sink};
use super::{ByteStr, DecodeError, EncodeError, PayloadFormat, ProtocolVersion, QoS, UserProperty};

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
    pub payload_format_indicator: Option<PayloadFormat>,
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

const FLAG_RESERVED: u8 = 0b0000_0001;
const FLAG_CLEAN_START: u8 = 0b0000_0010;
const FLAG_WILL: u8 = 0b0000_0100;
const FLAG_WILL_RETAIN: u8 = 0b0010_0000;
const FLAG_PASSWORD: u8 = 0b0100_0000;
const FLAG_USERNAME: u8 = 0b1000_0000;

impl Connect {
    /// Decodes a CONNECT body. `version` is set as soon as the protocol
    /// name and level are known, so that an error later in the packet can
    /// still be answered with a CONNACK of the right version.
    pub(crate) fn decode(
        r: &mut Reader,
        version: &mut Option<ProtocolVersion>,
    ) -> Result<Self, DecodeError> {
        let name = r.string()?;
        let level = r.u8()?;
        let protocol = match ProtocolVersion::from_name_and_level(&name, level) {
            Some(v) => v,
            None if name == "MQTT" || name == "MQIsdp" => {
                return Err(DecodeError::UnsupportedProtocolVersion(level))
            }
            None => return Err(DecodeError::InvalidProtocolName),
        };
        *version = Some(protocol);

        let flags = r.u8()?;
        if flags & FLAG_RESERVED != 0 {
            return Err(DecodeError::ConnectReservedFlag);
        }
        let has_will = flags & FLAG_WILL != 0;
        let will_retain = flags & FLAG_WILL_RETAIN != 0;
        let will_qos_bits = (flags >> 3) & 0b11;
        if !has_will && (will_qos_bits != 0 || will_retain) {
            return Err(DecodeError::WillFlagsInconsistent);
        }
        let will_qos = QoS::from_bits(will_qos_bits).ok_or(DecodeError::InvalidWillQoS)?;
        let has_username = flags & FLAG_USERNAME != 0;
        let has_password = flags & FLAG_PASSWORD != 0;
        if has_password && !has_username && !protocol.is_v5() {
            return Err(DecodeError::PasswordWithoutUsername);
        }
        let clean_start = flags & FLAG_CLEAN_START != 0;
        let keep_alive = r.u16()?;
        let properties = if protocol.is_v5() {
            ConnectProperties::decode(r)?
        } else {
            ConnectProperties::default()
        };

        let client_id = r.string()?;
        if client_id.is_empty()
            && (protocol == ProtocolVersion::V3_1
                || (protocol == ProtocolVersion::V3_1_1 && !clean_start))
        {
            return Err(DecodeError::ClientIdentifierNotValid);
        }
        let will = if has_will {
            let properties = if protocol.is_v5() {
                WillProperties::decode(r)?
            } else {
                WillProperties::default()
            };
            let topic = r.string()?;
            super::publish::check_topic_name(&topic)?;
            Some(LastWill {
                topic,
                payload: r.binary()?,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        let username = if has_username {
            Some(r.string()?)
        } else {
            None
        };
        let password = if has_password {
            Some(r.binary()?)
        } else {
            None
        };
        r.finish()?;
        Ok(Self {
            protocol,
            clean_start,
            keep_alive,
            client_id,
            will,
            username,
            password,
            properties,
        })
    }

    /// Writes the CONNECT body in `version` (which replaces `self.protocol`).
    pub(crate) fn write<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        s.put_str(version.protocol_name())?;
        s.put_u8(version.level());
        let mut flags = 0;
        if self.clean_start {
            flags |= FLAG_CLEAN_START;
        }
        if let Some(will) = &self.will {
            flags |= FLAG_WILL | (will.qos.bits() << 3);
            if will.retain {
                flags |= FLAG_WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= FLAG_USERNAME;
        }
        if self.password.is_some() {
            flags |= FLAG_PASSWORD;
        }
        s.put_u8(flags);
        s.put_u16(self.keep_alive);
        if version.is_v5() {
            put_properties(s, &self.properties)?;
        }
        s.put_str(&self.client_id)?;
        if let Some(will) = &self.will {
            if version.is_v5() {
                put_properties(s, &will.properties)?;
            }
            s.put_str(&will.topic)?;
            s.put_binary(&will.payload)?;
        }
        if let Some(username) = &self.username {
            s.put_str(username)?;
        }
        if let Some(password) = &self.password {
            s.put_binary(password)?;
        }
        Ok(())
    }
}

impl ConnectProperties {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_properties(r, Context::Connect, |prop| {
            match prop {
                Property::U32(id::SESSION_EXPIRY_INTERVAL, v) => {
                    p.session_expiry_interval = Some(v)
                }
                Property::U16(id::RECEIVE_MAXIMUM, v) => p.receive_maximum = Some(v),
                Property::U32(id::MAXIMUM_PACKET_SIZE, v) => p.maximum_packet_size = Some(v),
                Property::U16(id::TOPIC_ALIAS_MAXIMUM, v) => p.topic_alias_maximum = Some(v),
                Property::Bool(id::REQUEST_RESPONSE_INFORMATION, v) => {
                    p.request_response_information = Some(v)
                }
                Property::Bool(id::REQUEST_PROBLEM_INFORMATION, v) => {
                    p.request_problem_information = Some(v)
                }
                Property::User(k, v) => p.user_properties.push((k, v)),
                Property::Str(id::AUTHENTICATION_METHOD, v) => p.authentication_method = Some(v),
                Property::Binary(id::AUTHENTICATION_DATA, v) => p.authentication_data = Some(v),
                other => return Err(not_allowed(&other)),
            }
            Ok(())
        })?;
        if p.authentication_data.is_some() && p.authentication_method.is_none() {
            return Err(DecodeError::AuthDataWithoutMethod);
        }
        Ok(p)
    }
}

impl WriteProperties for ConnectProperties {
    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_u32(s, id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        put_u16(s, id::RECEIVE_MAXIMUM, self.receive_maximum);
        put_u32(s, id::MAXIMUM_PACKET_SIZE, self.maximum_packet_size);
        put_u16(s, id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        put_bool(
            s,
            id::REQUEST_RESPONSE_INFORMATION,
            self.request_response_information,
        );
        put_bool(
            s,
            id::REQUEST_PROBLEM_INFORMATION,
            self.request_problem_information,
        );
        put_user(s, &self.user_properties)?;
        put_str(
            s,
            id::AUTHENTICATION_METHOD,
            self.authentication_method.as_ref(),
        )?;
        put_binary(
            s,
            id::AUTHENTICATION_DATA,
            self.authentication_data.as_ref(),
        )
    }
}

impl WillProperties {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_properties(r, Context::Will, |prop| {
            match prop {
                Property::U32(id::WILL_DELAY_INTERVAL, v) => p.will_delay_interval = Some(v),
                Property::Byte(id::PAYLOAD_FORMAT_INDICATOR, v) => {
                    p.payload_format_indicator = Some(PayloadFormat::from_bit(v))
                }
                Property::U32(id::MESSAGE_EXPIRY_INTERVAL, v) => {
                    p.message_expiry_interval = Some(v)
                }
                Property::Str(id::CONTENT_TYPE, v) => p.content_type = Some(v),
                Property::Str(id::RESPONSE_TOPIC, v) => p.response_topic = Some(v),
                Property::Binary(id::CORRELATION_DATA, v) => p.correlation_data = Some(v),
                Property::User(k, v) => p.user_properties.push((k, v)),
                other => return Err(not_allowed(&other)),
            }
            Ok(())
        })?;
        Ok(p)
    }
}

impl WriteProperties for WillProperties {
    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_u32(s, id::WILL_DELAY_INTERVAL, self.will_delay_interval);
        put_byte(
            s,
            id::PAYLOAD_FORMAT_INDICATOR,
            self.payload_format_indicator.map(|f| f as u8),
        );
        put_u32(s, id::MESSAGE_EXPIRY_INTERVAL, self.message_expiry_interval);
        put_str(s, id::CONTENT_TYPE, self.content_type.as_ref())?;
        put_str(s, id::RESPONSE_TOPIC, self.response_topic.as_ref())?;
        put_binary(s, id::CORRELATION_DATA, self.correlation_data.as_ref())?;
        put_user(s, &self.user_properties)
    }
}
