//! The typed schema: one struct per section, EMQX's key names, EMQX's
//! defaults, `deny_unknown_fields` everywhere so a misspelt key is an error.
//!
//! Every struct is `#[serde(default)]`: a key left out takes the value of the
//! struct's `Default`, which is also what the embedded default file says (a
//! test checks that the two agree).

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Declares a keyword enum: its serde names, `Default`, `as_str` and `Display`.
macro_rules! keyword_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
        default $default:ident
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl Default for $name {
            fn default() -> Self {
                Self::$default
            }
        }

        impl $name {
            /// The keyword as written in the configuration.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mod cluster;
mod listeners;
mod mqtt;
mod ops;
mod security;

pub use cluster::{
    Cluster, DbBackend, DbRole, DiscoveryStrategy, Dist, DistTls, DnsDiscovery, DnsRecordType,
    Node, StaticDiscovery, DIST_BASE_PORT,
};
pub use listeners::{
    Access, AccessRule, AccessRuleError, AccessRules, IpNet, ListenerRef, Listeners, MqttPiggyback,
    QuicListener, SslListener, SslOptions, TcpKeepalive, TcpListener, TcpOptions, TlsVersion,
    Verify, WebsocketOptions, WsListener, WssListener,
};
pub use mqtt::{Mqtt, PeerCertAs, Retainer, SharedSubscriptionStrategy, MAX_PACKET_SIZE};
pub use ops::{
    Admin, ConsoleLog, FileLog, Log, LogFormatter, LogLevel, Prometheus, SysEventMessages,
    SysTopics,
};
pub use security::{
    Authenticator, Authorization, AuthzCache, AuthzSource, AuthzSourceType, Backend, DenyAction,
    HttpMethod, JwtAlgorithm, Mechanism, NoMatch, PasswordHash, UserIdType,
};

/// The configuration roots. Environment variables under any other root are
/// ignored, as EMQX ignores them.
pub(crate) const ROOTS: &[&str] = &[
    "node",
    "cluster",
    "listeners",
    "mqtt",
    "retainer",
    "authentication",
    "authorization",
    "log",
    "prometheus",
    "admin",
    "sys_topics",
];

/// A node's whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// This node: name, cookie, data directory, role.
    pub node: Node,
    /// Cluster membership, discovery and the distribution layer.
    pub cluster: Cluster,
    /// MQTT listeners by type and name.
    pub listeners: Listeners,
    /// MQTT protocol limits and session settings.
    pub mqtt: Mqtt,
    /// Retained messages.
    pub retainer: Retainer,
    /// The authenticator chain, tried in order; empty allows anonymous clients.
    pub authentication: Vec<Authenticator>,
    /// Publish and subscribe authorization.
    pub authorization: Authorization,
    /// Logging.
    pub log: Log,
    /// The Prometheus scrape endpoint.
    pub prometheus: Prometheus,
    /// The admin API endpoint.
    pub admin: Admin,
    /// `$SYS` topics.
    pub sys_topics: SysTopics,
}

impl Config {
    /// Checks ranges and cross-field rules; the first problem is returned as
    /// one `config error:` line naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // What the node cannot do is said first: a TLS listener without
        // certificates is refused for being TLS, not for the certificates.
        self.check_supported()?;
        self.node.validate()?;
        self.cluster.validate(&self.node)?;
        self.listeners.validate()?;
        self.mqtt.validate()?;
        self.retainer.validate()?;
        for (i, authn) in self.authentication.iter().enumerate() {
            authn.validate(&format!("authentication.{}", i + 1))?;
        }
        self.authorization.validate()?;
        self.log.validate()?;
        self.sys_topics.validate()?;
        // The admin endpoint must not collide with an MQTT listener (port 0
        // is a port the OS picks at bind time: never a collision).
        if let Some(l) = self
            .listeners
            .enabled()
            .find(|l| l.bind == self.admin.bind && l.bind.0.port() != 0)
        {
            return Err(ConfigError::invalid(
                "admin.bind",
                format!("\"{}\"", self.admin.bind),
                format!(
                    "expected an address not used by listeners.{}.{}",
                    l.kind, l.name
                ),
            ));
        }
        Ok(())
    }
}

/// Fails with `expected <what>` at `path` unless `ok`.
pub(crate) fn check(
    ok: bool,
    path: &str,
    value: impl std::fmt::Display,
    what: &str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            path,
            value,
            format!("expected {what}"),
        ))
    }
}

/// Whether an optional file path is set to something.
pub(crate) fn is_set(path: &Option<std::path::PathBuf>) -> bool {
    path.as_ref().is_some_and(|p| !p.as_os_str().is_empty())
}
