//! The timed work of a connection, driven by its thread's wheel:
//! `mqtt.retry_interval` resends what an MQTT 3.1.1 client leaves
//! unacknowledged (a v5 client gets it again only when it resumes its
//! session, MQTT-4.4.0-1), and `mqtt.await_rel_timeout` forgets an
//! incoming QoS 2 packet id whose PUBREL never comes.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use girder_tests::mqtt::{
    ack, kind, prop, unique, Broker, Connect, Prop, Publish, RawClient, Version, WAIT,
};
use tokio::time::Instant;

/// A v3.1.1 subscriber that does not acknowledge a QoS 1 message gets it
/// again, with DUP and the same packet id, once the retry interval has
/// passed; once it acknowledges, the resends stop. Its keep alive is 0, so
/// nothing but the retry puts it on the wheel.
#[tokio::test]
async fn v311_unacknowledged_qos1_is_resent_with_dup_after_the_retry_interval() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.retry_interval = 1s\n")? else {
        return Ok(());
    };
    let topic = unique("t/retry1");
    let connect = Connect::v311(&unique("sub")).keep_alive(0);
    let mut sub = RawClient::connected(b.addr, &connect).await?;
    sub.subscribe(1, &[(&topic, 1)]).await?;
    let mut publisher = RawClient::connected(b.addr, &Connect::v311(&unique("pub"))).await?;
    publisher
        .publish(&Publish::new(&topic, b"once").qos(1, 7))
        .await?;

    let first = sub.recv_publish().await?;
    ensure!(
        first.qos == 1 && !first.dup && first.payload == b"once",
        "{first:?}"
    );
    let again = sub.recv_publish().await.context("no resend")?;
    ensure!(again.dup, "resent without DUP: {again:?}");
    ensure!(
        (again.pid, again.topic.as_str(), again.payload.as_slice())
            == (first.pid, topic.as_str(), b"once".as_slice()),
        "resent {again:?}, first sent {first:?}"
    );

    sub.send(&ack(0x40, first.pid)).await?;
    sub.expect_silence(Duration::from_millis(2500)).await?;
    Ok(())
}

/// The second half of a QoS 2 delivery: a v3.1.1 subscriber that sent
/// PUBREC but never PUBCOMP gets the PUBREL again after the interval.
#[tokio::test]
async fn v311_unanswered_pubrel_is_resent_after_the_retry_interval() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.retry_interval = 1s\n")? else {
        return Ok(());
    };
    let topic = unique("t/retry2");
    let mut sub = RawClient::connected(b.addr, &Connect::v311(&unique("sub"))).await?;
    sub.subscribe(1, &[(&topic, 2)]).await?;
    let mut publisher = RawClient::connected(b.addr, &Connect::v311(&unique("pub"))).await?;
    publisher
        .publish(&Publish::new(&topic, b"twice?").qos(2, 3))
        .await?;

    let p = sub.recv_publish().await?;
    ensure!(p.qos == 2, "{p:?}");
    sub.send(&ack(0x50, p.pid)).await?;
    for round in 0..2 {
        let f = sub.recv().await.with_context(|| format!("round {round}"))?;
        ensure!(f.kind() == kind::PUBREL, "expected PUBREL, got {f:?}");
        ensure!(
            f.ack()?.0 == p.pid,
            "PUBREL for {:?}, sent {}",
            f.ack()?,
            p.pid
        );
    }
    sub.send(&ack(0x70, p.pid)).await?;
    sub.expect_silence(Duration::from_millis(2500)).await?;
    Ok(())
}

/// A v5 subscriber is not sent anything again while it stays connected,
/// whatever the retry interval (MQTT-4.4.0-1); when it resumes its session
/// the message comes again with DUP and its packet id.
#[tokio::test]
async fn v5_unacknowledged_messages_are_resent_only_on_reconnect() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.retry_interval = 1s\n")? else {
        return Ok(());
    };
    let topic = unique("t/retry5");
    let id = unique("sub5");
    let connect = Connect::v5(&id)
        .clean(false)
        .prop(prop::SESSION_EXPIRY, Prop::U32(300));
    let mut sub = RawClient::connected(b.addr, &connect).await?;
    sub.subscribe(1, &[(&topic, 1)]).await?;
    let mut publisher = RawClient::connected(b.addr, &Connect::v5(&unique("pub"))).await?;
    publisher
        .publish(&Publish::new(&topic, b"later").qos(1, 1))
        .await?;

    let first = sub.recv_publish().await?;
    ensure!(first.qos == 1 && !first.dup, "{first:?}");
    // Three retry intervals without an acknowledgement: no resend.
    sub.expect_silence(Duration::from_secs(3)).await?;
    sub.disconnect().await?;

    let (mut sub, ack) = RawClient::connect(b.addr, &connect).await?;
    ensure!(ack.code == 0 && ack.session_present, "{ack:?}");
    let again = sub.recv_publish().await.context("no resend on resume")?;
    ensure!(
        again.dup && again.pid == first.pid && again.payload == b"later",
        "resent {again:?}, first sent {first:?}"
    );
    Ok(())
}

/// An incoming QoS 2 packet id whose PUBREL does not come within
/// `mqtt.await_rel_timeout` is forgotten: before that, the same id is a
/// duplicate (not routed again); after it, a PUBLISH with that id is a new
/// message, and a late PUBREL for a forgotten id gets PUBCOMP 0x92.
#[tokio::test]
async fn unreleased_qos2_packet_ids_are_forgotten_after_await_rel_timeout() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.await_rel_timeout = 1s\n")? else {
        return Ok(());
    };
    let topic = unique("t/awaitrel");
    let mut sub = RawClient::connected(b.addr, &Connect::v5(&unique("sub"))).await?;
    sub.subscribe(1, &[(&topic, 0)]).await?;
    let mut p = RawClient::connected(b.addr, &Connect::v5(&unique("pub"))).await?;

    // Id 2 first, then id 1: once 1 is forgotten, so is 2.
    for (pid, payload) in [(2, b"two".as_slice()), (1, b"first".as_slice())] {
        p.send(
            &Publish::new(&topic, payload)
                .qos(2, pid)
                .encode(Version::V5),
        )
        .await?;
        let f = p.recv().await?;
        ensure!(f.kind() == kind::PUBREC && f.ack()?.0 == pid, "{f:?}");
    }
    for expected in [b"two".as_slice(), b"first".as_slice()] {
        let got = sub.recv_publish().await?;
        ensure!(got.payload == expected, "{got:?}");
    }

    // A resend of id 1 (DUP) is acknowledged and not delivered again.
    let mut dup = Publish::new(&topic, b"first");
    dup.qos = 2;
    dup.pid = 1;
    dup.dup = true;
    p.send(&dup.encode(Version::V5)).await?;
    let f = p.recv().await?;
    ensure!(f.ack()? == (1, 0), "PUBREC for the DUP resend: {f:?}");
    sub.expect_silence(Duration::from_millis(300)).await?;

    // The same id with a new payload is refused as in use (0x91) until the
    // timeout forgets it; then it is a new message.
    let deadline = Instant::now() + WAIT;
    let mut attempt = 0u32;
    let accepted = loop {
        ensure!(Instant::now() < deadline, "packet id 1 never forgotten");
        attempt += 1;
        let payload = format!("new-{attempt}");
        p.send(
            &Publish::new(&topic, payload.as_bytes())
                .qos(2, 1)
                .encode(Version::V5),
        )
        .await?;
        let f = p.recv().await?;
        ensure!(f.kind() == kind::PUBREC, "{f:?}");
        match f.ack()? {
            (1, 0x91) => tokio::time::sleep(Duration::from_millis(100)).await,
            (1, 0x00 | 0x10) => break payload,
            other => anyhow::bail!("unexpected PUBREC {other:?}"),
        }
    };
    let got = sub.recv_publish().await?;
    ensure!(
        got.payload == accepted.as_bytes(),
        "delivered {got:?}, expected {accepted}"
    );

    // Id 2 was forgotten too: its late PUBREL is answered 0x92.
    p.send(&ack(0x62, 2)).await?;
    let f = p.recv().await?;
    ensure!(f.kind() == kind::PUBCOMP, "{f:?}");
    ensure!(f.ack()? == (2, 0x92), "late PUBREL answered {:?}", f.ack()?);
    sub.expect_silence(Duration::from_millis(300)).await?;
    Ok(())
}
