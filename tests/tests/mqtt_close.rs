//! Connections the broker closes: the client reads the last packet it was
//! sent (DISCONNECT with a reason code, a refusing CONNACK) even when it
//! keeps writing after the broker decided to close, because the broker
//! shuts down its write half and drains the socket instead of resetting
//! it; and each such close is logged once, rate-limited, never as an
//! error.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use girder_tests::mqtt::{
    eventually, kind, unique, Broker, Connect, Publish, RawClient, Version, WAIT,
};

/// Writes `count` copies of `bytes`, a few milliseconds apart: every write
/// must succeed (a reset from the broker fails them).
async fn keep_writing(c: &mut RawClient, bytes: &[u8], count: usize) -> Result<()> {
    for i in 0..count {
        c.send(bytes)
            .await
            .with_context(|| format!("write {i} after the broker's close"))?;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    Ok(())
}

/// A v5 client that exceeds the Receive Maximum with QoS 2 PUBLISHes and
/// goes on publishing for a while still reads DISCONNECT 0x93, then a
/// clean end of stream.
#[tokio::test]
async fn v5_client_still_writing_reads_its_disconnect() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.max_inflight = 2\n")? else {
        return Ok(());
    };
    let mut c = RawClient::connected(b.addr, &Connect::v5(&unique("over"))).await?;
    let topic = unique("t/over");
    for pid in 1..=3 {
        c.send(&Publish::new(&topic, b"x").qos(2, pid).encode(Version::V5))
            .await?;
    }
    let more = Publish::new(&topic, b"still talking")
        .qos(2, 9)
        .encode(Version::V5);
    keep_writing(&mut c, &more, 100).await?;
    let closed = c.closed_cleanly_within(WAIT).await?;
    ensure!(
        closed.disconnect_reason() == Some(0x93),
        "no DISCONNECT 0x93: {closed:?}"
    );
    Ok(())
}

/// A v3.1.1 client whose CONNECT is refused (an empty client id without
/// clean session) and that writes on regardless still reads its CONNACK
/// with return code 2.
#[tokio::test]
async fn v311_refused_client_still_writing_reads_its_connack() -> Result<()> {
    let b = Broker::start()?;
    let mut c = RawClient::open(b.addr, Version::V311).await?;
    c.send(&Connect::v311("").clean(false).encode()).await?;
    keep_writing(&mut c, &[0xC0, 0x00], 100).await?;
    let closed = c.closed_cleanly_within(WAIT).await?;
    let Some(first) = closed.frames.first() else {
        bail!("nothing read before the close");
    };
    let ack = first.connack(Version::V311)?;
    ensure!(ack.code == 2, "CONNACK {ack:?}");
    Ok(())
}

/// A connection the broker closed no longer counts while its socket
/// lingers: with room for one connection, another client gets in while the
/// closed one has not closed its side yet.
#[tokio::test]
async fn a_lingering_socket_is_not_a_connection() -> Result<()> {
    let config = "mqtt.max_inflight = 1\nlisteners.tcp.default.max_connections = 1\n";
    let Some(b) = Broker::with_config(config)? else {
        return Ok(());
    };
    let id = unique("closed");
    // The node's readiness probe was a connection too: until the node has
    // seen it close, this one (over max_connections) is refused.
    let mut c = RawClient::connected_when_room(b.addr, &Connect::v5(&id)).await?;
    let topic = unique("t/linger");
    for pid in 1..=2 {
        c.send(&Publish::new(&topic, b"x").qos(2, pid).encode(Version::V5))
            .await?;
    }
    // Read up to the DISCONNECT, and keep the socket open.
    loop {
        let f = c.recv().await?;
        if f.kind() == kind::DISCONNECT {
            ensure!(f.disconnect()?.0 == 0x93, "{f:?}");
            break;
        }
    }
    // The same client id, while the first socket lingers (up to 2 s). The
    // node counts a connection down just after writing its DISCONNECT, so
    // a refusal is tried again, within a second.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        match RawClient::connected(b.addr, &Connect::v5(&id)).await {
            Ok(_) => break,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("refused, trying again: {e:#}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => bail!("second connection refused while the first lingers: {e:#}"),
        }
    }
    drop(c);
    Ok(())
}

/// Connects, and ends at once in one of a few ways, as a flaky device or
/// a load balancer's probe does.
async fn short_lived(b: &Broker, i: usize) -> Result<()> {
    let mut c = RawClient::open(b.addr, Version::V311).await?;
    let mut bytes = Connect::v311(&unique("brief")).encode();
    match i % 3 {
        // CONNECT and DISCONNECT in one write, then gone.
        0 => bytes.extend_from_slice(&[0xE0, 0x00]),
        // CONNECT, then gone without a word.
        1 => {}
        // Nothing at all.
        _ => bytes.clear(),
    }
    if !bytes.is_empty() {
        c.send(&bytes).await?;
    }
    Ok(())
}

/// Sends a first packet that is not MQTT and returns the client's address.
async fn malformed(b: &Broker) -> Result<String> {
    let mut c = RawClient::open(b.addr, Version::V311).await?;
    let addr = c.local_addr()?.to_string();
    c.send(b"GET / HTTP/1.1\r\nHost: girder\r\n\r\n").await?;
    // The broker closes; a reset here is fine (the client sent garbage).
    let _ = c.closed_within(WAIT).await;
    Ok(addr)
}

/// Short connections are no errors; a malformed first packet is a warning
/// that names the client's address.
#[tokio::test]
async fn short_connections_log_no_error_and_bad_ones_warn_with_the_peer() -> Result<()> {
    let Some(b) = Broker::with_config("")? else {
        return Ok(());
    };
    for i in 0..200 {
        short_lived(&b, i).await?;
    }
    let mut peers = Vec::new();
    for _ in 0..3 {
        peers.push(malformed(&b).await?);
    }
    let node = b.node.as_ref().context("a girder node")?;
    for peer in &peers {
        let needle = format!("peer={peer}");
        eventually(WAIT, || {
            let log = node.log();
            let found = log
                .lines()
                .any(|l| l.contains(" WARN ") && l.contains(&needle));
            async move { found }
        })
        .await
        .with_context(|| format!("no warning naming {peer}: {}", node.log()))?;
    }
    // A connection that is still being recorded when it ends shows up a
    // moment later, if at all: let the last ones settle.
    let probe = RawClient::connected(b.addr, &Connect::v311(&unique("probe"))).await?;
    probe.disconnect().await?;
    let log = node.log();
    ensure!(!log.contains("child_start_failed"), "{log}");
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    ensure!(errors.is_empty(), "error lines: {errors:#?}");
    Ok(())
}

/// A burst of malformed connections does not write a line each: the lines
/// are rate-limited and the rest summed up.
#[tokio::test]
async fn a_burst_of_bad_connections_is_summarised() -> Result<()> {
    let Some(b) = Broker::with_config("")? else {
        return Ok(());
    };
    let addr = b.addr;
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            tokio::spawn(async move {
                let mut c = RawClient::open(addr, Version::V311).await?;
                c.send(b"\xff\xff\xff\xff\xff").await?;
                let _ = c.closed_within(WAIT).await;
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let node = b.node.as_ref().context("a girder node")?;
    eventually(WAIT, || {
        let found = node.log().contains("suppressed");
        async move { found }
    })
    .await
    .with_context(|| format!("no summary line: {}", node.log()))?;
    let log = node.log();
    let lines = log
        .lines()
        .filter(|l| l.contains("malformed packet"))
        .count();
    ensure!(
        (1..=100).contains(&lines),
        "{lines} lines for 500 malformed connections"
    );
    Ok(())
}
