//! The settings a channel applies, filled by the node from `mqtt.*`.

use std::sync::Arc;
use std::time::Duration;

use crate::codec::QoS;
use crate::session::SessionConfig;
use crate::topic::TopicLimits;

/// What a channel enforces and advertises, one value per `mqtt.*` key.
///
/// Plain data so that it can be shared (`Arc`) by every channel of a
/// listener; the defaults are EMQX 5's.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// Largest packet accepted from a client (`mqtt.max_packet_size`),
    /// advertised as Maximum Packet Size in a v5 CONNACK.
    pub max_packet_size: u32,
    /// Longest client identifier accepted (`mqtt.max_clientid_len`).
    pub max_clientid_len: usize,
    /// Limits on topic names and filters (`mqtt.max_topic_levels`).
    pub topic_limits: TopicLimits,
    /// Highest QoS accepted in PUBLISH and granted in SUBSCRIBE
    /// (`mqtt.max_qos_allowed`).
    pub max_qos_allowed: QoS,
    /// Topic Alias Maximum advertised to v5 clients (`mqtt.max_topic_alias`);
    /// 0 disables inbound aliases.
    pub max_topic_alias: u16,
    /// Whether retained messages are supported (`mqtt.retain_available`).
    pub retain_available: bool,
    /// Whether wildcard filters may be subscribed (`mqtt.wildcard_subscription`).
    pub wildcard_subscription: bool,
    /// Whether shared subscriptions are allowed (`mqtt.shared_subscription`).
    pub shared_subscription: bool,
    /// Most subscriptions one session may hold (`mqtt.max_subscriptions`);
    /// `None` is unlimited.
    pub max_subscriptions: Option<usize>,
    /// Keep alive imposed on v5 clients through Server Keep Alive
    /// (`mqtt.server_keepalive`); `None` accepts the client's.
    pub server_keepalive: Option<u16>,
    /// A client is gone after this many keep-alive periods of silence
    /// (`mqtt.keepalive_multiplier`, 1.5 by default as the spec says).
    pub keepalive_multiplier: f32,
    /// Response Information sent to v5 clients that request it
    /// (`mqtt.response_information`); empty sends none.
    pub response_information: String,
    /// Session expiry given to MQTT 3 clients that connect with
    /// clean session 0 (`mqtt.session_expiry_interval`).
    pub session_expiry_interval: Duration,
    /// Receive Maximum advertised to v5 clients: how many unacknowledged
    /// QoS 2 PUBLISH packets a client may have in flight towards the broker.
    pub receive_maximum: u16,
    /// Whether a client receives its own publications (`false` drops them, as
    /// EMQX's `mqtt.ignore_loop_deliver = true` does).
    pub ignore_loop_deliver: bool,
    /// Use the username as client id (`mqtt.use_username_as_clientid`).
    pub use_username_as_clientid: bool,
    /// Settings of the sessions this channel opens, shared by them.
    pub session: Arc<SessionConfig>,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            max_packet_size: 1024 * 1024,
            max_clientid_len: 65535,
            topic_limits: TopicLimits::default(),
            max_qos_allowed: QoS::ExactlyOnce,
            max_topic_alias: 65535,
            retain_available: true,
            wildcard_subscription: true,
            shared_subscription: true,
            max_subscriptions: None,
            server_keepalive: None,
            keepalive_multiplier: 1.5,
            response_information: String::new(),
            session_expiry_interval: Duration::from_secs(2 * 3600),
            receive_maximum: 32,
            ignore_loop_deliver: false,
            use_username_as_clientid: false,
            session: Arc::default(),
        }
    }
}
