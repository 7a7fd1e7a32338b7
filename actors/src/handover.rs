//! One session per client id across the cluster (DESIGN §3 step 1, EMQX's
//! `emqx_cm:takeover_session` over `emqx_cm_locker`): taking a client id
//! over from the node that holds it.
//!
//! Both sides speak to the process `girder.cm` of the other node
//! (`girder.broker.v1` in `session.proto`):
//!
//! ```text
//!  new node (CONNECT accepted, registered     node that held the client id
//!  locally as a claim)
//!  ─────────────────────────────────────      ────────────────────────────
//!  lock "client:<id>" on a majority of the
//!  cores (the lease lock; retried while
//!  another node holds it, ≤ 3 s)
//!  superseded meanwhile? → end, unopened
//!  owners of the `clients` row (and the
//!  lock's holders seen while waiting)
//!  ── TakeoverRequest ──────────────────────► cm.give_up(id):
//!                                              settled holder → its actor
//!                                              hands over (DISCONNECT 0x8E,
//!                                              session moved or ended, row
//!                                              removed), late deliveries
//!                                              passed on for 2 s
//!                                              claim in progress → superseded
//!  ◄────────────────── TakeoverReply(session) ─
//!  settle the claim
//!  open: CONNACK (session present), resubscribe, resend inflight (DUP);
//!  release the lock meanwhile
//! ```
//!
//! Of two connects with one id on two nodes at once, the first to get the
//! lock sees the other's row (or is named by the lock to the other, who
//! waited for it): a claim still in progress is superseded (that
//! connection gets CONNACK and DISCONNECT 0x8E and ends), a settled one is
//! taken over, so exactly one session remains. Checking "superseded" right
//! after the lock is taken, and settling before it is released, keeps two
//! claimants from each superseding the other.
//!
//! A node that is down costs nothing (no link: the call fails at once); one
//! that is linked but does not answer costs the claim one call timeout
//! (2 s), and one more second if it is a core (the lock request to it): the
//! client connects with a new session, and the dead node's rows vanish
//! after `cluster.owned_rows_grace_period`. Without a majority of the cores the
//! lock cannot be had: after a short wait the claim goes on unlocked (a race
//! may then leave two sessions for a while, as a split does).
//!
//! A node with no linked peer skips all of this: nothing to take over from.
//!
//! What a split leaves is undone afterwards: the service watches the
//! `clients` table, and a row another node settled for a client id this
//! node also holds, settled earlier, makes this node's connection give the
//! id up (see `cm`), so that two connections left on both sides end as one
//! once the nodes are linked again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use girder_broker::codec::ByteStr;
use girder_broker::message::Delivery;
use girder_broker::session::Session;
use girder_cluster::rlog::{Change, LeaseLock, RlogError};
use girder_cluster::{NodeName, Payload, RemoteMessage};
use girder_proto::broker as pb;
use girder_supervision::ChildSpec;
use tokio::sync::broadcast;
use tracing::{debug, info, warn};

use crate::channel::{HandOver, Handed};
use crate::cm::{self, ClientTable, GiveUp};
use crate::node::NodeShared;
use crate::wire;

/// The name every node's [`HandoverService`] is registered under.
pub const CM_PROCESS: &str = "girder.cm";
const T_TAKEOVER: &str = "girder.broker.v1.TakeoverRequest";
const T_TAKEOVER_REPLY: &str = "girder.broker.v1.TakeoverReply";
const T_HANDED: &str = "girder.broker.v1.HandedDeliveries";

/// The lease of the client id's lock: longer than a claim takes (one
/// lock request and one call to the holder). A quarter of it bounds each
/// request to a core (`Rlog::lock`).
const LOCK_LEASE: Duration = Duration::from_secs(4);
/// How long a claim waits for the lock while another node holds it.
const LOCK_WAIT: Duration = Duration::from_secs(3);
/// How long a claim retries when no majority of the cores grants it.
const NO_QUORUM_WAIT: Duration = Duration::from_millis(500);
/// How long the node holding the client id has to answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the holder's actor has to hand its session over.
const HAND_OVER_TIMEOUT: Duration = Duration::from_millis(1500);

/// When (seconds since the epoch) each rate-limited line was last logged:
/// a node that is down, or a lost majority, concerns every client that
/// connects, so it is logged once per [`LOG_EVERY_S`] rather than per client.
static UNREACHABLE_LOGGED: AtomicU64 = AtomicU64::new(0);
static UNLOCKED_LOGGED: AtomicU64 = AtomicU64::new(0);
const LOG_EVERY_S: u64 = 10;

/// Whether the line whose last time is `last` may be logged now.
fn log_allowed(last: &AtomicU64) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let before = last.load(Ordering::Relaxed);
    now >= before + LOG_EVERY_S
        && last
            .compare_exchange(before, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// How a claim ended.
#[derive(Debug)]
pub(crate) enum Claimed {
    /// The client id is this registration's.
    Held {
        /// The session another node sent, if any (boxed: large, rare).
        session: Option<Box<pb::SessionState>>,
        /// The client id's lock, to release: the claim is settled, so the
        /// connection need not wait for the release (the caller runs it
        /// beside opening the session).
        lock: Option<LeaseLock>,
    },
    /// Another node's claimant took the id first: this connection ends
    /// without opening its session.
    Superseded,
}

/// A claim of a client id across the cluster by one registration.
#[derive(Debug)]
pub(crate) struct Claim {
    shared: Arc<NodeShared>,
    table: ClientTable,
    client_id: ByteStr,
    id: u64,
    clean_start: bool,
}

impl Claim {
    /// A claim by registration `id`, or `None` when the node has no linked
    /// peer (nothing to take over from, no one to race with).
    pub(crate) fn new(
        shared: &Arc<NodeShared>,
        client_id: &ByteStr,
        id: u64,
        clean_start: bool,
    ) -> Option<Self> {
        let table = shared.cm.tables()?.clone();
        if table.cluster.connected().is_empty() {
            return None;
        }
        Some(Self {
            shared: Arc::clone(shared),
            table,
            client_id: client_id.clone(),
            id,
            clean_start,
        })
    }

    /// Locks the client id cluster-wide, asks every other node that holds
    /// it to give it up, settles the registration and unlocks.
    pub(crate) async fn run(self) -> Claimed {
        let me = self.table.cluster.node().clone();
        let (lock, mut holders) = self.lock(&me).await;
        if self.shared.cm.is_superseded(&self.client_id, self.id) {
            if let Some(lock) = lock {
                lock.release().await;
            }
            return Claimed::Superseded;
        }
        let key = self.client_id.as_bytes();
        for (owner, _) in self.table.rlog.read_owned(self.table.table, key) {
            if owner != me && !holders.contains(&owner) {
                holders.push(owner);
            }
        }
        let mut session = None;
        for node in holders {
            match self.ask(&node).await {
                Ok(reply) => {
                    debug!(client_id = %self.client_id, %node, found = reply.found,
                        superseded = reply.superseded, "client id given up by its node");
                    if session.is_none() {
                        session = reply.session.map(Box::new);
                    }
                }
                Err(cause) => {
                    if log_allowed(&UNREACHABLE_LOGGED) {
                        info!(client_id = %self.client_id, %node, %cause,
                            "client id not taken over from its node: connecting without its \
                             session (logged once per 10 s)");
                    }
                }
            }
        }
        if self.shared.cm.settle(&self.client_id, self.id) {
            return Claimed::Held { session, lock };
        }
        if let Some(lock) = lock {
            lock.release().await;
        }
        Claimed::Superseded
    }

    /// The client id's lock (`None`: not had in time, the claim goes on
    /// without it), and the other nodes seen holding it meanwhile (other
    /// claimants, whose rows may not have reached this node yet).
    async fn lock(&self, me: &NodeName) -> (Option<LeaseLock>, Vec<NodeName>) {
        let mut key = b"client:".to_vec();
        key.extend_from_slice(self.client_id.as_bytes());
        let started = Instant::now();
        let mut holders = Vec::new();
        loop {
            let wait = match self.table.rlog.lock(key.clone(), LOCK_LEASE).await {
                Ok(lock) => return (Some(lock), holders),
                Err(RlogError::Locked { holder, .. }) => match NodeName::parse(&holder) {
                    Ok(node) => {
                        if node != *me && !holders.contains(&node) {
                            holders.push(node);
                        }
                        LOCK_WAIT
                    }
                    Err(_) => NO_QUORUM_WAIT,
                },
                Err(_) => NO_QUORUM_WAIT,
            };
            if started.elapsed() >= wait {
                if log_allowed(&UNLOCKED_LOGGED) {
                    warn!(client_id = %self.client_id, waited = ?started.elapsed(),
                        "client id lock not had: claiming it unlocked (logged once per 10 s)");
                }
                return (None, holders);
            }
            // 10-49 ms, spread so that claimants do not retry in step.
            let jitter = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos() % 40);
            let pause = Duration::from_millis(10 + u64::from(jitter));
            tokio::time::sleep(pause).await;
        }
    }

    async fn ask(&self, node: &NodeName) -> Result<pb::TakeoverReply, String> {
        let request = pb::TakeoverRequest {
            client_id: self.client_id.as_bytes().clone(),
            clean_start: self.clean_start,
        };
        let reply = self
            .table
            .cluster
            .call(
                node,
                CM_PROCESS,
                Payload::encode(T_TAKEOVER, &request),
                CALL_TIMEOUT,
            )
            .await
            .map_err(|e| e.to_string())?;
        reply
            .decode::<pb::TakeoverReply>(T_TAKEOVER_REPLY)
            .map_err(|e| e.to_string())
    }
}

/// Sends deliveries that reached this node after `client_id` was handed
/// over to `node`, where its new holder is.
pub(crate) fn pass_on(table: &ClientTable, node: &NodeName, client_id: &ByteStr, d: &[Delivery]) {
    let wire = wire::deliveries_to_wire(client_id, d, Instant::now());
    if let Err(cause) = table
        .cluster
        .send(node, CM_PROCESS, Payload::encode(T_HANDED, &wire))
    {
        debug!(%client_id, %node, %cause, "late deliveries not passed on");
    }
}

/// This node's side for other nodes: gives client ids up to their
/// claimants and hands late deliveries to the client ids' holders. A
/// permanent worker, registered as [`CM_PROCESS`] while it runs.
#[derive(Debug)]
pub struct HandoverService {
    shared: Arc<NodeShared>,
}

impl HandoverService {
    /// The child spec of the node's service.
    pub fn child_spec(shared: Arc<NodeShared>) -> ChildSpec {
        ChildSpec::worker("handover", move || HandoverService {
            shared: Arc::clone(&shared),
        })
    }

    fn table(&self) -> Option<&ClientTable> {
        self.shared.cm.tables()
    }

    /// The claimant on `from` asks for `request.client_id`.
    fn give_up(
        &self,
        from: NodeName,
        request: pb::TakeoverRequest,
    ) -> ResponseFuture<pb::TakeoverReply> {
        let Ok(client_id) = ByteStr::from_utf8(request.client_id) else {
            return Box::pin(async { pb::TakeoverReply::default() });
        };
        let holder = match self.shared.cm.give_up(&client_id) {
            GiveUp::NotHere => None,
            GiveUp::Superseded => {
                debug!(%client_id, %from, "client id claimed by another node while connecting here");
                return Box::pin(async {
                    pb::TakeoverReply {
                        found: true,
                        superseded: true,
                        ..Default::default()
                    }
                });
            }
            GiveUp::Holder(holder) => holder.addr.upgrade(),
        };
        let Some(holder) = holder else {
            return Box::pin(async { pb::TakeoverReply::default() });
        };
        Box::pin(async move {
            let handed = holder
                .send(HandOver {
                    clean_start: request.clean_start,
                    successor: from,
                })
                .timeout(HAND_OVER_TIMEOUT)
                .await;
            let now = Instant::now();
            let session: Option<Session> = handed.ok().flatten();
            pb::TakeoverReply {
                found: true,
                session: session.map(|s| wire::session_to_wire(&s.snapshot(now), now)),
                superseded: false,
            }
        })
    }
}

impl Actor for HandoverService {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(table) = self.table() {
            // A previous incarnation's registration may linger.
            table.cluster.unregister(CM_PROCESS);
            if let Err(cause) = table
                .cluster
                .register(CM_PROCESS, ctx.address().recipient())
            {
                warn!(%cause, "girder.cm not registered: client ids cannot be taken over");
            }
            // Other nodes' client rows, to find registrations a split left
            // on both sides (see `outdated`).
            let changes =
                futures::stream::unfold(table.rlog.watch(table.table), |mut rx| async move {
                    loop {
                        match rx.recv().await {
                            Ok(change) => return Some((change, rx)),
                            Err(broadcast::error::RecvError::Lagged(_)) => {}
                            Err(broadcast::error::RecvError::Closed) => return None,
                        }
                    }
                });
            ctx.add_stream(changes);
        }
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if let Some(table) = self.table() {
            table.cluster.unregister(CM_PROCESS);
        }
    }
}

impl StreamHandler<Change> for HandoverService {
    /// Another node's client row settled: if this node still holds that
    /// client id, settled earlier, the split that left both is over and
    /// this node's connection gives the id up (DISCONNECT 0x8E; its session
    /// ends, the newer connection started without it).
    fn handle(&mut self, change: Change, _ctx: &mut Context<Self>) {
        let (Some(table), Some(owner), Some(value)) = (self.table(), change.owner, change.value)
        else {
            return;
        };
        let me = table.cluster.node();
        let Some(stamp) = cm::row_stamp(&value).filter(|_| owner != *me) else {
            return;
        };
        let Ok(client_id) = ByteStr::from_utf8(change.key) else {
            return;
        };
        let Some(holder) = self
            .shared
            .cm
            .outdated_by(&client_id, stamp, &owner, me)
            .and_then(|h| h.addr.upgrade())
        else {
            return;
        };
        info!(%client_id, node = %owner, "client id also held by another node since a split: given up");
        holder.do_send(HandOver {
            clean_start: false,
            successor: owner,
        });
    }

    /// The watch ends only with the replicated tables: nothing to do.
    fn finished(&mut self, _ctx: &mut Context<Self>) {}
}

impl Handler<RemoteMessage> for HandoverService {
    type Result = ();

    fn handle(&mut self, msg: RemoteMessage, ctx: &mut Context<Self>) {
        let RemoteMessage {
            from,
            payload,
            reply,
            ..
        } = msg;
        match payload.type_name.as_str() {
            T_TAKEOVER => {
                let Ok(request) = payload.decode::<pb::TakeoverRequest>(T_TAKEOVER) else {
                    return;
                };
                let answer = self.give_up(from, request);
                ctx.spawn(answer.into_actor(self).map(move |answer, _, _| {
                    if let Some(reply) = reply {
                        reply.reply(Ok(Payload::encode(T_TAKEOVER_REPLY, &answer)));
                    }
                }));
            }
            T_HANDED => {
                let Ok(handed) = payload.decode::<pb::HandedDeliveries>(T_HANDED) else {
                    return;
                };
                match wire::deliveries_from_wire(handed, Instant::now()) {
                    Ok((client_id, deliveries)) => {
                        if let Some(addr) = self
                            .shared
                            .cm
                            .lookup(&client_id)
                            .and_then(|h| h.addr.upgrade())
                        {
                            addr.do_send(Handed(deliveries));
                        }
                    }
                    Err(cause) => debug!(%from, %cause, "late deliveries refused"),
                }
            }
            other => debug!(%from, kind = other, "girder.cm: unknown message"),
        }
    }
}
