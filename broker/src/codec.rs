//! The MQTT codec: packets of MQTT 3.1, 3.1.1 and 5.0 to and from bytes.
//!
//! Pure and sans-I/O: no sockets, no runtime, only `bytes` and `thiserror`.
//! One packet model serves every version (the v5 superset, see [`Packet`]):
//! the v3 encoders leave out properties and map reason codes to v3 return
//! codes.
//!
//! ```text
//!  socket bytes ─► BytesMut ─► Decoder::decode ─► Ok(Some(Packet)) ─► channel
//!                               │ fixed header: type, flags, size limit
//!                               │ (refused before the body is buffered)
//!                               └ Ok(None): wait for more bytes
//!  channel ─► Packet ─► encode(packet, version, &mut BytesMut) ─► socket
//!  router  ─► Publish ─► EncodedPublish (once per version) ─► N subscribers
//! ```
//!
//! ```
//! use bytes::BytesMut;
//! use girder_broker::codec::{encode, Decoder, Packet, ProtocolVersion, PubAck};
//!
//! // A server-side decoder: the first packet must be CONNECT.
//! let mut decoder = Decoder::new(1024 * 1024);
//! let mut buf = BytesMut::from(&b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00\x40\x02"[..]);
//! let Ok(Some(Packet::Connect(connect))) = decoder.decode(&mut buf) else { panic!() };
//! assert_eq!(connect.keep_alive, 60);
//! assert_eq!(decoder.version(), Some(ProtocolVersion::V3_1_1));
//! // Half a PUBACK: more bytes are needed.
//! assert_eq!(decoder.decode(&mut buf), Ok(None));
//! buf.extend_from_slice(b"\x00\x07");
//! assert_eq!(decoder.decode(&mut buf), Ok(Some(Packet::PubAck(PubAck::new(7)))));
//!
//! let mut out = BytesMut::new();
//! encode(&Packet::PubAck(PubAck::new(7)), ProtocolVersion::V3_1_1, &mut out).unwrap();
//! assert_eq!(&out[..], b"\x40\x02\x00\x07");
//! ```
//!
//! Errors are [`DecodeError`]s named after the spec's conformance
//! statements; [`Decoder::error_reply`] says whether to answer with a
//! CONNACK, a DISCONNECT or a bare close, and [`DecodeError::reason_code`]
//! gives the reason.
//!
//! # Layout
//!
//! - `types`: [`ProtocolVersion`], [`QoS`], [`ByteStr`], subscription options.
//! - `reason`: [`ReasonCode`] and its v3 mappings.
//! - `error`: [`DecodeError`], [`EncodeError`].
//! - `packet`: [`Packet`], [`PacketType`].
//! - `decoder`: [`Decoder`] (framing, size limit, dispatch), [`ErrorReply`].
//! - `encoder`: [`encode`], [`encoded_len`], [`trim_to_size`],
//!   [`EncodedPublish`].
//! - `wire`: the zero-copy reader and the writing/counting sink.
//! - `properties`: v5 property identifiers, the property reader/writer,
//!   [`AckProperties`].
//! - one file per packet type: `connect`, `connack`, `publish`, `ack`
//!   (PUBACK/PUBREC/PUBREL/PUBCOMP), `subscribe`, `suback`, `unsubscribe`,
//!   `unsuback`, `disconnect`, `auth`.
//! - tests: `tests` (byte literals), `malformed_tests` (error table),
//!   `proptests` (round trips, split streams, arbitrary bytes); fuzz targets
//!   in `broker/fuzz`.
//!
//! [`Packet`]: crate::codec::Packet
//! [`DecodeError`]: crate::codec::DecodeError
//! [`Decoder::error_reply`]: crate::codec::Decoder::error_reply
//! [`DecodeError::reason_code`]: crate::codec::DecodeError::reason_code
//! [`ProtocolVersion`]: crate::codec::ProtocolVersion
//! [`QoS`]: crate::codec::QoS
//! [`ByteStr`]: crate::codec::ByteStr
//! [`ReasonCode`]: crate::codec::ReasonCode
//! [`EncodeError`]: crate::codec::EncodeError
//! [`PacketType`]: crate::codec::PacketType
//! [`Decoder`]: crate::codec::Decoder
//! [`ErrorReply`]: crate::codec::ErrorReply
//! [`encode`]: crate::codec::encode
//! [`encoded_len`]: crate::codec::encoded_len
//! [`trim_to_size`]: crate::codec::trim_to_size
//! [`EncodedPublish`]: crate::codec::EncodedPublish
//! [`AckProperties`]: crate::codec::AckProperties

mod ack;
mod auth;
mod connack;
mod connect;
mod decoder;
mod disconnect;
mod encoder;
mod error;
mod packet;
mod properties;
mod publish;
mod reason;
mod suback;
mod subscribe;
mod types;
mod unsuback;
mod unsubscribe;
mod wire;

pub use ack::{PubAck, PubComp, PubRec, PubRel};
pub use auth::{Auth, AuthProperties};
pub use connack::{ConnAck, ConnAckProperties};
pub use connect::{Connect, ConnectProperties, LastWill, WillProperties};
pub use decoder::{decode, Decoder, ErrorReply, PROTOCOL_MAX_PACKET_SIZE};
pub use disconnect::{Disconnect, DisconnectProperties};
pub use encoder::{encode, encoded_len, trim_to_size, EncodedPublish};
pub use error::{DecodeError, EncodeError};
pub use packet::{Packet, PacketType};
pub use properties::AckProperties;
pub use publish::{Publish, PublishProperties};
pub use reason::ReasonCode;
pub use suback::SubAck;
pub use subscribe::{Subscribe, SubscribeProperties};
pub use types::{
    ByteStr, PayloadFormat, ProtocolVersion, QoS, RetainHandling, SubscriptionOptions, UserProperty,
};
pub use unsuback::UnsubAck;
pub use unsubscribe::{Unsubscribe, UnsubscribeProperties};

#[cfg(test)]
mod malformed_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
