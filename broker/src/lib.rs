//! girder-broker.

/// MQTT 3.1/3.1.1/5.0 packets and their pure, incremental codec.
pub mod codec;

/// Topic names and filters: validation, matching, shared-subscription parsing, the subscription index.
pub mod topic;

/// Shared subscriptions: group membership and the member pickers.
pub mod shared;

/// Retained messages: the store, its limits and message expiry.
pub mod retained;
