//! CONNACK (section 3.2): the server's answer to CONNECT.

use bytes::Bytes;

use super::properties::{
    id, not_allowed, put_binary, put_bool, put_byte, put_properties, put_str, put_u16, put_u32,
    put_user, read_properties, Context, Property, WriteProperties,
};
use super::wire::{Reader, Sink};
use super::{
    ByteStr, DecodeError, EncodeError, PacketType, ProtocolVersion, QoS, ReasonCode, UserProperty,
};

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

impl ConnAck {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let flags = r.u8()?;
        if flags & 0b1111_1110 != 0 {
            return Err(DecodeError::ConnAckReservedFlags);
        }
        let code = r.u8()?;
        let invalid = DecodeError::InvalidReasonCode {
            packet: PacketType::ConnAck,
            code,
        };
        let reason_code = if version.is_v5() {
            ReasonCode::from_u8(code)
                .filter(|c| c.is_valid_for(PacketType::ConnAck))
                .ok_or(invalid)?
        } else {
            ReasonCode::from_v3_connack(code).ok_or(invalid)?
        };
        let properties = if version.is_v5() {
            ConnAckProperties::decode(r)?
        } else {
            ConnAckProperties::default()
        };
        r.finish()?;
        let session_present = flags & 1 != 0;
        if session_present && reason_code != ReasonCode::Success {
            return Err(DecodeError::SessionPresentOnRefusal);
        }
        Ok(Self {
            session_present,
            reason_code,
            properties,
        })
    }

    pub(crate) fn write<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        s.put_u8(u8::from(self.session_present));
        if version.is_v5() {
            s.put_u8(self.reason_code.as_u8());
            put_properties(s, &self.properties)
        } else {
            s.put_u8(self.reason_code.to_v3_connack());
            Ok(())
        }
    }
}

impl ConnAckProperties {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_properties(r, Context::ConnAck, |prop| {
            match prop {
                Property::U32(id::SESSION_EXPIRY_INTERVAL, v) => {
                    p.session_expiry_interval = Some(v)
                }
                Property::U16(id::RECEIVE_MAXIMUM, v) => p.receive_maximum = Some(v),
                Property::Byte(id::MAXIMUM_QOS, v) => p.maximum_qos = QoS::from_bits(v),
                Property::Bool(id::RETAIN_AVAILABLE, v) => p.retain_available = Some(v),
                Property::U32(id::MAXIMUM_PACKET_SIZE, v) => p.maximum_packet_size = Some(v),
                Property::Str(id::ASSIGNED_CLIENT_IDENTIFIER, v) => {
                    p.assigned_client_identifier = Some(v)
                }
                Property::U16(id::TOPIC_ALIAS_MAXIMUM, v) => p.topic_alias_maximum = Some(v),
                Property::Str(id::REASON_STRING, v) => p.reason_string = Some(v),
                Property::User(k, v) => p.user_properties.push((k, v)),
                Property::Bool(id::WILDCARD_SUBSCRIPTION_AVAILABLE, v) => {
                    p.wildcard_subscription_available = Some(v)
                }
                Property::Bool(id::SUBSCRIPTION_IDENTIFIER_AVAILABLE, v) => {
                    p.subscription_identifiers_available = Some(v)
                }
                Property::Bool(id::SHARED_SUBSCRIPTION_AVAILABLE, v) => {
                    p.shared_subscription_available = Some(v)
                }
                Property::U16(id::SERVER_KEEP_ALIVE, v) => p.server_keep_alive = Some(v),
                Property::Str(id::RESPONSE_INFORMATION, v) => p.response_information = Some(v),
                Property::Str(id::SERVER_REFERENCE, v) => p.server_reference = Some(v),
                Property::Str(id::AUTHENTICATION_METHOD, v) => p.authentication_method = Some(v),
                Property::Binary(id::AUTHENTICATION_DATA, v) => p.authentication_data = Some(v),
                other => return Err(not_allowed(&other)),
            }
            Ok(())
        })?;
        Ok(p)
    }
}

impl WriteProperties for ConnAckProperties {
    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_u32(s, id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        put_u16(s, id::RECEIVE_MAXIMUM, self.receive_maximum);
        put_byte(s, id::MAXIMUM_QOS, self.maximum_qos.map(QoS::bits));
        put_bool(s, id::RETAIN_AVAILABLE, self.retain_available);
        put_u32(s, id::MAXIMUM_PACKET_SIZE, self.maximum_packet_size);
        put_str(
            s,
            id::ASSIGNED_CLIENT_IDENTIFIER,
            self.assigned_client_identifier.as_ref(),
        )?;
        put_u16(s, id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        put_str(s, id::REASON_STRING, self.reason_string.as_ref())?;
        put_user(s, &self.user_properties)?;
        put_bool(
            s,
            id::WILDCARD_SUBSCRIPTION_AVAILABLE,
            self.wildcard_subscription_available,
        );
        put_bool(
            s,
            id::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            self.subscription_identifiers_available,
        );
        put_bool(
            s,
            id::SHARED_SUBSCRIPTION_AVAILABLE,
            self.shared_subscription_available,
        );
        put_u16(s, id::SERVER_KEEP_ALIVE, self.server_keep_alive);
        put_str(
            s,
            id::RESPONSE_INFORMATION,
            self.response_information.as_ref(),
        )?;
        put_str(s, id::SERVER_REFERENCE, self.server_reference.as_ref())?;
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
