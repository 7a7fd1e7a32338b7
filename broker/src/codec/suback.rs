//! SUBACK (section 3.9).

use super::properties::put_properties;
use super::wire::{Reader, Sink};
use super::{AckProperties, DecodeError, EncodeError, PacketType, ProtocolVersion, ReasonCode};

/// SUBACK: one reason code per topic filter of the SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The packet identifier of the SUBSCRIBE.
    pub packet_id: u16,
    /// Granted QoS or failure per filter, in order; v3 maps failures to
    /// 0x80 ([`ReasonCode::to_v3_suback`]).
    pub reason_codes: Vec<ReasonCode>,
    /// v5 properties.
    pub properties: AckProperties,
}

impl SubAck {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = if version.is_v5() {
            AckProperties::decode(r)?
        } else {
            AckProperties::default()
        };
        let reason_codes = r
            .rest()
            .iter()
            .map(|&code| {
                let reason = if version.is_v5() {
                    ReasonCode::from_u8(code).filter(|c| c.is_valid_for(PacketType::SubAck))
                } else {
                    ReasonCode::from_v3_suback(code)
                };
                reason.ok_or(DecodeError::InvalidReasonCode {
                    packet: PacketType::SubAck,
                    code,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            packet_id,
            reason_codes,
            properties,
        })
    }

    pub(crate) fn write<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if self.packet_id == 0 {
            return Err(EncodeError::InvalidPacketId);
        }
        s.put_u16(self.packet_id);
        if version.is_v5() {
            put_properties(s, &self.properties)?;
        }
        for code in &self.reason_codes {
            s.put_u8(if version.is_v5() {
                code.as_u8()
            } else {
                code.to_v3_suback()
            });
        }
        Ok(())
    }
}
