//! PUBACK, PUBREC, PUBREL and PUBCOMP (sections 3.4 to 3.7): the four
//! publish acknowledgements share one layout.

use super::{AckProperties, ReasonCode};

macro_rules! pub_ack {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            /// The packet identifier of the acknowledged exchange.
            pub packet_id: u16,
            /// v5 reason code (v3 has none: always Success there).
            pub reason_code: ReasonCode,
            /// v5 properties.
            pub properties: AckProperties,
        }

        impl $name {
            /// A successful acknowledgement without properties.
            pub fn new(packet_id: u16) -> Self {
                Self {
                    packet_id,
                    reason_code: ReasonCode::Success,
                    properties: AckProperties::default(),
                }
            }
        }
    };
}

pub_ack!(
    /// PUBACK: acknowledges a QoS 1 PUBLISH.
    PubAck
);
pub_ack!(
    /// PUBREC: first acknowledgement of a QoS 2 PUBLISH.
    PubRec
);
pub_ack!(
    /// PUBREL: releases a QoS 2 message after PUBREC.
    PubRel
);
pub_ack!(
    /// PUBCOMP: completes a QoS 2 exchange.
    PubComp
);
