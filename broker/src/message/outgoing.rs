//! One subscriber's PUBLISH of a shared message ([`OutPublish`]), and the
//! frames a message keeps so that it is encoded once however many
//! subscribers it reaches ([`FrameCache`]).
//!
//! A PUBLISH differs between subscribers in its packet identifier and DUP
//! flag (patched into a copy of a shared frame), and in what makes its bytes
//! different: protocol version, QoS, RETAIN, the message expiry interval
//! left, the mountpoint stripped from the topic, a subscription identifier,
//! a topic alias. The first five decide whether a cached frame fits (a
//! frame records the expiry and the stripped length it was encoded with); a
//! PUBLISH with a subscription identifier or a topic alias is encoded for
//! its subscriber alone.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::BytesMut;

use super::{Message, PublishOpts};
use crate::codec::{
    self, ByteStr, EncodeError, EncodedPublish, Packet, ProtocolVersion, Publish,
    PublishProperties, QoS,
};

/// Slots: v3/v5 × QoS 0/1/2 × RETAIN 0/1.
const SLOTS: usize = 12;

/// A frame encoded for one key, with the expiry interval it carries and
/// the number of topic bytes it leaves out (a mountpoint).
type Slot = OnceLock<(Option<u32>, u32, EncodedPublish)>;

/// The encoded frames of a message, filled on first use by whichever
/// subscriber's connection encodes it first and read without locking by
/// the others.
///
/// Empty and disabled until [`Message::expect_many_subscribers`] is called
/// (by the router, when a message matches more than one subscriber or is
/// retained): a message that reaches one subscriber is encoded straight
/// into that subscriber's write buffer, as before. Not part of the
/// message's value: clones start empty and it never affects equality.
#[derive(Default)]
pub struct FrameCache {
    enabled: AtomicBool,
    slots: OnceLock<Box<[Slot; SLOTS]>>,
}

impl FrameCache {
    fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    fn slot(&self, version: ProtocolVersion, qos: QoS, retain: bool) -> &Slot {
        let slots = self
            .slots
            .get_or_init(|| Box::new(std::array::from_fn(|_| OnceLock::new())));
        let index = usize::from(version.is_v5()) * 6 + (qos as usize) * 2 + usize::from(retain);
        &slots[index]
    }
}

impl Clone for FrameCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for FrameCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for FrameCache {}

impl fmt::Debug for FrameCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self.slots.get().map_or(0, |slots| {
            slots.iter().filter(|s| s.get().is_some()).count()
        });
        f.debug_struct("FrameCache")
            .field("enabled", &self.is_enabled())
            .field("cached", &cached)
            .finish()
    }
}

impl Message {
    /// Marks the message as going to several subscribers: from now on its
    /// PUBLISH frames are encoded once per version, QoS and RETAIN flag and
    /// shared by every subscriber that needs the same bytes.
    pub fn expect_many_subscribers(&self) {
        self.frames.enable();
    }

    /// The PUBLISH frame of this message for `version`, `qos` and `retain`
    /// carrying `expiry` (with a placeholder packet identifier for QoS 1/2)
    /// and the topic without its first `strip` bytes (a subscriber's
    /// mountpoint): the cached one when there is one for that key encoded
    /// with the same expiry and strip, else encoded now (and cached when the
    /// cache is enabled and the slot is free).
    pub fn frame(
        &self,
        version: ProtocolVersion,
        qos: QoS,
        retain: bool,
        expiry: Option<u32>,
        strip: u32,
    ) -> Result<Cow<'_, EncodedPublish>, EncodeError> {
        // v3 frames carry no properties: the expiry does not change them.
        let expiry = if version.is_v5() { expiry } else { None };
        let encode = || {
            let opts = PublishOpts {
                qos,
                retain,
                subscription_id: None,
            };
            let packet_id = (qos != QoS::AtMostOnce).then_some(1);
            let mut publish = self.publish_with(&opts, packet_id, expiry);
            publish.topic = self.topic_after(strip);
            EncodedPublish::new(&publish, version)
        };
        if !self.frames.is_enabled() {
            return encode().map(Cow::Owned);
        }
        let slot = self.frames.slot(version, qos, retain);
        if let Some((cached_expiry, cached_strip, frame)) = slot.get() {
            return if *cached_expiry == expiry && *cached_strip == strip {
                Ok(Cow::Borrowed(frame))
            } else {
                // Another second of expiry has passed, or the frame is of
                // another topic (another mountpoint): this one is unshared.
                encode().map(Cow::Owned)
            };
        }
        let frame = encode()?;
        match slot.set((expiry, strip, frame)) {
            Ok(()) => Ok(Cow::Borrowed(&slot.get().expect("just set").2)),
            // Another thread filled the slot first: ours is as good.
            Err((_, _, frame)) => Ok(Cow::Owned(frame)),
        }
    }

    /// The topic without its first `strip` bytes (a mountpoint), or whole
    /// when it is not that long or would be cut inside a character.
    pub(crate) fn topic_after(&self, strip: u32) -> ByteStr {
        let strip = strip as usize;
        match self.topic.get(strip..) {
            Some(rest) if strip > 0 => self.topic.slice_ref(rest),
            _ => self.topic.clone(),
        }
    }

    /// The codec PUBLISH of this message with `opts`, `packet_id` and
    /// `expiry` as the message expiry interval; DUP 0, no topic alias.
    pub(super) fn publish_with(
        &self,
        opts: &PublishOpts,
        packet_id: Option<u16>,
        expiry: Option<u32>,
    ) -> Publish {
        let props = &self.properties;
        Publish {
            dup: false,
            qos: opts.qos,
            retain: opts.retain,
            topic: self.topic.clone(),
            packet_id,
            payload: self.payload.clone(),
            properties: PublishProperties {
                payload_format_indicator: props.payload_format_indicator,
                message_expiry_interval: expiry,
                topic_alias: None,
                response_topic: props.response_topic.clone(),
                correlation_data: props.correlation_data.clone(),
                user_properties: props.user_properties.clone(),
                subscription_identifiers: opts.subscription_id.into_iter().collect(),
                content_type: props.content_type.clone(),
            },
        }
    }
}

/// One subscriber's PUBLISH of a shared message, as the session sends it
/// and the connection writes it: the message by reference and what is this
/// subscriber's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutPublish {
    /// The shared message.
    pub message: Arc<Message>,
    /// QoS, RETAIN and subscription identifier for this subscriber.
    pub opts: PublishOpts,
    /// The packet identifier (QoS 1/2).
    pub packet_id: Option<u16>,
    /// The DUP flag (a resend).
    pub dup: bool,
    /// The message expiry interval to send: the seconds left when the
    /// session sent it (MQTT-3.3.2-6), `None` if the message never expires.
    pub expiry: Option<u32>,
    /// The topic alias the connection applies (v5), if any.
    pub topic_alias: Option<u16>,
    /// True when the alias is already known to the client, so the topic
    /// name is sent empty (MQTT-3.3.2-12).
    pub alias_only: bool,
    /// How many bytes at the start of the message's topic are not sent:
    /// the subscriber's mountpoint, which its client does not see.
    pub strip: u32,
}

impl OutPublish {
    /// The codec PUBLISH this stands for.
    pub fn to_publish(&self) -> Publish {
        let mut publish = self
            .message
            .publish_with(&self.opts, self.packet_id, self.expiry);
        publish.dup = self.dup;
        publish.properties.topic_alias = self.topic_alias;
        if self.alias_only {
            publish.topic = ByteStr::new();
        } else if self.strip > 0 {
            publish.topic = self.message.topic_after(self.strip);
        }
        publish
    }

    /// Whether its bytes may be shared with other subscribers: no
    /// subscription identifier and no topic alias of its own.
    fn is_shareable(&self) -> bool {
        self.opts.subscription_id.is_none() && self.topic_alias.is_none()
    }

    /// Its size on the wire in `version` (to compare with the client's
    /// Maximum Packet Size).
    pub fn encoded_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if self.is_shareable() && self.message.frames.is_enabled() {
            let frame = self.frame(version)?;
            return Ok(frame.len());
        }
        codec::encoded_len(&Packet::Publish(self.to_publish()), version)
    }

    /// Appends it, encoded for `version`, to `buf`: from the message's
    /// shared frame when it can be, else encoded for this subscriber.
    pub fn encode(&self, version: ProtocolVersion, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if self.is_shareable() && self.message.frames.is_enabled() {
            return self.frame(version)?.write_to(buf, self.packet_id, self.dup);
        }
        codec::encode(&Packet::Publish(self.to_publish()), version, buf)
    }

    fn frame(&self, version: ProtocolVersion) -> Result<Cow<'_, EncodedPublish>, EncodeError> {
        self.message.frame(
            version,
            self.opts.qos,
            self.opts.retain,
            self.expiry,
            self.strip,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;

    use super::*;
    use crate::codec::{PayloadFormat, Publish};

    const VERSIONS: [ProtocolVersion; 3] = [
        ProtocolVersion::V3_1,
        ProtocolVersion::V3_1_1,
        ProtocolVersion::V5,
    ];
    const QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

    fn message(expiry: Option<u32>, now: Instant) -> Arc<Message> {
        let publish = Publish {
            qos: QoS::ExactlyOnce,
            retain: true,
            topic: "fleet/7/temp".into(),
            packet_id: Some(3),
            payload: Bytes::from_static(b"21.5"),
            properties: PublishProperties {
                payload_format_indicator: Some(PayloadFormat::Utf8),
                message_expiry_interval: expiry,
                content_type: Some("text/plain".into()),
                user_properties: vec![("site".into(), "north".into())],
                ..PublishProperties::default()
            },
            ..Publish::default()
        };
        Arc::new(Message::from_publish(publish, "pub".into(), now))
    }

    fn out(message: &Arc<Message>, qos: QoS, retain: bool, dup: bool, now: Instant) -> OutPublish {
        let opts = PublishOpts {
            qos,
            retain,
            subscription_id: None,
        };
        let id = (qos != QoS::AtMostOnce).then_some(0x1234);
        let mut publish = message.out_publish(opts, id, now).expect("not expired");
        publish.dup = dup;
        publish
    }

    /// The bytes the codec produces for the same PUBLISH built alone.
    fn reference(publish: &OutPublish, version: ProtocolVersion) -> BytesMut {
        let mut buf = BytesMut::new();
        codec::encode(&Packet::Publish(publish.to_publish()), version, &mut buf).expect("encode");
        buf
    }

    #[test]
    fn shared_frames_are_the_bytes_of_each_subscribers_own_publish() {
        let now = Instant::now();
        for expiry in [None, Some(60)] {
            let m = message(expiry, now);
            m.expect_many_subscribers();
            for version in VERSIONS {
                for qos in QOS {
                    for retain in [false, true] {
                        // DUP is 0 for QoS 0 (MQTT-3.3.1-2): only resends set it.
                        for dup in [false, qos != QoS::AtMostOnce] {
                            let p = out(&m, qos, retain, dup, now);
                            let mut buf = BytesMut::from(&b"before"[..]);
                            p.encode(version, &mut buf).expect("encode");
                            assert_eq!(&buf[..6], b"before");
                            assert_eq!(
                                &buf[6..],
                                &reference(&p, version)[..],
                                "{version:?} {qos:?} retain={retain} dup={dup} expiry={expiry:?}"
                            );
                            assert_eq!(p.encoded_len(version), Ok(buf.len() - 6));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_frame_is_encoded_once_per_version_qos_and_retain() {
        let now = Instant::now();
        let m = message(None, now);
        m.expect_many_subscribers();
        let first = m.frame(ProtocolVersion::V5, QoS::AtLeastOnce, false, None, 0);
        let second = m.frame(ProtocolVersion::V5, QoS::AtLeastOnce, false, None, 0);
        let (Ok(Cow::Borrowed(a)), Ok(Cow::Borrowed(b))) = (first, second) else {
            panic!("expected both from the cache");
        };
        assert_eq!(a.frame().as_ptr(), b.frame().as_ptr());
        // v3.1 and v3.1.1 PUBLISHes are the same bytes: one frame.
        let v31 = m.frame(ProtocolVersion::V3_1, QoS::AtMostOnce, false, None, 0);
        let v311 = m.frame(ProtocolVersion::V3_1_1, QoS::AtMostOnce, false, None, 0);
        let (Ok(Cow::Borrowed(a)), Ok(Cow::Borrowed(b))) = (v31, v311) else {
            panic!("expected both from the cache");
        };
        assert_eq!(a.frame().as_ptr(), b.frame().as_ptr());
        // Other keys are other frames.
        let v5_q0 = m.frame(ProtocolVersion::V5, QoS::AtMostOnce, false, None, 0);
        assert_ne!(v5_q0.expect("encode").frame().as_ptr(), a.frame().as_ptr());
        assert!(
            format!("{:?}", m.frames).contains("cached: 3"),
            "{:?}",
            m.frames
        );
    }

    #[test]
    fn a_message_for_one_subscriber_is_not_cached() {
        let now = Instant::now();
        let m = message(None, now);
        let frame = m.frame(ProtocolVersion::V5, QoS::AtMostOnce, false, None, 0);
        assert!(matches!(frame, Ok(Cow::Owned(_))));
        assert!(m.frames.slots.get().is_none());
        // The clone of a message (the retained store's copy) starts empty.
        m.expect_many_subscribers();
        assert!(!m.compact().frames.is_enabled());
    }

    #[test]
    fn the_expiry_left_changes_the_v5_bytes_but_not_the_v3_ones() {
        let t0 = Instant::now();
        let m = message(Some(60), t0);
        m.expect_many_subscribers();
        let early = out(&m, QoS::AtMostOnce, false, false, t0);
        let late = out(
            &m,
            QoS::AtMostOnce,
            false,
            false,
            t0 + Duration::from_secs(10),
        );
        assert_eq!((early.expiry, late.expiry), (Some(60), Some(50)));
        for p in [&early, &late, &early] {
            for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
                let mut buf = BytesMut::new();
                p.encode(version, &mut buf).expect("encode");
                assert_eq!(buf, reference(p, version));
            }
        }
    }

    #[test]
    fn subscription_ids_and_topic_aliases_are_encoded_per_subscriber() {
        let now = Instant::now();
        let m = message(None, now);
        m.expect_many_subscribers();
        let mut with_id = out(&m, QoS::AtLeastOnce, false, false, now);
        with_id.opts.subscription_id = Some(42);
        let mut aliased = out(&m, QoS::AtMostOnce, false, false, now);
        aliased.topic_alias = Some(3);
        aliased.alias_only = true;
        for p in [&with_id, &aliased] {
            let mut buf = BytesMut::new();
            p.encode(ProtocolVersion::V5, &mut buf).expect("encode");
            assert_eq!(buf, reference(p, ProtocolVersion::V5));
        }
        assert_eq!(
            with_id.to_publish().properties.subscription_identifiers,
            [42]
        );
        assert!(aliased.to_publish().topic.is_empty());
        // Neither filled a slot.
        assert!(m.frames.slots.get().is_none());
    }

    #[test]
    fn a_stripped_topic_never_reuses_a_frame_of_the_whole_topic() {
        let now = Instant::now();
        let m = message(None, now);
        m.expect_many_subscribers();
        let whole = out(&m, QoS::AtLeastOnce, false, false, now);
        let mut stripped = whole.clone();
        stripped.strip = "fleet/".len() as u32;
        assert_eq!(stripped.to_publish().topic, "7/temp");
        // Whichever is encoded first fills the slot; the other is right too.
        for order in [[&whole, &stripped], [&stripped, &whole]] {
            let m2 = message(None, now);
            m2.expect_many_subscribers();
            for p in order {
                let p = OutPublish {
                    message: Arc::clone(&m2),
                    ..p.clone()
                };
                for version in VERSIONS {
                    let mut buf = BytesMut::new();
                    p.encode(version, &mut buf).expect("encode");
                    assert_eq!(buf, reference(&p, version), "strip={}", p.strip);
                }
            }
        }
        // Subscribers stripping the same prefix share one frame.
        let a = m.frame(ProtocolVersion::V5, QoS::AtMostOnce, false, None, 6);
        let b = m.frame(ProtocolVersion::V5, QoS::AtMostOnce, false, None, 6);
        let (Ok(Cow::Borrowed(a)), Ok(Cow::Borrowed(b))) = (a, b) else {
            panic!("expected both from the cache");
        };
        assert_eq!(a.frame().as_ptr(), b.frame().as_ptr());
        let whole = m.frame(ProtocolVersion::V5, QoS::AtMostOnce, false, None, 0);
        assert!(
            matches!(whole, Ok(Cow::Owned(_))),
            "another topic: unshared"
        );
    }
}
