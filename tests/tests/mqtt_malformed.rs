//! Malformed and protocol-violating packets from a raw socket: the
//! offending connection is closed (v5: with DISCONNECT 0x81 malformed
//! packet or 0x82 protocol error when the server sends one; girder must),
//! and every other client is unaffected.

use std::time::Duration;

use anyhow::Result;
use girder_tests::mqtt::{packet, subscribe, unique, Broker, Connect, Publish, RawClient, Version};

/// A subscriber and a publisher that must keep working throughout.
struct Bystanders {
    sub: RawClient,
    publ: RawClient,
    topic: String,
}

impl Bystanders {
    async fn new(b: &Broker) -> Result<Self> {
        let topic = unique("t/by");
        let mut sub = RawClient::connected(b.addr, &Connect::v5(&unique("bys"))).await?;
        sub.subscribe(1, &[(&topic, 1)]).await?;
        let publ = RawClient::connected(b.addr, &Connect::v311(&unique("byp"))).await?;
        Ok(Bystanders { sub, publ, topic })
    }

    async fn still_fine(&mut self, n: u16) -> Result<()> {
        self.publ
            .publish(&Publish::new(&self.topic, &n.to_be_bytes()).qos(1, n))
            .await?;
        let m = self.sub.recv_publish().await?;
        assert_eq!(m.payload, n.to_be_bytes());
        self.sub.send(&girder_tests::mqtt::ack(0x40, m.pid)).await
    }
}

/// Sends `bytes` after an optional CONNECT and checks the connection ends
/// (with `reason` if the v5 server says why).
async fn rejected(
    b: &Broker,
    connect: Option<Connect>,
    bytes: &[u8],
    reasons: &[u8],
) -> Result<()> {
    let version = connect.as_ref().map_or(Version::V5, |c| c.version);
    let mut c = match &connect {
        Some(conn) => RawClient::connected(b.addr, conn).await?,
        None => RawClient::open(b.addr, version).await?,
    };
    c.send(bytes).await?;
    let closed = c.closed_within(Duration::from_secs(3)).await?;
    match closed.disconnect_reason() {
        Some(r) => assert!(
            reasons.contains(&r),
            "reason 0x{r:02x}, want {reasons:02x?}"
        ),
        None if connect.as_ref().is_some_and(|c| c.version == Version::V5) && !b.is_external() => {
            panic!("girder closed a v5 connection without DISCONNECT")
        }
        None => {}
    }
    Ok(())
}

#[tokio::test]
async fn first_packet_must_be_connect() -> Result<()> {
    let b = Broker::start()?;
    let mut by = Bystanders::new(&b).await?;
    rejected(
        &b,
        None,
        &Publish::new("a", b"x").encode(Version::V311),
        &[],
    )
    .await?;
    rejected(&b, None, &girder_tests::mqtt::PINGREQ, &[]).await?;
    by.still_fine(1).await
}

#[tokio::test]
async fn bad_connect_packets_close_the_socket() -> Result<()> {
    let b = Broker::start()?;
    let mut by = Bystanders::new(&b).await?;
    let good = Connect::v5(&unique("bad")).encode();
    // Wrong protocol name.
    let mut name = good.clone();
    name[4..8].copy_from_slice(b"MQTX");
    // Reserved CONNECT flag bit 0 set [MQTT-3.1.2-3].
    let mut reserved = good.clone();
    reserved[9] |= 0x01;
    // Will QoS 3 [MQTT-3.1.2-14].
    let mut will_qos = good.clone();
    will_qos[9] |= 0x04 | 0x18;
    // Truncated: remaining length larger than what follows, then EOF-less garbage.
    let truncated = packet(0x10, &good[2..8]);
    for bytes in [name, reserved, will_qos, truncated] {
        rejected(&b, None, &bytes, &[]).await?;
    }
    by.still_fine(2).await
}

#[tokio::test]
async fn malformed_remaining_length_closes_the_socket() -> Result<()> {
    let b = Broker::start()?;
    let mut by = Bystanders::new(&b).await?;
    for version in [Version::V311, Version::V5] {
        let connect = Connect {
            version,
            ..Connect::v311(&unique("rl"))
        };
        // Five continuation bytes: not a valid variable byte integer.
        rejected(
            &b,
            Some(connect),
            &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
            &[0x81],
        )
        .await?;
    }
    by.still_fine(3).await
}

#[tokio::test]
async fn invalid_publish_packets_close_the_socket() -> Result<()> {
    let b = Broker::start()?;
    let mut by = Bystanders::new(&b).await?;
    for version in [Version::V311, Version::V5] {
        let connect = || Connect {
            version,
            ..Connect::v311(&unique("pb"))
        };
        // QoS 3 [MQTT-3.3.1-4].
        let mut qos3 = Publish::new(&unique("t/q3"), b"x")
            .qos(1, 1)
            .encode(version);
        qos3[0] |= 0x06;
        rejected(&b, Some(connect()), &qos3, &[0x81, 0x82]).await?;
        // Wildcards in a topic name [MQTT-3.3.2-2].
        let wild = Publish::new("a/+/b", b"x").encode(version);
        rejected(&b, Some(connect()), &wild, &[0x81, 0x82, 0x90]).await?;
        // Invalid UTF-8 in the topic [MQTT-1.5.3-1].
        let mut utf = Publish::new("ab", b"x").encode(version);
        utf[4] = 0xFF;
        rejected(&b, Some(connect()), &utf, &[0x81, 0x82]).await?;
        // QoS 1 with packet identifier 0 [MQTT-2.3.1-1].
        let zero = Publish::new(&unique("t/z"), b"x").qos(1, 0).encode(version);
        rejected(&b, Some(connect()), &zero, &[0x81, 0x82]).await?;
    }
    by.still_fine(4).await
}

#[tokio::test]
async fn invalid_subscribe_packets_close_the_socket() -> Result<()> {
    let b = Broker::start()?;
    let mut by = Bystanders::new(&b).await?;
    for version in [Version::V311, Version::V5] {
        let connect = || Connect {
            version,
            ..Connect::v311(&unique("sb"))
        };
        // Reserved fixed-header flags must be 0b0010 [MQTT-3.8.1-1].
        let mut flags = subscribe(version, 1, &[("a/b", 0)], &Vec::new());
        flags[0] = 0x80;
        rejected(&b, Some(connect()), &flags, &[0x81, 0x82]).await?;
        // No topic filter at all [MQTT-3.8.3-3].
        let empty = subscribe(version, 1, &[], &Vec::new());
        rejected(&b, Some(connect()), &empty, &[0x81, 0x82]).await?;
        // Requested QoS 3 [MQTT-3.8.3-4].
        let q3 = subscribe(version, 1, &[("a/b", 3)], &Vec::new());
        rejected(&b, Some(connect()), &q3, &[0x81, 0x82]).await?;
    }
    by.still_fine(5).await
}

/// A filter with `#` not last is invalid: v5 SUBACK 0x8F, v3.1.1 0x80 or
/// a close.
#[tokio::test]
async fn invalid_topic_filter_is_refused() -> Result<()> {
    let b = Broker::start()?;
    let mut c = RawClient::connected(b.addr, &Connect::v5(&unique("f"))).await?;
    c.send(&subscribe(Version::V5, 1, &[("a/#/b", 0)], &Vec::new()))
        .await?;
    match c.recv_within(Duration::from_secs(3)).await {
        Ok(Some(f)) if f.kind() == girder_tests::mqtt::kind::SUBACK => {
            assert_eq!(f.suback(Version::V5)?.1, vec![0x8F]);
        }
        Ok(Some(f)) => assert!(matches!(f.disconnect()?.0, 0x81 | 0x82 | 0x8F)),
        Ok(None) => panic!("no answer to an invalid filter"),
        Err(_) => {} // closed
    }
    Ok(())
}
