//! SUBSCRIBE (section 3.8).

use super::{ByteStr, SubscriptionOptions, UserProperty};

/// SUBSCRIBE: one or more topic filters, each with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// The packet identifier (non-zero).
    pub packet_id: u16,
    /// The topic filters and their options, in order (at least one).
    pub filters: Vec<(ByteStr, SubscriptionOptions)>,
    /// v5 properties.
    pub properties: SubscribeProperties,
}

/// v5 SUBSCRIBE properties (section 3.8.2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeProperties {
    /// Identifier attached to deliveries matching these subscriptions.
    pub subscription_identifier: Option<u32>,
    /// User properties, in order.
    pub user_properties: Vec<UserProperty>,
}
