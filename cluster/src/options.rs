//! Options of the distribution layer and node names.
//!
//! The binary converts `girder-config`'s `node` and `cluster` sections into
//! [`ClusterOptions`]; this crate does not read files.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::error::ClusterError;

/// The default distribution port (EMQX's `4370`; a node named `nameN@host` uses `4370 + N`).
pub const DEFAULT_DIST_PORT: u16 = 4370;

/// A node's name, `name@host`, as in Erlang distribution.
///
/// ```
/// use girder_cluster::NodeName;
/// let n = NodeName::parse("emqx2@10.0.0.5").unwrap();
/// assert_eq!(n.host(), "10.0.0.5");
/// assert_eq!(n.default_dist_port(), 4372);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeName(Arc<str>);

impl NodeName {
    /// Parses and validates `name@host`.
    pub fn parse(s: &str) -> Result<Self, ClusterError> {
        let invalid = || ClusterError::InvalidNodeName(s.to_owned());
        let (name, host) = s.split_once('@').ok_or_else(invalid)?;
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if name_ok && host_ok {
            Ok(Self(Arc::from(s)))
        } else {
            Err(invalid())
        }
    }

    /// The full name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`.
    pub fn name(&self) -> &str {
        self.0.split_once('@').map_or(&*self.0, |(n, _)| n)
    }

    /// The part after `@`.
    pub fn host(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, h)| h)
    }

    /// EMQX's port rule: `4370 + N` where N is the number that ends the name
    /// part (`emqx3@h` → 4373), `4370` when there is none.
    pub fn default_dist_port(&self) -> u16 {
        let name = self.name();
        let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        name[name.len() - digits..]
            .parse::<u16>()
            .ok()
            .and_then(|n| DEFAULT_DIST_PORT.checked_add(n))
            .unwrap_or(DEFAULT_DIST_PORT)
    }

    /// The address a peer dials when it knows nothing else: `host:default_dist_port`.
    pub fn default_addr(&self) -> String {
        format!("{}:{}", self.host(), self.default_dist_port())
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// A node to dial: its name and the address its distribution listener is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The node's name.
    pub node: NodeName,
    /// `host:port` to dial.
    pub addr: String,
}

impl Target {
    /// Parses `name@host` (port by [`NodeName::default_dist_port`]) or
    /// `name@host:port`.
    pub fn parse(s: &str) -> Result<Self, ClusterError> {
        match s.rsplit_once(':') {
            Some((name, port)) => {
                let port: u16 = port
                    .parse()
                    .map_err(|_| ClusterError::InvalidNodeName(s.to_owned()))?;
                let node = NodeName::parse(name)?;
                let addr = format!("{}:{port}", node.host());
                Ok(Self { node, addr })
            }
            None => {
                let node = NodeName::parse(s)?;
                let addr = node.default_addr();
                Ok(Self { node, addr })
            }
        }
    }
}

/// How a node finds the other members at start (EMQX's `cluster.discovery_strategy`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Discovery {
    /// Only `girder ctl cluster join`.
    #[default]
    Manual,
    /// `cluster.static.seeds`: node names (`name@host` or `name@host:port`).
    Static {
        /// The seed nodes.
        seeds: Vec<String>,
    },
    /// `cluster.dns.name`: every A record of the name is a node `app@ip`, where
    /// `app` is this node's name part (as with docker compose or a Kubernetes
    /// headless service).
    Dns {
        /// The DNS name to resolve.
        name: String,
    },
}

/// Reconnect backoff after a link drops or a dial fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub initial: Duration,
    /// The cap; each failure doubles the wait up to it.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

/// Everything the distribution layer needs to start.
#[derive(Clone)]
pub struct ClusterOptions {
    /// `node.name`: `name@host`.
    pub node_name: String,
    /// `node.cookie`: the shared secret; never sent on the wire.
    pub cookie: String,
    /// `cluster.name`: nodes of another cluster are refused.
    pub cluster_name: String,
    /// `cluster.dist.bind`: where the distribution listener binds.
    pub dist_bind: SocketAddr,
    /// The `host:port` peers dial to reach this node. Default: the bind address,
    /// or the node name's host with the bound port when the bind IP is unspecified.
    pub advertise: Option<String>,
    /// How peers are found.
    pub discovery: Discovery,
    /// How often discovery runs again (it stops while the node is left).
    pub discovery_interval: Duration,
    /// A link writes a heartbeat when idle this long.
    pub heartbeat_interval: Duration,
    /// A link that hears nothing for this many intervals is down.
    pub heartbeat_misses: u32,
    /// Limit on a TCP connect plus the handshake.
    pub connect_timeout: Duration,
    /// Reconnect backoff.
    pub backoff: Backoff,
    /// Enables the `ClusterDebug` admin call and the `girder.debug.*` names
    /// (tests only).
    pub fault_injection: bool,
}

impl fmt::Debug for ClusterOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterOptions")
            .field("node_name", &self.node_name)
            .field("cookie", &"<REDACTED>")
            .field("cluster_name", &self.cluster_name)
            .field("dist_bind", &self.dist_bind)
            .field("advertise", &self.advertise)
            .field("discovery", &self.discovery)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("heartbeat_misses", &self.heartbeat_misses)
            .field("backoff", &self.backoff)
            .field("fault_injection", &self.fault_injection)
            .finish_non_exhaustive()
    }
}

impl ClusterOptions {
    /// Options with defaults for everything but identity: the dist port follows
    /// the node name (`4370 + N`), heartbeats every second, down after 4 misses.
    pub fn new(node_name: &str, cookie: &str, cluster_name: &str) -> Result<Self, ClusterError> {
        let node = NodeName::parse(node_name)?;
        Ok(Self {
            node_name: node_name.to_owned(),
            cookie: cookie.to_owned(),
            cluster_name: cluster_name.to_owned(),
            dist_bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, node.default_dist_port())),
            advertise: None,
            discovery: Discovery::Manual,
            discovery_interval: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(1),
            heartbeat_misses: 4,
            connect_timeout: Duration::from_secs(3),
            backoff: Backoff::default(),
            fault_injection: false,
        })
    }

    /// Checks the options; returns the parsed node name.
    pub fn validate(&self) -> Result<NodeName, ClusterError> {
        let node = NodeName::parse(&self.node_name)?;
        let bad = |m: &str| Err(ClusterError::InvalidOption(m.to_owned()));
        if self.cookie.is_empty() {
            return bad("node.cookie must not be empty");
        }
        if self.cluster_name.is_empty() {
            return bad("cluster.name must not be empty");
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_misses == 0 {
            return bad("the heartbeat interval and missed-ticks limit must be positive");
        }
        if self.backoff.initial.is_zero() || self.backoff.max < self.backoff.initial {
            return bad("backoff: initial must be positive and not above max");
        }
        if self.connect_timeout.is_zero() || self.discovery_interval.is_zero() {
            return bad("connect timeout and discovery interval must be positive");
        }
        if let Discovery::Static { seeds } = &self.discovery {
            for seed in seeds {
                Target::parse(seed)?;
            }
        }
        Ok(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_parse_and_give_emqx_ports() {
        assert!(NodeName::parse("emqx").is_err());
        assert!(NodeName::parse("@host").is_err());
        assert!(NodeName::parse("a@").is_err());
        assert!(NodeName::parse("a b@h").is_err());
        let n = NodeName::parse("girder@127.0.0.1").unwrap();
        assert_eq!((n.name(), n.host()), ("girder", "127.0.0.1"));
        assert_eq!(n.default_dist_port(), 4370);
        assert_eq!(NodeName::parse("n12@h").unwrap().default_dist_port(), 4382);
        assert_eq!(
            NodeName::parse("n99999@h").unwrap().default_dist_port(),
            4370
        );
    }

    #[test]
    fn targets_take_an_optional_port() {
        let t = Target::parse("n1@127.0.0.2").unwrap();
        assert_eq!(t.addr, "127.0.0.2:4371");
        let t = Target::parse("n1@127.0.0.2:9000").unwrap();
        assert_eq!(
            (t.node.as_str(), t.addr.as_str()),
            ("n1@127.0.0.2", "127.0.0.2:9000")
        );
        assert!(Target::parse("n1@h:port").is_err());
    }

    #[test]
    fn validation_rejects_empty_secrets_and_bad_seeds() {
        let mut o = ClusterOptions::new("a@h", "c", "k").unwrap();
        assert_eq!(o.validate().unwrap().as_str(), "a@h");
        o.discovery = Discovery::Static {
            seeds: vec!["nope".into()],
        };
        assert!(o.validate().is_err());
        let mut o = ClusterOptions::new("a@h", "", "k").unwrap();
        assert!(o.validate().is_err());
        o.cookie = "c".into();
        o.heartbeat_misses = 0;
        assert!(o.validate().is_err());
    }
}
