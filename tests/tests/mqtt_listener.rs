//! The listener edge, against the running binary: `tcp_options.backlog`,
//! `acceptors`, `access_rules`, `proxy_protocol` (v1 and v2) with
//! `proxy_protocol_timeout`, and `tcp_options.send_timeout`
//! (EMQX's `listeners.tcp.<name>.*`). Options only a socket can show
//! (nodelay, keepalive, buffer sizes) are checked by the unit tests of
//! `girder_actors::listener::socket` on a real accepted socket.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use girder_tests::mqtt::{
    eventually, unique, Broker, Connect, Publish, RawClient, Version, Will, WAIT,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `addr` from the local address `source`.
async fn connect_from(source: IpAddr, addr: SocketAddr) -> Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = tokio::time::timeout(WAIT, socket.connect(addr))
        .await
        .context("TCP connect timed out")??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Sends `first` (a CONNECT, maybe behind a PROXY header) and expects
/// CONNACK 0.
async fn accepted(stream: TcpStream, first: &[u8]) -> Result<RawClient> {
    let mut c = RawClient::from_stream(stream, Version::V311);
    c.send(first).await?;
    let ack = c.recv().await?.connack(Version::V311)?;
    ensure!(ack.code == 0, "CONNECT refused with 0x{:02x}", ack.code);
    Ok(c)
}

/// Sends `first` and expects the broker to close the connection without
/// a reply.
async fn refused(stream: TcpStream, first: &[u8]) -> Result<()> {
    let mut c = RawClient::from_stream(stream, Version::V311);
    // The broker may have closed (even reset) the connection already.
    let _ = c.send(first).await;
    let closed = c.closed_within(WAIT).await?;
    ensure!(
        closed.frames.is_empty(),
        "the broker answered: {:?}",
        closed.frames
    );
    Ok(())
}

fn connect(prefix: &str) -> Vec<u8> {
    Connect::v311(&unique(prefix)).encode()
}

/// `header` followed by a CONNECT, as one write.
fn with_connect(header: &[u8], prefix: &str) -> Vec<u8> {
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(&connect(prefix));
    bytes
}

fn proxy_v1(src: &str, sport: u16) -> Vec<u8> {
    let proto = if src.contains(':') { "TCP6" } else { "TCP4" };
    let dst = if src.contains(':') {
        "::1"
    } else {
        "127.0.0.1"
    };
    format!("PROXY {proto} {src} {dst} {sport} 1883\r\n").into_bytes()
}

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// A v2 header: PROXY over TCP/IPv4 from `src`, or LOCAL when `None`.
fn proxy_v2(src: Option<[u8; 4]>, sport: u16) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    match src {
        Some(src) => {
            h.extend_from_slice(&[0x21, 0x11, 0, 12]);
            h.extend_from_slice(&src);
            h.extend_from_slice(&[127, 0, 0, 1]);
            h.extend_from_slice(&sport.to_be_bytes());
            h.extend_from_slice(&1883u16.to_be_bytes());
        }
        None => h.extend_from_slice(&[0x20, 0x00, 0, 0]),
    }
    h
}

fn localhost() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// The listen queue is as long as `tcp_options.backlog` says: `ss` shows a
/// listening socket's backlog as its Send-Q.
#[tokio::test]
async fn backlog_sets_the_listen_queue_length() -> Result<()> {
    let Some(b) = Broker::with_config("listeners.tcp.default.tcp_options.backlog = 77\n")? else {
        return Ok(());
    };
    let out = std::process::Command::new("ss")
        .args(["-Hltn", &format!("sport = :{}", b.port())])
        .output()
        .context("running ss (iproute2; scripts/install-test-deps.sh installs it)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .next()
        .context("no LISTEN socket in ss output")?;
    // State Recv-Q Send-Q Local Peer
    let send_q = line.split_whitespace().nth(2).context("short ss line")?;
    assert_eq!(send_q, "77", "{line}");
    Ok(())
}

/// `acceptors` accept loops run on the listening socket, and together
/// they serve a burst of concurrent connections.
#[tokio::test]
async fn acceptors_serve_concurrent_connects() -> Result<()> {
    let Some(b) = Broker::with_config("listeners.tcp.default.acceptors = 4\n")? else {
        return Ok(());
    };
    let node = b.node.as_ref().context("a girder node")?;
    eventually(WAIT, || async {
        node.log().matches("listener_started").count() == 4
    })
    .await
    .with_context(|| format!("not 4 acceptors: {}", node.log()))?;
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let addr = b.addr;
        tasks.push(tokio::spawn(async move {
            RawClient::connected(addr, &Connect::v311(&unique("acc"))).await
        }));
    }
    let mut clients = Vec::new();
    for task in tasks {
        clients.push(task.await??);
    }
    assert_eq!(clients.len(), 64);
    Ok(())
}

/// The first matching rule decides: 127.0.0.2 is allowed, every other
/// address denied, before any MQTT byte is read.
#[tokio::test]
async fn access_rules_decide_by_client_address() -> Result<()> {
    let config = "listeners.tcp.default.access_rules = [\"allow 127.0.0.2\", \"deny all\"]\n";
    let Some(b) = Broker::with_config(config)? else {
        return Ok(());
    };
    refused(connect_from(localhost(), b.addr).await?, &connect("denied")).await?;
    let allowed = IpAddr::from([127, 0, 0, 2]);
    let mut c = accepted(connect_from(allowed, b.addr).await?, &connect("allowed")).await?;
    let t = unique("t/acl");
    c.subscribe(1, &[(&t, 0)]).await?;
    c.publish(&Publish::new(&t, b"in")).await?;
    assert_eq!(c.recv_publish().await?.payload, b"in");
    // Denied again, after an allowed one.
    refused(connect_from(localhost(), b.addr).await?, &connect("denied")).await
}

/// Rules for the proxy tests: the socket's own address (127.0.0.1) is
/// denied, so a connection gets in only as the client its header names.
const PROXY_CONFIG: &str = "listeners.tcp.default {\n  proxy_protocol = true\n  \
    proxy_protocol_timeout = 1s\n  \
    access_rules = [\"deny 192.0.2.0/24\", \"deny 127.0.0.1\", \"allow all\"]\n}\n";

#[tokio::test]
async fn proxy_protocol_v1_names_the_client() -> Result<()> {
    let Some(b) = Broker::with_config(PROXY_CONFIG)? else {
        return Ok(());
    };
    let open = || TcpStream::connect(b.addr);
    // Header and CONNECT in one write.
    accepted(
        open().await?,
        &with_connect(&proxy_v1("198.51.100.7", 4000), "v1"),
    )
    .await?;
    accepted(
        open().await?,
        &with_connect(&proxy_v1("2001:db8::7", 4001), "v1-6"),
    )
    .await?;
    refused(
        open().await?,
        &with_connect(&proxy_v1("192.0.2.7", 4002), "v1-denied"),
    )
    .await?;
    // The header in two writes, the CONNECT in a third.
    let header = proxy_v1("198.51.100.8", 4003);
    let mut s = open().await?;
    s.write_all(&header[..10]).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write_all(&header[10..]).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    accepted(s, &connect("v1-split")).await?;
    // UNKNOWN keeps the socket's address, which the rules deny.
    refused(
        open().await?,
        &with_connect(b"PROXY UNKNOWN\r\n", "v1-unknown"),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn proxy_protocol_v2_names_the_client() -> Result<()> {
    let Some(b) = Broker::with_config(PROXY_CONFIG)? else {
        return Ok(());
    };
    let open = || TcpStream::connect(b.addr);
    let mut c = accepted(
        open().await?,
        &with_connect(&proxy_v2(Some([198, 51, 100, 9]), 5000), "v2"),
    )
    .await?;
    refused(
        open().await?,
        &with_connect(&proxy_v2(Some([192, 0, 2, 9]), 5001), "v2-denied"),
    )
    .await?;
    // LOCAL keeps the socket's address, which the rules deny.
    refused(open().await?, &with_connect(&proxy_v2(None, 0), "v2-local")).await?;
    // The allowed client works as any other.
    let t = unique("t/v2");
    c.subscribe(1, &[(&t, 0)]).await?;
    c.publish(&Publish::new(&t, b"via proxy")).await?;
    assert_eq!(c.recv_publish().await?.payload, b"via proxy");
    Ok(())
}

/// Without a valid header in time the connection is closed: a silent
/// client, and a client that starts with MQTT.
#[tokio::test]
async fn proxy_protocol_requires_a_header_in_time() -> Result<()> {
    let Some(b) = Broker::with_config(PROXY_CONFIG)? else {
        return Ok(());
    };
    let mut silent = RawClient::from_stream(TcpStream::connect(b.addr).await?, Version::V311);
    let closed = silent.closed_within(WAIT).await?;
    assert!(closed.frames.is_empty());
    // Half a header, then nothing.
    let mut s = TcpStream::connect(b.addr).await?;
    s.write_all(b"PROXY TCP4 198.51").await?;
    refused(s, b"").await?;
    refused(TcpStream::connect(b.addr).await?, &connect("no-header")).await
}

/// The address a PROXY header names is the client's in the node's log.
#[tokio::test]
async fn the_proxied_address_is_the_peer_in_logs() -> Result<()> {
    let config = "listeners.tcp.default.proxy_protocol = true\nlog.console.level = debug\n";
    let Some(b) = Broker::with_config(config)? else {
        return Ok(());
    };
    let node = b.node.as_ref().context("a girder node")?;
    // A malformed first packet (reserved packet type 0) is logged with the
    // client's address.
    let mut bytes = proxy_v1("198.51.100.77", 4777);
    bytes.extend_from_slice(&[0x00, 0x00]);
    refused(TcpStream::connect(b.addr).await?, &bytes).await?;
    eventually(WAIT, || async { node.log().contains("198.51.100.77:4777") })
        .await
        .context("the proxied address is not in the log")
}

/// A subscriber that never reads, with a will, while messages flood in on
/// its topic for up to `limit`: whether its will came, that is whether the
/// broker closed it. The subscriber, to read what is left.
async fn flood_a_reader_that_never_reads(
    tcp_options: &str,
    limit: Duration,
) -> Result<Option<(bool, RawClient)>> {
    let config = format!("listeners.tcp.default.tcp_options {{ {tcp_options} }}\n");
    let Some(b) = Broker::with_config(&config)? else {
        return Ok(None);
    };
    let topic = unique("t/flood");
    let will_topic = unique("t/will");
    let mut watcher = RawClient::connected(b.addr, &Connect::v311(&unique("w"))).await?;
    watcher.subscribe(1, &[(&will_topic, 0)]).await?;

    // A small receive buffer, so that the broker's writes block soon.
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let stream = socket.connect(b.addr).await?;
    let mut sub = RawClient::from_stream(stream, Version::V311);
    let will = Will {
        topic: will_topic.clone(),
        payload: b"gone".to_vec(),
        ..Will::default()
    };
    sub.send(&Connect::v311(&unique("slow")).will(will).encode())
        .await?;
    ensure!(sub.recv().await?.connack(Version::V311)?.code == 0);
    sub.subscribe(1, &[(&topic, 0)]).await?;

    // Flood until the will shows the subscriber gone, or `limit` passes.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut publisher = RawClient::connected(b.addr, &Connect::v311(&unique("p"))).await?;
    let flood = {
        let (stop, sent, topic) = (Arc::clone(&stop), Arc::clone(&sent), topic.clone());
        tokio::spawn(async move {
            let message = Publish::new(&topic, &[b'x'; 32 * 1024]).encode(Version::V311);
            let deadline = tokio::time::Instant::now() + limit;
            while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
                publisher.send(&message).await?;
                sent.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            anyhow::Ok(())
        })
    };
    let got = watcher.recv_within(limit).await;
    stop.store(true, Ordering::Relaxed);
    flood.await??;
    ensure!(sent.load(Ordering::Relaxed) > 0);
    let closed = match got? {
        Some(will) => {
            assert_eq!(will.publish(Version::V311)?.payload, b"gone");
            true
        }
        None => false,
    };
    Ok(Some((closed, sub)))
}

/// Once a write to a subscriber that never reads has been blocked for
/// `send_timeout`, the broker closes the connection (its will is published,
/// its socket ends).
#[tokio::test]
async fn a_blocked_subscriber_is_closed_after_send_timeout() -> Result<()> {
    let flood = "send_timeout = 1s, sndbuf = 16KB";
    let Some((closed, mut sub)) =
        flood_a_reader_that_never_reads(flood, Duration::from_secs(20)).await?
    else {
        return Ok(());
    };
    ensure!(closed, "no will: the subscriber was not closed");
    // Its socket ends once it has read what the broker had sent.
    sub.closed_within(Duration::from_secs(20)).await?;
    Ok(())
}

/// With `send_timeout_close = false` a blocked write never closes the
/// connection (QoS 0 deliveries past the backlog are dropped instead).
#[tokio::test]
async fn send_timeout_close_false_keeps_a_blocked_subscriber() -> Result<()> {
    let flood = "send_timeout = 1s, send_timeout_close = false, sndbuf = 16KB";
    let Some((closed, _sub)) =
        flood_a_reader_that_never_reads(flood, Duration::from_secs(5)).await?
    else {
        return Ok(());
    };
    ensure!(!closed, "closed although send_timeout_close = false");
    Ok(())
}

/// `enable` starts a listener or leaves its port closed; several TCP
/// listeners of one node serve side by side (`bind` each).
#[tokio::test]
async fn enable_and_bind_decide_which_listeners_serve() -> Result<()> {
    // The extra listener binds port 0 and is found in the node's report;
    // the spare one's port must stay closed.
    let off = girder_tests::node::free_port();
    let Some(b) = Broker::with_config(&format!(
        "listeners.tcp.extra {{ enable = true, bind = \"127.0.0.1:0\" }}\n\
         listeners.tcp.spare {{ enable = false, bind = \"127.0.0.1:{off}\" }}\n"
    ))?
    else {
        return Ok(());
    };
    let node = b.node.as_ref().context("a node of this test's own")?;
    let extra = node
        .listener("tcp:extra")
        .context("tcp:extra not reported")?;
    ensure!(
        node.listener("tcp:spare").is_none(),
        "a disabled listener is reported: {:?}",
        node.listeners
    );
    let c = RawClient::connected(extra, &Connect::v311(&unique("extra"))).await?;
    c.disconnect().await?;
    let spare = TcpStream::connect(("127.0.0.1", off)).await;
    ensure!(spare.is_err(), "a disabled listener accepted a connection");
    // The default listener serves alongside.
    let c = RawClient::connected(b.addr, &Connect::v311(&unique("default"))).await?;
    c.disconnect().await?;
    Ok(())
}
