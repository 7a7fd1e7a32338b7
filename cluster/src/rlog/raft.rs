//! Consensus shards: one openraft group per shard, voters = the cores (how
//! they come to be in it: `group.rs`), its RPCs carried as payloads over the
//! distribution links to `girder.rlog.raft.<shard>`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use girder_proto::rlog as pb;
use openraft::error::{
    ClientWriteError, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{
    BasicNode, Config, Raft, RaftNetwork, RaftNetworkFactory, ServerState, SnapshotPolicy,
};
use prost::Message;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tracing::info;

pub(crate) use self::elect::LastLog;
use self::elect::{defer_to, LogReports};
use super::feed::ops_to_pb;
use super::msg::{MsgError, RaftMsg, RaftRpc, RlogMsg, T_WRITE_REPLY};
use super::node::{Tables, RLOG};
use super::storage::{clear_shard, open_db, LogStore, StateMachine};
use super::store::{Op, ShardKind};
use super::{Bootstrap, RlogError, RlogOptions};
use crate::handle::ClusterHandle;
use crate::options::NodeName;
use crate::process::{Payload, RemoteMessage};
use crate::task::{OnStop, Tasks};

/// A receiver kept across restarts of the task that reads it.
type Inbox<T> = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<T>>>;

/// A log entry's data: a protobuf `Ops`, carried as hex in openraft's serde
/// forms (its RPCs and stored entries).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Batch(pub(crate) Vec<u8>);

impl fmt::Display for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Batch({} bytes)", self.0.len())
    }
}

impl Serialize for Batch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(self.0.len() * 2);
        for b in &self.0 {
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
        s.serialize_str(&out)
    }
}

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let digit = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(serde::de::Error::custom("not hex")),
        };
        let b = s.as_bytes();
        if b.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd hex length"));
        }
        b.chunks(2)
            .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
            .collect::<Result<Vec<u8>, D::Error>>()
            .map(Batch)
    }
}

openraft::declare_raft_types!(
    /// The openraft types of a consensus shard.
    pub(crate) TypeConfig:
        D = Batch,
        R = u64,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        Responder = openraft::impls::OneshotResponder<TypeConfig>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A node's Raft id: FNV-1a of its name (stable across restarts and nodes).
pub(crate) fn node_id(name: &NodeName) -> u64 {
    name.as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

fn raft_name(shard: &str) -> String {
    format!("girder.rlog.raft.{shard}")
}

mod elect;

/// A consensus group as one core knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct GroupView {
    /// Voters (empty: this core holds no group for the shard).
    pub(crate) voters: Vec<NodeName>,
    /// Learners.
    pub(crate) learners: Vec<NodeName>,
    /// The leader, if known.
    pub(crate) leader: Option<NodeName>,
    /// This core leads the group.
    pub(crate) leading: bool,
    /// The Raft term.
    pub(crate) term: u64,
    /// The last log index applied here.
    pub(crate) applied: u64,
    /// The last entry of this core's log (`None`: the log is empty).
    pub(crate) last_log: Option<LastLog>,
}

/// The consensus shards of a core.
pub(crate) struct RaftShards {
    /// Replaced only when a core leaves a group it started alone
    /// ([`RaftShards::reset`]).
    rafts: parking_lot::RwLock<HashMap<String, Raft<TypeConfig>>>,
    queues: HashMap<String, mpsc::UnboundedSender<Pending>>,
    heartbeat: Duration,
    watch: parking_lot::Mutex<HashMap<String, Watch>>,
    /// Each core's latest report of each shard's log.
    reports: Arc<LogReports>,
    /// What a reset needs to build a shard's Raft again.
    db: Arc<redb::Database>,
    config: Arc<Config>,
    opts: RlogOptions,
    tables: Arc<Tables>,
    handle: ClusterHandle,
    /// Each shard's Raft RPCs (`girder.rlog.raft.<shard>`), for its server
    /// task; replaced with the Raft on a reset.
    inboxes: parking_lot::Mutex<HashMap<String, Inbox<RemoteMessage>>>,
    tasks: Tasks,
}

impl fmt::Debug for RaftShards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaftShards")
            .field("shards", &self.rafts.read().len())
            .finish()
    }
}

impl RaftShards {
    pub(crate) async fn start(
        handle: &ClusterHandle,
        opts: &RlogOptions,
        tables: &Arc<Tables>,
        tasks: &Tasks,
    ) -> Result<Arc<Self>, RlogError> {
        let db = open_db(opts.data_dir.as_deref())?;
        let hb = opts.raft_heartbeat.as_millis().max(10) as u64;
        let config = Arc::new(
            Config {
                cluster_name: handle.cluster_name().to_owned(),
                heartbeat_interval: hb,
                election_timeout_min: hb * 3,
                election_timeout_max: hb * 6,
                snapshot_policy: SnapshotPolicy::LogsSinceLast(opts.snapshot_every),
                max_in_snapshot_log_to_keep: opts.snapshot_every / 2,
                max_payload_entries: MAX_PAYLOAD_ENTRIES,
                ..Default::default()
            }
            .validate()
            .map_err(|e| RlogError::InvalidOption(e.to_string()))?,
        );
        let me = handle.node().clone();
        let mut shards = Self {
            rafts: parking_lot::RwLock::new(HashMap::new()),
            queues: HashMap::new(),
            heartbeat: Duration::from_millis(hb),
            watch: parking_lot::Mutex::new(HashMap::new()),
            reports: Arc::new(LogReports::default()),
            db,
            config,
            opts: opts.clone(),
            tables: tables.clone(),
            handle: handle.clone(),
            inboxes: parking_lot::Mutex::new(HashMap::new()),
            tasks: tasks.clone(),
        };
        let mut receivers = Vec::new();
        for spec in opts
            .shards
            .iter()
            .filter(|s| s.kind == ShardKind::Consensus)
        {
            let shard = spec.name.clone();
            let (raft, fresh) = shards.open(&shard).await?;
            if fresh && opts.bootstrap == Bootstrap::Alone {
                // Manual discovery: the first core starts the group alone.
                let alone = BTreeMap::from([(node_id(&me), BasicNode::new(me.as_str()))]);
                if let Err(e) = raft.initialize(alone).await {
                    info!(%shard, cause = %e, "raft initialize skipped");
                }
            }
            let (qtx, qrx) = mpsc::unbounded_channel();
            shards.rafts.get_mut().insert(shard.clone(), raft);
            shards.queues.insert(shard.clone(), qtx);
            receivers.push((shard, qrx));
        }
        let shards = Arc::new(shards);
        for (shard, qrx) in receivers {
            let weak = Arc::downgrade(&shards);
            tasks.spawn(format!("rlog.raft.{shard}"), OnStop::Leave, {
                let (weak, shard) = (weak.clone(), shard.clone());
                move || {
                    let current = weak.upgrade().and_then(|s| {
                        let inbox = s.inboxes.lock().get(&shard).cloned();
                        s.raft(&shard).zip(inbox)
                    });
                    async move {
                        if let Some((raft, inbox)) = current {
                            serve(raft, inbox).await;
                        }
                    }
                }
            });
            let qrx: Inbox<Pending> = Arc::new(tokio::sync::Mutex::new(qrx));
            let (handle, timeout) = (handle.clone(), opts.write_timeout);
            tasks.spawn(format!("rlog.batcher.{shard}"), OnStop::Leave, move || {
                batcher(
                    weak.clone(),
                    handle.clone(),
                    shard.clone(),
                    timeout,
                    Arc::clone(&qrx),
                )
            });
        }
        Ok(shards)
    }

    /// Opens a shard's store and starts its Raft; registers its process.
    /// Returns whether the shard had no Raft state.
    async fn open(&self, shard: &str) -> Result<(Raft<TypeConfig>, bool), RlogError> {
        let me = self.handle.node().clone();
        let log = LogStore::new(self.db.clone(), shard)?;
        let sm = StateMachine::open(self.db.clone(), shard, self.tables.clone(), &self.opts)?;
        let fresh = log.is_fresh()?;
        let net = Net {
            handle: self.handle.clone(),
            shard: shard.to_owned(),
            reports: self.reports.clone(),
        };
        let raft = Raft::new(node_id(&me), self.config.clone(), net, log, sm)
            .await
            .map_err(|e| RlogError::Storage(e.to_string()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.handle.register(&raft_name(shard), tx)?;
        self.inboxes
            .lock()
            .insert(shard.to_owned(), Arc::new(tokio::sync::Mutex::new(rx)));
        Ok((raft, fresh))
    }

    /// The shard's Raft.
    pub(crate) fn raft(&self, shard: &str) -> Option<Raft<TypeConfig>> {
        self.rafts.read().get(shard).cloned()
    }

    /// The consensus shards' names.
    pub(crate) fn shards(&self) -> Vec<String> {
        let mut v: Vec<String> = self.rafts.read().keys().cloned().collect();
        v.sort();
        v
    }

    /// A shard's group as this core knows it.
    pub(crate) fn view(&self, shard: &str) -> GroupView {
        let Some(raft) = self.raft(shard) else {
            return GroupView::default();
        };
        let m = raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let name = |id: u64| {
            membership
                .get_node(&id)
                .and_then(|n| NodeName::parse(&n.addr).ok())
        };
        let mut voters: Vec<NodeName> = membership.voter_ids().filter_map(name).collect();
        let mut learners: Vec<NodeName> = membership.learner_ids().filter_map(name).collect();
        voters.sort();
        learners.sort();
        GroupView {
            voters,
            learners,
            leader: m.current_leader.and_then(name),
            leading: m.state == ServerState::Leader,
            term: m.current_term,
            applied: m.last_applied.map_or(0, |l| l.index),
            last_log: raft
                .data_metrics()
                .borrow()
                .last_log
                .as_ref()
                .map(LastLog::of),
        }
    }

    /// Keeps a core's report of a shard's last log (from a probe reply
    /// that came `at`).
    pub(crate) fn note_log(&self, node: &NodeName, shard: &str, at: Instant, log: Option<LastLog>) {
        self.reports.note(node, shard, at, log);
    }

    /// Starts a shard's group with these voters (a fresh core only:
    /// openraft refuses it on a core with state).
    pub(crate) async fn initialize(&self, shard: &str, voters: &[NodeName]) -> Result<(), String> {
        let raft = self.raft(shard).ok_or("no such shard")?;
        let members: BTreeMap<u64, BasicNode> = voters
            .iter()
            .map(|n| (node_id(n), BasicNode::new(n.as_str())))
            .collect();
        raft.initialize(members).await.map_err(|e| e.to_string())
    }

    /// Whether the shard has no Raft state on this core.
    pub(crate) fn is_fresh(&self, shard: &str) -> bool {
        LogStore::new(self.db.clone(), shard)
            .and_then(|l| l.is_fresh())
            .unwrap_or(false)
    }

    /// Leaves a group this core started alone: stops the shard's Raft,
    /// deletes its Raft state and rows, and starts it again fresh.
    pub(crate) async fn reset(&self, shard: &str) -> Result<(), RlogError> {
        let Some(raft) = self.raft(shard) else {
            return Err(RlogError::UnknownShard(shard.to_owned()));
        };
        self.handle.unregister(&raft_name(shard));
        let _ = raft.shutdown().await;
        clear_shard(&self.db, shard)?;
        self.tables.store.write().clear_shard(shard);
        let (raft, _) = self.open(shard).await?;
        self.rafts.write().insert(shard.to_owned(), raft);
        // Its server task serves the new Raft and inbox.
        if let Some(task) = self.tasks.get(&format!("rlog.raft.{shard}")) {
            task.restart();
        }
        info!(%shard, "rlog: left the consensus group this core started alone");
        Ok(())
    }

    /// Starts elections when a shard's leader is unreachable, rather than
    /// waiting out openraft's leader lease and election timeout (2–3 s
    /// after the last heartbeat). Called on every tick, and with `down` when
    /// the link to a node dropped (a shard it led is then watched at once;
    /// otherwise a leader must be unreachable for two heartbeats, so a core
    /// whose links are still coming up after a start does not disrupt a
    /// live leader). Elections are only triggered while this core reaches a
    /// majority of the voters (a minority cannot elect: its terms would grow
    /// for nothing), at most `ELECT_TRIES` times, a random 1–2 heartbeats
    /// apart (which also separates split votes).
    ///
    /// Every survivor does this, but after its first try a survivor to
    /// which a reachable voter reported a strictly more up-to-date log (see
    /// [`defer_to`]) starts no more: it cannot win, and each election it
    /// started would raise the term and spend its vote on itself, keeping
    /// the voter that can win from winning. A first vote request may be
    /// refused by a survivor whose lease of the lost leader still runs; a
    /// candidate holds no lease (hence the first try of every survivor), so
    /// a next round elects one of them. Raft's rules are
    /// unchanged (a vote needs a majority and an up-to-date log), and
    /// openraft's own election timeout still runs: this only changes when
    /// an election starts, and who starts it.
    pub(crate) fn check_leaders(&self, handle: &ClusterHandle, down: Option<&NodeName>) {
        let connected = handle.connected();
        let me = handle.node();
        let now = Instant::now();
        let mut watch = self.watch.lock();
        if let Some(down) = down {
            self.reports.forget(down);
        }
        let rafts = self.rafts.read().clone();
        for (shard, raft) in &rafts {
            let m = raft.metrics().borrow().clone();
            // A majority of the group's voters as this core knows them.
            let membership = m.membership_config.membership();
            let reachable: Vec<NodeName> = membership
                .voter_ids()
                .filter_map(|v| {
                    membership
                        .get_node(&v)
                        .and_then(|n| NodeName::parse(&n.addr).ok())
                })
                .filter(|n| n == me || connected.contains(n))
                .collect();
            let electable = reachable.len() * 2 > membership.voter_ids().count();
            let leader = m.current_leader.and_then(|l| {
                m.membership_config
                    .nodes()
                    .find(|(id, _)| **id == l)
                    .and_then(|(_, n)| NodeName::parse(&n.addr).ok())
            });
            // The leader this core lost the link to: the one it knows, or,
            // once it is a candidate (no leader known), the one it watches.
            let lost = match &leader {
                Some(l) if l != me && !connected.contains(l) => Some(l.clone()),
                Some(_) => None,
                None => watch.get(shard).map(|w| w.lost.clone()),
            };
            let Some(lost) = lost.filter(|l| !connected.contains(l)) else {
                watch.remove(shard);
                continue;
            };
            if m.state == ServerState::Leader {
                watch.remove(shard);
                continue;
            }
            let w = watch.entry(shard.clone()).or_insert_with(|| Watch {
                lost: lost.clone(),
                next_try: now + self.heartbeat * 2,
                tries: 0,
                deferred: false,
            });
            if down == Some(&lost) && w.tries == 0 {
                info!(%shard, leader = %lost, "rlog: link to the raft leader lost");
                w.next_try = now;
            }
            if !electable || now < w.next_try || w.tries >= ELECT_TRIES {
                continue;
            }
            let mine = raft
                .data_metrics()
                .borrow()
                .last_log
                .as_ref()
                .map(LastLog::of);
            let peers: Vec<NodeName> = reachable.into_iter().filter(|n| n != me).collect();
            // The first try is always made: a vote for itself ends the lost
            // leader's lease this core holds (which would refuse the other's
            // requests for up to `election_timeout_max`).
            let ahead = (w.tries > 0)
                .then(|| defer_to(mine, &self.reports.of(shard, &peers, now)))
                .flatten();
            if let Some(peer) = ahead {
                if !w.deferred {
                    w.deferred = true;
                    info!(%shard, %peer, ?mine, "rlog: a reachable voter has a more up-to-date log, leaving the election to it");
                }
                continue;
            }
            w.tries += 1;
            let hb = self.heartbeat.as_millis().max(1) as u64;
            w.next_try = now + Duration::from_millis(hb + rand::random::<u64>() % hb);
            info!(%shard, try_ = w.tries, "rlog: raft leader unreachable, starting an election");
            let raft = raft.clone();
            tokio::spawn(async move {
                let _ = raft.trigger().elect().await;
            });
        }
    }

    pub(crate) async fn shutdown(&self, handle: &ClusterHandle) {
        let rafts = self.rafts.read().clone();
        for (shard, raft) in &rafts {
            handle.unregister(&raft_name(shard));
            let _ = raft.shutdown().await;
        }
    }

    /// Commits `ops` through the leader. Writes that arrive while a batch
    /// is being committed are grouped into the next log entry (group
    /// commit), in arrival order; each write's ops stay atomic.
    pub(crate) async fn write(&self, shard: &str, ops: Vec<Op>) -> Result<u64, RlogError> {
        let queue = self
            .queues
            .get(shard)
            .ok_or_else(|| RlogError::UnknownShard(shard.to_owned()))?;
        let (tx, rx) = oneshot::channel();
        queue
            .send(Pending {
                ops: ops_to_pb(&ops),
                tx,
            })
            .map_err(|_| RlogError::NoQuorum {
                shard: shard.to_owned(),
                reason: "shut down".into(),
            })?;
        let reason = match rx.await {
            Ok(Ok(index)) => return Ok(index),
            Ok(Err(reason)) => reason,
            Err(_) => "the write batcher stopped".into(),
        };
        Err(RlogError::NoQuorum {
            shard: shard.to_owned(),
            reason,
        })
    }
}

/// Elections started while a shard's leader is unreachable (see
/// [`RaftShards::check_leaders`]).
#[derive(Debug)]
struct Watch {
    /// The leader whose link dropped.
    lost: NodeName,
    next_try: Instant,
    tries: u32,
    /// An election was left to a voter with a more up-to-date log (logged).
    deferred: bool,
}

/// Most elections [`RaftShards::check_leaders`] starts for one loss of a
/// leader; then openraft's own timers go on.
const ELECT_TRIES: u32 = 20;

/// A write waiting for the batcher.
struct Pending {
    ops: Vec<pb::Op>,
    tx: oneshot::Sender<Result<u64, String>>,
}

/// Most writes, and most ops, grouped in one log entry: entries stay small
/// enough that an AppendEntries of `MAX_PAYLOAD_ENTRIES` of them is a few MB.
const MAX_BATCH: usize = 1024;
const MAX_BATCH_OPS: usize = 2048;
const MAX_PAYLOAD_ENTRIES: u64 = 8;

/// Takes queued writes in batches and commits each batch as one entry.
async fn batcher(
    shards: std::sync::Weak<RaftShards>,
    handle: ClusterHandle,
    shard: String,
    timeout: Duration,
    rx: Inbox<Pending>,
) {
    let mut rx = rx.lock().await;
    while let Some(first) = rx.recv().await {
        let mut ops_in = first.ops.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && ops_in < MAX_BATCH_OPS {
            match rx.try_recv() {
                Ok(p) => {
                    ops_in += p.ops.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let ops: Vec<pb::Op> = batch.iter().flat_map(|p| p.ops.iter().cloned()).collect();
        // The shard's Raft of the moment (a reset replaces it).
        let raft = shards.upgrade().and_then(|s| s.raft(&shard));
        let result = match raft {
            Some(raft) => commit(&raft, &handle, &shard, ops, timeout).await,
            None => Err("shut down".to_owned()),
        };
        for p in batch {
            let _ = p.tx.send(result.clone());
        }
    }
}

/// Commits one entry: locally when this core leads, else forwarded to the
/// leader's `girder.rlog`; retried until `timeout` while there is no leader.
async fn commit(
    raft: &Raft<TypeConfig>,
    handle: &ClusterHandle,
    shard: &str,
    ops: Vec<pb::Op>,
    timeout: Duration,
) -> Result<u64, String> {
    let deadline = Instant::now() + timeout;
    let data = pb::Ops { ops: ops.clone() }.encode_to_vec();
    let mut last = String::from("no leader");
    while Instant::now() < deadline {
        // A leader cut off from the majority never commits: bound the wait.
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(written) = tokio::time::timeout(left, raft.client_write(Batch(data.clone()))).await
        else {
            last = "not committed in time (no majority)".into();
            break;
        };
        match written {
            Ok(r) => return Ok(r.log_id.index),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                match f.leader_node.and_then(|n| NodeName::parse(&n.addr).ok()) {
                    Some(leader) if leader != *handle.node() => {
                        let req = pb::Write {
                            shard: shard.to_owned(),
                            ops: ops.clone(),
                        };
                        let left = deadline.saturating_duration_since(Instant::now());
                        match handle
                            .call(&leader, RLOG, RlogMsg::Write(req).encode(), left)
                            .await
                        {
                            Ok(p) => match p.decode::<pb::WriteReply>(T_WRITE_REPLY) {
                                Ok(r) => return Ok(r.index),
                                Err(e) => last = e.to_string(),
                            },
                            Err(e) => last = format!("leader {leader}: {e}"),
                        }
                    }
                    _ => last = "no leader".into(),
                }
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    Err(last)
}

/// Answers openraft RPCs from the other cores, in arrival order.
async fn serve(raft: Raft<TypeConfig>, rx: Inbox<RemoteMessage>) {
    let mut rx = rx.lock().await;
    while let Some(msg) = rx.recv().await {
        let Some(reply) = msg.reply else { continue };
        let req = match RaftMsg::decode(&msg.payload) {
            Ok(req) => req,
            Err(MsgError::Unknown(_)) => continue,
            Err(e) => {
                reply.reply(Err(e.to_string()));
                continue;
            }
        };
        let rpc = req.rpc();
        let answer = match req {
            RaftMsg::Append(req) => serde_json::to_vec(&raft.append_entries(req).await),
            RaftMsg::Vote(req) => serde_json::to_vec(&raft.vote(req).await),
            RaftMsg::Snapshot(req) => serde_json::to_vec(&raft.install_snapshot(req).await),
        };
        match answer {
            Ok(bytes) => reply.reply(Ok(Payload::new(rpc.type_name(), bytes))),
            Err(e) => reply.reply(Err(e.to_string())),
        }
    }
}

/// Builds connections to the other cores of one shard.
#[derive(Clone, Debug)]
pub(crate) struct Net {
    handle: ClusterHandle,
    shard: String,
    reports: Arc<LogReports>,
}

impl RaftNetworkFactory<TypeConfig> for Net {
    type Network = Conn;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Conn {
        Conn {
            handle: self.handle.clone(),
            name: raft_name(&self.shard),
            shard: self.shard.clone(),
            reports: self.reports.clone(),
            target,
            to: NodeName::parse(&node.addr).ok(),
        }
    }
}

/// openraft's RPCs to one core.
#[derive(Debug)]
pub(crate) struct Conn {
    handle: ClusterHandle,
    name: String,
    shard: String,
    /// Where a vote reply's report of the voter's log is kept.
    reports: Arc<LogReports>,
    target: u64,
    to: Option<NodeName>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct NetError(String);

impl Conn {
    async fn rpc<Req, Resp, E>(
        &self,
        kind: RaftRpc,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, BasicNode, RaftError<u64, E>>>
    where
        Req: Serialize,
        Resp: for<'de> Deserialize<'de>,
        E: std::error::Error + for<'de> Deserialize<'de>,
    {
        let Some(to) = &self.to else {
            return Err(RPCError::Unreachable(Unreachable::new(&NetError(
                "bad node name".into(),
            ))));
        };
        let body = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let reply = self
            .handle
            .call(
                to,
                &self.name,
                Payload::new(kind.type_name(), body),
                option.hard_ttl(),
            )
            .await
            .map_err(|e| match e {
                crate::ClusterError::Timeout { .. } => RPCError::Network(NetworkError::new(&e)),
                other => RPCError::Unreachable(Unreachable::new(&other)),
            })?;
        let r: Result<Resp, RaftError<u64, E>> = serde_json::from_slice(&reply.data)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.rpc(RaftRpc::Append, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        self.rpc(RaftRpc::Snapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let r: Result<VoteResponse<u64>, _> = self.rpc(RaftRpc::Vote, &rpc, &option).await;
        match (&r, &self.to) {
            (Ok(resp), Some(to)) => {
                // The voter's log as it is now: fresher than its last probe.
                let log = resp.last_log_id.as_ref().map(LastLog::of);
                self.reports.note(to, &self.shard, Instant::now(), log);
            }
            (Err(e), _) => tracing::debug!(cause = %e, "raft vote rpc failed"),
            _ => {}
        }
        r
    }
}
