//! The property every target checks of a packet it decoded: it re-encodes,
//! and the bytes decode, with a decoder in the same state, to the same
//! packet (decode(encode(p)) == p).

use bytes::BytesMut;
use girder_broker::codec::{encode, Decoder, Packet, ProtocolVersion};

/// Panics unless `packet`, decoded at `version` by a decoder like
/// `fresh()`, round-trips.
pub fn check(packet: &Packet, version: ProtocolVersion, fresh: impl FnOnce() -> Decoder) {
    let mut out = BytesMut::new();
    encode(packet, version, &mut out).expect("decoded packets re-encode");
    let again = fresh()
        .decode(&mut out)
        .expect("re-encoded packets decode")
        .expect("re-encoded packets are whole");
    assert_eq!(&again, packet, "decode(encode(p)) == p");
    assert!(out.is_empty(), "one packet re-encodes to one packet");
}
