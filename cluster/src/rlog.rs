//! Replicated tables, Mria style: consensus shards agreed by the cores with
//! Raft, owned shards streamed per owner, replicants that follow a core.
//!
//! Tables are generic key/value rows (bytes keys and values) grouped in
//! shards; the layer above (the broker) registers its tables in
//! [`RlogOptions::shards`] and knows nothing of how they travel. The
//! consistency model is written down in `cluster/REPLICATION.md`.
//!
//! ```text
//!        core A ─── Raft (girder.rlog.raft.<shard>) ─── core B ─── core C
//!          │ feed "shard:<s>" (log index)                 │
//!          ▼                                              ▼
//!      replicant R1                                  replicant R2
//!
//!   every node ── feed "owned" (own rows, per-owner seq) ──► every other node
//! ```
//!
//! ```no_run
//! # async fn demo(handle: girder_cluster::ClusterHandle) -> Result<(), girder_cluster::rlog::RlogError> {
//! use girder_cluster::rlog::{Op, Rlog, RlogOptions, ShardKind, ShardSpec};
//! let mut opts = RlogOptions::default();
//! opts.shards = vec![
//!     ShardSpec::new("auth", ShardKind::Consensus, &["users"]),
//!     ShardSpec::new("route", ShardKind::Owned, &["routes"]),
//! ];
//! let rlog = Rlog::start(handle, opts).await?;
//! rlog.write("auth", vec![Op::put("users", "alice", "hash")]).await?;
//! rlog.write_owned("routes", "t/#", Some("".into()))?;
//! assert!(rlog.read("users", b"alice").is_some());
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! ```text
//! rlog.rs          RlogOptions, Role, ShardSpec, Rlog (the handle), status types
//! rlog/store.rs    the rows a node holds and table watchers (pure)
//! rlog/feed.rs     Feed (server side of an ordered stream) and Follow
//!                  (subscriber side), pure state machines (+ feed_test.rs)
//! rlog/node.rs     the shell: dispatcher of girder.rlog, pump, ticker
//!                  (owned streams, grace cleanup); node/placement.rs: the
//!                  replicant's core choice and rebalancing, a pure
//!                  Placement (+ placement_test.rs); node/status.rs:
//!                  `status()`
//! rlog/group.rs    one Raft group per consensus shard: probes, first
//!                  voters, join requests, the leader's membership changes
//!                  (+ group_test.rs)
//! rlog/raft.rs     openraft type config, the network over dist links, writes;
//!                  raft/elect.rs: who starts early elections when a leader
//!                  is lost, from the cores' log reports (+ elect_test.rs)
//! rlog/storage.rs  Raft log and state machine on redb (durable on cores)
//!                  (+ storage_test.rs: openraft's storage suite on it)
//! rlog/lock.rs     the lease lock on a majority of cores (LockTable is pure)
//! rlog/msg.rs      the messages of girder.rlog and girder.rlog.raft.<shard>
//!                  as enums (RlogMsg, RaftMsg), decoded once on arrival
//! rlog/error.rs    RlogError
//! ```

mod error;
mod feed;
mod group;
mod lock;
mod msg;
mod node;
mod raft;
mod storage;
mod store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast;

pub use error::RlogError;
pub use group::{GroupStatus, ReplicantFollow, RlogClusterStatus};
pub use lock::LeaseLock;
pub use store::{Change, Op, ShardKind, GUARD_PREFIX};

use crate::handle::ClusterHandle;
use crate::options::NodeName;

/// `node.db_role`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Role {
    /// A voter of every consensus shard, with durable shards.
    #[default]
    Core,
    /// A read-only copy that follows a core.
    Replicant,
}

impl std::str::FromStr for Role {
    type Err = RlogError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "core" => Ok(Self::Core),
            "replicant" => Ok(Self::Replicant),
            other => Err(RlogError::InvalidOption(format!(
                "node.db_role = {other:?}: expected core or replicant"
            ))),
        }
    }
}

/// How a core that has never run a consensus shard (no Raft state) comes
/// to be in that shard's one group (`cluster/REPLICATION.md`, "One group
/// per cluster").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Bootstrap {
    /// `cluster.core_nodes` lists the cores: they are the first voters. A
    /// listed core starts the group once every other listed core answered
    /// that it holds none and lists the same cores; a core that finds a
    /// running group asks to be added, and is refused at start when its
    /// list contradicts the group's voters.
    #[default]
    CoreNodes,
    /// Static seeds or DNS, `cluster.core_nodes` empty: the seeds (with this
    /// node) that are cores are the first voters, once every one of them
    /// answered that it holds no group and has the same ones; a core that
    /// finds a running group asks to be added.
    Seeds(Vec<NodeName>),
    /// Manual discovery, `cluster.core_nodes` empty: a fresh core starts
    /// each group alone; `cluster join` makes it leave its own (while it
    /// holds no other voter) and ask to be added to the joined cluster's.
    Alone,
}

/// A shard and its tables, as the layer above registers them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardSpec {
    /// The shard's name (`[A-Za-z0-9_.-]+`).
    pub name: String,
    /// How it is replicated.
    pub kind: ShardKind,
    /// Its tables (a table belongs to one shard).
    pub tables: Vec<String>,
}

impl ShardSpec {
    /// A shard spec.
    pub fn new(name: &str, kind: ShardKind, tables: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            tables: tables.iter().map(|t| (*t).to_owned()).collect(),
        }
    }
}

/// Options of the replicated tables (EMQX's `node.db_role`,
/// `cluster.db_backend`, `cluster.core_nodes`, plus tuning).
#[derive(Clone, Debug)]
pub struct RlogOptions {
    /// `node.db_role`.
    pub role: Role,
    /// `cluster.db_backend`; only `rlog` exists.
    pub db_backend: String,
    /// `cluster.core_nodes`: the first voters of every consensus shard
    /// (cores list themselves too) with [`Bootstrap::CoreNodes`], and the
    /// nodes a replicant may follow.
    pub core_nodes: Vec<NodeName>,
    /// How a fresh core's consensus groups start.
    pub bootstrap: Bootstrap,
    /// `node.data_dir`: the cores' durable shards live in `rlog.redb` in it;
    /// `None` keeps them in memory (tests).
    pub data_dir: Option<PathBuf>,
    /// The shards and their tables.
    pub shards: Vec<ShardSpec>,
    /// How long the owned rows of a node that is unreachable are kept.
    pub owner_grace: Duration,
    /// Entries a feed keeps for resumption without a full copy.
    pub retain: usize,
    /// Entries a feed sends beyond a subscriber's acknowledgement
    /// (the replicant's bounded queue).
    pub window: u64,
    /// How long a consensus write may wait for a quorum.
    pub write_timeout: Duration,
    /// A replicant that stays this many entries behind its core's head for
    /// `lag_switch_after` (its core serves it too slowly) moves to another core.
    pub lag_switch_entries: u64,
    /// See `lag_switch_entries`.
    pub lag_switch_after: Duration,
    /// Raft: heartbeat interval; elections time out at 3–6 heartbeats.
    /// openraft also uses it as the time limit of one AppendEntries, so it
    /// must cover sending a full one (8 entries of up to 2048 ops).
    pub raft_heartbeat: Duration,
    /// Raft: log entries between snapshots (older entries are compacted).
    pub snapshot_every: u64,
}

impl Default for RlogOptions {
    fn default() -> Self {
        Self {
            role: Role::Core,
            db_backend: "rlog".to_owned(),
            core_nodes: Vec::new(),
            bootstrap: Bootstrap::CoreNodes,
            data_dir: None,
            shards: Vec::new(),
            owner_grace: Duration::from_secs(30),
            retain: 200_000,
            window: 50_000,
            write_timeout: Duration::from_secs(5),
            lag_switch_entries: 10_000,
            lag_switch_after: Duration::from_secs(5),
            raft_heartbeat: Duration::from_millis(250),
            snapshot_every: 100_000,
        }
    }
}

impl RlogOptions {
    /// Checks the options; errors name the offending key.
    pub fn validate(&self) -> Result<(), RlogError> {
        if self.db_backend != "rlog" {
            return Err(RlogError::InvalidOption(format!(
                "cluster.db_backend = {:?}: only rlog is supported",
                self.db_backend
            )));
        }
        let mut seen = HashMap::new();
        for s in &self.shards {
            let ok = !s.name.is_empty()
                && s.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return Err(RlogError::InvalidOption(format!(
                    "bad shard name {:?}",
                    s.name
                )));
            }
            for t in &s.tables {
                if seen.insert(t.clone(), s.name.clone()).is_some() {
                    return Err(RlogError::InvalidOption(format!(
                        "table {t:?} is in two shards"
                    )));
                }
            }
        }
        let has_consensus = self.shards.iter().any(|s| s.kind == ShardKind::Consensus);
        let needs_list = self.role == Role::Replicant || self.bootstrap == Bootstrap::CoreNodes;
        if has_consensus && needs_list && self.core_nodes.is_empty() {
            return Err(RlogError::InvalidOption(
                "cluster.core_nodes is empty but there are consensus shards".into(),
            ));
        }
        if self.window == 0 || self.retain == 0 {
            return Err(RlogError::InvalidOption(
                "window and retain must be > 0".into(),
            ));
        }
        Ok(())
    }
}

/// The replication state of one shard on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardStatus {
    /// The shard.
    pub shard: String,
    /// Its kind.
    pub kind: ShardKind,
    /// For consensus shards: the core followed (replicants).
    pub following: Option<NodeName>,
    /// For consensus shards: the Raft leader as known here (cores).
    pub leader: Option<NodeName>,
    /// Consensus: the last log index applied here. Owned: this node's own
    /// sequence number.
    pub position: u64,
    /// Consensus: the followed core's last index as last reported (a core
    /// reports its own). Owned: equal to `position`.
    pub head: u64,
    /// `head - position`.
    pub lag: u64,
    /// Full copies received since start (replicants).
    pub copies: u64,
    /// Rows in the shard's tables.
    pub rows: usize,
    /// Consensus shards on a core: the group's voters as this core knows
    /// them (empty: it holds no group yet).
    pub voters: Vec<NodeName>,
    /// Consensus shards on a core: the group's learners (cores being added).
    pub learners: Vec<NodeName>,
    /// Consensus shards on a core: the Raft term.
    pub term: u64,
}

/// The stream of one owner as this node follows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerStatus {
    /// The owner.
    pub owner: NodeName,
    /// Its incarnation whose rows are held.
    pub epoch: u64,
    /// The last sequence number applied.
    pub position: u64,
    /// Behind its reported head.
    pub lag: u64,
    /// Full copies received from it.
    pub copies: u64,
    /// The stream is flowing in the current session.
    pub live: bool,
}

/// What `status()` reports (for the admin API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RlogStatus {
    /// This node.
    pub node: NodeName,
    /// Its role.
    pub role: Role,
    /// This node's incarnation (the epoch of its owned stream).
    pub incarnation: u64,
    /// Per shard.
    pub shards: Vec<ShardStatus>,
    /// Per followed owner.
    pub owners: Vec<OwnerStatus>,
    /// Nodes subscribed to this node's feeds: (feed, node, acknowledged position).
    pub subscribers: Vec<(String, NodeName, u64)>,
    /// Replication delay of recent entries (commit on the server → applied
    /// here), 99th percentile, in ms.
    pub lag_p99_ms: u64,
}

/// The replicated tables of this node; clones share it.
#[derive(Clone, Debug)]
pub struct Rlog {
    inner: Arc<node::Shared>,
}

impl Rlog {
    /// Starts the replicated tables on a running distribution layer:
    /// registers `girder.rlog` (and `girder.rlog.raft.<shard>` on cores),
    /// opens the durable store, starts Raft on cores.
    pub async fn start(handle: ClusterHandle, opts: RlogOptions) -> Result<Self, RlogError> {
        opts.validate()?;
        let inner = node::Shared::start(handle, opts).await?;
        Ok(Self { inner })
    }

    /// The long-lived tasks of the replicated tables (dispatcher, pump,
    /// ticker, group driver; on cores each consensus shard's Raft server and
    /// write batcher), for a supervisor to watch (see [`crate::task`]).
    pub fn tasks(&self) -> crate::task::Tasks {
        self.inner.tasks.clone()
    }

    /// This node's role.
    pub fn role(&self) -> Role {
        self.inner.opts.role
    }

    /// A consensus write: the ops (all in `shard`'s tables) are committed
    /// once a majority of cores holds them, in one log entry. Returns the log
    /// index. On a replicant it is sent to a core.
    ///
    /// The write is applied at most once, however often it is sent again
    /// (after a timeout or a lost answer): it carries an id (this node, its
    /// incarnation, a sequence number) that the state machine of every node
    /// checks against the ids it applied. The returned index is the one at
    /// which it took effect. A write is told apart from the ones of its
    /// origin for 65536 later writes of that origin: one overtaken by more
    /// is not applied.
    pub async fn write(&self, shard: &str, ops: Vec<Op>) -> Result<u64, RlogError> {
        self.inner.write_once(shard, ops).await
    }

    /// Waits until this node has applied `shard`'s log up to `index`
    /// (read-your-writes after [`write`](Self::write) on another node).
    pub async fn wait_applied(&self, shard: &str, index: u64, timeout: Duration) -> bool {
        self.inner.wait_applied(shard, index, timeout).await
    }

    /// A consensus row read locally, with the log index of `shard` applied
    /// here when it was read: the row is as of that index.
    pub fn read_at(&self, shard: &str, table: &str, key: &[u8]) -> (Option<Bytes>, u64) {
        self.inner.read_at(shard, table, key)
    }

    /// Writes (or deletes, with `None`) this node's own row in an owned
    /// table, locally and at once; it reaches the other nodes on this node's
    /// ordered stream.
    pub fn write_owned(
        &self,
        table: &str,
        key: impl Into<Bytes>,
        value: Option<Bytes>,
    ) -> Result<u64, RlogError> {
        let key = key.into();
        self.inner.write_owned(vec![Op {
            table: table.to_owned(),
            key,
            value,
        }])
    }

    /// Several owned-row ops at once (one sequence number).
    pub fn write_owned_batch(&self, ops: Vec<Op>) -> Result<u64, RlogError> {
        self.inner.write_owned(ops)
    }

    /// The shard a registered table belongs to.
    pub fn shard_of(&self, table: &str) -> Option<String> {
        self.inner
            .opts
            .shards
            .iter()
            .find(|s| s.tables.iter().any(|t| t == table))
            .map(|s| s.name.clone())
    }

    /// A consensus row, read locally.
    pub fn read(&self, table: &str, key: &[u8]) -> Option<Bytes> {
        self.inner.tables.store.read().get(table, key)
    }

    /// The owners of an owned row and their values, read locally.
    pub fn read_owned(&self, table: &str, key: &[u8]) -> Vec<(NodeName, Bytes)> {
        self.inner.tables.store.read().get_owned(table, key)
    }

    /// Consensus rows whose key starts with `prefix`, in key order.
    pub fn scan(&self, table: &str, prefix: &[u8]) -> Vec<(Bytes, Bytes)> {
        self.inner.tables.store.read().scan(table, prefix)
    }

    /// Owned rows whose key starts with `prefix`: (key, owner, value).
    pub fn scan_owned(&self, table: &str, prefix: &[u8]) -> Vec<(Bytes, NodeName, Bytes)> {
        self.inner.tables.store.read().scan_owned(table, prefix)
    }

    /// Rows in a table.
    pub fn count(&self, table: &str) -> usize {
        self.inner.tables.store.read().count(table)
    }

    /// Every change to `table` on this node from now on (the router watches
    /// the route table this way). A receiver that lags gets
    /// `RecvError::Lagged` and should re-read the table.
    pub fn watch(&self, table: &str) -> broadcast::Receiver<Change> {
        self.inner.tables.store.write().watch(table)
    }

    /// The replication state of every shard and owner stream.
    pub fn status(&self) -> RlogStatus {
        self.inner.status()
    }

    /// Each consensus shard's group and each running replicant's following,
    /// as this node and the nodes it reaches report them.
    pub async fn cluster_status(&self) -> RlogClusterStatus {
        group::cluster_status(&self.inner).await
    }

    /// After `cluster join`: a core that holds consensus groups with no
    /// other member (it started alone) leaves them, discarding their Raft
    /// state and rows, once a linked core reports the joined cluster's
    /// group, so that it is added to that group. Groups with other members
    /// are kept (the core is, or was, in the joined cluster's group).
    pub async fn prepare_join(&self) -> Result<(), RlogError> {
        group::prepare_join(&self.inner).await
    }

    /// Takes exclusive ownership of `key` (e.g. a client id) for `lease`,
    /// granted by a majority of the cores (the voters of the consensus
    /// groups, or `cluster.core_nodes`); renew the returned
    /// lock before [`LeaseLock::valid_until`]. Fails with
    /// [`RlogError::Locked`] when another node holds it.
    pub async fn lock(
        &self,
        key: impl Into<Bytes>,
        lease: Duration,
    ) -> Result<LeaseLock, RlogError> {
        LeaseLock::acquire(
            self.inner.handle.clone(),
            self.inner.cores(),
            key.into(),
            lease,
        )
        .await
    }

    /// Stops Raft and the background tasks (the distribution layer stays).
    pub async fn shutdown(&self) {
        self.inner.shutdown().await;
    }
}
