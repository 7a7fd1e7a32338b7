//! From the node's configuration to the settings of its parts.

use std::sync::Arc;
use std::time::Duration;

use girder_broker::channel::{ChannelConfig, Mountpoint, MountpointError};
use girder_broker::codec::QoS;
use girder_broker::exclusive::ExclusiveTable;
use girder_broker::retained::RetainedLimits;
use girder_broker::routing::RoutingConfig;
use girder_broker::session::SessionConfig;
use girder_broker::shared::Strategy;
use girder_broker::topic::TopicLimits;
use girder_config::Config;
use girder_config::SharedSubscriptionStrategy;

use crate::router::RouterConfig;

/// The channel settings of `mqtt.*`.
pub fn channel_config(config: &Config) -> ChannelConfig {
    let mqtt = &config.mqtt;
    let session = SessionConfig {
        max_inflight: mqtt.max_inflight.max(1),
        max_mqueue_len: limit(mqtt.max_mqueue_len.finite()),
        mqueue_store_qos0: mqtt.mqueue_store_qos0,
        // v5 clients are bounded by the Receive Maximum they are told
        // (max_inflight) as well: the channel checks that.
        max_awaiting_rel: limit(mqtt.max_awaiting_rel.finite()),
        await_rel_timeout: mqtt.await_rel_timeout.0,
        retry_interval: mqtt.retry_interval.finite().map(|d| d.0),
        upgrade_qos: mqtt.upgrade_qos,
        ..SessionConfig::default()
    };
    let base = ChannelConfig {
        max_packet_size: u32::try_from(mqtt.max_packet_size.0).unwrap_or(u32::MAX),
        max_clientid_len: mqtt.max_clientid_len as usize,
        topic_limits: TopicLimits {
            max_levels: mqtt.max_topic_levels as usize,
        },
        max_qos_allowed: QoS::from_bits(mqtt.max_qos_allowed).unwrap_or(QoS::ExactlyOnce),
        max_topic_alias: mqtt.max_topic_alias,
        retain_available: mqtt.retain_available && config.retainer.enable,
        wildcard_subscription: mqtt.wildcard_subscription,
        shared_subscription: mqtt.shared_subscription,
        max_subscriptions: mqtt.max_subscriptions.finite().map(|n| limit(Some(n))),
        server_keepalive: mqtt.server_keepalive,
        keepalive_multiplier: mqtt.keepalive_multiplier as f32,
        response_information: mqtt.response_information.clone(),
        session_expiry_interval: mqtt.session_expiry_interval.0,
        receive_maximum: mqtt.max_inflight.max(1),
        ignore_loop_deliver: mqtt.ignore_loop_deliver,
        use_username_as_clientid: mqtt.use_username_as_clientid,
        mountpoint: None,
        // One table for the node: every listener's config is derived from
        // this one and shares it.
        exclusive: mqtt
            .exclusive_subscription
            .then(|| Arc::new(ExclusiveTable::new())),
        message_expiry_interval: mqtt.message_expiry_interval.finite().map(|d| d.0),
        strict_mode: mqtt.strict_mode,
        session: session.into(),
    };
    // The mountpoint is per listener: see `with_mountpoint`.
    base
}

/// The channel settings of a listener whose mountpoint is `mountpoint`
/// (`listeners.<type>.<name>.mountpoint`; empty for none): `base` with it.
/// The copy shares what is node-wide (the exclusive subscription table,
/// the session settings).
pub fn with_mountpoint(
    base: &ChannelConfig,
    mountpoint: &str,
) -> Result<ChannelConfig, MountpointError> {
    Ok(ChannelConfig {
        mountpoint: Mountpoint::parse(mountpoint)?,
        ..base.clone()
    })
}

/// The router settings: index shards, shared strategy, retained limits.
pub fn router_config(config: &Config) -> RouterConfig {
    let max_payload_size = limit(Some(config.retainer.max_payload_size.0));
    RouterConfig {
        routing: RoutingConfig {
            shards: 16,
            shared_strategy: strategy(config.mqtt.shared_subscription_strategy),
            shared_local_first: config.mqtt.shared_subscription_strategy
                == SharedSubscriptionStrategy::Local,
            topic_limits: TopicLimits {
                max_levels: config.mqtt.max_topic_levels as usize,
            },
            retained_limits: RetainedLimits {
                max_messages: config.retainer.max_messages().map(|n| limit(Some(n))),
                max_payload_size: (max_payload_size > 0).then_some(max_payload_size),
            },
            retained_expiry: nonzero(config.retainer.msg_expiry_interval.0),
            exclusive_subscription: config.mqtt.exclusive_subscription,
            retained_clearer: retained_clear_interval(config).is_some(),
        },
        max_pending: 100_000,
    }
}

/// How often expired retained messages are removed
/// (`retainer.msg_clear_interval`); `None` (0s): never.
pub fn retained_clear_interval(config: &Config) -> Option<Duration> {
    nonzero(config.retainer.msg_clear_interval.0)
}

/// A duration where 0 means "never".
fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

fn strategy(s: SharedSubscriptionStrategy) -> Strategy {
    match s {
        SharedSubscriptionStrategy::Random => Strategy::Random,
        SharedSubscriptionStrategy::RoundRobin
        | SharedSubscriptionStrategy::RoundRobinPerGroup
        | SharedSubscriptionStrategy::Local => Strategy::RoundRobin,
        SharedSubscriptionStrategy::Sticky => Strategy::Sticky,
        SharedSubscriptionStrategy::HashClientid => Strategy::HashClientId,
        SharedSubscriptionStrategy::HashTopic => Strategy::HashTopic,
    }
}

/// A `Limit` as a `usize` bound, `usize::MAX` for infinity.
fn limit(n: Option<u64>) -> usize {
    n.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
}
