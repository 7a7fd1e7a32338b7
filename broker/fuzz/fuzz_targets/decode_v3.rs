//! MQTT 3.1.1 framing: arbitrary bytes after CONNECT. Every packet that
//! decodes must re-encode, and the decoder must never panic.
#![no_main]

use bytes::BytesMut;
use girder_broker::codec::{encode, Decoder, ProtocolVersion};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::with_version(ProtocolVersion::V3_1_1, 4096);
    let mut buf = BytesMut::from(data);
    let mut out = BytesMut::new();
    while let Ok(Some(packet)) = decoder.decode(&mut buf) {
        encode(&packet, ProtocolVersion::V3_1_1, &mut out).expect("decoded packets re-encode");
    }
});
