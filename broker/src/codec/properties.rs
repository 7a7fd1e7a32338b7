//! v5 properties (section 2.2.2): identifiers, the shared acknowledgement
//! properties, and the reader and writer every packet uses.

use bytes::Bytes;

use super::wire::{Counter, Reader, Sink};
use super::{ByteStr, DecodeError, EncodeError, UserProperty};

/// Properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
///
/// Both may be dropped by the sender to respect the peer's maximum packet
/// size (MQTT-3.4.2-2 and alike).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckProperties {
    /// Human-readable diagnostic.
    pub reason_string: Option<ByteStr>,
    /// User properties, in order.
    pub user_properties: Vec<UserProperty>,
}

impl AckProperties {
    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        self.reason_string.is_none() && self.user_properties.is_empty()
    }
}

/// Property identifiers (section 2.2.2.2).
pub(crate) mod id {
    pub(crate) const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub(crate) const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub(crate) const CONTENT_TYPE: u8 = 0x03;
    pub(crate) const RESPONSE_TOPIC: u8 = 0x08;
    pub(crate) const CORRELATION_DATA: u8 = 0x09;
    pub(crate) const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub(crate) const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub(crate) const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub(crate) const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub(crate) const AUTHENTICATION_METHOD: u8 = 0x15;
    pub(crate) const AUTHENTICATION_DATA: u8 = 0x16;
    pub(crate) const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub(crate) const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub(crate) const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub(crate) const RESPONSE_INFORMATION: u8 = 0x1A;
    pub(crate) const SERVER_REFERENCE: u8 = 0x1C;
    pub(crate) const REASON_STRING: u8 = 0x1F;
    pub(crate) const RECEIVE_MAXIMUM: u8 = 0x21;
    pub(crate) const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub(crate) const TOPIC_ALIAS: u8 = 0x23;
    pub(crate) const MAXIMUM_QOS: u8 = 0x24;
    pub(crate) const RETAIN_AVAILABLE: u8 = 0x25;
    pub(crate) const USER_PROPERTY: u8 = 0x26;
    pub(crate) const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub(crate) const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub(crate) const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub(crate) const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// Which packet a property section belongs to; decides which identifiers
/// are allowed and which may repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    Connect,
    Will,
    ConnAck,
    Publish,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK.
    Ack,
    Subscribe,
    Unsubscribe,
    Disconnect,
    Auth,
}

const fn mask(ids: &[u8]) -> u64 {
    let mut m = 0;
    let mut i = 0;
    while i < ids.len() {
        m |= 1 << ids[i];
        i += 1;
    }
    m
}

impl Context {
    /// Bit set of the identifiers allowed in this context.
    const fn allowed(self) -> u64 {
        use id::*;
        match self {
            Self::Connect => mask(&[
                SESSION_EXPIRY_INTERVAL,
                AUTHENTICATION_METHOD,
                AUTHENTICATION_DATA,
                REQUEST_PROBLEM_INFORMATION,
                REQUEST_RESPONSE_INFORMATION,
                RECEIVE_MAXIMUM,
                TOPIC_ALIAS_MAXIMUM,
                USER_PROPERTY,
                MAXIMUM_PACKET_SIZE,
            ]),
            Self::Will => mask(&[
                PAYLOAD_FORMAT_INDICATOR,
                MESSAGE_EXPIRY_INTERVAL,
                CONTENT_TYPE,
                RESPONSE_TOPIC,
                CORRELATION_DATA,
                WILL_DELAY_INTERVAL,
                USER_PROPERTY,
            ]),
            Self::ConnAck => mask(&[
                SESSION_EXPIRY_INTERVAL,
                ASSIGNED_CLIENT_IDENTIFIER,
                SERVER_KEEP_ALIVE,
                AUTHENTICATION_METHOD,
                AUTHENTICATION_DATA,
                RESPONSE_INFORMATION,
                SERVER_REFERENCE,
                REASON_STRING,
                RECEIVE_MAXIMUM,
                TOPIC_ALIAS_MAXIMUM,
                MAXIMUM_QOS,
                RETAIN_AVAILABLE,
                USER_PROPERTY,
                MAXIMUM_PACKET_SIZE,
                WILDCARD_SUBSCRIPTION_AVAILABLE,
                SUBSCRIPTION_IDENTIFIER_AVAILABLE,
                SHARED_SUBSCRIPTION_AVAILABLE,
            ]),
            Self::Publish => mask(&[
                PAYLOAD_FORMAT_INDICATOR,
                MESSAGE_EXPIRY_INTERVAL,
                CONTENT_TYPE,
                RESPONSE_TOPIC,
                CORRELATION_DATA,
                SUBSCRIPTION_IDENTIFIER,
                TOPIC_ALIAS,
                USER_PROPERTY,
            ]),
            Self::Ack => mask(&[REASON_STRING, USER_PROPERTY]),
            Self::Subscribe => mask(&[SUBSCRIPTION_IDENTIFIER, USER_PROPERTY]),
            Self::Unsubscribe => mask(&[USER_PROPERTY]),
            Self::Disconnect => mask(&[
                SESSION_EXPIRY_INTERVAL,
                SERVER_REFERENCE,
                REASON_STRING,
                USER_PROPERTY,
            ]),
            Self::Auth => mask(&[
                AUTHENTICATION_METHOD,
                AUTHENTICATION_DATA,
                REASON_STRING,
                USER_PROPERTY,
            ]),
        }
    }

    /// User properties repeat everywhere; subscription identifiers only in
    /// PUBLISH (section 3.3.2.3.8).
    const fn repeatable(self, ident: u8) -> bool {
        ident == id::USER_PROPERTY
            || (ident == id::SUBSCRIPTION_IDENTIFIER && matches!(self, Self::Publish))
    }
}

/// One decoded property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Property {
    Byte(u8, u8),
    Bool(u8, bool),
    U16(u8, u16),
    U32(u8, u32),
    VarInt(u8, u32),
    Str(u8, ByteStr),
    Binary(u8, Bytes),
    User(ByteStr, ByteStr),
}

impl Property {
    /// Reads the value of property `ident`, validating its range.
    fn read(ident: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        use id::*;
        let invalid = DecodeError::InvalidPropertyValue(ident);
        Ok(match ident {
            PAYLOAD_FORMAT_INDICATOR | MAXIMUM_QOS => match r.u8()? {
                v @ (0 | 1) => Self::Byte(ident, v),
                _ => return Err(invalid),
            },
            REQUEST_PROBLEM_INFORMATION
            | REQUEST_RESPONSE_INFORMATION
            | RETAIN_AVAILABLE
            | WILDCARD_SUBSCRIPTION_AVAILABLE
            | SUBSCRIPTION_IDENTIFIER_AVAILABLE
            | SHARED_SUBSCRIPTION_AVAILABLE => match r.u8()? {
                0 => Self::Bool(ident, false),
                1 => Self::Bool(ident, true),
                _ => return Err(invalid),
            },
            SERVER_KEEP_ALIVE | RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | TOPIC_ALIAS => {
                match (ident, r.u16()?) {
                    (RECEIVE_MAXIMUM, 0) => return Err(DecodeError::ReceiveMaximumZero),
                    (TOPIC_ALIAS, 0) => return Err(DecodeError::TopicAliasZero),
                    (_, v) => Self::U16(ident, v),
                }
            }
            MESSAGE_EXPIRY_INTERVAL
            | SESSION_EXPIRY_INTERVAL
            | WILL_DELAY_INTERVAL
            | MAXIMUM_PACKET_SIZE => match (ident, r.u32()?) {
                (MAXIMUM_PACKET_SIZE, 0) => return Err(DecodeError::MaximumPacketSizeZero),
                (_, v) => Self::U32(ident, v),
            },
            SUBSCRIPTION_IDENTIFIER => match r.var_int()? {
                0 => return Err(DecodeError::SubscriptionIdentifierZero),
                v => Self::VarInt(ident, v),
            },
            CONTENT_TYPE
            | RESPONSE_TOPIC
            | ASSIGNED_CLIENT_IDENTIFIER
            | AUTHENTICATION_METHOD
            | RESPONSE_INFORMATION
            | SERVER_REFERENCE
            | REASON_STRING => Self::Str(ident, r.string()?),
            CORRELATION_DATA | AUTHENTICATION_DATA => Self::Binary(ident, r.binary()?),
            USER_PROPERTY => Self::User(r.string()?, r.string()?),
            _ => return Err(DecodeError::UnknownProperty(ident)),
        })
    }
}

/// Reads a property section (length, then properties) for `context`,
/// handing each property to `apply`.
///
/// Rejects unknown identifiers, identifiers not allowed in the context, and
/// repetitions of non-repeatable ones. `apply` only sees allowed
/// identifiers; for any other it should return
/// [`DecodeError::PropertyNotAllowed`].
pub(crate) fn read_properties(
    r: &mut Reader,
    context: Context,
    mut apply: impl FnMut(Property) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let len = r.var_int()?;
    let len = usize::try_from(len).map_err(|_| DecodeError::UnexpectedEof)?;
    let mut p = Reader::new(r.take(len)?);
    let mut seen: u64 = 0;
    while !p.is_empty() {
        let raw = p.var_int()?;
        let ident = match u8::try_from(raw) {
            Ok(v) if v < 64 => v,
            _ => return Err(DecodeError::UnknownProperty(u8::MAX)),
        };
        let bit = 1u64 << ident;
        let prop = Property::read(ident, &mut p)?;
        if context.allowed() & bit == 0 {
            return Err(DecodeError::PropertyNotAllowed(ident));
        }
        if seen & bit != 0 && !context.repeatable(ident) {
            return Err(DecodeError::DuplicateProperty(ident));
        }
        seen |= bit;
        apply(prop)?;
    }
    Ok(())
}

/// A property set that can write itself (identifiers and values, without
/// the length prefix).
pub(crate) trait WriteProperties {
    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError>;
}

/// Length of the property section body.
pub(crate) fn properties_len(p: &impl WriteProperties) -> Result<usize, EncodeError> {
    let mut c = Counter::default();
    p.write(&mut c)?;
    Ok(c.0)
}

/// Writes a property section: its length, then the properties.
pub(crate) fn put_properties<S: Sink>(
    s: &mut S,
    p: &impl WriteProperties,
) -> Result<(), EncodeError> {
    let len = properties_len(p)?;
    s.put_var_int(u32::try_from(len).map_err(|_| EncodeError::PacketTooLarge)?)?;
    p.write(s)
}

pub(crate) fn put_byte<S: Sink>(s: &mut S, ident: u8, v: Option<u8>) {
    if let Some(v) = v {
        s.put_u8(ident);
        s.put_u8(v);
    }
}

pub(crate) fn put_bool<S: Sink>(s: &mut S, ident: u8, v: Option<bool>) {
    put_byte(s, ident, v.map(u8::from));
}

pub(crate) fn put_u16<S: Sink>(s: &mut S, ident: u8, v: Option<u16>) {
    if let Some(v) = v {
        s.put_u8(ident);
        s.put_u16(v);
    }
}

pub(crate) fn put_u32<S: Sink>(s: &mut S, ident: u8, v: Option<u32>) {
    if let Some(v) = v {
        s.put_u8(ident);
        s.put_u32(v);
    }
}

pub(crate) fn put_var_int<S: Sink>(
    s: &mut S,
    ident: u8,
    v: Option<u32>,
) -> Result<(), EncodeError> {
    if let Some(v) = v {
        s.put_u8(ident);
        s.put_var_int(v)?;
    }
    Ok(())
}

pub(crate) fn put_str<S: Sink>(
    s: &mut S,
    ident: u8,
    v: Option<&ByteStr>,
) -> Result<(), EncodeError> {
    if let Some(v) = v {
        s.put_u8(ident);
        s.put_str(v)?;
    }
    Ok(())
}

pub(crate) fn put_binary<S: Sink>(
    s: &mut S,
    ident: u8,
    v: Option<&Bytes>,
) -> Result<(), EncodeError> {
    if let Some(v) = v {
        s.put_u8(ident);
        s.put_binary(v)?;
    }
    Ok(())
}

pub(crate) fn put_user<S: Sink>(s: &mut S, props: &[UserProperty]) -> Result<(), EncodeError> {
    for (k, v) in props {
        s.put_u8(id::USER_PROPERTY);
        s.put_str(k)?;
        s.put_str(v)?;
    }
    Ok(())
}

impl AckProperties {
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut props = Self::default();
        read_properties(r, Context::Ack, |p| {
            match p {
                Property::Str(id::REASON_STRING, v) => props.reason_string = Some(v),
                Property::User(k, v) => props.user_properties.push((k, v)),
                other => return Err(not_allowed(&other)),
            }
            Ok(())
        })?;
        Ok(props)
    }
}

impl WriteProperties for AckProperties {
    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_str(s, id::REASON_STRING, self.reason_string.as_ref())?;
        put_user(s, &self.user_properties)
    }
}

/// The error for a property that reached a packet it does not belong to.
pub(crate) fn not_allowed(p: &Property) -> DecodeError {
    let ident = match p {
        Property::Byte(i, _)
        | Property::Bool(i, _)
        | Property::U16(i, _)
        | Property::U32(i, _)
        | Property::VarInt(i, _)
        | Property::Str(i, _)
        | Property::Binary(i, _) => *i,
        Property::User(..) => id::USER_PROPERTY,
    };
    DecodeError::PropertyNotAllowed(ident)
}
