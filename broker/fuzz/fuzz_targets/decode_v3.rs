//! MQTT 3.1.1 framing: arbitrary bytes after CONNECT. The decoder never panics,
//! and every packet that decodes round-trips (see `round_trip.rs`).
#![no_main]

use bytes::BytesMut;
use girder_broker::codec::{Decoder, ProtocolVersion};
use libfuzzer_sys::fuzz_target;

#[path = "round_trip.rs"]
mod round_trip;

fuzz_target!(|data: &[u8]| {
    let version = ProtocolVersion::V3_1_1;
    let mut decoder = Decoder::with_version(version, 4096);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(packet)) = decoder.decode(&mut buf) {
        round_trip::check(&packet, version, || Decoder::with_version(version, 4096));
    }
});
