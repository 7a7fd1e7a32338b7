//! The node's routing state: who is subscribed to what, shared groups, and
//! retained messages, read directly by every publisher's channel actor.
//!
//! There is no router actor on the publish path (DESIGN §3: no round trip
//! through one actor per message). The subscriber index is sharded by first
//! topic level behind read-write locks, so publishers on every arbiter match
//! topics in parallel and subscribers update it without stopping them. A
//! publisher collects the deliveries of everything it decoded from one read
//! into a [`DeliveryBatch`], then sends each subscriber one mailbox message.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use bytes::Bytes;
use girder_broker::codec::ByteStr;
use girder_broker::exclusive;
use girder_broker::message::{Delivery, Message, SubOpts};
use girder_broker::retained::{RetainError, RetainedLimits, RetainedStore};
use girder_broker::shared::{PickInput, SharedSubscriptions, Strategy};
use girder_broker::topic::{parse_filter, ParsedFilter, ShardedIndex, TopicLimits};
use girder_cluster::rlog::Rlog;
use parking_lot::RwLock;
use tracing::warn;

use crate::channel::{ChannelActor, Deliver};
use crate::cluster::ROUTES;
use crate::metrics::Metrics;

/// One live subscriber: a channel actor incarnation. Equal by `id` only.
///
/// A shared handle (its fields are reached through `Deref`): the index holds
/// one per subscription and a delivery batch one per subscriber it sends to,
/// so cloning it is one reference count, not an actor address of its own
/// (which allocates a sender record per clone).
#[derive(Debug, Clone)]
pub struct Subscriber(Arc<SubscriberData>);

/// What a [`Subscriber`] handle shares.
#[derive(Debug)]
pub struct SubscriberData {
    /// Unique for the life of the node.
    pub id: u64,
    /// Where deliveries go.
    pub addr: Addr<ChannelActor>,
    /// The subscriber's client id (for hash_clientid and logs).
    pub client_id: ByteStr,
    /// Deliveries sent and not yet handled: the bound that protects a slow
    /// subscriber's mailbox.
    pub pending: AtomicUsize,
}

impl Subscriber {
    /// A subscriber with nothing pending.
    pub fn new(id: u64, addr: Addr<ChannelActor>, client_id: ByteStr) -> Self {
        Self(Arc::new(SubscriberData {
            id,
            addr,
            client_id,
            pending: AtomicUsize::new(0),
        }))
    }
}

impl std::ops::Deref for Subscriber {
    type Target = SubscriberData;

    fn deref(&self) -> &SubscriberData {
        &self.0
    }
}

impl PartialEq for Subscriber {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Subscriber {}

impl Hash for Subscriber {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

/// A key of the subscriber index: a local subscriber, or the one entry of a
/// shared group (the group picks the member when a message matches).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubKey {
    /// An ordinary subscription.
    Local(Subscriber),
    /// A shared group `$share/{group}/{filter}`.
    Shared {
        /// The share name.
        group: Arc<str>,
        /// The filter the group subscribes to.
        filter: Arc<str>,
    },
}

/// A member of a shared group, with its subscription options.
#[derive(Debug, Clone)]
pub struct Member {
    /// The subscriber.
    pub sub: Subscriber,
    /// Its options for this group.
    pub opts: SubOpts,
}

impl PartialEq for Member {
    fn eq(&self, other: &Self) -> bool {
        self.sub == other.sub
    }
}

impl Eq for Member {}

impl Hash for Member {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.sub.hash(state);
    }
}

/// Settings of the router.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Index shards (by first topic level).
    pub shards: usize,
    /// Strategy of shared groups (`mqtt.shared_subscription_strategy`).
    pub shared_strategy: Strategy,
    /// Topic limits, for parsing filters.
    pub topic_limits: TopicLimits,
    /// Most deliveries waiting in one subscriber's mailbox; more are dropped
    /// and counted.
    pub max_pending: usize,
    /// Most retained messages (`retainer.max_retained_messages`, 0 = no limit).
    pub max_retained_messages: usize,
    /// Largest retained payload (`retainer.max_payload_size`).
    pub max_retained_payload: usize,
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

/// The node's routing state. Shared by every channel actor (`Arc<Router>`).
#[derive(Debug)]
pub struct Router {
    index: ShardedIndex<SubKey, SubOpts>,
    shared: RwLock<SharedSubscriptions<Member>>,
    retained: RwLock<RetainedStore<Arc<Message>>>,
    next_id: AtomicU64,
    config: RouterConfig,
    metrics: Arc<Metrics>,
    /// The replicated route table: this node's row for a filter exists
    /// while the node has a subscriber to it.
    tables: Option<Rlog>,
}

impl Router {
    /// An empty router; `tables` receives this node's route rows.
    pub fn new(config: RouterConfig, metrics: Arc<Metrics>, tables: Option<Rlog>) -> Self {
        let retained = RetainedStore::new(RetainedLimits {
            max_messages: (config.max_retained_messages > 0)
                .then_some(config.max_retained_messages),
            max_payload_size: (config.max_retained_payload > 0)
                .then_some(config.max_retained_payload),
        });
        Self {
            index: ShardedIndex::new(config.shards.max(1)),
            shared: RwLock::new(SharedSubscriptions::new(config.shared_strategy)),
            retained: RwLock::new(retained),
            next_id: AtomicU64::new(1),
            config,
            metrics,
            tables,
        }
    }

    /// Records (or removes) this node's route row for `filter` in the
    /// replicated route table. The write is local: the row travels to the
    /// other nodes on this node's owned stream.
    fn route_row(&self, filter: &str, present: bool) {
        if let Some(tables) = &self.tables {
            let value = present.then(Bytes::new);
            if let Err(err) =
                tables.write_owned(ROUTES, Bytes::copy_from_slice(filter.as_bytes()), value)
            {
                warn!(%filter, cause = %err, "route row not written");
            }
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

    /// A fresh subscriber id.
    pub fn next_subscriber_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The node's counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Adds (or updates) `sub`'s subscription to `raw` (as sent in
    /// SUBSCRIBE, `$share/...` included).
    pub fn subscribe(&self, raw: &str, sub: &Subscriber, opts: SubOpts) {
        let Some(parsed) = self.parse(raw) else {
            return;
        };
        match parsed.group {
            None => {
                let outcome = self
                    .index
                    .insert(parsed.filter, SubKey::Local(sub.clone()), opts);
                if outcome.new_filter {
                    self.route_row(parsed.filter, true);
                }
            }
            Some(group) => {
                let member = Member {
                    sub: sub.clone(),
                    opts,
                };
                let mut shared = self.shared.write();
                // Leave first so that new options replace the old ones.
                shared.leave(group, parsed.filter, &member);
                if shared.join(group, parsed.filter, member) {
                    let key = SubKey::Shared {
                        group: Arc::from(group),
                        filter: Arc::from(parsed.filter),
                    };
                    if self
                        .index
                        .insert(parsed.filter, key, SubOpts::default())
                        .new_filter
                    {
                        self.route_row(parsed.filter, true);
                    }
                }
            }
        }
    }

    /// Removes `sub`'s subscription to `raw`.
    pub fn unsubscribe(&self, raw: &str, sub: &Subscriber) {
        let Some(parsed) = self.parse(raw) else {
            return;
        };
        match parsed.group {
            None => {
                let outcome = self
                    .index
                    .remove(parsed.filter, &SubKey::Local(sub.clone()));
                if outcome.filter_gone {
                    self.route_row(parsed.filter, false);
                }
            }
            Some(group) => {
                let member = Member {
                    sub: sub.clone(),
                    opts: SubOpts::default(),
                };
                let mut shared = self.shared.write();
                let left = shared.leave(group, parsed.filter, &member);
                if left && shared.group(group, parsed.filter).is_none() {
                    let key = SubKey::Shared {
                        group: Arc::from(group),
                        filter: Arc::from(parsed.filter),
                    };
                    if self.index.remove(parsed.filter, &key).filter_gone {
                        self.route_row(parsed.filter, false);
                    }
                }
            }
        }
    }

    /// Matches `message` against every subscription and adds one delivery
    /// per matching subscription (one per shared group) to `batch`. Returns
    /// how many subscriptions matched.
    pub fn route(&self, message: &Arc<Message>, batch: &mut DeliveryBatch) -> usize {
        let mut matched = 0;
        let mut groups: Vec<(Arc<str>, Arc<str>)> = Vec::new();
        self.index.match_topic(
            &message.topic,
            &mut |key: &SubKey, opts: &SubOpts| match key {
                SubKey::Local(sub) => {
                    batch.push(sub, Delivery::new(Arc::clone(message), *opts));
                    matched += 1;
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
                    matched += 1;
                }
            }
        }
        if matched > 1 {
            // Encoded once per protocol version, QoS and RETAIN flag by
            // the first subscriber's connection, shared by the others.
            message.expect_many_subscribers();
        }
        self.metrics.messages_routed(matched);
        matched
    }

    /// Redelivers messages that a member of shared groups received and did
    /// not acknowledge before it went away: each goes to another member of
    /// one of `groups` (the member's `$share/...` subscriptions, as sent)
    /// whose filter matches its topic.
    pub fn redispatch(
        &self,
        gone: &Subscriber,
        groups: &[ByteStr],
        messages: Vec<Arc<Message>>,
        batch: &mut DeliveryBatch,
    ) {
        let parsed: Vec<_> = groups
            .iter()
            .filter_map(|raw| self.parse(raw))
            .filter_map(|p| Some((p.group?, p.filter)))
            .collect();
        let shared = self.shared.read();
        for message in messages {
            let input = PickInput {
                publisher: &message.from,
                topic: &message.topic,
            };
            let mut done = false;
            for &(group, filter) in &parsed {
                if !girder_broker::topic::matches(filter, &message.topic) {
                    continue;
                }
                if let Some(member) =
                    shared.pick_excluding(group, filter, &input, |m| m.sub == *gone)
                {
                    batch.push(
                        &member.sub,
                        Delivery::new(Arc::clone(&message), member.opts),
                    );
                    done = true;
                    break;
                }
            }
            if !done {
                self.metrics.dropped_no_subscriber();
            }
        }
    }

    /// Stores, replaces or (empty payload) clears the retained message of
    /// its topic, retained at `now`.
    pub fn retain(&self, message: &Arc<Message>, now: Instant) {
        let mut store = self.retained.write();
        if message.payload.is_empty() {
            store.remove(&message.topic);
        } else {
            let deadline = self.retained_deadline(message, now);
            let mut result = store.set(&message.topic, Arc::new(message.compact()), deadline);
            if matches!(result, Err(RetainError::StoreFull { .. }))
                && !self.config.retained_clearer
                && store.purge_expired(now) > 0
            {
                result = store.set(&message.topic, Arc::new(message.compact()), deadline);
            }
            if result.is_err() {
                self.metrics.retained_refused();
            }
        }
    }

    /// When a message retained at `now` leaves the store: at its own expiry
    /// when its publisher set one, else after `retainer.msg_expiry_interval`
    /// or at the broker's default message expiry, whichever comes first.
    fn retained_deadline(&self, message: &Message, now: Instant) -> Option<Instant> {
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

    /// The retained messages whose topics match `raw` (not expired).
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

    /// Number of retained messages.
    pub fn retained_count(&self) -> usize {
        self.retained.read().len()
    }

    /// Number of subscriptions in the index.
    pub fn subscription_count(&self) -> usize {
        self.index.subscription_count()
    }

    /// Most deliveries waiting for one subscriber.
    pub fn max_pending(&self) -> usize {
        self.config.max_pending
    }
}

/// Deliveries collected while handling one batch of input, grouped by
/// subscriber so that each gets one mailbox message.
#[derive(Debug, Default)]
pub struct DeliveryBatch {
    by_subscriber: HashMap<u64, (Subscriber, Vec<Delivery>), BuildHasherDefault<IdHasher>>,
}

/// Hashes a subscriber id (a counter: unique, never chosen by a client) with
/// one multiplication; the batch looks one up for every delivery, where
/// SipHash was a visible share of a fan-out's CPU.
#[derive(Debug, Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0 ^ id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        // The high bits of the product are the well-mixed ones; hashbrown
        // takes the bucket from the low bits and its tag from the top 7.
        self.0.rotate_left(32)
    }
}

impl DeliveryBatch {
    /// Adds a delivery for `sub`.
    pub fn push(&mut self, sub: &Subscriber, delivery: Delivery) {
        self.by_subscriber
            .entry(sub.id)
            .or_insert_with(|| (sub.clone(), Vec::new()))
            .1
            .push(delivery);
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.by_subscriber.is_empty()
    }

    /// Sends every subscriber its deliveries, dropping (and counting) what
    /// would push a subscriber past `max_pending`.
    pub fn flush(&mut self, max_pending: usize, metrics: &Metrics) {
        for (_, (sub, mut deliveries)) in self.by_subscriber.drain() {
            let pending = sub.pending.load(Ordering::Relaxed);
            let room = max_pending.saturating_sub(pending);
            if deliveries.len() > room {
                metrics.dropped_overload(deliveries.len() - room);
                deliveries.truncate(room);
            }
            if deliveries.is_empty() {
                continue;
            }
            sub.pending.fetch_add(deliveries.len(), Ordering::Relaxed);
            sub.addr.do_send(Deliver(deliveries));
        }
    }
}
