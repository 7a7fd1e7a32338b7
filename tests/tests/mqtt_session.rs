//! Sessions: resume with session present, session expiry, takeover, queued
//! messages while away (bounded), the inflight window, and QoS 1 / QoS 2
//! state carried across a reconnect (MQTT 3.1.1 §4.1, §4.4; MQTT 5.0 §4.1,
//! §4.4, §3.1.4).

use std::time::Duration;

use anyhow::Result;
use girder_tests::mqtt::{
    ack, kind, prop, unique, Broker, Connect, Prop, Publish, RawClient, V5Client, Version, QUIET,
};
use rumqttc::v5::mqttbytes::QoS;

/// A subscriber with a persistent session gets, on resume, `session
/// present` and the QoS 1 messages published while it was away, in order.
#[tokio::test]
async fn v311_persistent_session_resumes_with_queued_messages() -> Result<()> {
    let b = Broker::start()?;
    let (id, topic) = (unique("sess"), unique("t/sess"));
    let connect = Connect::v311(&id).clean(false);
    let mut s = RawClient::connected(b.addr, &connect).await?;
    assert_eq!(s.subscribe(1, &[(&topic, 1)]).await?, vec![1]);
    s.disconnect().await?;
    let mut p = RawClient::connected(b.addr, &Connect::v311(&unique("pub"))).await?;
    for i in 0..3u16 {
        p.publish(&Publish::new(&topic, format!("m{i}").as_bytes()).qos(1, i + 1))
            .await?;
    }
    let (mut s, ack_) = RawClient::connect(b.addr, &connect).await?;
    assert_eq!(ack_.code, 0);
    assert!(ack_.session_present, "session present expected");
    for i in 0..3 {
        let m = s.recv_publish().await?;
        assert_eq!(m.payload, format!("m{i}").as_bytes());
        assert_eq!(m.qos, 1);
        s.send(&ack(0x40, m.pid)).await?;
    }
    s.expect_silence(QUIET).await?;
    // A clean connect discards the session.
    s.disconnect().await?;
    let (_s, ack_) = RawClient::connect(b.addr, &Connect::v311(&id)).await?;
    assert!(!ack_.session_present);
    Ok(())
}

/// rumqttc v5: a session with an expiry interval keeps QoS 1 and QoS 2
/// messages while the client is away.
#[tokio::test]
async fn v5_rumqttc_session_keeps_qos1_and_qos2_messages() -> Result<()> {
    let b = Broker::start()?;
    let (id, topic) = (unique("sess5"), unique("t/sess5"));
    let mut opts = rumqttc::v5::MqttOptions::new(&id, b.host(), b.port());
    opts.set_clean_start(false)
        .set_session_expiry_interval(Some(60));
    let (mut s, _) = V5Client::connect(opts.clone()).await?;
    s.client.subscribe(&topic, QoS::ExactlyOnce).await?;
    s.next_suback().await?;
    s.client.disconnect().await?;
    drop(s);
    let mut p = RawClient::connected(b.addr, &Connect::v5(&unique("pub"))).await?;
    p.publish(&Publish::new(&topic, b"one").qos(1, 1)).await?;
    p.publish(&Publish::new(&topic, b"two").qos(2, 2)).await?;
    let (mut s, ack_) = V5Client::connect(opts).await?;
    assert!(ack_.session_present);
    let m1 = s.next_publish().await?;
    let m2 = s.next_publish().await?;
    assert_eq!((&m1.payload[..], m1.qos), (&b"one"[..], QoS::AtLeastOnce));
    assert_eq!((&m2.payload[..], m2.qos), (&b"two"[..], QoS::ExactlyOnce));
    Ok(())
}

/// A v5 session with expiry 0 (the default) ends with the connection.
#[tokio::test]
async fn v5_session_without_expiry_ends_with_the_connection() -> Result<()> {
    let b = Broker::start()?;
    let id = unique("sx0");
    let c = RawClient::connected(b.addr, &Connect::v5(&id).clean(false)).await?;
    c.disconnect().await?;
    let (_c, a) = RawClient::connect(b.addr, &Connect::v5(&id).clean(false)).await?;
    assert!(!a.session_present);
    Ok(())
}

/// A v5 session is gone once its expiry interval has passed, and kept
/// before that.
#[tokio::test]
async fn v5_session_expires_after_its_interval() -> Result<()> {
    let b = Broker::start()?;
    let id = unique("sx1");
    let connect = Connect::v5(&id)
        .clean(false)
        .prop(prop::SESSION_EXPIRY, Prop::U32(1));
    let c = RawClient::connected(b.addr, &connect).await?;
    c.disconnect().await?;
    let (c, a) = RawClient::connect(b.addr, &connect).await?;
    assert!(a.session_present, "resumed within the interval");
    c.disconnect().await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_c, a) = RawClient::connect(b.addr, &connect).await?;
    assert!(!a.session_present, "session should have expired");
    Ok(())
}

/// The session expiry in a v5 DISCONNECT replaces the CONNECT's.
#[tokio::test]
async fn v5_disconnect_can_extend_session_expiry() -> Result<()> {
    let b = Broker::start()?;
    let id = unique("sxd");
    let connect = Connect::v5(&id)
        .clean(false)
        .prop(prop::SESSION_EXPIRY, Prop::U32(1));
    let mut c = RawClient::connected(b.addr, &connect).await?;
    c.send(&girder_tests::mqtt::disconnect(
        Version::V5,
        0,
        &vec![(prop::SESSION_EXPIRY, Prop::U32(60))],
    ))
    .await?;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (_c, a) = RawClient::connect(b.addr, &connect).await?;
    assert!(a.session_present);
    Ok(())
}

/// [MQTT-3.1.4-3]: a second connection with the same id takes over; a v5
/// old connection gets DISCONNECT 0x8E (session taken over), a v3.1.1 one
/// is closed.
#[tokio::test]
async fn takeover_disconnects_the_old_connection() -> Result<()> {
    let b = Broker::start()?;
    for version in [Version::V5, Version::V311] {
        let id = unique("take");
        let connect = Connect {
            version,
            ..Connect::v311(&id)
        };
        let mut old = RawClient::connected(b.addr, &connect).await?;
        let (_new, a) = RawClient::connect(b.addr, &connect).await?;
        assert_eq!(a.code, 0);
        let closed = old.closed_within(Duration::from_secs(3)).await?;
        if version == Version::V5 && b.is_external() {
            // Mosquitto 2.0.11 closes the old connection without a DISCONNECT.
            assert!(closed.disconnect_reason().is_none_or(|r| r == 0x8E));
        } else if version == Version::V5 {
            assert_eq!(closed.disconnect_reason(), Some(0x8E), "{closed:?}");
        } else {
            assert!(closed.frames.is_empty(), "{closed:?}");
        }
    }
    Ok(())
}

/// Takeover with a persistent session keeps the subscriptions: the new
/// connection sees `session present` and receives on the old filter.
#[tokio::test]
async fn takeover_keeps_a_persistent_session() -> Result<()> {
    let b = Broker::start()?;
    let (id, topic) = (unique("takep"), unique("t/takep"));
    let connect = Connect::v5(&id)
        .clean(false)
        .prop(prop::SESSION_EXPIRY, Prop::U32(60));
    let mut old = RawClient::connected(b.addr, &connect).await?;
    old.subscribe(1, &[(&topic, 1)]).await?;
    let (mut new, a) = RawClient::connect(b.addr, &connect).await?;
    assert!(a.session_present);
    let mut p = RawClient::connected(b.addr, &Connect::v5(&unique("pub"))).await?;
    p.publish(&Publish::new(&topic, b"after").qos(1, 1)).await?;
    let m = new.recv_publish().await?;
    assert_eq!(m.payload, b"after");
    Ok(())
}

/// [MQTT-4.4.0-1]: an unacknowledged QoS 1 message is sent again, with DUP,
/// when the session resumes.
#[tokio::test]
async fn unacked_qos1_is_resent_with_dup_on_reconnect() -> Result<()> {
    let b = Broker::start()?;
    let (id, topic) = (unique("dup1"), unique("t/dup1"));
    let connect = Connect::v311(&id).clean(false);
    let mut s = RawClient::connected(b.addr, &connect).await?;
    s.subscribe(1, &[(&topic, 1)]).await?;
    let mut p = RawClient::connected(b.addr, &Connect::v311(&unique("pub"))).await?;
    p.publish(&Publish::new(&topic, b"q1").qos(1, 1)).await?;
    let first = s.recv_publish().await?;
    assert!(!first.dup);
    drop(s); // no PUBACK, no DISCONNECT
    let (mut s, a) = RawClient::connect(b.addr, &connect).await?;
    assert!(a.session_present);
    let again = s.recv_publish().await?;
    assert!(again.dup, "resent without DUP");
    assert_eq!((again.pid, &again.payload[..]), (first.pid, &b"q1"[..]));
    s.send(&ack(0x40, again.pid)).await?;
    s.expect_silence(QUIET).await
}

/// QoS 2 to a subscriber, exactly once across a reconnect: PUBLISH not
/// acknowledged is resent with DUP; after PUBREC the broker resends PUBREL,
/// never the PUBLISH.
#[tokio::test]
async fn qos2_delivery_is_exactly_once_across_reconnects() -> Result<()> {
    let b = Broker::start()?;
    let (id, topic) = (unique("dup2"), unique("t/dup2"));
    let connect = Connect::v5(&id)
        .clean(false)
        .prop(prop::SESSION_EXPIRY, Prop::U32(60));
    let mut s = RawClient::connected(b.addr, &connect).await?;
    s.subscribe(1, &[(&topic, 2)]).await?;
    let mut p = RawClient::connected(b.addr, &Connect::v5(&unique("pub"))).await?;
    p.publish(&Publish::new(&topic, b"q2").qos(2, 1)).await?;
    let first = s.recv_publish().await?;
    assert_eq!(first.qos, 2);
    drop(s); // lost before PUBREC
    let (mut s, _) = RawClient::connect(b.addr, &connect).await?;
    let again = s.recv_publish().await?;
    assert!(again.dup);
    assert_eq!(again.pid, first.pid);
    s.send(&ack(0x50, again.pid)).await?; // PUBREC
    let rel = s.recv().await?;
    assert_eq!(rel.kind(), kind::PUBREL);
    drop(s); // lost before PUBCOMP
    let (mut s, _) = RawClient::connect(b.addr, &connect).await?;
    let rel = s.recv().await?;
    assert_eq!(rel.kind(), kind::PUBREL, "PUBREL resent, not the PUBLISH");
    assert_eq!(rel.ack()?.0, first.pid);
    s.send(&ack(0x70, first.pid)).await?; // PUBCOMP
    s.expect_silence(QUIET).await
}

/// QoS 2 from a publisher, exactly once across a reconnect: the PUBLISH
/// resent with DUP after PUBREC is not delivered again, and PUBREL after
/// the reconnect completes the flow.
#[tokio::test]
async fn qos2_publish_is_exactly_once_across_reconnects() -> Result<()> {
    let b = Broker::start()?;
    let (id, topic) = (unique("pq2"), unique("t/pq2"));
    let mut sub = RawClient::connected(b.addr, &Connect::v311(&unique("sub"))).await?;
    sub.subscribe(1, &[(&topic, 0)]).await?;
    let connect = Connect::v5(&id)
        .clean(false)
        .prop(prop::SESSION_EXPIRY, Prop::U32(60));
    let mut p = RawClient::connected(b.addr, &connect).await?;
    let msg = Publish::new(&topic, b"once").qos(2, 9);
    p.send(&msg.encode(Version::V5)).await?;
    assert_eq!(p.recv().await?.ack()?, (9, 0));
    drop(p);
    let (mut p, a) = RawClient::connect(b.addr, &connect).await?;
    assert!(a.session_present);
    let mut dup = msg.clone();
    dup.dup = true;
    p.send(&dup.encode(Version::V5)).await?;
    let rec = p.recv().await?;
    assert_eq!((rec.kind(), rec.ack()?.0), (kind::PUBREC, 9));
    p.send(&ack(0x62, 9)).await?;
    let comp = p.recv().await?;
    assert_eq!((comp.kind(), comp.ack()?.0), (kind::PUBCOMP, 9));
    assert_eq!(sub.recv_publish().await?.payload, b"once");
    sub.expect_silence(QUIET).await
}

/// While the client is away its queue holds at most mqtt.max_mqueue_len
/// messages.
#[tokio::test]
async fn offline_queue_is_bounded() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.max_mqueue_len = 5\n")? else {
        return Ok(());
    };
    let (id, topic) = (unique("mq"), unique("t/mq"));
    let connect = Connect::v311(&id).clean(false);
    let mut s = RawClient::connected(b.addr, &connect).await?;
    s.subscribe(1, &[(&topic, 1)]).await?;
    s.disconnect().await?;
    let mut p = RawClient::connected(b.addr, &Connect::v311(&unique("pub"))).await?;
    for i in 0..10u16 {
        p.publish(&Publish::new(&topic, &[i as u8]).qos(1, i + 1))
            .await?;
    }
    let (mut s, _) = RawClient::connect(b.addr, &connect).await?;
    let mut got = Vec::new();
    while let Some(f) = s.recv_within(QUIET).await? {
        let m = f.publish(Version::V311)?;
        s.send(&ack(0x40, m.pid)).await?;
        got.push(m.payload[0]);
    }
    assert_eq!(got.len(), 5, "queued {got:?}");
    Ok(())
}

/// No more than mqtt.max_inflight QoS 1 messages are unacknowledged at
/// once; an ack lets the next one through.
#[tokio::test]
async fn inflight_window_is_honoured() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.max_inflight = 2\n")? else {
        return Ok(());
    };
    let topic = unique("t/inflight");
    let mut s = RawClient::connected(b.addr, &Connect::v311(&unique("s"))).await?;
    s.subscribe(1, &[(&topic, 1)]).await?;
    let mut p = RawClient::connected(b.addr, &Connect::v311(&unique("pub"))).await?;
    for i in 0..5u16 {
        p.publish(&Publish::new(&topic, &[i as u8]).qos(1, i + 1))
            .await?;
    }
    let a = s.recv_publish().await?;
    let b2 = s.recv_publish().await?;
    assert_eq!((a.payload[0], b2.payload[0]), (0, 1));
    s.expect_silence(QUIET).await?;
    s.send(&ack(0x40, a.pid)).await?;
    assert_eq!(s.recv_publish().await?.payload[0], 2);
    s.expect_silence(QUIET).await
}

/// An MQTT 3 session kept with clean session 0 lives for
/// mqtt.session_expiry_interval after its client goes.
#[tokio::test]
async fn v3_persistent_sessions_expire_after_the_configured_interval() -> Result<()> {
    // EMQX's mqtt.session_expiry_interval applies to MQTT 3 clients that
    // connect with clean session 0 (v5 clients state their own).
    let Some(b) = Broker::with_config("mqtt.session_expiry_interval = 1s\n")? else {
        return Ok(());
    };
    let id = unique("v3exp");
    let connect = Connect::v311(&id).clean(false);
    let (c, a) = RawClient::connect(b.addr, &connect).await?;
    assert!(!a.session_present);
    c.disconnect().await?;
    let (c, a) = RawClient::connect(b.addr, &connect).await?;
    assert!(a.session_present, "reconnected within the interval");
    c.disconnect().await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_c, a) = RawClient::connect(b.addr, &connect).await?;
    assert!(
        !a.session_present,
        "the session outlived mqtt.session_expiry_interval"
    );
    Ok(())
}
