//! The settings a channel applies, filled by the node from `mqtt.*`.

use std::sync::Arc;
use std::time::Duration;

use super::Mountpoint;
use crate::codec::QoS;
use crate::exclusive::ExclusiveTable;
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
    /// The listener's mountpoint: a prefix on every topic of its clients
    /// (`listeners.<type>.<name>.mountpoint`); `None` for none.
    pub mountpoint: Option<Mountpoint>,
    /// The holders of `$exclusive/...` filters when exclusive subscriptions
    /// are allowed (`mqtt.exclusive_subscription`); `None`: such filters are
    /// ordinary ones. One table for the whole node: the config of every
    /// listener shares it.
    pub exclusive: Option<Arc<ExclusiveTable>>,
    /// Expiry of messages whose publisher set none
    /// (`mqtt.message_expiry_interval`); `None`: they never expire.
    pub message_expiry_interval: Option<Duration>,
    /// Refuse a v5 PUBLISH (or will) that says its payload is UTF-8 when it
    /// is not (`mqtt.strict_mode`; strings are always checked by the codec).
    pub strict_mode: bool,
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
            mountpoint: None,
            exclusive: None,
            message_expiry_interval: None,
            strict_mode: false,
            session: Arc::default(),
        }
    }
}
