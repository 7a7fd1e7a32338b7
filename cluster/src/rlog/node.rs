//! The shell around the pure parts: the `girder.rlog` process (subscribes,
//! pushes, forwarded writes), the pump that sends what feeds owe their
//! subscribers, and the ticker (owned streams of peers, grace-period cleanup,
//! the replicant's placement of its shards on cores and rebalancing).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use girder_proto::rlog as pb;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

mod placement;
mod status;

use placement::Balance;

use super::feed::{ops_to_pb, Feed, Follow, Step};
use super::group::{self, Changes};
use super::lock::LockTable;
use super::msg::{RlogMsg, T_JOIN_GROUP_REPLY, T_LOCK_REPLY, T_PROBE_REPLY, T_WRITE_REPLY};
use super::raft::{node_id, RaftShards};
use super::store::{Op, ShardKind, Store};
use super::{RlogError, RlogOptions, Role};
use crate::handle::ClusterHandle;
use crate::node::NodeEvent;
use crate::options::NodeName;
use crate::process::{Payload, RemoteMessage};
use crate::task::{OnStop, Tasks};

/// The name every node registers for feeds and forwarded writes.
pub(crate) const RLOG: &str = "girder.rlog";
/// The feed of a node's own owned rows.
pub(crate) const OWNED_FEED: &str = "owned";

/// The feed name of a consensus shard.
pub(crate) fn shard_feed(shard: &str) -> String {
    format!("shard:{shard}")
}

/// The origin of a node incarnation's consensus write ids.
pub(crate) fn write_origin(node: &NodeName, incarnation: u64) -> bytes::Bytes {
    bytes::Bytes::from(format!("{node}/{incarnation}"))
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Rows and served feeds: what the Raft state machine and the shell share.
#[derive(Debug)]
pub(crate) struct Tables {
    pub(crate) store: RwLock<Store>,
    /// Feeds this node serves. Lock order: `served`, then `store`.
    pub(crate) served: Mutex<HashMap<String, Feed>>,
    /// Wakes the pump.
    pub(crate) kick: Notify,
}

/// Recent replication delays, for the p99 in the status.
#[derive(Debug, Default)]
struct LagSamples(VecDeque<u64>);

impl LagSamples {
    fn push(&mut self, ms: u64) {
        if self.0.len() == 2048 {
            self.0.pop_front();
        }
        self.0.push_back(ms);
    }

    fn p99(&self) -> u64 {
        let mut v: Vec<u64> = self.0.iter().copied().collect();
        v.sort_unstable();
        v.get((v.len() * 99 / 100).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    }
}

/// Where a followed feed's rows go.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Scope {
    Owner(NodeName),
    Shard(String),
}

#[derive(Debug)]
struct Following {
    follow: Follow,
    subscribed_at: Instant,
    behind_since: Option<Instant>,
}

/// The state of the replicated tables on this node.
pub(crate) struct Shared {
    pub(crate) handle: ClusterHandle,
    pub(crate) opts: RlogOptions,
    pub(crate) me: NodeName,
    pub(crate) incarnation: u64,
    /// The last sequence number given to a consensus write of this node.
    write_seq: std::sync::atomic::AtomicU64,
    pub(crate) tables: Arc<Tables>,
    follows: Mutex<HashMap<Scope, Following>>,
    down_since: Mutex<HashMap<NodeName, Instant>>,
    lag: Mutex<LagSamples>,
    locks: Mutex<LockTable>,
    balance: Mutex<Balance>,
    pub(crate) rafts: Option<Arc<RaftShards>>,
    /// The leader side of group membership changes.
    pub(crate) changes: Arc<Changes>,
    pub(crate) stop: CancellationToken,
    /// The long-lived tasks (see `crate::task`), for a supervisor.
    pub(crate) tasks: Tasks,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rlog")
            .field("node", &self.me)
            .field("role", &self.opts.role)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) async fn start(
        handle: ClusterHandle,
        opts: RlogOptions,
    ) -> Result<Arc<Self>, RlogError> {
        let mut shard_of = HashMap::new();
        for s in &opts.shards {
            for t in &s.tables {
                shard_of.insert(t.clone(), (s.name.clone(), s.kind));
            }
        }
        let incarnation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let mut served = HashMap::new();
        served.insert(
            OWNED_FEED.to_owned(),
            Feed::new(OWNED_FEED, incarnation, 0, opts.retain, opts.window),
        );
        let mut store = Store::new(shard_of);
        store.set_origin(write_origin(handle.node(), incarnation));
        let tables = Arc::new(Tables {
            store: RwLock::new(store),
            served: Mutex::new(served),
            kick: Notify::new(),
        });
        let me = handle.node().clone();
        let tasks = Tasks::default();
        let rafts = match opts.role {
            Role::Core => Some(RaftShards::start(&handle, &opts, &tables, &tasks).await?),
            Role::Replicant => None,
        };
        let (tx, rx) = mpsc::channel(4096);
        let shared = Arc::new(Self {
            handle: handle.clone(),
            opts,
            me,
            incarnation,
            write_seq: std::sync::atomic::AtomicU64::new(0),
            tables,
            follows: Mutex::new(HashMap::new()),
            down_since: Mutex::new(HashMap::new()),
            lag: Mutex::new(LagSamples::default()),
            locks: Mutex::new(LockTable::default()),
            balance: Mutex::new(Balance::default()),
            rafts,
            changes: Arc::new(Changes::default()),
            stop: CancellationToken::new(),
            tasks,
        });
        handle.register(RLOG, tx)?;
        // Kept across restarts of the dispatcher: messages wait in it.
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        shared.spawn_task("rlog.dispatch", move |s| dispatch(s, Arc::clone(&rx)));
        shared.spawn_task("rlog.pump", pump);
        shared.spawn_task("rlog.ticker", ticker);
        if let Err(e) = group::check_at_start(&shared, shared.opts.write_timeout).await {
            shared.shutdown().await;
            return Err(e);
        }
        shared.spawn_task("rlog.group", group::run);
        info!(node = %shared.me, role = ?shared.opts.role, "rlog started");
        Ok(shared)
    }

    /// Adds a long-lived task over this state: each instance holds the
    /// state while it runs; the task set holds it weakly (no cycle).
    fn spawn_task<F, Fut>(self: &Arc<Self>, name: &str, run: F)
    where
        F: Fn(Arc<Self>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let weak = Arc::downgrade(self);
        self.tasks.spawn(name, OnStop::Leave, move || {
            let instance = weak.upgrade().map(&run);
            async move {
                if let Some(instance) = instance {
                    instance.await;
                }
            }
        });
    }

    pub(crate) async fn shutdown(&self) {
        self.stop.cancel();
        self.handle.unregister(RLOG);
        if let Some(r) = &self.rafts {
            r.shutdown(&self.handle).await;
        }
    }

    /// The cores: the voters of the first consensus group this core holds,
    /// else `cluster.core_nodes`.
    pub(crate) fn cores(&self) -> Vec<NodeName> {
        self.rafts
            .as_ref()
            .and_then(|r| {
                r.shards()
                    .first()
                    .map(|s| r.view(s).voters)
                    .filter(|v| !v.is_empty())
            })
            .unwrap_or_else(|| self.opts.core_nodes.clone())
    }

    fn shard_kind(&self, shard: &str) -> Option<ShardKind> {
        self.opts
            .shards
            .iter()
            .find(|s| s.name == shard)
            .map(|s| s.kind)
    }

    pub(crate) fn write_owned(&self, ops: Vec<Op>) -> Result<u64, RlogError> {
        for op in &ops {
            match self.tables.store.read().shard_of(&op.table) {
                Some((_, ShardKind::Owned)) => {}
                _ => return Err(RlogError::UnknownTable(op.table.clone())),
            }
        }
        let pos = {
            let mut served = self.tables.served.lock();
            let feed = served
                .get_mut(OWNED_FEED)
                .ok_or_else(|| RlogError::UnknownShard(OWNED_FEED.into()))?;
            let pos = feed.head() + 1;
            self.tables.store.write().apply_owned(&self.me, &ops);
            feed.append(pos, ops_to_pb(&ops), now_ms());
            pos
        };
        self.tables.kick.notify_one();
        Ok(pos)
    }

    /// A consensus write entering here: it gets this node's next write id,
    /// which every retry and forward carries, so it is applied at most once
    /// (`Store::apply_at`). Returns the index at which it took effect when
    /// the answered attempt was a copy skipped as already applied.
    pub(crate) async fn write_once(&self, shard: &str, ops: Vec<Op>) -> Result<u64, RlogError> {
        if self.shard_kind(shard) != Some(ShardKind::Consensus) {
            return Err(RlogError::UnknownShard(shard.to_owned()));
        }
        let covers = u32::try_from(ops.len())
            .map_err(|_| RlogError::InvalidOption("too many ops in one write".into()))?;
        let seq = self
            .write_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let origin = write_origin(&self.me, self.incarnation);
        let mut all = Vec::with_capacity(ops.len() + 1);
        all.push(Op::write_id(shard, &origin, seq, covers));
        all.extend(ops);
        let started = Instant::now();
        let index = match self.write(shard, all).await {
            Ok(index) => index,
            Err(e) => {
                self.tables.store.write().take_applied(seq);
                return Err(e);
            }
        };
        // Entries apply in order: once `index` is applied here, the first
        // copy of this write that took effect has been too.
        let taken = self.tables.store.write().take_applied(seq);
        let taken = match taken {
            Some(t) => Some(t),
            None if self.applied(shard) >= index => None,
            None => {
                let left = self
                    .opts
                    .write_timeout
                    .saturating_sub(started.elapsed())
                    .max(Duration::from_millis(100));
                self.wait_applied(shard, index, left).await;
                self.tables.store.write().take_applied(seq)
            }
        };
        Ok(match taken {
            Some(t) if t > 0 && t < index => {
                debug!(%shard, seq, answered = index, applied = t, "rlog write sent twice, applied once");
                t
            }
            _ => index,
        })
    }

    pub(crate) async fn write(&self, shard: &str, ops: Vec<Op>) -> Result<u64, RlogError> {
        if self.shard_kind(shard) != Some(ShardKind::Consensus) {
            return Err(RlogError::UnknownShard(shard.to_owned()));
        }
        for op in &ops {
            match self.tables.store.read().shard_of(&op.table) {
                Some((s, _)) if s == shard => {}
                _ => return Err(RlogError::UnknownTable(op.table.clone())),
            }
        }
        if let Some(rafts) = &self.rafts {
            return rafts.write(shard, ops).await;
        }
        // A replicant: send to the core it follows first, then to the other
        // connected cores in turn; a core on the minority side of a split
        // cannot commit, so each attempt gets a part of the budget.
        let deadline = Instant::now() + self.opts.write_timeout;
        let attempt = self.opts.write_timeout / 3;
        let req = RlogMsg::Write(pb::Write {
            shard: shard.to_owned(),
            ops: ops_to_pb(&ops),
        })
        .encode();
        let followed = self
            .follows
            .lock()
            .get(&Scope::Shard(shard.to_owned()))
            .and_then(|f| f.follow.server.clone());
        let mut order: Vec<NodeName> = followed.into_iter().collect();
        for c in &self.opts.core_nodes {
            if !order.contains(c) {
                order.push(c.clone());
            }
        }
        let mut last = String::from("no core reachable");
        let mut turn = 0;
        while Instant::now() < deadline {
            let connected = self.handle.connected();
            let core = (0..order.len())
                .map(|k| &order[(turn + k) % order.len()])
                .find(|c| connected.contains(c))
                .cloned();
            turn += 1;
            if let Some(core) = core {
                let left = deadline
                    .saturating_duration_since(Instant::now())
                    .min(attempt);
                match self.handle.call(&core, RLOG, req.clone(), left).await {
                    Ok(reply) => {
                        let r: pb::WriteReply = reply.decode(T_WRITE_REPLY)?;
                        return Ok(r.index);
                    }
                    Err(e) => last = e.to_string(),
                }
            } else {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Err(RlogError::NoQuorum {
            shard: shard.to_owned(),
            reason: last,
        })
    }

    /// The last applied index of a consensus shard here.
    fn applied(&self, shard: &str) -> u64 {
        match self.opts.role {
            Role::Core => self
                .tables
                .served
                .lock()
                .get(&shard_feed(shard))
                .map_or(0, Feed::head),
            Role::Replicant => self
                .follows
                .lock()
                .get(&Scope::Shard(shard.to_owned()))
                .map_or(0, |f| f.follow.pos),
        }
    }

    /// A consensus row and this node's applied index of its shard, read
    /// together under the lock that moves that index (so the row is the
    /// row at that index).
    pub(crate) fn read_at(
        &self,
        shard: &str,
        table: &str,
        key: &[u8],
    ) -> (Option<bytes::Bytes>, u64) {
        match self.opts.role {
            Role::Core => {
                let served = self.tables.served.lock();
                let pos = served.get(&shard_feed(shard)).map_or(0, Feed::head);
                (self.tables.store.read().get(table, key), pos)
            }
            Role::Replicant => {
                let follows = self.follows.lock();
                let pos = follows
                    .get(&Scope::Shard(shard.to_owned()))
                    .map_or(0, |f| f.follow.pos);
                (self.tables.store.read().get(table, key), pos)
            }
        }
    }

    pub(crate) async fn wait_applied(&self, shard: &str, index: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.applied(shard) >= index {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Starts (or restarts) following `scope` on `server`.
    fn subscribe(&self, scope: Scope, server: NodeName) {
        let feed = match &scope {
            Scope::Owner(_) => OWNED_FEED.to_owned(),
            Scope::Shard(s) => shard_feed(s),
        };
        let req = {
            let mut follows = self.follows.lock();
            let f = follows.entry(scope).or_insert_with(|| Following {
                follow: Follow::new(),
                subscribed_at: Instant::now(),
                behind_since: None,
            });
            f.subscribed_at = Instant::now();
            f.behind_since = None;
            f.follow.subscribe(&feed, server.clone(), rand::random())
        };
        debug!(feed = %req.feed, %server, from = req.from, "rlog subscribe");
        let _ = self
            .handle
            .send(&server, RLOG, RlogMsg::Subscribe(req).encode());
    }

    fn on_push(&self, from: &NodeName, push: pb::Push) {
        let scope = if push.feed == OWNED_FEED {
            Scope::Owner(from.clone())
        } else if let Some(s) = push.feed.strip_prefix("shard:") {
            Scope::Shard(s.to_owned())
        } else {
            return;
        };
        let feed = push.feed.clone();
        let mut follows = self.follows.lock();
        let Some(f) = follows.get_mut(&scope) else {
            return;
        };
        // Entries of a push apply at consecutive indexes after this.
        let mut index = f.follow.pos;
        let (steps, times) = f.follow.on_push(from, push);
        let mut ack = None;
        let mut resubscribe = false;
        {
            let mut store = self.tables.store.write();
            for step in steps {
                match (step, &scope) {
                    (Step::Clear, Scope::Owner(o)) => store.clear_owner(o),
                    (Step::Clear, Scope::Shard(s)) => store.clear_shard(s),
                    (Step::Apply(ops), Scope::Owner(o)) => store.apply_owned(o, &ops),
                    (Step::Apply(ops), Scope::Shard(_)) => {
                        index += 1;
                        store.apply_at(&ops, index);
                    }
                    (Step::Ack(p), _) => ack = Some(p),
                    (Step::Resubscribe, _) => resubscribe = true,
                }
            }
        }
        let now = now_ms();
        {
            let mut lag = self.lag.lock();
            for t in times {
                lag.push(now.saturating_sub(t));
            }
        }
        let session = f.follow.session;
        let epoch = f.follow.epoch;
        drop(follows);
        if resubscribe {
            warn!(%feed, %from, "rlog gap, resubscribing");
            self.subscribe(scope, from.clone());
        } else if let Some(pos) = ack {
            let req = pb::Subscribe {
                feed,
                epoch,
                from: pos,
                session,
            };
            let _ = self
                .handle
                .send(from, RLOG, RlogMsg::Subscribe(req).encode());
        }
    }

    /// Drops the rows of owners unreachable for longer than the grace
    /// period, and at once those of owners removed from the cluster (left
    /// or force-left: they are not coming back with their rows).
    fn expire_owners(&self) {
        let connected = self.handle.connected();
        let removed = self.handle.removed();
        let expired: Vec<NodeName> = {
            let mut down = self.down_since.lock();
            down.retain(|n, _| !connected.contains(n));
            let grace = self.opts.owner_grace;
            let gone: Vec<NodeName> = down
                .iter()
                .filter(|(n, t)| t.elapsed() >= grace || removed.contains(n))
                .map(|(n, _)| n.clone())
                .collect();
            for n in &gone {
                down.remove(n);
            }
            gone
        };
        for owner in expired {
            info!(%owner, "rlog grace period over, removing the owner's rows");
            self.follows.lock().remove(&Scope::Owner(owner.clone()));
            self.tables.store.write().clear_owner(&owner);
        }
    }

    fn tick(&self) {
        if let Some(rafts) = &self.rafts {
            rafts.check_leaders(&self.handle, None);
            group::reconcile(self);
        }
        let connected = self.handle.connected();
        self.expire_owners();
        let mut todo = Vec::new();
        {
            let follows = self.follows.lock();
            // Owned streams of every connected peer.
            for peer in &connected {
                let scope = Scope::Owner(peer.clone());
                match follows.get(&scope) {
                    None => todo.push((scope, peer.clone())),
                    Some(f)
                        if (!f.follow.live || f.follow.server.as_ref() != Some(peer))
                            && f.subscribed_at.elapsed() > Duration::from_secs(1) =>
                    {
                        todo.push((scope, peer.clone()));
                    }
                    Some(_) => {}
                }
            }
        }
        for (scope, server) in todo {
            self.subscribe(scope, server);
        }
        // A replicant's consensus shards: those whose core is gone (or that
        // never started flowing) are placed again.
        self.place_shards(&connected);
        self.switch_lagging(&connected);
        self.rebalance(&connected);
    }

    fn on_event(&self, event: NodeEvent) {
        match event {
            NodeEvent::Up(peer) => {
                self.down_since.lock().remove(&peer);
                self.subscribe(Scope::Owner(peer.clone()), peer);
                self.tick();
            }
            NodeEvent::Down(peer, _) => {
                self.down_since
                    .lock()
                    .entry(peer.clone())
                    .or_insert_with(Instant::now);
                for feed in self.tables.served.lock().values_mut() {
                    feed.unsubscribe(&peer);
                }
                if let Some(rafts) = &self.rafts {
                    rafts.check_leaders(&self.handle, Some(&peer));
                }
                self.tick();
            }
        }
    }
}

async fn dispatch(shared: Arc<Shared>, rx: Arc<tokio::sync::Mutex<mpsc::Receiver<RemoteMessage>>>) {
    let mut rx = rx.lock().await;
    loop {
        let msg = tokio::select! {
            m = rx.recv() => match m { Some(m) => m, None => return },
            () = shared.stop.cancelled() => return,
        };
        let req = match RlogMsg::decode(&msg.payload) {
            Ok(req) => req,
            Err(e) => {
                debug!(from = %msg.from, cause = %e, "rlog: message not taken");
                if let Some(reply) = msg.reply {
                    reply.reply(Err(e.to_string()));
                }
                continue;
            }
        };
        let from = msg.from;
        match req {
            RlogMsg::Subscribe(req) => {
                if let Some(feed) = shared.tables.served.lock().get_mut(&req.feed) {
                    feed.subscribe(&from, &req);
                }
                shared.tables.kick.notify_one();
            }
            RlogMsg::Unsubscribe(req) => {
                if let Some(feed) = shared.tables.served.lock().get_mut(&req.feed) {
                    feed.unsubscribe(&from);
                }
            }
            RlogMsg::Push(push) => shared.on_push(&from, push),
            RlogMsg::Lock(req) => {
                let Some(reply) = msg.reply else { continue };
                let answer = if shared.opts.role == Role::Core {
                    Ok(shared.locks.lock().handle(&from, req))
                } else {
                    Err("not a core".to_owned())
                };
                reply.reply(answer.map(|a| Payload::encode(T_LOCK_REPLY, &a)));
            }
            RlogMsg::Write(w) => {
                let Some(reply) = msg.reply else { continue };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let result = shared
                        .write(&w.shard, super::feed::ops_from_pb(w.ops))
                        .await
                        .map(|index| Payload::encode(T_WRITE_REPLY, &pb::WriteReply { index }))
                        .map_err(|e| e.to_string());
                    reply.reply(result);
                });
            }
            RlogMsg::Probe => {
                if let Some(reply) = msg.reply {
                    let answer = group::probe_reply(&shared);
                    reply.reply(Ok(Payload::encode(T_PROBE_REPLY, &answer)));
                }
            }
            RlogMsg::JoinGroup(req) => {
                let Some(reply) = msg.reply else { continue };
                let answer = group::on_join_group(&shared, &req);
                reply.reply(answer.map(|()| Payload::new(T_JOIN_GROUP_REPLY, Vec::new())));
            }
        }
    }
}

/// Sends what every served feed owes its subscribers, in batches.
async fn pump(shared: Arc<Shared>) {
    loop {
        tokio::select! {
            () = shared.tables.kick.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            () = shared.stop.cancelled() => return,
        }
        let mut served = shared.tables.served.lock();
        let mut failed = Vec::new();
        for (name, feed) in served.iter_mut() {
            let mut rows = || {
                let store = shared.tables.store.read();
                match name.strip_prefix("shard:") {
                    Some(shard) => store.shard_rows(shard),
                    None => store.owned_rows_of(&shared.me),
                }
            };
            for (node, push) in feed.pump(&mut rows) {
                if shared
                    .handle
                    .send(&node, RLOG, RlogMsg::Push(push).encode())
                    .is_err()
                {
                    failed.push((name.clone(), node));
                }
            }
        }
        for (name, node) in failed {
            if let Some(feed) = served.get_mut(&name) {
                feed.unsubscribe(&node);
            }
        }
    }
}

async fn ticker(shared: Arc<Shared>) {
    let mut events = shared.handle.subscribe();
    for peer in shared.handle.connected() {
        shared.on_event(NodeEvent::Up(peer));
    }
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            e = events.recv() => match e {
                Ok(e) => shared.on_event(e),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => shared.tick(),
                Err(_) => return,
            },
            _ = tick.tick() => shared.tick(),
            () = shared.stop.cancelled() => return,
        }
    }
}
