//! v5 properties (section 2.2.2): identifiers, the shared acknowledgement
//! properties, and the reader and writer every packet uses.

use super::{ByteStr, UserProperty};

/// Properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
///
/// Both may be dropped by the sender to respect the peer's maximum packet
/// size (MQTT-3.4.2-2 and alike).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckProperties {
    /// Human-readable diagnostic.
    pub reason_string: Option<ByteStr>,
    /// User properties, in order.
    pub user_properties: Vec<UserProperty>,
}

impl AckProperties {
    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        self.reason_string.is_none() && self.user_properties.is_empty()
    }
}
