//! `listeners.<type>.<name>`: tcp, ssl, ws, wss and quic.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{check, is_set};
use crate::error::ConfigError;
use crate::types::{comma_list, Bind, ByteSize, Duration, Limit};

mod access;
#[cfg(test)]
mod tests;

pub use access::{Access, AccessRule, AccessRuleError, AccessRules, IpNet};

/// `tcp_options`, shared by the TCP-based listener types.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TcpOptions {
    /// Listen backlog.
    pub backlog: u32,
    /// A write blocked this long closes the connection (with
    /// `send_timeout_close`).
    pub send_timeout: Duration,
    /// Whether a write blocked for `send_timeout` closes the connection;
    /// `false`: a blocked write waits for as long as it takes.
    pub send_timeout_close: bool,
    /// `TCP_NODELAY`.
    pub nodelay: bool,
    /// `SO_REUSEADDR` on the listening socket.
    pub reuseaddr: bool,
    /// TCP keepalive as `Idle,Interval,Probes` (seconds), or `none`.
    pub keepalive: String,
    /// `SO_RCVBUF` of the listening and accepted sockets; unset: the OS's.
    pub recbuf: Option<ByteSize>,
    /// `SO_SNDBUF` of the listening and accepted sockets; unset: the OS's.
    pub sndbuf: Option<ByteSize>,
    /// The user-level buffer: how much a connection reads from its socket
    /// at a time; unset: 8KB.
    pub buffer: Option<ByteSize>,
}

impl Default for TcpOptions {
    fn default() -> Self {
        Self {
            backlog: 1024,
            send_timeout: Duration::secs(15),
            send_timeout_close: true,
            nodelay: true,
            reuseaddr: true,
            keepalive: "none".to_owned(),
            recbuf: None,
            sndbuf: None,
            buffer: None,
        }
    }
}

/// TCP keepalive probing, from `tcp_options.keepalive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpKeepalive {
    /// Idle time before the first probe.
    pub idle: std::time::Duration,
    /// Time between probes.
    pub interval: std::time::Duration,
    /// Unanswered probes before the connection is dropped.
    pub probes: u32,
}

impl TcpOptions {
    /// What `keepalive` asks for: `None` for `none`, else the probing
    /// settings. The error says what was expected.
    pub fn tcp_keepalive(&self) -> Result<Option<TcpKeepalive>, String> {
        const EXPECTED: &str =
            "expected none or Idle,Interval,Probes such as 240,30,5 (seconds, seconds, count; \
             Idle and Interval 1..=32767, Probes 1..=127)";
        let text = self.keepalive.trim();
        if text == "none" {
            return Ok(None);
        }
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let [idle, interval, probes] = parts[..] else {
            return Err(EXPECTED.to_owned());
        };
        let number = |s: &str, max: u32| s.parse::<u32>().ok().filter(|n| (1..=max).contains(n));
        match (
            number(idle, 32767),
            number(interval, 32767),
            number(probes, 127),
        ) {
            (Some(idle), Some(interval), Some(probes)) => Ok(Some(TcpKeepalive {
                idle: std::time::Duration::from_secs(u64::from(idle)),
                interval: std::time::Duration::from_secs(u64::from(interval)),
                probes,
            })),
            _ => Err(EXPECTED.to_owned()),
        }
    }

    fn validate(&self, at: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        check(
            (1..=i32::MAX as u32).contains(&self.backlog),
            &at("tcp_options.backlog"),
            self.backlog,
            "between 1 and 2147483647",
        )?;
        check(
            !self.send_timeout.0.is_zero(),
            &at("tcp_options.send_timeout"),
            self.send_timeout,
            "a positive duration",
        )?;
        if let Err(expected) = self.tcp_keepalive() {
            return Err(ConfigError::invalid(
                &at("tcp_options.keepalive"),
                format!("{:?}", self.keepalive),
                expected,
            ));
        }
        for (key, size) in [("recbuf", self.recbuf), ("sndbuf", self.sndbuf)] {
            if let Some(size) = size {
                check(
                    (1024..=1 << 30).contains(&size.0),
                    &at(&format!("tcp_options.{key}")),
                    size,
                    "a size between 1KB and 1GB",
                )?;
            }
        }
        if let Some(size) = self.buffer {
            check(
                (1024..=1 << 20).contains(&size.0),
                &at("tcp_options.buffer"),
                size,
                "a size between 1KB and 1MB",
            )?;
        }
        Ok(())
    }
}

keyword_enum! {
    /// Peer verification (`ssl_options.verify`).
    pub enum Verify {
        /// Do not ask for a client certificate.
        VerifyNone = "verify_none",
        /// Ask for a client certificate and verify it against `cacertfile`.
        VerifyPeer = "verify_peer",
    }
    default VerifyNone
}

keyword_enum! {
    /// TLS protocol versions that can be enabled.
    pub enum TlsVersion {
        /// TLS 1.3.
        Tlsv13 = "tlsv1.3",
        /// TLS 1.2.
        Tlsv12 = "tlsv1.2",
    }
    default Tlsv13
}

/// `ssl_options`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SslOptions {
    /// CA certificates for verifying clients (PEM).
    pub cacertfile: Option<PathBuf>,
    /// Server certificate chain (PEM).
    pub certfile: Option<PathBuf>,
    /// Server private key (PEM).
    pub keyfile: Option<PathBuf>,
    /// Whether to verify client certificates.
    pub verify: Verify,
    /// With `verify_peer`, refuse clients without a certificate.
    pub fail_if_no_peer_cert: bool,
    /// Enabled protocol versions.
    pub versions: Vec<TlsVersion>,
    /// Cipher suites by IANA name; empty means the library's defaults. A
    /// comma-separated string works too.
    #[serde(deserialize_with = "comma_list")]
    pub ciphers: Vec<String>,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
}

impl Default for SslOptions {
    fn default() -> Self {
        Self {
            cacertfile: None,
            certfile: None,
            keyfile: None,
            verify: Verify::VerifyNone,
            fail_if_no_peer_cert: false,
            versions: vec![TlsVersion::Tlsv13, TlsVersion::Tlsv12],
            ciphers: Vec::new(),
            handshake_timeout: Duration::secs(15),
        }
    }
}

keyword_enum! {
    /// How many MQTT packets one WebSocket frame may carry.
    pub enum MqttPiggyback {
        /// One packet per frame.
        Single = "single",
        /// Several packets per frame.
        Multiple = "multiple",
    }
    default Multiple
}

/// `websocket` options of ws and wss listeners.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebsocketOptions {
    /// HTTP path of the MQTT endpoint.
    pub mqtt_path: String,
    /// Packets per frame.
    pub mqtt_piggyback: MqttPiggyback,
    /// Accepted `Sec-WebSocket-Protocol` values; a comma-separated string
    /// works too.
    #[serde(deserialize_with = "comma_list")]
    pub supported_subprotocols: Vec<String>,
    /// Refuse browsers whose `Origin` is not in `check_origins`.
    pub check_origin_enable: bool,
    /// With `check_origin_enable`, accept requests without an `Origin`.
    pub allow_origin_absence: bool,
    /// Allowed origins.
    #[serde(deserialize_with = "comma_list")]
    pub check_origins: Vec<String>,
    /// permessage-deflate.
    pub compress: bool,
    /// Largest frame accepted.
    pub max_frame_size: Limit<ByteSize>,
    /// Header carrying the client address behind a proxy.
    pub proxy_address_header: String,
    /// Header carrying the client port behind a proxy.
    pub proxy_port_header: String,
}

impl Default for WebsocketOptions {
    fn default() -> Self {
        Self {
            mqtt_path: "/mqtt".to_owned(),
            mqtt_piggyback: MqttPiggyback::Multiple,
            supported_subprotocols: ["mqtt", "mqtt-v3", "mqtt-v3.1.1", "mqtt-v5"]
                .map(str::to_owned)
                .to_vec(),
            check_origin_enable: false,
            allow_origin_absence: true,
            check_origins: ["http://localhost:18083", "http://127.0.0.1:18083"]
                .map(str::to_owned)
                .to_vec(),
            compress: false,
            max_frame_size: Limit::Infinity,
            proxy_address_header: "x-forwarded-for".to_owned(),
            proxy_port_header: "x-forwarded-port".to_owned(),
        }
    }
}

/// Declares a listener type: the keys every type has, plus its own.
macro_rules! listener {
    (
        $(#[$meta:meta])*
        $name:ident, port $port:expr,
        { $($(#[$fmeta:meta])* $field:ident: $ty:ty = $default:expr,)* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            /// Whether the listener is started.
            pub enable: bool,
            /// Address to listen on; a bare port means 0.0.0.0.
            pub bind: Bind,
            /// Connections held at once; more are refused.
            pub max_connections: Limit,
            /// Acceptor tasks.
            pub acceptors: u32,
            /// Expect a PROXY protocol (v1/v2) header on each connection.
            pub proxy_protocol: bool,
            /// Time allowed for the PROXY header.
            pub proxy_protocol_timeout: Duration,
            /// Prefix added to every topic of this listener's clients.
            pub mountpoint: String,
            /// Run the authentication chain for this listener's clients.
            pub enable_authn: bool,
            /// Connection rules such as `allow all`, `deny 10.0.0.0/8`.
            pub access_rules: Vec<String>,
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    enable: true,
                    bind: Bind::any($port),
                    max_connections: Limit::Infinity,
                    acceptors: 16,
                    proxy_protocol: false,
                    proxy_protocol_timeout: Duration::secs(3),
                    mountpoint: String::new(),
                    enable_authn: true,
                    access_rules: vec!["allow all".to_owned()],
                    $($field: $default,)*
                }
            }
        }
    };
}

listener! {
    /// `listeners.tcp.<name>`: MQTT over TCP.
    TcpListener, port 1883, {
        /// Socket options.
        tcp_options: TcpOptions = TcpOptions::default(),
    }
}

listener! {
    /// `listeners.ssl.<name>`: MQTT over TLS.
    SslListener, port 8883, {
        /// Socket options.
        tcp_options: TcpOptions = TcpOptions::default(),
        /// TLS settings.
        ssl_options: SslOptions = SslOptions::default(),
    }
}

listener! {
    /// `listeners.ws.<name>`: MQTT over WebSocket.
    WsListener, port 8083, {
        /// Socket options.
        tcp_options: TcpOptions = TcpOptions::default(),
        /// WebSocket settings.
        websocket: WebsocketOptions = WebsocketOptions::default(),
    }
}

listener! {
    /// `listeners.wss.<name>`: MQTT over WebSocket and TLS.
    WssListener, port 8084, {
        /// Socket options.
        tcp_options: TcpOptions = TcpOptions::default(),
        /// TLS settings.
        ssl_options: SslOptions = SslOptions::default(),
        /// WebSocket settings.
        websocket: WebsocketOptions = WebsocketOptions::default(),
    }
}

listener! {
    /// `listeners.quic.<name>`: MQTT over QUIC (UDP).
    QuicListener, port 14567, {
        /// TLS settings (QUIC always uses TLS 1.3).
        ssl_options: SslOptions = SslOptions::default(),
    }
}

/// Implements `view` for a listener type.
macro_rules! view {
    ($ty:ty, $kind:literal, |$l:ident| tcp: $tcp:expr, ssl: $ssl:expr, ws: $ws:expr) => {
        impl $ty {
            fn view<'a>(&'a self, name: &'a str) -> ListenerRef<'a> {
                let $l = self;
                ListenerRef {
                    kind: $kind,
                    name,
                    enable: $l.enable,
                    bind: $l.bind,
                    max_connections: $l.max_connections,
                    acceptors: $l.acceptors,
                    mountpoint: &$l.mountpoint,
                    proxy_protocol_timeout: $l.proxy_protocol_timeout,
                    access_rules: &$l.access_rules,
                    tcp_options: $tcp,
                    ssl_options: $ssl,
                    websocket: $ws,
                }
            }
        }
    };
}

view!(TcpListener, "tcp", |l| tcp: Some(&l.tcp_options), ssl: None, ws: None);
view!(SslListener, "ssl", |l| tcp: Some(&l.tcp_options), ssl: Some(&l.ssl_options), ws: None);
view!(WsListener, "ws", |l| tcp: Some(&l.tcp_options), ssl: None, ws: Some(&l.websocket));
view!(WssListener, "wss", |l| tcp: Some(&l.tcp_options), ssl: Some(&l.ssl_options), ws: Some(&l.websocket));
view!(QuicListener, "quic", |l| tcp: None, ssl: Some(&l.ssl_options), ws: None);

/// `listeners`: named listeners of each type.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listeners {
    /// TCP listeners; `default` on 0.0.0.0:1883 is enabled.
    pub tcp: BTreeMap<String, TcpListener>,
    /// TLS listeners; `default` on 8883 is present but disabled.
    pub ssl: BTreeMap<String, SslListener>,
    /// WebSocket listeners; `default` on 8083 is present but disabled.
    pub ws: BTreeMap<String, WsListener>,
    /// WebSocket-over-TLS listeners; `default` on 8084 is present but disabled.
    pub wss: BTreeMap<String, WssListener>,
    /// QUIC listeners; none by default.
    pub quic: BTreeMap<String, QuicListener>,
}

impl Default for Listeners {
    fn default() -> Self {
        fn one<T>(listener: T) -> BTreeMap<String, T> {
            BTreeMap::from([("default".to_owned(), listener)])
        }
        Self {
            tcp: one(TcpListener::default()),
            ssl: one(SslListener {
                enable: false,
                ..SslListener::default()
            }),
            ws: one(WsListener {
                enable: false,
                ..WsListener::default()
            }),
            wss: one(WssListener {
                enable: false,
                ..WssListener::default()
            }),
            quic: BTreeMap::new(),
        }
    }
}

/// A view of one listener of any type, for code that treats them alike.
#[derive(Clone, Copy, Debug)]
pub struct ListenerRef<'a> {
    /// `tcp`, `ssl`, `ws`, `wss` or `quic`.
    pub kind: &'static str,
    /// The listener's name (`default`).
    pub name: &'a str,
    /// Whether it is started.
    pub enable: bool,
    /// Its address.
    pub bind: Bind,
    /// Its connection limit.
    pub max_connections: Limit,
    /// Its acceptor count.
    pub acceptors: u32,
    /// Its mountpoint (empty for none).
    pub mountpoint: &'a str,
    /// Time allowed for a PROXY header.
    pub proxy_protocol_timeout: Duration,
    /// Its access rules, as written.
    pub access_rules: &'a [String],
    /// Its socket options, for the TCP-based types.
    pub tcp_options: Option<&'a TcpOptions>,
    /// Its TLS settings, for ssl, wss and quic.
    pub ssl_options: Option<&'a SslOptions>,
    /// Its WebSocket settings, for ws and wss.
    pub websocket: Option<&'a WebsocketOptions>,
}

impl Listeners {
    /// Every listener, enabled or not, by type then name.
    pub fn iter(&self) -> impl Iterator<Item = ListenerRef<'_>> {
        let tcp = self.tcp.iter().map(|(name, l)| l.view(name));
        let ssl = self.ssl.iter().map(|(name, l)| l.view(name));
        let ws = self.ws.iter().map(|(name, l)| l.view(name));
        let wss = self.wss.iter().map(|(name, l)| l.view(name));
        let quic = self.quic.iter().map(|(name, l)| l.view(name));
        tcp.chain(ssl).chain(ws).chain(wss).chain(quic)
    }

    /// The listeners to start.
    pub fn enabled(&self) -> impl Iterator<Item = ListenerRef<'_>> {
        self.iter().filter(|l| l.enable)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let mut seen: Vec<ListenerRef<'_>> = Vec::new();
        for l in self.iter() {
            let at = |key: &str| format!("listeners.{}.{}.{key}", l.kind, l.name);
            check(
                l.acceptors >= 1,
                &at("acceptors"),
                l.acceptors,
                "at least 1",
            )?;
            check(
                mountpoint_is_valid(l.mountpoint),
                &at("mountpoint"),
                format!("{:?}", l.mountpoint),
                "topic text without +, # or U+0000, up to 65535 bytes, whose only placeholders are ${clientid} and ${username}",
            )?;
            check(
                !l.proxy_protocol_timeout.0.is_zero(),
                &at("proxy_protocol_timeout"),
                l.proxy_protocol_timeout,
                "a positive duration",
            )?;
            if let Err((rule, err)) = AccessRules::parse(l.access_rules) {
                return Err(ConfigError::invalid(
                    &at("access_rules"),
                    format!("{rule:?}"),
                    format!(
                        "expected rules such as \"allow all\", \"deny 10.0.0.0/8\" or \
                         \"allow 192.168.1.1\" ({err})"
                    ),
                ));
            }
            if let Some(tcp) = l.tcp_options {
                tcp.validate(&at)?;
            }
            if let Some(ws) = l.websocket {
                check(
                    ws.mqtt_path.starts_with('/'),
                    &at("websocket.mqtt_path"),
                    format!("{:?}", ws.mqtt_path),
                    "a path starting with /",
                )?;
            }
            if !l.enable {
                continue;
            }
            if let Some(ssl) = l.ssl_options {
                for (key, file) in [("certfile", &ssl.certfile), ("keyfile", &ssl.keyfile)] {
                    check(
                        is_set(file),
                        &at(&format!("ssl_options.{key}")),
                        "unset",
                        "a PEM file path for an enabled TLS listener",
                    )?;
                }
                if ssl.verify == Verify::VerifyPeer {
                    check(
                        is_set(&ssl.cacertfile),
                        &at("ssl_options.cacertfile"),
                        "unset",
                        "a PEM file path when verify = verify_peer",
                    )?;
                }
                check(
                    !ssl.versions.is_empty(),
                    &at("ssl_options.versions"),
                    "[]",
                    "at least one of tlsv1.3, tlsv1.2",
                )?;
            }
            // QUIC is UDP, so it may share a port number with a TCP listener;
            // port 0 is a port the OS picks at bind time: never a collision.
            let is_udp = |k: &str| k == "quic";
            if let Some(other) = seen.iter().find(|o| {
                o.bind == l.bind && l.bind.0.port() != 0 && is_udp(o.kind) == is_udp(l.kind)
            }) {
                return Err(ConfigError::invalid(
                    &at("bind"),
                    format!("\"{}\"", l.bind),
                    format!(
                        "expected an address not used by listeners.{}.{}",
                        other.kind, other.name
                    ),
                ));
            }
            seen.push(l);
        }
        Ok(())
    }
}

/// Whether a mountpoint can prefix topic names: no wildcard or U+0000, not
/// longer than a topic, and no placeholder but `${clientid}` and
/// `${username}` (the broker replaces those at CONNECT).
fn mountpoint_is_valid(mountpoint: &str) -> bool {
    let without = mountpoint
        .replace("${clientid}", "")
        .replace("${username}", "");
    mountpoint.len() <= 65535 && !without.contains(['+', '#', '\0']) && !without.contains("${")
}
