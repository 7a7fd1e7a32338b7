//! UNSUBSCRIBE (section 3.10).

use super::{ByteStr, UserProperty};

/// UNSUBSCRIBE: removes one or more subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// The packet identifier (non-zero).
    pub packet_id: u16,
    /// The topic filters to remove (at least one).
    pub filters: Vec<ByteStr>,
    /// v5 properties.
    pub properties: UnsubscribeProperties,
}

/// v5 UNSUBSCRIBE properties (section 3.10.2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnsubscribeProperties {
    /// User properties, in order.
    pub user_properties: Vec<UserProperty>,
}
