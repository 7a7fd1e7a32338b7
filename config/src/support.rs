//! Which keys a running node honours, and which it refuses.
//!
//! Every key the schema accepts is in [`KEYS`], as one of:
//!
//! - [`Support::Wired`]: it takes effect in a running node; the entry names
//!   the test file that shows the effect.
//! - [`Support::Refused`]: the node does not have the behaviour it asks
//!   for yet. A value that asks for it is refused by `check-config` and
//!   `start` with one line naming the key ([`Config::check_supported`]);
//!   the default, which asks for nothing, loads.
//! - [`Support::Under`]: it only matters inside a block whose switch is
//!   refused (the options of a TLS listener, of an authenticator).
//!
//! A test walks every leaf key of the schema ([`schema_keys`]) and fails
//! when one has no entry, so a key cannot be added without deciding which.

use crate::error::ConfigError;
use crate::schema::{
    Authenticator, AuthzSource, Config, DiscoveryStrategy, DnsRecordType, NoMatch, PeerCertAs,
    QuicListener,
};
use Support::{Refused, Under, Wired};

/// Where a key stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Takes effect in a running node; the test file (from the workspace
    /// root) shows it.
    Wired(&'static str),
    /// Refused unless left at a value that asks for nothing: `sample` is a
    /// HOCON line that asks for the missing behaviour and must be refused.
    Refused {
        /// A setting that must be refused.
        sample: &'static str,
    },
    /// Only matters when the key named here, itself refused, is set.
    Under(&'static str),
}

/// Every leaf key of the schema, with `*` for a listener name or a list
/// index: `listeners.tcp.*.bind`, `authentication.*.mechanism`.
pub fn schema_keys() -> Vec<String> {
    let mut sample = Config::default();
    sample
        .listeners
        .quic
        .insert("default".to_owned(), QuicListener::default());
    sample.authentication.push(Authenticator::default());
    sample.authorization.sources.push(AuthzSource::default());
    let tree = serde_json::to_value(&sample).unwrap_or_default();
    let mut keys = Vec::new();
    walk(&tree, String::new(), &mut keys);
    keys
}

fn walk(value: &serde_json::Value, path: String, keys: &mut Vec<String>) {
    use serde_json::Value;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        // The listeners of one type are a map by name.
        Value::Object(map) if path.starts_with("listeners.") && !path[10..].contains('.') => {
            for v in map.values() {
                walk(v, join("*"), keys);
            }
        }
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                walk(v, join(k), keys);
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            for v in items {
                walk(v, join("*"), keys);
            }
        }
        _ => keys.push(path),
    }
}

/// The entry for `key` (a [`schema_keys`] name): its own, or that of the
/// nearest block above it (`listeners.ssl.*` covers every key of a TLS
/// listener).
pub fn support(key: &str) -> Option<Support> {
    let mut at = key;
    loop {
        if let Some((_, s)) = KEYS.iter().find(|(k, _)| *k == at) {
            return Some(*s);
        }
        at = &at[..at.rfind('.')?];
    }
}

/// Every key of the schema and where it stands.
pub const KEYS: &[(&str, Support)] = &[
    // node
    ("node.name", Wired("tests/tests/cluster_membership.rs")),
    ("node.cookie", Wired("tests/tests/cluster_faults.rs")),
    ("node.data_dir", Wired("tests/tests/node_lifecycle.rs")),
    ("node.role", Wired("tests/tests/cluster_roles.rs")),
    // cluster
    ("cluster.name", Wired("tests/tests/cluster_faults.rs")),
    ("cluster.discovery_strategy", Wired("tests/tests/cluster_membership.rs")),
    ("cluster.static.seeds", Wired("tests/tests/cluster_membership.rs")),
    ("cluster.dns.name", Wired("cluster/tests/t30_dns.rs")),
    (
        "cluster.dns.record_type",
        Refused {
            sample: "cluster { discovery_strategy = dns, dns.record_type = srv }",
        },
    ),
    ("cluster.core_nodes", Wired("tests/tests/cluster_roles.rs")),
    ("cluster.db_backend", Wired("config/tests/config/errors.rs")),
    ("cluster.autoclean", Wired("tests/tests/cluster_membership.rs")),
    (
        "cluster.autoheal",
        Refused {
            sample: "cluster.autoheal = false",
        },
    ),
    ("cluster.owned_rows_grace_period", Wired("tests/tests/cluster_roles.rs")),
    ("cluster.dist.bind", Wired("tests/src/cluster.rs")),
    ("cluster.dist.heartbeat_interval", Wired("tests/src/cluster.rs")),
    ("cluster.dist.heartbeat_timeout", Wired("tests/tests/cluster_faults.rs")),
    ("cluster.dist.connect_timeout", Wired("tests/src/cluster.rs")),
    ("cluster.dist.fault_injection", Wired("tests/src/cluster.rs")),
    ("cluster.dist.tls.enable", Wired("tests/tests/cluster_tls.rs")),
    ("cluster.dist.tls.certfile", Wired("tests/tests/cluster_tls.rs")),
    ("cluster.dist.tls.keyfile", Wired("tests/tests/cluster_tls.rs")),
    ("cluster.dist.tls.cacertfile", Wired("tests/tests/cluster_tls.rs")),
    // listeners.tcp
    ("listeners.tcp.*.enable", Wired("tests/tests/mqtt_listener.rs")),
    ("listeners.tcp.*.bind", Wired("tests/tests/mqtt_listener.rs")),
    ("listeners.tcp.*.max_connections", Wired("tests/tests/mqtt_limits.rs")),
    ("listeners.tcp.*.acceptors", Wired("tests/tests/mqtt_listener.rs")),
    ("listeners.tcp.*.proxy_protocol", Wired("tests/tests/mqtt_listener.rs")),
    ("listeners.tcp.*.proxy_protocol_timeout", Wired("tests/tests/mqtt_listener.rs")),
    ("listeners.tcp.*.mountpoint", Wired("tests/tests/mqtt_features.rs")),
    ("listeners.tcp.*.enable_authn", Under("authentication.*.enable")),
    ("listeners.tcp.*.access_rules", Wired("tests/tests/mqtt_listener.rs")),
    ("listeners.tcp.*.tcp_options.backlog", Wired("tests/tests/mqtt_listener.rs")),
    ("listeners.tcp.*.tcp_options.send_timeout", Wired("tests/tests/mqtt_listener.rs")),
    // Only a socket shows these: unit tests on real accepted sockets.
    ("listeners.tcp.*.tcp_options.nodelay", Wired("actors/src/listener/socket.rs")),
    ("listeners.tcp.*.tcp_options.reuseaddr", Wired("actors/src/listener/socket.rs")),
    ("listeners.tcp.*.tcp_options.keepalive", Wired("actors/src/listener/socket.rs")),
    ("listeners.tcp.*.tcp_options.recbuf", Wired("actors/src/listener/socket.rs")),
    ("listeners.tcp.*.tcp_options.sndbuf", Wired("actors/src/listener/socket.rs")),
    ("listeners.tcp.*.tcp_options.buffer", Wired("actors/src/listener.rs")),
    ("listeners.tcp.*.tcp_options.send_timeout_close", Wired("tests/tests/mqtt_listener.rs")),
    // listeners of the types not served yet
    (
        "listeners.ssl.*.enable",
        Refused {
            sample: "listeners.ssl.default { enable = true, ssl_options { certfile = c.pem, keyfile = k.pem } }",
        },
    ),
    ("listeners.ssl.*", Under("listeners.ssl.*.enable")),
    (
        "listeners.ws.*.enable",
        Refused {
            sample: "listeners.ws.default.enable = true",
        },
    ),
    ("listeners.ws.*", Under("listeners.ws.*.enable")),
    (
        "listeners.wss.*.enable",
        Refused {
            sample: "listeners.wss.default { enable = true, ssl_options { certfile = c.pem, keyfile = k.pem } }",
        },
    ),
    ("listeners.wss.*", Under("listeners.wss.*.enable")),
    (
        "listeners.quic.*.enable",
        Refused {
            sample: "listeners.quic.default { ssl_options { certfile = c.pem, keyfile = k.pem } }",
        },
    ),
    ("listeners.quic.*", Under("listeners.quic.*.enable")),
    // mqtt
    ("mqtt.idle_timeout", Wired("tests/tests/mqtt_connect.rs")),
    ("mqtt.max_packet_size", Wired("tests/tests/mqtt_limits.rs")),
    ("mqtt.max_clientid_len", Wired("tests/tests/mqtt_limits.rs")),
    ("mqtt.max_topic_levels", Wired("tests/tests/mqtt_limits.rs")),
    ("mqtt.max_qos_allowed", Wired("tests/tests/mqtt_settings.rs")),
    ("mqtt.max_topic_alias", Wired("tests/tests/mqtt_limits.rs")),
    ("mqtt.retain_available", Wired("tests/tests/mqtt_settings.rs")),
    ("mqtt.wildcard_subscription", Wired("tests/tests/mqtt_settings.rs")),
    ("mqtt.shared_subscription", Wired("tests/tests/mqtt_settings.rs")),
    ("mqtt.shared_subscription_strategy", Wired("tests/tests/mqtt_shared.rs")),
    ("mqtt.exclusive_subscription", Wired("tests/tests/mqtt_features.rs")),
    ("mqtt.ignore_loop_deliver", Wired("tests/tests/mqtt_settings.rs")),
    ("mqtt.strict_mode", Wired("tests/tests/mqtt_features.rs")),
    ("mqtt.response_information", Wired("tests/tests/mqtt_connect.rs")),
    ("mqtt.server_keepalive", Wired("tests/tests/mqtt_connect.rs")),
    ("mqtt.keepalive_multiplier", Wired("tests/tests/mqtt_settings.rs")),
    (
        "mqtt.keepalive_check_interval",
        Refused {
            sample: "mqtt.keepalive_check_interval = 100ms",
        },
    ),
    ("mqtt.retry_interval", Wired("tests/tests/mqtt_timers.rs")),
    ("mqtt.max_subscriptions", Wired("tests/tests/mqtt_limits.rs")),
    ("mqtt.upgrade_qos", Wired("tests/tests/mqtt_settings.rs")),
    ("mqtt.max_inflight", Wired("tests/tests/mqtt_session.rs")),
    ("mqtt.max_awaiting_rel", Wired("tests/tests/mqtt_settings.rs")),
    ("mqtt.await_rel_timeout", Wired("tests/tests/mqtt_timers.rs")),
    ("mqtt.session_expiry_interval", Wired("tests/tests/mqtt_session.rs")),
    ("mqtt.message_expiry_interval", Wired("tests/tests/mqtt_features.rs")),
    ("mqtt.max_mqueue_len", Wired("tests/tests/mqtt_session.rs")),
    ("mqtt.mqueue_store_qos0", Wired("tests/tests/mqtt_settings.rs")),
    ("mqtt.use_username_as_clientid", Wired("tests/tests/mqtt_settings.rs")),
    (
        "mqtt.peer_cert_as_username",
        Refused {
            sample: "mqtt.peer_cert_as_username = cn",
        },
    ),
    (
        "mqtt.peer_cert_as_clientid",
        Refused {
            sample: "mqtt.peer_cert_as_clientid = cn",
        },
    ),
    // retainer
    ("retainer.enable", Wired("tests/tests/mqtt_settings.rs")),
    ("retainer.max_retained_messages", Wired("tests/tests/mqtt_limits.rs")),
    ("retainer.max_payload_size", Wired("tests/tests/mqtt_settings.rs")),
    ("retainer.msg_expiry_interval", Wired("tests/tests/mqtt_features.rs")),
    ("retainer.msg_clear_interval", Wired("tests/tests/mqtt_features.rs")),
    // authentication and authorization
    (
        "authentication.*.enable",
        Refused {
            sample: "authentication = [{ mechanism = password_based, backend = built_in_database }]",
        },
    ),
    ("authentication.*", Under("authentication.*.enable")),
    (
        "authorization.no_match",
        Refused {
            sample: "authorization.no_match = deny",
        },
    ),
    ("authorization.deny_action", Under("authorization.no_match")),
    ("authorization.cache.enable", Under("authorization.sources.*.enable")),
    ("authorization.cache.max_size", Under("authorization.sources.*.enable")),
    ("authorization.cache.ttl", Under("authorization.sources.*.enable")),
    (
        "authorization.sources.*.enable",
        Refused {
            sample: "authorization.sources = [{ type = file, path = acl.conf }]",
        },
    ),
    ("authorization.sources.*", Under("authorization.sources.*.enable")),
    // log
    ("log.console.enable", Wired("tests/tests/node_logs.rs")),
    ("log.console.level", Wired("tests/tests/node_logs.rs")),
    ("log.console.formatter", Wired("tests/tests/node_lifecycle.rs")),
    ("log.file.enable", Wired("tests/tests/node_logs.rs")),
    ("log.file.level", Wired("tests/tests/node_logs.rs")),
    ("log.file.formatter", Wired("tests/tests/node_logs.rs")),
    ("log.file.path", Wired("tests/tests/node_logs.rs")),
    ("log.file.rotation_count", Wired("tests/tests/node_logs.rs")),
    ("log.file.rotation_size", Wired("tests/tests/node_logs.rs")),
    // prometheus, admin, $SYS
    (
        "prometheus.enable",
        Refused {
            sample: "prometheus.enable = true",
        },
    ),
    ("prometheus.enable_basic_auth", Under("prometheus.enable")),
    ("admin.enable", Wired("tests/tests/node_lifecycle.rs")),
    ("admin.bind", Wired("tests/tests/node_lifecycle.rs")),
    (
        "sys_topics.sys_msg_interval",
        Wired("tests/tests/sys_topics.rs"),
    ),
    (
        "sys_topics.sys_heartbeat_interval",
        Wired("tests/tests/sys_topics.rs"),
    ),
    (
        "sys_topics.sys_event_messages.client_connected",
        Wired("tests/tests/sys_topics.rs"),
    ),
    (
        "sys_topics.sys_event_messages.client_disconnected",
        Wired("tests/tests/sys_topics.rs"),
    ),
    (
        "sys_topics.sys_event_messages.client_subscribed",
        Refused {
            sample: "sys_topics.sys_event_messages.client_subscribed = true",
        },
    ),
    (
        "sys_topics.sys_event_messages.client_unsubscribed",
        Refused {
            sample: "sys_topics.sys_event_messages.client_unsubscribed = true",
        },
    ),
];

impl Config {
    /// Refuses a setting that asks for behaviour the node does not have
    /// yet, naming the key: see the module documentation.
    pub fn check_supported(&self) -> Result<(), ConfigError> {
        if let Some(l) = self.listeners.enabled().find(|l| l.kind != "tcp") {
            let what = match l.kind {
                "ssl" => "MQTT over TLS",
                "ws" => "MQTT over WebSocket",
                "wss" => "MQTT over WebSocket and TLS",
                _ => "MQTT over QUIC",
            };
            return Err(refuse(
                &format!("listeners.{}.{}.enable", l.kind, l.name),
                "true",
                &format!("{what} listeners are not served yet; only listeners.tcp"),
            ));
        }
        if let Some(i) = self.authentication.iter().position(|a| a.enable) {
            return Err(refuse(
                &format!("authentication.{}.enable", i + 1),
                "true",
                "authentication is not implemented yet (every client is let in); remove the \
                 authenticator or set enable = false",
            ));
        }
        if let Some(i) = self.authorization.sources.iter().position(|s| s.enable) {
            return Err(refuse(
                &format!("authorization.sources.{}.enable", i + 1),
                "true",
                "authorization is not implemented yet (every publish and subscribe is \
                 allowed); remove the source or set enable = false",
            ));
        }
        if self.authorization.no_match == NoMatch::Deny {
            return Err(refuse(
                "authorization.no_match",
                "deny",
                "authorization is not implemented yet (every publish and subscribe is allowed)",
            ));
        }
        let mqtt = &self.mqtt;
        for (key, value) in [
            ("peer_cert_as_username", mqtt.peer_cert_as_username),
            ("peer_cert_as_clientid", mqtt.peer_cert_as_clientid),
        ] {
            if value != PeerCertAs::Disabled {
                return Err(refuse(
                    &format!("mqtt.{key}"),
                    value,
                    "there are no TLS listeners yet, so no client certificates",
                ));
            }
        }
        if mqtt.keepalive_check_interval.get() < KEEPALIVE_RESOLUTION {
            return Err(refuse(
                "mqtt.keepalive_check_interval",
                mqtt.keepalive_check_interval,
                "keep alives are checked at each connection's own deadline, at most 250ms \
                 late; a shorter interval cannot be honoured",
            ));
        }
        let cluster = &self.cluster;
        if cluster.discovery_strategy == DiscoveryStrategy::Dns
            && cluster.dns.record_type != DnsRecordType::A
        {
            return Err(refuse(
                "cluster.dns.record_type",
                cluster.dns.record_type,
                "dns discovery reads A records only",
            ));
        }
        if !cluster.autoheal {
            return Err(refuse(
                "cluster.autoheal",
                "false",
                "links always re-form after a partition and the member lists merge",
            ));
        }
        if self.prometheus.enable {
            return Err(refuse(
                "prometheus.enable",
                "true",
                "the metrics endpoint is not served yet",
            ));
        }
        let events = &self.sys_topics.sys_event_messages;
        for (key, on) in [
            ("client_subscribed", events.client_subscribed),
            ("client_unsubscribed", events.client_unsubscribed),
        ] {
            if on {
                return Err(refuse(
                    &format!("sys_topics.sys_event_messages.{key}"),
                    "true",
                    "$SYS subscription events are not published yet (connected and \
                     disconnected are)",
                ));
            }
        }
        Ok(())
    }
}

/// The keep-alive wheel's resolution (girder-actors' `keepalive::TICK`).
const KEEPALIVE_RESOLUTION: std::time::Duration = std::time::Duration::from_millis(250);

/// The one-line refusal of a setting the node does not honour yet.
fn refuse(path: &str, value: impl std::fmt::Display, why: &str) -> ConfigError {
    ConfigError::invalid(path, value, format!("not supported yet: {why}"))
}
