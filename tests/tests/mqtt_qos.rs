//! QoS 0, 1 and 2 flows in both directions, QoS downgrade to the
//! subscription's maximum, and ordering (MQTT 3.1.1 §4.3, §4.6; MQTT 5.0
//! §4.3, §4.6).

use anyhow::Result;
use girder_tests::mqtt::{
    ack, kind, unique, Broker, Connect, Publish, RawClient, V4Client, V5Client, Version, QUIET,
};

/// rumqttc v3.1.1: each QoS round-trips at min(publish QoS, subscription QoS).
#[tokio::test]
async fn v311_delivered_qos_is_the_minimum_of_both() -> Result<()> {
    use rumqttc::QoS::{AtLeastOnce, AtMostOnce, ExactlyOnce};
    let b = Broker::start()?;
    for (sub_q, pub_q, want) in [
        (ExactlyOnce, ExactlyOnce, ExactlyOnce),
        (ExactlyOnce, AtLeastOnce, AtLeastOnce),
        (AtLeastOnce, ExactlyOnce, AtLeastOnce),
        (AtMostOnce, ExactlyOnce, AtMostOnce),
    ] {
        let topic = unique("t/qos");
        let opts = rumqttc::MqttOptions::new(unique("c"), b.host(), b.port());
        let (mut c, _) = V4Client::connect(opts).await?;
        c.client.subscribe(&topic, sub_q).await?;
        c.next_suback().await?;
        c.client.publish(&topic, pub_q, false, "x").await?;
        let p = c.next_publish().await?;
        assert_eq!(p.qos, want, "sub {sub_q:?} pub {pub_q:?}");
    }
    Ok(())
}

/// rumqttc v5: the same, QoS 2 end to end.
#[tokio::test]
async fn v5_qos2_round_trip() -> Result<()> {
    use rumqttc::v5::mqttbytes::QoS;
    let b = Broker::start()?;
    let topic = unique("t/qos2");
    let opts = rumqttc::v5::MqttOptions::new(unique("c"), b.host(), b.port());
    let (mut c, _) = V5Client::connect(opts).await?;
    c.client.subscribe(&topic, QoS::ExactlyOnce).await?;
    c.next_suback().await?;
    for i in 0..5 {
        c.client
            .publish(&topic, QoS::ExactlyOnce, false, format!("m{i}"))
            .await?;
    }
    for i in 0..5 {
        let p = c.next_publish().await?;
        assert_eq!(p.qos, QoS::ExactlyOnce);
        assert_eq!(p.payload, format!("m{i}").into_bytes());
    }
    Ok(())
}

/// The broker acknowledges with the publisher's packet identifiers: PUBACK
/// for QoS 1, PUBREC/PUBREL/PUBCOMP for QoS 2.
#[tokio::test]
async fn broker_acks_carry_the_packet_identifier() -> Result<()> {
    let b = Broker::start()?;
    let topic = unique("t/acks");
    for version in [Version::V311, Version::V5] {
        let connect = Connect {
            version,
            ..Connect::v311(&unique("c"))
        };
        let mut c = RawClient::connected(b.addr, &connect).await?;
        c.send(&Publish::new(&topic, b"1").qos(1, 4242).encode(version))
            .await?;
        let f = c.recv().await?;
        let (pid, reason) = f.ack()?;
        assert_eq!((f.kind(), pid), (kind::PUBACK, 4242));
        // v5 allows 0x10 (no matching subscribers) as a success.
        assert!(
            reason == 0 || reason == 0x10,
            "PUBACK reason 0x{reason:02x}"
        );
        c.send(&Publish::new(&topic, b"2").qos(2, 77).encode(version))
            .await?;
        let f = c.recv().await?;
        assert_eq!((f.kind(), f.ack()?.0), (kind::PUBREC, 77));
        c.send(&ack(0x62, 77)).await?;
        let f = c.recv().await?;
        assert_eq!((f.kind(), f.ack()?.0), (kind::PUBCOMP, 77));
    }
    Ok(())
}

/// [MQTT-4.3.3]: a QoS 2 message is delivered to subscribers once, even
/// when the publisher repeats its PUBLISH (DUP) before PUBREL.
#[tokio::test]
async fn repeated_qos2_publish_is_delivered_once() -> Result<()> {
    let b = Broker::start()?;
    let topic = unique("t/q2dup");
    let mut s = RawClient::connected(b.addr, &Connect::v311(&unique("s"))).await?;
    s.subscribe(1, &[(&topic, 2)]).await?;
    let mut p = RawClient::connected(b.addr, &Connect::v311(&unique("p"))).await?;
    let mut msg = Publish::new(&topic, b"one").qos(2, 5);
    p.send(&msg.encode(Version::V311)).await?;
    assert_eq!(p.recv().await?.kind(), kind::PUBREC);
    msg.dup = true;
    p.send(&msg.encode(Version::V311)).await?;
    assert_eq!(p.recv().await?.kind(), kind::PUBREC);
    p.send(&ack(0x62, 5)).await?;
    assert_eq!(p.recv().await?.kind(), kind::PUBCOMP);
    let m = s.recv_publish().await?;
    assert_eq!(m.payload, b"one");
    s.send(&ack(0x50, m.pid)).await?;
    assert_eq!(s.recv().await?.kind(), kind::PUBREL);
    s.send(&ack(0x70, m.pid)).await?;
    s.expect_silence(QUIET).await
}

/// QoS 1 messages from one publisher arrive in order.
#[tokio::test]
async fn qos1_order_is_preserved() -> Result<()> {
    let b = Broker::start()?;
    let topic = unique("t/order");
    let mut s = RawClient::connected(b.addr, &Connect::v311(&unique("s"))).await?;
    s.subscribe(1, &[(&topic, 1)]).await?;
    let mut p = RawClient::connected(b.addr, &Connect::v311(&unique("p"))).await?;
    for i in 0..50u16 {
        p.send(
            &Publish::new(&topic, &i.to_be_bytes())
                .qos(1, i + 1)
                .encode(Version::V311),
        )
        .await?;
    }
    for i in 0..50u16 {
        let m = s.recv_publish().await?;
        assert_eq!(m.payload, i.to_be_bytes());
        s.send(&ack(0x40, m.pid)).await?;
    }
    Ok(())
}

/// QoS 0 to a QoS 0 subscriber carries no packet identifier and no DUP.
#[tokio::test]
async fn qos0_has_no_packet_identifier() -> Result<()> {
    let b = Broker::start()?;
    let topic = unique("t/q0");
    let mut s = RawClient::connected(b.addr, &Connect::v5(&unique("s"))).await?;
    s.subscribe(1, &[(&topic, 0)]).await?;
    s.send(&Publish::new(&topic, b"z").encode(Version::V5))
        .await?;
    let m = s.recv_publish().await?;
    assert_eq!((m.qos, m.dup, &m.payload[..]), (0, false, &b"z"[..]));
    Ok(())
}
