//! The public face of the distribution layer: [`start`] and [`ClusterHandle`].

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, oneshot};
use tokio_stream::wrappers::TcpListenerStream;
use tracing::info;

use crate::fault::FaultAction;
use crate::link::{Link, PendingCall};
use crate::membership::MemberStatus;
use crate::node::{Node, NodeEvent};
use crate::options::{ClusterOptions, NodeName, Target};
use crate::process::{Payload, Process, RemoteMessage, ReplyTo};
use crate::server::DistService;
use crate::wire::{DownReason, Envelope};
use crate::{builtin, dial, ClusterError};

/// Starts the distribution layer: binds `dist_bind`, serves links, starts
/// discovery, registers the built-in names. Call it inside a tokio runtime
/// (an actix system is one).
pub async fn start(options: ClusterOptions) -> Result<ClusterHandle, ClusterError> {
    let me = options.validate()?;
    let mut builder = tonic::transport::Server::builder().tcp_nodelay(true);
    if let Some(tls) = &options.tls {
        install_crypto_provider();
        let bad = |e: tonic::transport::Error| {
            ClusterError::InvalidOption(format!("cluster.dist.tls: {e}"))
        };
        builder = builder
            .tls_config(tls.server_config(options.connect_timeout))
            .map_err(bad)?;
        // The dialer's configuration is made per peer; build one now so that
        // a key that does not match its certificate fails here, not at a dial.
        tonic::transport::Endpoint::from_static("https://localhost")
            .tls_config(tls.client_config(&me, options.connect_timeout))
            .map_err(bad)?;
    }
    let listener = tokio::net::TcpListener::bind(options.dist_bind)
        .await
        .map_err(|source| ClusterError::Bind {
            addr: options.dist_bind,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| ClusterError::Bind {
        addr: options.dist_bind,
        source,
    })?;
    let addr = match &options.advertise {
        Some(a) => a.clone(),
        None if bound.ip().is_unspecified() => format!("{}:{}", me.host(), bound.port()),
        None => bound.to_string(),
    };
    let incarnation = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let node = Node::new(me, options, incarnation, addr);
    let shutdown = node.shutdown.clone();
    let server = builder
        .add_service(DistService::server(node.clone()))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            shutdown.cancelled().await
        });
    node.tasks.spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(cause = %e, "distribution listener failed");
        }
    });
    node.tasks.spawn(dial::discovery(node.clone()));
    if let Some(after) = node.opts.autoclean {
        node.tasks.spawn(dial::autoclean(node.clone(), after));
    }
    let handle = ClusterHandle { node, bound };
    builtin::register(&handle)?;
    info!(node = %handle.node(), addr = %handle.node.addr, "distribution listener started");
    Ok(handle)
}

/// rustls needs a process-wide crypto provider when both of its backends are
/// linked in; installs ring's unless the program chose one.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: one is in place.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// What `girder ctl cluster status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// This node.
    pub node: NodeName,
    /// `cluster.name`.
    pub cluster: String,
    /// Joined members with a live link, and this node (unless it left).
    pub running: Vec<NodeName>,
    /// Joined members without a live link.
    pub stopped: Vec<NodeName>,
}

/// A handle on the running distribution layer; clones share it.
#[derive(Clone, Debug)]
pub struct ClusterHandle {
    node: Arc<Node>,
    bound: SocketAddr,
}

impl ClusterHandle {
    /// This node's name.
    pub fn node(&self) -> &NodeName {
        &self.node.me
    }

    /// The address the distribution listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.bound
    }

    /// `cluster.name`.
    pub fn cluster_name(&self) -> &str {
        &self.node.opts.cluster_name
    }

    /// Time since start.
    pub fn uptime(&self) -> Duration {
        self.node.started.elapsed()
    }

    /// Registers a process under a name, reachable from every node.
    pub fn register(&self, name: &str, process: impl Process) -> Result<(), ClusterError> {
        self.node.register(name, Arc::new(process))
    }

    /// Unregisters a name; monitors of it fire with [`DownReason::Unregistered`].
    pub fn unregister(&self, name: &str) -> bool {
        self.node.unregister(name)
    }

    /// Nodeup / nodedown events of every peer (Erlang's `net_kernel:monitor_nodes`).
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.node.subscribe()
    }

    /// Nodes with a live link.
    pub fn connected(&self) -> Vec<NodeName> {
        self.node.links().iter().map(|l| l.peer.clone()).collect()
    }

    /// The member list as this node sees it.
    pub fn status(&self) -> ClusterStatus {
        let (running, stopped) = self.node.status();
        ClusterStatus {
            node: self.node.me.clone(),
            cluster: self.node.opts.cluster_name.clone(),
            running,
            stopped,
        }
    }

    /// Members that left or were removed (tombstones in the member list),
    /// this node included when it left.
    pub fn removed(&self) -> Vec<NodeName> {
        self.node.removed()
    }

    /// Sends a message to `name` on `node` (this node included). Fire and
    /// forget, like Erlang's `!`: a missing name drops it silently; order is
    /// kept between any two processes.
    pub fn send(&self, node: &NodeName, name: &str, payload: Payload) -> Result<(), ClusterError> {
        self.send_from(node, name, None, payload)
    }

    /// [`send`](Self::send), naming the local process answers should go to.
    pub fn send_from(
        &self,
        node: &NodeName,
        name: &str,
        reply_to: Option<&str>,
        payload: Payload,
    ) -> Result<(), ClusterError> {
        let reply_to = reply_to.map(str::to_owned);
        if *node == self.node.me {
            let msg = RemoteMessage {
                from: node.clone(),
                reply_to_name: reply_to,
                payload,
                reply: None,
            };
            let _ = self.node.deliver(name, msg);
            return Ok(());
        }
        let link = self.node.link_to(node)?;
        link.queue
            .send(Envelope::Cast {
                to: name.to_owned(),
                reply_to,
                payload,
            })
            .map_err(|_| ClusterError::NodeDown(node.clone()))
    }

    /// Calls `name` on `node` and waits for the reply: `Timeout` when none
    /// comes in time, `NodeDown` when the link goes down first, `NoSuchName`
    /// when nothing is registered under the name.
    pub async fn call(
        &self,
        node: &NodeName,
        name: &str,
        payload: Payload,
        timeout: Duration,
    ) -> Result<Payload, ClusterError> {
        let (tx, rx) = oneshot::channel();
        let timed_out = || ClusterError::Timeout {
            node: node.clone(),
            name: name.to_owned(),
            timeout,
        };
        if *node == self.node.me {
            let msg = RemoteMessage {
                from: node.clone(),
                reply_to_name: None,
                payload,
                reply: Some(ReplyTo::local(tx)),
            };
            if let Err(msg) = self.node.deliver(name, msg) {
                if let Some(r) = msg.reply {
                    r.forget();
                }
                return Err(ClusterError::NoSuchName {
                    node: node.clone(),
                    name: name.to_owned(),
                });
            }
            return match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err(ClusterError::Remote("the process went away".into())),
                Err(_) => Err(timed_out()),
            };
        }
        let link = self.node.link_to(node)?;
        let id = self.node.next_id();
        link.calls.lock().insert(
            id,
            PendingCall {
                name: name.to_owned(),
                tx,
            },
        );
        if link.closed.is_cancelled()
            || link
                .queue
                .send(Envelope::Call {
                    id,
                    to: name.to_owned(),
                    payload,
                })
                .is_err()
        {
            link.calls.lock().remove(&id);
            return Err(ClusterError::NodeDown(node.clone()));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ClusterError::NodeDown(node.clone())),
            Err(_) => {
                link.calls.lock().remove(&id);
                Err(timed_out())
            }
        }
    }

    /// How many monitors this node holds on its link to `node` (0 without a
    /// link): each fires `NoConnection` when the link goes.
    pub fn monitors_on_link(&self, node: &NodeName) -> usize {
        self.node
            .link_to(node)
            .map_or(0, |link| link.monitors.lock().len())
    }

    /// Monitors `name` on `node`: the returned future resolves with the reason
    /// when the process goes away, at once with `NoConnection` if the node is
    /// down and `NoProc` if the name is not registered. Dropping it demonitors.
    pub fn monitor(&self, node: &NodeName, name: &str) -> RemoteMonitor {
        let mref = self.node.next_id();
        let fired = |reason| {
            let (tx, rx) = oneshot::channel();
            let _ = tx.send(reason);
            RemoteMonitor { rx, cancel: None }
        };
        if *node == self.node.me {
            return match self.node.watch_local(name, mref) {
                Ok(rx) => RemoteMonitor {
                    rx,
                    cancel: Some(Cancel::Local(
                        Arc::downgrade(&self.node),
                        name.to_owned(),
                        mref,
                    )),
                },
                Err(reason) => fired(reason),
            };
        }
        let Ok(link) = self.node.link_to(node) else {
            return fired(DownReason::NoConnection);
        };
        let (tx, rx) = oneshot::channel();
        link.monitors.lock().insert(mref, tx);
        if link.closed.is_cancelled()
            || link
                .queue
                .send(Envelope::Monitor {
                    mref,
                    name: name.to_owned(),
                })
                .is_err()
        {
            link.monitors.lock().remove(&mref);
            return fired(DownReason::NoConnection);
        }
        RemoteMonitor {
            rx,
            cancel: Some(Cancel::Remote(Arc::downgrade(&link), mref)),
        }
    }

    /// Links to the cluster that `target` (`name@host` or `name@host:port`)
    /// belongs to, and waits for the link. A node that had left joins again.
    pub async fn join(&self, target: &str) -> Result<(), ClusterError> {
        let target = Target::parse(target)?;
        if self.node.opts.discovery == crate::options::Discovery::Singleton {
            return Err(ClusterError::Singleton);
        }
        if target.node == self.node.me {
            return Err(ClusterError::SelfTarget(target.node));
        }
        self.node.set_own_status(MemberStatus::Joined);
        let deadline = tokio::time::Instant::now() + self.node.opts.connect_timeout;
        let mut topology = self.node.topology();
        loop {
            topology.borrow_and_update();
            if self.node.link_to(&target.node).is_ok() {
                return Ok(());
            }
            // A handshake already under way (discovery dialing the same seed)
            // is waited out, then dialed again, so that its failure reaches
            // the caller as the real cause rather than a timeout.
            if !self.node.handshake_pending(&target.node) {
                dial::dial(&self.node, &target.node, &target.addr).await?;
                if self.node.link_to(&target.node).is_ok() {
                    return Ok(());
                }
            }
            let poll = tokio::time::Instant::now() + Duration::from_millis(20);
            if tokio::time::timeout_at(deadline.min(poll), topology.changed())
                .await
                .is_err()
                && tokio::time::Instant::now() >= deadline
            {
                return Err(ClusterError::NodeDown(target.node));
            }
        }
    }

    /// Leaves the cluster: every member is told, then the links close, and
    /// neither discovery nor reconnects bring this node back until `join`.
    pub fn leave(&self) {
        self.node.set_own_status(MemberStatus::Left);
    }

    /// Removes another node from the cluster (it is told if it is reachable).
    pub fn force_leave(&self, node: &NodeName) -> Result<(), ClusterError> {
        self.node.force_leave(node)
    }

    /// Injects a fault on the link to `peer`; needs `fault_injection`.
    pub fn inject_fault(&self, peer: &NodeName, action: FaultAction) -> Result<(), ClusterError> {
        if !self.node.opts.fault_injection {
            return Err(ClusterError::FaultInjectionDisabled);
        }
        self.node.fault(peer).apply(action);
        if action == FaultAction::Cut {
            if let Ok(link) = self.node.link_to(peer) {
                link.close(crate::NodeDownReason::Cut);
            }
        }
        self.node.poke();
        Ok(())
    }

    pub(crate) fn shutdown_token(&self) -> tokio_util::sync::CancellationToken {
        self.node.shutdown.clone()
    }

    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.node.tasks.spawn(task);
    }

    /// Whether debug names and fault injection are on.
    pub fn fault_injection(&self) -> bool {
        self.node.opts.fault_injection
    }

    /// Closes every link, stops the listener, connectors and discovery, and
    /// waits (at most five seconds) for their tasks to end.
    pub async fn shutdown(&self) {
        self.node.stop();
        self.node.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.node.tasks.wait()).await;
    }
}

enum Cancel {
    Remote(Weak<Link>, u64),
    Local(Weak<Node>, String, u64),
}

/// A monitor of a process on some node; a future of its [`DownReason`].
pub struct RemoteMonitor {
    rx: oneshot::Receiver<DownReason>,
    cancel: Option<Cancel>,
}

impl std::fmt::Debug for RemoteMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RemoteMonitor")
    }
}

impl Future for RemoteMonitor {
    type Output = DownReason;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<DownReason> {
        Pin::new(&mut self.rx).poll(cx).map(|r| {
            self.cancel = None;
            r.unwrap_or(DownReason::NoConnection)
        })
    }
}

impl Drop for RemoteMonitor {
    fn drop(&mut self) {
        match self.cancel.take() {
            Some(Cancel::Remote(link, mref)) => {
                if let Some(link) = link.upgrade() {
                    if link.monitors.lock().remove(&mref).is_some() {
                        let _ = link.queue.send(Envelope::Demonitor { mref });
                    }
                }
            }
            Some(Cancel::Local(node, name, mref)) => {
                if let Some(node) = node.upgrade() {
                    node.unwatch_local(&name, mref);
                }
            }
            None => {}
        }
    }
}
