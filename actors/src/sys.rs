//! `$SYS` topics (EMQX's `emqx_sys`): what a node says about itself, under
//! `$SYS/brokers/<node>/`, published through the node's router like any
//! message, so that a subscriber on any node of the cluster gets every
//! node's.
//!
//! | topic | payload | when |
//! | --- | --- | --- |
//! | `$SYS/brokers` | the running nodes, comma-separated | retained, every `sys_msg_interval` |
//! | `…/<node>/version` | the crate version | retained, every `sys_msg_interval` |
//! | `…/<node>/sysdescr` | `Girder` | retained, every `sys_msg_interval` |
//! | `…/<node>/stats/…`, `…/metrics/…` | a count | every `sys_msg_interval` |
//! | `…/<node>/uptime` | milliseconds | every `sys_heartbeat_interval` |
//! | `…/<node>/datetime` | RFC 3339, UTC | every `sys_heartbeat_interval` |
//! | `…/<node>/clients/<clientid>/connected` | JSON | on CONNECT accepted |
//! | `…/<node>/clients/<clientid>/disconnected` | JSON | when its socket ends |
//!
//! Messages are QoS 0 from an empty client id. A wildcard at the first
//! level does not match `$SYS` (MQTT-4.7.2-1): subscribers name it. Like
//! EMQX, a `$SYS` message nobody subscribed to is not counted as dropped.
//!
//! The periodic messages come from [`SysPublisher`], a supervised worker
//! under the root; the client events from the channel actor, through
//! [`client_connected`] and [`client_disconnected`].

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::{Actor, AsyncContext, Context};
use bytes::Bytes;
use girder_broker::channel::Channel;
use girder_broker::codec::{ByteStr, QoS};
use girder_broker::message::Message;
use girder_cluster::{ClusterHandle, NodeName};
use girder_config::SysTopics;
use girder_supervision::ChildSpec;
use tokio::net::TcpStream;

use crate::listener::ListenerContext;
use crate::metrics::Metrics;
use crate::node::NodeShared;
use crate::router::{DeliveryBatch, Mailbox, Router};

/// The `sysdescr` of every node.
const SYSDESCR: &str = "Girder";

/// Which client events a node publishes, and under which prefix.
#[derive(Debug, Clone)]
pub struct SysEvents {
    /// `$SYS/brokers/<node>`.
    prefix: String,
    /// `sys_event_messages.client_connected`.
    connected: bool,
    /// `sys_event_messages.client_disconnected`.
    disconnected: bool,
}

impl SysEvents {
    /// The events `config` asks for, of node `node`.
    pub fn new(node: &NodeName, config: &SysTopics) -> Self {
        Self {
            prefix: prefix(node),
            connected: config.sys_event_messages.client_connected,
            disconnected: config.sys_event_messages.client_disconnected,
        }
    }
}

/// `$SYS/brokers/<node>` (EMQX's `emqx_topic:systop/1` without the name).
fn prefix(node: &NodeName) -> String {
    format!("$SYS/brokers/{node}")
}

/// Publishes one `$SYS` message through `router`: stored when `retain`,
/// then sent to the subscribers of this node and of the others.
fn publish<S: Mailbox>(router: &Router<S>, topic: String, payload: Bytes, retain: bool) {
    let now = Instant::now();
    let message = Arc::new(Message::new(
        ByteStr::from(topic),
        payload,
        QoS::AtMostOnce,
        retain,
        ByteStr::new(),
        now,
    ));
    if retain {
        router.retain(&message, now);
    }
    let mut batch = DeliveryBatch::default();
    // The pure router's route: no "dropped" count for a message nobody
    // subscribed to (EMQX does not count `$SYS` messages either).
    router.routing().route(&message, &mut batch);
    // QoS 0: there is no acknowledgement to wait for.
    drop(router.flush(&mut batch));
}

/// The `stats/...` and `metrics/...` of EMQX that the node keeps, by their
/// EMQX names (dots become slashes in the topic).
fn counters<S: Mailbox>(router: &Router<S>) -> Vec<(&'static str, u64)> {
    let m: &Metrics = router.metrics();
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    vec![
        ("stats/connections.count", get(&m.connections)),
        (
            "stats/subscriptions.count",
            router.subscription_count() as u64,
        ),
        ("stats/retained.count", router.retained_count() as u64),
        ("metrics/client.connected", get(&m.client_connected)),
        ("metrics/client.disconnected", get(&m.client_disconnected)),
        ("metrics/messages.received", get(&m.messages_received)),
        ("metrics/messages.delivered", get(&m.messages_delivered)),
        (
            "metrics/messages.dropped.no_subscribers",
            get(&m.messages_dropped_no_subscribers),
        ),
        ("metrics/messages.forward", get(&m.messages_forward)),
        ("metrics/bytes.received", get(&m.bytes_received)),
        ("metrics/bytes.sent", get(&m.bytes_sent)),
    ]
}

/// Publishes the node's `$SYS` messages every `sys_msg_interval` and its
/// heartbeat every `sys_heartbeat_interval`, starting at once.
#[derive(Debug)]
pub struct SysPublisher<S> {
    router: Arc<Router<S>>,
    cluster: ClusterHandle,
    prefix: String,
    msg_interval: Option<Duration>,
    heartbeat_interval: Option<Duration>,
}

impl<S: Mailbox + Unpin> SysPublisher<S> {
    /// The child spec of a permanent worker publishing through `router`
    /// what `config` asks for, or `None` when both intervals are disabled.
    pub fn child_spec(
        router: &Arc<Router<S>>,
        cluster: &ClusterHandle,
        config: &SysTopics,
    ) -> Option<ChildSpec> {
        let msg_interval = config.sys_msg_interval.map(|d| d.get());
        let heartbeat_interval = config.sys_heartbeat_interval.map(|d| d.get());
        if msg_interval.is_none() && heartbeat_interval.is_none() {
            return None;
        }
        let router = Arc::clone(router);
        let cluster = cluster.clone();
        Some(ChildSpec::worker("sys", move || SysPublisher {
            router: Arc::clone(&router),
            prefix: prefix(cluster.node()),
            cluster: cluster.clone(),
            msg_interval,
            heartbeat_interval,
        }))
    }

    /// `$SYS/brokers`, version, sysdescr, stats and metrics.
    fn messages(&mut self) {
        let running = self.cluster.status().running;
        let mut names: Vec<String> = running.iter().map(ToString::to_string).collect();
        names.sort();
        let router = &*self.router;
        publish(
            router,
            "$SYS/brokers".to_owned(),
            names.join(",").into(),
            true,
        );
        let node = &self.prefix;
        let version = env!("CARGO_PKG_VERSION");
        publish(router, format!("{node}/version"), version.into(), true);
        publish(router, format!("{node}/sysdescr"), SYSDESCR.into(), true);
        for (name, value) in counters(router) {
            let topic = format!("{node}/{}", name.replace('.', "/"));
            publish(router, topic, value.to_string().into(), false);
        }
    }

    /// Uptime and datetime.
    fn heartbeat(&mut self) {
        let node = &self.prefix;
        let uptime = self.cluster.uptime().as_millis().to_string();
        publish(
            &*self.router,
            format!("{node}/uptime"),
            uptime.into(),
            false,
        );
        let datetime = rfc3339(SystemTime::now());
        publish(
            &*self.router,
            format!("{node}/datetime"),
            datetime.into(),
            false,
        );
    }
}

impl<S: Mailbox + Unpin> Actor for SysPublisher<S> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(every) = self.msg_interval {
            self.messages();
            ctx.run_interval(every, |act, _| act.messages());
        }
        if let Some(every) = self.heartbeat_interval {
            self.heartbeat();
            ctx.run_interval(every, |act, _| act.heartbeat());
        }
    }
}

/// Milliseconds since the Unix epoch.
fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `t` in RFC 3339, UTC, to the second: `2026-12-05T00:00:31Z`.
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (days counted
/// in 400-year eras of 146,097 days, with years starting in March so that
/// the leap day is the last of its year).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// The client's address (the one its PROXY header named, else the
/// socket's peer) and the port it connected to.
fn addresses(stream: &TcpStream, listener: &ListenerContext) -> (Option<SocketAddr>, Option<u16>) {
    let peer = listener.proxied.or_else(|| stream.peer_addr().ok());
    (peer, stream.local_addr().ok().map(|a| a.port()))
}

/// The fields of both events (EMQX's `common_infos`), or `None` before an
/// accepted CONNECT.
fn common(
    channel: &Channel,
    stream: &TcpStream,
    listener: &ListenerContext,
    now: u64,
) -> Option<(ByteStr, serde_json::Map<String, serde_json::Value>)> {
    use serde_json::json;
    let info = channel.info()?;
    let (peer, sockport) = addresses(stream, listener);
    let mut fields = serde_json::Map::new();
    fields.insert("clientid".into(), json!(info.client_id.as_str()));
    fields.insert("username".into(), json!(info.username.as_deref()));
    fields.insert("ipaddress".into(), json!(peer.map(|p| p.ip().to_string())));
    fields.insert("sockport".into(), json!(sockport));
    fields.insert("proto_name".into(), json!(info.protocol.protocol_name()));
    fields.insert("proto_ver".into(), json!(info.protocol.level()));
    fields.insert("ts".into(), json!(now));
    Some((info.client_id.clone(), fields))
}

/// Publishes `…/clients/<clientid>/connected` for a CONNECT the channel
/// accepted, when `sys_event_messages.client_connected` is on.
pub fn client_connected(
    shared: &NodeShared,
    channel: &Channel,
    stream: Option<&TcpStream>,
    listener: &ListenerContext,
) {
    if !shared.sys_events.connected {
        return;
    }
    let now = epoch_ms(SystemTime::now());
    let Some(stream) = stream else { return };
    let Some((client_id, mut fields)) = common(channel, stream, listener, now) else {
        return;
    };
    if let Some(info) = channel.info() {
        fields.insert("keepalive".into(), info.keep_alive.into());
        fields.insert("clean_start".into(), info.clean_start.into());
        let expiry = info.session_expiry();
        fields.insert(
            "expiry_interval".into(),
            expiry.map_or(u64::from(u32::MAX), |e| e.as_secs()).into(),
        );
        fields.insert("connected_at".into(), now.into());
    }
    let topic = format!("{}/clients/{client_id}/connected", shared.sys_events.prefix);
    let payload = serde_json::Value::Object(fields).to_string();
    publish(&shared.router, topic, payload.into(), false);
}

/// Publishes `…/clients/<clientid>/disconnected` as the socket of a client
/// whose CONNECT was accepted ends, when
/// `sys_event_messages.client_disconnected` is on. Its `reason` is the
/// reason code the broker closed the connection with for a protocol
/// error of the client, in snake case (`protocol_error`), else `normal`
/// (the client's DISCONNECT or its socket's end, a takeover, a kick).
pub fn client_disconnected(
    shared: &NodeShared,
    channel: &Channel,
    stream: &TcpStream,
    listener: &ListenerContext,
) {
    if !shared.sys_events.disconnected {
        return;
    }
    let now = epoch_ms(SystemTime::now());
    let Some((client_id, mut fields)) = common(channel, stream, listener, now) else {
        return;
    };
    let reason = channel
        .server_close_reason()
        .map_or_else(|| "normal".to_owned(), |r| snake_case(&format!("{r:?}")));
    fields.insert("reason".into(), reason.into());
    fields.insert("disconnected_at".into(), now.into());
    let topic = format!(
        "{}/clients/{client_id}/disconnected",
        shared.sys_events.prefix
    );
    let payload = serde_json::Value::Object(fields).to_string();
    publish(&shared.router, topic, payload.into(), false);
}

/// `ProtocolError` → `protocol_error`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339_utc() {
        let at = |secs: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        // 2000-02-29 (a leap day of a century divisible by 400), 12:34:56.
        assert_eq!(at(951_827_696), "2000-02-29T12:34:56Z");
        assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(at(1_735_689_600), "2025-01-01T00:00:00Z");
        // 2100 is not a leap year.
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn reason_names_are_snake_case() {
        assert_eq!(snake_case("ProtocolError"), "protocol_error");
        assert_eq!(snake_case("Success"), "success");
    }
}
