//! DISCONNECT (section 3.14).

use super::properties::{
    id, not_allowed, put_properties, put_str, put_u32, put_user, read_properties, Context,
    Property, WriteProperties,
};
use super::wire::{Reader, Sink};
use super::{
    ByteStr, DecodeError, EncodeError, PacketType, ProtocolVersion, ReasonCode, UserProperty,
};

/// DISCONNECT: the last packet of a connection (v5: from either side).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disconnect {
    /// v5 reason code; 0x00 is Normal disconnection.
    pub reason_code: ReasonCode,
    /// v5 properties.
    pub properties: DisconnectProperties,
}

/// v5 DISCONNECT properties (section 3.14.2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisconnectProperties {
    /// New session expiry interval (client to server only).
    pub session_expiry_interval: Option<u32>,
    /// Human-readable diagnostic.
    pub reason_string: Option<ByteStr>,
    /// User properties, in order.
    pub user_properties: Vec<UserProperty>,
    /// Another server the client may use (server to client).
    pub server_reference: Option<ByteStr>,
}

impl Disconnect {
    /// v3: an empty body. v5: reason code and properties, both optional
    /// (section 3.14.2.1).
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let mut packet = Self::default();
        if version.is_v5() && !r.is_empty() {
            let code = r.u8()?;
            packet.reason_code = ReasonCode::from_u8(code)
                .filter(|c| c.is_valid_for(PacketType::Disconnect))
                .ok_or(DecodeError::InvalidReasonCode {
                    packet: PacketType::Disconnect,
                    code,
                })?;
            if !r.is_empty() {
                let p = &mut packet.properties;
                read_properties(r, Context::Disconnect, |prop| {
                    match prop {
                        Property::U32(id::SESSION_EXPIRY_INTERVAL, v) => {
                            p.session_expiry_interval = Some(v)
                        }
                        Property::Str(id::REASON_STRING, v) => p.reason_string = Some(v),
                        Property::User(k, v) => p.user_properties.push((k, v)),
                        Property::Str(id::SERVER_REFERENCE, v) => p.server_reference = Some(v),
                        other => return Err(not_allowed(&other)),
                    }
                    Ok(())
                })?;
            }
        }
        r.finish()?;
        Ok(packet)
    }

    pub(crate) fn write<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        let has_properties = self.properties != DisconnectProperties::default();
        if version.is_v5() && (self.reason_code != ReasonCode::Success || has_properties) {
            s.put_u8(self.reason_code.as_u8());
            if has_properties {
                put_properties(s, &self.properties)?;
            }
        }
        Ok(())
    }
}

impl WriteProperties for DisconnectProperties {
    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_u32(s, id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        put_str(s, id::REASON_STRING, self.reason_string.as_ref())?;
        put_user(s, &self.user_properties)?;
        put_str(s, id::SERVER_REFERENCE, self.server_reference.as_ref())
    }
}
