//! One application message as the broker sees it, and what a subscription
//! makes of it when it is delivered.
//!
//! A PUBLISH received from a client becomes one [`Message`] (see
//! [`Message::from_publish`]), shared by every subscriber as `Arc<Message>`:
//! topic, payload and properties are reference-counted, never copied per
//! subscriber. Routing hands each subscriber a [`Delivery`] (the message and
//! the matched subscription's [`SubOpts`]); the subscriber's session turns it
//! into [`PublishOpts`] (QoS, RETAIN, subscription identifier: what this one
//! subscriber gets) and, when it is sent, into a codec
//! [`Publish`](crate::codec::Publish) with [`Message::to_publish`].
//!
//! Time is always passed in (`now`), never read from the clock here, so that
//! tests control it.

mod outgoing;

pub use outgoing::{FrameCache, OutPublish};

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::{ByteStr, PayloadFormat, Publish, QoS, SubscriptionOptions, UserProperty};

/// A published application message, immutable once received.
///
/// Cheap to share (`Arc<Message>`); the fields are public for readers (the
/// router, the retained store, rule engines), and a message is only built by
/// [`Message::from_publish`] or field by field in tests and system messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic name (never empty: a topic alias is resolved by the channel
    /// before the message is built).
    pub topic: ByteStr,
    /// The application payload.
    pub payload: Bytes,
    /// The QoS it was published with.
    pub qos: QoS,
    /// The RETAIN flag it was published with.
    pub retain: bool,
    /// The publisher's client id: a `no_local` subscription of the same
    /// client does not receive it.
    pub from: ByteStr,
    /// When the broker received it.
    pub received_at: Instant,
    /// When it expires: the v5 message expiry interval turned into an
    /// absolute deadline at receipt, or the broker's default for messages
    /// without one (see [`Message::with_default_expiry`]). `None`: it never
    /// expires.
    pub expires_at: Option<Instant>,
    /// Whether subscribers are sent the expiry interval left
    /// (MQTT-3.3.2-6): true when the publisher set one; false when
    /// `expires_at` is the broker's default, which is not sent (as in EMQX).
    pub expiry_sent: bool,
    /// The v5 properties that travel with the message to its subscribers.
    pub properties: MessageProperties,
    /// Its PUBLISH frames, encoded once for all subscribers that share
    /// them (see [`Message::frame`]).
    pub(crate) frames: FrameCache,
}

/// The v5 PUBLISH properties forwarded unchanged to subscribers (section
/// 3.3.2.3). The message expiry interval is kept as
/// [`Message::expires_at`]; topic alias and subscription identifiers are per
/// connection and per subscription, so they are not part of the message.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MessageProperties {
    /// Payload format indicator.
    pub payload_format_indicator: Option<PayloadFormat>,
    /// MIME type of the payload.
    pub content_type: Option<ByteStr>,
    /// Topic for a response.
    pub response_topic: Option<ByteStr>,
    /// Correlation data of a request/response exchange.
    pub correlation_data: Option<Bytes>,
    /// User properties, in the order they were published (MQTT-3.3.2-18).
    pub user_properties: Vec<UserProperty>,
}

impl crate::retained::PayloadSize for Message {
    fn payload_size(&self) -> usize {
        self.payload.len()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("topic", &self.topic)
            .field("payload_len", &self.payload.len())
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("from", &self.from)
            .field("received_at", &self.received_at)
            .field("expires_at", &self.expires_at)
            .field("expiry_sent", &self.expiry_sent)
            .field("properties", &self.properties)
            .finish()
    }
}

impl fmt::Debug for MessageProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageProperties")
            .field("payload_format_indicator", &self.payload_format_indicator)
            .field("content_type", &self.content_type)
            .field("response_topic", &self.response_topic)
            .field(
                "correlation_data_len",
                &self.correlation_data.as_ref().map(Bytes::len),
            )
            .field("user_properties", &self.user_properties)
            .finish()
    }
}

impl Message {
    /// The message carried by a PUBLISH received at `now` from client `from`.
    ///
    /// The topic must already be resolved (the channel replaces a topic
    /// alias by its topic first). The packet id, DUP flag, topic alias and
    /// any subscription identifiers are dropped: they belong to the inbound
    /// exchange, not to the message. A message expiry interval becomes the
    /// absolute deadline `now + interval`.
    pub fn from_publish(publish: Publish, from: ByteStr, now: Instant) -> Self {
        let props = publish.properties;
        Self {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            from,
            received_at: now,
            expires_at: props
                .message_expiry_interval
                .map(|secs| now + Duration::from_secs(u64::from(secs))),
            expiry_sent: props.message_expiry_interval.is_some(),
            properties: MessageProperties {
                payload_format_indicator: props.payload_format_indicator,
                content_type: props.content_type,
                response_topic: props.response_topic,
                correlation_data: props.correlation_data,
                user_properties: props.user_properties,
            },
            frames: FrameCache::default(),
        }
    }

    /// A message with no expiry and no properties, received at
    /// `received_at`: the start of one that did not come from a PUBLISH of
    /// this node (another node's, a will, a `$SYS` message).
    pub fn new(
        topic: ByteStr,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        from: ByteStr,
        received_at: Instant,
    ) -> Self {
        Self {
            topic,
            payload,
            qos,
            retain,
            from,
            received_at,
            expires_at: None,
            expiry_sent: false,
            properties: MessageProperties::default(),
            frames: FrameCache::default(),
        }
    }

    /// A copy whose strings and bytes have allocations of their own, for a
    /// message kept long (the retained store): decoded fields are slices of
    /// the read buffer they arrived in and would keep all of it alive.
    pub fn compact(&self) -> Self {
        let props = &self.properties;
        Self {
            topic: self.topic.compact(),
            payload: Bytes::copy_from_slice(&self.payload),
            properties: MessageProperties {
                payload_format_indicator: props.payload_format_indicator,
                content_type: props.content_type.as_ref().map(ByteStr::compact),
                response_topic: props.response_topic.as_ref().map(ByteStr::compact),
                correlation_data: props
                    .correlation_data
                    .as_deref()
                    .map(Bytes::copy_from_slice),
                user_properties: props
                    .user_properties
                    .iter()
                    .map(|(key, value)| (key.compact(), value.compact()))
                    .collect(),
            },
            from: self.from.compact(),
            ..self.clone()
        }
    }

    /// Gives a message that has no expiry the broker's default
    /// (`mqtt.message_expiry_interval`): it expires `interval` after it was
    /// received, and its subscribers are not sent an expiry interval. A
    /// message with its own expiry, or `interval` `None`, is unchanged.
    #[must_use]
    pub fn with_default_expiry(mut self, interval: Option<Duration>) -> Self {
        if self.expires_at.is_none() {
            if let Some(interval) = interval {
                // An interval too long to be an `Instant` is never.
                self.expires_at = self.received_at.checked_add(interval);
                self.expiry_sent = false;
            }
        }
        self
    }

    /// True once the message expiry deadline has passed (at `now` or before).
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|deadline| now >= deadline)
    }

    /// The expiry interval left at `now`: the whole seconds, rounded up
    /// (MQTT-3.3.2-6), or `None` when the message never expires or has
    /// expired.
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        let left = self.expires_at?.checked_duration_since(now)?;
        if left.is_zero() {
            return None;
        }
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        Some(u32::try_from(secs).unwrap_or(u32::MAX))
    }

    /// The PUBLISH packet that delivers this message with `opts` at `now`,
    /// or `None` if the message has expired (an expired message is never
    /// delivered, MQTT-3.3.2-5).
    ///
    /// `packet_id` must be `Some` exactly when `opts.qos` is above 0. The
    /// result has DUP = 0, no topic alias (the channel may add one), the
    /// message expiry interval rewritten to the time left, and the
    /// subscription identifier of `opts` if any. The packet is the same for
    /// every protocol version: the v3 encoder ignores the properties.
    pub fn to_publish(
        &self,
        opts: &PublishOpts,
        packet_id: Option<u16>,
        now: Instant,
    ) -> Option<Publish> {
        let expiry = self.expiry_to_send(now)?;
        Some(self.publish_with(opts, packet_id, expiry))
    }

    /// The message expiry interval to send at `now`: `Some(None)` for a
    /// message that never expires, `None` for one that has expired.
    #[allow(clippy::option_option)]
    fn expiry_to_send(&self, now: Instant) -> Option<Option<u32>> {
        match self.expires_at {
            None => Some(None),
            Some(_) if !self.expiry_sent => (!self.is_expired(now)).then_some(None),
            Some(_) => self.remaining_expiry(now).map(Some),
        }
    }

    /// One subscriber's PUBLISH of this message with `opts` at `now`, as
    /// [`Message::to_publish`] describes it but sharing the message, or
    /// `None` if the message has expired.
    pub fn out_publish(
        self: &Arc<Self>,
        opts: PublishOpts,
        packet_id: Option<u16>,
        now: Instant,
    ) -> Option<OutPublish> {
        Some(OutPublish {
            message: self.clone(),
            opts,
            packet_id,
            dup: false,
            expiry: self.expiry_to_send(now)?,
            topic_alias: None,
            alias_only: false,
            strip: 0,
        })
    }
}

/// A subscription's options as the session keeps them: the SUBSCRIBE
/// options byte (kept whole: retain handling matters again when the same
/// filter is subscribed a second time) and the v5 subscription identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubOpts {
    /// The options byte, with `qos` the granted QoS.
    pub options: SubscriptionOptions,
    /// v5 subscription identifier (1..=268,435,455), sent back with every
    /// message the subscription matches.
    pub subscription_id: Option<u32>,
}

impl SubOpts {
    /// Options granting `qos`, every v5 option at its default, no identifier.
    pub const fn with_qos(qos: QoS) -> Self {
        Self {
            options: SubscriptionOptions::with_qos(qos),
            subscription_id: None,
        }
    }
}

/// One message for one subscriber, as routing hands it to the subscriber's
/// session (in batches).
///
/// A message matching several subscriptions of one client is delivered once
/// per subscription, each with its own options (EMQX does the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The shared message.
    pub message: Arc<Message>,
    /// The options of the subscription it matched.
    pub opts: SubOpts,
    /// True when the retained store sends it because a subscription was just
    /// made: RETAIN then stays 1 whatever `retain_as_published` says
    /// (MQTT-3.3.1-9).
    pub retained: bool,
}

impl Delivery {
    /// A message routed to a matching subscription.
    pub fn new(message: Arc<Message>, opts: SubOpts) -> Self {
        Self {
            message,
            opts,
            retained: false,
        }
    }

    /// A retained message sent because of a new subscription.
    pub fn retained(message: Arc<Message>, opts: SubOpts) -> Self {
        Self {
            message,
            opts,
            retained: true,
        }
    }

    /// True when the subscription asked not to receive its own client's
    /// messages (`no_local`) and `client_id` published this one
    /// (MQTT-3.8.3-3).
    pub fn is_no_local_for(&self, client_id: &str) -> bool {
        self.opts.options.no_local && self.message.from == client_id
    }

    /// What this subscriber gets: QoS, RETAIN flag, subscription identifier.
    ///
    /// QoS is `min(message QoS, granted QoS)` (MQTT-3.8.4-8), or the granted
    /// QoS when `upgrade_qos` is set (EMQX's `mqtt.upgrade_qos`). RETAIN is 1
    /// for a retained message sent on subscribe, else the published flag if
    /// `retain_as_published`, else 0 (MQTT-3.3.1-12, -13).
    pub fn publish_opts(&self, upgrade_qos: bool) -> PublishOpts {
        let granted = self.opts.options.qos;
        let qos = if upgrade_qos {
            granted
        } else {
            self.message.qos.min(granted)
        };
        let retain =
            self.retained || (self.opts.options.retain_as_published && self.message.retain);
        PublishOpts {
            qos,
            retain,
            subscription_id: self.opts.subscription_id,
        }
    }
}

/// The per-subscriber part of an outgoing PUBLISH, small enough to keep
/// beside the shared message in the inflight window and the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublishOpts {
    /// The QoS it is delivered with.
    pub qos: QoS,
    /// The RETAIN flag it is delivered with.
    pub retain: bool,
    /// The subscription identifier to include, if any.
    pub subscription_id: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{PublishProperties, RetainHandling};

    fn publish(qos: QoS, retain: bool, expiry: Option<u32>) -> Publish {
        Publish {
            dup: true,
            qos,
            retain,
            topic: ByteStr::from_static("a/b"),
            packet_id: (qos != QoS::AtMostOnce).then_some(7),
            payload: Bytes::from_static(b"hello"),
            properties: PublishProperties {
                payload_format_indicator: Some(PayloadFormat::Utf8),
                message_expiry_interval: expiry,
                topic_alias: Some(3),
                response_topic: Some(ByteStr::from_static("reply")),
                correlation_data: Some(Bytes::from_static(b"c1")),
                user_properties: vec![
                    (ByteStr::from_static("k"), ByteStr::from_static("v1")),
                    (ByteStr::from_static("k"), ByteStr::from_static("v2")),
                ],
                subscription_identifiers: vec![9],
                content_type: Some(ByteStr::from_static("text/plain")),
            },
        }
    }

    fn opts(qos: QoS, no_local: bool, rap: bool, id: Option<u32>) -> SubOpts {
        SubOpts {
            options: SubscriptionOptions {
                qos,
                no_local,
                retain_as_published: rap,
                retain_handling: RetainHandling::SendAtSubscribe,
            },
            subscription_id: id,
        }
    }

    #[test]
    fn from_publish_keeps_message_fields_and_drops_exchange_fields() {
        let now = Instant::now();
        let m = Message::from_publish(publish(QoS::ExactlyOnce, true, Some(10)), "pub".into(), now);
        assert_eq!(m.topic, "a/b");
        assert_eq!(m.payload, Bytes::from_static(b"hello"));
        assert_eq!(m.qos, QoS::ExactlyOnce);
        assert!(m.retain);
        assert_eq!(m.from, "pub");
        assert_eq!(m.received_at, now);
        assert_eq!(m.expires_at, Some(now + Duration::from_secs(10)));
        assert_eq!(m.properties.user_properties.len(), 2);
        assert_eq!(m.properties.user_properties[1].1, "v2");
        assert_eq!(m.properties.content_type.as_deref(), Some("text/plain"));

        let p = m
            .to_publish(
                &PublishOpts {
                    qos: QoS::AtLeastOnce,
                    retain: false,
                    subscription_id: None,
                },
                Some(42),
                now,
            )
            .expect("not expired");
        assert!(!p.dup, "DUP of the inbound exchange must not leak");
        assert_eq!(p.packet_id, Some(42));
        assert_eq!(p.properties.topic_alias, None);
        assert!(p.properties.subscription_identifiers.is_empty());
        assert_eq!(
            p.properties.correlation_data,
            Some(Bytes::from_static(b"c1"))
        );
        assert_eq!(p.properties.response_topic.as_deref(), Some("reply"));
        assert_eq!(
            p.properties.payload_format_indicator,
            Some(PayloadFormat::Utf8)
        );
    }

    #[test]
    fn expiry_is_rewritten_to_the_time_left_and_expired_is_not_delivered() {
        let t0 = Instant::now();
        let m = Message::from_publish(publish(QoS::AtLeastOnce, false, Some(10)), "p".into(), t0);
        let o = PublishOpts {
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_id: None,
        };
        let at = |ms: u64| m.to_publish(&o, Some(1), t0 + Duration::from_millis(ms));
        assert_eq!(
            at(0).and_then(|p| p.properties.message_expiry_interval),
            Some(10)
        );
        assert_eq!(
            at(3_000).and_then(|p| p.properties.message_expiry_interval),
            Some(7)
        );
        // 6.5 s left: rounded up, never 0 for a live message.
        assert_eq!(
            at(3_500).and_then(|p| p.properties.message_expiry_interval),
            Some(7)
        );
        assert_eq!(
            at(9_999).and_then(|p| p.properties.message_expiry_interval),
            Some(1)
        );
        assert!(!m.is_expired(t0 + Duration::from_millis(9_999)));
        assert!(m.is_expired(t0 + Duration::from_secs(10)));
        assert_eq!(at(10_000), None);
        assert_eq!(at(60_000), None);

        let forever = Message::from_publish(publish(QoS::AtLeastOnce, false, None), "p".into(), t0);
        let p = forever
            .to_publish(&o, Some(1), t0 + Duration::from_secs(1_000_000))
            .expect("never expires");
        assert_eq!(p.properties.message_expiry_interval, None);
    }

    #[test]
    fn the_default_expiry_applies_only_to_messages_without_one_and_is_not_sent() {
        let t0 = Instant::now();
        let ten = Some(Duration::from_secs(10));
        let o = PublishOpts {
            qos: QoS::AtMostOnce,
            retain: false,
            subscription_id: None,
        };
        let plain = Message::from_publish(publish(QoS::AtMostOnce, false, None), "p".into(), t0)
            .with_default_expiry(ten);
        assert_eq!(plain.expires_at, Some(t0 + Duration::from_secs(10)));
        assert!(!plain.expiry_sent);
        let p = plain
            .to_publish(&o, None, t0 + Duration::from_secs(3))
            .expect("not expired");
        assert_eq!(p.properties.message_expiry_interval, None);
        assert_eq!(
            plain.to_publish(&o, None, t0 + Duration::from_secs(10)),
            None
        );

        let own = Message::from_publish(publish(QoS::AtMostOnce, false, Some(60)), "p".into(), t0)
            .with_default_expiry(ten);
        assert_eq!(own.expires_at, Some(t0 + Duration::from_secs(60)));
        assert!(own.expiry_sent);
        let never = Message::from_publish(publish(QoS::AtMostOnce, false, None), "p".into(), t0)
            .with_default_expiry(None);
        assert_eq!(never.expires_at, None);
    }

    #[test]
    fn qos_is_the_minimum_unless_upgraded() {
        let t0 = Instant::now();
        let m = Arc::new(Message::from_publish(
            publish(QoS::AtLeastOnce, false, None),
            "p".into(),
            t0,
        ));
        let d = |granted| Delivery::new(m.clone(), SubOpts::with_qos(granted));
        assert_eq!(d(QoS::AtMostOnce).publish_opts(false).qos, QoS::AtMostOnce);
        assert_eq!(
            d(QoS::AtLeastOnce).publish_opts(false).qos,
            QoS::AtLeastOnce
        );
        assert_eq!(
            d(QoS::ExactlyOnce).publish_opts(false).qos,
            QoS::AtLeastOnce
        );
        assert_eq!(d(QoS::ExactlyOnce).publish_opts(true).qos, QoS::ExactlyOnce);
        assert_eq!(d(QoS::AtMostOnce).publish_opts(true).qos, QoS::AtMostOnce);
    }

    #[test]
    fn retain_flag_follows_retain_as_published_except_on_subscribe() {
        let t0 = Instant::now();
        let retained = Arc::new(Message::from_publish(
            publish(QoS::AtMostOnce, true, None),
            "p".into(),
            t0,
        ));
        let plain = Arc::new(Message::from_publish(
            publish(QoS::AtMostOnce, false, None),
            "p".into(),
            t0,
        ));
        let rap = opts(QoS::AtMostOnce, false, true, None);
        let no_rap = opts(QoS::AtMostOnce, false, false, None);

        assert!(
            Delivery::new(retained.clone(), rap)
                .publish_opts(false)
                .retain
        );
        assert!(
            !Delivery::new(retained.clone(), no_rap)
                .publish_opts(false)
                .retain
        );
        assert!(!Delivery::new(plain.clone(), rap).publish_opts(false).retain);
        assert!(
            Delivery::retained(retained.clone(), no_rap)
                .publish_opts(false)
                .retain
        );

        let p = retained
            .to_publish(
                &Delivery::new(retained.clone(), no_rap).publish_opts(false),
                None,
                t0,
            )
            .expect("not expired");
        assert!(!p.retain);
        assert_eq!(p.packet_id, None);
    }

    #[test]
    fn subscription_identifier_is_added() {
        let t0 = Instant::now();
        let m = Arc::new(Message::from_publish(
            publish(QoS::AtMostOnce, false, None),
            "p".into(),
            t0,
        ));
        let d = Delivery::new(m.clone(), opts(QoS::AtLeastOnce, false, false, Some(77)));
        let p = m
            .to_publish(&d.publish_opts(false), None, t0)
            .expect("not expired");
        assert_eq!(p.properties.subscription_identifiers, vec![77]);
    }

    #[test]
    fn no_local_applies_to_the_publisher_only() {
        let t0 = Instant::now();
        let m = Arc::new(Message::from_publish(
            publish(QoS::AtMostOnce, false, None),
            "me".into(),
            t0,
        ));
        let nl = opts(QoS::AtMostOnce, true, false, None);
        assert!(Delivery::new(m.clone(), nl).is_no_local_for("me"));
        assert!(!Delivery::new(m.clone(), nl).is_no_local_for("other"));
        assert!(!Delivery::new(m.clone(), SubOpts::default()).is_no_local_for("me"));
        assert!(Delivery::retained(m, nl).is_no_local_for("me"));
    }

    #[test]
    fn debug_hides_the_payload() {
        let m = Message::from_publish(
            publish(QoS::AtMostOnce, false, None),
            "p".into(),
            Instant::now(),
        );
        let s = format!("{m:?}");
        assert!(!s.contains("hello"), "{s}");
        assert!(s.contains("payload_len: 5"), "{s}");
    }
}
