//! PUBACK, PUBREC, PUBREL and PUBCOMP (sections 3.4 to 3.7): the four
//! publish acknowledgements share one layout.

use super::properties::put_properties;
use super::wire::{Reader, Sink};
use super::{AckProperties, DecodeError, EncodeError, PacketType, ProtocolVersion, ReasonCode};

macro_rules! pub_ack {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            /// The packet identifier of the acknowledged exchange.
            pub packet_id: u16,
            /// v5 reason code (v3 has none: always Success there).
            pub reason_code: ReasonCode,
            /// v5 properties.
            pub properties: AckProperties,
        }

        impl $name {
            pub(crate) fn decode(
                r: &mut Reader,
                version: ProtocolVersion,
            ) -> Result<Self, DecodeError> {
                let (packet_id, reason_code, properties) =
                    decode_ack(r, version, PacketType::$name)?;
                Ok(Self {
                    packet_id,
                    reason_code,
                    properties,
                })
            }

            pub(crate) fn write<S: Sink>(
                &self,
                version: ProtocolVersion,
                s: &mut S,
            ) -> Result<(), EncodeError> {
                write_ack(s, version, self.packet_id, self.reason_code, &self.properties)
            }

            /// A successful acknowledgement without properties.
            pub fn new(packet_id: u16) -> Self {
                Self {
                    packet_id,
                    reason_code: ReasonCode::Success,
                    properties: AckProperties::default(),
                }
            }
        }
    };
}

pub_ack!(
    /// PUBACK: acknowledges a QoS 1 PUBLISH.
    PubAck
);
pub_ack!(
    /// PUBREC: first acknowledgement of a QoS 2 PUBLISH.
    PubRec
);
pub_ack!(
    /// PUBREL: releases a QoS 2 message after PUBREC.
    PubRel
);
pub_ack!(
    /// PUBCOMP: completes a QoS 2 exchange.
    PubComp
);

/// Packet identifier, then in v5 an optional reason code and optional
/// properties (sections 3.4.2.1 and 3.4.2.2: both may be omitted when the
/// reason is Success without properties).
fn decode_ack(
    r: &mut Reader,
    version: ProtocolVersion,
    packet: PacketType,
) -> Result<(u16, ReasonCode, AckProperties), DecodeError> {
    let packet_id = r.packet_id()?;
    let mut reason_code = ReasonCode::Success;
    let mut properties = AckProperties::default();
    if version.is_v5() && !r.is_empty() {
        let code = r.u8()?;
        reason_code = ReasonCode::from_u8(code)
            .filter(|c| c.is_valid_for(packet))
            .ok_or(DecodeError::InvalidReasonCode { packet, code })?;
        if !r.is_empty() {
            properties = AckProperties::decode(r)?;
        }
    }
    r.finish()?;
    Ok((packet_id, reason_code, properties))
}

fn write_ack<S: Sink>(
    s: &mut S,
    version: ProtocolVersion,
    packet_id: u16,
    reason_code: ReasonCode,
    properties: &AckProperties,
) -> Result<(), EncodeError> {
    if packet_id == 0 {
        return Err(EncodeError::InvalidPacketId);
    }
    s.put_u16(packet_id);
    if version.is_v5() && (reason_code != ReasonCode::Success || !properties.is_empty()) {
        s.put_u8(reason_code.as_u8());
        if !properties.is_empty() {
            put_properties(s, properties)?;
        }
    }
    Ok(())
}
