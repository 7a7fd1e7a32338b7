//! `mqtt.*` and `retainer.*` settings, each shown to take effect in a
//! running node: the same client behaviour with the setting and without it.

use std::time::Duration;

use anyhow::Result;
use girder_tests::mqtt::{
    find, kind, unique, Broker, Connect, Prop, Publish, RawClient, V4Client, Version, QUIET,
};
use girder_tests::mqtt::{prop, subscribe};

/// A v5 CONNACK's property `id`, for a client of the broker.
async fn connack_prop(b: &Broker, id: u8) -> Result<Option<Prop>> {
    let (c, ack) = RawClient::connect(b.addr, &Connect::v5(&unique("p"))).await?;
    drop(c);
    Ok(find(&ack.props, id).cloned())
}

#[tokio::test]
async fn max_qos_allowed_caps_granted_qos_and_is_announced() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.max_qos_allowed = 1\n")? else {
        return Ok(());
    };
    assert_eq!(
        connack_prop(&b, prop::MAXIMUM_QOS).await?,
        Some(Prop::Byte(1))
    );
    let mut c = RawClient::connected(b.addr, &Connect::v311(&unique("q"))).await?;
    assert_eq!(c.subscribe(1, &[(&unique("t/q"), 2)]).await?, [1]);
    let d = Broker::start()?;
    let mut c = RawClient::connected(d.addr, &Connect::v311(&unique("q"))).await?;
    assert_eq!(c.subscribe(1, &[(&unique("t/q"), 2)]).await?, [2]);
    Ok(())
}

#[tokio::test]
async fn retain_available_false_refuses_retained_publishes() -> Result<()> {
    for conf in [
        "mqtt.retain_available = false\n",
        "retainer.enable = false\n",
    ] {
        let Some(b) = Broker::with_config(conf)? else {
            return Ok(());
        };
        assert_eq!(
            connack_prop(&b, prop::RETAIN_AVAILABLE).await?,
            Some(Prop::Byte(0)),
            "{conf}"
        );
        let mut c = RawClient::connected(b.addr, &Connect::v5(&unique("r"))).await?;
        c.send(
            &Publish::new(&unique("t/r"), b"x")
                .retain()
                .encode(Version::V5),
        )
        .await?;
        let closed = c.closed_within(Duration::from_secs(3)).await?;
        assert_eq!(closed.disconnect_reason(), Some(0x9A), "{conf}: {closed:?}");
    }
    let d = Broker::start()?;
    assert_eq!(connack_prop(&d, prop::RETAIN_AVAILABLE).await?, None);
    Ok(())
}

#[tokio::test]
async fn wildcard_subscription_false_refuses_wildcards() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.wildcard_subscription = false\n")? else {
        return Ok(());
    };
    let mut c = RawClient::connected(b.addr, &Connect::v5(&unique("w"))).await?;
    let codes = c
        .subscribe(1, &[("a/+", 0), ("a/#", 0), ("a/b", 0)])
        .await?;
    assert_eq!(codes, [0xA2, 0xA2, 0]);
    let d = Broker::start()?;
    let mut c = RawClient::connected(d.addr, &Connect::v5(&unique("w"))).await?;
    assert_eq!(c.subscribe(1, &[("a/+", 0)]).await?, [0]);
    Ok(())
}

#[tokio::test]
async fn shared_subscription_false_refuses_shared_filters() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.shared_subscription = false\n")? else {
        return Ok(());
    };
    assert_eq!(
        connack_prop(&b, prop::SHARED_SUB_AVAILABLE).await?,
        Some(Prop::Byte(0))
    );
    let mut c = RawClient::connected(b.addr, &Connect::v5(&unique("s"))).await?;
    assert_eq!(c.subscribe(1, &[("$share/g/a", 0)]).await?, [0x9E]);
    Ok(())
}

#[tokio::test]
async fn ignore_loop_deliver_keeps_a_v3_clients_own_messages_from_it() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.ignore_loop_deliver = true\n")? else {
        return Ok(());
    };
    let d = Broker::start()?;
    for (broker, looped) in [(&b, false), (&d, true)] {
        let t = unique("t/loop");
        let mut c = RawClient::connected(broker.addr, &Connect::v311(&unique("l"))).await?;
        c.subscribe(1, &[(&t, 0)]).await?;
        c.publish(&Publish::new(&t, b"mine")).await?;
        match c.recv_within(QUIET).await? {
            Some(f) => assert!(looped, "own message delivered back: {f:?}"),
            None => assert!(!looped, "own message not delivered by default"),
        }
    }
    Ok(())
}

#[tokio::test]
async fn keepalive_multiplier_sets_how_long_a_silent_client_lives() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.keepalive_multiplier = 4\n")? else {
        return Ok(());
    };
    // Keep alive 1 s: closed after 4 s of silence, not after the default
    // 1.5 s.
    let mut c = RawClient::connected(b.addr, &Connect::v311(&unique("k")).keep_alive(1)).await?;
    c.expect_silence(Duration::from_millis(2500)).await?;
    c.closed_within(Duration::from_secs(6)).await?;
    let d = Broker::start()?;
    let mut c = RawClient::connected(d.addr, &Connect::v311(&unique("k")).keep_alive(1)).await?;
    c.closed_within(Duration::from_millis(2500)).await?;
    Ok(())
}

#[tokio::test]
async fn upgrade_qos_delivers_at_the_subscriptions_qos() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.upgrade_qos = true\n")? else {
        return Ok(());
    };
    let d = Broker::start()?;
    for (broker, qos) in [(&b, 1), (&d, 0)] {
        let t = unique("t/up");
        let mut sub = RawClient::connected(broker.addr, &Connect::v311(&unique("s"))).await?;
        sub.subscribe(1, &[(&t, 1)]).await?;
        let mut publ = RawClient::connected(broker.addr, &Connect::v311(&unique("p"))).await?;
        publ.publish(&Publish::new(&t, b"up")).await?;
        assert_eq!(sub.recv_publish().await?.qos, qos);
    }
    Ok(())
}

#[tokio::test]
async fn max_awaiting_rel_bounds_unreleased_qos2_of_v3_clients() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.max_awaiting_rel = 2\n")? else {
        return Ok(());
    };
    let mut c = RawClient::connected(b.addr, &Connect::v311(&unique("a"))).await?;
    let t = unique("t/rel");
    for pid in 1..=2 {
        c.send(&Publish::new(&t, b"x").qos(2, pid).encode(Version::V311))
            .await?;
        assert_eq!(c.recv().await?.kind(), kind::PUBREC);
    }
    c.send(&Publish::new(&t, b"x").qos(2, 3).encode(Version::V311))
        .await?;
    c.closed_within(Duration::from_secs(3)).await?;
    Ok(())
}

/// A persistent v3 session goes offline, gets a QoS 0 and a QoS 1 message,
/// and comes back: which of them it finds.
async fn offline_payloads(b: &Broker) -> Result<Vec<Vec<u8>>> {
    let id = unique("mq");
    let t = unique("t/mq");
    let mut c = RawClient::connected(b.addr, &Connect::v311(&id).clean(false)).await?;
    c.subscribe(1, &[(&t, 1)]).await?;
    c.disconnect().await?;
    let mut p = RawClient::connected(b.addr, &Connect::v311(&unique("p"))).await?;
    p.publish(&Publish::new(&t, b"qos0")).await?;
    p.publish(&Publish::new(&t, b"qos1").qos(1, 1)).await?;
    let mut c = RawClient::connected(b.addr, &Connect::v311(&id).clean(false)).await?;
    let mut got = Vec::new();
    while let Some(f) = c.recv_within(QUIET).await? {
        if f.kind() == kind::PUBLISH {
            got.push(f.publish(Version::V311)?.payload);
        }
    }
    Ok(got)
}

#[tokio::test]
async fn mqueue_store_qos0_false_queues_only_qos1_and_2() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.mqueue_store_qos0 = false\n")? else {
        return Ok(());
    };
    assert_eq!(offline_payloads(&b).await?, [b"qos1".to_vec()]);
    let d = Broker::start()?;
    assert_eq!(
        offline_payloads(&d).await?,
        [b"qos0".to_vec(), b"qos1".to_vec()]
    );
    Ok(())
}

#[tokio::test]
async fn use_username_as_clientid_makes_one_session_per_username() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.use_username_as_clientid = true\n")? else {
        return Ok(());
    };
    let t = unique("t/user");
    let user = unique("user");
    let mut first = rumqttc::MqttOptions::new(unique("first"), b.host(), b.port());
    first.set_credentials(user.clone(), "pw");
    let (mut first, _) = V4Client::connect(first).await?;
    // A second client id with the same username is the same client: it
    // takes the first one's place.
    let mut second = rumqttc::MqttOptions::new(unique("second"), b.host(), b.port());
    second.set_credentials(user.clone(), "pw");
    let (mut second, _) = V4Client::connect(second).await?;
    let ended = first.next_incoming(|_| None::<()>).await;
    let why = format!("{:#}", ended.expect_err("nothing is picked"));
    assert!(
        why.contains("connection error"),
        "the first connection was closed by the broker, not left open: {why}"
    );
    second
        .client
        .subscribe(&t, rumqttc::QoS::AtMostOnce)
        .await?;
    second.next_suback().await?;
    Ok(())
}

#[tokio::test]
async fn retainer_max_payload_size_keeps_larger_messages_out_of_the_store() -> Result<()> {
    let Some(b) = Broker::with_config("retainer.max_payload_size = 16B\n")? else {
        return Ok(());
    };
    let (small, large) = (unique("t/small"), unique("t/large"));
    let mut p = RawClient::connected(b.addr, &Connect::v311(&unique("p"))).await?;
    // QoS 1: each is handled (stored or refused) before its PUBACK, so the
    // subscriber below gets retained messages only, not live ones.
    p.publish(&Publish::new(&small, b"tiny").qos(1, 1).retain())
        .await?;
    p.publish(&Publish::new(&large, &[b'x'; 64]).qos(1, 2).retain())
        .await?;
    let mut s = RawClient::connected(b.addr, &Connect::v311(&unique("s"))).await?;
    s.send(&subscribe(
        Version::V311,
        1,
        &[(&small, 0), (&large, 0)],
        &Vec::new(),
    ))
    .await?;
    let mut retained = Vec::new();
    while let Some(f) = s.recv_within(QUIET).await? {
        if f.kind() == kind::PUBLISH {
            retained.push(f.publish(Version::V311)?.topic);
        }
    }
    assert_eq!(retained, [small]);
    Ok(())
}
