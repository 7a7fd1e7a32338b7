//! AUTH (section 3.15): v5 extended authentication.

use std::fmt;

use bytes::Bytes;

use super::properties::{
    id, not_allowed, put_binary, put_properties, put_str, put_user, read_properties, Context,
    Property, WriteProperties,
};
use super::wire::{Reader, Sink};
use super::{ByteStr, DecodeError, EncodeError, PacketType, ReasonCode, UserProperty};

/// AUTH: a step of an extended authentication exchange (v5 only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Auth {
    /// Success, Continue authentication or Re-authenticate.
    pub reason_code: ReasonCode,
    /// Properties.
    pub properties: AuthProperties,
}

/// AUTH properties (section 3.15.2.2).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthProperties {
    /// Extended authentication method.
    pub authentication_method: Option<ByteStr>,
    /// Extended authentication data.
    pub authentication_data: Option<Bytes>,
    /// Human-readable diagnostic.
    pub reason_string: Option<ByteStr>,
    /// User properties, in order.
    pub user_properties: Vec<UserProperty>,
}

impl fmt::Debug for AuthProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthProperties")
            .field("authentication_method", &self.authentication_method)
            .field(
                "authentication_data",
                &self.authentication_data.as_ref().map(|_| "<REDACTED>"),
            )
            .field("reason_string", &self.reason_string)
            .field("user_properties", &self.user_properties)
            .finish()
    }
}

impl Auth {
    /// Reason code and properties, both optional (section 3.15.2.1).
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut packet = Self::default();
        if !r.is_empty() {
            let code = r.u8()?;
            packet.reason_code = ReasonCode::from_u8(code)
                .filter(|c| c.is_valid_for(PacketType::Auth))
                .ok_or(DecodeError::InvalidReasonCode {
                    packet: PacketType::Auth,
                    code,
                })?;
            let p = &mut packet.properties;
            if r.is_empty() {
                return Ok(packet);
            }
            read_properties(r, Context::Auth, |prop| {
                match prop {
                    Property::Str(id::AUTHENTICATION_METHOD, v) => {
                        p.authentication_method = Some(v)
                    }
                    Property::Binary(id::AUTHENTICATION_DATA, v) => p.authentication_data = Some(v),
                    Property::Str(id::REASON_STRING, v) => p.reason_string = Some(v),
                    Property::User(k, v) => p.user_properties.push((k, v)),
                    other => return Err(not_allowed(&other)),
                }
                Ok(())
            })?;
            if p.authentication_data.is_some() && p.authentication_method.is_none() {
                return Err(DecodeError::AuthDataWithoutMethod);
            }
        }
        r.finish()?;
        Ok(packet)
    }

    pub(crate) fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        if self.reason_code != ReasonCode::Success || self.properties != AuthProperties::default() {
            s.put_u8(self.reason_code.as_u8());
            put_properties(s, &self.properties)?;
        }
        Ok(())
    }
}

impl WriteProperties for AuthProperties {
    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_str(
            s,
            id::AUTHENTICATION_METHOD,
            self.authentication_method.as_ref(),
        )?;
        put_binary(
            s,
            id::AUTHENTICATION_DATA,
            self.authentication_data.as_ref(),
        )?;
        put_str(s, id::REASON_STRING, self.reason_string.as_ref())?;
        put_user(s, &self.user_properties)
    }
}
