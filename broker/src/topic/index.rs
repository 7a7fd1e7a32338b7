//! The subscription index: topic filter → subscribers, matched by topic name.
//!
//! ```text
//!  exact: HashMap<filter, subs>        "sport/tennis"   (no wildcard: one lookup)
//!  root ─┬─ "sport" ─┬─ "tennis" ─ # ── subs of "sport/tennis/#"
//!        │           └─ + ──────── here ── subs of "sport/+"
//!        ├─ + ── "news" ── here ────── subs of "+/news"
//!        └─ # ──────────────────────── subs of "#"
//! ```
//!
//! Wildcard-free filters live in one hash map, so the common case of a
//! publish to a topic with only exact subscribers costs one hash lookup.
//! Wildcard filters live in a trie whose nodes have literal children (a hash
//! map by level), a `+` child, the subscribers of the filter ending at the
//! node and those of the filter `<node>/#`.
//!
//! [`SubscriptionIndex::match_topic`] walks the name with `str::split('/')`
//! and recursion (depth bounded by the topic's levels): it allocates nothing.
//! Inserting allocates the levels it creates; removing prunes the trie
//! branches it empties, so the trie never keeps dead nodes.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::str::Split;

use super::{is_wildcard, LEVEL_SEPARATOR, MULTI_LEVEL_WILDCARD, SINGLE_LEVEL_WILDCARD};

/// The subscribers of one filter, with the value of each subscription.
type Subscribers<K, V> = HashMap<K, V>;

/// The result of [`SubscriptionIndex::insert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertOutcome<V> {
    /// The filter had no subscriber in this index before: the caller adds
    /// the cluster route for it (once per node).
    pub new_filter: bool,
    /// The value this subscriber had on this filter, which was replaced
    /// (MQTT-3.8.4-3: a SUBSCRIBE to an existing filter replaces it).
    pub previous: Option<V>,
}

/// The result of [`SubscriptionIndex::remove`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveOutcome<V> {
    /// The value of the removed subscription, `None` if there was none.
    pub removed: Option<V>,
    /// The filter has no subscriber left in this index: the caller deletes
    /// the cluster route for it.
    pub filter_gone: bool,
}

/// One trie node. Only wildcard filters are stored in the trie.
struct Node<K, V> {
    /// Literal next levels.
    children: HashMap<Box<str>, Node<K, V>>,
    /// The `+` next level.
    plus: Option<Box<Node<K, V>>>,
    /// Subscribers of the filter that ends at this node.
    here: Subscribers<K, V>,
    /// Subscribers of the filter made of this node's path followed by `#`.
    hash: Subscribers<K, V>,
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Self {
            children: HashMap::new(),
            plus: None,
            here: HashMap::new(),
            hash: HashMap::new(),
        }
    }
}

impl<K, V> Node<K, V> {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.here.is_empty()
            && self.hash.is_empty()
    }
}

/// Whether `level` is a `#` in the last level of a filter. A `#` elsewhere is
/// invalid (callers validate filters first); it is then kept as a literal
/// level, which no valid name matches.
fn is_trailing_hash(level: &str, rest: &Split<'_, char>) -> bool {
    level == MULTI_LEVEL_WILDCARD && rest.clone().next().is_none()
}

/// An index from topic filters to subscribers, generic over the subscriber
/// key `K` (a client id, a session handle, a node name for the route table,
/// a shared group) and the per-subscription value `V` (subscription options,
/// or `()`).
///
/// Filters are expected to have passed [`validate_filter`](super::validate_filter),
/// without their `$share/group/` prefix.
///
/// ```
/// use girder_broker::topic::SubscriptionIndex;
///
/// let mut index = SubscriptionIndex::new();
/// assert!(index.insert("sport/tennis/+", "alice", 1u8).new_filter);
/// assert!(!index.insert("sport/tennis/+", "bob", 0).new_filter);
/// index.insert("sport/#", "alice", 2);
///
/// let mut hits = Vec::new();
/// index.match_topic("sport/tennis/player1", &mut |k: &&str, v: &u8| hits.push((*k, *v)));
/// hits.sort();
/// assert_eq!(hits, [("alice", 1), ("alice", 2), ("bob", 0)]);
/// ```
pub struct SubscriptionIndex<K, V> {
    /// Wildcard-free filters.
    exact: HashMap<Box<str>, Subscribers<K, V>>,
    /// Wildcard filters.
    root: Node<K, V>,
    /// Filters with at least one subscriber.
    filters: usize,
    /// (filter, subscriber) pairs.
    subscriptions: usize,
}

impl<K, V> Default for SubscriptionIndex<K, V> {
    fn default() -> Self {
        Self {
            exact: HashMap::new(),
            root: Node::default(),
            filters: 0,
            subscriptions: 0,
        }
    }
}

impl<K, V> fmt::Debug for SubscriptionIndex<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionIndex")
            .field("filters", &self.filters)
            .field("subscriptions", &self.subscriptions)
            .finish_non_exhaustive()
    }
}

impl<K: Eq + Hash, V> SubscriptionIndex<K, V> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribes `key` to `filter` with `value`, replacing the value of an
    /// existing subscription of `key` to `filter`.
    pub fn insert(&mut self, filter: &str, key: K, value: V) -> InsertOutcome<V> {
        let subscribers = if is_wildcard(filter) {
            self.trie_slot_mut(filter)
        } else {
            self.exact.entry(filter.into()).or_default()
        };
        let new_filter = subscribers.is_empty();
        let previous = subscribers.insert(key, value);
        if new_filter {
            self.filters += 1;
        }
        if previous.is_none() {
            self.subscriptions += 1;
        }
        InsertOutcome {
            new_filter,
            previous,
        }
    }

    /// Unsubscribes `key` from `filter`.
    pub fn remove(&mut self, filter: &str, key: &K) -> RemoveOutcome<V> {
        let removed = if is_wildcard(filter) {
            Self::trie_remove(&mut self.root, filter.split(LEVEL_SEPARATOR), key)
        } else {
            let removed = self.exact.get_mut(filter).and_then(|subscribers| {
                let value = subscribers.remove(key)?;
                Some((value, subscribers.is_empty()))
            });
            if let Some((_, true)) = removed {
                self.exact.remove(filter);
            }
            removed
        };
        match removed {
            Some((value, filter_gone)) => {
                self.subscriptions -= 1;
                if filter_gone {
                    self.filters -= 1;
                }
                RemoveOutcome {
                    removed: Some(value),
                    filter_gone,
                }
            }
            None => RemoveOutcome {
                removed: None,
                filter_gone: false,
            },
        }
    }

    /// The value of `key`'s subscription to `filter`.
    pub fn get(&self, filter: &str, key: &K) -> Option<&V> {
        self.subscribers(filter)?.get(key)
    }

    /// Whether `filter` has any subscriber.
    pub fn contains_filter(&self, filter: &str) -> bool {
        self.subscribers(filter).is_some_and(|s| !s.is_empty())
    }

    /// Whether `filter` has a subscriber whose key satisfies `pred`.
    pub fn any_key(&self, filter: &str, mut pred: impl FnMut(&K) -> bool) -> bool {
        self.subscribers(filter)
            .is_some_and(|s| s.keys().any(&mut pred))
    }

    /// Visits every subscription whose filter matches the topic `name`, once
    /// per matching filter: a subscriber with several overlapping filters is
    /// visited once for each (MQTT 5.0 §4.7.1: the caller decides whether to
    /// deliver once or once per subscription). Filters starting with a
    /// wildcard are not matched against names starting with `$`
    /// (MQTT-4.7.2-1). Allocates nothing.
    pub fn match_topic<F: FnMut(&K, &V)>(&self, name: &str, f: &mut F) {
        if let Some(subscribers) = self.exact.get(name) {
            subscribers.iter().for_each(|(k, v)| f(k, v));
        }
        if !self.root.is_empty() {
            let dollar = name.starts_with('$');
            Self::trie_match(&self.root, name.split(LEVEL_SEPARATOR), dollar, f);
        }
    }

    /// Visits every subscription as `(filter, key, value)`, in no particular
    /// order. Rebuilds each trie filter into one reused buffer; meant for
    /// listings and for copying the index, not for the publish path.
    pub fn for_each<F: FnMut(&str, &K, &V)>(&self, mut f: F) {
        for (filter, subscribers) in &self.exact {
            subscribers.iter().for_each(|(k, v)| f(filter, k, v));
        }
        let mut path = String::new();
        Self::trie_for_each(&self.root, &mut path, &mut f);
    }

    /// Number of distinct filters with at least one subscriber.
    pub fn filter_count(&self) -> usize {
        self.filters
    }

    /// Number of (filter, subscriber) pairs.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions
    }

    /// Whether the index holds no subscription.
    pub fn is_empty(&self) -> bool {
        self.subscriptions == 0
    }

    /// The subscriber set of `filter`, created empty if absent.
    fn trie_slot_mut(&mut self, filter: &str) -> &mut Subscribers<K, V> {
        let mut node = &mut self.root;
        let mut levels = filter.split(LEVEL_SEPARATOR);
        while let Some(level) = levels.next() {
            if is_trailing_hash(level, &levels) {
                return &mut node.hash;
            }
            node = if level == SINGLE_LEVEL_WILDCARD {
                node.plus.get_or_insert_with(Box::default)
            } else {
                node.children.entry(level.into()).or_default()
            };
        }
        &mut node.here
    }

    /// The subscriber set of `filter`, if it exists.
    fn subscribers(&self, filter: &str) -> Option<&Subscribers<K, V>> {
        if !is_wildcard(filter) {
            return self.exact.get(filter);
        }
        let mut node = &self.root;
        let mut levels = filter.split(LEVEL_SEPARATOR);
        while let Some(level) = levels.next() {
            if is_trailing_hash(level, &levels) {
                return Some(&node.hash);
            }
            node = if level == SINGLE_LEVEL_WILDCARD {
                node.plus.as_deref()?
            } else {
                node.children.get(level)?
            };
        }
        Some(&node.here)
    }

    /// Removes `key` from the filter made of the remaining `levels` below
    /// `node`, pruning the branches left empty. Returns the removed value and
    /// whether the filter is left without subscribers.
    fn trie_remove(
        node: &mut Node<K, V>,
        mut levels: Split<'_, char>,
        key: &K,
    ) -> Option<(V, bool)> {
        let Some(level) = levels.next() else {
            let value = node.here.remove(key)?;
            return Some((value, node.here.is_empty()));
        };
        if is_trailing_hash(level, &levels) {
            let value = node.hash.remove(key)?;
            return Some((value, node.hash.is_empty()));
        }
        if level == SINGLE_LEVEL_WILDCARD {
            let child = node.plus.as_deref_mut()?;
            let removed = Self::trie_remove(child, levels, key);
            if child.is_empty() {
                node.plus = None;
            }
            removed
        } else {
            let child = node.children.get_mut(level)?;
            let removed = Self::trie_remove(child, levels, key);
            if child.is_empty() {
                node.children.remove(level);
            }
            removed
        }
    }

    /// Visits the subscribers of every filter below `node` matching the
    /// remaining `levels`. `dollar` is set at the root of a `$` name, where
    /// wildcards must not match.
    fn trie_match<F: FnMut(&K, &V)>(
        node: &Node<K, V>,
        mut levels: Split<'_, char>,
        dollar: bool,
        f: &mut F,
    ) {
        if !dollar {
            // `<path>/#` also matches the parent level `<path>` itself.
            node.hash.iter().for_each(|(k, v)| f(k, v));
        }
        match levels.next() {
            None => node.here.iter().for_each(|(k, v)| f(k, v)),
            Some(level) => {
                if let Some(child) = node.children.get(level) {
                    Self::trie_match(child, levels.clone(), false, f);
                }
                if let (false, Some(plus)) = (dollar, node.plus.as_deref()) {
                    Self::trie_match(plus, levels, false, f);
                }
            }
        }
    }

    /// Visits the subscriptions below `node`. `path` holds the node's filter
    /// with a separator before every level (`/sport/+`), so that a filter
    /// starting with an empty level (`/a` is `//a` here) rebuilds correctly.
    fn trie_for_each<F: FnMut(&str, &K, &V)>(node: &Node<K, V>, path: &mut String, f: &mut F) {
        fn filter(path: &str) -> &str {
            path.get(1..).unwrap_or_default()
        }
        node.here.iter().for_each(|(k, v)| f(filter(path), k, v));
        if !node.hash.is_empty() {
            let len = path.len();
            path.push(LEVEL_SEPARATOR);
            path.push_str(MULTI_LEVEL_WILDCARD);
            node.hash.iter().for_each(|(k, v)| f(filter(path), k, v));
            path.truncate(len);
        }
        let literal = node.children.iter().map(|(level, child)| (&**level, child));
        let plus = node
            .plus
            .as_deref()
            .map(|child| (SINGLE_LEVEL_WILDCARD, child));
        for (level, child) in literal.chain(plus) {
            let len = path.len();
            path.push(LEVEL_SEPARATOR);
            path.push_str(level);
            Self::trie_for_each(child, path, f);
            path.truncate(len);
        }
    }
}
