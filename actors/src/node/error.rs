//! Why a node could not start: [`NodeError`], typed by what failed (a
//! listener's bind, the tree, a configuration key, a part of the cluster
//! side) so that callers can tell them apart, and displayed as one line
//! that names the key or the part.

use std::fmt;
use std::net::SocketAddr;

use girder_broker::channel::MountpointError;
use girder_cluster::rlog::RlogError;
use girder_cluster::ClusterError;
use girder_config::ConfigError;
use girder_supervision::SupervisionError;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A listener could not bind its address.
    #[error("listener {name} cannot bind {addr}: {source}")]
    Bind {
        /// Listener name, e.g. `tcp:default`.
        name: String,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The supervision tree failed to start.
    #[error("supervision tree failed to start: {0}")]
    Supervision(#[from] SupervisionError),
    /// The configuration refused by its own checks (e.g. the distribution
    /// port derived from `node.name`).
    #[error(transparent)]
    Loaded(#[from] ConfigError),
    /// A configuration key whose value the node cannot run with.
    #[error("config error: {key}{}: {problem}", ValueSuffix(.value))]
    Config {
        /// Dotted key path, e.g. `cluster.core_nodes`.
        key: String,
        /// The value as given, when there is one to show.
        value: Option<String>,
        /// What is wrong with it.
        #[source]
        problem: ConfigProblem,
    },
    /// A part of the cluster side failed to start.
    #[error("cluster: {part}: {cause}")]
    Cluster {
        /// Which part.
        part: ClusterPart,
        /// The error it failed with.
        #[source]
        cause: ClusterCause,
    },
}

impl NodeError {
    /// A configuration key refused for `problem`.
    pub fn config(key: impl Into<String>, value: Option<String>, problem: ConfigProblem) -> Self {
        Self::Config {
            key: key.into(),
            value,
            problem,
        }
    }

    /// A part of the cluster side that failed with `cause`.
    pub fn cluster(part: ClusterPart, cause: impl Into<ClusterCause>) -> Self {
        Self::Cluster {
            part,
            cause: cause.into(),
        }
    }
}

/// ` = value`, when there is a value.
struct ValueSuffix<'a>(&'a Option<String>);

impl fmt::Display for ValueSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, " = {v}"),
            None => Ok(()),
        }
    }
}

/// What is wrong with a configuration key's value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    /// The distribution layer refuses it (a node name, a seed, the TLS
    /// files).
    #[error("{0}")]
    Cluster(#[from] ClusterError),
    /// It must be set when another key is.
    #[error("is required with {0}")]
    RequiredWith(&'static str),
    /// A replicant lists no core.
    #[error("a replicant needs the cores it may follow")]
    NoCores,
    /// A directory that cannot be created.
    #[error("cannot create it: {0}")]
    CannotCreate(#[source] std::io::Error),
    /// A listener's mountpoint.
    #[error("{0}")]
    Mountpoint(#[from] MountpointError),
    /// A listener setting (its access rules or socket options).
    #[error("{0}")]
    Listener(String),
}

/// A part of the cluster side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterPart {
    /// The distribution layer, on its address.
    Distribution(SocketAddr),
    /// The replicated tables.
    ReplicatedTables,
    /// A process the node registers with the distribution layer.
    Process(&'static str),
    /// The retained messages' table replication.
    RetainedMessages,
}

impl fmt::Display for ClusterPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Distribution(addr) => write!(f, "distribution on {addr}"),
            Self::ReplicatedTables => f.write_str("replicated tables"),
            Self::Process(name) => f.write_str(name),
            Self::RetainedMessages => f.write_str("retained messages"),
        }
    }
}

/// The error a part of the cluster side failed with.
#[derive(Debug, thiserror::Error)]
pub enum ClusterCause {
    /// From the distribution layer.
    #[error(transparent)]
    Dist(#[from] ClusterError),
    /// From the replicated tables.
    #[error(transparent)]
    Rlog(#[from] RlogError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_key_the_value_and_the_part() {
        let e = NodeError::config(
            "cluster.core_nodes",
            Some("[]".into()),
            ConfigProblem::NoCores,
        );
        assert_eq!(
            e.to_string(),
            "config error: cluster.core_nodes = []: a replicant needs the cores it may follow"
        );
        let e = NodeError::config(
            "cluster.dist.tls.certfile",
            None,
            ConfigProblem::RequiredWith("cluster.dist.tls.enable"),
        );
        assert_eq!(
            e.to_string(),
            "config error: cluster.dist.tls.certfile: is required with cluster.dist.tls.enable"
        );
        let e = NodeError::cluster(
            ClusterPart::ReplicatedTables,
            RlogError::UnknownTable("t".into()),
        );
        assert!(
            e.to_string().starts_with("cluster: replicated tables: "),
            "{e}"
        );
        assert!(matches!(
            e,
            NodeError::Cluster {
                part: ClusterPart::ReplicatedTables,
                cause: ClusterCause::Rlog(_)
            }
        ));
    }
}
