//! SUBSCRIBE (section 3.8).

use super::properties::{
    id, not_allowed, put_properties, put_user, put_var_int, read_properties, Context, Property,
    WriteProperties,
};
use super::wire::{Reader, Sink};
use super::{
    ByteStr, DecodeError, EncodeError, ProtocolVersion, QoS, RetainHandling, SubscriptionOptions,
    UserProperty,
};

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

impl Subscribe {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = if version.is_v5() {
            SubscribeProperties::decode(r)?
        } else {
            SubscribeProperties::default()
        };
        let mut filters = Vec::new();
        while !r.is_empty() {
            let filter = r.string()?;
            check_topic_filter(&filter)?;
            let options = decode_options(r.u8()?, version)?;
            if options.no_local && filter.starts_with("$share/") {
                return Err(DecodeError::NoLocalOnSharedSubscription);
            }
            filters.push((filter, options));
        }
        if filters.is_empty() {
            return Err(DecodeError::EmptySubscribe);
        }
        Ok(Self {
            packet_id,
            filters,
            properties,
        })
    }

    pub(crate) fn write<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if self.packet_id == 0 {
            return Err(EncodeError::InvalidPacketId);
        }
        s.put_u16(self.packet_id);
        if version.is_v5() {
            put_properties(s, &self.properties)?;
        }
        for (filter, options) in &self.filters {
            s.put_str(filter)?;
            s.put_u8(encode_options(options, version));
        }
        Ok(())
    }
}

/// The subscription options byte (section 3.8.3.1; v3.1.1 3.8.3: QoS only,
/// the other bits reserved).
fn decode_options(byte: u8, version: ProtocolVersion) -> Result<SubscriptionOptions, DecodeError> {
    let reserved = if version.is_v5() {
        0b1100_0000
    } else {
        0b1111_1100
    };
    if byte & reserved != 0 {
        return Err(DecodeError::SubscriptionOptionsReserved);
    }
    Ok(SubscriptionOptions {
        qos: QoS::from_bits(byte & 0b11).ok_or(DecodeError::InvalidQoS)?,
        no_local: byte & 0b0100 != 0,
        retain_as_published: byte & 0b1000 != 0,
        retain_handling: RetainHandling::from_bits((byte >> 4) & 0b11)
            .ok_or(DecodeError::InvalidRetainHandling)?,
    })
}

fn encode_options(options: &SubscriptionOptions, version: ProtocolVersion) -> u8 {
    let mut byte = options.qos.bits();
    if version.is_v5() {
        if options.no_local {
            byte |= 0b0100;
        }
        if options.retain_as_published {
            byte |= 0b1000;
        }
        byte |= (options.retain_handling as u8) << 4;
    }
    byte
}

/// A topic filter is not empty (MQTT-4.7.3-1), and its wildcards fill whole
/// levels, `#` only as the last one (MQTT-4.7.1-1, MQTT-4.7.1-2).
pub(crate) fn check_topic_filter(filter: &str) -> Result<(), DecodeError> {
    if filter.is_empty() {
        return Err(DecodeError::EmptyTopicFilter);
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let valid = match level {
            "#" => levels.peek().is_none(),
            "+" => true,
            other => !other.contains(['+', '#']),
        };
        if !valid {
            return Err(DecodeError::InvalidTopicFilter);
        }
    }
    Ok(())
}

impl SubscribeProperties {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        read_properties(r, Context::Subscribe, |prop| {
            match prop {
                Property::VarInt(id::SUBSCRIPTION_IDENTIFIER, v) => {
                    p.subscription_identifier = Some(v)
                }
                Property::User(k, v) => p.user_properties.push((k, v)),
                other => return Err(not_allowed(&other)),
            }
            Ok(())
        })?;
        Ok(p)
    }
}

impl WriteProperties for SubscribeProperties {
    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_var_int(s, id::SUBSCRIPTION_IDENTIFIER, self.subscription_identifier)?;
        put_user(s, &self.user_properties)
    }
}
