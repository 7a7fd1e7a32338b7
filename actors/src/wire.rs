//! Broker messages on the wire between nodes (`girder.broker.v1`): the
//! conversion of [`Message`] to and from its protobuf form, at the
//! boundary.
//!
//! Instants do not cross nodes: a message's expiry travels as the time it
//! has left when sent, and becomes a deadline again on arrival.

use std::time::{Duration, Instant};

use bytes::Bytes;
use girder_broker::codec::{ByteStr, PayloadFormat, QoS};
use girder_broker::message::{Message, MessageProperties};
use girder_proto::broker as pb;

/// Why a message from another node was refused.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// A string field is not UTF-8.
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
    /// The QoS is not 0, 1 or 2.
    #[error("QoS {0} is not 0, 1 or 2")]
    BadQos(u32),
    /// A field the message needs is missing.
    #[error("{0} is missing")]
    Missing(&'static str),
    /// The bytes are not the protobuf message.
    #[error("cannot decode: {0}")]
    Decode(#[from] prost::DecodeError),
}

fn text(bytes: Bytes, field: &'static str) -> Result<ByteStr, WireError> {
    ByteStr::from_utf8(bytes).map_err(|_| WireError::NotUtf8(field))
}

fn opt_text(bytes: Option<Bytes>, field: &'static str) -> Result<Option<ByteStr>, WireError> {
    bytes.map(|b| text(b, field)).transpose()
}

/// `message` as sent at `now`.
pub fn message_to_wire(message: &Message, now: Instant) -> pb::Message {
    let props = &message.properties;
    pb::Message {
        topic: message.topic.as_bytes().clone(),
        payload: message.payload.clone(),
        qos: message.qos as u32,
        retain: message.retain,
        from: message.from.as_bytes().clone(),
        expiry_left_ms: message.expires_at.map(|deadline| {
            u64::try_from(deadline.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
        }),
        expiry_sent: message.expiry_sent,
        payload_format: props.payload_format_indicator.map(|f| f as u32),
        content_type: props.content_type.as_ref().map(|s| s.as_bytes().clone()),
        response_topic: props.response_topic.as_ref().map(|s| s.as_bytes().clone()),
        correlation_data: props.correlation_data.clone(),
        user_properties: props
            .user_properties
            .iter()
            .map(|(key, value)| pb::UserProperty {
                key: key.as_bytes().clone(),
                value: value.as_bytes().clone(),
            })
            .collect(),
    }
}

/// The message `wire` describes, received at `now`.
pub fn message_from_wire(wire: pb::Message, now: Instant) -> Result<Message, WireError> {
    let qos = match wire.qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        other => return Err(WireError::BadQos(other)),
    };
    let properties = MessageProperties {
        payload_format_indicator: wire.payload_format.map(|f| {
            if f == 1 {
                PayloadFormat::Utf8
            } else {
                PayloadFormat::Unspecified
            }
        }),
        content_type: opt_text(wire.content_type, "content_type")?,
        response_topic: opt_text(wire.response_topic, "response_topic")?,
        correlation_data: wire.correlation_data,
        user_properties: wire
            .user_properties
            .into_iter()
            .map(|p| {
                Ok((
                    text(p.key, "user property")?,
                    text(p.value, "user property")?,
                ))
            })
            .collect::<Result<_, WireError>>()?,
    };
    let mut message = Message::new(
        text(wire.topic, "topic")?,
        wire.payload,
        qos,
        wire.retain,
        text(wire.from, "from")?,
        now,
    );
    // A deadline too far to be an `Instant` is never.
    message.expires_at = wire
        .expiry_left_ms
        .and_then(|ms| now.checked_add(Duration::from_millis(ms)));
    message.expiry_sent = wire.expiry_sent;
    message.properties = properties;
    Ok(message)
}

/// The row of the replicated `retained` table for `message`, retained at
/// `now` (`now_unix_ms` on the wall clock) until `deadline`: the expiries
/// become wall-clock times, so that the row means the same after a restart
/// and on another node.
pub fn retained_to_row(
    message: &Message,
    deadline: Option<Instant>,
    now: Instant,
    now_unix_ms: u64,
) -> pb::Retained {
    let later = |at: Instant| {
        let left = u64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX);
        now_unix_ms.saturating_add(left)
    };
    pb::Retained {
        message: Some(message_to_wire(message, now)),
        expires_at_unix_ms: deadline.map(later),
        retained_at_unix_ms: now_unix_ms,
    }
}

/// The retained message a row of the `retained` table holds and when it
/// stops being sent, read at `now` (`now_unix_ms` on the wall clock). A
/// deadline already past is `now`: the message is expired.
pub fn retained_from_row(
    row: pb::Retained,
    now: Instant,
    now_unix_ms: u64,
) -> Result<(Message, Option<Instant>), WireError> {
    let mut wire = row.message.ok_or(WireError::Missing("message"))?;
    let elapsed = now_unix_ms.saturating_sub(row.retained_at_unix_ms);
    wire.expiry_left_ms = wire.expiry_left_ms.map(|ms| ms.saturating_sub(elapsed));
    let message = message_from_wire(wire, now)?;
    // A deadline too far to be an `Instant` is never.
    let deadline = row
        .expires_at_unix_ms
        .and_then(|at| now.checked_add(Duration::from_millis(at.saturating_sub(now_unix_ms))));
    Ok((message, deadline))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_survives_the_trip_with_its_time_left() {
        let now = Instant::now();
        let mut message = Message::new(
            ByteStr::from("a/b"),
            Bytes::from_static(b"hello"),
            QoS::ExactlyOnce,
            true,
            ByteStr::from("pub-1"),
            now,
        );
        message.expires_at = Some(now + Duration::from_secs(30));
        message.expiry_sent = true;
        message.properties.content_type = Some(ByteStr::from("text/plain"));
        message.properties.payload_format_indicator = Some(PayloadFormat::Utf8);
        message.properties.correlation_data = Some(Bytes::from_static(b"\x01\x02"));
        message.properties.user_properties = vec![
            (ByteStr::from("k"), ByteStr::from("v1")),
            (ByteStr::from("k"), ByteStr::from("v2")),
        ];
        let later = now + Duration::from_secs(10);
        let wire = message_to_wire(&message, later);
        let bytes = prost::Message::encode_to_vec(&wire);
        let back: pb::Message = prost::Message::decode(&bytes[..]).unwrap();
        let got = message_from_wire(back, later).unwrap();
        assert_eq!(got.topic, "a/b");
        assert_eq!(&got.payload[..], b"hello");
        assert_eq!(got.qos, QoS::ExactlyOnce);
        assert!(got.retain);
        assert_eq!(got.from, "pub-1");
        assert_eq!(got.remaining_expiry(later), Some(20));
        assert!(got.expiry_sent);
        assert_eq!(got.properties, message.properties);
    }

    #[test]
    fn a_message_without_expiry_never_expires_and_bad_fields_are_refused() {
        let now = Instant::now();
        let message = Message::new(
            ByteStr::from("t"),
            Bytes::new(),
            QoS::AtMostOnce,
            false,
            ByteStr::from("c"),
            now,
        );
        let wire = message_to_wire(&message, now);
        assert_eq!(wire.expiry_left_ms, None);
        let got = message_from_wire(wire.clone(), now).unwrap();
        assert_eq!(got.expires_at, None);
        let mut bad = wire.clone();
        bad.qos = 3;
        assert!(matches!(
            message_from_wire(bad, now),
            Err(WireError::BadQos(3))
        ));
        let mut bad = wire;
        bad.topic = Bytes::from_static(b"\xff");
        assert!(matches!(
            message_from_wire(bad, now),
            Err(WireError::NotUtf8("topic"))
        ));
    }
}
