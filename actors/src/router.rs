//! The node's routing, wired: the pure [`girder_broker::routing::Router`]
//! joined to the node's counters, its subscribers' mailboxes and the
//! replicated route table.
//!
//! ```text
//!  channel actor ── subscribe / unsubscribe ──► routing::Router (locks)
//!                                                  │ Option<RouteChange>
//!                                                  ▼ (locks released)
//!                                  routing shard actor of the filter
//!                                                  ▼
//!                                            route table row (rlog)
//!  channel actor ── route(message, batch) ───► routing::Router (read locks)
//!                ── flush(batch) ─────────────► each subscriber's mailbox
//!                                 └───────────► each other node's link:
//!                                               one Forward per node
//!  other node's link ── Forward ─► forward::ForwardReceiver ─► route_forwarded
//!  route table (other nodes' rows) ─► follow::RouteFollower ─► remote routes
//! ```
//!
//! There is no router actor on the publish path (DESIGN §3: no round trip
//! through one actor per message): publishers on every arbiter read the
//! sharded index in parallel, collect the deliveries of everything they
//! decoded from one read into a [`DeliveryBatch`], and [`Router::flush`]
//! sends each subscriber one mailbox message.
//!
//! The subscriber handle is a type parameter ([`Mailbox`]): this module
//! knows no actor type (the channel actor's handle implements it).
//!
//! Route rows are written by the routing shard actors ([`shard`]), one per
//! index shard under the `router` supervisor; a restarted one rebuilds its
//! part of the route table from the index. The other nodes' rows are
//! followed by [`follow::RouteFollower`] into the pure router's remote
//! routes; messages for another node leave in one `Forward` per node and
//! flush, over that node's link, in publish order, and arrive at its
//! [`forward::ForwardReceiver`].
//!
//! # Layout
//!
//! - this file: [`Router`], [`Mailbox`], [`RouterConfig`], [`RouteTable`].
//! - [`shard`]: [`RoutingShard`], the supervised writer of one shard's route
//!   rows.
//! - [`forward`]: sending a batch's messages to other nodes, and receiving
//!   theirs.
//! - [`follow`]: [`RouteFollower`], the supervised follower of the other
//!   nodes' route rows.
//! - [`retained`]: the retained store as the mirror of the replicated
//!   `retained` table, its writer and watcher tasks.

pub mod follow;
pub mod forward;
pub mod retained;
pub mod shard;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use actix::Recipient;
use bytes::Bytes;
use girder_broker::codec::ByteStr;
use girder_broker::message::{Delivery, Message, SubOpts};
use girder_broker::routing::{self, RetainOutcome, RouteChange, RoutingConfig};
use girder_cluster::rlog::Rlog;
use girder_cluster::{ClusterHandle, NodeName};
use parking_lot::Mutex;
use tracing::warn;

use crate::metrics::Metrics;

pub use follow::RouteFollower;
pub use forward::{Accepted, ForwardReceiver, FORWARD};
use shard::WriteRoute;
pub use shard::{shard_name, RoutingShard};

/// The deliveries a publisher collects for its subscribers.
pub type DeliveryBatch<S> = routing::DeliveryBatch<S>;

/// A subscriber as the node delivers to it: the router's handle plus a
/// mailbox and the count of deliveries waiting in it.
pub trait Mailbox: routing::Subscriber + Send + Sync + 'static {
    /// Deliveries sent and not yet handled: the bound that protects a slow
    /// subscriber's mailbox.
    fn pending(&self) -> &AtomicUsize;

    /// Sends the subscriber its deliveries (without waiting; a subscriber
    /// that is gone loses them).
    fn deliver(&self, deliveries: Vec<Delivery>);
}

/// Settings of the router.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// The pure router's settings: shards, shared strategy, retained store.
    pub routing: RoutingConfig,
    /// Most deliveries waiting in one subscriber's mailbox; more are dropped
    /// and counted.
    pub max_pending: usize,
}

/// Where this node's route rows go: a table of the replicated tables.
#[derive(Debug, Clone)]
pub struct RouteTable {
    /// The replicated tables.
    pub rlog: Rlog,
    /// The owned table of routes (filter → this node).
    pub table: &'static str,
    /// This node, the owner of its rows.
    pub node: NodeName,
    /// The distribution layer, over which messages for other nodes go.
    pub cluster: ClusterHandle,
}

/// The node's routing: shared by every channel actor (`Arc<Router<S>>`).
#[derive(Debug)]
pub struct Router<S> {
    routing: routing::Router<S>,
    next_id: AtomicU64,
    max_pending: usize,
    metrics: Arc<Metrics>,
    /// This node's row for a filter exists while the node has a subscriber
    /// to it.
    routes: Option<RouteTable>,
    /// Held while route rows are written: each write states whether the
    /// index uses the filter at that moment, so the last write of a filter
    /// is its last state even when subscribes and unsubscribes race.
    route_writes: Mutex<()>,
    /// The routing shard actor of each index shard, while one runs.
    shard_actors: Box<[Mutex<Option<Recipient<WriteRoute>>>]>,
    /// The replicated table the retained store mirrors, once
    /// [`Router::replicate_retained`] set it.
    retained_table: OnceLock<Arc<retained::RetainedTable>>,
}

impl<S: Mailbox> Router<S> {
    /// An empty router; `routes` receives this node's route rows.
    pub fn new(config: RouterConfig, metrics: Arc<Metrics>, routes: Option<RouteTable>) -> Self {
        let routing = routing::Router::new(config.routing);
        let shard_actors = (0..routing.shard_count())
            .map(|_| Mutex::new(None))
            .collect();
        Self {
            routing,
            next_id: AtomicU64::new(1),
            max_pending: config.max_pending,
            metrics,
            routes,
            route_writes: Mutex::new(()),
            shard_actors,
            retained_table: OnceLock::new(),
        }
    }

    /// Has the route row of a filter whose use changed written, outside
    /// the router's locks: by the filter's routing shard actor, or here
    /// when none runs (none started yet, or one restarting: its rebuild
    /// covers what was sent to the one that died).
    fn write_route(&self, change: Option<RouteChange>) {
        let Some(change) = change.filter(|_| self.routes.is_some()) else {
            return;
        };
        let shard = self.routing.shard_of(change.key());
        let actor = self.shard_actors.get(shard).map(|slot| slot.lock());
        match actor.as_deref() {
            Some(Some(actor)) => actor.do_send(WriteRoute(change.into_key())),
            _ => {
                drop(actor);
                self.write_route_row(change.key());
            }
        }
    }

    /// Writes the route row of `key` (a filter with plain subscriptions, or
    /// `$share/{group}/{filter}`) as the index is now: present while a
    /// subscription or group member uses it. A change overtaken by a later
    /// one writes the later state (twice at worst), never a stale one.
    pub(crate) fn write_route_row(&self, key: &str) {
        let Some(routes) = &self.routes else {
            return;
        };
        let _serial = self.route_writes.lock();
        let value = self.routing.is_used(key).then(Bytes::new);
        let row = Bytes::copy_from_slice(key.as_bytes());
        if let Err(err) = routes.rlog.write_owned(routes.table, row, value) {
            warn!(route = %key, cause = %err, "route row not written");
        }
    }

    /// Number of index shards (and routing shard actors).
    pub fn shard_count(&self) -> usize {
        self.routing.shard_count()
    }

    /// The index shard of the route key `key`.
    pub fn shard_of(&self, key: &str) -> usize {
        self.routing.shard_of(key)
    }

    /// Route changes of `shard` go to `actor` from now on. Returns whether
    /// an earlier actor had the shard (this one is a restart).
    fn attach_shard(&self, shard: usize, actor: Recipient<WriteRoute>) -> bool {
        self.shard_actors
            .get(shard)
            .is_some_and(|slot| slot.lock().replace(actor).is_some())
    }

    /// Makes this node's route rows of `shard`'s filters match the index:
    /// a row for each filter in use, none for the others. Returns how many
    /// rows it wrote.
    fn rebuild_routes(&self, shard: usize) -> usize {
        let Some(routes) = &self.routes else {
            return 0;
        };
        let _serial = self.route_writes.lock();
        let rows: HashSet<Bytes> = routes
            .rlog
            .scan_owned(routes.table, b"")
            .into_iter()
            .filter(|(key, owner, _)| {
                *owner == routes.node
                    && std::str::from_utf8(key).is_ok_and(|f| self.routing.shard_of(f) == shard)
            })
            .map(|(key, _, _)| key)
            .collect();
        let used = self.routing.used_keys(shard);
        let mut written = 0;
        let mut write = |key: Bytes, value: Option<Bytes>| {
            written += 1;
            if let Err(err) = routes.rlog.write_owned(routes.table, key, value) {
                warn!(shard, cause = %err, "route row not written");
            }
        };
        let used_keys: HashSet<Bytes> = used
            .iter()
            .map(|f| Bytes::copy_from_slice(f.as_bytes()))
            .collect();
        for key in used_keys.difference(&rows) {
            write(key.clone(), Some(Bytes::new()));
        }
        for key in rows.difference(&used_keys) {
            write(key.clone(), None);
        }
        written
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
    pub fn subscribe(&self, raw: &str, sub: &S, opts: SubOpts) {
        let change = self.routing.subscribe(raw, sub, opts);
        self.write_route(change);
    }

    /// Removes `sub`'s subscription to `raw`.
    pub fn unsubscribe(&self, raw: &str, sub: &S) {
        let change = self.routing.unsubscribe(raw, sub);
        self.write_route(change);
    }

    /// Matches `message` against every subscription, of this node and of
    /// the others (see [`routing::Router::route`]), into `batch`. Returns
    /// how many local subscriptions and other nodes it goes to.
    pub fn route(&self, message: &Arc<Message>, batch: &mut DeliveryBatch<S>) -> usize {
        let outcome = self.routing.route(message, batch);
        let matched = outcome.local + outcome.remote;
        self.metrics.messages_routed(matched);
        matched
    }

    /// Routes a message another node forwarded to this node's subscribers
    /// only; returns how many got it.
    pub fn route_forwarded(
        &self,
        message: &Arc<Message>,
        plain: bool,
        groups: &[(&str, &str)],
        batch: &mut DeliveryBatch<S>,
    ) -> usize {
        self.routing.route_forwarded(message, plain, groups, batch)
    }

    /// The pure router: remote routes and node state, for the follower.
    pub fn routing(&self) -> &routing::Router<S> {
        &self.routing
    }

    /// This node's route table, when it is in a cluster.
    pub fn route_table(&self) -> Option<&RouteTable> {
        self.routes.as_ref()
    }

    /// Redelivers messages that a member of shared groups received and did
    /// not acknowledge before it went away, to other members of `groups`
    /// (its `$share/...` subscriptions, as sent); counts those that found
    /// no member.
    pub fn redispatch(
        &self,
        gone: &S,
        groups: &[ByteStr],
        messages: Vec<Arc<Message>>,
        batch: &mut DeliveryBatch<S>,
    ) {
        let undelivered = self.routing.redispatch(gone, groups, messages, batch);
        for _ in 0..undelivered {
            self.metrics.dropped_no_subscriber();
        }
    }

    /// Stores, replaces or (empty payload) clears the retained message of
    /// its topic, retained at `now`; counts a refusal. With a replicated
    /// table, the change is also queued for it (see [`retained`]).
    pub fn retain(&self, message: &Message, now: Instant) {
        if let Some(table) = self.retained_table.get() {
            return self.retain_in_table(table, message, now);
        }
        if let RetainOutcome::Refused(_) = self.routing.retain(message, now) {
            self.metrics.retained_refused();
        }
    }

    /// Removes the expired retained messages (`retainer.msg_clear_interval`);
    /// returns how many.
    pub fn purge_expired_retained(&self, now: Instant) -> usize {
        if let Some(table) = self.retained_table.get() {
            return self.purge_in_table(table, now);
        }
        self.routing.purge_expired_retained(now)
    }

    /// The retained messages whose topics match `raw` (not expired).
    pub fn retained_matching(&self, raw: &str, now: Instant) -> Vec<Arc<Message>> {
        self.routing.retained_matching(raw, now)
    }

    /// Number of retained messages.
    pub fn retained_count(&self) -> usize {
        self.routing.retained_count()
    }

    /// Number of subscriptions in the index.
    pub fn subscription_count(&self) -> usize {
        self.routing.subscription_count()
    }

    /// Sends every subscriber in `batch` its deliveries, dropping (and
    /// counting) what would push a subscriber past `max_pending`, and every
    /// other node its messages. Returns, when some of those were QoS 1 or
    /// 2, what resolves once every such node has routed them: the
    /// publisher's acknowledgements wait for it.
    #[must_use = "the publisher's acknowledgements wait for the other nodes"]
    pub fn flush(&self, batch: &mut DeliveryBatch<S>) -> Option<Accepted> {
        self.flush_local(batch);
        if !batch.has_remote() {
            return None;
        }
        let routes = self.routes.as_ref()?;
        forward::send(routes, &self.metrics, batch)
    }

    /// Sends every subscriber in `batch` its deliveries (the local part of
    /// [`flush`](Self::flush)).
    pub fn flush_local(&self, batch: &mut DeliveryBatch<S>) {
        for (sub, mut deliveries) in batch.drain() {
            let pending = sub.pending().load(Ordering::Relaxed);
            let room = self.max_pending.saturating_sub(pending);
            if deliveries.len() > room {
                self.metrics.dropped_overload(deliveries.len() - room);
                deliveries.truncate(room);
            }
            if deliveries.is_empty() {
                continue;
            }
            sub.pending().fetch_add(deliveries.len(), Ordering::Relaxed);
            sub.deliver(deliveries);
        }
    }
}
