//! The retained-message store (MQTT 5.0 §3.3.1.3, EMQX's `emqx_retainer`):
//! at most one message per topic name, found by the filters of new
//! subscriptions.
//!
//! # Layout
//!
//! - [`RetainedStore`]: a trie of stored topic names, the reverse of the
//!   subscription index: names are stored, a filter with wildcards is the
//!   query. An ordered expiry index makes purging expired messages cost
//!   O(expired · log n).
//! - [`RetainedLimits`] and [`RetainError`]: EMQX's `retainer.max_retained_messages`
//!   and `retainer.max_payload_size`.
//! - [`PayloadSize`]: what the store needs to know about a message.
//!
//! The store keeps no clock: every call that depends on time takes `now`, so
//! tests control time and the store does no I/O. Whether an empty payload
//! deletes the retained message (MQTT-3.3.1-6) is the caller's decision: it
//! calls [`RetainedStore::remove`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use girder_broker::retained::{RetainedLimits, RetainedStore};
//!
//! let now = Instant::now();
//! let mut store = RetainedStore::new(RetainedLimits::default());
//! store.set("sport/tennis/score", b"15-0".to_vec(), None).unwrap();
//! store.set("sport/golf", b"par".to_vec(), Some(now + Duration::from_secs(60))).unwrap();
//!
//! let mut found = Vec::new();
//! store.matching("sport/#", now, |topic, _| found.push(topic.to_owned()));
//! found.sort();
//! assert_eq!(found, ["sport/golf", "sport/tennis/score"]);
//!
//! let later = now + Duration::from_secs(61);
//! assert!(store.get("sport/golf", later).is_none());
//! assert_eq!(store.purge_expired(later), 1);
//! assert_eq!((store.len(), store.total_bytes()), (1, 4));
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::Split;
use std::sync::Arc;
use std::time::Instant;

use crate::topic::{is_wildcard, LEVEL_SEPARATOR, MULTI_LEVEL_WILDCARD, SINGLE_LEVEL_WILDCARD};

#[cfg(test)]
mod tests;

/// Whether `topic` is a system topic (`$SYS/...`): the broker's own
/// retained messages, outside the store's count limit.
fn is_system(topic: &str) -> bool {
    topic.starts_with("$SYS/")
}

/// The size of a message's payload, which the store limits and accounts.
pub trait PayloadSize {
    /// Payload length in bytes.
    fn payload_size(&self) -> usize;
}

impl PayloadSize for bytes::Bytes {
    fn payload_size(&self) -> usize {
        self.len()
    }
}

impl PayloadSize for Vec<u8> {
    fn payload_size(&self) -> usize {
        self.len()
    }
}

impl PayloadSize for String {
    fn payload_size(&self) -> usize {
        self.len()
    }
}

impl<T: PayloadSize + ?Sized> PayloadSize for Arc<T> {
    fn payload_size(&self) -> usize {
        (**self).payload_size()
    }
}

/// Limits of the store. `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetainedLimits {
    /// Most retained messages held at once (EMQX's
    /// `retainer.backend.max_retained_messages`, where 0 means unlimited).
    pub max_messages: Option<usize>,
    /// Largest payload that may be retained (EMQX's
    /// `retainer.max_payload_size`).
    pub max_payload_size: Option<usize>,
}

impl Default for RetainedLimits {
    /// EMQX's defaults: no message limit, payloads up to 1 MiB.
    fn default() -> Self {
        Self {
            max_messages: None,
            max_payload_size: Some(1024 * 1024),
        }
    }
}

/// Why a message was not retained. The store is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RetainError {
    /// The payload is larger than [`RetainedLimits::max_payload_size`].
    #[error("retained payload of {size} bytes exceeds the maximum of {max} bytes")]
    PayloadTooLarge {
        /// Size of the refused payload.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The store holds [`RetainedLimits::max_messages`] messages (expired
    /// ones count until they are purged; the broker's own `$SYS` messages
    /// do not) and the topic is not one of them.
    #[error("retained store is full ({max} messages)")]
    StoreFull {
        /// The configured maximum.
        max: usize,
    },
}

/// One retained message.
struct Entry<M> {
    /// The full topic name, shared with the expiry index.
    topic: Arc<str>,
    message: M,
    size: usize,
    expires_at: Option<Instant>,
}

impl<M> Entry<M> {
    fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

struct Node<M> {
    children: HashMap<Box<str>, Node<M>>,
    entry: Option<Entry<M>>,
}

impl<M> Default for Node<M> {
    fn default() -> Self {
        Self {
            children: HashMap::new(),
            entry: None,
        }
    }
}

impl<M> Node<M> {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.entry.is_none()
    }
}

/// Retained messages by topic name, generic over the stored message `M`.
///
/// Topic names are expected to have passed
/// [`validate_name`](crate::topic::validate_name), and filters
/// [`validate_filter`](crate::topic::validate_filter).
pub struct RetainedStore<M> {
    limits: RetainedLimits,
    root: Node<M>,
    /// Stored messages, expired or not.
    count: usize,
    /// Of them, those on system topics (`$SYS/...`: the broker's own,
    /// not counted against [`RetainedLimits::max_messages`]).
    system: usize,
    /// Sum of the stored payload sizes.
    bytes: usize,
    /// (expiry, topic) of every message that expires, in expiry order.
    expiries: BTreeSet<(Instant, Arc<str>)>,
}

impl<M> fmt::Debug for RetainedStore<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetainedStore")
            .field("limits", &self.limits)
            .field("count", &self.count)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl<M: PayloadSize> RetainedStore<M> {
    /// An empty store.
    pub fn new(limits: RetainedLimits) -> Self {
        Self {
            limits,
            root: Node::default(),
            count: 0,
            system: 0,
            bytes: 0,
            expiries: BTreeSet::new(),
        }
    }

    /// The store's limits.
    pub fn limits(&self) -> RetainedLimits {
        self.limits
    }

    /// Changes the limits. Messages already stored stay, even beyond them.
    pub fn set_limits(&mut self, limits: RetainedLimits) {
        self.limits = limits;
    }

    /// Retains `message` on `topic`, replacing the message retained there,
    /// which is returned (expired or not). `expires_at` is the instant the
    /// message expires (from its Message Expiry Interval). An expired
    /// message keeps its place until it is purged
    /// ([`purge_expired`](Self::purge_expired), EMQX's
    /// `retainer.msg_clear_interval`): a full store refuses new topics until
    /// then, as EMQX's does.
    pub fn set(
        &mut self,
        topic: &str,
        message: M,
        expires_at: Option<Instant>,
    ) -> Result<Option<M>, RetainError> {
        let size = message.payload_size();
        if let Some(max) = self.limits.max_payload_size.filter(|&max| size > max) {
            return Err(RetainError::PayloadTooLarge { size, max });
        }
        if let Some(max) = self.limits.max_messages.filter(|_| !is_system(topic)) {
            if self.count - self.system >= max && self.get_entry(topic).is_none() {
                return Err(RetainError::StoreFull { max });
            }
        }
        Ok(self.put(topic, message, expires_at))
    }

    /// [`set`](Self::set) without the limits: for a store that mirrors a
    /// table whose writers already applied them (a replicated table holds
    /// what it holds, and its mirror must too).
    pub fn put(&mut self, topic: &str, message: M, expires_at: Option<Instant>) -> Option<M> {
        let topic_name = topic;
        let size = message.payload_size();
        let mut node = &mut self.root;
        for level in topic.split(LEVEL_SEPARATOR) {
            node = node.children.entry(level.into()).or_default();
        }
        let topic: Arc<str> = match &node.entry {
            Some(old) => Arc::clone(&old.topic),
            None => topic.into(),
        };
        if let Some(at) = expires_at {
            self.expiries.insert((at, Arc::clone(&topic)));
        }
        let entry = Entry {
            topic,
            message,
            size,
            expires_at,
        };
        self.bytes += size;
        let Some(old) = node.entry.replace(entry) else {
            self.count += 1;
            self.system += usize::from(is_system(topic_name));
            return None;
        };
        self.bytes -= old.size;
        if let Some(at) = old.expires_at.filter(|&at| Some(at) != expires_at) {
            self.expiries.remove(&(at, old.topic));
        }
        Some(old.message)
    }

    /// Deletes the message retained on `topic` and returns it (expired or not).
    pub fn remove(&mut self, topic: &str) -> Option<M> {
        let entry = Self::remove_entry(&mut self.root, topic.split(LEVEL_SEPARATOR))?;
        self.count -= 1;
        self.system -= usize::from(is_system(topic));
        self.bytes -= entry.size;
        if let Some(at) = entry.expires_at {
            self.expiries.remove(&(at, entry.topic));
        }
        Some(entry.message)
    }

    /// The unexpired message retained on `topic`.
    pub fn get(&self, topic: &str, now: Instant) -> Option<&M> {
        self.get_entry(topic)
            .filter(|e| e.is_live(now))
            .map(|e| &e.message)
    }

    /// Visits every unexpired retained message whose topic matches `filter`,
    /// as `(topic, message)`, in no particular order. Names starting with `$`
    /// are not matched by a filter starting with a wildcard (MQTT-4.7.2-1).
    pub fn matching<F: FnMut(&str, &M)>(&self, filter: &str, now: Instant, mut f: F) {
        if !is_wildcard(filter) {
            if let Some(message) = self.get(filter, now) {
                f(filter, message);
            }
            return;
        }
        Self::walk(&self.root, filter.split(LEVEL_SEPARATOR), true, now, &mut f);
    }

    /// Deletes every message expired at `now`; returns how many.
    pub fn purge_expired(&mut self, now: Instant) -> usize {
        self.take_expired(now).len()
    }

    /// Deletes every message expired at `now` and returns their topics, in
    /// expiry order.
    pub fn take_expired(&mut self, now: Instant) -> Vec<Arc<str>> {
        let mut purged = Vec::new();
        while let Some((at, _)) = self.expiries.first() {
            if *at > now {
                break;
            }
            if let Some((_, topic)) = self.expiries.pop_first() {
                if self.remove(&topic).is_some() {
                    purged.push(topic);
                }
            }
        }
        purged
    }

    /// The topic of every stored message (expired or not, `$` topics
    /// included), in no particular order.
    pub fn topics(&self) -> Vec<Arc<str>> {
        fn collect<M>(node: &Node<M>, out: &mut Vec<Arc<str>>) {
            if let Some(entry) = &node.entry {
                out.push(Arc::clone(&entry.topic));
            }
            for child in node.children.values() {
                collect(child, out);
            }
        }
        let mut out = Vec::with_capacity(self.count);
        collect(&self.root, &mut out);
        out
    }

    /// Number of stored messages, including expired ones not purged yet.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no message is stored.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sum of the stored payload sizes in bytes.
    pub fn total_bytes(&self) -> usize {
        self.bytes
    }

    /// The earliest expiry among the stored messages: when to call
    /// [`purge_expired`](Self::purge_expired) next.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiries.first().map(|(at, _)| *at)
    }

    fn get_entry(&self, topic: &str) -> Option<&Entry<M>> {
        let mut node = &self.root;
        for level in topic.split(LEVEL_SEPARATOR) {
            node = node.children.get(level)?;
        }
        node.entry.as_ref()
    }

    fn remove_entry(node: &mut Node<M>, mut levels: Split<'_, char>) -> Option<Entry<M>> {
        let Some(level) = levels.next() else {
            return node.entry.take();
        };
        let child = node.children.get_mut(level)?;
        let entry = Self::remove_entry(child, levels);
        if child.is_empty() {
            node.children.remove(level);
        }
        entry
    }

    /// Visits the entries below `node` matching the remaining filter
    /// `levels`. `at_root` is set for the first level, where wildcards skip
    /// names starting with `$`.
    fn walk<F: FnMut(&str, &M)>(
        node: &Node<M>,
        mut levels: Split<'_, char>,
        at_root: bool,
        now: Instant,
        f: &mut F,
    ) {
        let visible = |level: &str| !(at_root && level.starts_with('$'));
        match levels.next() {
            None => Self::visit(node, now, f),
            Some(MULTI_LEVEL_WILDCARD) => {
                // `a/#` matches `a` itself, then everything below it.
                Self::visit(node, now, f);
                for (_, child) in node.children.iter().filter(|(l, _)| visible(l)) {
                    Self::walk_all(child, now, f);
                }
            }
            Some(SINGLE_LEVEL_WILDCARD) => {
                for (_, child) in node.children.iter().filter(|(l, _)| visible(l)) {
                    Self::walk(child, levels.clone(), false, now, f);
                }
            }
            Some(level) => {
                if let Some(child) = node.children.get(level) {
                    Self::walk(child, levels, false, now, f);
                }
            }
        }
    }

    fn walk_all<F: FnMut(&str, &M)>(node: &Node<M>, now: Instant, f: &mut F) {
        Self::visit(node, now, f);
        for child in node.children.values() {
            Self::walk_all(child, now, f);
        }
    }

    fn visit<F: FnMut(&str, &M)>(node: &Node<M>, now: Instant, f: &mut F) {
        if let Some(entry) = node.entry.as_ref().filter(|e| e.is_live(now)) {
            f(&entry.topic, &entry.message);
        }
    }
}
