//! MQTT 3.1.1 framing: arbitrary bytes after CONNECT. The decoder never
//! panics, and every packet that decodes re-encodes to bytes that decode to
//! the same packet.
#![no_main]

use bytes::BytesMut;
use girder_broker::codec::{encode, Decoder, ProtocolVersion};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let version = ProtocolVersion::V3_1_1;
    let mut decoder = Decoder::with_version(version, 4096);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(packet)) = decoder.decode(&mut buf) {
        let mut out = BytesMut::new();
        encode(&packet, version, &mut out).expect("decoded packets re-encode");
        let again = Decoder::with_version(version, 4096)
            .decode(&mut out)
            .expect("re-encoded packets decode")
            .expect("re-encoded packets are whole");
        assert_eq!(again, packet, "decode(encode(p)) == p");
        assert!(out.is_empty(), "one packet re-encodes to one packet");
    }
});
