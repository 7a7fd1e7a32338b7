//! The node's cluster side: the distribution layer (girder-cluster) started
//! from `node.*` and `cluster.*`, the replicated tables, and the admin gRPC
//! endpoint on `admin.bind`; their long-lived tasks run under the node's
//! supervision tree (`supervise`).

mod supervise;

pub use supervise::{TaskWorker, RLOG_INTENSITY, RLOG_PERIOD};

use std::net::SocketAddr;
use std::time::Duration;

use girder_cluster::rlog::{Bootstrap, Rlog, RlogOptions, Role, ShardKind, ShardSpec};
use girder_cluster::task::{OnStop, Tasks};
use girder_cluster::{ClusterHandle, ClusterOptions, Discovery, NodeName, Target};
use girder_config::{Config, DbRole, DiscoveryStrategy};
use girder_supervision::ChildSpec;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::node::{ClusterPart, ConfigProblem, NodeError};

/// The distribution options of a node's configuration.
pub fn cluster_options(config: &Config) -> Result<ClusterOptions, NodeError> {
    let node = &config.node;
    let cluster = &config.cluster;
    let dist_bind = cluster.dist_bind(&node.name)?;
    let discovery = match cluster.discovery_strategy {
        DiscoveryStrategy::Static => Discovery::Static {
            seeds: cluster
                .static_
                .seeds
                .iter()
                .map(ToString::to_string)
                .collect(),
        },
        DiscoveryStrategy::Dns => Discovery::Dns {
            name: cluster.dns.name.clone(),
        },
        DiscoveryStrategy::Manual => Discovery::Manual,
        DiscoveryStrategy::Singleton => Discovery::Singleton,
    };
    let mut options = ClusterOptions::new(&node.name.to_string(), &node.cookie, &cluster.name)
        .map_err(|e| {
            NodeError::config(
                "node.name",
                Some(format!("{:?}", node.name.to_string())),
                e.into(),
            )
        })?;
    options.dist_bind = dist_bind;
    options.discovery = discovery;
    let tick = cluster
        .dist
        .heartbeat_interval
        .0
        .max(Duration::from_millis(10));
    options.heartbeat_interval = tick;
    options.heartbeat_misses =
        u32::try_from((cluster.dist.heartbeat_timeout.0.as_millis() / tick.as_millis()).max(1))
            .unwrap_or(u32::MAX);
    options.connect_timeout = cluster.dist.connect_timeout.0;
    options.fault_injection = cluster.dist.fault_injection;
    options.autoclean = Some(cluster.autoclean.0).filter(|d| !d.is_zero());
    let tls = &cluster.dist.tls;
    if tls.enable {
        let file = |f: &Option<std::path::PathBuf>, key: &str| {
            f.clone().ok_or_else(|| {
                NodeError::config(
                    format!("cluster.dist.tls.{key}"),
                    None,
                    ConfigProblem::RequiredWith("cluster.dist.tls.enable"),
                )
            })
        };
        let loaded = girder_cluster::DistTls::load(
            file(&tls.certfile, "certfile")?,
            file(&tls.keyfile, "keyfile")?,
            file(&tls.cacertfile, "cacertfile")?,
        )
        .map_err(|e| NodeError::config("cluster.dist.tls", None, e.into()))?;
        options.tls = Some(loaded);
    }
    Ok(options)
}

/// The owned table of routes: filter → the nodes with subscribers to it
/// (each node owns its rows).
pub const ROUTES: &str = "routes";
/// The owned table of the client registry: client id → the node holding
/// its session.
pub const CLIENTS: &str = "clients";

/// The consensus table of retained messages: topic name → the message
/// (`girder.broker.v1.Retained`), in the shard of the same name.
pub const RETAINED: &str = "retained";

/// The replicated tables the broker registers (DESIGN §4): owned shards for
/// routes and the client registry, consensus shards for what every node must
/// agree on (users, ACL rules, banned clients; retained messages).
fn shards() -> Vec<ShardSpec> {
    vec![
        ShardSpec::new("route", ShardKind::Owned, &[ROUTES]),
        ShardSpec::new("session", ShardKind::Owned, &[CLIENTS]),
        ShardSpec::new("auth", ShardKind::Consensus, &["users", "acl", "banned"]),
        ShardSpec::new(RETAINED, ShardKind::Consensus, &[RETAINED]),
    ]
}

/// The replicated-table options of a node: its role, the cores, how its
/// consensus groups start, its data directory.
///
/// How the cores form one group per consensus shard: with
/// `cluster.core_nodes`, the listed cores are the first voters; without it,
/// with static seeds the seeds that are cores (with DNS, the nodes the name
/// resolves to at start), and with manual discovery each core starts alone
/// and `cluster join` adds it to the joined cluster's groups.
pub async fn rlog_options(config: &Config) -> Result<RlogOptions, NodeError> {
    let parse = |name: &str| {
        NodeName::parse(name).map_err(|e| {
            NodeError::config("cluster.core_nodes", Some(format!("{name:?}")), e.into())
        })
    };
    let role = match config.node.role {
        DbRole::Core => Role::Core,
        DbRole::Replicant => Role::Replicant,
    };
    let core_nodes = config
        .cluster
        .core_nodes
        .iter()
        .map(|n| parse(&n.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let bootstrap = if !core_nodes.is_empty() {
        Bootstrap::CoreNodes
    } else if role == Role::Replicant {
        return Err(NodeError::config(
            "cluster.core_nodes",
            Some("[]".to_owned()),
            ConfigProblem::NoCores,
        ));
    } else {
        match config.cluster.discovery_strategy {
            DiscoveryStrategy::Static => Bootstrap::Seeds(
                config
                    .cluster
                    .static_
                    .seeds
                    .iter()
                    .map(|s| {
                        let s = s.to_string();
                        Target::parse(&s).map(|t| t.node).map_err(|e| {
                            NodeError::config(
                                "cluster.static.seeds",
                                Some(format!("{s:?}")),
                                e.into(),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            DiscoveryStrategy::Dns => Bootstrap::Seeds(dns_seeds(config).await),
            DiscoveryStrategy::Manual | DiscoveryStrategy::Singleton => Bootstrap::Alone,
        }
    };
    Ok(RlogOptions {
        role,
        core_nodes,
        bootstrap,
        data_dir: Some(config.node.data_dir.clone()),
        shards: shards(),
        owner_grace: config.cluster.owned_rows_grace_period.0,
        ..RlogOptions::default()
    })
}

/// The nodes `cluster.dns.name` resolves to now, named as DNS discovery
/// names them (`app@ip`, with this node's name part); empty if it does not
/// resolve.
async fn dns_seeds(config: &Config) -> Vec<NodeName> {
    let name = &config.cluster.dns.name;
    let me = config.node.name.to_string();
    let app = me.split('@').next().unwrap_or_default().to_owned();
    let port = config
        .cluster
        .dist_bind(&config.node.name)
        .map_or(0, |a| a.port());
    match tokio::net::lookup_host((name.as_str(), port)).await {
        Ok(addrs) => addrs
            .filter(std::net::SocketAddr::is_ipv4)
            .filter_map(|a| NodeName::parse(&format!("{app}@{}", a.ip())).ok())
            .collect(),
        Err(e) => {
            warn!(%name, cause = %e, "cluster.dns.name does not resolve: no first voters");
            Vec::new()
        }
    }
}

/// The running cluster side of a node.
#[derive(Debug)]
pub struct ClusterSide {
    /// The distribution layer.
    pub handle: ClusterHandle,
    /// The replicated tables.
    pub rlog: Rlog,
    /// The admin endpoint's task, when enabled.
    admin: Option<Tasks>,
    /// Ends the admin endpoint.
    admin_stop: CancellationToken,
    /// Where the admin API listens.
    pub admin_addr: Option<SocketAddr>,
}

impl ClusterSide {
    /// Starts the distribution layer and, when enabled, the admin endpoint.
    pub async fn start(config: &Config) -> Result<Self, NodeError> {
        let options = cluster_options(config)?;
        let dist_bind = options.dist_bind;
        let handle = girder_cluster::start(options)
            .await
            .map_err(|e| NodeError::cluster(ClusterPart::Distribution(dist_bind), e))?;
        info!(node = %handle.node(), addr = %handle.local_addr(), "distribution_started");
        if config.node.cookie == girder_config::Node::default().cookie
            && !handle.local_addr().ip().is_loopback()
        {
            warn!(
                addr = %handle.local_addr(),
                "node.cookie is the default one while the distribution port is reachable \
                 from other hosts: anyone who knows the default can join this cluster; set \
                 node.cookie to a secret of your own"
            );
        }
        let rlog_opts = rlog_options(config).await?;
        std::fs::create_dir_all(&config.node.data_dir).map_err(|e| {
            NodeError::config(
                "node.data_dir",
                Some(format!("{:?}", config.node.data_dir.display().to_string())),
                ConfigProblem::CannotCreate(e),
            )
        })?;
        let rlog = Rlog::start(handle.clone(), rlog_opts)
            .await
            .map_err(|e| NodeError::cluster(ClusterPart::ReplicatedTables, e))?;
        info!(role = ?rlog.role(), "rlog_started");
        let mut side = ClusterSide {
            handle,
            rlog,
            admin: None,
            admin_stop: CancellationToken::new(),
            admin_addr: None,
        };
        if config.admin.enable {
            let addr = config.admin.bind.0;
            let bind_error = |source| NodeError::Bind {
                name: "admin".to_owned(),
                addr,
                source,
            };
            // Bound once; each start of the endpoint serves a copy of it.
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .and_then(tokio::net::TcpListener::into_std)
                .map_err(bind_error)?;
            // With port 0 the OS picked the port: report that one.
            let addr = listener.local_addr().unwrap_or(addr);
            let tables: Vec<String> = shards()
                .into_iter()
                .flat_map(|shard| shard.tables)
                .collect();
            let tasks = Tasks::default();
            let (handle, rlog, stop) = (
                side.handle.clone(),
                side.rlog.clone(),
                side.admin_stop.clone(),
            );
            let listed = vec![rlog.tasks(), tasks.clone()];
            tasks.spawn("admin", OnStop::Abort, move || {
                let service = girder_cluster::Admin::service_with_tasks(
                    handle.clone(),
                    rlog.clone(),
                    tables.clone(),
                    listed.clone(),
                );
                serve_admin(listener.try_clone(), service, stop.clone())
            });
            info!(%addr, "admin_started");
            side.admin = Some(tasks);
            side.admin_addr = Some(addr);
        }
        Ok(side)
    }

    /// The `cluster` supervisor of the node's tree: a worker per
    /// replication task and one for the admin endpoint (`supervise`).
    pub fn child_spec(&self) -> ChildSpec {
        supervise::cluster_spec(&self.rlog.tasks(), self.admin.as_ref())
    }

    /// Stops the admin endpoint, the replicated tables and the distribution
    /// layer.
    pub async fn shutdown(self) {
        self.admin_stop.cancel();
        self.rlog.shutdown().await;
        self.handle.shutdown().await;
    }
}

/// Serves the admin API on a copy of its listening socket until `stop`.
async fn serve_admin(
    listener: std::io::Result<std::net::TcpListener>,
    service: girder_proto::admin::admin_service_server::AdminServiceServer<girder_cluster::Admin>,
    stop: CancellationToken,
) {
    let listener = match listener.and_then(tokio::net::TcpListener::from_std) {
        Ok(l) => l,
        Err(e) => {
            error!(cause = %e, "admin endpoint cannot listen");
            return;
        }
    };
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let served = tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, stop.cancelled())
        .await;
    if let Err(err) = served {
        error!(cause = %err, "admin endpoint failed");
    }
}
