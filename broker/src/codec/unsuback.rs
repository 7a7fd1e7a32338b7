//! UNSUBACK (section 3.11).

use super::{AckProperties, ReasonCode};

/// UNSUBACK: acknowledges an UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// The packet identifier of the UNSUBSCRIBE.
    pub packet_id: u16,
    /// v5: one reason code per topic filter. v3 has none: empty when
    /// decoded from v3, ignored by the v3 encoder.
    pub reason_codes: Vec<ReasonCode>,
    /// v5 properties.
    pub properties: AckProperties,
}
