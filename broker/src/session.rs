//! The session state machine of one client id (EMQX's `emqx_session_mem`).
//!
//! Pure: no I/O, no clock, no runtime. The owner (the channel, inside the
//! client's actor) feeds it events with the current time and sends the
//! packets it pushes into `out`, in order. The session outlives connections:
//! when the socket closes it is kept (see [`Session::on_disconnect`]), queues
//! what arrives, and on resume ([`Session::replay`]) resends what was in
//! flight; it is `Send` and may move to another actor on takeover.
//!
//! ```text
//!            deliver ──► no_local / expired ──► dropped (counted)
//!               │
//!   QoS 0, online ─────────────────────────────► PUBLISH
//!   QoS 1/2, online, free slot ─► inflight ────► PUBLISH (fresh packet id)
//!   otherwise ─► mqueue (bounded; full: drop by policy, counted)
//!
//!   inflight (QoS 1): PUBLISH ──PUBACK──► done, slot freed, queue drained
//!   inflight (QoS 2): PUBLISH ──PUBREC──► PUBREL ──PUBCOMP──► done, ...
//!   incoming QoS 2:   PUBLISH ─► awaiting_rel ──PUBREL──► released
//! ```
//!
//! # Layout
//!
//! - `session.rs`: [`Session`], [`SessionError`], [`Outgoing`].
//! - `session/config.rs`: [`SessionConfig`] (`mqtt.*`).
//! - `session/stats.rs`: [`SessionInfo`], [`SessionStats`], [`DropStats`].
//! - `session/inflight.rs`: the outgoing window and packet id allocator.
//! - `session/mqueue.rs`: the bounded queue and its [`QueueDropPolicy`].
//! - `session/snapshot.rs`: [`SessionSnapshot`], the session as plain data
//!   to move it to another node.
//! - `session/tests.rs`: state-machine tests; `session/proptests.rs`: a
//!   model-based property test of the window, packet ids and accounting.

mod config;
mod inflight;
mod mqueue;
#[cfg(test)]
mod proptests;
mod snapshot;
mod stats;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::codec::{ByteStr, Packet, PubRel, QoS, ReasonCode};
use crate::lazy_map::LazyMap;

use crate::message::{Delivery, Message, OutPublish, SubOpts};

pub use config::SessionConfig;
use inflight::{Inflight, Phase};
pub use mqueue::QueueDropPolicy;
use mqueue::{MQueue, Queued};
pub use snapshot::{InflightSnapshot, SessionSnapshot};
pub use stats::{DropStats, SessionInfo, SessionStats};

/// A client packet the session cannot accept. Each maps to the v5 reason
/// code the channel puts in its reply ([`SessionError::reason_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SessionError {
    /// An acknowledgement (PUBACK, PUBREC, PUBCOMP) or a PUBREL for a packet
    /// id that is not in flight: 0x92.
    #[error("packet identifier {0} not found")]
    PacketIdNotFound(u16),
    /// A packet id used by an exchange of another kind (a PUBACK for a QoS 2
    /// PUBLISH, a new QoS 2 PUBLISH without DUP whose id awaits PUBREL): 0x91.
    #[error("packet identifier {0} in use")]
    PacketIdInUse(u16),
    /// A new QoS 2 PUBLISH while `max_awaiting_rel` are awaiting PUBREL: 0x93.
    #[error("receive maximum exceeded: {0} QoS 2 messages already await PUBREL")]
    ReceiveMaximumExceeded(usize),
}

impl SessionError {
    /// The v5 reason code for the reply (PUBREC, PUBCOMP, DISCONNECT).
    pub const fn reason_code(&self) -> ReasonCode {
        match self {
            Self::PacketIdNotFound(_) => ReasonCode::PacketIdentifierNotFound,
            Self::PacketIdInUse(_) => ReasonCode::PacketIdentifierInUse,
            Self::ReceiveMaximumExceeded(_) => ReasonCode::ReceiveMaximumExceeded,
        }
    }
}

/// The session expiry interval that means "never expires".
const NEVER: u32 = u32::MAX;

/// A topic filter as a map key that hashes as its `str`, so that lookups
/// take a plain `&str`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FilterKey(ByteStr);

impl std::hash::Hash for FilterKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.as_str().hash(state);
    }
}

impl std::borrow::Borrow<str> for FilterKey {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

/// A packet the session sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A PUBLISH of a shared message.
    Publish(OutPublish),
    /// A PUBREL for this packet identifier.
    PubRel(u16),
}

impl Outgoing {
    /// The codec packet this stands for.
    pub fn to_packet(&self) -> Packet {
        match self {
            Self::Publish(publish) => Packet::Publish(publish.to_publish()),
            Self::PubRel(id) => Packet::PubRel(PubRel::new(*id)),
        }
    }
}

/// The state of one client id: subscriptions, outgoing window and queue,
/// incoming QoS 2 state, expiry. See the module docs for the flows.
///
/// Every method that may produce packets pushes them, in send order, into
/// an `out: &mut Vec<Outgoing>` supplied by the caller (so a batch of events
/// produces one batch of packets): PUBLISHes, as [`OutPublish`]es that share
/// their message, and PUBRELs.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
///
/// use bytes::Bytes;
/// use girder_broker::codec::{Publish, QoS};
/// use girder_broker::message::{Delivery, Message, SubOpts};
/// use girder_broker::session::{Outgoing, Session, SessionConfig, SessionError};
///
/// let now = Instant::now();
/// let mut session = Session::new("sub".into(), SessionConfig::default(), now);
/// session.subscribe("a/+".into(), SubOpts::with_qos(QoS::AtLeastOnce));
///
/// // A QoS 2 PUBLISH from another client, routed to this subscription.
/// let publish = Publish {
///     qos: QoS::ExactlyOnce,
///     topic: "a/b".into(),
///     packet_id: Some(9),
///     payload: Bytes::from_static(b"hi"),
///     ..Publish::default()
/// };
/// let message = Arc::new(Message::from_publish(publish, "pub".into(), now));
/// let mut out = Vec::new();
/// session.deliver(
///     [Delivery::new(message, SubOpts::with_qos(QoS::AtLeastOnce))],
///     now,
///     &mut out,
/// );
/// // Sent at QoS 1 (the granted QoS) with the session's first packet id.
/// let Outgoing::Publish(sent) = &out[0] else { panic!("{out:?}") };
/// assert_eq!((sent.opts.qos, sent.packet_id), (QoS::AtLeastOnce, Some(1)));
///
/// out.clear();
/// session.on_puback(1, now, &mut out)?;
/// assert!(out.is_empty());
/// assert_eq!(session.on_puback(1, now, &mut out), Err(SessionError::PacketIdNotFound(1)));
/// # Ok::<(), SessionError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Session {
    client_id: ByteStr,
    config: Arc<SessionConfig>,
    subscriptions: LazyMap<FilterKey, SubOpts>,
    inflight: Inflight,
    mqueue: MQueue,
    /// Incoming QoS 2 packet id -> when its PUBLISH arrived.
    awaiting_rel: LazyMap<u16, Instant>,
    connected: bool,
    created_at: Instant,
    disconnected_at: Option<Instant>,
    /// The session expiry interval in seconds, [`NEVER`] for none (as MQTT
    /// encodes it).
    expiry_secs: u32,
    /// Allocated at the first count: a session that never carries a
    /// message keeps none.
    stats: Option<Box<SessionStats>>,
}

impl Session {
    /// A new, connected session for `client_id`, with a window of
    /// `config.max_inflight` (call [`Self::set_receive_maximum`] for a v5
    /// client) and a session expiry interval of 0.
    pub fn new(client_id: ByteStr, config: impl Into<Arc<SessionConfig>>, now: Instant) -> Self {
        let config = config.into();
        Self {
            client_id,
            inflight: Inflight::new(config.max_inflight),
            mqueue: MQueue::new(config.max_mqueue_len, config.mqueue_drop_policy),
            config,
            subscriptions: LazyMap::new(),
            awaiting_rel: LazyMap::new(),
            connected: true,
            created_at: now,
            disconnected_at: None,
            expiry_secs: 0,
            stats: None,
        }
    }

    /// The client id.
    pub fn client_id(&self) -> &ByteStr {
        &self.client_id
    }

    /// When the session was created (with its client id, what tells this
    /// session from an earlier or later one of the same client).
    pub fn created_at(&self) -> Instant {
        self.created_at
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Whether a connection currently holds the session.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Counters since creation.
    pub fn stats(&self) -> SessionStats {
        self.stats.as_deref().copied().unwrap_or_default()
    }

    /// The counters, to count in.
    fn count(&mut self) -> &mut SessionStats {
        self.stats.get_or_insert_default()
    }

    // --- subscriptions ---------------------------------------------------

    /// Records (or replaces) the subscription to `filter` and returns the
    /// options it replaced: `None` means it is new, which decides retained
    /// messages under retain handling 1 (MQTT-3.3.1-10). The subscriber
    /// index and routes are the caller's business.
    pub fn subscribe(&mut self, filter: ByteStr, opts: SubOpts) -> Option<SubOpts> {
        self.subscriptions.insert(FilterKey(filter), opts)
    }

    /// Removes the subscription to `filter`; returns its options, or `None`
    /// if there was none (v5 UNSUBACK 0x11 No subscription existed).
    pub fn unsubscribe(&mut self, filter: &str) -> Option<SubOpts> {
        self.subscriptions.remove(filter)
    }

    /// The options of the subscription to `filter`.
    pub fn subscription(&self, filter: &str) -> Option<&SubOpts> {
        self.subscriptions.get(filter)
    }

    /// Every subscription, in no particular order (to re-add them to the
    /// subscriber index on resume or takeover).
    pub fn subscriptions(&self) -> impl Iterator<Item = (&ByteStr, &SubOpts)> {
        self.subscriptions.iter().map(|(k, v)| (&k.0, v))
    }

    // --- outgoing messages -------------------------------------------------

    /// Takes a batch of deliveries for this client and pushes the PUBLISH
    /// packets to send now into `out`.
    ///
    /// Each delivery is dropped (and counted) if its subscription is
    /// `no_local` and this client published it, or if it has expired.
    /// Otherwise, with the QoS from [`Delivery::publish_opts`]: while
    /// connected, QoS 0 is sent at once and QoS 1/2 is sent with a fresh
    /// packet id if the window has a free slot, else queued; while away,
    /// everything is queued (QoS 0 only with `mqueue_store_qos0`). A full
    /// queue drops one delivery by its policy, counted as `queue_full`.
    pub fn deliver(
        &mut self,
        deliveries: impl IntoIterator<Item = Delivery>,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        for delivery in deliveries {
            if delivery.is_no_local_for(&self.client_id) {
                self.count().dropped.no_local += 1;
                continue;
            }
            if delivery.message.is_expired(now) {
                self.count().dropped.expired += 1;
                continue;
            }
            let opts = delivery.publish_opts(self.config.upgrade_qos);
            let item = Queued {
                message: delivery.message,
                opts,
            };
            if !self.connected {
                if opts.qos == QoS::AtMostOnce && !self.config.mqueue_store_qos0 {
                    self.count().dropped.qos0_offline += 1;
                } else {
                    self.enqueue(item);
                }
            } else if opts.qos == QoS::AtMostOnce
                || (self.mqueue.len() == 0 && !self.inflight.is_full())
            {
                self.send(item, now, out);
            } else {
                // Behind what is already queued, never ahead of it.
                self.enqueue(item);
                self.drain(now, out);
            }
        }
    }

    /// PUBACK for `packet_id` (any reason code): ends that QoS 1 exchange,
    /// then fills the freed slot from the queue (pushing those PUBLISHes).
    ///
    /// Errors, with nothing changed: [`SessionError::PacketIdNotFound`] if
    /// the id is not in flight, [`SessionError::PacketIdInUse`] if it is a
    /// QoS 2 exchange. The channel ignores them (a PUBACK has no reply).
    pub fn on_puback(
        &mut self,
        packet_id: u16,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), SessionError> {
        match self.inflight.get(packet_id).map(|e| &e.phase) {
            Some(Phase::Publish { opts, .. }) if opts.qos == QoS::AtLeastOnce => {}
            Some(_) => return Err(SessionError::PacketIdInUse(packet_id)),
            None => return Err(SessionError::PacketIdNotFound(packet_id)),
        }
        self.complete(packet_id, now, out);
        Ok(())
    }

    /// PUBREC for `packet_id` with `reason`.
    ///
    /// Success (< 0x80): the QoS 2 exchange moves on and its PUBREL is
    /// pushed; the slot stays taken until PUBCOMP (MQTT-4.9.0-2). A repeated
    /// PUBREC for an exchange already released pushes the PUBREL again.
    /// Error reason (>= 0x80): the client refused the message; the exchange
    /// ends, no PUBREL, and the freed slot is refilled from the queue.
    ///
    /// Errors, with nothing changed: [`SessionError::PacketIdNotFound`]
    /// (reply PUBREL 0x92), [`SessionError::PacketIdInUse`] for a QoS 1
    /// exchange.
    pub fn on_pubrec(
        &mut self,
        packet_id: u16,
        reason: ReasonCode,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), SessionError> {
        let entry = self
            .inflight
            .get_mut(packet_id)
            .ok_or(SessionError::PacketIdNotFound(packet_id))?;
        if let Phase::Publish { opts, .. } = &entry.phase {
            if opts.qos != QoS::ExactlyOnce {
                return Err(SessionError::PacketIdInUse(packet_id));
            }
        }
        if reason.is_error() {
            self.complete(packet_id, now, out);
        } else {
            entry.phase = Phase::Rel;
            entry.sent_at = now;
            out.push(Outgoing::PubRel(packet_id));
        }
        Ok(())
    }

    /// PUBCOMP for `packet_id`: ends that QoS 2 exchange, then fills the
    /// freed slot from the queue (pushing those PUBLISHes).
    ///
    /// Errors, with nothing changed: [`SessionError::PacketIdNotFound`] if
    /// the id is not in flight, [`SessionError::PacketIdInUse`] if its
    /// PUBREL was not sent yet.
    pub fn on_pubcomp(
        &mut self,
        packet_id: u16,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), SessionError> {
        match self.inflight.get(packet_id).map(|e| &e.phase) {
            Some(Phase::Rel) => {}
            Some(Phase::Publish { .. }) => return Err(SessionError::PacketIdInUse(packet_id)),
            None => return Err(SessionError::PacketIdNotFound(packet_id)),
        }
        self.complete(packet_id, now, out);
        Ok(())
    }

    // --- incoming QoS 2 ----------------------------------------------------

    /// A QoS 2 PUBLISH from the client with `packet_id` and DUP flag `dup`.
    ///
    /// `Ok(true)`: new; route the message, then reply PUBREC. `Ok(false)`: a
    /// DUP resend of a message already routed and awaiting PUBREL; do not
    /// route it again (exactly once, MQTT-4.3.3), reply PUBREC.
    ///
    /// Errors (do not route): [`SessionError::PacketIdInUse`] for a non-DUP
    /// PUBLISH whose id already awaits PUBREL (reply PUBREC 0x91; a v3
    /// client gets a plain PUBREC), [`SessionError::ReceiveMaximumExceeded`]
    /// when `max_awaiting_rel` ids already wait (DISCONNECT 0x93).
    pub fn on_publish_qos2(
        &mut self,
        packet_id: u16,
        dup: bool,
        now: Instant,
    ) -> Result<bool, SessionError> {
        if self.awaiting_rel.contains_key(&packet_id) {
            return if dup {
                Ok(false)
            } else {
                Err(SessionError::PacketIdInUse(packet_id))
            };
        }
        if self.awaiting_rel.len() >= self.config.max_awaiting_rel {
            return Err(SessionError::ReceiveMaximumExceeded(
                self.awaiting_rel.len(),
            ));
        }
        self.awaiting_rel.insert(packet_id, now);
        Ok(true)
    }

    /// How many incoming QoS 2 messages await their PUBREL.
    pub fn awaiting_rel_len(&self) -> usize {
        self.awaiting_rel.len()
    }

    /// Whether incoming QoS 2 message `packet_id` awaits its PUBREL.
    pub fn is_awaiting_rel(&self, packet_id: u16) -> bool {
        self.awaiting_rel.contains_key(&packet_id)
    }

    /// PUBREL from the client: releases `packet_id` (reply PUBCOMP).
    ///
    /// Error: [`SessionError::PacketIdNotFound`] if the id does not await
    /// PUBREL (reply PUBCOMP 0x92; v3: a plain PUBCOMP).
    pub fn on_pubrel(&mut self, packet_id: u16) -> Result<(), SessionError> {
        self.awaiting_rel
            .remove(&packet_id)
            .map(|_| ())
            .ok_or(SessionError::PacketIdNotFound(packet_id))
    }

    /// Forgets incoming QoS 2 ids that have waited `await_rel_timeout` or
    /// more for their PUBREL; returns how many (also counted in stats).
    pub fn expire_awaiting_rel(&mut self, now: Instant) -> usize {
        let timeout = self.config.await_rel_timeout;
        let before = self.awaiting_rel.len();
        self.awaiting_rel
            .retain(|_, received| now.saturating_duration_since(*received) < timeout);
        let expired = before - self.awaiting_rel.len();
        self.count().awaiting_rel_expired += expired as u64;
        expired
    }

    // --- connection lifecycle ------------------------------------------------

    /// The connection closed at `now`: from now on deliveries are queued,
    /// and the expiry clock runs. Inflight state is kept for the replay.
    pub fn on_disconnect(&mut self, now: Instant) {
        self.connected = false;
        self.disconnected_at = Some(now);
    }

    /// Sets the window for the connection that holds the session: the
    /// client's v5 Receive Maximum capped by `max_inflight`, or
    /// `max_inflight` when `None` (MQTT 3, or v5 without the property).
    ///
    /// Call it before [`Self::replay`] on resume. Shrinking below what is in
    /// flight keeps those exchanges; nothing new is sent until they fit.
    pub fn set_receive_maximum(&mut self, receive_maximum: Option<u16>) {
        let max = self.config.max_inflight;
        self.inflight
            .set_max(receive_maximum.map_or(max, |rm| rm.min(max)));
    }

    /// A connection resumed the session at `now` (CONNECT with clean start
    /// 0, locally or after takeover): it is connected again, and this pushes
    /// every inflight exchange again in its original order (PUBLISH with
    /// DUP = 1 and its packet id, or PUBREL for those past PUBREC;
    /// MQTT-4.4.0-1), then drains the queue into the free slots.
    ///
    /// An inflight PUBLISH whose message has expired is dropped instead
    /// (counted as expired), as EMQX does.
    pub fn replay(&mut self, now: Instant, out: &mut Vec<Outgoing>) {
        self.connected = true;
        self.disconnected_at = None;
        for id in self.inflight.ids_in_order() {
            self.resend(id, now, out);
        }
        self.drain(now, out);
    }

    /// While connected and with a `retry_interval` set: pushes again (as in
    /// [`Self::replay`]) each exchange whose last packet was sent at least
    /// `retry_interval` before `now`, oldest first, then refills any slots
    /// freed by expired messages. Does nothing otherwise.
    pub fn retry(&mut self, now: Instant, out: &mut Vec<Outgoing>) {
        let Some(interval) = self.config.retry_interval else {
            return;
        };
        if !self.connected {
            return;
        }
        for id in self.inflight.ids_in_order() {
            let due = self
                .inflight
                .get(id)
                .is_some_and(|e| now.saturating_duration_since(e.sent_at) >= interval);
            if due {
                self.resend(id, now, out);
            }
        }
        self.drain(now, out);
    }

    /// When [`Self::retry`] has work next, if ever (while connected).
    pub fn retry_deadline(&self) -> Option<Instant> {
        let interval = self.config.retry_interval?;
        if !self.connected {
            return None;
        }
        self.inflight
            .iter()
            .map(|(_, e)| e.sent_at + interval)
            .min()
    }

    /// When [`Self::expire_awaiting_rel`] has work next, if ever.
    pub fn awaiting_rel_deadline(&self) -> Option<Instant> {
        let timeout = self.config.await_rel_timeout;
        self.awaiting_rel.values().map(|at| *at + timeout).min()
    }

    // --- session expiry ----------------------------------------------------

    /// Sets the session expiry interval (from CONNECT or DISCONNECT, capped
    /// by the channel); `None` means never (v5 0xFFFFFFFF).
    pub fn set_expiry_interval(&mut self, interval: Option<Duration>) {
        self.expiry_secs = interval.map_or(NEVER, |i| {
            u32::try_from(i.as_secs()).map_or(NEVER, |s| s.min(NEVER - 1))
        });
    }

    /// The session expiry interval; `None`: never expires.
    pub fn expiry_interval(&self) -> Option<Duration> {
        (self.expiry_secs != NEVER).then(|| Duration::from_secs(self.expiry_secs.into()))
    }

    /// When the session ends if no connection resumes it: disconnect time
    /// plus the expiry interval. `None` while connected or if it never
    /// expires.
    pub fn expires_at(&self) -> Option<Instant> {
        self.disconnected_at?.checked_add(self.expiry_interval()?)
    }

    /// True once [`Self::expires_at`] has passed; the owner then discards
    /// the session.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at().is_some_and(|at| now >= at)
    }

    /// The QoS 1 and 2 messages the client has not received for sure: those
    /// in flight whose PUBLISH is unacknowledged (not yet PUBACK or PUBREC),
    /// then the queued ones, in order. A session that ends hands them to
    /// the router, which gives those of shared subscriptions to another
    /// member of the group (EMQX's redispatch).
    pub fn unacked_messages(&self) -> Vec<Arc<Message>> {
        let mut ids = self.inflight.ids_in_order();
        ids.retain(|id| {
            matches!(
                self.inflight.get(*id).map(|e| &e.phase),
                Some(Phase::Publish { .. })
            )
        });
        let inflight = ids
            .into_iter()
            .filter_map(|id| match self.inflight.get(id) {
                Some(inflight::Entry {
                    phase: Phase::Publish { message, .. },
                    ..
                }) => Some(Arc::clone(message)),
                _ => None,
            });
        let queued = self
            .mqueue
            .iter()
            .filter(|q| q.opts.qos != QoS::AtMostOnce)
            .map(|q| Arc::clone(&q.message));
        inflight.chain(queued).collect()
    }

    /// A snapshot for the admin API.
    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            client_id: self.client_id.clone(),
            connected: self.connected,
            created_at: self.created_at,
            disconnected_at: self.disconnected_at,
            expiry_interval: self.expiry_interval(),
            subscriptions: self.subscriptions.len(),
            inflight: self.inflight.len(),
            inflight_max: self.inflight.max(),
            mqueue_len: self.mqueue.len(),
            mqueue_max: self.mqueue.max_len(),
            awaiting_rel: self.awaiting_rel.len(),
            awaiting_rel_max: self.config.max_awaiting_rel,
            stats: self.stats(),
        }
    }

    // --- internals -----------------------------------------------------------

    /// Sends `item` now: QoS 0 directly, QoS 1/2 into a free slot (the
    /// caller checked there is one). An expired message is dropped.
    fn send(&mut self, item: Queued, now: Instant, out: &mut Vec<Outgoing>) {
        if item.opts.qos == QoS::AtMostOnce {
            match item.message.out_publish(item.opts, None, now) {
                Some(publish) => {
                    self.count().delivered += 1;
                    out.push(Outgoing::Publish(publish));
                }
                None => self.count().dropped.expired += 1,
            }
            return;
        }
        if item.message.is_expired(now) {
            self.count().dropped.expired += 1;
            return;
        }
        let Queued { message, opts } = item;
        let id = self.inflight.insert(
            Phase::Publish {
                message: message.clone(),
                opts,
            },
            now,
        );
        match message.out_publish(opts, Some(id), now) {
            Some(publish) => {
                self.count().delivered += 1;
                out.push(Outgoing::Publish(publish));
            }
            None => {
                self.inflight.remove(id);
                self.count().dropped.expired += 1;
            }
        }
    }

    fn enqueue(&mut self, item: Queued) {
        self.count().enqueued += 1;
        if self.mqueue.push(item).is_some() {
            self.count().dropped.queue_full += 1;
        }
    }

    /// Ends exchange `id` (known to be in flight) and refills the window.
    fn complete(&mut self, id: u16, now: Instant, out: &mut Vec<Outgoing>) {
        self.inflight.remove(id);
        self.count().acked += 1;
        self.drain(now, out);
    }

    /// Resends exchange `id`: its PUBLISH with DUP = 1 (or drops it if the
    /// message expired), or its PUBREL.
    fn resend(&mut self, id: u16, now: Instant, out: &mut Vec<Outgoing>) {
        let Some(entry) = self.inflight.get_mut(id) else {
            return;
        };
        let packet = match &entry.phase {
            Phase::Rel => Some(Outgoing::PubRel(id)),
            Phase::Publish { message, opts } => {
                message
                    .out_publish(*opts, Some(id), now)
                    .map(|mut publish| {
                        publish.dup = true;
                        Outgoing::Publish(publish)
                    })
            }
        };
        match packet {
            Some(packet) => {
                entry.sent_at = now;
                self.count().resent += 1;
                out.push(packet);
            }
            None => {
                self.inflight.remove(id);
                self.count().dropped.expired += 1;
            }
        }
    }

    /// While connected, moves queued deliveries out in order: QoS 0 always,
    /// QoS 1/2 while the window has a free slot.
    fn drain(&mut self, now: Instant, out: &mut Vec<Outgoing>) {
        if !self.connected {
            return;
        }
        while let Some(front) = self.mqueue.front() {
            if front.opts.qos != QoS::AtMostOnce && self.inflight.is_full() {
                break;
            }
            if let Some(item) = self.mqueue.pop() {
                self.send(item, now, out);
            }
        }
    }
}
