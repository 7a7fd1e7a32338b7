//! The MQTT codec: packets of MQTT 3.1, 3.1.1 and 5.0 to and from bytes.
//!
//! Pure and sans-I/O: no sockets, no runtime. One packet model serves every
//! version (the v5 superset; see [`Packet`]).
//!
//! # Layout
//!
//! - `types`: [`ProtocolVersion`], [`QoS`], [`ByteStr`], subscription options.
//! - `reason`: [`ReasonCode`] and its v3 mappings.
//! - `error`: [`DecodeError`], [`EncodeError`].
//! - `packet`: [`Packet`], [`PacketType`].
//! - `properties`: [`AckProperties`] and the v5 property reader/writer.
//! - one file per packet type: `connect`, `connack`, `publish`, `ack`
//!   (PUBACK/PUBREC/PUBREL/PUBCOMP), `subscribe`, `suback`, `unsubscribe`,
//!   `unsuback`, `disconnect`, `auth`.

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
pub use encoder::{encode, encoded_len, EncodedPublish};
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
