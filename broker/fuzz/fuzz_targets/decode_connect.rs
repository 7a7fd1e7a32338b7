//! A fresh server-side connection: the first packet must be a CONNECT of
//! any version, then packets of the version it names. The decoder never
//! panics, and every packet that decodes round-trips (see `round_trip.rs`).
#![no_main]

use bytes::BytesMut;
use girder_broker::codec::Decoder;
use libfuzzer_sys::fuzz_target;

#[path = "round_trip.rs"]
mod round_trip;

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new(4096);
    let mut buf = BytesMut::from(data);
    loop {
        let before = decoder.version();
        match decoder.decode(&mut buf) {
            Ok(Some(packet)) => {
                let version = decoder.version().expect("CONNECT fixed the version");
                // The same decoder state as the first decode: fresh for the
                // CONNECT, of the connection's version after it.
                round_trip::check(&packet, version, || match before {
                    None => Decoder::new(4096),
                    Some(v) => Decoder::with_version(v, 4096),
                });
            }
            Ok(None) => break,
            Err(error) => {
                let _ = decoder.error_reply(&error);
                break;
            }
        }
    }
});
