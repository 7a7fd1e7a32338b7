//! Subscriptions: wildcards, `$`-topics, granted QoS, no local, retain as
//! published, subscription identifiers, unsubscribe (MQTT 3.1.1 §3.8-3.11,
//! §4.7; MQTT 5.0 §3.8-3.11, §4.7-4.8).

use anyhow::Result;
use girder_tests::mqtt::{
    find, kind, prop, unique, Broker, Connect, Prop, Publish, RawClient, V5Client, Version, QUIET,
};

/// Which of `topics` (relative to a unique base) a subscriber on `filter`
/// receives; the publisher sends them in order.
async fn matched(b: &Broker, filter: &str, topics: &[&str]) -> Result<Vec<String>> {
    let base = unique("w");
    let mut s = RawClient::connected(b.addr, &Connect::v311(&unique("s"))).await?;
    s.subscribe(1, &[(&format!("{base}/{filter}"), 0)]).await?;
    let mut p = RawClient::connected(b.addr, &Connect::v311(&unique("p"))).await?;
    for t in topics {
        p.publish(&Publish::new(&format!("{base}/{t}"), t.as_bytes()).qos(1, 1))
            .await?;
    }
    let mut got = Vec::new();
    while let Some(f) = s.recv_within(QUIET).await? {
        got.push(String::from_utf8(f.publish(Version::V311)?.payload)?);
    }
    Ok(got)
}

#[tokio::test]
async fn single_level_wildcard_matches_one_level() -> Result<()> {
    let b = Broker::start()?;
    let got = matched(&b, "a/+/c", &["a/b/c", "a/c", "a/b/b/c", "a//c", "a/x/c/d"]).await?;
    assert_eq!(got, vec!["a/b/c", "a//c"]);
    Ok(())
}

#[tokio::test]
async fn multi_level_wildcard_matches_the_parent_and_below() -> Result<()> {
    let b = Broker::start()?;
    let got = matched(&b, "a/#", &["a", "a/b", "a/b/c", "b/a", "ab"]).await?;
    assert_eq!(got, vec!["a", "a/b", "a/b/c"]);
    Ok(())
}

/// [MQTT-4.7.2-1]: filters starting with a wildcard do not match topics
/// starting with `$`; an explicit `$` filter does.
#[tokio::test]
async fn leading_wildcards_do_not_match_dollar_topics() -> Result<()> {
    let b = Broker::start()?;
    let dollar = format!("${}", unique("sys"));
    let mut wild = RawClient::connected(b.addr, &Connect::v311(&unique("s"))).await?;
    wild.subscribe(1, &[("#", 0), ("+/x", 0)]).await?;
    let mut exact = RawClient::connected(b.addr, &Connect::v311(&unique("s"))).await?;
    exact.subscribe(1, &[(&format!("{dollar}/#"), 0)]).await?;
    let mut p = RawClient::connected(b.addr, &Connect::v311(&unique("p"))).await?;
    p.publish(&Publish::new(&format!("{dollar}/x"), b"d").qos(1, 1))
        .await?;
    assert_eq!(exact.recv_publish().await?.payload, b"d");
    // `#` sees other tests' traffic on a shared broker: look only for ours.
    while let Some(f) = wild.recv_within(QUIET).await? {
        let m = f.publish(Version::V311)?;
        assert!(!m.topic.starts_with('$'), "wildcard matched {}", m.topic);
    }
    Ok(())
}

/// SUBACK grants the requested QoS, one code per filter, in order.
#[tokio::test]
async fn suback_grants_the_requested_qos() -> Result<()> {
    let b = Broker::start()?;
    let t = unique("t/g");
    for version in [Version::V311, Version::V5] {
        let connect = Connect {
            version,
            ..Connect::v311(&unique("s"))
        };
        let mut s = RawClient::connected(b.addr, &connect).await?;
        let codes = s
            .subscribe(
                7,
                &[
                    (&format!("{t}/0"), 0),
                    (&format!("{t}/1"), 1),
                    (&format!("{t}/2"), 2),
                ],
            )
            .await?;
        assert_eq!(codes, vec![0, 1, 2]);
    }
    Ok(())
}

/// A second SUBSCRIBE to the same filter replaces the first: one copy of
/// each message, at the new QoS.
#[tokio::test]
async fn resubscribing_replaces_the_subscription() -> Result<()> {
    let b = Broker::start()?;
    let t = unique("t/re");
    let mut s = RawClient::connected(b.addr, &Connect::v311(&unique("s"))).await?;
    s.subscribe(1, &[(&t, 0)]).await?;
    s.subscribe(2, &[(&t, 1)]).await?;
    let mut p = RawClient::connected(b.addr, &Connect::v311(&unique("p"))).await?;
    p.publish(&Publish::new(&t, b"x").qos(1, 1)).await?;
    assert_eq!(s.recv_publish().await?.qos, 1);
    s.expect_silence(QUIET).await
}

/// v5 no local: a client does not get its own messages back on such a
/// subscription, and still gets other clients'.
#[tokio::test]
async fn v5_no_local_drops_own_messages() -> Result<()> {
    let b = Broker::start()?;
    let t = unique("t/nl");
    let mut s = RawClient::connected(b.addr, &Connect::v5(&unique("s"))).await?;
    s.subscribe(1, &[(&t, 0x04 | 1)]).await?;
    s.publish(&Publish::new(&t, b"own").qos(1, 1)).await?;
    let mut p = RawClient::connected(b.addr, &Connect::v5(&unique("p"))).await?;
    p.publish(&Publish::new(&t, b"other").qos(1, 1)).await?;
    assert_eq!(s.recv_publish().await?.payload, b"other");
    s.expect_silence(QUIET).await
}

/// Live messages are forwarded with RETAIN 0 unless the subscription asks
/// for retain as published [MQTT-3.3.1-12, MQTT-3.3.1-13].
#[tokio::test]
async fn v5_retain_as_published() -> Result<()> {
    let b = Broker::start()?;
    let t = unique("t/rap");
    let mut plain = RawClient::connected(b.addr, &Connect::v5(&unique("s"))).await?;
    plain.subscribe(1, &[(&t, 1)]).await?;
    let mut rap = RawClient::connected(b.addr, &Connect::v5(&unique("s"))).await?;
    rap.subscribe(1, &[(&t, 0x08 | 1)]).await?;
    let mut p = RawClient::connected(b.addr, &Connect::v5(&unique("p"))).await?;
    p.publish(&Publish::new(&t, b"r").qos(1, 1).retain())
        .await?;
    assert!(!plain.recv_publish().await?.retain);
    assert!(rap.recv_publish().await?.retain);
    // Clear the retained message.
    p.publish(&Publish::new(&t, b"").qos(1, 2).retain()).await
}

/// rumqttc v5: a subscription identifier comes back on every matching
/// message; overlapping subscriptions carry each of their identifiers.
#[tokio::test]
async fn v5_subscription_identifiers() -> Result<()> {
    use rumqttc::v5::mqttbytes::v5::{Filter, SubscribeProperties};
    use rumqttc::v5::mqttbytes::QoS;
    let b = Broker::start()?;
    let t = unique("t/sid");
    let (mut c, _) = V5Client::connect(rumqttc::v5::MqttOptions::new(
        unique("c"),
        b.host(),
        b.port(),
    ))
    .await?;
    for (filter, id) in [(t.clone(), 42usize), (format!("{t}/#"), 7)] {
        let props = SubscribeProperties {
            id: Some(id),
            user_properties: Vec::new(),
        };
        c.client
            .subscribe_many_with_properties([Filter::new(filter, QoS::AtLeastOnce)], props)
            .await?;
        c.next_suback().await?;
    }
    c.client.publish(&t, QoS::AtLeastOnce, false, "x").await?;
    let mut ids = Vec::new();
    // One message with both identifiers, or one message per subscription.
    while ids.len() < 2 {
        let m = c.next_publish().await?;
        ids.extend(
            m.properties
                .map(|p| p.subscription_identifiers)
                .unwrap_or_default(),
        );
    }
    ids.sort_unstable();
    assert_eq!(ids, vec![7, 42]);
    Ok(())
}

/// UNSUBSCRIBE stops delivery; UNSUBACK echoes the packet identifier.
#[tokio::test]
async fn unsubscribe_stops_delivery() -> Result<()> {
    let b = Broker::start()?;
    for version in [Version::V311, Version::V5] {
        let t = unique("t/unsub");
        let connect = Connect {
            version,
            ..Connect::v311(&unique("s"))
        };
        let mut s = RawClient::connected(b.addr, &connect).await?;
        s.subscribe(1, &[(&t, 1)]).await?;
        s.send(&girder_tests::mqtt::unsubscribe(version, 9, &[&t]))
            .await?;
        let f = s.recv().await?;
        assert_eq!(f.kind(), kind::UNSUBACK);
        let (pid, codes) = f.suback(version)?;
        assert_eq!(pid, 9);
        if version == Version::V5 {
            assert_eq!(codes, vec![0x00]);
        }
        s.publish(&Publish::new(&t, b"x").qos(1, 2)).await?;
        s.expect_silence(QUIET).await?;
    }
    Ok(())
}

/// v5 UNSUBSCRIBE of a filter that was never subscribed: 0x11 (no
/// subscription existed).
#[tokio::test]
async fn v5_unsubscribe_unknown_filter_says_no_subscription_existed() -> Result<()> {
    let b = Broker::start()?;
    let mut s = RawClient::connected(b.addr, &Connect::v5(&unique("s"))).await?;
    s.send(&girder_tests::mqtt::unsubscribe(
        Version::V5,
        3,
        &[&unique("t/none")],
    ))
    .await?;
    let (_, codes) = s.recv().await?.suback(Version::V5)?;
    assert_eq!(codes, vec![0x11]);
    Ok(())
}

/// The CONNACK says wildcard, shared subscriptions and subscription
/// identifiers are available (absent means available).
#[tokio::test]
async fn v5_connack_allows_wildcards_shared_and_identifiers() -> Result<()> {
    let b = Broker::start()?;
    let (_c, a) = RawClient::connect(b.addr, &Connect::v5(&unique("c"))).await?;
    for id in [0x28, 0x29, prop::SHARED_SUB_AVAILABLE] {
        if let Some(p) = find(&a.props, id) {
            assert_eq!(p, &Prop::Byte(1), "property 0x{id:02x}");
        }
    }
    Ok(())
}
