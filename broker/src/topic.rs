//! Topic names and topic filters: validation, matching and shared-subscription
//! parsing (MQTT 3.1.1 §4.7, MQTT 5.0 §4.7 and §4.8.2).
//!
//! Everything here works on borrowed `&str` and never allocates: a topic is
//! walked level by level with `str::split('/')`.
//!
//! # Layout
//!
//! - this file: [`TopicLimits`], [`TopicError`], [`validate_name`],
//!   [`validate_filter`], [`matches`], [`parse_filter`] / [`ParsedFilter`].
//! - [`index`]: [`SubscriptionIndex`], the filter trie used on the publish
//!   path (local subscribers) and for the cluster route table.
//! - [`sharded`]: [`ShardedIndex`], the same index split into independently
//!   locked shards for concurrent use by many connection actors.
//!
//! ```
//! use girder_broker::topic::{matches, parse_filter, validate_filter, TopicLimits};
//!
//! let limits = TopicLimits::default();
//! assert!(validate_filter("sport/tennis/+/#", &limits).is_ok());
//! assert!(matches("sport/tennis/+/#", "sport/tennis/player1/ranking"));
//! assert!(!matches("#", "$SYS/uptime"));
//!
//! let parsed = parse_filter("$share/g1/sport/#", &limits).unwrap();
//! assert_eq!(parsed.group, Some("g1"));
//! assert_eq!(parsed.filter, "sport/#");
//! ```

pub mod index;
pub mod sharded;

#[cfg(test)]
mod tests;

pub use index::{InsertOutcome, RemoveOutcome, SubscriptionIndex};
pub use sharded::ShardedIndex;

/// The topic level separator.
pub const LEVEL_SEPARATOR: char = '/';
/// The single-level wildcard.
pub const SINGLE_LEVEL_WILDCARD: &str = "+";
/// The multi-level wildcard.
pub const MULTI_LEVEL_WILDCARD: &str = "#";
/// Longest topic name or filter in bytes: an MQTT UTF-8 string carries a
/// 16-bit length (MQTT-4.7.3-3).
pub const MAX_TOPIC_LEN: usize = 65_535;
/// The prefix of a shared subscription filter (MQTT 5.0 §4.8.2).
pub const SHARE_PREFIX: &str = "$share/";
/// EMQX's prefix of a queue subscription: a shared subscription in the group
/// [`QUEUE_GROUP`].
pub const QUEUE_PREFIX: &str = "$queue/";
/// The group name that a `$queue/{filter}` subscription belongs to.
pub const QUEUE_GROUP: &str = "$queue";

/// Limits applied on top of the protocol's own rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLimits {
    /// Most levels a topic name or filter may have (EMQX's
    /// `mqtt.max_topic_levels`). It also bounds the depth of the tries, and so
    /// the recursion depth of a lookup.
    pub max_levels: usize,
}

impl Default for TopicLimits {
    /// EMQX's default of 128 levels.
    fn default() -> Self {
        Self { max_levels: 128 }
    }
}

/// Why a topic name, topic filter or shared subscription was refused.
///
/// Each variant names the conformance statement it enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Topic names and filters are at least one character long.
    #[error("empty topic (MQTT-4.7.3-1)")]
    Empty,
    /// Topic names and filters must not contain U+0000.
    #[error("topic contains U+0000 (MQTT-4.7.3-2)")]
    NullCharacter,
    /// Topic names and filters encode to at most 65535 bytes.
    #[error("topic is {len} bytes long, more than 65535 (MQTT-4.7.3-3)")]
    TooLong {
        /// Length of the refused topic in bytes.
        len: usize,
    },
    /// More levels than [`TopicLimits::max_levels`] allows.
    #[error("topic has {levels} levels, more than the maximum of {max}")]
    TooManyLevels {
        /// Levels in the refused topic.
        levels: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A topic name contains `+` or `#`.
    #[error("wildcard in a topic name (MQTT-4.7.1-1)")]
    WildcardInName,
    /// `#` is not alone in its level or not in the last level.
    #[error("'#' must be alone in the last level of a filter (MQTT-4.7.1-2)")]
    InvalidMultiLevelWildcard,
    /// `+` does not occupy a whole level.
    #[error("'+' must occupy a whole level of a filter (MQTT-4.7.1-3)")]
    InvalidSingleLevelWildcard,
    /// `$share/` is not followed by a non-empty share name.
    #[error("shared subscription without a share name (MQTT-4.8.2-1)")]
    EmptyShareName,
    /// The share name contains a wildcard, or is not followed by `/` and a filter.
    #[error("share name must hold no wildcard and be followed by '/' and a filter (MQTT-4.8.2-2)")]
    InvalidShareName,
}

/// Checks the rules common to names and filters, and returns the number of
/// levels.
fn check_common(topic: &str, limits: &TopicLimits) -> Result<usize, TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong { len: topic.len() });
    }
    let mut levels = 1;
    for b in topic.bytes() {
        match b {
            0 => return Err(TopicError::NullCharacter),
            b'/' => levels += 1,
            _ => {}
        }
    }
    if levels > limits.max_levels {
        return Err(TopicError::TooManyLevels {
            levels,
            max: limits.max_levels,
        });
    }
    Ok(levels)
}

/// Validates a topic name, the topic of a PUBLISH.
///
/// ```
/// use girder_broker::topic::{validate_name, TopicError, TopicLimits};
///
/// let limits = TopicLimits::default();
/// assert_eq!(validate_name("sport/tennis", &limits), Ok(()));
/// assert_eq!(validate_name("sport/+", &limits), Err(TopicError::WildcardInName));
/// ```
pub fn validate_name(name: &str, limits: &TopicLimits) -> Result<(), TopicError> {
    check_common(name, limits)?;
    if name.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// Validates a topic filter (without a `$share/` or `$queue/` prefix: see
/// [`parse_filter`] for subscription filters as clients send them).
///
/// ```
/// use girder_broker::topic::{validate_filter, TopicError, TopicLimits};
///
/// let limits = TopicLimits::default();
/// assert_eq!(validate_filter("sport/+/#", &limits), Ok(()));
/// assert_eq!(validate_filter("sport/tennis#", &limits), Err(TopicError::InvalidMultiLevelWildcard));
/// assert_eq!(validate_filter("sport+", &limits), Err(TopicError::InvalidSingleLevelWildcard));
/// ```
pub fn validate_filter(filter: &str, limits: &TopicLimits) -> Result<(), TopicError> {
    let levels = check_common(filter, limits)?;
    for (i, level) in filter.split(LEVEL_SEPARATOR).enumerate() {
        if level.contains('#') && (level.len() != 1 || i + 1 != levels) {
            return Err(TopicError::InvalidMultiLevelWildcard);
        }
        if level.contains('+') && level.len() != 1 {
            return Err(TopicError::InvalidSingleLevelWildcard);
        }
    }
    Ok(())
}

/// Whether a (valid) filter contains `+` or `#`.
pub fn is_wildcard(filter: &str) -> bool {
    filter.bytes().any(|b| b == b'+' || b == b'#')
}

/// Whether a valid topic `filter` matches a valid topic `name`.
///
/// `+` matches exactly one level (possibly empty), `#` matches the parent
/// level and any number of levels below it, and a filter starting with a
/// wildcard does not match a name starting with `$` (MQTT-4.7.2-1).
///
/// ```
/// use girder_broker::topic::matches;
///
/// assert!(matches("sport/tennis/player1/#", "sport/tennis/player1"));
/// assert!(matches("sport/+", "sport/"));
/// assert!(!matches("sport/+", "sport"));
/// assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
/// assert!(matches("$SYS/#", "$SYS/monitor/Clients"));
/// ```
pub fn matches(filter: &str, name: &str) -> bool {
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut names = name.split(LEVEL_SEPARATOR);
    for f in filter.split(LEVEL_SEPARATOR) {
        if f == MULTI_LEVEL_WILDCARD {
            return true;
        }
        match names.next() {
            Some(n) if f == SINGLE_LEVEL_WILDCARD || f == n => {}
            _ => return false,
        }
    }
    names.next().is_none()
}

/// A subscription filter split into its shared-subscription group, if any,
/// and the topic filter proper. Borrows from the string it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParsedFilter<'a> {
    /// The share name of a `$share/{group}/{filter}` subscription, or
    /// [`QUEUE_GROUP`] for EMQX's `$queue/{filter}`; `None` for an ordinary
    /// subscription.
    pub group: Option<&'a str>,
    /// The topic filter that messages are matched against.
    pub filter: &'a str,
}

impl ParsedFilter<'_> {
    /// Whether this is a shared subscription.
    pub fn is_shared(&self) -> bool {
        self.group.is_some()
    }
}

/// Parses and validates a filter as a client sends it in SUBSCRIBE:
/// `$share/{group}/{filter}` (MQTT 5.0 §4.8.2), EMQX's `$queue/{filter}`, or a
/// plain filter. The inner filter is validated with [`validate_filter`]; the
/// limits on length and levels apply to the whole string.
///
/// ```
/// use girder_broker::topic::{parse_filter, TopicError, TopicLimits, QUEUE_GROUP};
///
/// let limits = TopicLimits::default();
/// let q = parse_filter("$queue/jobs/+", &limits).unwrap();
/// assert_eq!((q.group, q.filter), (Some(QUEUE_GROUP), "jobs/+"));
/// assert_eq!(parse_filter("$share//a", &limits), Err(TopicError::EmptyShareName));
/// assert_eq!(parse_filter("$share/g+/a", &limits), Err(TopicError::InvalidShareName));
/// ```
pub fn parse_filter<'a>(
    raw: &'a str,
    limits: &TopicLimits,
) -> Result<ParsedFilter<'a>, TopicError> {
    check_common(raw, limits)?;
    if let Some(rest) = raw.strip_prefix(SHARE_PREFIX) {
        let (group, filter) = rest.split_once(LEVEL_SEPARATOR).ok_or(if rest.is_empty() {
            TopicError::EmptyShareName
        } else {
            TopicError::InvalidShareName
        })?;
        if group.is_empty() {
            return Err(TopicError::EmptyShareName);
        }
        if is_wildcard(group) {
            return Err(TopicError::InvalidShareName);
        }
        validate_filter(filter, limits)?;
        return Ok(ParsedFilter {
            group: Some(group),
            filter,
        });
    }
    if let Some(filter) = raw.strip_prefix(QUEUE_PREFIX) {
        validate_filter(filter, limits)?;
        return Ok(ParsedFilter {
            group: Some(QUEUE_GROUP),
            filter,
        });
    }
    validate_filter(raw, limits)?;
    Ok(ParsedFilter {
        group: None,
        filter: raw,
    })
}
