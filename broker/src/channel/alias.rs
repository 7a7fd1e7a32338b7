//! MQTT 5 topic aliases (spec §3.3.2.3.4), one table per direction.

use crate::lazy_map::LazyMap;

use crate::codec::ByteStr;

/// Aliases the client set on its PUBLISH packets: alias → topic.
#[derive(Debug, Default)]
pub(crate) struct InboundAliases {
    max: u16,
    /// Allocated at the first alias: most clients never set one.
    topics: LazyMap<u16, ByteStr>,
}

/// Why an inbound alias could not be resolved; both end the connection with
/// DISCONNECT 0x94 Topic Alias invalid (or 0x82 for an unknown alias).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AliasError {
    /// Alias 0 or above the Topic Alias Maximum the broker advertised
    /// (MQTT-3.3.2-8, MQTT-3.3.2-9).
    OutOfRange,
    /// An empty topic with an alias that was never set (MQTT-3.3.4-?: the
    /// receiver treats it as a protocol error).
    Unknown,
}

impl InboundAliases {
    /// A table that accepts aliases 1..=max.
    pub(crate) fn new(max: u16) -> Self {
        Self {
            max,
            topics: LazyMap::new(),
        }
    }

    /// Resolves the topic of an incoming PUBLISH: a non-empty topic with an
    /// alias (re)binds the alias; an empty topic takes the alias's topic.
    pub(crate) fn resolve(
        &mut self,
        topic: &ByteStr,
        alias: Option<u16>,
    ) -> Result<ByteStr, AliasError> {
        let Some(alias) = alias else {
            return Ok(topic.clone());
        };
        if alias == 0 || alias > self.max {
            return Err(AliasError::OutOfRange);
        }
        if topic.is_empty() {
            self.topics.get(&alias).cloned().ok_or(AliasError::Unknown)
        } else {
            self.topics.insert(alias, topic.compact());
            Ok(topic.clone())
        }
    }
}

/// Aliases the broker assigns on its PUBLISH packets to a client that
/// accepts them: topic → alias, first come first served until the client's
/// Topic Alias Maximum is reached.
#[derive(Debug, Default)]
pub(crate) struct OutboundAliases {
    max: u16,
    aliases: LazyMap<ByteStr, u16>,
}

/// How to send one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutboundAlias {
    /// No alias: send the topic.
    None,
    /// A new alias: send the topic and the alias.
    Set(u16),
    /// A known alias: send an empty topic and the alias.
    Use(u16),
}

impl OutboundAliases {
    /// A table for a client whose Topic Alias Maximum is `max` (0: none).
    pub(crate) fn new(max: u16) -> Self {
        Self {
            max,
            aliases: LazyMap::new(),
        }
    }

    /// The alias to use for `topic`, assigning a new one while there is room.
    pub(crate) fn alias_for(&mut self, topic: &ByteStr) -> OutboundAlias {
        if self.max == 0 {
            return OutboundAlias::None;
        }
        if let Some(&alias) = self.aliases.get(topic) {
            return OutboundAlias::Use(alias);
        }
        let next = self.aliases.len() + 1;
        if next > usize::from(self.max) {
            return OutboundAlias::None;
        }
        // `next` is at most `max`, a u16.
        let alias = next as u16;
        self.aliases.insert(topic.compact(), alias);
        OutboundAlias::Set(alias)
    }

    /// Takes back the alias that the last [`Self::alias_for`] call assigned
    /// to `topic` (its packet was not sent, so the client never learnt it).
    /// Only the newest alias may be taken back: the next one is numbered
    /// after the count of those assigned.
    pub(crate) fn forget(&mut self, topic: &ByteStr) {
        self.aliases.remove(topic);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_alias_binds_then_resolves() {
        let mut t = InboundAliases::new(10);
        let topic = ByteStr::from("a/b");
        assert_eq!(t.resolve(&topic, Some(3)), Ok(topic.clone()));
        assert_eq!(t.resolve(&ByteStr::new(), Some(3)), Ok(topic.clone()));
        let other = ByteStr::from("c");
        assert_eq!(t.resolve(&other, Some(3)), Ok(other.clone()));
        assert_eq!(t.resolve(&ByteStr::new(), Some(3)), Ok(other));
    }

    #[test]
    fn inbound_alias_errors() {
        let mut t = InboundAliases::new(2);
        assert_eq!(
            t.resolve(&ByteStr::from("x"), Some(0)),
            Err(AliasError::OutOfRange)
        );
        assert_eq!(
            t.resolve(&ByteStr::from("x"), Some(3)),
            Err(AliasError::OutOfRange)
        );
        assert_eq!(
            t.resolve(&ByteStr::new(), Some(1)),
            Err(AliasError::Unknown)
        );
        let mut none = InboundAliases::new(0);
        assert_eq!(
            none.resolve(&ByteStr::from("x"), Some(1)),
            Err(AliasError::OutOfRange)
        );
    }

    #[test]
    fn outbound_aliases_fill_up_to_the_maximum() {
        let mut t = OutboundAliases::new(2);
        let (a, b, c) = (ByteStr::from("a"), ByteStr::from("b"), ByteStr::from("c"));
        assert_eq!(t.alias_for(&a), OutboundAlias::Set(1));
        assert_eq!(t.alias_for(&a), OutboundAlias::Use(1));
        assert_eq!(t.alias_for(&b), OutboundAlias::Set(2));
        assert_eq!(t.alias_for(&c), OutboundAlias::None);
        assert_eq!(t.alias_for(&b), OutboundAlias::Use(2));
        assert_eq!(OutboundAliases::new(0).alias_for(&a), OutboundAlias::None);
    }
}
