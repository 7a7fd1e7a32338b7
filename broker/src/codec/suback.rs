//! SUBACK (section 3.9).

use super::{AckProperties, ReasonCode};

/// SUBACK: one reason code per topic filter of the SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The packet identifier of the SUBSCRIBE.
    pub packet_id: u16,
    /// Granted QoS or failure per filter, in order; v3 maps failures to
    /// 0x80 ([`ReasonCode::to_v3_suback`]).
    pub reason_codes: Vec<ReasonCode>,
    /// v5 properties.
    pub properties: AckProperties,
}
