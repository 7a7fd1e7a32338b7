//! `mqtt` and `retainer`.

use serde::{Deserialize, Serialize};

use super::check;
use crate::error::ConfigError;
use crate::types::{disabled_or, ByteSize, Duration, Limit};

/// MQTT's largest packet: the remaining length is at most 268435455.
pub const MAX_PACKET_SIZE: u64 = 268_435_455;

keyword_enum! {
    /// How a shared subscription (`$share/group/filter`) picks its member.
    pub enum SharedSubscriptionStrategy {
        /// A random member.
        Random = "random",
        /// Each member in turn.
        RoundRobin = "round_robin",
        /// Each member in turn, one counter per group.
        RoundRobinPerGroup = "round_robin_per_group",
        /// The same member until it leaves.
        Sticky = "sticky",
        /// A member on the local node when there is one.
        Local = "local",
        /// By a hash of the publisher's client id.
        HashClientid = "hash_clientid",
        /// By a hash of the topic.
        HashTopic = "hash_topic",
    }
    default RoundRobin
}

keyword_enum! {
    /// Which part of a TLS client certificate becomes the username or
    /// client id.
    pub enum PeerCertAs {
        /// None.
        Disabled = "disabled",
        /// The subject's common name.
        Cn = "cn",
        /// The subject's distinguished name.
        Dn = "dn",
        /// The DER certificate, base64.
        Crt = "crt",
        /// The PEM certificate.
        Pem = "pem",
        /// The MD5 of the PEM certificate.
        Md5 = "md5",
    }
    default Disabled
}

/// `mqtt`: protocol limits and session settings, with EMQX 5.8's defaults.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mqtt {
    /// Close a connection that sends no CONNECT within this time.
    pub idle_timeout: Duration,
    /// Largest packet accepted (at most 268435455).
    pub max_packet_size: ByteSize,
    /// Longest client id (23..65535).
    pub max_clientid_len: u32,
    /// Most levels in a topic.
    pub max_topic_levels: u32,
    /// Highest QoS granted (0..2).
    pub max_qos_allowed: u8,
    /// Topic Alias Maximum announced to v5 clients.
    pub max_topic_alias: u16,
    /// Whether retained messages are supported.
    pub retain_available: bool,
    /// Whether `+` and `#` filters are allowed.
    pub wildcard_subscription: bool,
    /// Whether `$share/...` subscriptions are allowed.
    pub shared_subscription: bool,
    /// How shared subscriptions pick a member.
    pub shared_subscription_strategy: SharedSubscriptionStrategy,
    /// Whether `$exclusive/...` subscriptions are allowed.
    pub exclusive_subscription: bool,
    /// Do not deliver a client's own publishes back to it (v3 clients).
    pub ignore_loop_deliver: bool,
    /// Check topic and payload encodings strictly.
    pub strict_mode: bool,
    /// Response Information returned to v5 clients that ask for it.
    pub response_information: String,
    /// Keepalive imposed on v5 clients, or `disabled`.
    #[serde(deserialize_with = "disabled_or")]
    pub server_keepalive: Option<u16>,
    /// A client silent for keepalive × this is disconnected.
    pub keepalive_multiplier: f64,
    /// How often keepalives are checked.
    pub keepalive_check_interval: Duration,
    /// Resend unacknowledged QoS 1/2 messages after this long (`infinity`:
    /// only on reconnect).
    pub retry_interval: Limit<Duration>,
    /// Most subscriptions per client.
    pub max_subscriptions: Limit,
    /// Deliver at the subscription's QoS even when published lower.
    pub upgrade_qos: bool,
    /// Unacknowledged QoS 1/2 messages in flight per client (1..65535).
    pub max_inflight: u16,
    /// Incoming QoS 2 messages awaiting PUBREL per client.
    pub max_awaiting_rel: Limit,
    /// Drop an incoming QoS 2 message not released within this time.
    pub await_rel_timeout: Duration,
    /// Session expiry for clients that do not set one (MQTT 3.x).
    pub session_expiry_interval: Duration,
    /// Expiry for messages that do not set one.
    pub message_expiry_interval: Limit<Duration>,
    /// Messages queued per offline or busy session.
    pub max_mqueue_len: Limit,
    /// Queue QoS 0 messages too.
    pub mqueue_store_qos0: bool,
    /// Replace the client id with the username.
    pub use_username_as_clientid: bool,
    /// Take the username from the TLS client certificate.
    pub peer_cert_as_username: PeerCertAs,
    /// Take the client id from the TLS client certificate.
    pub peer_cert_as_clientid: PeerCertAs,
}

impl Default for Mqtt {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::secs(15),
            max_packet_size: ByteSize::mb(1),
            max_clientid_len: 65535,
            max_topic_levels: 128,
            max_qos_allowed: 2,
            max_topic_alias: 65535,
            retain_available: true,
            wildcard_subscription: true,
            shared_subscription: true,
            shared_subscription_strategy: SharedSubscriptionStrategy::RoundRobin,
            exclusive_subscription: false,
            ignore_loop_deliver: false,
            strict_mode: false,
            response_information: String::new(),
            server_keepalive: None,
            keepalive_multiplier: 1.5,
            keepalive_check_interval: Duration::secs(30),
            retry_interval: Limit::Infinity,
            max_subscriptions: Limit::Infinity,
            upgrade_qos: false,
            max_inflight: 32,
            max_awaiting_rel: Limit::Finite(100),
            await_rel_timeout: Duration::secs(300),
            session_expiry_interval: Duration::hours(2),
            message_expiry_interval: Limit::Infinity,
            max_mqueue_len: Limit::Finite(1000),
            mqueue_store_qos0: true,
            use_username_as_clientid: false,
            peer_cert_as_username: PeerCertAs::Disabled,
            peer_cert_as_clientid: PeerCertAs::Disabled,
        }
    }
}

impl Mqtt {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let size = self.max_packet_size.bytes();
        check(
            (1..=MAX_PACKET_SIZE).contains(&size),
            "mqtt.max_packet_size",
            self.max_packet_size,
            "a size between 1 and 268435455 bytes",
        )?;
        check(
            (23..=65535).contains(&self.max_clientid_len),
            "mqtt.max_clientid_len",
            self.max_clientid_len,
            "an integer between 23 and 65535",
        )?;
        check(
            (1..=65535).contains(&self.max_topic_levels),
            "mqtt.max_topic_levels",
            self.max_topic_levels,
            "an integer between 1 and 65535",
        )?;
        check(
            self.max_qos_allowed <= 2,
            "mqtt.max_qos_allowed",
            self.max_qos_allowed,
            "0, 1 or 2",
        )?;
        check(
            self.max_inflight >= 1,
            "mqtt.max_inflight",
            self.max_inflight,
            "an integer between 1 and 65535",
        )?;
        check(
            self.keepalive_multiplier.is_finite() && self.keepalive_multiplier > 0.0,
            "mqtt.keepalive_multiplier",
            self.keepalive_multiplier,
            "a number greater than 0",
        )?;
        check(
            self.server_keepalive != Some(0),
            "mqtt.server_keepalive",
            0,
            "an integer between 1 and 65535 or disabled",
        )?;
        check(
            !self.keepalive_check_interval.get().is_zero(),
            "mqtt.keepalive_check_interval",
            self.keepalive_check_interval,
            "a duration greater than 0s",
        )?;
        check(
            self.max_awaiting_rel != Limit::Finite(0),
            "mqtt.max_awaiting_rel",
            0,
            "a positive integer or infinity",
        )
    }
}

/// `retainer`: the retained-message store.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retainer {
    /// Whether retained messages are stored.
    pub enable: bool,
    /// Most retained messages held (`0` or `infinity`: no limit, as in EMQX).
    pub max_retained_messages: Limit,
    /// Largest retained payload; larger retained publishes are not stored.
    pub max_payload_size: ByteSize,
    /// Expiry for retained messages that do not set one (`0s`: never).
    pub msg_expiry_interval: Duration,
    /// How often expired retained messages are removed (`0s`: never).
    pub msg_clear_interval: Duration,
}

impl Default for Retainer {
    fn default() -> Self {
        Self {
            enable: true,
            max_retained_messages: Limit::Infinity,
            max_payload_size: ByteSize::mb(1),
            msg_expiry_interval: Duration::secs(0),
            msg_clear_interval: Duration::secs(0),
        }
    }
}

impl Retainer {
    /// The cap on stored messages, with EMQX's `0` meaning none.
    pub fn max_messages(&self) -> Option<u64> {
        self.max_retained_messages.finite().filter(|&n| n > 0)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check(
            self.max_payload_size.bytes() <= MAX_PACKET_SIZE,
            "retainer.max_payload_size",
            self.max_payload_size,
            "at most 268435455 bytes",
        )
    }
}
