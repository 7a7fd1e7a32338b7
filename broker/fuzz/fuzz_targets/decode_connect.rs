//! A fresh server-side connection: the first packet must be a CONNECT of
//! any version, then packets of the version it names.
#![no_main]

use bytes::BytesMut;
use girder_broker::codec::{encode, Decoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new(4096);
    let mut buf = BytesMut::from(data);
    let mut out = BytesMut::new();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(packet)) => {
                let version = decoder.version().expect("CONNECT fixed the version");
                encode(&packet, version, &mut out).expect("decoded packets re-encode");
            }
            Ok(None) => break,
            Err(error) => {
                let _ = decoder.error_reply(&error);
                break;
            }
        }
    }
});
