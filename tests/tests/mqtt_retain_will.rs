//! Retained messages (set, replace, clear, retain handling, expiry) and
//! wills (abnormal end, v5 DISCONNECT 0x04, will delay, will properties,
//! takeover) (MQTT 3.1.1 §3.1.2.5, §3.3.1.3; MQTT 5.0 §3.1.3.2, §3.3.1.3).

use std::time::Duration;

use anyhow::Result;
use girder_tests::mqtt::{
    disconnect, find, prop, unique, user_props, Broker, Connect, Prop, Publish, RawClient,
    V4Client, Version, Will, QUIET,
};

async fn retained_on_subscribe(b: &Broker, filter: &str, opts: u8) -> Result<Vec<Publish>> {
    let mut s = RawClient::connected(b.addr, &Connect::v5(&unique("s"))).await?;
    s.subscribe(1, &[(filter, opts)]).await?;
    let mut got = Vec::new();
    while let Some(f) = s.recv_within(QUIET).await? {
        got.push(f.publish(Version::V5)?);
    }
    Ok(got)
}

/// A retained message is set, replaced by the next one, and cleared by an
/// empty payload; new subscribers get it with RETAIN 1.
#[tokio::test]
async fn retained_message_set_replace_clear() -> Result<()> {
    let b = Broker::start()?;
    let t = unique("t/ret");
    let mut p = RawClient::connected(b.addr, &Connect::v311(&unique("p"))).await?;
    p.publish(&Publish::new(&t, b"one").qos(1, 1).retain())
        .await?;
    let got = retained_on_subscribe(&b, &t, 1).await?;
    assert_eq!(got.len(), 1);
    assert!(got[0].retain);
    assert_eq!(got[0].payload, b"one");
    p.publish(&Publish::new(&t, b"two").qos(1, 2).retain())
        .await?;
    let got = retained_on_subscribe(&b, &t, 1).await?;
    assert_eq!(
        got.iter().map(|m| &m.payload[..]).collect::<Vec<_>>(),
        vec![b"two"]
    );
    p.publish(&Publish::new(&t, b"").qos(1, 3).retain()).await?;
    assert!(retained_on_subscribe(&b, &t, 1).await?.is_empty());
    Ok(())
}

/// rumqttc v3.1.1: a wildcard subscription gets every retained message below.
#[tokio::test]
async fn v311_wildcard_subscription_gets_retained_messages() -> Result<()> {
    let b = Broker::start()?;
    let base = unique("t/retw");
    let mut p = RawClient::connected(b.addr, &Connect::v311(&unique("p"))).await?;
    for leaf in ["a", "b"] {
        p.publish(
            &Publish::new(&format!("{base}/{leaf}"), leaf.as_bytes())
                .qos(1, 1)
                .retain(),
        )
        .await?;
    }
    let (mut c, _) =
        V4Client::connect(rumqttc::MqttOptions::new(unique("c"), b.host(), b.port())).await?;
    c.client
        .subscribe(format!("{base}/#"), rumqttc::QoS::AtLeastOnce)
        .await?;
    let mut got = Vec::new();
    for _ in 0..2 {
        let m = c.next_publish().await?;
        assert!(m.retain);
        got.push(m.topic);
    }
    got.sort();
    assert_eq!(got, vec![format!("{base}/a"), format!("{base}/b")]);
    Ok(())
}

/// Retain handling 0 sends retained messages on every subscribe, 1 only
/// when the subscription is new, 2 never.
#[tokio::test]
async fn v5_retain_handling() -> Result<()> {
    let b = Broker::start()?;
    let t = unique("t/rh");
    let mut p = RawClient::connected(b.addr, &Connect::v5(&unique("p"))).await?;
    p.publish(&Publish::new(&t, b"r").qos(1, 1).retain())
        .await?;
    let mut s = RawClient::connected(b.addr, &Connect::v5(&unique("s"))).await?;
    for (i, (rh, first, again)) in [(0u8, 1, 1), (1, 1, 0), (2, 0, 0)].into_iter().enumerate() {
        let filter = t.clone();
        let opts = 1 | (rh << 4);
        for (round, want) in [(0, first), (1, again)] {
            if round == 0 && i > 0 {
                // Make the subscription new again for this case.
                s.send(&girder_tests::mqtt::unsubscribe(
                    Version::V5,
                    50,
                    &[&filter],
                ))
                .await?;
                s.recv().await?;
            }
            s.subscribe(10 + round, &[(&filter, opts)]).await?;
            let mut n = 0;
            while let Some(f) = s.recv_within(QUIET).await? {
                let m = f.publish(Version::V5)?;
                assert!(m.retain);
                s.send(&girder_tests::mqtt::ack(0x40, m.pid)).await?;
                n += 1;
            }
            assert_eq!(n, want, "retain handling {rh}, subscribe #{round}");
        }
    }
    p.publish(&Publish::new(&t, b"").qos(1, 2).retain()).await
}

/// A retained message with a message expiry is delivered with the
/// remaining lifetime, and no longer once it has expired.
#[tokio::test]
async fn v5_retained_message_expires() -> Result<()> {
    let b = Broker::start()?;
    let t = unique("t/rexp");
    let mut p = RawClient::connected(b.addr, &Connect::v5(&unique("p"))).await?;
    p.publish(
        &Publish::new(&t, b"short")
            .qos(1, 1)
            .retain()
            .prop(prop::MESSAGE_EXPIRY, Prop::U32(2)),
    )
    .await?;
    let got = retained_on_subscribe(&b, &t, 1).await?;
    assert_eq!(got.len(), 1);
    match find(&got[0].props, prop::MESSAGE_EXPIRY) {
        Some(Prop::U32(left)) => assert!(*left <= 2, "expiry not decremented: {left}"),
        other => panic!("no message expiry on a retained message: {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert!(retained_on_subscribe(&b, &t, 1).await?.is_empty());
    Ok(())
}

fn will(topic: &str, payload: &[u8]) -> Will {
    Will {
        topic: topic.to_owned(),
        payload: payload.to_vec(),
        qos: 1,
        retain: false,
        props: Vec::new(),
    }
}

/// A will is published when the connection ends without DISCONNECT
/// (v3.1.1 and v5), and not after a normal DISCONNECT.
#[tokio::test]
async fn will_on_abnormal_end_only() -> Result<()> {
    let b = Broker::start()?;
    for version in [Version::V311, Version::V5] {
        let t = unique("t/will");
        let mut s = RawClient::connected(b.addr, &Connect::v311(&unique("s"))).await?;
        s.subscribe(1, &[(&t, 1)]).await?;
        let connect = Connect {
            version,
            ..Connect::v311(&unique("w"))
        };
        let c = RawClient::connected(b.addr, &connect.clone().will(will(&t, b"gone"))).await?;
        drop(c);
        let m = s.recv_publish().await?;
        assert_eq!((&m.topic[..], &m.payload[..]), (&t[..], &b"gone"[..]));
        let c = RawClient::connected(b.addr, &connect.will(will(&t, b"not sent"))).await?;
        c.disconnect().await?;
        s.expect_silence(QUIET).await?;
    }
    Ok(())
}

/// v5 DISCONNECT with reason 0x04 (disconnect with will message) publishes
/// the will; the will's retain flag and properties are carried.
#[tokio::test]
async fn v5_disconnect_with_will_and_will_properties() -> Result<()> {
    let b = Broker::start()?;
    let t = unique("t/will4");
    let mut s = RawClient::connected(b.addr, &Connect::v5(&unique("s"))).await?;
    s.subscribe(1, &[(&t, 0x08 | 1)]).await?;
    let mut w = will(&t, b"bye");
    w.retain = true;
    w.props = vec![
        (prop::CONTENT_TYPE, Prop::Str("text/plain".into())),
        (prop::USER_PROPERTY, Prop::Pair("who".into(), "w".into())),
    ];
    let mut c = RawClient::connected(b.addr, &Connect::v5(&unique("w")).will(w)).await?;
    c.send(&disconnect(Version::V5, 0x04, &Vec::new())).await?;
    let m = s.recv_publish().await?;
    assert_eq!(m.payload, b"bye");
    assert!(m.retain, "will retain flag (retain as published)");
    assert_eq!(
        find(&m.props, prop::CONTENT_TYPE),
        Some(&Prop::Str("text/plain".into()))
    );
    assert_eq!(user_props(&m.props), vec![("who".into(), "w".into())]);
    // The retained will is there for a new subscriber; clear it.
    assert_eq!(retained_on_subscribe(&b, &t, 1).await?.len(), 1);
    let mut p = RawClient::connected(b.addr, &Connect::v5(&unique("p"))).await?;
    p.publish(&Publish::new(&t, b"").qos(1, 9).retain()).await
}

/// v5 will delay: the will is sent after the delay, and not at all when the
/// client comes back before it.
#[tokio::test]
async fn v5_will_delay() -> Result<()> {
    let b = Broker::start()?;
    let t = unique("t/wdelay");
    let mut s = RawClient::connected(b.addr, &Connect::v5(&unique("s"))).await?;
    s.subscribe(1, &[(&t, 1)]).await?;
    let mut w = will(&t, b"late");
    w.props = vec![(prop::WILL_DELAY, Prop::U32(1))];
    let id = unique("w");
    let connect = Connect::v5(&id)
        .clean(false)
        .prop(prop::SESSION_EXPIRY, Prop::U32(30))
        .will(w.clone());
    drop(RawClient::connected(b.addr, &connect).await?);
    s.expect_silence(Duration::from_millis(600)).await?;
    let m = s.recv_publish().await?;
    assert_eq!(m.payload, b"late");
    // Back before the delay: no will.
    let mut w2 = w;
    w2.props = vec![(prop::WILL_DELAY, Prop::U32(2))];
    let connect = Connect::v5(&id)
        .clean(false)
        .prop(prop::SESSION_EXPIRY, Prop::U32(30))
        .will(w2);
    drop(RawClient::connected(b.addr, &connect).await?);
    let back = RawClient::connected(b.addr, &Connect::v5(&id).clean(false)).await?;
    s.expect_silence(Duration::from_millis(2600)).await?;
    back.disconnect().await
}

/// On takeover of a continuing session (clean start 0) with a will delay,
/// the old connection's will is not published.
#[tokio::test]
async fn no_will_on_takeover_when_the_session_continues() -> Result<()> {
    let b = Broker::start()?;
    let t = unique("t/wtake");
    let mut s = RawClient::connected(b.addr, &Connect::v5(&unique("s"))).await?;
    s.subscribe(1, &[(&t, 1)]).await?;
    let mut w = will(&t, b"taken");
    w.props = vec![(prop::WILL_DELAY, Prop::U32(1))];
    let id = unique("w");
    let connect = Connect::v5(&id)
        .clean(false)
        .prop(prop::SESSION_EXPIRY, Prop::U32(30));
    let _old = RawClient::connected(b.addr, &connect.clone().will(w)).await?;
    let new = RawClient::connected(b.addr, &connect).await?;
    s.expect_silence(Duration::from_millis(1800)).await?;
    new.disconnect().await
}
