//! A fresh server-side connection: the first packet must be a CONNECT of
//! any version, then packets of the version it names. The decoder never
//! panics, and every packet that decodes re-encodes to bytes that decode to
//! the same packet.
#![no_main]

use bytes::BytesMut;
use girder_broker::codec::{encode, Decoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new(4096);
    let mut buf = BytesMut::from(data);
    loop {
        let before = decoder.version();
        match decoder.decode(&mut buf) {
            Ok(Some(packet)) => {
                let version = decoder.version().expect("CONNECT fixed the version");
                let mut out = BytesMut::new();
                encode(&packet, version, &mut out).expect("decoded packets re-encode");
                // The same decoder state as the first decode: fresh for the
                // CONNECT, of the connection's version after it.
                let mut fresh = match before {
                    None => Decoder::new(4096),
                    Some(v) => Decoder::with_version(v, 4096),
                };
                let again = fresh
                    .decode(&mut out)
                    .expect("re-encoded packets decode")
                    .expect("re-encoded packets are whole");
                assert_eq!(again, packet, "decode(encode(p)) == p");
                assert!(out.is_empty(), "one packet re-encodes to one packet");
            }
            Ok(None) => break,
            Err(error) => {
                let _ = decoder.error_reply(&error);
                break;
            }
        }
    }
});
