//! What a session reports: its counters and a snapshot for the admin API.

use std::time::{Duration, Instant};

use crate::codec::ByteStr;

/// Deliveries the session dropped, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DropStats {
    /// Expired before it could be sent (on delivery, in the queue, or in
    /// flight when it was due for a resend).
    pub expired: u64,
    /// Pushed out of a full queue.
    pub queue_full: u64,
    /// QoS 0 while the client was away and `mqueue_store_qos0` is off.
    pub qos0_offline: u64,
    /// Published by this same client to its own `no_local` subscription.
    pub no_local: u64,
}

/// Counters since the session was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionStats {
    /// PUBLISH packets sent for the first time (any QoS).
    pub delivered: u64,
    /// PUBLISH (DUP) and PUBREL packets sent again, on replay or retry.
    pub resent: u64,
    /// Outgoing QoS 1/2 exchanges the client ended: PUBACK, PUBCOMP, or a
    /// PUBREC with an error reason code.
    pub acked: u64,
    /// Deliveries put in the queue.
    pub enqueued: u64,
    /// Deliveries dropped, by reason.
    pub dropped: DropStats,
    /// Incoming QoS 2 packet ids forgotten after `await_rel_timeout`.
    pub awaiting_rel_expired: u64,
}

/// A snapshot for the admin API (EMQX's client info).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The client id.
    pub client_id: ByteStr,
    /// Whether a connection currently holds the session.
    pub connected: bool,
    /// When the session was created.
    pub created_at: Instant,
    /// When the last connection closed, if none holds it now.
    pub disconnected_at: Option<Instant>,
    /// Session expiry interval; `None`: never expires.
    pub expiry_interval: Option<Duration>,
    /// Number of subscriptions.
    pub subscriptions: usize,
    /// Outgoing exchanges in flight.
    pub inflight: usize,
    /// The window size.
    pub inflight_max: usize,
    /// Queued deliveries.
    pub mqueue_len: usize,
    /// The queue bound.
    pub mqueue_max: usize,
    /// Incoming QoS 2 packet ids awaiting PUBREL.
    pub awaiting_rel: usize,
    /// The bound on those.
    pub awaiting_rel_max: usize,
    /// Counters.
    pub stats: SessionStats,
}
