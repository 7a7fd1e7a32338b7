//! `$SYS` topics (`sys_topics.*`), in real nodes, with real clients: the
//! heartbeat (`sys_heartbeat_interval`), the retained node messages, stats
//! and metrics (`sys_msg_interval`), the client events
//! (`sys_event_messages.client_connected`, `client_disconnected`), what a
//! disabled setting leaves out, and a cluster where every node's messages
//! reach a subscriber on any node.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use girder_tests::cluster::{specs, Node};
use girder_tests::mqtt::{unique, Broker, Connect, Publish, RawClient};
use tokio::time::Instant;

/// The name of a node started by [`Broker`].
const NODE: &str = "girder@127.0.0.1";
/// Both intervals at one second.
const FAST: &str = "sys_topics.sys_msg_interval = 1s\nsys_topics.sys_heartbeat_interval = 1s\n";
/// How long a test waits for several periods of a one-second interval, or
/// for a cluster's routes to reach the other node.
const PERIODS: Duration = Duration::from_secs(10);

/// A client subscribed to `filters`.
async fn subscriber(addr: SocketAddr, filters: &[&str]) -> Result<RawClient> {
    let mut c = RawClient::connected(addr, &Connect::v311(&unique("sys"))).await?;
    let filters: Vec<(&str, u8)> = filters.iter().map(|f| (*f, 0)).collect();
    let codes = c.subscribe(1, &filters).await?;
    ensure!(codes.iter().all(|&c| c == 0), "SUBACK {codes:?}");
    Ok(c)
}

/// The next PUBLISH `pick` accepts, skipping the others, before `deadline`.
async fn next_matching(
    c: &mut RawClient,
    deadline: Instant,
    mut pick: impl FnMut(&Publish) -> bool,
) -> Result<Publish> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(frame) = c.recv_within(left).await? else {
            bail!("no matching PUBLISH in time");
        };
        let p = frame.publish(girder_tests::mqtt::Version::V311)?;
        if pick(&p) {
            return Ok(p);
        }
    }
}

fn text(p: &Publish) -> String {
    String::from_utf8_lossy(&p.payload).into_owned()
}

#[tokio::test]
async fn t10_uptime_grows_and_node_messages_are_retained() -> Result<()> {
    let Some(b) = Broker::with_config(FAST)? else {
        return Ok(());
    };
    let mut c = subscriber(b.addr, &["$SYS/brokers/+/uptime"]).await?;
    let deadline = Instant::now() + PERIODS;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let p = next_matching(&mut c, deadline, |_| true).await?;
        assert_eq!(p.topic, format!("$SYS/brokers/{NODE}/uptime"));
        assert!(!p.retain, "uptime is not retained");
        seen.push(text(&p).parse::<u64>().context("uptime in ms")?);
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "uptimes {seen:?}");

    // The retained ones arrive at once to a new subscriber.
    let version = format!("$SYS/brokers/{NODE}/version");
    let sysdescr = format!("$SYS/brokers/{NODE}/sysdescr");
    let mut r = subscriber(b.addr, &[&version, &sysdescr, "$SYS/brokers"]).await?;
    let mut got = std::collections::HashMap::new();
    let deadline = Instant::now() + girder_tests::mqtt::WAIT;
    while got.len() < 3 {
        let p = next_matching(&mut r, deadline, |p| p.retain).await?;
        got.insert(p.topic.clone(), text(&p));
    }
    assert_eq!(got[&version], env!("CARGO_PKG_VERSION"));
    assert_eq!(got[&sysdescr], "Girder");
    assert_eq!(got["$SYS/brokers"], NODE);

    // The heartbeat's datetime and a stat and a metric.
    let datetime = format!("$SYS/brokers/{NODE}/datetime");
    let connections = format!("$SYS/brokers/{NODE}/stats/connections/count");
    let received = format!("$SYS/brokers/{NODE}/metrics/messages/received");
    let mut s = subscriber(b.addr, &[&datetime, &connections, &received]).await?;
    let deadline = Instant::now() + PERIODS;
    let mut got = std::collections::HashMap::new();
    while got.len() < 3 {
        let p = next_matching(&mut s, deadline, |_| true).await?;
        got.insert(p.topic.clone(), text(&p));
    }
    let dt = &got[&datetime];
    let shape = dt.len() == 20
        && dt.ends_with('Z')
        && dt.as_bytes()[4] == b'-'
        && dt.as_bytes()[10] == b'T'
        && dt[..4].parse::<u32>().is_ok_and(|y| y >= 2024);
    assert!(shape, "datetime {dt:?}");
    // Three subscribers are connected.
    assert!(got[&connections].parse::<u64>()? >= 3, "{got:?}");
    assert!(got[&received].parse::<u64>().is_ok(), "{got:?}");
    Ok(())
}

#[tokio::test]
async fn t10_a_wildcard_alone_does_not_match_sys() -> Result<()> {
    let Some(b) = Broker::with_config(FAST)? else {
        return Ok(());
    };
    let mut all = subscriber(b.addr, &["#", "+/brokers/#"]).await?;
    let mut sys = subscriber(b.addr, &["$SYS/#"]).await?;
    let deadline = Instant::now() + PERIODS;
    let uptime = format!("$SYS/brokers/{NODE}/uptime");
    // Two heartbeats reach the `$SYS/#` subscriber; none reaches `#`.
    for _ in 0..2 {
        next_matching(&mut sys, deadline, |p| p.topic == uptime).await?;
    }
    all.expect_silence(girder_tests::mqtt::QUIET).await?;
    Ok(())
}

#[tokio::test]
async fn t10_client_events_carry_the_client_id() -> Result<()> {
    // client_connected and client_disconnected are on by default.
    let Some(b) = Broker::with_config("")? else {
        return Ok(());
    };
    let mut events = subscriber(
        b.addr,
        &[
            "$SYS/brokers/+/clients/+/connected",
            "$SYS/brokers/+/clients/+/disconnected",
        ],
    )
    .await?;
    let id = unique("ev");
    let other = RawClient::connected(b.addr, &Connect::v311(&id)).await?;
    let deadline = Instant::now() + girder_tests::mqtt::WAIT;
    let p = next_matching(&mut events, deadline, |_| true).await?;
    assert_eq!(
        p.topic,
        format!("$SYS/brokers/{NODE}/clients/{id}/connected")
    );
    let json: serde_json::Value = serde_json::from_slice(&p.payload)?;
    assert_eq!(json["clientid"], id.as_str(), "{json}");
    assert_eq!(json["proto_name"], "MQTT", "{json}");
    assert_eq!(json["proto_ver"], 4, "{json}");
    assert_eq!(json["keepalive"], 60, "{json}");
    assert_eq!(json["clean_start"], true, "{json}");
    assert_eq!(json["ipaddress"], "127.0.0.1", "{json}");
    assert_eq!(json["sockport"], b.addr.port(), "{json}");
    assert!(json["connected_at"].as_u64().is_some(), "{json}");

    other.disconnect().await?;
    let p = next_matching(&mut events, deadline, |_| true).await?;
    assert_eq!(
        p.topic,
        format!("$SYS/brokers/{NODE}/clients/{id}/disconnected")
    );
    let json: serde_json::Value = serde_json::from_slice(&p.payload)?;
    assert_eq!(json["clientid"], id.as_str(), "{json}");
    assert_eq!(json["reason"], "normal", "{json}");
    assert!(json["disconnected_at"].as_u64().is_some(), "{json}");
    Ok(())
}

#[tokio::test]
async fn t20_disabled_settings_publish_nothing() -> Result<()> {
    // Without sys_msg_interval, the heartbeat alone.
    let Some(b) = Broker::with_config(
        "sys_topics.sys_msg_interval = disabled\nsys_topics.sys_heartbeat_interval = 1s\n",
    )?
    else {
        return Ok(());
    };
    let mut c = subscriber(b.addr, &["$SYS/#"]).await?;
    let deadline = Instant::now() + PERIODS;
    let mut uptimes = 0;
    while uptimes < 2 {
        let p = next_matching(&mut c, deadline, |_| true).await?;
        let heartbeat = p.topic.ends_with("/uptime") || p.topic.ends_with("/datetime");
        assert!(heartbeat, "{} with sys_msg_interval disabled", p.topic);
        uptimes += usize::from(p.topic.ends_with("/uptime"));
    }

    // Everything off: not a message, even for a client's connection.
    let Some(b) = Broker::with_config(
        "sys_topics {\n  sys_msg_interval = disabled\n  sys_heartbeat_interval = disabled\n  \
         sys_event_messages { client_connected = false, client_disconnected = false }\n}\n",
    )?
    else {
        return Ok(());
    };
    let mut c = subscriber(b.addr, &["$SYS/#"]).await?;
    let other = RawClient::connected(b.addr, &Connect::v311(&unique("quiet"))).await?;
    other.disconnect().await?;
    c.expect_silence(Duration::from_millis(1500)).await?;
    Ok(())
}

/// The MQTT address of a cluster node.
fn mqtt(node: &Node) -> SocketAddr {
    SocketAddr::from((node.spec.ip, node.spec.mqtt_port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t30_a_subscriber_gets_every_nodes_sys_messages() -> Result<()> {
    let mut specs = specs(97, 2, true)?;
    for s in &mut specs {
        s.extra.push_str(FAST);
    }
    let nodes = Node::start_all(specs)?;
    let (n1, n2) = (&nodes[0], &nodes[1]);
    let both = {
        let mut v = vec![n1.spec.name.clone(), n2.spec.name.clone()];
        v.sort();
        v
    };
    n1.wait_for("both running", |m| m.running == both)?;

    let mut c = subscriber(mqtt(n1), &["$SYS/brokers/+/uptime", "$SYS/brokers"]).await?;
    let deadline = Instant::now() + PERIODS;
    let remote = format!("$SYS/brokers/{}/uptime", n2.spec.name);
    next_matching(&mut c, deadline, |p| p.topic == remote).await?;
    let listed = both.join(",");
    next_matching(&mut c, deadline, |p| {
        p.topic == "$SYS/brokers" && text(p) == listed
    })
    .await
    .with_context(|| format!("$SYS/brokers never listed {listed}"))?;
    Ok(())
}
