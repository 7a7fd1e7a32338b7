//! The session's limits and behaviour, from the `mqtt.*` configuration.

use std::time::Duration;

use super::QueueDropPolicy;

/// Session limits and behaviour, from the `mqtt.*` configuration.
///
/// [`Default`] matches EMQX 5's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// `mqtt.max_inflight`: the outgoing window for MQTT 3 clients, and its
    /// upper bound for v5 clients (whose window is the smaller of this and
    /// their Receive Maximum, as EMQX does). 0 is treated as 1. Default 32.
    pub max_inflight: u16,
    /// `mqtt.max_mqueue_len`: queued deliveries kept at most (map EMQX's
    /// `infinity` to `usize::MAX`; 0 queues nothing). Default 1000.
    pub max_mqueue_len: usize,
    /// `mqtt.mqueue_store_qos0`: queue QoS 0 messages while the client is
    /// away (else they are dropped and counted). Default true.
    pub mqueue_store_qos0: bool,
    /// Which message a full queue drops. Default: oldest QoS 0 first.
    pub mqueue_drop_policy: QueueDropPolicy,
    /// `mqtt.max_awaiting_rel`: incoming QoS 2 messages awaiting PUBREL at
    /// most (`usize::MAX` for no limit). Default 100.
    pub max_awaiting_rel: usize,
    /// `mqtt.await_rel_timeout`: how long an incoming QoS 2 packet id waits
    /// for its PUBREL before it is forgotten. Default 300 s.
    pub await_rel_timeout: Duration,
    /// `mqtt.retry_interval`: resend an unacknowledged PUBLISH/PUBREL after
    /// this long while connected. `None` (EMQX's `infinity`, the default):
    /// resend only when the client reconnects.
    pub retry_interval: Option<Duration>,
    /// `mqtt.upgrade_qos`: deliver at the subscription's granted QoS even
    /// when the message was published with a lower one. Default false.
    pub upgrade_qos: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            max_inflight: 32,
            max_mqueue_len: 1000,
            mqueue_store_qos0: true,
            mqueue_drop_policy: QueueDropPolicy::OldestQos0First,
            max_awaiting_rel: 100,
            await_rel_timeout: Duration::from_secs(300),
            retry_interval: None,
            upgrade_qos: false,
        }
    }
}
