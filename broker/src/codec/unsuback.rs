//! UNSUBACK (section 3.11).

use super::properties::put_properties;
use super::wire::{Reader, Sink};
use super::{AckProperties, DecodeError, EncodeError, PacketType, ProtocolVersion, ReasonCode};

/// UNSUBACK: acknowledges an UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// The packet identifier of the UNSUBSCRIBE.
    pub packet_id: u16,
    /// v5: one reason code per topic filter. v3 has none: empty when
    /// decoded from v3, ignored by the v3 encoder.
    pub reason_codes: Vec<ReasonCode>,
    /// v5 properties.
    pub properties: AckProperties,
}

impl UnsubAck {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        if !version.is_v5() {
            r.finish()?;
            return Ok(Self {
                packet_id,
                reason_codes: Vec::new(),
                properties: AckProperties::default(),
            });
        }
        let properties = AckProperties::decode(r)?;
        let reason_codes = r
            .rest()
            .iter()
            .map(|&code| {
                ReasonCode::from_u8(code)
                    .filter(|c| c.is_valid_for(PacketType::UnsubAck))
                    .ok_or(DecodeError::InvalidReasonCode {
                        packet: PacketType::UnsubAck,
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
            for code in &self.reason_codes {
                s.put_u8(code.as_u8());
            }
        }
        Ok(())
    }
}
