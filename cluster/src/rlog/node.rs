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

use super::feed::{ops_to_pb, Feed, Follow, Step};
use super::lock::LockTable;
use super::raft::{node_id, RaftShards};
use super::store::{Op, ShardKind, Store};
use super::{OwnerStatus, RlogError, RlogOptions, RlogStatus, Role, ShardStatus};
use crate::handle::ClusterHandle;
use crate::node::NodeEvent;
use crate::options::NodeName;
use crate::process::{Payload, RemoteMessage};

/// The name every node registers for feeds and forwarded writes.
pub(crate) const RLOG: &str = "girder.rlog";
/// The feed of a node's own owned rows.
pub(crate) const OWNED_FEED: &str = "owned";
pub(crate) const T_SUBSCRIBE: &str = "girder.rlog.v1.Subscribe";
pub(crate) const T_UNSUBSCRIBE: &str = "girder.rlog.v1.Unsubscribe";
pub(crate) const T_PUSH: &str = "girder.rlog.v1.Push";
pub(crate) const T_WRITE: &str = "girder.rlog.v1.Write";
pub(crate) const T_WRITE_REPLY: &str = "girder.rlog.v1.WriteReply";
pub(crate) const T_LOCK: &str = "girder.rlog.v1.Lock";
pub(crate) const T_LOCK_REPLY: &str = "girder.rlog.v1.LockReply";

/// The feed name of a consensus shard.
pub(crate) fn shard_feed(shard: &str) -> String {
    format!("shard:{shard}")
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

/// How long an imbalance of a replicant's shards across cores must last
/// before a shard moves, and the least time between two moves.
const REBALANCE_HOLD: Duration = Duration::from_secs(1);

/// The rebalancing state of a replicant.
#[derive(Debug, Default)]
struct Balance {
    imbalanced_since: Option<Instant>,
    last_move: Option<Instant>,
}

/// Per live core, the consensus shards this replicant follows on it.
fn core_counts(follows: &HashMap<Scope, Following>, live: &[NodeName]) -> HashMap<NodeName, usize> {
    let mut counts: HashMap<NodeName, usize> = live.iter().map(|c| (c.clone(), 0)).collect();
    for (scope, f) in follows {
        if let (Scope::Shard(_), Some(c)) = (scope, &f.follow.server) {
            if let Some(n) = counts.get_mut(c) {
                *n += 1;
            }
        }
    }
    counts
}

/// The state of the replicated tables on this node.
pub(crate) struct Shared {
    pub(crate) handle: ClusterHandle,
    pub(crate) opts: RlogOptions,
    pub(crate) me: NodeName,
    pub(crate) incarnation: u64,
    pub(crate) tables: Arc<Tables>,
    follows: Mutex<HashMap<Scope, Following>>,
    down_since: Mutex<HashMap<NodeName, Instant>>,
    lag: Mutex<LagSamples>,
    locks: Mutex<LockTable>,
    balance: Mutex<Balance>,
    pub(crate) rafts: Option<RaftShards>,
    stop: CancellationToken,
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
        let tables = Arc::new(Tables {
            store: RwLock::new(Store::new(shard_of)),
            served: Mutex::new(served),
            kick: Notify::new(),
        });
        let me = handle.node().clone();
        let rafts = match opts.role {
            Role::Core => Some(RaftShards::start(&handle, &opts, &tables).await?),
            Role::Replicant => None,
        };
        let (tx, rx) = mpsc::channel(4096);
        let shared = Arc::new(Self {
            handle: handle.clone(),
            opts,
            me,
            incarnation,
            tables,
            follows: Mutex::new(HashMap::new()),
            down_since: Mutex::new(HashMap::new()),
            lag: Mutex::new(LagSamples::default()),
            locks: Mutex::new(LockTable::default()),
            balance: Mutex::new(Balance::default()),
            rafts,
            stop: CancellationToken::new(),
        });
        let events = handle.subscribe();
        handle.register(RLOG, tx)?;
        tokio::spawn(dispatch(shared.clone(), rx));
        tokio::spawn(pump(shared.clone()));
        tokio::spawn(ticker(shared.clone(), events));
        info!(node = %shared.me, role = ?shared.opts.role, "rlog started");
        Ok(shared)
    }

    pub(crate) async fn shutdown(&self) {
        self.stop.cancel();
        self.handle.unregister(RLOG);
        if let Some(r) = &self.rafts {
            r.shutdown(&self.handle).await;
        }
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
        let req = pb::Write {
            shard: shard.to_owned(),
            ops: ops_to_pb(&ops),
        };
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
                match self
                    .handle
                    .call(&core, RLOG, Payload::encode(T_WRITE, &req), left)
                    .await
                {
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

    pub(crate) fn status(&self) -> RlogStatus {
        // One lock at a time: the lock order elsewhere is served → store
        // and follows → store.
        let follows: Vec<(Scope, Follow)> = self
            .follows
            .lock()
            .iter()
            .map(|(s, f)| (s.clone(), f.follow.clone()))
            .collect();
        let follows: HashMap<Scope, Follow> = follows.into_iter().collect();
        let (owned_head, heads, subscribers) = {
            let served = self.tables.served.lock();
            let heads: HashMap<String, u64> =
                served.iter().map(|(n, f)| (n.clone(), f.head())).collect();
            let mut subs: Vec<(String, NodeName, u64)> = served
                .iter()
                .flat_map(|(name, feed)| {
                    feed.subscribers()
                        .into_iter()
                        .map(move |(n, p)| (name.clone(), n, p))
                })
                .collect();
            subs.sort();
            (heads.get(OWNED_FEED).copied().unwrap_or(0), heads, subs)
        };
        let store = self.tables.store.read();
        let rows = |shard: &str| -> usize {
            self.opts
                .shards
                .iter()
                .filter(|s| s.name == shard)
                .flat_map(|s| s.tables.iter())
                .map(|t| store.count(t))
                .sum()
        };
        let mut shards = Vec::new();
        for s in &self.opts.shards {
            let mut st = ShardStatus {
                shard: s.name.clone(),
                kind: s.kind,
                following: None,
                leader: None,
                position: 0,
                head: 0,
                lag: 0,
                copies: 0,
                rows: rows(&s.name),
            };
            match (s.kind, self.opts.role) {
                (ShardKind::Owned, _) => {
                    st.position = owned_head;
                    st.head = st.position;
                }
                (ShardKind::Consensus, Role::Core) => {
                    st.position = heads.get(&shard_feed(&s.name)).copied().unwrap_or(0);
                    st.head = st.position;
                    st.leader = self.rafts.as_ref().and_then(|r| r.leader(&s.name));
                }
                (ShardKind::Consensus, Role::Replicant) => {
                    if let Some(f) = follows.get(&Scope::Shard(s.name.clone())) {
                        st.following = f.server.clone();
                        st.position = f.pos;
                        st.head = f.head.max(f.pos);
                        st.lag = f.lag();
                        st.copies = f.copies;
                    }
                }
            }
            shards.push(st);
        }
        let mut owners: Vec<OwnerStatus> = follows
            .iter()
            .filter_map(|(scope, f)| match scope {
                Scope::Owner(o) => Some(OwnerStatus {
                    owner: o.clone(),
                    epoch: f.epoch,
                    position: f.pos,
                    lag: f.lag(),
                    copies: f.copies,
                    live: f.live,
                }),
                Scope::Shard(_) => None,
            })
            .collect();
        owners.sort_by(|a, b| a.owner.cmp(&b.owner));
        RlogStatus {
            node: self.me.clone(),
            role: self.opts.role,
            incarnation: self.incarnation,
            shards,
            owners,
            subscribers,
            lag_p99_ms: self.lag.lock().p99(),
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
            .send(&server, RLOG, Payload::encode(T_SUBSCRIBE, &req));
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
                    (Step::Apply(ops), Scope::Shard(_)) => store.apply(&ops),
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
                .send(from, RLOG, Payload::encode(T_SUBSCRIBE, &req));
        }
    }

    /// Drops the rows of owners unreachable for longer than the grace period.
    fn expire_owners(&self) {
        let connected = self.handle.connected();
        let expired: Vec<NodeName> = {
            let mut down = self.down_since.lock();
            down.retain(|n, _| !connected.contains(n));
            let grace = self.opts.owner_grace;
            let gone: Vec<NodeName> = down
                .iter()
                .filter(|(_, t)| t.elapsed() >= grace)
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

    /// The consensus shards, in the order of the options.
    fn consensus_shards(&self) -> Vec<String> {
        self.opts
            .shards
            .iter()
            .filter(|s| s.kind == ShardKind::Consensus)
            .map(|s| s.name.clone())
            .collect()
    }

    /// The cores of `cluster.core_nodes` with a live link, in that order.
    fn live_cores(&self, connected: &[NodeName]) -> Vec<NodeName> {
        self.opts
            .core_nodes
            .iter()
            .filter(|c| connected.contains(c))
            .cloned()
            .collect()
    }

    /// The core for the `i`th consensus shard: the live core (other than
    /// `not`) this replicant follows the fewest shards on; ties go to the
    /// shard's preferred order, the cores rotated by `i` plus a hash of the
    /// replicant's name, so one replicant's shards spread over every core
    /// and two replicants start their rotations at different cores.
    fn place(
        &self,
        i: usize,
        live: &[NodeName],
        counts: &HashMap<NodeName, usize>,
        not: Option<&NodeName>,
    ) -> Option<NodeName> {
        live.iter()
            .filter(|c| Some(*c) != not)
            .min_by_key(|c| (counts.get(*c).copied().unwrap_or(0), self.rank(i, c)))
            .cloned()
    }

    /// Where `core` comes in the `i`th consensus shard's preferred order.
    fn rank(&self, i: usize, core: &NodeName) -> usize {
        let cores = &self.opts.core_nodes;
        let n = cores.len().max(1);
        let start = (i + (node_id(&self.me) % n as u64) as usize) % n;
        let at = cores.iter().position(|x| x == core).unwrap_or(0);
        (at + n - start) % n
    }

    /// Moves one shard from the live core this replicant follows the most
    /// shards on to the one it follows the fewest on, when they differ by
    /// more than one (a core came back or joined) for `REBALANCE_HOLD`,
    /// and at most once per `REBALANCE_HOLD`. Only shards that are flowing
    /// move, and a move resumes from the replicant's position.
    fn rebalance(&self, connected: &[NodeName]) {
        if self.opts.role != Role::Replicant {
            return;
        }
        let live = self.live_cores(connected);
        let shards = self.consensus_shards();
        let chosen = {
            let follows = self.follows.lock();
            let settled = shards.iter().all(|s| {
                follows.get(&Scope::Shard(s.clone())).is_some_and(|f| {
                    f.follow.live && f.follow.server.as_ref().is_some_and(|c| live.contains(c))
                })
            });
            let counts = core_counts(&follows, &live);
            let most = live
                .iter()
                .max_by_key(|c| counts.get(*c).copied().unwrap_or(0));
            let fewest = live
                .iter()
                .min_by_key(|c| counts.get(*c).copied().unwrap_or(0));
            let mut balance = self.balance.lock();
            let (Some(most), Some(fewest), true) = (most, fewest, settled) else {
                balance.imbalanced_since = None;
                return;
            };
            let (hi, lo) = (counts[most], counts.get(fewest).copied().unwrap_or(0));
            if hi <= lo + 1 {
                balance.imbalanced_since = None;
                return;
            }
            let since = *balance.imbalanced_since.get_or_insert_with(Instant::now);
            if since.elapsed() < REBALANCE_HOLD
                || balance
                    .last_move
                    .is_some_and(|t| t.elapsed() < REBALANCE_HOLD)
            {
                return;
            }
            // The shard on the busiest core that prefers the emptiest most.
            let pick = shards
                .iter()
                .enumerate()
                .filter(|(_, s)| {
                    follows
                        .get(&Scope::Shard((*s).clone()))
                        .and_then(|f| f.follow.server.as_ref())
                        == Some(most)
                })
                .min_by_key(|(i, _)| self.rank(*i, fewest))
                .map(|(_, s)| s.clone());
            balance.last_move = Some(Instant::now());
            balance.imbalanced_since = None;
            pick.map(|s| (s, fewest.clone(), most.clone()))
        };
        if let Some((shard, to, from)) = chosen {
            info!(%shard, %from, %to, "rlog replicant rebalancing a shard");
            self.subscribe(Scope::Shard(shard), to);
        }
    }

    fn tick(&self) {
        if let Some(rafts) = &self.rafts {
            rafts.check_leaders(&self.handle, None);
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
            // A replicant's consensus shards: those whose core is gone (or
            // that never started flowing) are placed again.
            if self.opts.role == Role::Replicant {
                let live = self.live_cores(&connected);
                let mut counts = core_counts(&follows, &live);
                for (i, s) in self.consensus_shards().iter().enumerate() {
                    let scope = Scope::Shard(s.clone());
                    let current = follows.get(&scope);
                    let server_up = current
                        .and_then(|f| f.follow.server.as_ref())
                        .is_some_and(|c| live.contains(c));
                    let stale = current.is_some_and(|f| {
                        !f.follow.live && f.subscribed_at.elapsed() > Duration::from_secs(1)
                    });
                    if !server_up || stale {
                        if let (true, Some(c)) =
                            (server_up, current.and_then(|f| f.follow.server.as_ref()))
                        {
                            // Stale on a live core: placed again, it may
                            // stay there.
                            if let Some(n) = counts.get_mut(c) {
                                *n = n.saturating_sub(1);
                            }
                        }
                        if let Some(core) = self.place(i, &live, &counts, None) {
                            *counts.entry(core.clone()).or_default() += 1;
                            todo.push((scope, core));
                        }
                    }
                }
            }
        }
        for (scope, server) in todo {
            self.subscribe(scope, server);
        }
        self.switch_lagging(&connected);
        self.rebalance(&connected);
    }

    /// Moves a replicant off a core that keeps it far behind that core's own
    /// head (the core is too slow to serve it).
    fn switch_lagging(&self, connected: &[NodeName]) {
        if self.opts.role != Role::Replicant {
            return;
        }
        let live = self.live_cores(connected);
        let mut moves = Vec::new();
        {
            let mut follows = self.follows.lock();
            let counts = core_counts(&follows, &live);
            for (i, s) in self.consensus_shards().iter().enumerate() {
                let Some(f) = follows.get_mut(&Scope::Shard(s.clone())) else {
                    continue;
                };
                if f.follow.lag() > self.opts.lag_switch_entries {
                    let since = *f.behind_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > self.opts.lag_switch_after {
                        let current = f.follow.server.clone();
                        if let Some(other) = self.place(i, &live, &counts, current.as_ref()) {
                            moves.push((Scope::Shard(s.clone()), other));
                        }
                    }
                } else {
                    f.behind_since = None;
                }
            }
        }
        for (scope, core) in moves {
            info!(?scope, %core, "rlog replicant lagging, moving to another core");
            self.subscribe(scope, core);
        }
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

async fn dispatch(shared: Arc<Shared>, mut rx: mpsc::Receiver<RemoteMessage>) {
    loop {
        let msg = tokio::select! {
            m = rx.recv() => match m { Some(m) => m, None => return },
            () = shared.stop.cancelled() => return,
        };
        match msg.payload.type_name.as_str() {
            T_SUBSCRIBE => {
                if let Ok(req) = msg.payload.decode::<pb::Subscribe>(T_SUBSCRIBE) {
                    if let Some(feed) = shared.tables.served.lock().get_mut(&req.feed) {
                        feed.subscribe(&msg.from, &req);
                    }
                    shared.tables.kick.notify_one();
                }
            }
            T_UNSUBSCRIBE => {
                if let Ok(req) = msg.payload.decode::<pb::Unsubscribe>(T_UNSUBSCRIBE) {
                    if let Some(feed) = shared.tables.served.lock().get_mut(&req.feed) {
                        feed.unsubscribe(&msg.from);
                    }
                }
            }
            T_PUSH => {
                if let Ok(push) = msg.payload.decode::<pb::Push>(T_PUSH) {
                    shared.on_push(&msg.from, push);
                }
            }
            T_LOCK => {
                let (Some(reply), Ok(req)) = (msg.reply, msg.payload.decode::<pb::Lock>(T_LOCK))
                else {
                    continue;
                };
                let answer = if shared.opts.role == Role::Core {
                    Ok(shared.locks.lock().handle(&msg.from, req))
                } else {
                    Err("not a core".to_owned())
                };
                reply.reply(answer.map(|a| Payload::encode(T_LOCK_REPLY, &a)));
            }
            T_WRITE => {
                let Some(reply) = msg.reply else { continue };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let result = match msg.payload.decode::<pb::Write>(T_WRITE) {
                        Ok(w) => shared
                            .write(&w.shard, super::feed::ops_from_pb(w.ops))
                            .await
                            .map(|index| Payload::encode(T_WRITE_REPLY, &pb::WriteReply { index }))
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    reply.reply(result);
                });
            }
            other => debug!(type_name = other, "rlog: unknown message"),
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
                    .send(&node, RLOG, Payload::encode(T_PUSH, &push))
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

async fn ticker(shared: Arc<Shared>, mut events: tokio::sync::broadcast::Receiver<NodeEvent>) {
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
