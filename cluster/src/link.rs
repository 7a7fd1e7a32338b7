//! One link: the handshake driver and, once established, the reader and the
//! batching writer over a bidirectional gRPC stream.
//!
//! ```text
//!   senders ──► queue (unbounded, ordered) ──► writer: drain what is ready,
//!                                               one Batch frame, one write
//!   reader ◄── Batch frames ◄── gRPC stream ◄── peer's writer
//!     └─► Node::dispatch, envelope by envelope, in order
//! ```
//!
//! The writer sends a `Tick` when idle for one heartbeat interval; the reader
//! declares the link down after `heartbeat_misses` intervals of silence.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use girder_proto::dist::{frame, Frame};
use parking_lot::Mutex;
use rand::RngCore;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::fault::Fault;
use crate::handshake::{Handshake, HandshakeError, HsMsg, Input, Peer, RejectReason, NONCE_LEN};
use crate::node::{Node, NodeDownReason};
use crate::process::Payload;
use crate::wire::{self, DownReason, Envelope};
use crate::ClusterError;

/// Most envelopes in one frame.
const MAX_BATCH: usize = 4096;
/// Most payload bytes in one frame (a frame may exceed it by one payload).
const MAX_BATCH_BYTES: usize = 1 << 20;
/// The largest frame a link accepts (tonic's default is 4 MiB).
pub(crate) const MAX_FRAME: usize = 256 << 20;

/// The two halves of a link's stream, the same for dialer and acceptor.
pub(crate) struct LinkIo {
    pub(crate) tx: mpsc::Sender<Frame>,
    pub(crate) rx: BoxStream<'static, Result<Frame, tonic::Status>>,
}

/// A call waiting for its reply.
pub(crate) struct PendingCall {
    pub(crate) name: String,
    pub(crate) tx: oneshot::Sender<Result<Payload, ClusterError>>,
}

/// An established link to one peer.
pub(crate) struct Link {
    pub(crate) peer: NodeName,
    pub(crate) incarnation: u64,
    pub(crate) token: u64,
    /// Everything sent to the peer goes through here, so order is kept.
    pub(crate) queue: mpsc::UnboundedSender<Envelope>,
    pub(crate) calls: Mutex<HashMap<u64, PendingCall>>,
    pub(crate) monitors: Mutex<HashMap<u64, oneshot::Sender<DownReason>>>,
    /// Cancelled when the link is down: tasks stop, nothing more is accepted.
    pub(crate) closed: CancellationToken,
    /// Cancelled to close gracefully: the writer flushes the queue, then stops.
    drain: CancellationToken,
    reason: OnceLock<NodeDownReason>,
}

use crate::options::NodeName;

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("peer", &self.peer)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl Link {
    pub(crate) fn new(
        peer: NodeName,
        incarnation: u64,
        token: u64,
        queue: mpsc::UnboundedSender<Envelope>,
    ) -> Self {
        Self {
            peer,
            incarnation,
            token,
            queue,
            calls: Mutex::default(),
            monitors: Mutex::default(),
            closed: CancellationToken::new(),
            drain: CancellationToken::new(),
            reason: OnceLock::new(),
        }
    }

    /// Closes now.
    pub(crate) fn close(&self, reason: NodeDownReason) {
        let _ = self.reason.set(reason);
        self.closed.cancel();
    }

    /// Closes once what is queued has been written.
    pub(crate) fn drain(&self, reason: NodeDownReason) {
        let _ = self.reason.set(reason);
        self.drain.cancel();
    }

    fn reason_or(&self, fallback: NodeDownReason) -> NodeDownReason {
        self.reason.get().copied().unwrap_or(fallback)
    }

    /// Fails every pending call with `NodeDown` and fires every monitor with
    /// `NoConnection`. Runs after `closed` is cancelled, so nothing is added later.
    pub(crate) fn fail_all(&self) {
        for (_, call) in self.calls.lock().drain() {
            let _ = call.tx.send(Err(ClusterError::NodeDown(self.peer.clone())));
        }
        for (_, tx) in self.monitors.lock().drain() {
            let _ = tx.send(DownReason::NoConnection);
        }
    }
}

pub(crate) fn nonce() -> Vec<u8> {
    let mut n = vec![0; NONCE_LEN];
    rand::rng().fill_bytes(&mut n);
    n
}

/// Runs a handshake to its end. On the acceptor, admission is asked of the node
/// (which takes the peer's slot under `token`).
pub(crate) async fn drive(
    node: &Node,
    mut hs: Handshake,
    io: &mut LinkIo,
    token: u64,
    fault: Option<&Fault>,
) -> Result<Peer, HandshakeError> {
    let limit = node.opts.connect_timeout;
    loop {
        match hs {
            Handshake::Established(peer) => return Ok(peer),
            Handshake::Failed(e) => return Err(e),
            Handshake::AwaitAdmission { ref peer, .. } => {
                let decision = node.admit(peer, token);
                let (next, out) = hs.next(Input::Admission(decision));
                hs = next;
                send(&io.tx, out, fault).await?;
                continue;
            }
            _ => {}
        }
        let frame = match tokio::time::timeout(limit, io.rx.next()).await {
            Err(_) => return Err(HandshakeError::Timeout),
            Ok(None | Some(Err(_))) => return Err(HandshakeError::Closed),
            Ok(Some(Ok(frame))) => frame,
        };
        let msg = HsMsg::try_from(frame)?;
        let (next, out) = hs.next(Input::Msg(msg));
        hs = next;
        send(&io.tx, out, fault).await?;
    }
}

async fn send(
    tx: &mpsc::Sender<Frame>,
    msg: Option<HsMsg>,
    fault: Option<&Fault>,
) -> Result<(), HandshakeError> {
    let Some(msg) = msg else { return Ok(()) };
    if fault.is_some_and(Fault::drops) {
        return Ok(());
    }
    tx.send(msg.into())
        .await
        .map_err(|_| HandshakeError::Closed)
}

/// Accepts a link on the distribution listener.
pub(crate) async fn accept(node: Arc<Node>, mut io: LinkIo, remote: Option<SocketAddr>) {
    let token = node.next_id();
    let hs = Handshake::accept(node.local(), nonce());
    match drive(&node, hs, &mut io, token, None).await {
        Ok(peer) => run(node, peer, token, io).await,
        Err(e) => {
            match &e {
                HandshakeError::Rejected(RejectReason::Duplicate) => {
                    debug!(?remote, "duplicate link refused")
                }
                HandshakeError::Rejected(r) => debug!(?remote, %r, "link refused"),
                _ => warn!(?remote, cause = %e, "peer failed the handshake"),
            }
            // Frees the slot if admission took it; harmless otherwise.
            node.abort_token(token);
        }
    }
}

/// Runs an established link until it goes down.
pub(crate) async fn run(node: Arc<Node>, peer: Peer, token: u64, io: LinkIo) {
    let Some((link, queue)) = node.establish(&peer, token) else {
        debug!(node = %peer.node, "handshake finished after another link won");
        return;
    };
    let fault = node.fault(&link.peer);
    let LinkIo { tx, rx } = io;
    let mut reader = Box::pin(read_loop(node.clone(), link.clone(), rx));
    let writer = write_loop(&node, &link, queue, tx, &fault);
    let reason = tokio::select! {
        r = &mut reader => r,
        r = writer => {
            // A graceful close: give the peer a moment to read the last frames and hang up.
            let _ = tokio::time::timeout(Duration::from_secs(1), &mut reader).await;
            r
        }
        () = link.closed.cancelled() => link.reason_or(NodeDownReason::Closed),
    };
    node.link_down(&link, link.reason_or(reason));
}

async fn read_loop(
    node: Arc<Node>,
    link: Arc<Link>,
    mut rx: BoxStream<'static, Result<Frame, tonic::Status>>,
) -> NodeDownReason {
    let limit = node.opts.heartbeat_interval * node.opts.heartbeat_misses;
    loop {
        let frame = match tokio::time::timeout(limit, rx.next()).await {
            Err(_) => return NodeDownReason::HeartbeatTimeout,
            Ok(None) => return NodeDownReason::Closed,
            Ok(Some(Err(status))) => {
                debug!(node = %link.peer, %status, "link stream failed");
                return NodeDownReason::Closed;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Some(frame::Kind::Batch(batch)) = frame.kind else {
            warn!(node = %link.peer, "non-batch frame on an established link");
            return NodeDownReason::Closed;
        };
        for env in batch.envelopes {
            match wire::envelope_from(env) {
                Ok(Some(env)) => node.dispatch(&link, env),
                Ok(None) => {}
                Err(e) => {
                    warn!(node = %link.peer, cause = %e, "malformed envelope");
                    return NodeDownReason::Closed;
                }
            }
        }
    }
}

fn weight(e: &Envelope) -> usize {
    match e {
        Envelope::Cast { payload, .. } | Envelope::Call { payload, .. } => payload.data.len() + 16,
        Envelope::Reply {
            result: wire::ReplyResult::Ok(p),
            ..
        } => p.data.len() + 16,
        _ => 16,
    }
}

async fn write_loop(
    node: &Node,
    link: &Link,
    mut queue: mpsc::UnboundedReceiver<Envelope>,
    tx: mpsc::Sender<Frame>,
    fault: &Fault,
) -> NodeDownReason {
    let tick = node.opts.heartbeat_interval;
    loop {
        let first = tokio::select! {
            biased;
            e = queue.recv() => match e {
                Some(e) => Some(e),
                None => return NodeDownReason::Closed,
            },
            () = link.drain.cancelled() => None,
            () = tokio::time::sleep(tick) => Some(Envelope::Tick),
        };
        let draining = first.is_none();
        let mut bytes = first.as_ref().map_or(0, weight);
        let mut batch: Vec<Envelope> = first.into_iter().collect();
        while batch.len() < MAX_BATCH && (bytes < MAX_BATCH_BYTES || draining) {
            match queue.try_recv() {
                Ok(e) => {
                    bytes += weight(&e);
                    batch.push(e);
                }
                Err(_) => break,
            }
        }
        if !batch.is_empty() && !fault.drops() {
            if let Some(d) = fault.delay() {
                tokio::time::sleep(d).await;
            }
            if tx.send(wire::batch(batch)).await.is_err() {
                return NodeDownReason::Closed;
            }
        }
        if draining && queue.is_empty() {
            return link.reason_or(NodeDownReason::Left);
        }
    }
}
