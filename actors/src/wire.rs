//! Broker messages on the wire between nodes (`girder.broker.v1`): the
//! conversion of [`Message`] to and from its protobuf form, at the
//! boundary.
//!
//! Sessions moved by a takeover across nodes travel the same way
//! (`session.proto`): [`session_to_wire`] and [`session_from_wire`], and
//! the deliveries their old node passes on ([`deliveries_to_wire`]).
//!
//! Instants do not cross nodes: a message's expiry travels as the time it
//! has left when sent, and becomes a deadline again on arrival.

use std::time::{Duration, Instant};

use std::sync::Arc;

use bytes::Bytes;
use girder_broker::codec::{ByteStr, PayloadFormat, QoS, RetainHandling, SubscriptionOptions};
use girder_broker::message::{Delivery, Message, MessageProperties, PublishOpts, SubOpts};
use girder_broker::session::{InflightSnapshot, SessionSnapshot};
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

// --- sessions moved between nodes (`session.proto`) ---------------------

fn qos_from_wire(qos: u32) -> Result<QoS, WireError> {
    u8::try_from(qos)
        .ok()
        .and_then(QoS::from_bits)
        .ok_or(WireError::BadQos(qos))
}

/// A subscription's options in their form between nodes.
pub fn sub_opts_to_wire(opts: &SubOpts) -> pb::SubOptions {
    let o = &opts.options;
    pb::SubOptions {
        qos: o.qos as u32,
        no_local: o.no_local,
        retain_as_published: o.retain_as_published,
        retain_handling: o.retain_handling as u32,
        subscription_id: opts.subscription_id,
    }
}

/// The subscription options `wire` describes.
pub fn sub_opts_from_wire(wire: &pb::SubOptions) -> Result<SubOpts, WireError> {
    let retain_handling = u8::try_from(wire.retain_handling)
        .ok()
        .and_then(RetainHandling::from_bits)
        .ok_or(WireError::Missing("a retain handling of 0, 1 or 2"))?;
    Ok(SubOpts {
        options: SubscriptionOptions {
            qos: qos_from_wire(wire.qos)?,
            no_local: wire.no_local,
            retain_as_published: wire.retain_as_published,
            retain_handling,
        },
        subscription_id: wire.subscription_id,
    })
}

fn publish_opts_to_wire(opts: &PublishOpts) -> pb::PublishOptions {
    pb::PublishOptions {
        qos: opts.qos as u32,
        retain: opts.retain,
        subscription_id: opts.subscription_id,
    }
}

fn publish_opts_from_wire(wire: Option<pb::PublishOptions>) -> Result<PublishOpts, WireError> {
    let wire = wire.ok_or(WireError::Missing("publish options"))?;
    Ok(PublishOpts {
        qos: qos_from_wire(wire.qos)?,
        retain: wire.retain,
        subscription_id: wire.subscription_id,
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn packet_id(id: u32) -> Result<u16, WireError> {
    u16::try_from(id)
        .ok()
        .filter(|id| *id != 0)
        .ok_or(WireError::Missing("a packet id of 1..=65535"))
}

/// A session's snapshot as sent at `now` (message expiries travel as the
/// time they have left).
pub fn session_to_wire(snapshot: &SessionSnapshot, now: Instant) -> pb::SessionState {
    pb::SessionState {
        client_id: snapshot.client_id.as_bytes().clone(),
        age_ms: millis(snapshot.age),
        expiry_interval_s: snapshot
            .expiry_interval
            .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX - 1)),
        subscriptions: snapshot
            .subscriptions
            .iter()
            .map(|(filter, opts)| pb::Subscription {
                filter: filter.as_bytes().clone(),
                options: Some(sub_opts_to_wire(opts)),
            })
            .collect(),
        inflight: snapshot
            .inflight
            .iter()
            .map(|entry| match entry {
                InflightSnapshot::Publish {
                    packet_id,
                    message,
                    opts,
                } => pb::Inflight {
                    packet_id: u32::from(*packet_id),
                    message: Some(message_to_wire(message, now)),
                    options: Some(publish_opts_to_wire(opts)),
                },
                InflightSnapshot::Rel { packet_id } => pb::Inflight {
                    packet_id: u32::from(*packet_id),
                    message: None,
                    options: None,
                },
            })
            .collect(),
        next_packet_id: u32::from(snapshot.next_packet_id),
        queue: snapshot
            .queue
            .iter()
            .map(|(message, opts)| pb::Queued {
                message: Some(message_to_wire(message, now)),
                options: Some(publish_opts_to_wire(opts)),
            })
            .collect(),
        awaiting_rel: snapshot
            .awaiting_rel
            .iter()
            .map(|(id, waited)| pb::AwaitingRel {
                packet_id: u32::from(*id),
                waited_ms: millis(*waited),
            })
            .collect(),
    }
}

/// The session snapshot `wire` describes, received at `now`.
pub fn session_from_wire(
    wire: pb::SessionState,
    now: Instant,
) -> Result<SessionSnapshot, WireError> {
    let message = |m: Option<pb::Message>| -> Result<Arc<Message>, WireError> {
        let m = m.ok_or(WireError::Missing("message"))?;
        Ok(Arc::new(message_from_wire(m, now)?.compact()))
    };
    let subscriptions = wire
        .subscriptions
        .into_iter()
        .map(|s| {
            let opts = s
                .options
                .ok_or(WireError::Missing("subscription options"))?;
            Ok((text(s.filter, "filter")?, sub_opts_from_wire(&opts)?))
        })
        .collect::<Result<_, WireError>>()?;
    let inflight = wire
        .inflight
        .into_iter()
        .map(|e| {
            let packet_id = packet_id(e.packet_id)?;
            Ok(match e.message {
                Some(m) => InflightSnapshot::Publish {
                    packet_id,
                    message: message(Some(m))?,
                    opts: publish_opts_from_wire(e.options)?,
                },
                None => InflightSnapshot::Rel { packet_id },
            })
        })
        .collect::<Result<_, WireError>>()?;
    let queue = wire
        .queue
        .into_iter()
        .map(|q| Ok((message(q.message)?, publish_opts_from_wire(q.options)?)))
        .collect::<Result<_, WireError>>()?;
    let awaiting_rel = wire
        .awaiting_rel
        .into_iter()
        .map(|a| Ok((packet_id(a.packet_id)?, Duration::from_millis(a.waited_ms))))
        .collect::<Result<_, WireError>>()?;
    Ok(SessionSnapshot {
        client_id: text(wire.client_id, "client id")?,
        age: Duration::from_millis(wire.age_ms),
        expiry_interval: wire
            .expiry_interval_s
            .map(|s| Duration::from_secs(s.into())),
        subscriptions,
        inflight,
        next_packet_id: u16::try_from(wire.next_packet_id).unwrap_or(1),
        queue,
        awaiting_rel,
    })
}

/// Deliveries for `client_id` passed on to its new node at `now`.
pub fn deliveries_to_wire(
    client_id: &ByteStr,
    deliveries: &[Delivery],
    now: Instant,
) -> pb::HandedDeliveries {
    pb::HandedDeliveries {
        client_id: client_id.as_bytes().clone(),
        deliveries: deliveries
            .iter()
            .map(|d| pb::HandedDelivery {
                message: Some(message_to_wire(&d.message, now)),
                options: Some(sub_opts_to_wire(&d.opts)),
                retained: d.retained,
            })
            .collect(),
    }
}

/// The client id and deliveries `wire` describes, received at `now`.
pub fn deliveries_from_wire(
    wire: pb::HandedDeliveries,
    now: Instant,
) -> Result<(ByteStr, Vec<Delivery>), WireError> {
    let client_id = text(wire.client_id, "client id")?;
    let deliveries = wire
        .deliveries
        .into_iter()
        .map(|d| {
            let message = d.message.ok_or(WireError::Missing("message"))?;
            let opts = d
                .options
                .ok_or(WireError::Missing("subscription options"))?;
            let mut delivery = Delivery::new(
                Arc::new(message_from_wire(message, now)?),
                sub_opts_from_wire(&opts)?,
            );
            delivery.retained = d.retained;
            Ok(delivery)
        })
        .collect::<Result<_, WireError>>()?;
    Ok((client_id, deliveries))
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

    #[test]
    fn a_session_snapshot_survives_the_trip() {
        use girder_broker::session::{Session, SessionConfig};

        let now = Instant::now();
        let mut session = Session::new(ByteStr::from("c"), SessionConfig::default(), now);
        session.set_expiry_interval(Some(Duration::from_secs(300)));
        let mut sub = SubOpts::with_qos(QoS::ExactlyOnce);
        sub.options.no_local = true;
        sub.options.retain_handling = RetainHandling::DoNotSend;
        sub.subscription_id = Some(7);
        session.subscribe(ByteStr::from("a/#"), sub);
        let message = |topic: &'static str, qos| {
            Arc::new(Message::new(
                ByteStr::from(topic),
                Bytes::from_static(b"p"),
                qos,
                false,
                ByteStr::from("pub"),
                now,
            ))
        };
        let mut out = Vec::new();
        session.deliver(
            [
                Delivery::new(message("a/1", QoS::AtLeastOnce), sub),
                Delivery::new(message("a/2", QoS::ExactlyOnce), sub),
            ],
            now,
            &mut out,
        );
        session
            .on_pubrec(2, girder_broker::codec::ReasonCode::Success, now, &mut out)
            .unwrap();
        session.on_publish_qos2(9, false, now).unwrap();
        session.on_disconnect(now);
        session.deliver(
            [Delivery::new(message("a/3", QoS::AtLeastOnce), sub)],
            now,
            &mut out,
        );
        let snapshot = session.snapshot(now);
        let bytes = prost::Message::encode_to_vec(&session_to_wire(&snapshot, now));
        let back: pb::SessionState = prost::Message::decode(&bytes[..]).unwrap();
        let got = session_from_wire(back, now).unwrap();
        assert_eq!(got.client_id, snapshot.client_id);
        assert_eq!(got.expiry_interval, snapshot.expiry_interval);
        assert_eq!(got.subscriptions, snapshot.subscriptions);
        assert_eq!(got.next_packet_id, snapshot.next_packet_id);
        assert_eq!(got.awaiting_rel, snapshot.awaiting_rel);
        let shape = |s: &SessionSnapshot| {
            let inflight: Vec<(u16, Option<String>)> = s
                .inflight
                .iter()
                .map(|e| match e {
                    InflightSnapshot::Publish {
                        packet_id, message, ..
                    } => (*packet_id, Some(message.topic.to_string())),
                    InflightSnapshot::Rel { packet_id } => (*packet_id, None),
                })
                .collect();
            let queue: Vec<(String, PublishOpts)> = s
                .queue
                .iter()
                .map(|(m, o)| (m.topic.to_string(), *o))
                .collect();
            (inflight, queue)
        };
        assert_eq!(shape(&got), shape(&snapshot));
        assert_eq!(
            shape(&got),
            (
                vec![(1, Some("a/1".to_owned())), (2, None)],
                vec![(
                    "a/3".to_owned(),
                    PublishOpts {
                        qos: QoS::AtLeastOnce,
                        retain: false,
                        subscription_id: Some(7)
                    }
                )]
            )
        );
    }

    #[test]
    fn handed_deliveries_keep_their_subscription_options() {
        let now = Instant::now();
        let mut opts = SubOpts::with_qos(QoS::AtLeastOnce);
        opts.options.retain_as_published = true;
        opts.subscription_id = Some(3);
        let mut delivery = Delivery::new(
            Arc::new(Message::new(
                ByteStr::from("t"),
                Bytes::from_static(b"x"),
                QoS::AtLeastOnce,
                true,
                ByteStr::from("p"),
                now,
            )),
            opts,
        );
        delivery.retained = true;
        let wire = deliveries_to_wire(&ByteStr::from("c"), &[delivery], now);
        let (client_id, got) = deliveries_from_wire(wire, now).unwrap();
        assert_eq!(client_id, "c");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].opts, opts);
        assert!(got[0].retained);
        assert_eq!(got[0].message.topic, "t");
    }
}
