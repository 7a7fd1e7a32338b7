//! UNSUBSCRIBE (section 3.10).

use super::properties::{
    not_allowed, put_properties, put_user, read_properties, Context, Property, WriteProperties,
};
use super::subscribe::check_topic_filter;
use super::wire::{Reader, Sink};
use super::{ByteStr, DecodeError, EncodeError, ProtocolVersion, UserProperty};

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

impl Unsubscribe {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let mut properties = UnsubscribeProperties::default();
        if version.is_v5() {
            read_properties(r, Context::Unsubscribe, |prop| match prop {
                Property::User(k, v) => {
                    properties.user_properties.push((k, v));
                    Ok(())
                }
                other => Err(not_allowed(&other)),
            })?;
        }
        let mut filters = Vec::new();
        while !r.is_empty() {
            let filter = r.string()?;
            check_topic_filter(&filter)?;
            filters.push(filter);
        }
        if filters.is_empty() {
            return Err(DecodeError::EmptyUnsubscribe);
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
        for filter in &self.filters {
            s.put_str(filter)?;
        }
        Ok(())
    }
}

impl WriteProperties for UnsubscribeProperties {
    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_user(s, &self.user_properties)
    }
}
