//! One broker across many nodes: rumqttc clients on different `girder`
//! processes of one cluster (3 cores and 2 replicants, or 3 cores), and
//! messages that cross nodes at every QoS, through wildcards and shared
//! groups, in order, past a node that dies and across a partition.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use girder_tests::cluster::{specs, Node, Spec};
use girder_tests::mqtt::{unique, Connect, Publish as RawPublish, RawClient, Version, Will};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long a test waits for something that should come at once.
const PATIENCE: Duration = Duration::from_secs(20);

/// 3 cores (static seeds) and `replicants` replicants following them.
fn cluster_specs(subnet: u8, replicants: u8) -> Result<Vec<Spec>> {
    let mut all = specs(subnet, 3 + replicants, false)?;
    let cores: Vec<String> = all[..3].iter().map(Spec::target).collect();
    let core_names: Vec<String> = all[..3].iter().map(|s| format!("{:?}", s.name)).collect();
    for (i, spec) in all.iter_mut().enumerate() {
        spec.seeds.clone_from(&cores);
        spec.extra = format!(
            "cluster.core_nodes = [{}]\ncluster.owned_rows_grace_period = 3s\n",
            core_names.join(", ")
        );
        if i >= 3 {
            spec.extra.push_str("node.role = replicant\n");
        }
    }
    Ok(all)
}

fn mqtt(node: &Node) -> SocketAddr {
    SocketAddr::from((node.spec.ip, node.spec.mqtt_port))
}

/// Waits until every node holds `want` route rows.
fn wait_routes(nodes: &[Node], want: u64) -> Result<()> {
    let deadline = Instant::now() + PATIENCE;
    for node in nodes {
        loop {
            let seen = node.ctl(&["status"])?["tables"]["routes"].as_u64();
            if seen == Some(want) {
                break;
            }
            if Instant::now() > deadline {
                bail!("{}: {seen:?} route rows, expected {want}", node.spec.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// A received message: topic and payload.
type Got = (String, Vec<u8>);

/// A rumqttc client whose event loop runs in a task: received PUBLISHes
/// come out of `rx`, the count of PUBACKs the client got in `acks`.
struct Client {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Got>,
    acks: tokio::sync::watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl Client {
    async fn connect(addr: SocketAddr, id: &str, clean: bool) -> Result<Self> {
        let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        opts.set_clean_session(clean);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_inflight(100);
        let (client, mut events) = AsyncClient::new(opts, 1000);
        wait_connack(&mut events).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (ack_tx, acks) = tokio::sync::watch::channel(0u64);
        let task = tokio::spawn(async move {
            let mut n = 0;
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                    }
                    Ok(Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_))) => {
                        n += 1;
                        let _ = ack_tx.send(n);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        Ok(Self {
            client,
            rx,
            acks,
            task,
        })
    }

    async fn subscribe(&self, filter: &str, qos: QoS) -> Result<()> {
        self.client.subscribe(filter, qos).await?;
        Ok(())
    }

    async fn publish(&self, topic: &str, qos: QoS, payload: Vec<u8>) -> Result<()> {
        self.client.publish(topic, qos, false, payload).await?;
        Ok(())
    }

    /// Waits until the client has `n` acknowledgements (PUBACK or PUBCOMP).
    async fn wait_acks(&mut self, n: u64) -> Result<()> {
        let waited = tokio::time::timeout(PATIENCE, self.acks.wait_for(|&got| got >= n))
            .await
            .map(|r| r.is_ok());
        if waited != Ok(true) {
            bail!("{} of {n} acknowledgements", *self.acks.borrow());
        }
        Ok(())
    }

    /// The next message, within `limit`.
    async fn next(&mut self, limit: Duration) -> Option<Got> {
        tokio::time::timeout(limit, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Messages until none comes for `quiet`.
    async fn drain(&mut self, quiet: Duration) -> Vec<Got> {
        let mut got = Vec::new();
        while let Some(m) = self.next(quiet).await {
            got.push(m);
        }
        got
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn wait_connack(events: &mut EventLoop) -> Result<()> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match tokio::time::timeout_at(deadline, events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => bail!("connect: {e}"),
            Err(_) => bail!("no CONNACK"),
        }
    }
}

/// Publishes probes on `topic` from `publisher` until every one of `subs`
/// got one (the routes are in place on the publisher's node), then drains
/// the probes.
async fn until_routed(publisher: &Client, topic: &str, subs: &mut [&mut Client]) -> Result<()> {
    let deadline = Instant::now() + PATIENCE;
    let mut reached = vec![false; subs.len()];
    while !reached.iter().all(|r| *r) {
        ensure!(Instant::now() < deadline, "probes reached {reached:?}");
        publisher
            .publish(topic, QoS::AtMostOnce, b"probe".to_vec())
            .await?;
        for (i, sub) in subs.iter_mut().enumerate() {
            while let Some((_, payload)) = sub.next(Duration::from_millis(100)).await {
                reached[i] |= payload == b"probe";
            }
        }
    }
    for sub in subs.iter_mut() {
        sub.drain(Duration::from_millis(300)).await;
    }
    Ok(())
}

/// Every node's subscriber to a wildcard gets each message published on
/// every node, at QoS 0, 1 and 2, exactly once; a shared group with
/// members on three nodes gets each message once in all; a QoS 1 stream
/// of 10,000 messages from a core reaches a replicant's subscriber in
/// order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t10_messages_cross_every_node_once_and_in_order() -> Result<()> {
    let nodes = Node::start_all(cluster_specs(91, 2)?)?;
    let mut subs = Vec::new();
    for node in &nodes {
        let sub = Client::connect(mqtt(node), &unique("sub"), true).await?;
        sub.subscribe("x/+/t", QoS::ExactlyOnce).await?;
        subs.push(sub);
    }
    let mut pubs = Vec::new();
    for node in &nodes {
        pubs.push(Client::connect(mqtt(node), &unique("pub"), true).await?);
    }
    // One plain route per node, on each.
    wait_routes(&nodes, 5)?;
    for p in &pubs {
        until_routed(p, "x/probe/t", &mut subs.iter_mut().collect::<Vec<_>>()).await?;
    }

    let levels = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
    for (n, p) in pubs.iter().enumerate() {
        for (q, qos) in levels.iter().enumerate() {
            p.publish(&format!("x/n{n}/t"), *qos, format!("{n}:{q}").into_bytes())
                .await?;
        }
    }
    for (i, sub) in subs.iter_mut().enumerate() {
        let mut got: Vec<String> = sub
            .drain(Duration::from_millis(1500))
            .await
            .into_iter()
            .map(|(_, p)| String::from_utf8_lossy(&p).into_owned())
            .collect();
        got.sort();
        let mut want: Vec<String> = (0..5)
            .flat_map(|n| (0..3).map(move |q| format!("{n}:{q}")))
            .collect();
        want.sort();
        assert_eq!(got, want, "subscriber on node {}", i + 1);
    }

    // A shared group with members on n2, n3 (cores) and n5 (a replicant).
    let mut members = Vec::new();
    for i in [1, 2, 4] {
        let m = Client::connect(mqtt(&nodes[i]), &unique("member"), true).await?;
        m.subscribe("$share/workers/job/#", QoS::AtLeastOnce)
            .await?;
        members.push(m);
    }
    wait_routes(&nodes, 8)?;
    // Shared routes are in place on n1 once its publishes stop finding no
    // subscriber: probe until each member has had one.
    let deadline = Instant::now() + PATIENCE;
    let mut probed = [false; 3];
    while !probed.iter().all(|p| *p) {
        ensure!(
            Instant::now() < deadline,
            "shared probes reached {probed:?}"
        );
        for _ in 0..6 {
            pubs[0]
                .publish("job/probe", QoS::AtMostOnce, b"probe".to_vec())
                .await?;
        }
        for (i, m) in members.iter_mut().enumerate() {
            while m.next(Duration::from_millis(100)).await.is_some() {
                probed[i] = true;
            }
        }
    }
    for m in &mut members {
        m.drain(Duration::from_millis(300)).await;
    }
    for k in 0..90 {
        pubs[0]
            .publish(
                &format!("job/{k}"),
                QoS::AtLeastOnce,
                k.to_string().into_bytes(),
            )
            .await?;
    }
    let mut total: BTreeMap<String, usize> = BTreeMap::new();
    for m in &mut members {
        let got = m.drain(Duration::from_millis(1500)).await;
        ensure!(!got.is_empty(), "a member on another node got nothing");
        for (topic, _) in got {
            *total.entry(topic).or_default() += 1;
        }
    }
    assert_eq!(total.len(), 90, "every job delivered");
    assert!(total.values().all(|&n| n == 1), "each job once: {total:?}");

    // 10,000 QoS 1 messages from a core to a replicant's subscriber.
    let mut stream_sub = Client::connect(mqtt(&nodes[4]), &unique("stream"), true).await?;
    stream_sub.subscribe("stream/1", QoS::AtLeastOnce).await?;
    wait_routes(&nodes, 9)?;
    until_routed(&pubs[0], "stream/1", &mut [&mut stream_sub]).await?;
    // The publisher stays at most 500 messages ahead of the subscriber:
    // an overrun subscriber's queue (`mqtt.max_mqueue_len`, 1000 by
    // default) drops messages, which is not what this measures.
    let total = 10_000u32;
    let sender = pubs[0].client.clone();
    let (seen_tx, mut seen_rx) = tokio::sync::watch::channel(0u32);
    let send = tokio::spawn(async move {
        for i in 0..total {
            seen_rx.wait_for(|&seen| i < seen + 500).await?;
            sender
                .publish(
                    "stream/1",
                    QoS::AtLeastOnce,
                    false,
                    i.to_be_bytes().to_vec(),
                )
                .await?;
        }
        anyhow::Ok(())
    });
    let mut next = 0u32;
    let deadline = Instant::now() + Duration::from_secs(120);
    while next < total {
        ensure!(Instant::now() < deadline, "stream stalled at {next}");
        let Some((_, payload)) = stream_sub.next(PATIENCE).await else {
            bail!("stream stalled at {next}");
        };
        let seq = u32::from_be_bytes(payload[..4].try_into()?);
        assert_eq!(seq, next, "message {next} out of order");
        next += 1;
        let _ = seen_tx.send(next);
    }
    send.await??;
    Ok(())
}

/// A v5 publisher whose only subscriber is on another node is told its
/// message matched (no 0x10), and a client's will reaches a subscriber on
/// another node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t20_acks_count_other_nodes_and_wills_cross_nodes() -> Result<()> {
    let nodes = Node::start_all(specs(92, 3, true)?)?;
    let mut sub = Client::connect(mqtt(&nodes[2]), &unique("sub"), true).await?;
    sub.subscribe("far/#", QoS::AtLeastOnce).await?;
    wait_routes(&nodes, 1)?;
    let probe = Client::connect(mqtt(&nodes[0]), &unique("probe"), true).await?;
    until_routed(&probe, "far/probe", &mut [&mut sub]).await?;

    let mut raw = RawClient::connected(mqtt(&nodes[0]), &Connect::v5(&unique("v5"))).await?;
    raw.send(&RawPublish::new("far/1", b"m").qos(1, 7).encode(Version::V5))
        .await?;
    let (pid, reason) = raw.recv().await?.ack()?;
    assert_eq!((pid, reason), (7, 0), "matched on another node: success");
    let (topic, payload) = sub.next(PATIENCE).await.context("the message")?;
    assert_eq!((topic.as_str(), &payload[..]), ("far/1", &b"m"[..]));

    // A will published by node 2 when its client's socket drops.
    let will = Will {
        topic: "far/will".into(),
        payload: b"gone".to_vec(),
        qos: 1,
        ..Will::default()
    };
    let with_will =
        RawClient::connected(mqtt(&nodes[1]), &Connect::v311(&unique("w")).will(will)).await?;
    drop(with_will);
    let (topic, payload) = sub.next(PATIENCE).await.context("the will")?;
    assert_eq!((topic.as_str(), &payload[..]), ("far/will", &b"gone"[..]));
    Ok(())
}

/// A node killed under a QoS 1 stream: the publisher gets every PUBACK,
/// without stalling, and a persistent subscriber on a surviving node gets
/// every message, in order; the dead node's routes go after the grace
/// period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t30_a_node_killed_under_a_stream_costs_the_others_nothing() -> Result<()> {
    let mut specs = cluster_specs(93, 0)?;
    // Room for the whole stream in the subscriber's queue: an overrun
    // queue drops messages, which is not what this measures.
    for spec in &mut specs {
        spec.extra.push_str("mqtt.max_mqueue_len = 10000\n");
    }
    let mut nodes = Node::start_all(specs)?;
    let mut keeper = Client::connect(mqtt(&nodes[1]), &unique("keep"), false).await?;
    keeper.subscribe("live/1", QoS::AtLeastOnce).await?;
    let doomed = Client::connect(mqtt(&nodes[2]), &unique("doomed"), true).await?;
    doomed.subscribe("live/+", QoS::AtLeastOnce).await?;
    wait_routes(&nodes, 2)?;
    let mut publisher = Client::connect(mqtt(&nodes[0]), &unique("pub"), true).await?;
    until_routed(&publisher, "live/1", &mut [&mut keeper]).await?;

    let total = 3000u32;
    for i in 0..total {
        if i == total / 3 {
            nodes[2].kill();
        }
        publisher
            .publish("live/1", QoS::AtLeastOnce, i.to_be_bytes().to_vec())
            .await?;
    }
    // The probe's own acknowledgements are not counted (QoS 0).
    publisher.wait_acks(u64::from(total)).await?;
    let mut next = 0u32;
    while next < total {
        let Some((_, payload)) = keeper.next(PATIENCE).await else {
            bail!("stream stalled at {next}");
        };
        let seq = u32::from_be_bytes(payload[..4].try_into()?);
        assert_eq!(seq, next, "message {next} out of order");
        next += 1;
    }
    drop(doomed);
    // After the grace period the dead node's route is gone everywhere.
    wait_routes(&nodes[..2], 1)?;
    Ok(())
}

/// A subscription made on one side of a partition reaches the other side
/// once the partition heals; while it lasts, publishers on both sides go
/// on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t40_routes_converge_after_a_partition_heals() -> Result<()> {
    let nodes = Node::start_all(specs(94, 2, true)?)?;
    let (n1, n2) = (&nodes[0], &nodes[1]);
    let publisher = Client::connect(mqtt(n1), &unique("pub"), true).await?;
    let mut before = Client::connect(mqtt(n2), &unique("before"), true).await?;
    before.subscribe("part/#", QoS::AtLeastOnce).await?;
    wait_routes(&nodes, 1)?;
    until_routed(&publisher, "part/probe", &mut [&mut before]).await?;

    n1.ctl(&["cluster", "debug", &n2.spec.name, "cut"])?;
    let mut during = Client::connect(mqtt(n2), &unique("during"), true).await?;
    during.subscribe("cut/#", QoS::AtLeastOnce).await?;
    for i in 0..20 {
        publisher
            .publish("part/x", QoS::AtLeastOnce, vec![i])
            .await?;
    }
    n1.ctl(&["cluster", "debug", &n2.spec.name, "restore"])?;
    wait_routes(&nodes, 2)?;
    until_routed(&publisher, "cut/probe", &mut [&mut during]).await?;
    publisher
        .publish("cut/after", QoS::AtLeastOnce, b"healed".to_vec())
        .await?;
    let got = during.drain(Duration::from_millis(1500)).await;
    let payloads: HashMap<String, Vec<u8>> = got.into_iter().collect();
    assert_eq!(
        payloads.get("cut/after").map(Vec::as_slice),
        Some(&b"healed"[..])
    );
    Ok(())
}

/// A shared group's member on a node that dies gets no more picks once the
/// node is seen down: every later message goes to the member on a live
/// node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t50_a_shared_member_on_a_dead_node_gets_no_picks() -> Result<()> {
    let mut nodes = Node::start_all(specs(95, 3, true)?)?;
    let mut alive = Client::connect(mqtt(&nodes[1]), &unique("alive"), true).await?;
    alive.subscribe("$share/g/work/#", QoS::AtLeastOnce).await?;
    let doomed = Client::connect(mqtt(&nodes[2]), &unique("doomed"), true).await?;
    doomed
        .subscribe("$share/g/work/#", QoS::AtLeastOnce)
        .await?;
    wait_routes(&nodes, 2)?;
    let mut publisher = Client::connect(mqtt(&nodes[0]), &unique("pub"), true).await?;
    until_routed(&publisher, "work/probe", &mut [&mut alive]).await?;

    nodes[2].kill();
    let dead = nodes[2].spec.name.clone();
    nodes[0].wait_for("the killed node stopped", |m| m.stopped.contains(&dead))?;
    alive.drain(Duration::from_millis(300)).await;
    for i in 0..100u8 {
        publisher
            .publish(&format!("work/{i}"), QoS::AtLeastOnce, vec![i])
            .await?;
    }
    publisher.wait_acks(100).await?;
    let got = alive.drain(Duration::from_millis(1500)).await;
    assert_eq!(got.len(), 100, "every message to the live member");
    Ok(())
}

/// A core that joins later gets messages for its subscribers; a core that
/// leaves takes its routes with it and gets nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t60_a_core_added_and_one_removed() -> Result<()> {
    let mut all = specs(96, 4, false)?;
    let first: Vec<String> = all[..3].iter().map(Spec::target).collect();
    for spec in &mut all[..3] {
        spec.seeds.clone_from(&first);
    }
    // The fourth lists the first three: it joins them when it starts.
    all[3].seeds.clone_from(&first);
    let fourth = all.pop().context("four specs")?;
    let mut nodes = Node::start_all(all)?;
    nodes.push(Node::start(fourth)?);
    let names: Vec<String> = nodes.iter().map(|n| n.spec.name.clone()).collect();
    let sorted = girder_tests::cluster::sorted(names.iter().map(String::as_str));
    for n in &nodes {
        n.wait_for("four running", |m| m.running == sorted)?;
    }
    let mut on_new = Client::connect(mqtt(&nodes[3]), &unique("new"), true).await?;
    on_new.subscribe("grow/#", QoS::AtLeastOnce).await?;
    let mut on_leaver = Client::connect(mqtt(&nodes[1]), &unique("leaver"), true).await?;
    on_leaver.subscribe("grow/#", QoS::AtLeastOnce).await?;
    wait_routes(&nodes, 2)?;
    let publisher = Client::connect(mqtt(&nodes[0]), &unique("pub"), true).await?;
    until_routed(&publisher, "grow/probe", &mut [&mut on_new, &mut on_leaver]).await?;
    publisher
        .publish("grow/1", QoS::AtLeastOnce, b"one".to_vec())
        .await?;
    assert_eq!(
        on_new.next(PATIENCE).await.map(|(_, p)| p),
        Some(b"one".to_vec())
    );
    assert_eq!(
        on_leaver.next(PATIENCE).await.map(|(_, p)| p),
        Some(b"one".to_vec())
    );

    nodes[1].ctl(&["cluster", "leave"])?;
    let gone = nodes[1].spec.name.clone();
    nodes[0].wait_for("n2 gone", |m| {
        !m.running.contains(&gone) && !m.stopped.contains(&gone)
    })?;
    // n2's row leaves the others' tables.
    let rest = [&nodes[0], &nodes[2], &nodes[3]];
    let deadline = Instant::now() + PATIENCE;
    for node in rest {
        while node.ctl(&["status"])?["tables"]["routes"].as_u64() != Some(1) {
            ensure!(
                Instant::now() < deadline,
                "{}: n2's route stays",
                node.spec.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    publisher
        .publish("grow/2", QoS::AtLeastOnce, b"two".to_vec())
        .await?;
    assert_eq!(
        on_new.next(PATIENCE).await.map(|(_, p)| p),
        Some(b"two".to_vec())
    );
    assert!(
        on_leaver
            .drain(Duration::from_millis(1000))
            .await
            .is_empty(),
        "a node that left gets nothing"
    );
    Ok(())
}

/// A persistent session moved from node to node while a publisher on a
/// third node streams QoS 1 messages to it, the node moved to reaching the
/// publisher's node 400 ms late: no acknowledged message is lost (a
/// message may come twice, which QoS 1 allows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t70_a_session_moved_between_nodes_under_a_stream_loses_nothing() -> Result<()> {
    let nodes = Node::start_all(specs(98, 3, true)?)?;
    let id = unique("mover");
    let mut sub = Client::connect(mqtt(&nodes[0]), &id, false).await?;
    sub.subscribe("move/1", QoS::AtLeastOnce).await?;
    wait_routes(&nodes, 1)?;
    let mut publisher = Client::connect(mqtt(&nodes[2]), &unique("pub"), true).await?;
    until_routed(&publisher, "move/1", &mut [&mut sub]).await?;

    let total = 3000u32;
    let sender = publisher.client.clone();
    let send = tokio::spawn(async move {
        for i in 0..total {
            sender
                .publish("move/1", QoS::AtLeastOnce, false, i.to_be_bytes().to_vec())
                .await?;
            if i % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        anyhow::Ok(())
    });
    let mut seen = std::collections::BTreeSet::new();
    let mut take = |got: Vec<Got>| {
        for (_, payload) in got {
            if let Ok(seq) = payload[..].try_into().map(u32::from_be_bytes) {
                seen.insert(seq);
            }
        }
    };
    // Four moves, each while the stream runs: 0 → 1 → 0 → 1 → 0. The
    // node moved to sends to the publisher's node 400 ms late, so its
    // route rows arrive well after the old node's are gone from there.
    let publisher_node = nodes[2].spec.name.clone();
    let mut from = 0usize;
    for hop in [1usize, 0, 1, 0] {
        nodes[hop].ctl(&["cluster", "debug", &publisher_node, "delay=400"])?;
        nodes[from].ctl(&["cluster", "debug", &publisher_node, "restore"])?;
        take(sub.drain(Duration::from_millis(150)).await);
        drop(sub);
        sub = Client::connect(mqtt(&nodes[hop]), &id, false).await?;
        from = hop;
    }
    send.await??;
    nodes[from].ctl(&["cluster", "debug", &publisher_node, "restore"])?;
    publisher.wait_acks(u64::from(total)).await?;
    take(sub.drain(Duration::from_millis(2000)).await);
    let missing: Vec<u32> = (0..total).filter(|i| !seen.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged messages lost: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    Ok(())
}

/// `mqtt.shared_subscription_strategy = local`: a shared group with a
/// member on the publisher's node is served there; the member on the
/// other node gets a message only when no member is local.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t80_the_local_strategy_serves_a_group_on_the_publisher_s_node() -> Result<()> {
    let mut specs = specs(99, 2, true)?;
    for spec in &mut specs {
        spec.extra
            .push_str("mqtt.shared_subscription_strategy = local\n");
    }
    let nodes = Node::start_all(specs)?;
    let mut far = Client::connect(mqtt(&nodes[1]), &unique("far"), true).await?;
    far.subscribe("$share/g/loc/#", QoS::AtLeastOnce).await?;
    wait_routes(&nodes, 1)?;
    let publisher = Client::connect(mqtt(&nodes[0]), &unique("pub"), true).await?;
    // No member on the publisher's node yet: the far member serves.
    until_routed(&publisher, "loc/probe", &mut [&mut far]).await?;
    let mut near = Client::connect(mqtt(&nodes[0]), &unique("near"), true).await?;
    near.subscribe("$share/g/loc/#", QoS::AtLeastOnce).await?;
    // Once a probe reaches the near member its subscription is in place.
    until_routed(&publisher, "loc/probe", &mut [&mut near]).await?;
    far.drain(Duration::from_millis(300)).await;
    for i in 0..20u8 {
        publisher
            .publish(&format!("loc/{i}"), QoS::AtLeastOnce, vec![i])
            .await?;
    }
    let here = near.drain(Duration::from_millis(1000)).await;
    let there = far.drain(Duration::from_millis(300)).await;
    assert_eq!(
        (here.len(), there.len()),
        (20, 0),
        "all served on the publisher's node"
    );
    Ok(())
}
