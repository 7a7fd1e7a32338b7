//! Settings that change the broker's MQTT semantics, each against a node
//! started with it: `listeners.tcp.<name>.mountpoint`,
//! `mqtt.exclusive_subscription`, `mqtt.message_expiry_interval`,
//! `retainer.msg_expiry_interval`, `retainer.msg_clear_interval` and
//! `mqtt.strict_mode`.

use std::time::Duration;

use anyhow::{ensure, Result};
use girder_tests::mqtt::{
    kind, packet, prop, unique, Broker, Connect, Prop, Publish, RawClient, Version, QUIET, WAIT,
};
use girder_tests::node::{NodeOptions, NodeProcess};
use tokio::time::{sleep, Instant};

/// Subscribes a fresh v5 client to `filter` and returns the retained
/// messages it gets.
async fn retained(b: &Broker, filter: &str) -> Result<Vec<Publish>> {
    let mut s = RawClient::connected(b.addr, &Connect::v5(&unique("r"))).await?;
    s.subscribe(1, &[(filter, 1)]).await?;
    let mut got = Vec::new();
    while let Some(f) = s.recv_within(QUIET).await? {
        got.push(f.publish(Version::V5)?);
    }
    Ok(got)
}

/// With `${clientid}` in the mountpoint every client has a topic space of
/// its own: it sees its own messages on the topics it used, and another
/// client subscribed to the same topic sees nothing of them. Retained
/// messages and shared subscriptions live under the mountpoint too.
#[tokio::test]
async fn a_mountpoint_gives_each_client_its_own_topics() -> Result<()> {
    let Some(b) =
        Broker::with_config("listeners.tcp.default.mountpoint = \"tenant/${clientid}/\"")?
    else {
        return Ok(());
    };
    let mut a = RawClient::connected(b.addr, &Connect::v5(&unique("a"))).await?;
    let mut other = RawClient::connected(b.addr, &Connect::v311(&unique("o"))).await?;
    assert_eq!(
        a.subscribe(1, &[("t/#", 0), ("$share/g/s", 0)]).await?,
        [0, 0]
    );
    assert_eq!(other.subscribe(1, &[("t/#", 0)]).await?, [0]);

    a.publish(&Publish::new("t/1", b"mine")).await?;
    let got = a.recv_publish().await?;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("t/1", &b"mine"[..])
    );
    a.publish(&Publish::new("s", b"shared")).await?;
    let got = a.recv_publish().await?;
    assert_eq!(got.topic, "s", "shared subscription, mounted and stripped");
    other.expect_silence(QUIET).await?;

    // A retained message is found by the same client under the same name.
    a.publish(&Publish::new("t/kept", b"r").retain()).await?;
    assert_eq!(a.recv_publish().await?.topic, "t/kept");
    assert_eq!(a.subscribe(2, &[("t/kept", 0)]).await?, [0]);
    let got = a.recv_publish().await?;
    assert!(got.retain);
    assert_eq!(got.topic, "t/kept");
    other.expect_silence(QUIET).await?;

    // A client id holding a wildcard would put it into the mountpoint.
    let (_, ack) = RawClient::connect(b.addr, &Connect::v5("bad+id")).await?;
    assert_eq!(ack.code, 0x85, "Client Identifier not valid");
    Ok(())
}

/// Subscribers that strip the same static mountpoint share the message's
/// encoded frames, and each gets the right topic, in v3 and v5.
#[tokio::test]
async fn a_static_mountpoint_is_stripped_for_every_subscriber() -> Result<()> {
    let Some(b) = Broker::with_config("listeners.tcp.default.mountpoint = \"site/\"")? else {
        return Ok(());
    };
    let mut v5 = RawClient::connected(b.addr, &Connect::v5(&unique("s5"))).await?;
    let mut v3 = RawClient::connected(b.addr, &Connect::v311(&unique("s3"))).await?;
    for s in [&mut v5, &mut v3] {
        assert_eq!(s.subscribe(1, &[("m/+", 0), ("m/#", 0)]).await?, [0, 0]);
    }
    let mut p = RawClient::connected(b.addr, &Connect::v5(&unique("p"))).await?;
    p.publish(&Publish::new("m/x", b"hello").qos(1, 1)).await?;
    for s in [&mut v5, &mut v3] {
        for _ in 0..2 {
            let got = s.recv_publish().await?;
            assert_eq!(
                (got.topic.as_str(), &got.payload[..]),
                ("m/x", &b"hello"[..])
            );
        }
    }
    Ok(())
}

/// A mountpoint that cannot prefix topic names stops the node at start.
#[test]
fn an_invalid_mountpoint_is_refused_at_load() {
    let started = NodeProcess::start_with(NodeOptions {
        extra_config: "listeners.tcp.default.mountpoint = \"a/+/\"".to_owned(),
        env: Vec::new(),
    });
    let err = started.expect_err("the node must refuse the mountpoint");
    assert!(
        format!("{err:#}").contains("listeners.tcp.default.mountpoint"),
        "{err:#}"
    );
}

/// One client at a time holds an exclusive filter: others get 0x97 (v5)
/// or 0x80 (v3) until the holder unsubscribes or its session ends.
#[tokio::test]
async fn an_exclusive_filter_has_one_holder_at_a_time() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.exclusive_subscription = true")? else {
        return Ok(());
    };
    let t = unique("ex");
    let filter = format!("$exclusive/{t}/#");
    let filter = filter.as_str();
    let mut a = RawClient::connected(b.addr, &Connect::v5(&unique("a"))).await?;
    let mut b5 = RawClient::connected(b.addr, &Connect::v5(&unique("b"))).await?;
    let mut c3 = RawClient::connected(b.addr, &Connect::v311(&unique("c"))).await?;
    assert_eq!(a.subscribe(1, &[(filter, 1)]).await?, [1]);
    assert_eq!(b5.subscribe(1, &[(filter, 1)]).await?, [0x97]);
    assert_eq!(c3.subscribe(1, &[(filter, 1)]).await?, [0x80]);
    assert_eq!(
        a.subscribe(2, &[(filter, 0)]).await?,
        [0],
        "the holder resubscribes"
    );

    // `$exclusive/t/#` matches as `t/#` does.
    let mut p = RawClient::connected(b.addr, &Connect::v5(&unique("p"))).await?;
    p.publish(&Publish::new(&format!("{t}/1"), b"x")).await?;
    assert_eq!(a.recv_publish().await?.topic, format!("{t}/1"));
    b5.expect_silence(QUIET).await?;

    a.send(&girder_tests::mqtt::unsubscribe(Version::V5, 3, &[filter]))
        .await?;
    let (_, codes) = a.recv().await?.suback(Version::V5)?;
    assert_eq!(codes, [0]);
    assert_eq!(
        b5.subscribe(2, &[(filter, 1)]).await?,
        [1],
        "free after UNSUBSCRIBE"
    );
    // b's session ends with its connection (session expiry 0).
    b5.disconnect().await?;
    assert_eq!(
        c3.subscribe(2, &[(filter, 1)]).await?,
        [1],
        "free after the session ended"
    );
    Ok(())
}

/// Without `mqtt.exclusive_subscription`, `$exclusive/...` is an ordinary
/// filter: anyone may subscribe, and it matches only topics spelled so.
#[tokio::test]
async fn exclusive_filters_are_ordinary_when_disabled() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.exclusive_subscription = false")? else {
        return Ok(());
    };
    let t = unique("ex");
    let filter = format!("$exclusive/{t}");
    let mut a = RawClient::connected(b.addr, &Connect::v5(&unique("a"))).await?;
    let mut c = RawClient::connected(b.addr, &Connect::v5(&unique("c"))).await?;
    assert_eq!(a.subscribe(1, &[(filter.as_str(), 0)]).await?, [0]);
    assert_eq!(c.subscribe(1, &[(filter.as_str(), 0)]).await?, [0]);
    let mut p = RawClient::connected(b.addr, &Connect::v5(&unique("p"))).await?;
    p.publish(&Publish::new(&t, b"plain")).await?;
    a.expect_silence(QUIET).await?;
    Ok(())
}

/// A message kept for an offline session expires after
/// `mqtt.message_expiry_interval` unless its publisher gave it an expiry
/// of its own; with a longer default it is delivered.
async fn offline_delivery(default_expiry: &str) -> Result<Option<Vec<Vec<u8>>>> {
    let config = format!("mqtt.message_expiry_interval = {default_expiry}");
    let Some(b) = Broker::with_config(&config)? else {
        return Ok(None);
    };
    let t = unique("exp");
    let id = unique("s");
    let persistent = || {
        Connect::v5(&id)
            .clean(false)
            .prop(prop::SESSION_EXPIRY, Prop::U32(300))
    };
    let mut s = RawClient::connected(b.addr, &persistent()).await?;
    s.subscribe(1, &[(t.as_str(), 1)]).await?;
    s.disconnect().await?;

    let mut p = RawClient::connected(b.addr, &Connect::v5(&unique("p"))).await?;
    p.publish(&Publish::new(&t, b"plain").qos(1, 1)).await?;
    p.publish(
        &Publish::new(&t, b"own")
            .qos(1, 2)
            .prop(prop::MESSAGE_EXPIRY, Prop::U32(600)),
    )
    .await?;
    let mut v3 = RawClient::connected(b.addr, &Connect::v311(&unique("p3"))).await?;
    v3.publish(&Publish::new(&t, b"v3").qos(1, 3)).await?;
    // Past the 1 s default.
    sleep(Duration::from_millis(1500)).await;

    let (mut s, ack) = RawClient::connect(b.addr, &persistent()).await?;
    ensure!(ack.session_present, "the session was kept");
    let mut got = Vec::new();
    while let Some(f) = s.recv_within(QUIET).await? {
        let m = f.publish(Version::V5)?;
        s.send(&girder_tests::mqtt::ack(0x40, m.pid)).await?;
        got.push(m.payload);
    }
    Ok(Some(got))
}

#[tokio::test]
async fn messages_without_an_expiry_expire_after_the_default() -> Result<()> {
    let Some(got) = offline_delivery("1s").await? else {
        return Ok(());
    };
    assert_eq!(got, [b"own".to_vec()], "only the one with its own expiry");
    Ok(())
}

#[tokio::test]
async fn messages_within_the_default_expiry_are_delivered() -> Result<()> {
    let Some(got) = offline_delivery("1h").await? else {
        return Ok(());
    };
    assert_eq!(got, [b"plain".to_vec(), b"own".to_vec(), b"v3".to_vec()]);
    Ok(())
}

/// A retained message without an expiry of its own is no longer sent to
/// new subscribers after `retainer.msg_expiry_interval`; one with its own
/// expiry keeps it.
#[tokio::test]
async fn retained_messages_expire_after_the_retainer_interval() -> Result<()> {
    let Some(b) = Broker::with_config("retainer.msg_expiry_interval = 1s")? else {
        return Ok(());
    };
    let t = unique("ret");
    let mut p = RawClient::connected(b.addr, &Connect::v5(&unique("p"))).await?;
    p.publish(&Publish::new(&format!("{t}/plain"), b"a").qos(1, 1).retain())
        .await?;
    p.publish(
        &Publish::new(&format!("{t}/own"), b"b")
            .qos(1, 2)
            .retain()
            .prop(prop::MESSAGE_EXPIRY, Prop::U32(600)),
    )
    .await?;
    assert_eq!(retained(&b, &format!("{t}/#")).await?.len(), 2);
    sleep(Duration::from_millis(1200)).await;
    let got = retained(&b, &format!("{t}/#")).await?;
    let topics: Vec<_> = got.iter().map(|m| m.topic.clone()).collect();
    assert_eq!(topics, [format!("{t}/own")]);
    Ok(())
}

/// Publishes a retained message on `topic` and reports whether a new
/// subscriber gets it.
async fn is_retained(b: &Broker, p: &mut RawClient, topic: &str, pid: u16) -> Result<bool> {
    p.publish(&Publish::new(topic, b"x").qos(1, pid).retain())
        .await?;
    Ok(!retained(b, topic).await?.is_empty())
}

/// With `retainer.max_retained_messages = 1`, an expired retained message
/// keeps its place until `retainer.msg_clear_interval` removes it: a new
/// topic is refused before the clear and stored after. Without a clearer
/// (`0s`), a full store removes its expired messages itself.
#[tokio::test]
async fn expired_retained_messages_are_cleared_every_interval() -> Result<()> {
    let limit = "retainer.max_retained_messages = 1\nretainer.msg_expiry_interval = 1s\n";
    let node =
        |clear: &str| Broker::with_config(&format!("{limit}retainer.msg_clear_interval = {clear}"));
    let (Some(never), Some(slow), Some(cleared)) = (node("0s")?, node("1h")?, node("300ms")?)
    else {
        return Ok(());
    };
    for b in [&never, &slow, &cleared] {
        let mut p = RawClient::connected(b.addr, &Connect::v5(&unique("p"))).await?;
        assert!(is_retained(b, &mut p, &unique("first"), 1).await?);
        assert!(!is_retained(b, &mut p, &unique("second"), 2).await?, "full");
    }
    // Every first message has expired after 1 s.
    sleep(Duration::from_millis(1100)).await;
    let mut p = RawClient::connected(never.addr, &Connect::v5(&unique("p"))).await?;
    assert!(
        is_retained(&never, &mut p, &unique("third"), 3).await?,
        "no clearer: the full store makes room from its expired messages"
    );
    let mut p = RawClient::connected(slow.addr, &Connect::v5(&unique("p"))).await?;
    assert!(
        !is_retained(&slow, &mut p, &unique("third"), 3).await?,
        "not cleared yet: the expired message still holds the only place"
    );
    let mut p = RawClient::connected(cleared.addr, &Connect::v5(&unique("p"))).await?;
    let deadline = Instant::now() + WAIT;
    let mut pid = 3;
    loop {
        if is_retained(&cleared, &mut p, &unique("third"), pid).await? {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the expired message was never cleared"
        );
        pid += 1;
    }
    Ok(())
}

fn not_utf8(qos: u8, pid: u16) -> Publish {
    Publish::new("strict/t", b"\xff\xfe")
        .qos(qos, pid)
        .prop(prop::PAYLOAD_FORMAT, Prop::Byte(1))
}

/// Strict mode refuses a payload that is not the UTF-8 its Payload Format
/// Indicator claims: PUBACK/PUBREC 0x99, or DISCONNECT 0x99 at QoS 0.
#[tokio::test]
async fn strict_mode_refuses_payloads_that_are_not_utf8() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.strict_mode = true")? else {
        return Ok(());
    };
    let mut s = RawClient::connected(b.addr, &Connect::v5(&unique("s"))).await?;
    s.subscribe(1, &[("strict/#", 1)]).await?;
    let mut c = RawClient::connected(b.addr, &Connect::v5(&unique("c"))).await?;
    c.send(&not_utf8(1, 1).encode(Version::V5)).await?;
    assert_eq!(c.recv().await?.ack()?, (1, 0x99));
    c.send(&not_utf8(2, 2).encode(Version::V5)).await?;
    let f = c.recv().await?;
    assert_eq!((f.kind(), f.ack()?), (kind::PUBREC, (2, 0x99)));
    s.expect_silence(QUIET).await?;
    c.send(&not_utf8(0, 0).encode(Version::V5)).await?;
    let closed = c.closed_within(WAIT).await?;
    assert_eq!(closed.disconnect_reason(), Some(0x99));
    Ok(())
}

/// Without strict mode such a payload is routed as it is.
#[tokio::test]
async fn without_strict_mode_payloads_pass_unchecked() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.strict_mode = false")? else {
        return Ok(());
    };
    let mut s = RawClient::connected(b.addr, &Connect::v5(&unique("s"))).await?;
    s.subscribe(1, &[("strict/#", 0)]).await?;
    let mut c = RawClient::connected(b.addr, &Connect::v5(&unique("c"))).await?;
    c.publish(&not_utf8(1, 1)).await?;
    assert_eq!(s.recv_publish().await?.payload, b"\xff\xfe");
    Ok(())
}

/// Strings are always checked, strict mode or not: a topic that is not
/// UTF-8 is a malformed packet.
#[tokio::test]
async fn a_topic_that_is_not_utf8_is_always_malformed() -> Result<()> {
    let b = Broker::start()?;
    let mut c = RawClient::connected(b.addr, &Connect::v5(&unique("c"))).await?;
    // QoS 0 PUBLISH, topic "\xff", no properties, empty payload.
    c.send(&packet(0x30, &[0x00, 0x01, 0xff, 0x00])).await?;
    let closed = c.closed_within(WAIT).await?;
    if !b.is_external() {
        assert_eq!(closed.disconnect_reason(), Some(0x81));
    }
    Ok(())
}
