//! A routing shard actor killed under a running node: its supervisor starts
//! it again, it rebuilds its part of the route table from the index, and
//! routing goes on with no subscription lost.
//!
//! In process (the node's shard actors are not reachable from outside a
//! `girder` process), with real sockets and raw MQTT 3.1.1 bytes.

use std::error::Error;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use girder_actors::cluster::ROUTES;
use girder_actors::router::shard_name;
use girder_actors::Node;
use girder_config::{Config, LoadOptions};
use girder_supervision::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const LIMIT: Duration = Duration::from_secs(10);

/// A raw MQTT 3.1.1 client.
struct Client {
    stream: TcpStream,
}

/// A packet: fixed header byte and body.
fn packet(header: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![header];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

fn string(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

impl Client {
    /// Connects with a clean session and waits for CONNACK 0.
    async fn connect(addr: SocketAddr, client_id: &str) -> Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        let mut client = Client { stream };
        let mut body = string("MQTT");
        body.extend_from_slice(&[4, 0x02, 0, 60]);
        body.extend(string(client_id));
        client.stream.write_all(&packet(0x10, &body)).await?;
        let (header, body) = client.recv().await?;
        if header != 0x20 || body != [0, 0] {
            return Err(format!("CONNACK expected, got {header:#x} {body:?}").into());
        }
        Ok(client)
    }

    /// Reads one packet (within [`LIMIT`]).
    async fn recv(&mut self) -> Result<(u8, Vec<u8>)> {
        tokio::time::timeout(LIMIT, async {
            let header = self.stream.read_u8().await?;
            let mut len = 0usize;
            let mut shift = 0;
            loop {
                let byte = self.stream.read_u8().await?;
                len |= usize::from(byte & 0x7f) << shift;
                shift += 7;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            let mut body = vec![0; len];
            self.stream.read_exact(&mut body).await?;
            Ok::<_, Box<dyn Error>>((header, body))
        })
        .await?
    }

    /// Subscribes to `filter` at QoS 0 and waits for its SUBACK.
    async fn subscribe(&mut self, pid: u16, filter: &str) -> Result<()> {
        let mut body = pid.to_be_bytes().to_vec();
        body.extend(string(filter));
        body.push(0);
        self.stream.write_all(&packet(0x82, &body)).await?;
        let (header, body) = self.recv().await?;
        if header != 0x90 || body[..2] != pid.to_be_bytes() || body[2] != 0 {
            return Err(format!("SUBACK expected, got {header:#x} {body:?}").into());
        }
        Ok(())
    }

    /// Unsubscribes from `filter` and waits for its UNSUBACK.
    async fn unsubscribe(&mut self, pid: u16, filter: &str) -> Result<()> {
        let mut body = pid.to_be_bytes().to_vec();
        body.extend(string(filter));
        self.stream.write_all(&packet(0xa2, &body)).await?;
        let (header, _) = self.recv().await?;
        if header != 0xb0 {
            return Err(format!("UNSUBACK expected, got {header:#x}").into());
        }
        Ok(())
    }

    /// Publishes `payload` on `topic` at QoS 0.
    async fn publish(&mut self, topic: &str, payload: &[u8]) -> Result<()> {
        let mut body = string(topic);
        body.extend_from_slice(payload);
        self.stream.write_all(&packet(0x30, &body)).await?;
        Ok(())
    }

    /// Waits for a QoS 0 PUBLISH; returns its topic and payload.
    async fn recv_publish(&mut self) -> Result<(String, Vec<u8>)> {
        let (header, body) = self.recv().await?;
        if header & 0xf0 != 0x30 {
            return Err(format!("PUBLISH expected, got {header:#x}").into());
        }
        let len = usize::from(u16::from_be_bytes([body[0], body[1]]));
        let topic = String::from_utf8(body[2..2 + len].to_vec())?;
        Ok((topic, body[2 + len..].to_vec()))
    }
}

/// Whether this node has a route row for `filter`.
fn has_route(node: &Node, filter: &str) -> bool {
    let me = node.cluster().node().clone();
    node.tables()
        .read_owned(ROUTES, filter.as_bytes())
        .iter()
        .any(|(owner, _)| *owner == me)
}

/// Polls `condition` until it holds or [`LIMIT`] passes.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + LIMIT;
    while !condition() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// A loopback port free at the time of asking.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn config(dir: &std::path::Path) -> Result<Config> {
    let options = LoadOptions {
        file: None,
        env: Vec::new(),
        overrides: vec![
            "node.name=\"girder@127.0.0.1\"".to_owned(),
            format!("node.data_dir=\"{}\"", dir.join("data").display()),
            format!("cluster.dist.bind=\"127.0.0.1:{}\"", free_port()?),
            format!("listeners.tcp.default.bind=\"127.0.0.1:{}\"", free_port()?),
            format!("admin.bind=\"127.0.0.1:{}\"", free_port()?),
        ],
    };
    Ok(Config::load(&options)?.config)
}

async fn scenario(node: &Node) -> Result<()> {
    let addr = node
        .listeners()
        .iter()
        .find(|(name, _)| name == "tcp:default")
        .map(|(_, addr)| *addr)
        .ok_or("no tcp:default listener")?;
    let router = &node.shared().router;
    // Every "k/..." filter lives in one shard: the one to kill.
    let shard = router.shard_of("k/1");
    assert_eq!(router.shard_of("k/2"), shard);

    let mut sub = Client::connect(addr, "sub").await?;
    let mut publisher = Client::connect(addr, "pub").await?;
    sub.subscribe(1, "k/1").await?;
    eventually("the route row of k/1", || has_route(node, "k/1")).await?;

    // Route rows lost with the dying actor, as if its mailbox had held
    // them: k/1's row gone, a row left behind for an unused filter.
    let tables = node.tables();
    tables.write_owned(ROUTES, Bytes::from_static(b"k/1"), None)?;
    tables.write_owned(ROUTES, Bytes::from_static(b"k/stale"), Some(Bytes::new()))?;
    assert!(!has_route(node, "k/1"));

    let name = shard_name(shard);
    let before = Registry::global().whereis(&name).ok_or("no shard actor")?;
    before.kill();
    eventually("the shard actor's restart", || {
        Registry::global()
            .whereis(&name)
            .is_some_and(|pid| pid.id() != before.id() && pid.is_alive())
    })
    .await?;

    // The new incarnation rebuilt its rows from the index.
    eventually("k/1's row rebuilt", || has_route(node, "k/1")).await?;
    eventually("k/stale's row removed", || !has_route(node, "k/stale")).await?;

    // The subscription made before the kill still routes.
    publisher.publish("k/1", b"after").await?;
    assert_eq!(
        sub.recv_publish().await?,
        ("k/1".to_owned(), b"after".to_vec())
    );

    // New route changes reach the new incarnation.
    sub.subscribe(2, "k/2").await?;
    eventually("the route row of k/2", || has_route(node, "k/2")).await?;
    publisher.publish("k/2", b"two").await?;
    assert_eq!(
        sub.recv_publish().await?,
        ("k/2".to_owned(), b"two".to_vec())
    );
    sub.unsubscribe(3, "k/2").await?;
    eventually("k/2's row removed", || !has_route(node, "k/2")).await?;
    Ok(())
}

#[test]
fn a_killed_routing_shard_comes_back_and_rebuilds_its_routes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = config(dir.path())?;
    let system = actix::System::new();
    system.block_on(async {
        let node = Node::start(&config).await?;
        let result = scenario(&node).await;
        node.shutdown().await;
        result
    })
}
