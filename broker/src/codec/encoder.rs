//! Encoding: [`encode`], [`encoded_len`], and [`EncodedPublish`], a PUBLISH
//! frame encoded once and shared among subscribers.

use bytes::{Bytes, BytesMut};

use super::wire::{var_int_len, Counter, Sink, MAX_VAR_INT};
use super::{
    ByteStr, EncodeError, Packet, PacketType, ProtocolVersion, PubAck, PubComp, PubRec, PubRel,
    Publish, QoS, SubAck, UnsubAck, UserProperty,
};

/// Writes the body (everything after the fixed header) of `packet`.
fn write_body<S: Sink>(
    packet: &Packet,
    version: ProtocolVersion,
    s: &mut S,
) -> Result<(), EncodeError> {
    match packet {
        Packet::Connect(p) => p.write(version, s),
        Packet::ConnAck(p) => p.write(version, s),
        Packet::Publish(p) => p.write(version, s).map(drop),
        Packet::PubAck(p) => p.write(version, s),
        Packet::PubRec(p) => p.write(version, s),
        Packet::PubRel(p) => p.write(version, s),
        Packet::PubComp(p) => p.write(version, s),
        Packet::Subscribe(p) => p.write(version, s),
        Packet::SubAck(p) => p.write(version, s),
        Packet::Unsubscribe(p) => p.write(version, s),
        Packet::UnsubAck(p) => p.write(version, s),
        Packet::PingReq | Packet::PingResp => Ok(()),
        Packet::Disconnect(p) => p.write(version, s),
        Packet::Auth(p) if version.is_v5() => p.write(s),
        Packet::Auth(_) => Err(EncodeError::UnsupportedInVersion(PacketType::Auth)),
    }
}

fn first_byte(packet: &Packet) -> u8 {
    let packet_type = packet.packet_type();
    let flags = match packet {
        Packet::Publish(p) => p.flags(),
        _ => packet_type.fixed_flags().unwrap_or(0),
    };
    (packet_type as u8) << 4 | flags
}

fn body_len(packet: &Packet, version: ProtocolVersion) -> Result<u32, EncodeError> {
    let mut counter = Counter::default();
    write_body(packet, version, &mut counter)?;
    match u32::try_from(counter.0) {
        Ok(len) if len <= MAX_VAR_INT => Ok(len),
        _ => Err(EncodeError::PacketTooLarge),
    }
}

/// The size of `packet` on the wire in `version`, fixed header included:
/// the figure to compare with the peer's Maximum Packet Size (v5 MQTT-3.1.2-24)
/// before sending, dropping reason strings and user properties where the
/// spec allows it.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> Result<usize, EncodeError> {
    let body = body_len(packet, version)?;
    Ok(1 + var_int_len(body) + body as usize)
}

/// Appends `packet`, encoded for `version`, to `buf`.
///
/// The v3 encoders leave out what v3 cannot carry: properties, and reason
/// codes other than the v3 return codes they map to. A CONNECT is encoded
/// with the protocol name and level of `version`. On error nothing is
/// written.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let body = body_len(packet, version)?;
    buf.reserve(1 + var_int_len(body) + body as usize);
    buf.put_u8(first_byte(packet));
    buf.put_var_int(body)?;
    write_body(packet, version, buf)
}

/// A PUBLISH encoded once, to be written to many subscribers that share a
/// protocol version (and QoS, retain flag and properties).
///
/// A QoS 0 frame is shared as is ([`EncodedPublish::frame`]). A QoS 1/2
/// frame needs each subscriber's packet identifier:
/// [`EncodedPublish::with_packet_id`] copies the frame and patches it, and
/// [`EncodedPublish::parts_with_packet_id`] copies only the head.
#[derive(Debug, Clone)]
pub struct EncodedPublish {
    frame: Bytes,
    packet_id_offset: Option<usize>,
}

impl EncodedPublish {
    /// Encodes `publish` for `version`. For QoS 1/2 `publish.packet_id`
    /// must be set (any non-zero value; it is replaced per subscriber).
    pub fn new(publish: &Publish, version: ProtocolVersion) -> Result<Self, EncodeError> {
        let mut counter = Counter::default();
        publish.write(version, &mut counter)?;
        let body = u32::try_from(counter.0)
            .ok()
            .filter(|&len| len <= MAX_VAR_INT)
            .ok_or(EncodeError::PacketTooLarge)?;
        let header_len = 1 + var_int_len(body);
        let mut buf = BytesMut::with_capacity(header_len + body as usize);
        buf.put_u8((PacketType::Publish as u8) << 4 | publish.flags());
        buf.put_var_int(body)?;
        let offset = publish.write(version, &mut buf)?;
        Ok(Self {
            frame: buf.freeze(),
            packet_id_offset: offset.map(|o| header_len + o),
        })
    }

    /// The encoded frame, with the packet identifier it was encoded with.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// The QoS of the encoded message.
    pub fn qos(&self) -> QoS {
        QoS::from_bits((self.frame[0] >> 1) & 0b11).unwrap_or(QoS::AtMostOnce)
    }

    /// Where the two packet identifier bytes start in the frame (QoS 1/2).
    pub fn packet_id_offset(&self) -> Option<usize> {
        self.packet_id_offset
    }

    /// The frame for one subscriber: shared as is for QoS 0; for QoS 1/2 a
    /// copy with `packet_id` patched in and the DUP flag set as given.
    pub fn with_packet_id(&self, packet_id: u16, dup: bool) -> Result<Bytes, EncodeError> {
        let Some(offset) = self.packet_id_offset else {
            return Ok(self.frame.clone());
        };
        if packet_id == 0 {
            return Err(EncodeError::InvalidPacketId);
        }
        let mut copy = BytesMut::from(&self.frame[..]);
        patch(&mut copy, offset, packet_id, dup);
        Ok(copy.freeze())
    }

    /// The length of the frame on the wire.
    pub fn len(&self) -> usize {
        self.frame.len()
    }

    /// Always false: a PUBLISH frame has at least its fixed header.
    pub fn is_empty(&self) -> bool {
        self.frame.is_empty()
    }

    /// Appends the frame for one subscriber to `buf`: copied as is for QoS
    /// 0; for QoS 1/2 with `packet_id` and the DUP flag patched in place, so
    /// that a subscriber costs one copy into its write buffer and no
    /// allocation of its own.
    pub fn write_to(
        &self,
        buf: &mut BytesMut,
        packet_id: Option<u16>,
        dup: bool,
    ) -> Result<(), EncodeError> {
        match (self.packet_id_offset, packet_id) {
            (None, None) => buf.extend_from_slice(&self.frame),
            (Some(offset), Some(id)) if id != 0 => {
                let start = buf.len();
                buf.extend_from_slice(&self.frame);
                patch(&mut buf[start..], offset, id, dup);
            }
            _ => return Err(EncodeError::InvalidPacketId),
        }
        Ok(())
    }

    /// The frame for one subscriber as two parts to write in order (e.g.
    /// with a vectored write): a small patched copy of the head up to and
    /// including the packet identifier, and the shared rest (properties and
    /// payload), so that a large QoS 1/2 payload is never copied. For QoS 0
    /// the head is the whole shared frame and the rest is empty.
    pub fn parts_with_packet_id(
        &self,
        packet_id: u16,
        dup: bool,
    ) -> Result<[Bytes; 2], EncodeError> {
        let Some(offset) = self.packet_id_offset else {
            return Ok([self.frame.clone(), Bytes::new()]);
        };
        if packet_id == 0 {
            return Err(EncodeError::InvalidPacketId);
        }
        let mut head = BytesMut::from(&self.frame[..offset + 2]);
        patch(&mut head, offset, packet_id, dup);
        Ok([head.freeze(), self.frame.slice(offset + 2..)])
    }
}

/// Sets the DUP flag and the packet identifier of an encoded PUBLISH.
fn patch(frame: &mut [u8], offset: usize, packet_id: u16, dup: bool) {
    frame[0] = if dup {
        frame[0] | 0b1000
    } else {
        frame[0] & !0b1000
    };
    frame[offset..offset + 2].copy_from_slice(&packet_id.to_be_bytes());
}

/// Encoded size of `packet` after dropping, if it exceeds `max`, the
/// properties the spec lets a sender drop to respect the peer's Maximum
/// Packet Size: the reason string, then the user properties (v5
/// MQTT-3.2.2-19/20, MQTT-3.4.2-2/3 and alike for every acknowledgement,
/// DISCONNECT and AUTH).
///
/// PUBLISH, CONNECT, SUBSCRIBE and UNSUBSCRIBE are never altered: a PUBLISH
/// that is still too large must be discarded (MQTT-3.1.2-25). Compare the
/// returned size with `max` to decide.
pub fn trim_to_size(
    packet: &mut Packet,
    version: ProtocolVersion,
    max: u32,
) -> Result<usize, EncodeError> {
    let max = max as usize;
    let len = encoded_len(packet, version)?;
    if len <= max {
        return Ok(len);
    }
    match droppable(packet) {
        Some((reason_string, _)) => *reason_string = None,
        None => return Ok(len),
    }
    let len = encoded_len(packet, version)?;
    if len <= max {
        return Ok(len);
    }
    if let Some((_, user_properties)) = droppable(packet) {
        user_properties.clear();
    }
    encoded_len(packet, version)
}

/// The reason string and user properties of a packet that may drop them.
fn droppable(packet: &mut Packet) -> Option<(&mut Option<ByteStr>, &mut Vec<UserProperty>)> {
    match packet {
        Packet::ConnAck(p) => Some((
            &mut p.properties.reason_string,
            &mut p.properties.user_properties,
        )),
        Packet::PubAck(PubAck { properties, .. })
        | Packet::PubRec(PubRec { properties, .. })
        | Packet::PubRel(PubRel { properties, .. })
        | Packet::PubComp(PubComp { properties, .. })
        | Packet::SubAck(SubAck { properties, .. })
        | Packet::UnsubAck(UnsubAck { properties, .. }) => Some((
            &mut properties.reason_string,
            &mut properties.user_properties,
        )),
        Packet::Disconnect(p) => Some((
            &mut p.properties.reason_string,
            &mut p.properties.user_properties,
        )),
        Packet::Auth(p) => Some((
            &mut p.properties.reason_string,
            &mut p.properties.user_properties,
        )),
        Packet::Connect(_)
        | Packet::Publish(_)
        | Packet::Subscribe(_)
        | Packet::Unsubscribe(_)
        | Packet::PingReq
        | Packet::PingResp => None,
    }
}
