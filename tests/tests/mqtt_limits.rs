//! Configured limits, each refused with its reason code while other
//! clients are unaffected: packet size (0x95), client id length (0x85),
//! topic levels, subscriptions per client (0x97), retained messages,
//! connections, topic alias maximum (EMQX's mqtt.* / listeners keys).

use std::time::Duration;

use anyhow::Result;
use girder_tests::mqtt::{kind, unique, Broker, Connect, Prop, Publish, RawClient, Version, QUIET};

/// Another client keeps working: subscribe, publish, receive.
async fn others_unaffected(b: &Broker) -> Result<()> {
    let t = unique("t/ok");
    let mut c = RawClient::connected(b.addr, &Connect::v311(&unique("ok"))).await?;
    c.subscribe(1, &[(&t, 0)]).await?;
    c.publish(&Publish::new(&t, b"fine")).await?;
    assert_eq!(c.recv_publish().await?.payload, b"fine");
    Ok(())
}

#[tokio::test]
async fn oversized_packet_is_refused_with_0x95() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.max_packet_size = 1KB\n")? else {
        return Ok(());
    };
    let mut bystander = RawClient::connected(b.addr, &Connect::v5(&unique("by"))).await?;
    for version in [Version::V5, Version::V311] {
        let connect = Connect {
            version,
            ..Connect::v311(&unique("big"))
        };
        let mut c = RawClient::connected(b.addr, &connect).await?;
        c.send(&Publish::new(&unique("t/big"), &[7u8; 2048]).encode(version))
            .await?;
        let closed = c.closed_within(Duration::from_secs(3)).await?;
        if version == Version::V5 {
            assert_eq!(closed.disconnect_reason(), Some(0x95), "{closed:?}");
        }
    }
    others_unaffected(&b).await?;
    bystander.send(&girder_tests::mqtt::PINGREQ).await?;
    assert_eq!(bystander.recv().await?.kind(), kind::PINGRESP);
    Ok(())
}

#[tokio::test]
async fn long_client_id_is_refused() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.max_clientid_len = 23\n")? else {
        return Ok(());
    };
    let long = "x".repeat(40);
    let (mut c, a) = RawClient::connect(b.addr, &Connect::v5(&long)).await?;
    assert_eq!(a.code, 0x85, "client identifier not valid");
    c.closed_within(Duration::from_secs(3)).await?;
    let (mut c, a) = RawClient::connect(b.addr, &Connect::v311(&long)).await?;
    assert_eq!(a.code, 0x02, "identifier rejected");
    c.closed_within(Duration::from_secs(3)).await?;
    others_unaffected(&b).await
}

#[tokio::test]
async fn too_many_topic_levels_are_refused() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.max_topic_levels = 3\n")? else {
        return Ok(());
    };
    let deep = format!("{}/b/c/d/e", unique("t"));
    let mut c = RawClient::connected(b.addr, &Connect::v5(&unique("lv"))).await?;
    let codes = c.subscribe(1, &[(&deep, 1)]).await?;
    assert_eq!(codes, vec![0x8F], "topic filter invalid");
    c.send(&Publish::new(&deep, b"x").qos(1, 2).encode(Version::V5))
        .await?;
    // Refused either in the PUBACK or by DISCONNECT; both with 0x90.
    match c.recv_within(Duration::from_secs(3)).await {
        Ok(Some(f)) if f.kind() == kind::PUBACK => assert_eq!(f.ack()?.1, 0x90),
        Ok(Some(f)) => assert_eq!(f.disconnect()?.0, 0x90),
        other => panic!("no refusal: {other:?}"),
    }
    others_unaffected(&b).await
}

#[tokio::test]
async fn subscriptions_per_client_are_limited() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.max_subscriptions = 2\n")? else {
        return Ok(());
    };
    let t = unique("t/maxsub");
    let mut c = RawClient::connected(b.addr, &Connect::v5(&unique("ms"))).await?;
    assert_eq!(
        c.subscribe(1, &[(&format!("{t}/1"), 1), (&format!("{t}/2"), 1)])
            .await?,
        vec![1, 1]
    );
    assert_eq!(c.subscribe(2, &[(&format!("{t}/3"), 1)]).await?, vec![0x97]);
    // Re-subscribing to an existing filter is not a new subscription.
    assert_eq!(c.subscribe(3, &[(&format!("{t}/1"), 0)]).await?, vec![0]);
    others_unaffected(&b).await
}

#[tokio::test]
async fn retained_message_count_is_limited() -> Result<()> {
    let Some(b) = Broker::with_config("retainer.max_retained_messages = 2\n")? else {
        return Ok(());
    };
    let base = unique("t/maxret");
    let mut p = RawClient::connected(b.addr, &Connect::v311(&unique("p"))).await?;
    for i in 0..3u16 {
        p.publish(
            &Publish::new(&format!("{base}/{i}"), b"r")
                .qos(1, i + 1)
                .retain(),
        )
        .await?;
    }
    let mut s = RawClient::connected(b.addr, &Connect::v311(&unique("s"))).await?;
    s.subscribe(1, &[(&format!("{base}/#"), 0)]).await?;
    let mut n = 0;
    while s.recv_within(QUIET).await?.is_some() {
        n += 1;
    }
    assert_eq!(n, 2);
    Ok(())
}

#[tokio::test]
async fn connections_are_limited_per_listener() -> Result<()> {
    let Some(b) = Broker::with_config("listeners.tcp.default.max_connections = 2\n")? else {
        return Ok(());
    };
    // The node's readiness probe counts until the node has seen it close.
    let _a = RawClient::connected_when_room(b.addr, &Connect::v5(&unique("a"))).await?;
    let _b = RawClient::connected_when_room(b.addr, &Connect::v5(&unique("b"))).await?;
    // The third is closed before or right after CONNECT, never accepted.
    if let Ok(mut c) = RawClient::open(b.addr, Version::V5).await {
        let _ = c.send(&Connect::v5(&unique("c")).encode()).await;
        let closed = c.closed_within(Duration::from_secs(3)).await?;
        for f in &closed.frames {
            if f.kind() == kind::CONNACK {
                assert_ne!(f.connack(Version::V5)?.code, 0, "third connection accepted");
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn configured_topic_alias_maximum_is_enforced() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.max_topic_alias = 2\n")? else {
        return Ok(());
    };
    let (mut c, a) = RawClient::connect(b.addr, &Connect::v5(&unique("ta"))).await?;
    assert_eq!(
        girder_tests::mqtt::find(&a.props, girder_tests::mqtt::prop::TOPIC_ALIAS_MAXIMUM),
        Some(&Prop::U16(2))
    );
    c.send(
        &Publish::new(&unique("t/ta"), b"x")
            .prop(girder_tests::mqtt::prop::TOPIC_ALIAS, Prop::U16(3))
            .encode(Version::V5),
    )
    .await?;
    let closed = c.closed_within(Duration::from_secs(3)).await?;
    assert_eq!(closed.disconnect_reason(), Some(0x94));
    others_unaffected(&b).await
}
