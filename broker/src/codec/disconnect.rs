//! DISCONNECT (section 3.14).

use super::{ByteStr, ReasonCode, UserProperty};

/// DISCONNECT: the last packet of a connection (v5: from either side).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disconnect {
    /// v5 reason code; 0x00 is Normal disconnection.
    pub reason_code: ReasonCode,
    /// v5 properties.
    pub properties: DisconnectProperties,
}

/// v5 DISCONNECT properties (section 3.14.2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisconnectProperties {
    /// New session expiry interval (client to server only).
    pub session_expiry_interval: Option<u32>,
    /// Human-readable diagnostic.
    pub reason_string: Option<ByteStr>,
    /// User properties, in order.
    pub user_properties: Vec<UserProperty>,
    /// Another server the client may use (server to client).
    pub server_reference: Option<ByteStr>,
}
