//! `node` and `cluster`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{check, is_set};
use crate::error::ConfigError;
use crate::types::{comma_list, Bind, Duration, NodeName};

/// Base distribution port; a node named `nameN@host` listens on 4370 + N.
pub const DIST_BASE_PORT: u16 = 4370;

keyword_enum! {
    /// A node's role in the replicated tables (`node.role`, alias `node.db_role`).
    pub enum DbRole {
        /// Holds the tables and takes part in consensus.
        Core = "core",
        /// Follows a core's change streams; holds read-only copies.
        Replicant = "replicant",
    }
    default Core
}

/// `node`: this node's identity.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Node {
    /// `name@host`; the host must be reachable by the other nodes.
    pub name: NodeName,
    /// Shared secret of the cluster; the same on every node.
    pub cookie: String,
    /// Where durable tables live; the same path on every node.
    pub data_dir: PathBuf,
    /// `core` or `replicant` (EMQX 5.0 spelling `db_role` accepted).
    pub role: DbRole,
}

impl Default for Node {
    fn default() -> Self {
        Self {
            name: NodeName::girder_local(),
            cookie: "girdersecretcookie".to_owned(),
            data_dir: PathBuf::from("data"),
            role: DbRole::Core,
        }
    }
}

impl Node {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check(
            !self.cookie.trim().is_empty(),
            "node.cookie",
            format!("{:?}", self.cookie),
            "a non-empty secret",
        )?;
        check(
            !self.data_dir.as_os_str().is_empty(),
            "node.data_dir",
            "\"\"",
            "a directory",
        )
    }
}

keyword_enum! {
    /// How a node finds the others (`cluster.discovery_strategy`).
    pub enum DiscoveryStrategy {
        /// Nodes join with `girder ctl cluster join`.
        Manual = "manual",
        /// Join the nodes listed in `cluster.static.seeds`.
        Static = "static",
        /// Join the nodes a DNS name resolves to.
        Dns = "dns",
        /// Never cluster.
        Singleton = "singleton",
    }
    default Manual
}

keyword_enum! {
    /// DNS record type for `dns` discovery.
    pub enum DnsRecordType {
        /// IPv4 addresses; node names are `name@<ip>`.
        A = "a",
        /// IPv6 addresses.
        Aaaa = "aaaa",
        /// SRV records naming hosts.
        Srv = "srv",
    }
    default A
}

keyword_enum! {
    /// Table replication backend (`cluster.db_backend`, alias `node.db_backend`).
    pub enum DbBackend {
        /// Core nodes own the tables; replicants follow their logs.
        Rlog = "rlog",
    }
    default Rlog
}

/// `cluster.static`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaticDiscovery {
    /// Nodes to join; list the cores only. A comma-separated string works too.
    #[serde(deserialize_with = "comma_list")]
    pub seeds: Vec<NodeName>,
}

/// `cluster.dns`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsDiscovery {
    /// The name to resolve.
    pub name: String,
    /// Which records to ask for.
    pub record_type: DnsRecordType,
}

impl Default for DnsDiscovery {
    fn default() -> Self {
        Self {
            name: "localhost".to_owned(),
            record_type: DnsRecordType::A,
        }
    }
}

/// `cluster.dist.tls`: mutual TLS on the distribution links.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistTls {
    /// Use TLS; then all three files are required.
    pub enable: bool,
    /// This node's certificate chain (PEM).
    pub certfile: Option<PathBuf>,
    /// This node's private key (PEM).
    pub keyfile: Option<PathBuf>,
    /// CA that signs every node's certificate (PEM).
    pub cacertfile: Option<PathBuf>,
}

/// `cluster.dist`: the gRPC distribution layer (Erlang distribution's role).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Dist {
    /// Listening address; unset means 0.0.0.0 on 4370 + N for `nameN@host`.
    pub bind: Option<Bind>,
    /// Time between heartbeats on an idle link.
    pub heartbeat_interval: Duration,
    /// A link silent this long is down (nodedown).
    pub heartbeat_timeout: Duration,
    /// Time allowed to connect and complete the handshake.
    pub connect_timeout: Duration,
    /// Mutual TLS.
    pub tls: DistTls,
    /// Lets `girder ctl cluster debug` cut, delay or drop links (for tests
    /// of partitions; never on in production).
    pub fault_injection: bool,
}

impl Default for Dist {
    fn default() -> Self {
        Self {
            bind: None,
            heartbeat_interval: Duration::secs(2),
            heartbeat_timeout: Duration::secs(10),
            connect_timeout: Duration::secs(5),
            tls: DistTls::default(),
            fault_injection: false,
        }
    }
}

/// `cluster`: membership, discovery and replication.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    /// Cluster name; nodes of different clusters refuse each other.
    pub name: String,
    /// How nodes find each other.
    pub discovery_strategy: DiscoveryStrategy,
    /// Seeds for `static` discovery.
    #[serde(rename = "static")]
    pub static_: StaticDiscovery,
    /// Settings for `dns` discovery.
    pub dns: DnsDiscovery,
    /// Cores a replicant may follow (EMQX 5.0–5.7); a list or a
    /// comma-separated string.
    #[serde(deserialize_with = "comma_list")]
    pub core_nodes: Vec<NodeName>,
    /// Replication backend.
    pub db_backend: DbBackend,
    /// Remove a member from the cluster after it has been down this long
    /// (`0s`: never), as `girder ctl cluster force-leave` does.
    pub autoclean: Duration,
    /// Heal partitions automatically (the only behaviour: `false` is refused).
    pub autoheal: bool,
    /// The distribution layer.
    pub dist: Dist,
    /// Rows owned by a node that is gone (its routes, its clients) are
    /// removed everywhere after this long.
    pub owned_rows_grace_period: Duration,
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            name: "girdercl".to_owned(),
            discovery_strategy: DiscoveryStrategy::Manual,
            static_: StaticDiscovery::default(),
            dns: DnsDiscovery::default(),
            core_nodes: Vec::new(),
            db_backend: DbBackend::Rlog,
            autoclean: Duration::hours(24),
            autoheal: true,
            dist: Dist::default(),
            owned_rows_grace_period: Duration::secs(30),
        }
    }
}

impl Cluster {
    /// The distribution listening address for `node`: `cluster.dist.bind`
    /// if set, else 0.0.0.0 on 4370 + N where N is the integer just left of
    /// the `@` in the node name (none: 4370), as EMQX does.
    pub fn dist_bind(&self, node: &NodeName) -> Result<SocketAddr, ConfigError> {
        if let Some(bind) = self.dist.bind {
            return Ok(bind.addr());
        }
        let offset = node.port_offset().unwrap_or(0);
        u16::try_from(u64::from(DIST_BASE_PORT).saturating_add(offset))
            .map(|port| Bind::any(port).addr())
            .map_err(|_| {
                ConfigError::invalid(
                    "node.name",
                    format!("\"{node}\""),
                    "expected a number before @ of at most 61165 (the distribution port is 4370 + N) or cluster.dist.bind set",
                )
            })
    }

    pub(crate) fn validate(&self, node: &Node) -> Result<(), ConfigError> {
        check(
            !self.name.trim().is_empty(),
            "cluster.name",
            "\"\"",
            "a non-empty name",
        )?;
        if self.discovery_strategy == DiscoveryStrategy::Singleton {
            check(
                node.role == DbRole::Core,
                "node.role",
                node.role,
                "core when cluster.discovery_strategy = singleton",
            )?;
        }
        if self.discovery_strategy == DiscoveryStrategy::Dns {
            check(
                !self.dns.name.trim().is_empty(),
                "cluster.dns.name",
                "\"\"",
                "a DNS name when cluster.discovery_strategy = dns",
            )?;
        }
        let dist = &self.dist;
        check(
            !dist.heartbeat_interval.get().is_zero(),
            "cluster.dist.heartbeat_interval",
            dist.heartbeat_interval,
            "a duration greater than 0s",
        )?;
        check(
            dist.heartbeat_timeout > dist.heartbeat_interval,
            "cluster.dist.heartbeat_timeout",
            dist.heartbeat_timeout,
            &format!(
                "a duration longer than cluster.dist.heartbeat_interval ({})",
                dist.heartbeat_interval
            ),
        )?;
        if dist.tls.enable {
            for (key, file) in [
                ("certfile", &dist.tls.certfile),
                ("keyfile", &dist.tls.keyfile),
                ("cacertfile", &dist.tls.cacertfile),
            ] {
                check(
                    is_set(file),
                    &format!("cluster.dist.tls.{key}"),
                    "unset",
                    "a PEM file path when cluster.dist.tls.enable = true",
                )?;
            }
        }
        self.dist_bind(&node.name).map(drop)
    }
}
