//! The errors of the distribution layer.

use std::time::Duration;

use crate::handshake::HandshakeError;
use crate::options::NodeName;

/// Everything that can go wrong in the distribution layer's API.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A node name is not `name@host`.
    #[error("invalid node name {0:?}: expected name@host")]
    InvalidNodeName(String),
    /// An option is out of range or inconsistent.
    #[error("invalid cluster option: {0}")]
    InvalidOption(String),
    /// The distribution listener could not bind.
    #[error("cannot bind the distribution listener on {addr}: {source}")]
    Bind {
        /// The address from `cluster.dist.bind`.
        addr: std::net::SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// There is no link to the node (never connected, or the link went down).
    #[error("node {0} is down")]
    NodeDown(NodeName),
    /// Nothing is registered under the name on that node.
    #[error("no process registered as {name:?} on {node}")]
    NoSuchName {
        /// The node asked.
        node: NodeName,
        /// The name asked for.
        name: String,
    },
    /// A call got no reply in time.
    #[error("call to {name:?} on {node} timed out after {timeout:?}")]
    Timeout {
        /// The node called.
        node: NodeName,
        /// The name called.
        name: String,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// The remote handler answered a call with an error.
    #[error("the remote handler failed: {0}")]
    Remote(String),
    /// A local name is taken.
    #[error("the name {0:?} is already registered")]
    AlreadyRegistered(String),
    /// A payload holds another type than the one asked for.
    #[error("the payload is a {actual:?}, not a {expected:?}")]
    PayloadType {
        /// The type asked for.
        expected: String,
        /// The type carried.
        actual: String,
    },
    /// A payload does not decode as its type.
    #[error("cannot decode the payload: {0}")]
    Decode(#[from] prost::DecodeError),
    /// This node runs as a singleton and never joins a cluster.
    #[error(
        "this node runs with cluster.discovery_strategy = singleton: it never joins a cluster"
    )]
    Singleton,
    /// A handshake with a peer failed.
    #[error("handshake with {peer} failed: {source}")]
    Handshake {
        /// The peer dialed.
        peer: NodeName,
        /// Why it failed.
        source: HandshakeError,
    },
    /// The peer could not be reached.
    #[error("cannot connect to {peer} at {addr}: {reason}")]
    Connect {
        /// The peer dialed.
        peer: NodeName,
        /// Its address.
        addr: String,
        /// The transport's message.
        reason: String,
    },
    /// The node is not a member of this node's cluster.
    #[error("{0} is not a member of the cluster")]
    NotAMember(NodeName),
    /// The operation is not allowed on this node itself.
    #[error("{0} is this node itself")]
    SelfTarget(NodeName),
    /// Fault injection was asked for but `fault_injection` is off.
    #[error("fault injection is disabled on this node")]
    FaultInjectionDisabled,
    /// The cluster layer has been shut down.
    #[error("the cluster layer is shut down")]
    Shutdown,
}
