//! Retained messages cluster-wide, as `girder start` processes: the
//! consensus table `retained` carries a message retained on one node to
//! subscribers of every other, an empty payload clears it everywhere, the
//! cores keep it across restarts, a replicant serves it, and its expiry
//! holds on every node and after a restart (MQTT 3.1.1 §3.3.1.3, MQTT 5.0
//! §3.3.1.3, §3.3.2.3.3).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use girder_tests::cluster::{sorted, specs, Node, Spec};
use girder_tests::mqtt::{unique, V4Client, V5Client, QUIET};

/// How long a retained message may take to reach another node's store
/// (a consensus write, then the table's change) on a loaded machine.
const SPREAD: Duration = Duration::from_secs(20);

fn mqtt(spec: &Spec) -> SocketAddr {
    SocketAddr::from((spec.ip, spec.mqtt_port))
}

/// What a new rumqttc (v3.1.1) subscriber to `topic` on `addr` is sent
/// first: (payload, RETAIN flag), or `None` when nothing comes within
/// [`QUIET`].
async fn retained_on(addr: SocketAddr, topic: &str) -> Result<Option<(Vec<u8>, bool)>> {
    let opts = rumqttc::MqttOptions::new(unique("s"), addr.ip().to_string(), addr.port());
    let (mut c, _) = V4Client::connect(opts).await?;
    c.client.subscribe(topic, rumqttc::QoS::AtLeastOnce).await?;
    c.next_suback().await?;
    Ok(tokio::time::timeout(QUIET, c.next_publish())
        .await
        .ok()
        .transpose()?
        .map(|p| (p.payload.to_vec(), p.retain)))
}

/// Polls new subscribers on `addr` until the retained message of `topic`
/// is `want` (`None`: there is none), for at most [`SPREAD`].
async fn wait_retained(addr: SocketAddr, topic: &str, want: Option<&[u8]>) -> Result<()> {
    let deadline = Instant::now() + SPREAD;
    loop {
        let got = retained_on(addr, topic).await?;
        if let Some((_, retain)) = &got {
            assert!(*retain, "a retained message is sent with RETAIN 1");
        }
        if got.as_ref().map(|(p, _)| &p[..]) == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{addr}: retained on {topic} is {:?}, expected {want:?}",
                got.map(|(p, _)| String::from_utf8_lossy(&p).into_owned())
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Publishes a retained message with QoS 1 from a rumqttc client on `addr`
/// and waits for its PUBACK.
async fn retain(addr: SocketAddr, topic: &str, payload: &[u8]) -> Result<()> {
    let opts = rumqttc::MqttOptions::new(unique("p"), addr.ip().to_string(), addr.port());
    let (mut c, _) = V4Client::connect(opts).await?;
    c.client
        .publish(topic, rumqttc::QoS::AtLeastOnce, true, payload.to_vec())
        .await?;
    c.next_incoming(|p| matches!(p, rumqttc::Incoming::PubAck(_)).then_some(()))
        .await
}

/// Rows of the `retained` table on `node`.
/// Without the periodic `$SYS` messages, some of which are retained: the
/// tests count the rows of the `retained` table.
fn no_sys(mut specs: Vec<Spec>) -> Vec<Spec> {
    for spec in &mut specs {
        spec.extra
            .push_str("sys_topics.sys_msg_interval = disabled\n");
    }
    specs
}

fn rows(node: &Node) -> Result<u64> {
    let v = node.ctl(&["status"])?;
    Ok(v["tables"]["retained"].as_u64().unwrap_or(u64::MAX))
}

fn wait_running(nodes: &[Node]) -> Result<()> {
    let all = sorted(nodes.iter().map(|n| n.spec.name.as_str()));
    for n in nodes {
        n.wait_for("every node running", |m| m.running == all)?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_reach_every_node_are_cleared_everywhere_and_survive_restarts(
) -> Result<()> {
    let mut nodes = Node::start_all(no_sys(specs(101, 3, true)?))?;
    wait_running(&nodes)?;
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| mqtt(&n.spec)).collect();
    let (kept, cleared) = (unique("t/kept"), unique("t/cleared"));

    // Retained on node 1, sent to new subscribers on nodes 2 and 3.
    retain(addrs[0], &cleared, b"first").await?;
    retain(addrs[0], &kept, b"kept").await?;
    for addr in &addrs[1..] {
        wait_retained(*addr, &cleared, Some(b"first")).await?;
        wait_retained(*addr, &kept, Some(b"kept")).await?;
    }

    // An empty payload on node 3 clears it on every node.
    retain(addrs[2], &cleared, b"").await?;
    for addr in &addrs {
        wait_retained(*addr, &cleared, None).await?;
    }
    for n in &nodes {
        assert_eq!(rows(n)?, 1, "{}: one retained row", n.spec.name);
    }

    // Every node stops; started again on the same data, they hold it.
    for n in &mut nodes {
        n.kill();
    }
    for n in &mut nodes {
        n.restart()?;
    }
    wait_running(&nodes)?;
    for addr in &addrs {
        wait_retained(*addr, &kept, Some(b"kept")).await?;
        assert_eq!(retained_on(*addr, &cleared).await?, None);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicant_serves_retained_messages_and_forwards_its_own() -> Result<()> {
    let [core, replicant] = <[Spec; 2]>::try_from(no_sys(specs(102, 2, false)?))
        .map_err(|_| anyhow::anyhow!("two specs"))?;
    let replicant = Spec {
        seeds: vec![core.target()],
        extra: format!(
            "{}node.role = replicant\ncluster.core_nodes = [\"{}\"]\n",
            replicant.extra, core.name
        ),
        ..replicant
    };
    let nodes = Node::start_all(vec![core, replicant])?;
    let (core_mqtt, replicant_mqtt) = (mqtt(&nodes[0].spec), mqtt(&nodes[1].spec));
    wait_running(&nodes)?;
    let (on_core, on_replicant) = (unique("t/core"), unique("t/replicant"));

    retain(core_mqtt, &on_core, b"from the core").await?;
    wait_retained(replicant_mqtt, &on_core, Some(b"from the core")).await?;

    // The replicant's own retained message goes through a core to both.
    retain(replicant_mqtt, &on_replicant, b"from the replicant").await?;
    wait_retained(core_mqtt, &on_replicant, Some(b"from the replicant")).await?;
    wait_retained(replicant_mqtt, &on_replicant, Some(b"from the replicant")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_retained_message_is_not_delivered_on_another_node() -> Result<()> {
    use rumqttc::v5::mqttbytes::{v5::PublishProperties, QoS};

    let mut nodes = Node::start_all(no_sys(specs(103, 2, true)?))?;
    wait_running(&nodes)?;
    let (first, second) = (mqtt(&nodes[0].spec), mqtt(&nodes[1].spec));
    let topic = unique("t/expiring");

    let opts = rumqttc::v5::MqttOptions::new(unique("p"), first.ip().to_string(), first.port());
    let (mut p, _) = V5Client::connect(opts).await?;
    const EXPIRY: u32 = 6;
    let props = PublishProperties {
        message_expiry_interval: Some(EXPIRY),
        ..Default::default()
    };
    let published = Instant::now();
    p.client
        .publish_with_properties(&topic, QoS::AtLeastOnce, true, "short-lived", props)
        .await?;
    p.next_incoming(|i| matches!(i, rumqttc::v5::Incoming::PubAck(_)).then_some(()))
        .await?;

    // Node 2 has it, with the expiry interval it has left...
    let deadline = Instant::now() + SPREAD;
    let m = loop {
        let opts =
            rumqttc::v5::MqttOptions::new(unique("s"), second.ip().to_string(), second.port());
        let (mut s, _) = V5Client::connect(opts).await?;
        s.client.subscribe(&topic, QoS::AtLeastOnce).await?;
        s.next_suback().await?;
        if let Ok(m) = tokio::time::timeout(QUIET, s.next_publish()).await {
            break m?;
        }
        if Instant::now() > deadline {
            bail!("node 2 never sent the retained message");
        }
    };
    assert!(m.retain);
    let left = m.properties.and_then(|p| p.message_expiry_interval);
    assert!(
        left.is_some_and(|l| l <= EXPIRY),
        "expiry interval left: {left:?}"
    );

    // ...and stops sending it once it expired (no clearer: the row stays).
    tokio::time::sleep(Duration::from_secs(EXPIRY.into()).saturating_sub(published.elapsed()))
        .await;
    wait_retained(second, &topic, None).await?;
    assert_eq!(rows(&nodes[1])?, 1);

    // The deadline is wall-clock time in the row: a restart does not
    // bring the message back.
    nodes[1].restart()?;
    wait_running(&nodes)?;
    assert_eq!(retained_on(second, &topic).await?, None);
    assert_eq!(rows(&nodes[1])?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clearer_deletes_expired_rows_on_every_node() -> Result<()> {
    use rumqttc::v5::mqttbytes::{v5::PublishProperties, QoS};

    let mut specs = no_sys(specs(104, 2, true)?);
    for s in &mut specs {
        s.extra.push_str("retainer.msg_clear_interval = 500ms\n");
    }
    let nodes = Node::start_all(specs)?;
    wait_running(&nodes)?;
    let first = mqtt(&nodes[0].spec);
    let (expiring, staying) = (unique("t/expiring"), unique("t/staying"));

    retain(first, &staying, b"stays").await?;
    let opts = rumqttc::v5::MqttOptions::new(unique("p"), first.ip().to_string(), first.port());
    let (mut p, _) = V5Client::connect(opts).await?;
    let props = PublishProperties {
        message_expiry_interval: Some(4),
        ..Default::default()
    };
    p.client
        .publish_with_properties(&expiring, QoS::AtLeastOnce, true, "gone soon", props)
        .await?;
    p.next_incoming(|i| matches!(i, rumqttc::v5::Incoming::PubAck(_)).then_some(()))
        .await?;

    // Both rows reach node 2 (the expiring one while it lives), then the
    // expired one is deleted from the table on every node.
    wait_rows(&nodes[1], 2).await?;
    for n in &nodes {
        wait_rows(n, 1).await?;
    }
    wait_retained(mqtt(&nodes[1].spec), &staying, Some(b"stays")).await?;
    assert_eq!(retained_on(mqtt(&nodes[1].spec), &expiring).await?, None);
    Ok(())
}

async fn wait_rows(node: &Node, want: u64) -> Result<()> {
    let deadline = Instant::now() + SPREAD;
    loop {
        let seen = rows(node)?;
        if seen == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{}: {seen} retained rows, expected {want}", node.spec.name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
