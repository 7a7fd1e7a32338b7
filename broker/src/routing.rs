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
//! the messages other nodes must get (pushed into the same batch, one list
//! per node: [`RemoteDelivery`]), and the route keys that became used or
//! unused on this node ([`RouteChange`]), which the caller writes to the
//! cluster's route table once the router's locks are released. The other
//! nodes' rows of that table come back as [`RemoteRoutes`]. It knows no
//! actor, socket or table: the subscriber handle `S` is whatever the caller
//! delivers through ([`Subscriber`]).
//!
//! A route key is a filter with plain subscriptions on a node, or a shared
//! group `$share/{group}/{filter}` with members on it ([`RouteKey`]). A
//! message goes once to each node with a matching plain route; each
//! matching shared group is served by one node (this one first under the
//! `local` strategy), which picks one of its members: one member per group
//! cluster-wide.
//!
//! The index is a [`ShardedIndex`]: publishers read-lock at most two shards
//! and never allocate per subscription matched beyond the batch's entries;
//! a subscribe write-locks one shard.
//!
//! # Layout
//!
//! - this file: [`Router`], [`RoutingConfig`], the outcomes.
//! - `routing/batch.rs`: [`DeliveryBatch`], [`RemoteDelivery`].
//! - `routing/remote.rs`: [`RemoteRoutes`], [`RouteKey`].
//! - `routing/retained.rs`: the retained store kept as a replicated
//!   table's mirror (puts without limits, expired topics, resync).
//! - `routing/tests.rs`: matching, shared-group picks, retained delivery and
//!   the outcomes.

mod batch;
mod remote;
mod retained;
#[cfg(test)]
mod tests;

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use crate::codec::ByteStr;
use crate::exclusive;
use crate::message::{Delivery, Message, SubOpts};
use crate::retained::{RetainError, RetainedLimits, RetainedStore};
use crate::shared::{stable_hash, PickInput, SharedSubscriptions, Strategy};
use crate::topic::{self, parse_filter, ParsedFilter, ShardedIndex, TopicLimits};

pub use batch::{DeliveryBatch, RemoteDelivery};
pub use remote::{group_key, RemoteRoutes, RouteKey};

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
    /// Whether a shared group with a member on this node is served here
    /// (the `local` strategy); otherwise the node that serves a message is
    /// chosen among the group's nodes by `shared_strategy`.
    pub shared_local_first: bool,
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
            shared_local_first: false,
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

/// A route key's change of use on this node: what the cluster's route
/// table must learn. The key is a filter (no `$exclusive/` prefix) with
/// plain subscriptions, or a shared group's `$share/{group}/{filter}`
/// ([`RouteKey`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteChange {
    /// The key got its first subscription (or member) on this node.
    Used(Box<str>),
    /// The key lost its last one.
    Unused(Box<str>),
}

impl RouteChange {
    /// The route key.
    pub fn key(&self) -> &str {
        match self {
            RouteChange::Used(k) | RouteChange::Unused(k) => k,
        }
    }

    /// The route key, owned.
    pub fn into_key(self) -> Box<str> {
        match self {
            RouteChange::Used(k) | RouteChange::Unused(k) => k,
        }
    }
}

/// What routing one message decided, besides the deliveries it put in the
/// batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteOutcome {
    /// Local subscriptions that got the message (one per shared group
    /// served here).
    pub local: usize,
    /// Other nodes that must get it.
    pub remote: usize,
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
    /// The other nodes' routes; read only while `has_remote` is set, so a
    /// node alone takes no lock for them.
    remote: RwLock<RemoteRoutes>,
    has_remote: AtomicBool,
    /// Turns of the round-robin choice among a shared group's nodes.
    node_turn: AtomicU64,
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
            remote: RwLock::new(RemoteRoutes::new()),
            has_remote: AtomicBool::new(false),
            node_turn: AtomicU64::new(0),
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

    /// Whether `filter` has a plain (not shared) subscription here.
    fn has_plain(&self, filter: &str) -> bool {
        self.index
            .any_key(filter, |key| matches!(key, SubKey::Local(_)))
    }

    /// Adds (or updates: new options replace the old) `sub`'s subscription
    /// to `raw` (as sent in SUBSCRIBE, `$share/...` included). Returns the
    /// route key when it became used on this node. (Racing subscribes may
    /// both report it: the caller writes the key's state, not the change.)
    pub fn subscribe(&self, raw: &str, sub: &S, opts: SubOpts) -> Option<RouteChange> {
        let parsed = self.parse(raw)?;
        match parsed.group {
            None => {
                let first = !self.has_plain(parsed.filter);
                self.index
                    .insert(parsed.filter, SubKey::Local(sub.clone()), opts);
                first.then(|| RouteChange::Used(parsed.filter.into()))
            }
            Some(group) => {
                let member = Member {
                    sub: sub.clone(),
                    opts,
                };
                let mut shared = self.shared.write();
                // Leave first so that new options replace the old ones.
                shared.leave(group, parsed.filter, &member);
                let new_group = shared.join(group, parsed.filter, member);
                if new_group {
                    self.index.insert(
                        parsed.filter,
                        shared_key(group, parsed.filter),
                        SubOpts::default(),
                    );
                }
                new_group.then(|| RouteChange::Used(group_key(group, parsed.filter).into()))
            }
        }
    }

    /// Removes `sub`'s subscription to `raw`. Returns the route key when it
    /// became unused on this node.
    pub fn unsubscribe(&self, raw: &str, sub: &S) -> Option<RouteChange> {
        let parsed = self.parse(raw)?;
        match parsed.group {
            None => {
                let removed = self
                    .index
                    .remove(parsed.filter, &SubKey::Local(sub.clone()))
                    .removed
                    .is_some();
                (removed && !self.has_plain(parsed.filter))
                    .then(|| RouteChange::Unused(parsed.filter.into()))
            }
            Some(group) => {
                let member = Member {
                    sub: sub.clone(),
                    opts: SubOpts::default(),
                };
                let mut shared = self.shared.write();
                let gone = shared.leave(group, parsed.filter, &member)
                    && shared.group(group, parsed.filter).is_none();
                if gone {
                    self.index
                        .remove(parsed.filter, &shared_key(group, parsed.filter));
                }
                gone.then(|| RouteChange::Unused(group_key(group, parsed.filter).into()))
            }
        }
    }

    /// Whether the route key `key` (a filter with plain subscriptions, or
    /// `$share/{group}/{filter}`) is used on this node now.
    pub fn is_used(&self, key: &str) -> bool {
        match RouteKey::parse(key) {
            RouteKey::Plain(filter) => self.has_plain(filter),
            RouteKey::Group { group, filter } => self.shared.read().group(group, filter).is_some(),
        }
    }

    /// The index shard that holds the route key `key` (its filter's shard);
    /// below [`shard_count`](Self::shard_count).
    pub fn shard_of(&self, key: &str) -> usize {
        self.index.shard_of(RouteKey::parse(key).filter())
    }

    /// Number of index shards, the wildcard shard included.
    pub fn shard_count(&self) -> usize {
        self.index.shard_count()
    }

    /// The route keys of shard number `shard` used on this node, each once:
    /// filters with plain subscriptions and `$share/{group}/{filter}`.
    pub fn used_keys(&self, shard: usize) -> Vec<Box<str>> {
        let mut keys: Vec<Box<str>> = Vec::new();
        self.index
            .for_each_in_shard(shard, |filter, key, _| match key {
                SubKey::Local(_) => {
                    if keys.last().is_none_or(|last| **last != *filter) {
                        keys.push(filter.into());
                    }
                }
                SubKey::Shared { group, .. } => keys.push(group_key(group, filter).into()),
            });
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Matches `message` against every subscription, of this node and of
    /// the others: adds one delivery per matching local subscription to
    /// `batch`, the message once for each other node with a matching plain
    /// route, and serves each matching shared group once, here or on one of
    /// the group's nodes.
    pub fn route(&self, message: &Arc<Message>, batch: &mut DeliveryBatch<S>) -> RouteOutcome {
        let mut local = 0;
        let mut remote = 0;
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
        // Groups with members on other nodes: (group, filter, node).
        let mut remote_groups: Vec<(Arc<str>, Arc<str>, Arc<str>)> = Vec::new();
        if self.has_remote.load(Ordering::Acquire) {
            self.remote.read().match_topic(
                &message.topic,
                &mut |node| remote += usize::from(batch.push_remote(node, message)),
                &mut |group, filter, node| {
                    remote_groups.push((Arc::clone(group), Arc::clone(filter), Arc::clone(node)));
                },
            );
        }
        if !groups.is_empty() || !remote_groups.is_empty() {
            let input = PickInput {
                publisher: &message.from,
                topic: &message.topic,
            };
            remote_groups.sort_unstable();
            let shared = self.shared.read();
            let mut serve = |group: &Arc<str>, filter: &Arc<str>, here: bool| {
                let mut nodes: Vec<&Arc<str>> = remote_groups
                    .iter()
                    .filter(|(g, f, _)| g == group && f == filter)
                    .map(|(_, _, n)| n)
                    .collect();
                nodes.dedup();
                match self.choose_node(&input, here, &nodes) {
                    None => {
                        if let Some(member) = shared.pick(group, filter, &input) {
                            batch
                                .push(&member.sub, Delivery::new(Arc::clone(message), member.opts));
                            local += 1;
                        }
                    }
                    Some(node) => {
                        let new = batch.push_remote_group(node, message, group, filter);
                        remote += usize::from(new);
                    }
                }
            };
            for (group, filter) in &groups {
                serve(group, filter, true);
            }
            let mut elsewhere: Vec<(&Arc<str>, &Arc<str>)> = remote_groups
                .iter()
                .filter(|(g, f, _)| !groups.iter().any(|(lg, lf)| lg == g && lf == f))
                .map(|(g, f, _)| (g, f))
                .collect();
            elsewhere.dedup();
            for (group, filter) in elsewhere {
                serve(group, filter, false);
            }
        }
        if local > 1 {
            // Encoded once per protocol version, QoS and RETAIN flag by
            // the first subscriber's connection, shared by the others.
            message.expect_many_subscribers();
        }
        RouteOutcome { local, remote }
    }

    /// The node that serves a shared group for one message: `None` for this
    /// node (a candidate when `here`), else one of `nodes` (the group's
    /// other nodes, sorted). Under the `local` strategy this node serves
    /// whenever it has a member; the hash strategies choose by the hash of
    /// the publisher or topic, `sticky` the first candidate, the others
    /// each candidate in turn. The chosen node then picks one of its
    /// members by the group's strategy.
    fn choose_node<'n>(
        &self,
        input: &PickInput<'_>,
        here: bool,
        nodes: &[&'n Arc<str>],
    ) -> Option<&'n Arc<str>> {
        if nodes.is_empty() || (here && self.config.shared_local_first) {
            return None;
        }
        let candidates = nodes.len() + usize::from(here);
        if candidates == 1 {
            return nodes.first().copied();
        }
        let turn = match self.config.shared_strategy {
            Strategy::HashClientId => stable_hash(input.publisher.as_bytes()),
            Strategy::HashTopic => stable_hash(input.topic.as_bytes()),
            Strategy::Sticky => 0,
            Strategy::Random | Strategy::RoundRobin => {
                self.node_turn.fetch_add(1, Ordering::Relaxed)
            }
        };
        // `candidates` is a node count: it fits in u64 and back.
        let i = (turn % candidates as u64) as usize;
        match (here, i) {
            (true, 0) => None,
            (true, i) => Some(nodes[i - 1]),
            (false, i) => Some(nodes[i]),
        }
    }

    /// Routes a message another node forwarded (see [`RemoteDelivery`]):
    /// to this node's plain subscriptions when `plain`, and to one local
    /// member of each of `groups`; never on to another node. Returns how
    /// many local subscriptions got it.
    pub fn route_forwarded(
        &self,
        message: &Arc<Message>,
        plain: bool,
        groups: &[(&str, &str)],
        batch: &mut DeliveryBatch<S>,
    ) -> usize {
        let mut local = 0;
        if plain {
            self.index
                .match_topic(&message.topic, &mut |key: &SubKey<S>, opts: &SubOpts| {
                    if let SubKey::Local(sub) = key {
                        batch.push(sub, Delivery::new(Arc::clone(message), *opts));
                        local += 1;
                    }
                });
        }
        if !groups.is_empty() {
            let input = PickInput {
                publisher: &message.from,
                topic: &message.topic,
            };
            let shared = self.shared.read();
            for &(group, filter) in groups {
                if let Some(member) = shared.pick(group, filter, &input) {
                    batch.push(&member.sub, Delivery::new(Arc::clone(message), member.opts));
                    local += 1;
                }
            }
        }
        if local > 1 {
            message.expect_many_subscribers();
        }
        local
    }

    /// Adds `node`'s route `key` (a row of the cluster's route table).
    /// Returns whether it is new.
    pub fn add_remote_route(&self, key: &str, node: &str) -> bool {
        let mut remote = self.remote.write();
        let added = remote.add(key, node);
        self.has_remote.store(!remote.is_empty(), Ordering::Release);
        added
    }

    /// Removes `node`'s route `key`. Returns whether it was there.
    pub fn remove_remote_route(&self, key: &str, node: &str) -> bool {
        let mut remote = self.remote.write();
        let removed = remote.remove(key, node);
        self.has_remote.store(!remote.is_empty(), Ordering::Release);
        removed
    }

    /// Replaces every remote route by `routes` (key, node): a full resync.
    pub fn reset_remote_routes<'a>(&self, routes: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut remote = self.remote.write();
        remote.clear();
        for (key, node) in routes {
            remote.add(key, node);
        }
        self.has_remote.store(!remote.is_empty(), Ordering::Release);
    }

    /// Marks `node` down (its routes are kept and not used) or up again.
    pub fn set_node_down(&self, node: &str, down: bool) {
        self.remote.write().set_down(node, down);
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
