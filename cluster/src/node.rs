//! The node's shared state: links by peer, the member list, the name
//! registry, monitors on local names, and faults. Link tasks, connectors and
//! the public handle all go through [`Node`]; its lock is never held across an
//! `.await` nor while a process's `deliver` runs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info};

use crate::fault::Fault;
use crate::handshake::{Local, Peer, RejectReason};
use crate::link::{Link, PendingCall};
use crate::membership::{Changes, Member, MemberStatus, Membership};
use crate::options::{ClusterOptions, NodeName};
use crate::process::{Process, RemoteMessage, ReplyTo};
use crate::wire::{DownReason, Envelope, ReplyResult};
use crate::{dial, ClusterError};

/// Why a link to a node went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeDownReason {
    /// The peer closed the connection or it failed.
    Closed,
    /// Nothing was heard for `heartbeat_misses` intervals.
    HeartbeatTimeout,
    /// The peer restarted (a newer incarnation linked).
    Restarted,
    /// The peer left or was removed, or this node left.
    Left,
    /// Fault injection cut the link.
    Cut,
    /// This node is shutting down.
    Shutdown,
}

/// A change in the set of connected nodes (Erlang's `nodeup` / `nodedown`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// A link to the node is up.
    Up(NodeName),
    /// The link to the node went down.
    Down(NodeName, NodeDownReason),
}

enum Conn {
    /// A handshake holds the slot; `token` identifies it.
    Pending {
        token: u64,
        outgoing: bool,
    },
    Up(Arc<Link>),
}

enum Watcher {
    Remote {
        peer: NodeName,
        mref: u64,
    },
    Local {
        mref: u64,
        tx: oneshot::Sender<DownReason>,
    },
}

#[derive(Default)]
struct State {
    conns: HashMap<NodeName, Conn>,
    members: Membership,
    /// Highest tombstone version of this node that a peer told us about.
    removed_version: u64,
    registry: HashMap<String, Arc<dyn Process>>,
    watchers: HashMap<String, Vec<Watcher>>,
    faults: HashMap<NodeName, Arc<Fault>>,
    connectors: HashSet<NodeName>,
}

/// What a connector should do next.
pub(crate) enum ConnectorStep {
    Stop,
    Wait,
    Dial(String),
}

/// The node.
pub(crate) struct Node {
    pub(crate) me: NodeName,
    pub(crate) opts: ClusterOptions,
    pub(crate) incarnation: u64,
    pub(crate) addr: String,
    pub(crate) started: Instant,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tasks: TaskTracker,
    cookie: Arc<[u8]>,
    state: Mutex<State>,
    events: broadcast::Sender<NodeEvent>,
    topology: watch::Sender<u64>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl Node {
    pub(crate) fn new(
        me: NodeName,
        opts: ClusterOptions,
        incarnation: u64,
        addr: String,
    ) -> Arc<Self> {
        let mut state = State::default();
        state.members.merge(Member {
            node: me.clone(),
            addr: addr.clone(),
            incarnation,
            version: 0,
            status: MemberStatus::Joined,
        });
        Arc::new(Self {
            cookie: Arc::from(opts.cookie.as_bytes()),
            me,
            opts,
            incarnation,
            addr,
            started: Instant::now(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            state: Mutex::new(state),
            events: broadcast::channel(1024).0,
            topology: watch::channel(0).0,
            next_id: AtomicU64::new(1),
        })
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    pub(crate) fn topology(&self) -> watch::Receiver<u64> {
        self.topology.subscribe()
    }

    /// Wakes connectors and joiners to look at the state again.
    pub(crate) fn poke(&self) {
        self.bump_topology();
    }

    fn bump_topology(&self) {
        self.topology.send_modify(|v| *v += 1);
    }

    fn own(state: &State, me: &NodeName) -> Option<Member> {
        state.members.get(me).cloned()
    }

    /// This node's handshake identity.
    pub(crate) fn local(&self) -> Local {
        let member_version = Self::own(&self.state.lock(), &self.me).map_or(0, |m| m.version);
        Local {
            node: self.me.clone(),
            cluster: self.opts.cluster_name.clone(),
            cookie: self.cookie.clone(),
            incarnation: self.incarnation,
            member_version,
            addr: self.addr.clone(),
        }
    }

    /// Whether this node has left (or been removed from) its cluster.
    pub(crate) fn is_left(&self) -> bool {
        !self.state.lock().members.is_joined(&self.me)
    }

    pub(crate) fn fault(&self, peer: &NodeName) -> Arc<Fault> {
        self.state
            .lock()
            .faults
            .entry(peer.clone())
            .or_default()
            .clone()
    }

    fn refuses_links(&self, state: &State, peer: &NodeName) -> bool {
        self.shutdown.is_cancelled()
            || self.opts.discovery == crate::options::Discovery::Singleton
            || !state.members.is_joined(&self.me)
            || state.faults.get(peer).is_some_and(|f| f.is_cut())
    }

    /// Takes the slot for an outgoing handshake; `None` when a link or
    /// handshake exists or links to the peer are refused.
    pub(crate) fn begin_dial(&self, peer: &NodeName) -> Option<u64> {
        let mut state = self.state.lock();
        if self.refuses_links(&state, peer) || state.conns.contains_key(peer) {
            return None;
        }
        let token = self.next_id();
        state.conns.insert(
            peer.clone(),
            Conn::Pending {
                token,
                outgoing: true,
            },
        );
        Some(token)
    }

    /// Decides on a peer that introduced itself to the acceptor. Simultaneous
    /// connects: the outgoing handshake of the lower-named node wins, on both sides.
    pub(crate) fn admit(&self, peer: &Peer, token: u64) -> Result<(), RejectReason> {
        let mut replaced = None;
        {
            let mut state = self.state.lock();
            if self.refuses_links(&state, &peer.node) {
                return Err(RejectReason::Refused);
            }
            if let Some(v) =
                state
                    .members
                    .refuses(&peer.node, peer.incarnation, peer.member_version)
            {
                return Err(RejectReason::Removed(v));
            }
            match state.conns.get(&peer.node) {
                None => {}
                Some(Conn::Pending { outgoing: true, .. }) if self.me > peer.node => {}
                Some(Conn::Pending { .. }) => return Err(RejectReason::Duplicate),
                Some(Conn::Up(old)) if peer.incarnation > old.incarnation => {
                    replaced = Some(old.clone())
                }
                Some(Conn::Up(_)) => return Err(RejectReason::Duplicate),
            }
            state.conns.insert(
                peer.node.clone(),
                Conn::Pending {
                    token,
                    outgoing: false,
                },
            );
        }
        if let Some(old) = replaced {
            self.finish_down(&old, NodeDownReason::Restarted, true);
        }
        Ok(())
    }

    /// Whether a handshake with the peer holds its slot right now.
    pub(crate) fn handshake_pending(&self, peer: &NodeName) -> bool {
        matches!(
            self.state.lock().conns.get(peer),
            Some(Conn::Pending { .. })
        )
    }

    /// Gives up a handshake's slot, if it still holds it.
    pub(crate) fn abort(&self, peer: &NodeName, token: u64) {
        let mut state = self.state.lock();
        if matches!(state.conns.get(peer), Some(Conn::Pending { token: t, .. }) if *t == token) {
            state.conns.remove(peer);
        }
    }

    /// Gives up the slot held by a handshake token, whichever peer it is for.
    pub(crate) fn abort_token(&self, token: u64) {
        let mut state = self.state.lock();
        state
            .conns
            .retain(|_, c| !matches!(c, Conn::Pending { token: t, .. } if *t == token));
    }

    /// A peer told this node it is a tombstone at `version`.
    pub(crate) fn note_removed(&self, version: u64) {
        let mut state = self.state.lock();
        state.removed_version = state.removed_version.max(version);
    }

    /// Turns a finished handshake into a link; `None` if another handshake won.
    pub(crate) fn establish(
        self: &Arc<Self>,
        peer: &Peer,
        token: u64,
    ) -> Option<(Arc<Link>, mpsc::UnboundedReceiver<Envelope>)> {
        let (queue, rx) = mpsc::unbounded_channel();
        let link = Arc::new(Link::new(peer.node.clone(), peer.incarnation, token, queue));
        let (changes, members) = {
            let mut state = self.state.lock();
            match state.conns.get(&peer.node) {
                Some(Conn::Pending { token: t, .. }) if *t == token => {}
                _ => return None,
            }
            state
                .conns
                .insert(peer.node.clone(), Conn::Up(link.clone()));
            let newer = state
                .members
                .get(&peer.node)
                .is_none_or(|m| m.incarnation < peer.incarnation);
            let changes = if newer {
                state.members.merge(Member {
                    node: peer.node.clone(),
                    addr: peer.addr.clone(),
                    incarnation: peer.incarnation,
                    version: peer.member_version,
                    status: MemberStatus::Joined,
                })
            } else {
                Changes::default()
            };
            (changes, state.members.all().cloned().collect())
        };
        info!(node = %peer.node, "nodeup");
        let _ = link.queue.send(Envelope::Members(members));
        let _ = self.events.send(NodeEvent::Up(peer.node.clone()));
        self.bump_topology();
        self.act(changes);
        Some((link, rx))
    }

    /// The link task ended.
    pub(crate) fn link_down(&self, link: &Arc<Link>, reason: NodeDownReason) {
        let current = {
            let mut state = self.state.lock();
            let current =
                matches!(state.conns.get(&link.peer), Some(Conn::Up(l)) if Arc::ptr_eq(l, link));
            if current {
                state.conns.remove(&link.peer);
            }
            current
        };
        self.finish_down(link, reason, current);
    }

    fn finish_down(&self, link: &Arc<Link>, reason: NodeDownReason, announce: bool) {
        link.close(reason);
        {
            let mut state = self.state.lock();
            for watchers in state.watchers.values_mut() {
                watchers
                    .retain(|w| !matches!(w, Watcher::Remote { peer, .. } if *peer == link.peer));
            }
        }
        link.fail_all();
        if announce {
            info!(node = %link.peer, ?reason, "nodedown");
            let _ = self.events.send(NodeEvent::Down(link.peer.clone(), reason));
            self.bump_topology();
        }
    }

    /// The established link to a node.
    pub(crate) fn link_to(&self, node: &NodeName) -> Result<Arc<Link>, ClusterError> {
        match self.state.lock().conns.get(node) {
            Some(Conn::Up(link)) => Ok(link.clone()),
            _ => Err(ClusterError::NodeDown(node.clone())),
        }
    }

    /// Every established link.
    pub(crate) fn links(&self) -> Vec<Arc<Link>> {
        let state = self.state.lock();
        state
            .conns
            .values()
            .filter_map(|c| match c {
                Conn::Up(l) => Some(l.clone()),
                Conn::Pending { .. } => None,
            })
            .collect()
    }

    // ---- membership ----

    /// Applies what a merge changed: gossip first (so that a removed node
    /// hears of it), then close links to tombstones, then dial new members.
    pub(crate) fn act(self: &Arc<Self>, changes: Changes) {
        if changes.any {
            self.gossip();
        }
        for node in &changes.left {
            if *node == self.me {
                info!("this node left the cluster");
                for link in self.links() {
                    link.drain(NodeDownReason::Left);
                }
            } else if let Ok(link) = self.link_to(node) {
                link.drain(NodeDownReason::Left);
            }
        }
        if !changes.left.is_empty() || !changes.joined.is_empty() {
            self.bump_topology();
        }
        for node in changes.joined {
            self.ensure_connector(&node);
        }
    }

    /// Sends the whole member list on every link.
    pub(crate) fn gossip(&self) {
        let members: Vec<Member> = self.state.lock().members.all().cloned().collect();
        for link in self.links() {
            let _ = link.queue.send(Envelope::Members(members.clone()));
        }
    }

    pub(crate) fn merge_members(self: &Arc<Self>, list: Vec<Member>) {
        let changes = self.state.lock().members.merge_all(list);
        self.act(changes);
    }

    /// Writes this node's own entry (join or leave).
    pub(crate) fn set_own_status(self: &Arc<Self>, status: MemberStatus) {
        let changes = {
            let mut state = self.state.lock();
            let Some(mut own) = Self::own(&state, &self.me) else {
                return;
            };
            if own.status == status {
                return;
            }
            own.version = own.version.max(state.removed_version) + 1;
            own.status = status;
            state.members.merge(own)
        };
        self.act(changes);
    }

    /// Writes a tombstone over another member.
    pub(crate) fn force_leave(self: &Arc<Self>, node: &NodeName) -> Result<(), ClusterError> {
        if *node == self.me {
            return Err(ClusterError::SelfTarget(node.clone()));
        }
        let changes = {
            let mut state = self.state.lock();
            let Some(mut entry) = state
                .members
                .get(node)
                .cloned()
                .filter(|m| m.status == MemberStatus::Joined)
            else {
                return Err(ClusterError::NotAMember(node.clone()));
            };
            entry.version += 1;
            entry.status = MemberStatus::Left;
            state.members.merge(entry)
        };
        self.act(changes);
        Ok(())
    }

    /// Members with a tombstone: left or removed (and not joined again).
    pub(crate) fn removed(&self) -> Vec<NodeName> {
        let state = self.state.lock();
        state
            .members
            .all()
            .filter(|m| m.status == MemberStatus::Left)
            .map(|m| m.node.clone())
            .collect()
    }

    /// `(running, stopped)`: joined members with a link (and this node), and without.
    pub(crate) fn status(&self) -> (Vec<NodeName>, Vec<NodeName>) {
        let state = self.state.lock();
        let (mut running, mut stopped) = (Vec::new(), Vec::new());
        for m in state.members.joined() {
            let up = m.node == self.me || matches!(state.conns.get(&m.node), Some(Conn::Up(_)));
            if up {
                running.push(m.node.clone())
            } else {
                stopped.push(m.node.clone())
            }
        }
        (running, stopped)
    }

    /// Whether discovery should dial this node: unknown and unlinked.
    pub(crate) fn should_discover(&self, node: &NodeName) -> bool {
        let state = self.state.lock();
        *node != self.me
            && state.members.get(node).is_none()
            && !state.conns.contains_key(node)
            && !self.refuses_links(&state, node)
    }

    // ---- connectors ----

    pub(crate) fn ensure_connector(self: &Arc<Self>, peer: &NodeName) {
        if *peer == self.me || !self.state.lock().connectors.insert(peer.clone()) {
            return;
        }
        self.tasks
            .spawn(dial::connector(self.clone(), peer.clone()));
    }

    pub(crate) fn connector_step(&self, peer: &NodeName) -> ConnectorStep {
        let mut state = self.state.lock();
        let joined = state.members.is_joined(peer) && state.members.is_joined(&self.me);
        if self.shutdown.is_cancelled() || !joined {
            state.connectors.remove(peer);
            return ConnectorStep::Stop;
        }
        if state.conns.contains_key(peer) || self.refuses_links(&state, peer) {
            return ConnectorStep::Wait;
        }
        let addr = state
            .members
            .get(peer)
            .map_or_else(|| peer.default_addr(), |m| m.addr.clone());
        ConnectorStep::Dial(addr)
    }

    // ---- registry and dispatch ----

    pub(crate) fn register(
        &self,
        name: &str,
        process: Arc<dyn Process>,
    ) -> Result<(), ClusterError> {
        let mut state = self.state.lock();
        if state.registry.contains_key(name) {
            return Err(ClusterError::AlreadyRegistered(name.to_owned()));
        }
        state.registry.insert(name.to_owned(), process);
        Ok(())
    }

    /// Removes a name; its monitors get `Down { Unregistered }`.
    pub(crate) fn unregister(&self, name: &str) -> bool {
        let (found, watchers) = {
            let mut state = self.state.lock();
            (
                state.registry.remove(name).is_some(),
                state.watchers.remove(name).unwrap_or_default(),
            )
        };
        for w in watchers {
            match w {
                Watcher::Remote { peer, mref } => {
                    if let Ok(link) = self.link_to(&peer) {
                        let _ = link.queue.send(Envelope::Down {
                            mref,
                            reason: DownReason::Unregistered,
                        });
                    }
                }
                Watcher::Local { tx, .. } => {
                    let _ = tx.send(DownReason::Unregistered);
                }
            }
        }
        found
    }

    /// Hands a message to a local name; gives it back if there is none.
    pub(crate) fn deliver(&self, name: &str, msg: RemoteMessage) -> Result<(), RemoteMessage> {
        let process = self.state.lock().registry.get(name).cloned();
        let Some(process) = process else {
            return Err(msg);
        };
        process.deliver(msg).inspect_err(|_| {
            debug!(name, "registered process is gone, unregistering it");
            self.unregister(name);
        })
    }

    /// Watches a local name: `Err(NoProc)` if it is not registered.
    pub(crate) fn watch_local(
        &self,
        name: &str,
        mref: u64,
    ) -> Result<oneshot::Receiver<DownReason>, DownReason> {
        let mut state = self.state.lock();
        if !state.registry.contains_key(name) {
            return Err(DownReason::NoProc);
        }
        let (tx, rx) = oneshot::channel();
        state
            .watchers
            .entry(name.to_owned())
            .or_default()
            .push(Watcher::Local { mref, tx });
        Ok(rx)
    }

    pub(crate) fn unwatch_local(&self, name: &str, mref: u64) {
        if let Some(ws) = self.state.lock().watchers.get_mut(name) {
            ws.retain(|w| !matches!(w, Watcher::Local { mref: m, .. } if *m == mref));
        }
    }

    /// Handles one envelope from a peer, in link order.
    pub(crate) fn dispatch(self: &Arc<Self>, link: &Arc<Link>, env: Envelope) {
        match env {
            Envelope::Tick => {}
            Envelope::Cast {
                to,
                reply_to,
                payload,
            } => {
                let msg = RemoteMessage {
                    from: link.peer.clone(),
                    reply_to_name: reply_to,
                    payload,
                    reply: None,
                };
                if self.deliver(&to, msg).is_err() {
                    debug!(from = %link.peer, name = %to, "cast to an unregistered name dropped");
                }
            }
            Envelope::Call { id, to, payload } => {
                let reply = ReplyTo::remote(link.queue.clone(), id);
                let msg = RemoteMessage {
                    from: link.peer.clone(),
                    reply_to_name: None,
                    payload,
                    reply: Some(reply),
                };
                if let Err(msg) = self.deliver(&to, msg) {
                    if let Some(reply) = msg.reply {
                        reply.forget();
                    }
                    let _ = link.queue.send(Envelope::Reply {
                        id,
                        result: ReplyResult::NoSuchName,
                    });
                }
            }
            Envelope::Reply { id, result } => {
                if let Some(PendingCall { name, tx }) = link.calls.lock().remove(&id) {
                    let result = match result {
                        ReplyResult::Ok(p) => Ok(p),
                        ReplyResult::NoSuchName => Err(ClusterError::NoSuchName {
                            node: link.peer.clone(),
                            name,
                        }),
                        ReplyResult::Failed(e) => Err(ClusterError::Remote(e)),
                    };
                    let _ = tx.send(result);
                }
            }
            Envelope::Monitor { mref, name } => {
                let mut state = self.state.lock();
                if state.registry.contains_key(&name) {
                    let w = Watcher::Remote {
                        peer: link.peer.clone(),
                        mref,
                    };
                    state.watchers.entry(name).or_default().push(w);
                } else {
                    let _ = link.queue.send(Envelope::Down {
                        mref,
                        reason: DownReason::NoProc,
                    });
                }
            }
            Envelope::Demonitor { mref } => {
                let mut state = self.state.lock();
                for ws in state.watchers.values_mut() {
                    ws.retain(|w| !matches!(w, Watcher::Remote { peer, mref: m } if *m == mref && *peer == link.peer));
                }
            }
            Envelope::Down { mref, reason } => {
                if let Some(tx) = link.monitors.lock().remove(&mref) {
                    let _ = tx.send(reason);
                }
            }
            Envelope::Members(list) => self.merge_members(list),
        }
    }

    /// Stops everything: links close, connectors and discovery end.
    pub(crate) fn stop(&self) {
        self.shutdown.cancel();
        for link in self.links() {
            link.close(NodeDownReason::Shutdown);
        }
        self.bump_topology();
    }
}
