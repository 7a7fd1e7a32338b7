//! Incremental decoding: the fixed header, the packet-size limit, and the
//! dispatch to each packet's body decoder.

use bytes::BytesMut;

use super::wire::{parse_var_int, Reader, VarInt};
use super::{
    Auth, ConnAck, Connect, DecodeError, Disconnect, Packet, PacketType, ProtocolVersion, PubAck,
    PubComp, PubRec, PubRel, Publish, ReasonCode, SubAck, Subscribe, UnsubAck, Unsubscribe,
};

/// Default maximum packet size: the largest the protocol can express
/// (remaining length 268,435,455 plus a five-byte fixed header).
pub const PROTOCOL_MAX_PACKET_SIZE: u32 = 268_435_460;

/// Per-connection decoder state: the negotiated protocol version and the
/// maximum packet size this side accepts.
///
/// A server-side decoder starts with no version ([`Decoder::new`]): the
/// first packet must be a CONNECT, which fixes the version. A client-side
/// decoder knows its version from the start ([`Decoder::with_version`]).
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Fixed once CONNECT has been decoded (or at construction for a client).
    version: Option<ProtocolVersion>,
    /// Version named by a CONNECT that failed to decode after its protocol
    /// level: it picks the format of the CONNACK reporting the error.
    attempted: Option<ProtocolVersion>,
    /// Whole packets larger than this are refused from their fixed header,
    /// before the body is buffered.
    max_packet_size: u32,
}

/// How to report a [`DecodeError`] to the peer before closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorReply {
    /// Send a CONNACK with this reason, in this version, then close (the
    /// CONNECT itself was bad). MQTT 3 has return codes for only a few
    /// reasons; for the others the reply is [`ErrorReply::Close`].
    ConnAck(ProtocolVersion, ReasonCode),
    /// Send a v5 DISCONNECT with this reason, then close.
    Disconnect(ReasonCode),
    /// Close the network connection without a reply (MQTT 3 after CONNECT).
    Close,
}

impl Decoder {
    /// A server-side decoder that expects a CONNECT first.
    pub fn new(max_packet_size: u32) -> Self {
        Self {
            version: None,
            attempted: None,
            max_packet_size,
        }
    }

    /// A decoder for a connection whose version is already known.
    pub fn with_version(version: ProtocolVersion, max_packet_size: u32) -> Self {
        Self {
            version: Some(version),
            attempted: None,
            max_packet_size,
        }
    }

    /// The negotiated protocol version, once known.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// The maximum packet size enforced.
    pub fn max_packet_size(&self) -> u32 {
        self.max_packet_size
    }

    /// Changes the maximum packet size (e.g. per listener after CONNECT).
    pub fn set_max_packet_size(&mut self, max_packet_size: u32) {
        self.max_packet_size = max_packet_size;
    }

    /// Decodes the next packet from the front of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed; `buf` is left untouched. On `Ok(Some(_))` the packet's bytes are removed from `buf`;
    /// strings and payloads of the packet share its memory. After an error
    /// the connection must be closed (see [`Decoder::error_reply`]).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let Some(header) = self.check(buf)? else {
            return Ok(None);
        };
        let frame = buf.split_to(header.total_len).freeze();
        let mut body = Reader::new(frame.slice(header.header_len..));
        self.parse(header.packet_type, header.flags, &mut body)
            .map(Some)
    }

    /// The cheap check: parses the fixed header, refuses a bad packet type,
    /// bad flags, or an oversized packet from the header alone, and tells
    /// whether the whole packet is buffered. Allocates nothing.
    fn check(&self, buf: &BytesMut) -> Result<Option<FixedHeader>, DecodeError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let packet_type = PacketType::from_nibble(first >> 4)
            .ok_or(DecodeError::InvalidPacketType(first >> 4))?;
        match self.version {
            None if packet_type != PacketType::Connect => {
                return Err(DecodeError::FirstPacketNotConnect)
            }
            Some(_) if packet_type == PacketType::Connect => {
                return Err(DecodeError::DuplicateConnect)
            }
            Some(v) if packet_type == PacketType::Auth && !v.is_v5() => {
                return Err(DecodeError::InvalidPacketType(15))
            }
            _ => {}
        }
        let flags = first & 0x0F;
        if let Some(expected) = packet_type.fixed_flags() {
            if flags != expected {
                return Err(DecodeError::InvalidFixedHeaderFlags {
                    packet: packet_type,
                    flags,
                });
            }
        }
        let (remaining, len_bytes) = match parse_var_int(&buf[1..]) {
            VarInt::Value { value, len } => (value, len),
            VarInt::Incomplete => return Ok(None),
            VarInt::Malformed => return Err(DecodeError::MalformedRemainingLength),
        };
        let header_len = 1 + len_bytes;
        // u32 -> usize cannot truncate on the 32/64-bit targets we build for.
        let total_len = header_len + remaining as usize;
        if total_len > self.max_packet_size as usize {
            return Err(DecodeError::PacketTooLarge {
                size: total_len,
                max: self.max_packet_size,
            });
        }
        if buf.len() < total_len {
            // No reservation for the announced length: memory follows the
            // bytes that actually arrive, so a peer that announces a large
            // packet and stalls costs nothing.
            return Ok(None);
        }
        Ok(Some(FixedHeader {
            packet_type,
            flags,
            header_len,
            total_len,
        }))
    }

    fn parse(
        &mut self,
        packet_type: PacketType,
        flags: u8,
        r: &mut Reader,
    ) -> Result<Packet, DecodeError> {
        let Some(version) = self.version else {
            // `check` let only a CONNECT through.
            let connect = Connect::decode(r, &mut self.attempted)?;
            self.version = Some(connect.protocol);
            return Ok(Packet::Connect(Box::new(connect)));
        };
        Ok(match packet_type {
            PacketType::Connect => return Err(DecodeError::DuplicateConnect),
            PacketType::ConnAck => Packet::ConnAck(Box::new(ConnAck::decode(r, version)?)),
            PacketType::Publish => Packet::Publish(Publish::decode(flags, r, version)?),
            PacketType::PubAck => Packet::PubAck(PubAck::decode(r, version)?),
            PacketType::PubRec => Packet::PubRec(PubRec::decode(r, version)?),
            PacketType::PubRel => Packet::PubRel(PubRel::decode(r, version)?),
            PacketType::PubComp => Packet::PubComp(PubComp::decode(r, version)?),
            PacketType::Subscribe => Packet::Subscribe(Subscribe::decode(r, version)?),
            PacketType::SubAck => Packet::SubAck(SubAck::decode(r, version)?),
            PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode(r, version)?),
            PacketType::UnsubAck => Packet::UnsubAck(UnsubAck::decode(r, version)?),
            PacketType::PingReq => {
                r.finish()?;
                Packet::PingReq
            }
            PacketType::PingResp => {
                r.finish()?;
                Packet::PingResp
            }
            PacketType::Disconnect => Packet::Disconnect(Disconnect::decode(r, version)?),
            PacketType::Auth => Packet::Auth(Auth::decode(r)?),
        })
    }

    /// How to tell the peer about `error` before closing the connection.
    ///
    /// Before CONNECT completed: a CONNACK (v5: any reason; v3: only the
    /// reasons with a return code, e.g. 0x01 unacceptable protocol
    /// version, 0x02 identifier rejected). An unknown protocol level is
    /// answered in the v3.1.1 format (MQTT-3.1.2-2 / v3.1.1 MQTT-3.1.2-2).
    /// After CONNECT: a DISCONNECT in v5, a silent close in v3.
    pub fn error_reply(&self, error: &DecodeError) -> ErrorReply {
        let reason = error.reason_code();
        match self.version {
            Some(ProtocolVersion::V5) => ErrorReply::Disconnect(reason),
            Some(_) => ErrorReply::Close,
            None => match self.attempted {
                Some(ProtocolVersion::V5) => ErrorReply::ConnAck(ProtocolVersion::V5, reason),
                Some(v3) if has_v3_return_code(reason) => ErrorReply::ConnAck(v3, reason),
                Some(_) => ErrorReply::Close,
                None if reason == ReasonCode::UnsupportedProtocolVersion => {
                    ErrorReply::ConnAck(ProtocolVersion::V3_1_1, reason)
                }
                None => ErrorReply::Close,
            },
        }
    }
}

fn has_v3_return_code(reason: ReasonCode) -> bool {
    matches!(
        reason,
        ReasonCode::UnsupportedProtocolVersion | ReasonCode::ClientIdentifierNotValid
    )
}

/// What the fixed header says about the packet at the front of a buffer.
#[derive(Debug, Clone, Copy)]
struct FixedHeader {
    packet_type: PacketType,
    flags: u8,
    header_len: usize,
    total_len: usize,
}

/// Decodes the next packet from `buf` with `decoder` (see
/// [`Decoder::decode`]).
pub fn decode(buf: &mut BytesMut, decoder: &mut Decoder) -> Result<Option<Packet>, DecodeError> {
    decoder.decode(buf)
}
