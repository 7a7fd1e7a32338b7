//! girder-broker.

/// MQTT 3.1/3.1.1/5.0 packets and their pure, incremental codec.
pub mod codec;

/// Topic names and filters: validation, matching, shared-subscription parsing, the subscription index.
pub mod topic;

/// Shared subscriptions: group membership and the member pickers.
pub mod shared;

/// Retained messages: the store, its limits and message expiry.
pub mod retained;

/// Exclusive subscriptions: which client holds each `$exclusive/...` filter.
pub mod exclusive;

/// Routing as pure code: subscriber index, shared groups, retained store and delivery batching, generic over the subscriber handle.
pub mod routing;

/// One published message as the broker sees it, and its per-subscriber delivery options.
pub mod message;

/// The per-client-id session state machine: subscriptions, inflight window, queue, QoS 2, expiry.
pub mod session;

/// The channel: one connection's MQTT protocol state machine (CONNECT, keep alive, topic aliases, will, acks), wrapping the session.
pub mod channel;

mod lazy_map;
