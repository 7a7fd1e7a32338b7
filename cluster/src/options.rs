//! Options of the distribution layer and node names.
//!
//! The binary converts `girder-config`'s `node` and `cluster` sections into
//! [`ClusterOptions`]; this crate does not read files.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

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
    /// `app` is this node's name part, dialed at `ip` on this node's own
    /// distribution port (the port of its advertised address): all nodes share
    /// a name part and a port and differ by IP, as with docker compose or a
    /// Kubernetes headless service. Records that are this node are skipped.
    Dns {
        /// The DNS name to resolve.
        name: String,
    },
    /// `singleton`: the node never clusters. It dials nobody, refuses
    /// every link offered to it, and `join` fails.
    Singleton,
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

/// `cluster.dist.tls`: mutual TLS on the distribution links.
///
/// Every node holds a certificate signed by one CA, and trusts only that CA
/// for both directions: the listener requires a client certificate signed by
/// it, the dialer checks the listener's certificate against it. The cookie
/// handshake then runs inside TLS as without it.
///
/// The dialer checks the listener's certificate against the host part of the
/// peer's node name (`emqx@10.0.0.5` → an IP SAN `10.0.0.5`; `emqx@n1.local`
/// → a DNS SAN `n1.local`), so a certificate names its node, as a web
/// server's names its host. [`server_name`](Self::server_name) replaces that
/// with one fixed name every node's certificate carries (e.g. the cluster's
/// name), for nodes whose addresses are not known when certificates are made.
///
/// [`DistTls::load`] reads and parses the three PEM files once; a missing or
/// unreadable file is an error naming it.
#[derive(Clone)]
pub struct DistTls {
    certfile: PathBuf,
    keyfile: PathBuf,
    cacertfile: PathBuf,
    server_name: Option<String>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    ca_pem: Vec<u8>,
}

impl fmt::Debug for DistTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DistTls")
            .field("certfile", &self.certfile)
            .field("keyfile", &self.keyfile)
            .field("cacertfile", &self.cacertfile)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn read_pem(what: &str, path: &Path) -> Result<Vec<u8>, ClusterError> {
    std::fs::read(path).map_err(|e| {
        ClusterError::InvalidOption(format!("cluster.dist.tls.{what} {}: {e}", path.display()))
    })
}

fn bad_pem(what: &str, path: &Path, reason: impl fmt::Display) -> ClusterError {
    ClusterError::InvalidOption(format!(
        "cluster.dist.tls.{what} {}: {reason}",
        path.display()
    ))
}

fn check_certs(what: &str, path: &Path, pem: &[u8]) -> Result<(), ClusterError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(what, path, e))?;
    if certs.is_empty() {
        return Err(bad_pem(what, path, "no PEM certificate in the file"));
    }
    Ok(())
}

impl DistTls {
    /// Reads this node's certificate chain, its private key and the CA
    /// certificate (all PEM). Fails naming the file that is missing,
    /// unreadable or holds no certificate (no private key for `keyfile`).
    pub fn load(
        certfile: impl Into<PathBuf>,
        keyfile: impl Into<PathBuf>,
        cacertfile: impl Into<PathBuf>,
    ) -> Result<Self, ClusterError> {
        let (certfile, keyfile, cacertfile) = (certfile.into(), keyfile.into(), cacertfile.into());
        let cert_pem = read_pem("certfile", &certfile)?;
        check_certs("certfile", &certfile, &cert_pem)?;
        let key_pem = read_pem("keyfile", &keyfile)?;
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| bad_pem("keyfile", &keyfile, e))?;
        let ca_pem = read_pem("cacertfile", &cacertfile)?;
        check_certs("cacertfile", &cacertfile, &ca_pem)?;
        Ok(Self {
            certfile,
            keyfile,
            cacertfile,
            server_name: None,
            cert_pem,
            key_pem,
            ca_pem,
        })
    }

    /// Checks every peer's certificate against `name` instead of the host
    /// part of its node name.
    #[must_use]
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// This node's certificate chain file.
    pub fn certfile(&self) -> &Path {
        &self.certfile
    }

    /// This node's private key file.
    pub fn keyfile(&self) -> &Path {
        &self.keyfile
    }

    /// The CA certificate file.
    pub fn cacertfile(&self) -> &Path {
        &self.cacertfile
    }

    /// The fixed name peers' certificates are checked against, if any.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, &self.key_pem)
    }

    /// The listener's side: this node's identity; client certificates are
    /// required and must chain to the CA. A TLS handshake that takes longer
    /// than `limit` is dropped.
    pub(crate) fn server_config(&self, limit: Duration) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity())
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
            .client_auth_optional(false)
            .timeout(limit)
    }

    /// The dialer's side towards `peer`: the CA as the only root, this
    /// node's identity as the client certificate.
    pub(crate) fn client_config(&self, peer: &NodeName, limit: Duration) -> ClientTlsConfig {
        let name = self.server_name.as_deref().unwrap_or_else(|| peer.host());
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(self.identity())
            .domain_name(name)
            .timeout(limit)
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
    /// Mutual TLS on every link, accepted and dialed; `None`: plain HTTP/2.
    pub tls: Option<DistTls>,
    /// `cluster.autoclean`: a member without a link for this long is
    /// removed from the cluster, as by `force_leave`; `None`: never.
    pub autoclean: Option<Duration>,
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
            .field("tls", &self.tls)
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
            tls: None,
            autoclean: None,
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
