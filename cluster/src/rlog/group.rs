//! One Raft group per consensus shard in a cluster: how a fresh core starts
//! it or finds it and asks to be added, and how the leader changes the
//! group's members (learner first, then voter; one change at a time; cores
//! that left or were removed go).
//!
//! Every core probes the nodes it is linked to (`Probe` to `girder.rlog`)
//! every [`PROBE_EVERY`]: each answers with the groups it holds. Per shard:
//!
//! - some core reports a group it leads that does not count this core as a
//!   voter: this core asks that leader to add it (`JoinGroup`), unless it
//!   holds a group of its own that shares no voter with that one (then it
//!   logs the conflict and stays out: two groups are never merged);
//! - no core holds a group and this core has no Raft state: it starts the
//!   group when [`Bootstrap`] says it may (see [`first_voters`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use girder_proto::rlog as pb;
use openraft::{BasicNode, ChangeMembers};
use tracing::{error, info, warn};

use super::msg::{RlogMsg, T_PROBE_REPLY};
use super::node::{Shared, RLOG};
use super::raft::{node_id, GroupView, LastLog, RaftShards};
use super::{Bootstrap, RlogError, Role};
use crate::options::NodeName;

/// How often a core probes the nodes it is linked to.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// A join request not asked again within this is forgotten by the leader.
const JOIN_REQUEST_TTL: Duration = Duration::from_secs(10);
/// How long `cluster join` waits for the joined cluster's group to be
/// reported before a core that holds a group alone keeps it.
const JOIN_WAIT: Duration = Duration::from_secs(5);
/// Most time one membership change may take.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// One consensus shard's group, for `ctl cluster status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    /// The shard.
    pub shard: String,
    /// Voters (empty: the core reporting holds no group yet).
    pub voters: Vec<NodeName>,
    /// Learners: cores being added.
    pub learners: Vec<NodeName>,
    /// The leader, if known.
    pub leader: Option<NodeName>,
    /// The Raft term.
    pub term: u64,
    /// The last log index applied by the core reporting (a committed index).
    pub commit_index: u64,
}

/// One running replicant's following of one consensus shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicantFollow {
    /// The replicant.
    pub node: NodeName,
    /// The shard.
    pub shard: String,
    /// The core it follows.
    pub core: Option<NodeName>,
    /// Entries behind that core's last reported position.
    pub lag: u64,
}

/// What [`Rlog::cluster_status`](super::Rlog::cluster_status) reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RlogClusterStatus {
    /// Each consensus shard's group.
    pub groups: Vec<GroupStatus>,
    /// Each running replicant's consensus shards.
    pub replicants: Vec<ReplicantFollow>,
}

/// The leader side: join requests and whether a change is under way.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// (shard, core) → when it last asked.
    asked: parking_lot::Mutex<HashMap<(String, NodeName), Instant>>,
    /// Shards with a membership change under way.
    busy: parking_lot::Mutex<BTreeSet<String>>,
    /// When each conflict or refusal was last logged (rate limit).
    logged: parking_lot::Mutex<HashMap<String, Instant>>,
}

fn names(v: &[String]) -> Vec<NodeName> {
    let mut out: Vec<NodeName> = v.iter().filter_map(|n| NodeName::parse(n).ok()).collect();
    out.sort();
    out.dedup();
    out
}

fn strings(v: &[NodeName]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

fn group_pb(shard: &str, v: &GroupView) -> pb::Group {
    pb::Group {
        shard: shard.to_owned(),
        voters: strings(&v.voters),
        learners: strings(&v.learners),
        leader: v
            .leader
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        term: v.term,
        commit_index: v.applied,
        last_log: v.last_log.map(|l| pb::LogId {
            term: l.term,
            index: l.index,
        }),
    }
}

/// The last log of each shard a core reported holding a group of.
fn last_logs(r: &pb::ProbeReply) -> impl Iterator<Item = (&str, Option<LastLog>)> {
    r.groups.iter().filter(|g| !g.voters.is_empty()).map(|g| {
        let log = g.last_log.as_ref().map(|l| LastLog {
            term: l.term,
            index: l.index,
        });
        (g.shard.as_str(), log)
    })
}

/// The voters this node would start a group with (sorted): the listed
/// cores, or the seeds and this node (so that nodes that each list the
/// others as seeds agree); `None` when it starts one alone.
fn initial(shared: &Shared) -> Option<Vec<NodeName>> {
    initial_of(&shared.me, &shared.opts.bootstrap, &shared.opts.core_nodes)
}

/// [`initial`] of a node `me` with these options.
fn initial_of(
    me: &NodeName,
    bootstrap: &Bootstrap,
    core_nodes: &[NodeName],
) -> Option<Vec<NodeName>> {
    let mut v = match bootstrap {
        Bootstrap::CoreNodes => core_nodes.to_vec(),
        Bootstrap::Seeds(seeds) => {
            let mut v = seeds.clone();
            v.push(me.clone());
            v
        }
        Bootstrap::Alone => return None,
    };
    v.sort();
    v.dedup();
    Some(v)
}

/// This node's answer to a probe.
pub(crate) fn probe_reply(shared: &Shared) -> pb::ProbeReply {
    let core = shared.opts.role == Role::Core;
    let groups = shared.rafts.as_ref().map_or_else(Vec::new, |r| {
        r.shards().iter().map(|s| group_pb(s, &r.view(s))).collect()
    });
    let follows = if core {
        Vec::new()
    } else {
        shared
            .status()
            .shards
            .into_iter()
            .filter(|s| s.kind == super::ShardKind::Consensus)
            .map(|s| pb::Follow {
                shard: s.shard,
                core: s.following.map(|c| c.to_string()).unwrap_or_default(),
                position: s.position,
                lag: s.lag,
            })
            .collect()
    };
    pb::ProbeReply {
        core,
        initial: initial(shared).map_or_else(Vec::new, |v| strings(&v)),
        groups,
        follows,
    }
}

/// Asks `node` what it holds.
async fn probe(shared: &Shared, node: &NodeName) -> Option<pb::ProbeReply> {
    let reply = shared
        .handle
        .call(node, RLOG, RlogMsg::Probe.encode(), PROBE_TIMEOUT)
        .await
        .ok()?;
    reply.decode::<pb::ProbeReply>(T_PROBE_REPLY).ok()
}

/// Probes every linked node; keeps each core's report of its logs (see
/// [`RaftShards::check_leaders`]).
async fn probe_all(shared: &Shared) -> Vec<(NodeName, pb::ProbeReply)> {
    let peers = shared.handle.connected();
    // Each reply with when it came (a slow probe must not make the others
    // look newer than they are).
    let replies = join_all(
        peers
            .iter()
            .map(|p| async move { probe(shared, p).await.map(|r| (r, Instant::now())) }),
    )
    .await;
    let mut probes = Vec::with_capacity(replies.len());
    for (node, (r, at)) in peers
        .into_iter()
        .zip(replies)
        .filter_map(|(p, r)| r.map(|r| (p, r)))
    {
        if let (true, Some(rafts)) = (r.core, &shared.rafts) {
            for (shard, log) in last_logs(&r) {
                rafts.note_log(&node, shard, at, log);
            }
        }
        probes.push((node, r));
    }
    probes
}

/// A leader's report of `shard`'s group among the probes: the group as its
/// leader knows it.
fn led_group<'a>(
    probes: &'a [(NodeName, pb::ProbeReply)],
    shard: &str,
) -> Option<(&'a NodeName, &'a pb::Group)> {
    probes.iter().find_map(|(node, r)| {
        r.groups
            .iter()
            .find(|g| g.shard == shard && g.leader == node.as_str() && !g.voters.is_empty())
            .map(|g| (node, g))
    })
}

/// With [`Bootstrap::CoreNodes`]: why this fresh core's list contradicts a
/// running group's voters (the list, less this core, must be the voters,
/// less this core: a core listed by the others or a replacement of a
/// removed one).
fn contradiction(shared: &Shared, shard: &str, voters: &[NodeName]) -> Option<String> {
    contradiction_of(
        &shared.me,
        &shared.opts.bootstrap,
        &shared.opts.core_nodes,
        shard,
        voters,
    )
}

/// [`contradiction`] for a node `me` with these options.
fn contradiction_of(
    me: &NodeName,
    bootstrap: &Bootstrap,
    core_nodes: &[NodeName],
    shard: &str,
    voters: &[NodeName],
) -> Option<String> {
    if *bootstrap != Bootstrap::CoreNodes {
        return None;
    }
    let mut listed: Vec<NodeName> = initial_of(me, bootstrap, core_nodes)?
        .into_iter()
        .filter(|n| n != me)
        .collect();
    let mut running: Vec<NodeName> = voters.iter().filter(|n| *n != me).cloned().collect();
    listed.sort();
    running.sort();
    (listed != running).then(|| {
        format!(
            "cluster.core_nodes = [{}] contradicts the running group of consensus shard \
             {shard:?}, whose voters are [{}]; list the running group's voters (and this \
             node), or force-leave the cores it replaces first",
            strings(core_nodes).join(", "),
            strings(voters).join(", "),
        )
    })
}

/// The voters a fresh core starts `shard`'s group with, once it may: it is
/// one of its [`initial`] voters, and every other one answered, as a core
/// (seeds that answered as replicants are left out), with the same initial
/// voters and no group. `Err` says what it waits for.
fn first_voters(
    shared: &Shared,
    probes: &[(NodeName, pb::ProbeReply)],
    shard: &str,
) -> Result<Vec<NodeName>, String> {
    first_voters_of(
        &shared.me,
        &shared.opts.bootstrap,
        &shared.opts.core_nodes,
        probes,
        shard,
    )
}

/// [`first_voters`] for a node `me` with these options.
fn first_voters_of(
    me: &NodeName,
    bootstrap: &Bootstrap,
    core_nodes: &[NodeName],
    probes: &[(NodeName, pb::ProbeReply)],
    shard: &str,
) -> Result<Vec<NodeName>, String> {
    let Some(initial) = initial_of(me, bootstrap, core_nodes) else {
        return Err("starts alone".into());
    };
    if !initial.contains(me) {
        return Err("this core is not one of the first voters: it waits for a group".into());
    }
    let mut voters = vec![me.clone()];
    for n in initial.iter().filter(|n| *n != me) {
        let Some((_, r)) = probes.iter().find(|(p, _)| p == n) else {
            return Err(format!("waiting for {n}"));
        };
        if names(&r.initial) != initial {
            return Err(format!(
                "{n} would start with [{}], this node with [{}]",
                r.initial.join(", "),
                strings(&initial).join(", ")
            ));
        }
        if r.groups
            .iter()
            .any(|g| g.shard == shard && !g.voters.is_empty())
        {
            return Err(format!("{n} holds a group"));
        }
        match (r.core, bootstrap) {
            (true, _) => voters.push(n.clone()),
            (false, Bootstrap::CoreNodes) => {
                return Err(format!(
                    "{n} is listed in cluster.core_nodes but is a replicant"
                ))
            }
            (false, _) => {}
        }
    }
    voters.sort();
    Ok(voters)
}

impl Changes {
    /// Whether a line about `key` may be logged now (at most every 5 s).
    fn log_now(&self, key: &str) -> bool {
        let mut logged = self.logged.lock();
        let due = logged
            .get(key)
            .is_none_or(|t| t.elapsed() > Duration::from_secs(5));
        if due {
            logged.insert(key.to_owned(), Instant::now());
        }
        due
    }
}

/// One round of a core's part: per shard, start the group, or ask to be
/// added to the running one. Returns a refusal (a contradicting
/// `cluster.core_nodes`) if there is one.
async fn round(shared: &Shared, rafts: &RaftShards) -> Option<String> {
    if shared.handle.removed().contains(&shared.me) {
        return None; // left: nothing to do until joined again
    }
    let probes = probe_all(shared).await;
    let mut refusal = None;
    for shard in rafts.shards() {
        let mine = rafts.view(&shard);
        if mine.voters.contains(&shared.me) && mine.leader.is_some() && mine.learners.is_empty() {
            // A voter with a leader: nothing to ask, unless a leader reports
            // the group without this core (it was removed meanwhile).
            let led = led_group(&probes, &shard);
            if led.is_none_or(|(_, g)| names(&g.voters).contains(&shared.me)) {
                continue;
            }
        }
        if let Some((leader, g)) = led_group(&probes, &shard) {
            let voters = names(&g.voters);
            if voters.contains(&shared.me) {
                continue;
            }
            let fresh = rafts.is_fresh(&shard);
            if fresh {
                if let Some(why) = contradiction(shared, &shard, &voters) {
                    refusal = Some(why);
                    continue;
                }
            } else if !mine.voters.is_empty() && !mine.voters.iter().any(|v| voters.contains(v)) {
                if shared.changes.log_now(&format!("conflict:{shard}")) {
                    error!(
                        %shard,
                        mine = ?mine.voters,
                        theirs = ?voters,
                        "rlog: this core holds another consensus group than the cluster's; \
                         it stays out of the cluster's group"
                    );
                }
                continue;
            }
            let req = pb::JoinGroup {
                shard: shard.clone(),
                node: shared.me.to_string(),
            };
            if let Err(e) = shared
                .handle
                .call(
                    leader,
                    RLOG,
                    RlogMsg::JoinGroup(req).encode(),
                    PROBE_TIMEOUT,
                )
                .await
            {
                info!(%shard, %leader, cause = %e, "rlog: asking to join the group failed");
            }
            continue;
        }
        let someone_holds = probes.iter().any(|(_, r)| {
            r.groups
                .iter()
                .any(|g| g.shard == shard && !g.voters.is_empty())
        });
        if !mine.voters.is_empty() || someone_holds || !rafts.is_fresh(&shard) {
            continue; // a group exists: its leader will be found
        }
        match first_voters(shared, &probes, &shard) {
            Ok(voters) => {
                info!(%shard, voters = ?voters, "rlog: starting the consensus group");
                if let Err(e) = rafts.initialize(&shard, &voters).await {
                    info!(%shard, cause = %e, "rlog: raft initialize skipped");
                }
            }
            Err(why) => {
                if shared.changes.log_now(&format!("wait:{shard}")) {
                    info!(%shard, "rlog: not starting the consensus group yet: {why}");
                }
            }
        }
    }
    refusal
}

/// A core's part, until the node stops.
pub(crate) async fn run(shared: Arc<Shared>) {
    let Some(rafts) = shared.rafts.clone() else {
        return;
    };
    loop {
        if let Some(why) = round(&shared, &rafts).await {
            // Found after start: this core stays out of the group.
            if shared.changes.log_now("refuse") {
                error!("rlog: {why}");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(PROBE_EVERY) => {}
            () = shared.stop.cancelled() => return,
        }
    }
}

/// At start, a fresh core with [`Bootstrap::CoreNodes`] looks for a running
/// group for up to `wait` (until every listed core answered) and is refused
/// when its list contradicts it.
pub(crate) async fn check_at_start(shared: &Shared, wait: Duration) -> Result<(), RlogError> {
    let Some(rafts) = shared.rafts.clone() else {
        return Ok(());
    };
    if shared.opts.bootstrap != Bootstrap::CoreNodes
        || !rafts.shards().iter().any(|s| rafts.is_fresh(s))
    {
        return Ok(());
    }
    let deadline = Instant::now() + wait;
    loop {
        if let Some(why) = round(shared, &rafts).await {
            return Err(RlogError::Contradiction(why));
        }
        let connected = shared.handle.connected();
        let all = shared
            .opts
            .core_nodes
            .iter()
            .all(|c| *c == shared.me || connected.contains(c));
        let started = rafts.shards().iter().all(|s| !rafts.is_fresh(s));
        if (all && started) || Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// On the leader: a core asks to be added to `req.shard`'s group.
pub(crate) fn on_join_group(shared: &Shared, req: &pb::JoinGroup) -> Result<(), String> {
    let rafts = shared.rafts.as_ref().ok_or("not a core")?;
    if !rafts.view(&req.shard).leading {
        return Err("not the leader".into());
    }
    let node = NodeName::parse(&req.node).map_err(|e| e.to_string())?;
    shared
        .changes
        .asked
        .lock()
        .insert((req.shard.clone(), node), Instant::now());
    Ok(())
}

/// On the leader, every tick: the next membership change of each shard, if
/// none is under way: remove a core that left or was removed from the
/// cluster; else promote a learner that asked; else add a core that asked
/// as a learner (which waits until it has caught up).
pub(crate) fn reconcile(shared: &Shared) {
    let Some(rafts) = &shared.rafts else {
        return;
    };
    let removed = shared.handle.removed();
    let connected = shared.handle.connected();
    shared
        .changes
        .asked
        .lock()
        .retain(|_, t| t.elapsed() < JOIN_REQUEST_TTL);
    for shard in rafts.shards() {
        let view = rafts.view(&shard);
        if !view.leading || shared.changes.busy.lock().contains(&shard) {
            continue;
        }
        let asked: Vec<NodeName> = shared
            .changes
            .asked
            .lock()
            .keys()
            .filter(|(s, _)| *s == shard)
            .map(|(_, n)| n.clone())
            .collect();
        let gone = |n: &NodeName| *n != shared.me && removed.contains(n);
        let change: Option<(&str, NodeName, ChangeMembers<u64, BasicNode>)> =
            if let Some(n) = view.voters.iter().find(|n| gone(n)) {
                let set = BTreeSet::from([node_id(n)]);
                Some(("remove voter", n.clone(), ChangeMembers::RemoveVoters(set)))
            } else if let Some(n) = view.learners.iter().find(|n| gone(n)) {
                let set = BTreeSet::from([node_id(n)]);
                Some(("remove learner", n.clone(), ChangeMembers::RemoveNodes(set)))
            } else if let Some(n) = view
                .learners
                .iter()
                .find(|n| asked.contains(n) && connected.contains(n))
            {
                let set = BTreeSet::from([node_id(n)]);
                Some((
                    "promote learner",
                    n.clone(),
                    ChangeMembers::AddVoterIds(set),
                ))
            } else if let Some(n) = asked.iter().find(|n| {
                !view.voters.contains(n)
                    && !view.learners.contains(n)
                    && connected.contains(n)
                    && !gone(n)
            }) {
                Some((
                    "add learner",
                    n.clone(),
                    ChangeMembers::AddNodes(Default::default()),
                ))
            } else {
                None
            };
        let Some((what, node, members)) = change else {
            continue;
        };
        let Some(raft) = rafts.raft(&shard) else {
            continue;
        };
        shared.changes.busy.lock().insert(shard.clone());
        let changes = shared.changes.clone();
        info!(%shard, %node, change = what, "rlog: changing the consensus group");
        tokio::spawn(async move {
            let done = if what == "add learner" {
                let basic = BasicNode::new(node.as_str());
                tokio::time::timeout(
                    CHANGE_TIMEOUT,
                    raft.add_learner(node_id(&node), basic, true),
                )
                .await
                .map(|r| r.map(|_| ()).map_err(|e| e.to_string()))
            } else {
                tokio::time::timeout(CHANGE_TIMEOUT, raft.change_membership(members, false))
                    .await
                    .map(|r| r.map(|_| ()).map_err(|e| e.to_string()))
            };
            match done {
                Ok(Ok(())) => info!(%shard, %node, change = what, "rlog: consensus group changed"),
                Ok(Err(e)) => {
                    warn!(%shard, %node, change = what, cause = %e, "rlog: group change failed")
                }
                Err(_) => warn!(%shard, %node, change = what, "rlog: group change timed out"),
            }
            changes.busy.lock().remove(&shard);
        });
    }
}

/// `Rlog::prepare_join`: leave every group this core holds alone, once a
/// linked core reports the joined cluster's group (led elsewhere, without
/// this core), waiting up to [`JOIN_WAIT`] for that report. A shard whose
/// group has other members, or for which no such report comes, is kept.
pub(crate) async fn prepare_join(shared: &Shared) -> Result<(), RlogError> {
    let Some(rafts) = &shared.rafts else {
        return Ok(());
    };
    let alone: Vec<String> = rafts
        .shards()
        .into_iter()
        .filter(|s| {
            let v = rafts.view(s);
            v.voters == [shared.me.clone()] && v.learners.is_empty()
        })
        .collect();
    let deadline = Instant::now() + JOIN_WAIT;
    let mut left = BTreeSet::new();
    while left.len() < alone.len() && Instant::now() < deadline {
        let probes = probe_all(shared).await;
        for shard in &alone {
            let joined = led_group(&probes, shard)
                .is_some_and(|(_, g)| !names(&g.voters).contains(&shared.me));
            if joined && !left.contains(shard) {
                rafts.reset(shard).await?;
                left.insert(shard.clone());
            }
        }
        if left.len() < alone.len() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for shard in alone.iter().filter(|s| !left.contains(*s)) {
        warn!(%shard, "rlog: joined, but no other consensus group reached: this core keeps its own");
    }
    Ok(())
}

/// `Rlog::cluster_status`: the groups as this core (or, on a replicant, the
/// first core that answers) knows them, and every running replicant's
/// following.
pub(crate) async fn cluster_status(shared: &Shared) -> RlogClusterStatus {
    let mut probes = vec![(shared.me.clone(), probe_reply(shared))];
    probes.extend(probe_all(shared).await);
    let reporter = probes.iter().find(|(_, r)| r.core);
    let mut status = RlogClusterStatus::default();
    if let Some((_, r)) = reporter {
        for g in &r.groups {
            status.groups.push(GroupStatus {
                shard: g.shard.clone(),
                voters: names(&g.voters),
                learners: names(&g.learners),
                leader: NodeName::parse(&g.leader).ok(),
                term: g.term,
                commit_index: g.commit_index,
            });
        }
    }
    for (node, r) in &probes {
        if r.core {
            continue;
        }
        for f in &r.follows {
            status.replicants.push(ReplicantFollow {
                node: node.clone(),
                shard: f.shard.clone(),
                core: NodeName::parse(&f.core).ok(),
                lag: f.lag,
            });
        }
    }
    status
        .replicants
        .sort_by(|a, b| (&a.node, &a.shard).cmp(&(&b.node, &b.shard)));
    status
}

#[cfg(test)]
#[path = "group_test.rs"]
mod tests;
