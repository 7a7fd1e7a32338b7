//! A running node: its shared state and its supervision tree.
//!
//! The distribution layer, the replicated tables and the admin endpoint
//! start first ([`ClusterSide`](crate::cluster::ClusterSide)), then the
//! tree, whose `cluster` subtree watches their long-lived tasks:
//!
//! ```text
//! root (one_for_one)
//! ├─ cluster (rest_for_one)        see `cluster::supervise`
//! │  ├─ rlog (one_for_one)         a transient worker per replication task
//! │  └─ admin                      the admin endpoint
//! ├─ router (one_for_one)
//! │  └─ shard:0..N                 permanent: the route rows of one index
//! │                                shard each (see `router::shard`)
//! ├─ route_follower                permanent: the other nodes' route rows
//! │                                into the router (see `router::follow`)
//! ├─ retainer                      with `retainer.msg_clear_interval`
//! ├─ sys                           with a `sys_topics` interval: `$SYS`
//! │                                messages (see `sys`)
//! ├─ handover                      `girder.cm`: gives client ids up to
//! │                                other nodes (see `handover`)
//! └─ listeners (one_for_one)
//!    └─ listener:tcp:<name> (rest_for_one)
//!       ├─ connections (dynamic)   one temporary channel actor per client
//!       └─ acceptor:0..N-1         permanent, `acceptors` of them
//! ```
//!
//! Listening sockets are bound before the tree starts, with their
//! `tcp_options`, so a start-up error (a port in use, a bad address) is
//! reported before anything runs. Each listener's channel actors share its
//! [`ListenerContext`], built here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use girder_broker::channel::ChannelConfig;
use girder_config::Config;
use girder_supervision::{
    ArbiterPool, ExitReason, Strategy, SupFlags, SupervisorRef, SupervisorSpec,
};
use tracing::info;

use crate::channel::{ChannelActor, Subscriber};
use crate::cluster::{ClusterSide, CLIENTS, RETAINED, ROUTES};
use crate::cm::{ClientRegistry, ClientTable};
use crate::listener::{BoundListener, ListenerContext, ListenerSettings};
use crate::metrics::Metrics;
use crate::router::retained::RetainedTasks;
use crate::router::{ForwardReceiver, RouteFollower, RouteTable, Router, RoutingShard, FORWARD};
use crate::settings;

mod error;

pub use error::{ClusterCause, ClusterPart, ConfigProblem, NodeError};

/// What every channel actor of the node shares.
#[derive(Debug)]
pub struct NodeShared {
    /// Subscriber index, shared groups, retained messages.
    pub router: Arc<Router<Subscriber>>,
    /// Client id → channel actor.
    pub cm: ClientRegistry<ChannelActor>,
    /// The node-wide channel settings (`mqtt.*`); channel actors use their
    /// listener's, in its [`ListenerContext`].
    pub channel_config: Arc<ChannelConfig>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// A socket that sends no CONNECT in this time is closed
    /// (`mqtt.idle_timeout`).
    pub idle_timeout: Duration,
    /// The `$SYS` client events published (`sys_topics.sys_event_messages`).
    pub sys_events: crate::sys::SysEvents,
}

/// The channel settings of one listener's clients: `mqtt.*` (`base`, which
/// every listener shares) with the listener's own mountpoint.
fn listener_channel_config(
    base: &ChannelConfig,
    key: &str,
    listener: &girder_config::TcpListener,
) -> Result<ChannelConfig, NodeError> {
    settings::with_mountpoint(base, &listener.mountpoint).map_err(|e| {
        NodeError::config(
            format!("listeners.tcp.{key}.mountpoint"),
            Some(format!("{:?}", listener.mountpoint)),
            e.into(),
        )
    })
}

/// A running node. Dropping it does not stop it; call [`Node::shutdown`].
#[derive(Debug)]
pub struct Node {
    root: SupervisorRef,
    cluster: ClusterSide,
    shared: Arc<NodeShared>,
    listeners: Vec<(String, SocketAddr)>,
    /// Keep the retained store and the `retained` table in step.
    retained: Option<RetainedTasks>,
}

impl Node {
    /// Starts a node from its configuration on the current actix system.
    pub async fn start(config: &Config) -> Result<Node, NodeError> {
        // One base for every listener: they share its exclusive table.
        let base = settings::channel_config(config);
        // Bind first: a port in use stops start-up before anything runs.
        let mut bound = Vec::new();
        for (key, listener) in &config.listeners.tcp {
            if !listener.enable {
                continue;
            }
            let name = format!("tcp:{key}");
            let addr = listener.bind.0;
            let settings = ListenerSettings::from_config(listener).map_err(|e| {
                NodeError::config(
                    format!("listeners.tcp.{key}"),
                    None,
                    ConfigProblem::Listener(e),
                )
            })?;
            let channel_config = Arc::new(listener_channel_config(&base, key, listener)?);
            let context = Arc::new(ListenerContext::new(name.clone(), channel_config, listener));
            let b =
                BoundListener::bind(addr, settings, context).map_err(|source| NodeError::Bind {
                    name: name.clone(),
                    addr,
                    source,
                })?;
            bound.push((b, addr));
        }
        let metrics = Arc::new(Metrics::default());
        let channel_config = Arc::new(base);
        let cluster = ClusterSide::start(config).await?;
        let router = Arc::new(Router::new(
            settings::router_config(config),
            Arc::clone(&metrics),
            Some(RouteTable {
                rlog: cluster.rlog.clone(),
                table: ROUTES,
                node: cluster.handle.node().clone(),
                cluster: cluster.handle.clone(),
            }),
        ));
        cluster
            .handle
            .register(FORWARD, ForwardReceiver::new(Arc::clone(&router)))
            .map_err(|e| NodeError::cluster(ClusterPart::Process(FORWARD), e))?;
        // Loaded before any client connects.
        let retained = if config.retainer.enable {
            Some(
                router
                    .replicate_retained(cluster.rlog.clone(), RETAINED)
                    .map_err(|e| NodeError::cluster(ClusterPart::RetainedMessages, e))?,
            )
        } else {
            None
        };
        let shared = Arc::new(NodeShared {
            router,
            cm: ClientRegistry::new(Some(ClientTable {
                rlog: cluster.rlog.clone(),
                table: CLIENTS,
                cluster: cluster.handle.clone(),
            })),
            channel_config,
            metrics,
            idle_timeout: config.mqtt.idle_timeout.0,
            sys_events: crate::sys::SysEvents::new(cluster.handle.node(), &config.sys_topics),
        });

        let mut listeners = Vec::new();
        let mut listeners_sup = SupervisorSpec::new(SupFlags::new(Strategy::OneForOne));
        for (b, configured) in bound {
            let addr = b.local_addr().unwrap_or(configured);
            listeners.push((b.name.clone(), addr));
            listeners_sup = listeners_sup.child(b.child_spec(Arc::clone(&shared)));
        }

        let pool = ArbiterPool::per_core()?;
        // First: started first, stopped last.
        let mut root = SupervisorSpec::new(SupFlags::new(Strategy::OneForOne))
            .pool(pool)
            .child(cluster.child_spec())
            .child(RoutingShard::supervisor(&shared.router));
        if let Some(follower) = RouteFollower::child_spec(&shared.router) {
            root = root.child(follower);
        }
        if let Some(interval) = settings::retained_clear_interval(config) {
            let router = Arc::clone(&shared.router);
            root = root.child(crate::retainer::RetainedClearer::child_spec(
                router, interval,
            ));
        }
        let sys = &config.sys_topics;
        if let Some(sys) =
            crate::sys::SysPublisher::child_spec(&shared.router, &cluster.handle, sys)
        {
            root = root.child(sys);
        }
        let root = root
            .child(crate::handover::HandoverService::child_spec(Arc::clone(
                &shared,
            )))
            .child(listeners_sup.into_child_spec("listeners"))
            .start_root()
            .await?;
        for (name, addr) in &listeners {
            info!(listener = %name, %addr, "listening");
        }
        if let Some(addr) = cluster.admin_addr {
            listeners.push(("admin".to_owned(), addr));
        }
        listeners.push(("dist".to_owned(), cluster.handle.local_addr()));
        Ok(Node {
            root,
            cluster,
            shared,
            listeners,
            retained,
        })
    }

    /// The listeners and the addresses they are bound to.
    pub fn listeners(&self) -> &[(String, SocketAddr)] {
        &self.listeners
    }

    /// The node's shared state (for the admin API and tests).
    pub fn shared(&self) -> &Arc<NodeShared> {
        &self.shared
    }

    /// The distribution layer.
    pub fn cluster(&self) -> &girder_cluster::ClusterHandle {
        &self.cluster.handle
    }

    /// The replicated tables (the route and client tables among them).
    pub fn tables(&self) -> &girder_cluster::rlog::Rlog {
        &self.cluster.rlog
    }

    /// Stops the tree (children in reverse start order, each within its
    /// shutdown timeout), lets the retained messages already queued reach
    /// their table, then stops the admin endpoint and the distribution
    /// layer.
    pub async fn shutdown(self) -> ExitReason {
        let reason = self.root.shutdown().await;
        if let Some(retained) = self.retained {
            retained.stop(Duration::from_secs(5)).await;
        }
        self.cluster.shutdown().await;
        reason
    }

    /// The root of the node's supervision tree.
    pub fn supervisor(&self) -> &SupervisorRef {
        &self.root
    }

    /// Waits until the tree ends by itself (it gave up restarting).
    pub async fn wait(&self) -> ExitReason {
        self.root.wait().await
    }
}
