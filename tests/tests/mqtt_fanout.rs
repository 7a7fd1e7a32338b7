//! One message to many subscribers: each gets the PUBLISH its own protocol
//! version and subscription call for (QoS, RETAIN, packet identifier, DUP,
//! properties, subscription identifier, topic alias), although subscribers
//! that need the same bytes share one encoded frame (MQTT 3.1.1 §3.3,
//! MQTT 5.0 §3.3).

use anyhow::{ensure, Context, Result};
use girder_tests::mqtt::{
    ack, find, prop, unique, user_props, Broker, Connect, Prop, Publish, RawClient, V4Client,
    V5Client, Version, QUIET,
};

/// The v5 properties a fanned-out message carries to every v5 subscriber.
fn check_v5_props(m: &Publish) -> Result<()> {
    ensure!(
        find(&m.props, prop::CONTENT_TYPE) == Some(&Prop::Str("text/plain".into())),
        "content type: {m:?}"
    );
    ensure!(
        user_props(&m.props) == [("site".to_owned(), "north".to_owned())],
        "user properties: {m:?}"
    );
    match find(&m.props, prop::MESSAGE_EXPIRY) {
        Some(Prop::U32(left)) => ensure!((90..=100).contains(left), "expiry {left}"),
        other => anyhow::bail!("message expiry: {other:?}"),
    }
    Ok(())
}

/// Raw clients of every version and several subscription options receive
/// one published message; each PUBLISH is checked byte for byte where it
/// differs between them.
#[tokio::test]
async fn each_subscriber_gets_its_own_publish_of_a_shared_message() -> Result<()> {
    let b = Broker::start()?;
    let t = unique("t/fan");
    let sub = |version: Version, clean: bool| Connect {
        version,
        ..Connect::v311(&unique("s")).clean(clean)
    };

    let mut v3_q0 = RawClient::connected(b.addr, &sub(Version::V311, true)).await?;
    v3_q0.subscribe(1, &[(&t, 0)]).await?;
    // A persistent v3.1.1 QoS 1 subscriber whose packet identifiers run one
    // ahead of the others: it holds an unacknowledged message first.
    let v3_q1_connect = sub(Version::V311, false);
    let mut v3_q1 = RawClient::connected(b.addr, &v3_q1_connect).await?;
    let own = format!("{t}/own");
    v3_q1.subscribe(1, &[(&t, 1), (&own, 1)]).await?;
    let mut v5_q1 = RawClient::connected(b.addr, &sub(Version::V5, true)).await?;
    v5_q1.subscribe(1, &[(&t, 1)]).await?;
    let mut v5_q2_rap = RawClient::connected(b.addr, &sub(Version::V5, true)).await?;
    v5_q2_rap.subscribe(1, &[(&t, 2 | 0x08)]).await?;
    let mut v5_sid = RawClient::connected(b.addr, &sub(Version::V5, true)).await?;
    v5_sid
        .subscribe_with(
            1,
            &[(&t, 1)],
            &vec![(prop::SUBSCRIPTION_ID, Prop::VarInt(9))],
        )
        .await?;
    let alias_connect = sub(Version::V5, true).prop(prop::TOPIC_ALIAS_MAXIMUM, Prop::U16(4));
    let mut v5_alias = RawClient::connected(b.addr, &alias_connect).await?;
    v5_alias.subscribe(1, &[(&t, 0)]).await?;

    let mut p = RawClient::connected(b.addr, &Connect::v5(&unique("p"))).await?;
    p.publish(&Publish::new(&own, b"first").qos(1, 1)).await?;
    let held = v3_q1.recv_publish().await?;
    assert_eq!((held.pid, held.payload.as_slice()), (1, &b"first"[..]));

    let message = |payload: &[u8], pid: u16| {
        Publish::new(&t, payload)
            .qos(2, pid)
            .retain()
            .prop(prop::MESSAGE_EXPIRY, Prop::U32(100))
            .prop(prop::CONTENT_TYPE, Prop::Str("text/plain".into()))
            .prop(
                prop::USER_PROPERTY,
                Prop::Pair("site".into(), "north".into()),
            )
    };
    p.publish(&message(b"m1", 2)).await?;
    p.publish(&message(b"m2", 3)).await?;

    for (i, payload) in [&b"m1"[..], b"m2"].into_iter().enumerate() {
        let i = u16::try_from(i)?;
        let m = v3_q0.recv_publish().await?;
        assert_eq!((m.qos, m.retain, m.dup, m.pid), (0, false, false, 0));
        assert_eq!(
            (m.topic.as_str(), m.payload.as_slice()),
            (t.as_str(), payload)
        );
        assert!(m.props.is_empty());

        let m = v3_q1.recv_publish().await?;
        assert_eq!((m.qos, m.retain, m.dup, m.pid), (1, false, false, 2 + i));
        assert_eq!(
            (m.topic.as_str(), m.payload.as_slice()),
            (t.as_str(), payload)
        );

        let m = v5_q1.recv_publish().await?;
        assert_eq!((m.qos, m.retain, m.dup, m.pid), (1, false, false, 1 + i));
        assert_eq!(m.payload, payload);
        check_v5_props(&m)?;
        assert!(find(&m.props, prop::SUBSCRIPTION_ID).is_none());
        v5_q1.send(&ack(0x40, m.pid)).await?;

        let m = v5_q2_rap.recv_publish().await?;
        assert_eq!((m.qos, m.retain, m.dup, m.pid), (2, true, false, 1 + i));
        assert_eq!(m.payload, payload);
        check_v5_props(&m)?;

        let m = v5_sid.recv_publish().await?;
        assert_eq!((m.qos, m.retain, m.pid), (1, false, 1 + i));
        assert_eq!(
            find(&m.props, prop::SUBSCRIPTION_ID),
            Some(&Prop::VarInt(9))
        );
        check_v5_props(&m)?;

        let m = v5_alias.recv_publish().await?;
        assert_eq!((m.qos, m.payload.as_slice()), (0, payload));
        check_v5_props(&m)?;
        // The first PUBLISH sets the alias with the topic; the second may
        // use the alias alone.
        let alias = find(&m.props, prop::TOPIC_ALIAS);
        if i == 0 || alias.is_none() {
            assert_eq!(m.topic, t);
        } else {
            assert!(m.topic.is_empty() || m.topic == t, "{m:?}");
        }
    }

    // The v3.1.1 subscriber reconnects without having acknowledged: every
    // unacknowledged PUBLISH comes again with DUP set and its identifier.
    drop(v3_q1);
    let mut v3_q1 = RawClient::connected(b.addr, &v3_q1_connect).await?;
    let mut resent = Vec::new();
    for _ in 0..3 {
        let m = v3_q1.recv_publish().await?;
        assert!(m.dup, "{m:?}");
        resent.push((m.pid, m.payload));
    }
    resent.sort();
    assert_eq!(
        resent,
        vec![
            (1, b"first".to_vec()),
            (2, b"m1".to_vec()),
            (3, b"m2".to_vec())
        ]
    );
    v3_q1.expect_silence(QUIET).await?;
    Ok(())
}

/// rumqttc clients, MQTT 3.1.1 and 5 at every QoS, all subscribed to one
/// topic: every one receives every message once, in order, intact.
#[tokio::test]
async fn rumqttc_subscribers_of_both_versions_receive_every_message_in_order() -> Result<()> {
    const MESSAGES: usize = 40;
    let b = Broker::start()?;
    let t = unique("t/fan-rumqttc");
    let mut v4 = Vec::new();
    let mut v5 = Vec::new();
    for qos in 0..3u8 {
        for _ in 0..2 {
            let opts = rumqttc::MqttOptions::new(unique("s4"), b.host(), b.port());
            let (mut c, _) = V4Client::connect(opts).await?;
            c.client.subscribe(&t, rumqttc::qos(qos)?).await?;
            c.next_suback().await?;
            v4.push((qos, c));
            let opts = rumqttc::v5::MqttOptions::new(unique("s5"), b.host(), b.port());
            let (mut c, _) = V5Client::connect(opts).await?;
            c.client
                .subscribe(&t, rumqttc::v5::mqttbytes::qos(qos).expect("qos"))
                .await?;
            c.next_suback().await?;
            v5.push((qos, c));
        }
    }
    let opts = rumqttc::MqttOptions::new(unique("p"), b.host(), b.port());
    let (p, _) = V4Client::connect(opts).await?;
    for i in 0..MESSAGES {
        p.client
            .publish(&t, rumqttc::QoS::ExactlyOnce, false, format!("m{i}"))
            .await?;
    }
    for (qos, c) in &mut v4 {
        for i in 0..MESSAGES {
            let m = c
                .next_publish()
                .await
                .with_context(|| format!("v4 QoS {qos} message {i}"))?;
            assert_eq!(m.payload, format!("m{i}").into_bytes(), "v4 QoS {qos}");
            assert_eq!(m.qos as u8, *qos);
            assert!(!m.dup);
        }
    }
    for (qos, c) in &mut v5 {
        for i in 0..MESSAGES {
            let m = c
                .next_publish()
                .await
                .with_context(|| format!("v5 QoS {qos} message {i}"))?;
            assert_eq!(m.payload, format!("m{i}").into_bytes(), "v5 QoS {qos}");
            assert_eq!(m.qos as u8, *qos);
            assert_eq!(m.topic, t.as_bytes());
        }
    }
    Ok(())
}
