//! The errors of the replicated tables.

use crate::error::ClusterError;

/// Everything that can go wrong in the replicated tables' API.
#[derive(Debug, thiserror::Error)]
pub enum RlogError {
    /// The options are inconsistent.
    #[error("invalid rlog option: {0}")]
    InvalidOption(String),
    /// `cluster.core_nodes` contradicts the running group's voters.
    #[error("{0}")]
    Contradiction(String),
    /// The table is not registered, or not in the shard named.
    #[error("unknown table {0:?}")]
    UnknownTable(String),
    /// The shard is not registered, or is not of the kind the call needs.
    #[error("unknown shard {0:?} (or not of this kind)")]
    UnknownShard(String),
    /// No core (or no Raft leader) could take the write in time; on the
    /// minority side of a split this is what a consensus write gets.
    #[error("no quorum for shard {shard:?}: {reason}")]
    NoQuorum {
        /// The shard written.
        shard: String,
        /// The last failure seen.
        reason: String,
    },
    /// The lease lock is held by another node (or no majority of cores
    /// could be asked).
    #[error("lock on {key:?} not granted: {holder}")]
    Locked {
        /// The key asked for.
        key: String,
        /// The holder, or why no majority answered.
        holder: String,
    },
    /// The durable store failed.
    #[error("durable store: {0}")]
    Storage(String),
    /// The distribution layer failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}
