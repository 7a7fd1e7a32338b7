//! One session per client id across the cluster (DESIGN §3 step 1), with
//! `girder start` processes (three cores, static seeds) and rumqttc
//! clients: a connection with a client id held on another node takes it
//! over (the old connection gets DISCONNECT 0x8E, or is closed for MQTT
//! 3), a persistent session moves to the new node with its subscription,
//! its message in flight and its queue, and two connects with one id on
//! two nodes at once leave exactly one connection. A client whose session's
//! node is down connects anyway, with a new session. The old connection's
//! will is settled on its node as a takeover on one node settles it.
//!
//! The messages queued while the client is away are published on a third
//! node, and reach the session on its node as any cross-node publish does.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use girder_tests::cluster::{sorted, specs, Node, Spec};
use girder_tests::mqtt::{unique, Connect, RawClient, V4Client, V5Client, QUIET};
use rumqttc::v5::mqttbytes::v5::ConnectReturnCode;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{Event, Incoming};

/// How long the cluster may take to form on a loaded machine.
const FORM: Duration = Duration::from_secs(30);
/// How long a takeover may take to show.
const SETTLE: Duration = Duration::from_secs(10);

/// Three cores that see each other and agree on their consensus groups
/// (the client id lock is granted by a majority of them).
fn cluster(subnet: u8) -> Result<Vec<Node>> {
    let specs = specs(subnet, 3, true)?;
    let all = sorted(specs.iter().map(|s| s.name.as_str()));
    let nodes = Node::start_all(specs)?;
    for n in &nodes {
        n.wait_for("all running", |m| m.running == all && m.stopped.is_empty())?;
        n.wait_until("the auth group and its leader", FORM, |n| {
            let g = n.consensus("auth")?;
            let leader = g["leader"].as_str().unwrap_or_default().to_owned();
            Ok(n.voters("auth")? == all && all.contains(&leader))
        })?;
    }
    Ok(nodes)
}

fn rt() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn mqtt_addr(spec: &Spec) -> SocketAddr {
    SocketAddr::from((spec.ip, spec.mqtt_port))
}

fn v5_opts(spec: &Spec, id: &str) -> rumqttc::v5::MqttOptions {
    rumqttc::v5::MqttOptions::new(id, spec.ip.to_string(), spec.mqtt_port)
}

/// Rows of the `clients` table (every owner's) in `node`'s copy.
fn client_rows(node: &Node) -> Result<u64> {
    let v = node.ctl(&["status"])?;
    v["tables"]["clients"]
        .as_u64()
        .with_context(|| format!("no clients count in {v}"))
}

/// Waits until every node's copy of `clients` has `want` rows.
fn wait_client_rows(nodes: &[Node], want: u64) -> Result<()> {
    for n in nodes {
        n.wait_until(&format!("{want} client rows"), SETTLE, |n| {
            Ok(client_rows(n)? == want)
        })?;
    }
    Ok(())
}

/// How a v5 connection ended (the event loop's error); `None` when it is
/// still open after `limit`.
async fn v5_closed_within(c: &mut V5Client, limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        match c.next_event_within(left).await {
            None => return None,
            Some(Ok(_)) => {}
            Some(Err(e)) => return Some(e),
        }
    }
}

/// A v5 connection is open and served: it subscribes and gets its SUBACK.
async fn v5_works(c: &mut V5Client, topic: &str) -> Result<()> {
    c.client.subscribe(topic, QoS::AtMostOnce).await?;
    c.next_suback().await?;
    Ok(())
}

#[test]
fn a_client_id_connected_on_another_node_is_taken_over() -> Result<()> {
    let nodes = cluster(84)?;
    rt()?.block_on(async {
        // MQTT 5: the first connection gets DISCONNECT 0x8E. (Read raw:
        // rumqttc 0.25 reports a DISCONNECT followed by the end of the
        // stream as "closed by peer abruptly", without its reason code.)
        let id = unique("moved5");
        let mut first = RawClient::connected(mqtt_addr(&nodes[0].spec), &Connect::v5(&id)).await?;
        assert_eq!(first.subscribe(1, &[("t/first", 0)]).await?, vec![0]);
        wait_client_rows(&nodes, 1)?;
        let (mut second, ack) = V5Client::connect(v5_opts(&nodes[1].spec, &id)).await?;
        ensure!(ack.code == ConnectReturnCode::Success, "{ack:?}");
        ensure!(
            !ack.session_present,
            "a clean start has no session: {ack:?}"
        );
        let closed = first.closed_within(SETTLE).await?;
        ensure!(
            closed.disconnect_reason() == Some(0x8E),
            "the first connection did not get DISCONNECT 0x8E: {closed:?}"
        );
        v5_works(&mut second, "t/second").await?;
        // One session: node 2's row only (node 1's went with its session).
        wait_client_rows(&nodes, 1)?;
        ensure!(
            v5_closed_within(&mut second, QUIET).await.is_none(),
            "the new connection was closed too"
        );
        drop(second);
        wait_client_rows(&nodes, 0)?;

        // MQTT 3.1.1: the first connection is closed.
        let id = unique("moved3");
        let opts =
            |spec: &Spec| rumqttc::MqttOptions::new(&id, spec.ip.to_string(), spec.mqtt_port);
        let (mut first, _) = V4Client::connect(opts(&nodes[2].spec)).await?;
        wait_client_rows(&nodes, 1)?;
        let (mut second, ack) = V4Client::connect(opts(&nodes[0].spec)).await?;
        ensure!(ack.code == rumqttc::ConnectReturnCode::Success, "{ack:?}");
        let end = first
            .next_incoming(|_| None::<()>)
            .await
            .expect_err("the first connection stayed open");
        ensure!(
            end.to_string().contains("connection error"),
            "the first connection was not closed: {end}"
        );
        second
            .client
            .subscribe("t/v3", rumqttc::QoS::AtMostOnce)
            .await?;
        second.next_suback().await?;
        wait_client_rows(&nodes, 1)?;
        Ok(())
    })
}

#[test]
fn a_persistent_session_moves_to_the_node_its_client_reconnects_to() -> Result<()> {
    let nodes = cluster(85)?;
    rt()?.block_on(async {
        let (id, topic) = (unique("roam"), unique("t/roam"));
        let persistent = |spec: &Spec| {
            let mut o = v5_opts(spec, &id);
            o.set_clean_start(false)
                .set_session_expiry_interval(Some(300))
                .set_manual_acks(true);
            o
        };
        let (mut sub, ack) = V5Client::connect(persistent(&nodes[0].spec)).await?;
        ensure!(!ack.session_present, "{ack:?}");
        sub.client.subscribe(&topic, QoS::AtLeastOnce).await?;
        sub.next_suback().await?;

        // Published on node 3: one message reaches the client, which does
        // not acknowledge it and goes away (it stays in flight); two more
        // are queued while it is away.
        wait_route_rows(&nodes[2], 1)?;
        let (mut publisher, _) = V5Client::connect(v5_opts(&nodes[2].spec, &unique("pub"))).await?;
        let publish = |p: &V5Client, payload: &'static str| {
            let client = p.client.clone();
            let topic = topic.clone();
            async move {
                client
                    .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
                    .await
            }
        };
        publish(&publisher, "m0").await?;
        publisher
            .next_incoming(|p| matches!(p, Incoming::PubAck(_)).then_some(()))
            .await?;
        let m0 = sub.next_publish().await?;
        ensure!(&m0.payload[..] == b"m0" && !m0.dup, "{m0:?}");
        drop(sub);
        // The session lives on node 1 without its client: the kept actor
        // still holds the row.
        wait_client_rows(&nodes, 2)?;
        for payload in ["m1", "m2"] {
            publish(&publisher, payload).await?;
            publisher
                .next_incoming(|p| matches!(p, Incoming::PubAck(_)).then_some(()))
                .await?;
        }
        drop(publisher);
        wait_client_rows(&nodes, 1)?;

        // Back on node 2: the session is there, the message in flight comes
        // again with DUP, then the queued ones, in order.
        let (mut sub, ack) = V5Client::connect(persistent(&nodes[1].spec)).await?;
        ensure!(ack.session_present, "the session did not move: {ack:?}");
        let mut got = Vec::new();
        for _ in 0..3 {
            let m = sub.next_publish().await?;
            got.push((String::from_utf8_lossy(&m.payload).into_owned(), m.dup));
            sub.client.ack(&m).await?;
        }
        ensure!(
            got == [
                ("m0".to_owned(), true),
                ("m1".to_owned(), false),
                ("m2".to_owned(), false)
            ],
            "{got:?}"
        );
        // One session in the cluster, on node 2.
        wait_client_rows(&nodes, 1)?;

        // The subscription moved with it: a new publish on node 2 arrives.
        let (publisher, _) = V5Client::connect(v5_opts(&nodes[1].spec, &unique("pub"))).await?;
        publish(&publisher, "m3").await?;
        let m3 = sub.next_publish().await?;
        ensure!(&m3.payload[..] == b"m3", "{m3:?}");
        sub.client.ack(&m3).await?;
        ensure!(
            v5_closed_within(&mut sub, QUIET).await.is_none(),
            "the resumed connection was closed"
        );
        Ok(())
    })
}

#[test]
fn two_connects_with_one_id_on_two_nodes_at_once_leave_one_connection() -> Result<()> {
    let nodes = cluster(86)?;
    rt()?.block_on(async {
        for round in 0..10 {
            let id = unique("race");
            let (a, b) = tokio::join!(
                V5Client::connect(v5_opts(&nodes[0].spec, &id)),
                V5Client::connect(v5_opts(&nodes[1].spec, &id)),
            );
            let mut open: Vec<V5Client> = [a, b]
                .into_iter()
                .filter_map(Result::ok)
                .map(|c| c.0)
                .collect();
            // Connections are closed until one is left, and that one stays.
            let deadline = Instant::now() + SETTLE;
            while open.len() > 1 && Instant::now() < deadline {
                let mut still = Vec::new();
                for mut c in open {
                    if v5_closed_within(&mut c, Duration::from_millis(100))
                        .await
                        .is_none()
                    {
                        still.push(c);
                    }
                }
                open = still;
            }
            if open.len() != 1 {
                bail!(
                    "round {round}: {} connections left, expected one",
                    open.len()
                );
            }
            let mut survivor = open.remove(0);
            ensure!(
                v5_closed_within(&mut survivor, QUIET).await.is_none(),
                "round {round}: the last connection was closed too"
            );
            v5_works(&mut survivor, "t/race").await?;
            wait_client_rows(&nodes, 1).with_context(|| format!("round {round}"))?;
            drop(survivor);
            wait_client_rows(&nodes, 0).with_context(|| format!("round {round}"))?;
        }
        Ok(())
    })
}

#[test]
fn a_client_whose_session_node_is_down_connects_with_a_new_session() -> Result<()> {
    let mut nodes = cluster(87)?;
    let (id, topic) = (unique("orphan"), unique("t/orphan"));
    let persistent = |spec: &Spec| {
        let mut o = v5_opts(spec, &id);
        o.set_clean_start(false)
            .set_session_expiry_interval(Some(300));
        o
    };
    let rt = rt()?;
    rt.block_on(async {
        let (mut sub, _) = V5Client::connect(persistent(&nodes[0].spec)).await?;
        sub.client.subscribe(&topic, QoS::AtLeastOnce).await?;
        sub.next_suback().await?;
        wait_client_rows(&nodes, 1)
    })?;
    // The node holding the session dies; node 2 notices.
    nodes[0].kill();
    let gone = nodes[0].spec.name.clone();
    nodes[1].wait_for("node 1 down", |m| m.stopped == [gone.clone()])?;
    rt.block_on(async {
        // The claim cannot reach node 1: the client connects anyway (within
        // the harness's CONNACK wait), without the session it had there.
        let (mut sub, ack) = V5Client::connect(persistent(&nodes[1].spec)).await?;
        ensure!(ack.code == ConnectReturnCode::Success, "{ack:?}");
        ensure!(!ack.session_present, "no session could come back: {ack:?}");
        v5_works(&mut sub, &topic).await?;
        ensure!(
            v5_closed_within(&mut sub, QUIET).await.is_none(),
            "the new connection was closed"
        );
        Ok(())
    })
}

/// The will of a connection taken over from another node is settled where
/// that connection was, as on one node: a takeover that continues the
/// session discards it, one that starts a new session (clean start) ends
/// the old session and publishes it (MQTT 5.0 §3.1.2.5, §3.1.3.2.2).
#[test]
fn a_will_taken_over_from_another_node_follows_the_session() -> Result<()> {
    let nodes = cluster(88)?;
    rt()?.block_on(async {
        let will_topic = unique("will/t");
        let (mut watcher, _) = V5Client::connect(v5_opts(&nodes[0].spec, &unique("watch"))).await?;
        watcher
            .client
            .subscribe(&will_topic, QoS::AtLeastOnce)
            .await?;
        watcher.next_suback().await?;
        let with_will = |spec: &Spec, id: &str, clean: bool| {
            let mut o = v5_opts(spec, id);
            o.set_clean_start(clean)
                .set_session_expiry_interval(Some(300))
                .set_last_will(rumqttc::v5::mqttbytes::v5::LastWill::new(
                    &will_topic,
                    id.as_bytes().to_vec(),
                    QoS::AtLeastOnce,
                    false,
                    None,
                ));
            o
        };

        // Continued on node 2: no will.
        let kept = unique("kept");
        let (_old, _) = V5Client::connect(with_will(&nodes[0].spec, &kept, false)).await?;
        let (_new, ack) = V5Client::connect(with_will(&nodes[1].spec, &kept, false)).await?;
        ensure!(ack.session_present, "{ack:?}");
        let deadline = Instant::now() + QUIET;
        while let Some(ev) = watcher
            .next_event_within(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            match ev {
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    bail!("a will was published for a continued session: {p:?}")
                }
                Ok(_) => {}
                Err(e) => bail!("the watcher's connection ended: {e}"),
            }
        }

        // A clean start on node 2 ends the session on node 1: its will goes.
        let ended = unique("ended");
        let (_old, _) = V5Client::connect(with_will(&nodes[0].spec, &ended, false)).await?;
        let (_new, ack) = V5Client::connect(with_will(&nodes[1].spec, &ended, true)).await?;
        ensure!(!ack.session_present, "{ack:?}");
        let will = watcher.next_publish().await?;
        ensure!(
            &will.payload[..] == ended.as_bytes(),
            "expected the will of {ended}, got {will:?}"
        );
        Ok(())
    })
}

/// A holder node that stops answering (its frames to the claimant's node
/// dropped) holds the new connection back only briefly: the lock request
/// to it and the claim's call time out, or the link is declared down
/// first, and the client connects with a new session. Once the link is
/// back, the two nodes see each other's client rows and the older
/// connection gives the id up, if the request had not already reached it:
/// one connection is left.
#[test]
fn a_holder_node_that_does_not_answer_delays_the_connack_only_briefly() -> Result<()> {
    let nodes = cluster(89)?;
    let id = unique("mute");
    let persistent = |spec: &Spec| {
        let mut o = v5_opts(spec, &id);
        o.set_clean_start(false)
            .set_session_expiry_interval(Some(300));
        o
    };
    let rt = rt()?;
    let mut first = rt.block_on(async {
        let (mut first, _) = V5Client::connect(persistent(&nodes[0].spec)).await?;
        v5_works(&mut first, "t/mute").await?;
        wait_client_rows(&nodes, 1)?;
        Ok::<_, anyhow::Error>(first)
    })?;
    nodes[0].ctl(&["cluster", "debug", &nodes[1].spec.name, "drop"])?;
    let second = rt.block_on(async {
        // V5Client::connect fails if no CONNACK comes within 5 s.
        let (mut second, ack) = V5Client::connect(persistent(&nodes[1].spec)).await?;
        ensure!(ack.code == ConnectReturnCode::Success, "{ack:?}");
        ensure!(!ack.session_present, "no session could come back: {ack:?}");
        v5_works(&mut second, "t/mute").await?;
        Ok(second)
    });
    nodes[0].ctl(&["cluster", "debug", &nodes[1].spec.name, "restore"])?;
    let mut second = second?;
    rt.block_on(async {
        let closed = v5_closed_within(&mut first, SETTLE).await;
        ensure!(closed.is_some(), "both connections are left");
        ensure!(
            v5_closed_within(&mut second, QUIET).await.is_none(),
            "the newer connection was closed"
        );
        wait_client_rows(&nodes, 1)
    })
}

/// Waits until `node` holds `want` rows of the `routes` table.
fn wait_route_rows(node: &Node, want: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = node.ctl(&["status"])?["tables"]["routes"].as_u64();
        if seen == Some(want) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{}: {seen:?} route rows, expected {want}",
            node.spec.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
