//! Routing as pure code: a node's subscriber index, shared groups and
//! retained store, generic over the subscriber handle.
//!
//! ```text
//!   subscribe(raw, sub, opts) ──► index / shared groups ──► Option<RouteChange>
//!   unsubscribe(raw, sub)     ──►                       ──► Option<RouteChange>
//!   route(message, batch)     ──► read index (≤ 2 shards), pick group members
//!                                 ├─► batch: local deliveries, per subscriber
//!                                 └─► RouteOutcome { local, remote }
//!   retain(message, now)      ──► retained store        ──► RetainOutcome
//! ```
//!
//! [`Router`] takes a message and returns what must happen: the local
//! deliveries (pushed into a [`DeliveryBatch`], one entry per subscriber),
//! the other nodes that must get the message ([`RemoteNodes`], empty until
//! cross-node delivery: this is its seam), and the filters that became used
//! or unused on this node ([`RouteChange`]), which the caller writes to the
//! cluster's route table once the router's locks are released. It knows no
//! actor, socket or table: the subscriber handle `S` is whatever the caller
//! delivers through ([`Subscriber`]).
//!
//! The index is a [`ShardedIndex`]: publishers read-lock at most two shards
//! and never allocate per subscription matched beyond the batch's entries;
//! a subscribe write-locks one shard.
//!
//! # Layout
//!
//! - this file: [`Router`], [`RoutingConfig`], the outcomes.
//! - `routing/batch.rs`: [`DeliveryBatch`].
//! - `routing/retained.rs`: the retained store kept as a replicated
//!   table's mirror (puts without limits, expired topics, resync).
//! - `routing/tests.rs`: matching, shared-group picks, retained delivery and
//!   the outcomes.

mod batch;
mod retained;
#[cfg(test)]
mod tests;

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use crate::codec::ByteStr;
use crate::exclusive;
use crate::message::{Delivery, Message, SubOpts};
use crate::retained::{RetainError, RetainedLimits, RetainedStore};
use crate::shared::{PickInput, SharedSubscriptions, Strategy};
use crate::topic::{self, parse_filter, ParsedFilter, ShardedIndex, TopicLimits};

pub use batch::DeliveryBatch;

/// A subscriber handle as the router keeps it: cheap to clone (the index
/// holds one per subscription, a batch one per subscriber it delivers to)
/// and equal by identity.
pub trait Subscriber: Clone + Eq + Hash + fmt::Debug {
    /// Unique among the node's live subscribers: batches group deliveries by
    /// it.
    fn id(&self) -> u64;
}

/// A key of the subscriber index: a local subscriber, or the one entry of a
/// shared group (the group picks the member when a message matches).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubKey<S> {
    /// An ordinary subscription.
    Local(S),
    /// A shared group `$share/{group}/{filter}`.
    Shared {
        /// The share name.
        group: Arc<str>,
        /// The filter the group subscribes to.
        filter: Arc<str>,
    },
}

/// A member of a shared group, with its subscription options; equal by
/// subscriber.
#[derive(Debug, Clone)]
pub struct Member<S> {
    /// The subscriber.
    pub sub: S,
    /// Its options for this group.
    pub opts: SubOpts,
}

impl<S: PartialEq> PartialEq for Member<S> {
    fn eq(&self, other: &Self) -> bool {
        self.sub == other.sub
    }
}

impl<S: Eq> Eq for Member<S> {}

impl<S: Hash> Hash for Member<S> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.sub.hash(state);
    }
}

/// Settings of a [`Router`].
#[derive(Debug, Clone)]
pub struct RoutingConfig {
    /// Index shards (by first topic level), besides the wildcard shard.
    pub shards: usize,
    /// Strategy of shared groups (`mqtt.shared_subscription_strategy`).
    pub shared_strategy: Strategy,
    /// Topic limits, for parsing filters.
    pub topic_limits: TopicLimits,
    /// Limits of the retained store (`retainer.max_retained_messages`,
    /// `retainer.max_payload_size`).
    pub retained_limits: RetainedLimits,
    /// Expiry of retained messages whose publisher set none
    /// (`retainer.msg_expiry_interval`); `None`: they never expire.
    pub retained_expiry: Option<Duration>,
    /// Whether `$exclusive/{filter}` subscribes to `{filter}`
    /// (`mqtt.exclusive_subscription`; who may hold it is the channel's
    /// check). When false it is an ordinary filter.
    pub exclusive_subscription: bool,
    /// Whether a periodic clearer removes expired retained messages
    /// (`retainer.msg_clear_interval` set). Without one, a full store
    /// removes its expired messages itself when a new topic would not fit,
    /// so that expired messages never keep live ones out for good.
    pub retained_clearer: bool,
}

impl Default for RoutingConfig {
    /// Sixteen shards, round robin, no retained limit or expiry.
    fn default() -> Self {
        Self {
            shards: 16,
            shared_strategy: Strategy::RoundRobin,
            topic_limits: TopicLimits::default(),
            retained_limits: RetainedLimits {
                max_messages: None,
                max_payload_size: None,
            },
            retained_expiry: None,
            exclusive_subscription: false,
            retained_clearer: false,
        }
    }
}

/// A filter's change of use on this node: what the cluster's route table
/// must learn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteChange {
    /// The filter got its first subscription (or group) on this node.
    Used(Box<str>),
    /// The filter lost its last one.
    Unused(Box<str>),
}

impl RouteChange {
    /// The filter (without `$share/` or `$exclusive/` prefix).
    pub fn filter(&self) -> &str {
        match self {
            RouteChange::Used(f) | RouteChange::Unused(f) => f,
        }
    }

    /// The filter, owned.
    pub fn into_filter(self) -> Box<str> {
        match self {
            RouteChange::Used(f) | RouteChange::Unused(f) => f,
        }
    }
}

/// Other nodes that must get a message. Always empty for now: the seam of
/// cross-node delivery. Empty, it holds no allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteNodes(Vec<Arc<str>>);

impl RemoteNodes {
    /// Whether no other node needs the message.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The nodes, by name.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|n| &**n)
    }
}

/// What routing one message decided, besides the deliveries it put in the
/// batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteOutcome {
    /// Local subscriptions that got the message (one per shared group).
    pub local: usize,
    /// Other nodes that must get it.
    pub remote: RemoteNodes,
}

/// What [`Router::retain`] did with a RETAIN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetainOutcome {
    /// Stored, replacing what its topic had.
    Stored,
    /// An empty payload: its topic's retained message is gone.
    Cleared,
    /// Not stored (too large, store full).
    Refused(RetainError),
}

/// A node's routing state, shared by every publisher (`Arc<Router<S>>`).
pub struct Router<S> {
    index: ShardedIndex<SubKey<S>, SubOpts>,
    shared: RwLock<SharedSubscriptions<Member<S>>>,
    retained: RwLock<RetainedStore<Arc<Message>>>,
    config: RoutingConfig,
}

impl<S> fmt::Debug for Router<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("index", &self.index)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: Subscriber> Router<S> {
    /// An empty router.
    pub fn new(config: RoutingConfig) -> Self {
        Self {
            index: ShardedIndex::new(config.shards.max(1)),
            shared: RwLock::new(SharedSubscriptions::new(config.shared_strategy)),
            retained: RwLock::new(RetainedStore::new(config.retained_limits)),
            config,
        }
    }

    /// A subscription filter as sent (`$share/...` included) parsed for the
    /// index: an `$exclusive/` prefix, when exclusive subscriptions are on,
    /// is dropped (`$exclusive/t/#` matches as `t/#` does).
    fn parse<'a>(&self, raw: &'a str) -> Option<ParsedFilter<'a>> {
        let exclusive = self
            .config
            .exclusive_subscription
            .then(|| exclusive::strip(raw))
            .flatten();
        let parsed = parse_filter(exclusive.unwrap_or(raw), &self.config.topic_limits).ok()?;
        (exclusive.is_none() || !parsed.is_shared()).then_some(parsed)
    }

    /// Adds (or updates: new options replace the old) `sub`'s subscription
    /// to `raw` (as sent in SUBSCRIBE, `$share/...` included). Returns the
    /// filter when it became used on this node.
    pub fn subscribe(&self, raw: &str, sub: &S, opts: SubOpts) -> Option<RouteChange> {
        let parsed = self.parse(raw)?;
        let new_filter = match parsed.group {
            None => {
                self.index
                    .insert(parsed.filter, SubKey::Local(sub.clone()), opts)
                    .new_filter
            }
            Some(group) => {
                let member = Member {
                    sub: sub.clone(),
                    opts,
                };
                let mut shared = self.shared.write();
                // Leave first so that new options replace the old ones.
                shared.leave(group, parsed.filter, &member);
                shared.join(group, parsed.filter, member)
                    && self
                        .index
                        .insert(
                            parsed.filter,
                            shared_key(group, parsed.filter),
                            SubOpts::default(),
                        )
                        .new_filter
            }
        };
        new_filter.then(|| RouteChange::Used(parsed.filter.into()))
    }

    /// Removes `sub`'s subscription to `raw`. Returns the filter when it
    /// became unused on this node.
    pub fn unsubscribe(&self, raw: &str, sub: &S) -> Option<RouteChange> {
        let parsed = self.parse(raw)?;
        let filter_gone = match parsed.group {
            None => {
                self.index
                    .remove(parsed.filter, &SubKey::Local(sub.clone()))
                    .filter_gone
            }
            Some(group) => {
                let member = Member {
                    sub: sub.clone(),
                    opts: SubOpts::default(),
                };
                let mut shared = self.shared.write();
                shared.leave(group, parsed.filter, &member)
                    && shared.group(group, parsed.filter).is_none()
                    && self
                        .index
                        .remove(parsed.filter, &shared_key(group, parsed.filter))
                        .filter_gone
            }
        };
        filter_gone.then(|| RouteChange::Unused(parsed.filter.into()))
    }

    /// Whether `filter` (as the index holds it: no `$share/` prefix) has a
    /// subscription or group on this node now.
    pub fn is_used(&self, filter: &str) -> bool {
        self.index.contains_filter(filter)
    }

    /// The index shard that holds `filter` (as the index holds it: see
    /// [`RouteChange::filter`]); below [`shard_count`](Self::shard_count).
    pub fn shard_of(&self, filter: &str) -> usize {
        self.index.shard_of(filter)
    }

    /// Number of index shards, the wildcard shard included.
    pub fn shard_count(&self) -> usize {
        self.index.shard_count()
    }

    /// The filters of shard number `shard` that have a subscription or
    /// group on this node, each once.
    pub fn used_filters(&self, shard: usize) -> Vec<Box<str>> {
        let mut filters: Vec<Box<str>> = Vec::new();
        self.index.for_each_in_shard(shard, |filter, _, _| {
            if filters.last().is_none_or(|last| **last != *filter) {
                filters.push(filter.into());
            }
        });
        filters.sort_unstable();
        filters.dedup();
        filters
    }

    /// Matches `message` against every subscription and adds one delivery
    /// per matching subscription (one per shared group) to `batch`.
    pub fn route(&self, message: &Arc<Message>, batch: &mut DeliveryBatch<S>) -> RouteOutcome {
        let mut local = 0;
        let mut groups: Vec<(Arc<str>, Arc<str>)> = Vec::new();
        self.index.match_topic(
            &message.topic,
            &mut |key: &SubKey<S>, opts: &SubOpts| match key {
                SubKey::Local(sub) => {
                    batch.push(sub, Delivery::new(Arc::clone(message), *opts));
                    local += 1;
                }
                SubKey::Shared { group, filter } => {
                    groups.push((Arc::clone(group), Arc::clone(filter)));
                }
            },
        );
        if !groups.is_empty() {
            let shared = self.shared.read();
            let input = PickInput {
                publisher: &message.from,
                topic: &message.topic,
            };
            for (group, filter) in groups {
                if let Some(member) = shared.pick(&group, &filter, &input) {
                    batch.push(&member.sub, Delivery::new(Arc::clone(message), member.opts));
                    local += 1;
                }
            }
        }
        if local > 1 {
            // Encoded once per protocol version, QoS and RETAIN flag by
            // the first subscriber's connection, shared by the others.
            message.expect_many_subscribers();
        }
        RouteOutcome {
            local,
            remote: RemoteNodes::default(),
        }
    }

    /// Redelivers messages that a member of shared groups received and did
    /// not acknowledge before it went away: each goes to another member of
    /// one of `groups` (the member's `$share/...` subscriptions, as sent)
    /// whose filter matches its topic. Returns how many found no member.
    pub fn redispatch(
        &self,
        gone: &S,
        groups: &[ByteStr],
        messages: Vec<Arc<Message>>,
        batch: &mut DeliveryBatch<S>,
    ) -> usize {
        let parsed: Vec<_> = groups
            .iter()
            .filter_map(|raw| self.parse(raw))
            .filter_map(|p| Some((p.group?, p.filter)))
            .collect();
        let shared = self.shared.read();
        let mut undelivered = 0;
        for message in messages {
            let input = PickInput {
                publisher: &message.from,
                topic: &message.topic,
            };
            let member = parsed.iter().find_map(|&(group, filter)| {
                topic::matches(filter, &message.topic)
                    .then(|| shared.pick_excluding(group, filter, &input, |m| m.sub == *gone))
                    .flatten()
            });
            match member {
                Some(member) => batch.push(
                    &member.sub,
                    Delivery::new(Arc::clone(&message), member.opts),
                ),
                None => undelivered += 1,
            }
        }
        undelivered
    }

    /// Stores, replaces or (empty payload) clears the retained message of
    /// its topic, retained at `now`.
    pub fn retain(&self, message: &Message, now: Instant) -> RetainOutcome {
        let mut store = self.retained.write();
        if message.payload.is_empty() {
            store.remove(&message.topic);
            return RetainOutcome::Cleared;
        }
        let deadline = self.retained_deadline(message, now);
        let mut result = store.set(&message.topic, Arc::new(message.compact()), deadline);
        if matches!(result, Err(RetainError::StoreFull { .. }))
            && !self.config.retained_clearer
            && store.purge_expired(now) > 0
        {
            result = store.set(&message.topic, Arc::new(message.compact()), deadline);
        }
        match result {
            Ok(_) => RetainOutcome::Stored,
            Err(err) => RetainOutcome::Refused(err),
        }
    }

    /// When a message retained at `now` leaves the store: at its own expiry
    /// when its publisher set one, else after `retainer.msg_expiry_interval`
    /// or at the broker's default message expiry, whichever comes first.
    pub fn retained_deadline(&self, message: &Message, now: Instant) -> Option<Instant> {
        if message.expiry_sent {
            return message.expires_at;
        }
        let retainer = self
            .config
            .retained_expiry
            .and_then(|interval| now.checked_add(interval));
        match (retainer, message.expires_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Removes the expired retained messages (`retainer.msg_clear_interval`:
    /// until then they keep their place in the store); returns how many.
    pub fn purge_expired_retained(&self, now: Instant) -> usize {
        self.retained.write().purge_expired(now)
    }

    /// The retained messages (not expired at `now`) that a new subscription
    /// to `raw` (as sent) is sent.
    pub fn retained_matching(&self, raw: &str, now: Instant) -> Vec<Arc<Message>> {
        let Some(parsed) = self.parse(raw) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        self.retained
            .read()
            .matching(parsed.filter, now, |_, message| {
                found.push(Arc::clone(message))
            });
        found
    }

    /// Number of retained messages (expired ones not purged yet included).
    pub fn retained_count(&self) -> usize {
        self.retained.read().len()
    }

    /// Number of subscriptions in the index (a shared group counts once).
    pub fn subscription_count(&self) -> usize {
        self.index.subscription_count()
    }
}

/// The index key of a shared group.
fn shared_key<S>(group: &str, filter: &str) -> SubKey<S> {
    SubKey::Shared {
        group: Arc::from(group),
        filter: Arc::from(filter),
    }
}
