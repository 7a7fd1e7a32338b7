//! The benchmark payload: a header with the send time, the publisher and a
//! per-publisher sequence number, padded to the requested size.
//!
//! ```text
//!  0        8          12         20                size
//!  | sent_ns | publisher | sequence | zero padding ... |
//!    u64 BE    u32 BE      u64 BE
//! ```
//!
//! The send time is wall-clock nanoseconds since the Unix epoch, so that a
//! subscriber in another process (or, with synchronised clocks, on another
//! node) can compute the latency.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes taken by the header; smaller payload sizes are raised to this.
pub(crate) const HEADER_LEN: usize = 20;

/// What a received payload says about its publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Wall-clock send time, nanoseconds since the Unix epoch.
    pub(crate) sent_ns: u64,
    /// Index of the publisher in its run.
    pub(crate) publisher: u32,
    /// Sequence number of this publish within its publisher, from 0.
    pub(crate) sequence: u64,
}

/// The current wall-clock time in nanoseconds since the Unix epoch (0 if
/// the clock is before the epoch).
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Builds a payload of `size` bytes (at least [`HEADER_LEN`]) carrying `stamp`.
pub(crate) fn encode(stamp: Stamp, size: usize) -> Bytes {
    let size = size.max(HEADER_LEN);
    let mut buf = BytesMut::with_capacity(size);
    buf.put_u64(stamp.sent_ns);
    buf.put_u32(stamp.publisher);
    buf.put_u64(stamp.sequence);
    buf.resize(size, 0);
    buf.freeze()
}

/// Reads the header of a payload, or `None` if it is too short to carry one
/// (e.g. a retained message left by someone else).
pub(crate) fn decode(payload: &[u8]) -> Option<Stamp> {
    let header: &[u8; HEADER_LEN] = payload.get(..HEADER_LEN)?.try_into().ok()?;
    let (sent, rest) = header.split_at(8);
    let (publisher, sequence) = rest.split_at(4);
    Some(Stamp {
        sent_ns: u64::from_be_bytes(sent.try_into().ok()?),
        publisher: u32::from_be_bytes(publisher.try_into().ok()?),
        sequence: u64::from_be_bytes(sequence.try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_pads() {
        let stamp = Stamp {
            sent_ns: 1_700_000_000_123_456_789,
            publisher: 42,
            sequence: 9_000_000_001,
        };
        let payload = encode(stamp, 64);
        assert_eq!(payload.len(), 64);
        assert!(payload[HEADER_LEN..].iter().all(|b| *b == 0));
        assert_eq!(decode(&payload), Some(stamp));
    }

    #[test]
    fn header_is_big_endian_at_fixed_offsets() {
        let payload = encode(
            Stamp {
                sent_ns: 1,
                publisher: 2,
                sequence: 3,
            },
            0,
        );
        assert_eq!(payload.len(), HEADER_LEN);
        assert_eq!(&payload[..8], &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&payload[8..12], &[0, 0, 0, 2]);
        assert_eq!(&payload[12..], &[0, 0, 0, 0, 0, 0, 0, 3]);
    }

    #[test]
    fn short_payloads_carry_no_stamp() {
        assert_eq!(decode(b""), None);
        assert_eq!(decode(&[0; HEADER_LEN - 1]), None);
    }

    #[test]
    fn clock_is_after_2020() {
        assert!(now_ns() > 1_577_836_800_000_000_000);
    }
}
