//! [`ShardedIndex`]: a [`SubscriptionIndex`] split into independently locked
//! shards, for an index shared by many connection actors on several threads.
//!
//! ```text
//!   filter "sport/tennis/+" ── hash("sport") % N ──► shard[i]   RwLock<SubscriptionIndex>
//!   filter "+/news", "#"    ─────────────────────► wildcard    RwLock<SubscriptionIndex>
//!
//!   publish "sport/tennis/x": read shard[hash("sport") % N], then read wildcard
//!   publish "$SYS/x":         read shard[hash("$SYS") % N] only (MQTT-4.7.2-1)
//! ```
//!
//! A filter whose first level is literal can only match names with that same
//! first level, so it lives in the shard chosen by hashing that level; filters
//! starting with a wildcard live in one extra shard. A publish therefore
//! read-locks at most two shards, one after the other (never both at once),
//! and a subscribe write-locks exactly one, so a writer stalls only the
//! readers of its own shard, for the time of one trie insert.
//!
//! Why locks rather than copy-on-write snapshots: subscribe and unsubscribe
//! are frequent at scale (every connect of a persistent client re-subscribes),
//! and a snapshot per write costs a copy of the shard, while a `parking_lot`
//! read lock costs one atomic operation when uncontended. Readers do not
//! starve writers (parking_lot's `RwLock` is eventually fair).
//!
//! The callback of [`ShardedIndex::match_topic`] runs under a read lock: it
//! must not write to the same index (it would deadlock). Collect what to do,
//! then act.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};

use parking_lot::RwLock;

use super::{InsertOutcome, RemoveOutcome, SubscriptionIndex, LEVEL_SEPARATOR};

/// A thread-safe subscription index, sharded by first topic level.
///
/// ```
/// use girder_broker::topic::ShardedIndex;
///
/// let index = ShardedIndex::new(8);
/// index.insert("sport/+", 1u32, ());
/// index.insert("#", 2u32, ());
/// let mut hits = Vec::new();
/// index.match_topic("sport/tennis", &mut |k: &u32, _: &()| hits.push(*k));
/// hits.sort();
/// assert_eq!(hits, [1, 2]);
/// ```
pub struct ShardedIndex<K, V> {
    /// Filters whose first level is literal, by hash of that level.
    shards: Box<[RwLock<SubscriptionIndex<K, V>>]>,
    /// Filters whose first level is `+` or `#`.
    wildcard: RwLock<SubscriptionIndex<K, V>>,
    hasher: RandomState,
}

impl<K, V> fmt::Debug for ShardedIndex<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedIndex")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl<K: Eq + Hash, V> ShardedIndex<K, V> {
    /// An empty index with `shards` literal shards (at least one) plus the
    /// wildcard shard. A few times the number of threads is a good choice.
    pub fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1)).map(|_| RwLock::default()).collect(),
            wildcard: RwLock::default(),
            hasher: RandomState::new(),
        }
    }

    fn first_level(topic: &str) -> &str {
        topic.split(LEVEL_SEPARATOR).next().unwrap_or_default()
    }

    fn literal_index(&self, first_level: &str) -> usize {
        // The modulo keeps the index below `shards.len()`, which fits a usize.
        (self.hasher.hash_one(first_level) % self.shards.len() as u64) as usize
    }

    fn literal_shard(&self, first_level: &str) -> &RwLock<SubscriptionIndex<K, V>> {
        &self.shards[self.literal_index(first_level)]
    }

    /// The number of the shard that holds `filter`: below `shards` for a
    /// literal first level, `shards` (the last) for a wildcard one.
    pub fn shard_of(&self, filter: &str) -> usize {
        match Self::first_level(filter) {
            "+" | "#" => self.shards.len(),
            level => self.literal_index(level),
        }
    }

    /// Number of shards, the wildcard shard included.
    pub fn shard_count(&self) -> usize {
        self.shards.len() + 1
    }

    /// [`SubscriptionIndex::for_each`] over shard number `shard` (see
    /// [`shard_of`](Self::shard_of)); nothing for a number out of range.
    pub fn for_each_in_shard<F: FnMut(&str, &K, &V)>(&self, shard: usize, mut f: F) {
        if let Some(shard) = self.all_shards().nth(shard) {
            shard.read().for_each(&mut f);
        }
    }

    fn shard(&self, filter: &str) -> &RwLock<SubscriptionIndex<K, V>> {
        match Self::first_level(filter) {
            "+" | "#" => &self.wildcard,
            level => self.literal_shard(level),
        }
    }

    /// [`SubscriptionIndex::insert`] on the filter's shard.
    pub fn insert(&self, filter: &str, key: K, value: V) -> InsertOutcome<V> {
        self.shard(filter).write().insert(filter, key, value)
    }

    /// [`SubscriptionIndex::remove`] on the filter's shard.
    pub fn remove(&self, filter: &str, key: &K) -> RemoveOutcome<V> {
        self.shard(filter).write().remove(filter, key)
    }

    /// A clone of the value of `key`'s subscription to `filter`.
    pub fn get(&self, filter: &str, key: &K) -> Option<V>
    where
        V: Clone,
    {
        self.shard(filter).read().get(filter, key).cloned()
    }

    /// Whether `filter` has any subscriber.
    pub fn contains_filter(&self, filter: &str) -> bool {
        self.shard(filter).read().contains_filter(filter)
    }

    /// [`SubscriptionIndex::any_key`] on the filter's shard.
    pub fn any_key(&self, filter: &str, pred: impl FnMut(&K) -> bool) -> bool {
        self.shard(filter).read().any_key(filter, pred)
    }

    /// [`SubscriptionIndex::match_topic`] over the (at most two) shards that
    /// can hold a filter matching `name`. The callback runs under a read lock.
    pub fn match_topic<F: FnMut(&K, &V)>(&self, name: &str, f: &mut F) {
        self.literal_shard(Self::first_level(name))
            .read()
            .match_topic(name, f);
        if !name.starts_with('$') {
            self.wildcard.read().match_topic(name, f);
        }
    }

    /// [`SubscriptionIndex::for_each`] over every shard, one shard locked at
    /// a time (so not an atomic snapshot of the whole index).
    pub fn for_each<F: FnMut(&str, &K, &V)>(&self, mut f: F) {
        for shard in self.all_shards() {
            shard.read().for_each(&mut f);
        }
    }

    /// Number of distinct filters (summed shard by shard).
    pub fn filter_count(&self) -> usize {
        self.all_shards().map(|s| s.read().filter_count()).sum()
    }

    /// Number of (filter, subscriber) pairs (summed shard by shard).
    pub fn subscription_count(&self) -> usize {
        self.all_shards()
            .map(|s| s.read().subscription_count())
            .sum()
    }

    /// Whether no shard holds a subscription.
    pub fn is_empty(&self) -> bool {
        self.all_shards().all(|s| s.read().is_empty())
    }

    fn all_shards(&self) -> impl Iterator<Item = &RwLock<SubscriptionIndex<K, V>>> {
        self.shards.iter().chain(std::iter::once(&self.wildcard))
    }
}

impl<K: Eq + Hash, V> Default for ShardedIndex<K, V> {
    /// Sixteen literal shards.
    fn default() -> Self {
        Self::new(16)
    }
}
