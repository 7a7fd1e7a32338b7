//! Helpers for the MQTT suites (`tests/tests/mqtt_*.rs`).
//!
//! The suites talk to a broker started as a process, either a `girder` node
//! ([`crate::node::NodeProcess`]) or, when `MQTT_TEST_BROKER=host:port` is
//! set, an external reference broker (Mosquitto), so that the suites
//! themselves can be validated against a known-good implementation. Tests
//! that need girder-specific configuration return early with a message in
//! that mode.
//!
//! # Layout
//! - [`Broker`]: the broker under test and its address.
//! - A byte-level MQTT 3.1.1 / 5.0 encoder and decoder written from the
//!   specification, independent of girder's own codec: [`Connect`],
//!   [`Publish`], [`subscribe`], [`ack`], [`disconnect`], [`Frame`] and
//!   [`Prop`].
//! - [`RawClient`]: a TCP socket that sends those bytes and reads frames with
//!   deadlines.
//!   The decoder of received packets ([`Frame`], [`kind`]) is in
//!   `mqtt/frame.rs`.
//! - [`V5Client`] / [`V4Client`] (`mqtt/clients.rs`): rumqttc clients whose
//!   event loops run in a task and forward events to a channel.
//! - [`unique`]: unique client ids and topics, so tests share nothing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

use crate::node::{NodeOptions, NodeProcess};

mod clients;
mod frame;

pub use clients::{V4Client, V5Client};
pub use frame::{kind, Closed, ConnAck, Frame};

/// How long a test waits for a reply that must come.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be reasonably sure that nothing comes.
pub const QUIET: Duration = Duration::from_millis(500);

/// A unique name with `prefix`, for client ids and topics.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// The broker under test.
#[derive(Debug)]
pub struct Broker {
    /// Its MQTT over TCP address.
    pub addr: SocketAddr,
    /// The girder process, if this test started one.
    pub node: Option<NodeProcess>,
}

impl Broker {
    /// The external broker named by `MQTT_TEST_BROKER`, if set.
    fn external() -> Result<Option<SocketAddr>> {
        match std::env::var("MQTT_TEST_BROKER") {
            Ok(s) if !s.is_empty() => {
                Ok(Some(s.parse().with_context(|| {
                    format!("MQTT_TEST_BROKER={s} is not host:port")
                })?))
            }
            _ => Ok(None),
        }
    }

    /// A broker with default settings: the external one or a new girder node.
    pub fn start() -> Result<Self> {
        if let Some(addr) = Self::external()? {
            return Ok(Broker { addr, node: None });
        }
        let node = NodeProcess::start()?;
        Ok(Broker {
            addr: node.mqtt,
            node: Some(node),
        })
    }

    /// A girder node with extra HOCON config, or `None` (with a message on
    /// stderr) when the suite targets an external broker, which cannot be
    /// configured per test.
    pub fn with_config(config: &str) -> Result<Option<Self>> {
        if Self::external()?.is_some() {
            eprintln!(
                "skipped: needs girder config `{config}`, not available with MQTT_TEST_BROKER"
            );
            return Ok(None);
        }
        let node = NodeProcess::start_with(NodeOptions {
            extra_config: config.to_owned(),
            env: Vec::new(),
        })?;
        Ok(Some(Broker {
            addr: node.mqtt,
            node: Some(node),
        }))
    }

    /// Whether the broker is an external one (the reference broker).
    pub fn is_external(&self) -> bool {
        self.node.is_none()
    }

    /// The host part of the address.
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// Protocol version of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

/// MQTT 5 property identifiers used by the suites.
pub mod prop {
    /// Payload format indicator (byte).
    pub const PAYLOAD_FORMAT: u8 = 0x01;
    /// Message expiry interval (u32).
    pub const MESSAGE_EXPIRY: u8 = 0x02;
    /// Content type (string).
    pub const CONTENT_TYPE: u8 = 0x03;
    /// Response topic (string).
    pub const RESPONSE_TOPIC: u8 = 0x08;
    /// Correlation data (binary).
    pub const CORRELATION_DATA: u8 = 0x09;
    /// Subscription identifier (variable byte integer).
    pub const SUBSCRIPTION_ID: u8 = 0x0B;
    /// Session expiry interval (u32).
    pub const SESSION_EXPIRY: u8 = 0x11;
    /// Assigned client identifier (string).
    pub const ASSIGNED_CLIENT_ID: u8 = 0x12;
    /// Server keep alive (u16).
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    /// Will delay interval (u32).
    pub const WILL_DELAY: u8 = 0x18;
    /// Request response information (byte).
    pub const REQUEST_RESPONSE_INFO: u8 = 0x19;
    /// Response information (string).
    pub const RESPONSE_INFO: u8 = 0x1A;
    /// Reason string (string).
    pub const REASON_STRING: u8 = 0x1F;
    /// Receive maximum (u16).
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    /// Topic alias maximum (u16).
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    /// Topic alias (u16).
    pub const TOPIC_ALIAS: u8 = 0x23;
    /// Maximum QoS (byte).
    pub const MAXIMUM_QOS: u8 = 0x24;
    /// Retain available (byte).
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    /// User property (string pair).
    pub const USER_PROPERTY: u8 = 0x26;
    /// Maximum packet size (u32).
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    /// Shared subscription available (byte).
    pub const SHARED_SUB_AVAILABLE: u8 = 0x2A;
}

/// An MQTT 5 property value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prop {
    /// A one-byte integer.
    Byte(u8),
    /// A two-byte integer.
    U16(u16),
    /// A four-byte integer.
    U32(u32),
    /// A variable byte integer.
    VarInt(u32),
    /// A UTF-8 string.
    Str(String),
    /// Binary data.
    Bin(Vec<u8>),
    /// A UTF-8 string pair (user property).
    Pair(String, String),
}

/// A list of properties in wire order.
pub type Props = Vec<(u8, Prop)>;

/// The first value of property `id`, if present.
pub fn find(props: &Props, id: u8) -> Option<&Prop> {
    props.iter().find(|(i, _)| *i == id).map(|(_, p)| p)
}

/// The user properties of a list, in order.
pub fn user_props(props: &Props) -> Vec<(String, String)> {
    props
        .iter()
        .filter_map(|(_, p)| match p {
            Prop::Pair(k, v) => Some((k.clone(), v.clone())),
            _ => None,
        })
        .collect()
}

fn put_varint(buf: &mut BytesMut, mut n: u32) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if n == 0 {
            break;
        }
    }
}

fn put_str(buf: &mut BytesMut, s: &[u8]) {
    buf.put_u16(s.len() as u16);
    buf.put_slice(s);
}

fn encode_props(buf: &mut BytesMut, props: &Props) {
    let mut p = BytesMut::new();
    for (id, value) in props {
        p.put_u8(*id);
        match value {
            Prop::Byte(b) => p.put_u8(*b),
            Prop::U16(v) => p.put_u16(*v),
            Prop::U32(v) => p.put_u32(*v),
            Prop::VarInt(v) => put_varint(&mut p, *v),
            Prop::Str(s) => put_str(&mut p, s.as_bytes()),
            Prop::Bin(b) => put_str(&mut p, b),
            Prop::Pair(k, v) => {
                put_str(&mut p, k.as_bytes());
                put_str(&mut p, v.as_bytes());
            }
        }
    }
    put_varint(buf, p.len() as u32);
    buf.put_slice(&p);
}

/// A whole packet: fixed header byte, remaining length, body.
pub fn packet(header: u8, body: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_u8(header);
    put_varint(&mut buf, body.len() as u32);
    buf.put_slice(body);
    buf.to_vec()
}

/// A will message carried by a CONNECT.
#[derive(Debug, Clone, Default)]
pub struct Will {
    /// Will topic.
    pub topic: String,
    /// Will payload.
    pub payload: Vec<u8>,
    /// Will QoS.
    pub qos: u8,
    /// Will retain flag.
    pub retain: bool,
    /// Will properties (v5).
    pub props: Props,
}

/// A CONNECT packet.
#[derive(Debug, Clone)]
pub struct Connect {
    /// Protocol version.
    pub version: Version,
    /// Client identifier (may be empty).
    pub client_id: String,
    /// Clean session (v3.1.1) / clean start (v5).
    pub clean: bool,
    /// Keep alive in seconds.
    pub keep_alive: u16,
    /// CONNECT properties (v5).
    pub props: Props,
    /// Optional will.
    pub will: Option<Will>,
}

impl Connect {
    /// A clean v3.1.1 CONNECT with a 60 s keep alive.
    pub fn v311(client_id: &str) -> Self {
        Connect {
            version: Version::V311,
            client_id: client_id.to_owned(),
            clean: true,
            keep_alive: 60,
            props: Vec::new(),
            will: None,
        }
    }

    /// A clean-start v5 CONNECT with a 60 s keep alive.
    pub fn v5(client_id: &str) -> Self {
        Connect {
            version: Version::V5,
            ..Self::v311(client_id)
        }
    }

    /// Sets clean session / clean start.
    pub fn clean(mut self, clean: bool) -> Self {
        self.clean = clean;
        self
    }

    /// Sets the keep alive.
    pub fn keep_alive(mut self, secs: u16) -> Self {
        self.keep_alive = secs;
        self
    }

    /// Adds a property.
    pub fn prop(mut self, id: u8, value: Prop) -> Self {
        self.props.push((id, value));
        self
    }

    /// Sets the will.
    pub fn will(mut self, will: Will) -> Self {
        self.will = Some(will);
        self
    }

    /// The encoded packet.
    pub fn encode(&self) -> Vec<u8> {
        let v5 = self.version == Version::V5;
        let mut b = BytesMut::new();
        put_str(&mut b, b"MQTT");
        b.put_u8(if v5 { 5 } else { 4 });
        let mut flags = 0u8;
        if self.clean {
            flags |= 0x02;
        }
        if let Some(w) = &self.will {
            flags |= 0x04 | (w.qos << 3);
            if w.retain {
                flags |= 0x20;
            }
        }
        b.put_u8(flags);
        b.put_u16(self.keep_alive);
        if v5 {
            encode_props(&mut b, &self.props);
        }
        put_str(&mut b, self.client_id.as_bytes());
        if let Some(w) = &self.will {
            if v5 {
                encode_props(&mut b, &w.props);
            }
            put_str(&mut b, w.topic.as_bytes());
            put_str(&mut b, &w.payload);
        }
        packet(0x10, &b)
    }
}

/// A PUBLISH packet, sent or received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Publish {
    /// Topic name (empty when a v5 topic alias stands for it).
    pub topic: String,
    /// QoS 0, 1 or 2.
    pub qos: u8,
    /// RETAIN flag.
    pub retain: bool,
    /// DUP flag.
    pub dup: bool,
    /// Packet identifier (QoS > 0).
    pub pid: u16,
    /// Properties (v5).
    pub props: Props,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Publish {
    /// A QoS 0 message.
    pub fn new(topic: &str, payload: &[u8]) -> Self {
        Publish {
            topic: topic.to_owned(),
            payload: payload.to_vec(),
            ..Default::default()
        }
    }

    /// Sets QoS and packet identifier.
    pub fn qos(mut self, qos: u8, pid: u16) -> Self {
        self.qos = qos;
        self.pid = pid;
        self
    }

    /// Sets the RETAIN flag.
    pub fn retain(mut self) -> Self {
        self.retain = true;
        self
    }

    /// Adds a property.
    pub fn prop(mut self, id: u8, value: Prop) -> Self {
        self.props.push((id, value));
        self
    }

    /// The encoded packet.
    pub fn encode(&self, version: Version) -> Vec<u8> {
        let mut b = BytesMut::new();
        put_str(&mut b, self.topic.as_bytes());
        if self.qos > 0 {
            b.put_u16(self.pid);
        }
        if version == Version::V5 {
            encode_props(&mut b, &self.props);
        }
        b.put_slice(&self.payload);
        let header = 0x30 | (u8::from(self.dup) << 3) | (self.qos << 1) | u8::from(self.retain);
        packet(header, &b)
    }
}

/// A SUBSCRIBE packet; each filter comes with its options byte (QoS in bits
/// 0-1; v5: no local 0x04, retain as published 0x08, retain handling << 4).
pub fn subscribe(version: Version, pid: u16, filters: &[(&str, u8)], props: &Props) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_u16(pid);
    if version == Version::V5 {
        encode_props(&mut b, props);
    }
    for (f, opts) in filters {
        put_str(&mut b, f.as_bytes());
        b.put_u8(*opts);
    }
    packet(0x82, &b)
}

/// An UNSUBSCRIBE packet.
pub fn unsubscribe(version: Version, pid: u16, filters: &[&str]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_u16(pid);
    if version == Version::V5 {
        encode_props(&mut b, &Vec::new());
    }
    for f in filters {
        put_str(&mut b, f.as_bytes());
    }
    packet(0xA2, &b)
}

/// A PUBACK (0x40), PUBREC (0x50), PUBREL (0x62) or PUBCOMP (0x70) with
/// reason code 0.
pub fn ack(header: u8, pid: u16) -> Vec<u8> {
    packet(header, &pid.to_be_bytes())
}

/// A DISCONNECT; for v5 with `reason` and properties.
pub fn disconnect(version: Version, reason: u8, props: &Props) -> Vec<u8> {
    if version == Version::V311 {
        return vec![0xE0, 0x00];
    }
    let mut b = BytesMut::new();
    b.put_u8(reason);
    encode_props(&mut b, props);
    packet(0xE0, &b)
}

/// A PINGREQ.
pub const PINGREQ: [u8; 2] = [0xC0, 0x00];

/// A raw MQTT connection over TCP.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    /// Protocol version used to decode replies.
    pub version: Version,
}

impl RawClient {
    /// Opens a TCP connection (nothing is sent).
    pub async fn open(addr: SocketAddr, version: Version) -> Result<Self> {
        let stream = timeout(WAIT, TcpStream::connect(addr))
            .await
            .context("TCP connect timed out")??;
        stream.set_nodelay(true)?;
        Ok(RawClient {
            stream,
            buf: BytesMut::new(),
            version,
        })
    }

    /// Wraps a connection the test opened itself (from a chosen source
    /// address, or after writing a PROXY header).
    pub fn from_stream(stream: TcpStream, version: Version) -> Self {
        RawClient {
            stream,
            buf: BytesMut::new(),
            version,
        }
    }

    /// Connects, sends `connect`, and returns the client and its CONNACK.
    pub async fn connect(addr: SocketAddr, connect: &Connect) -> Result<(Self, ConnAck)> {
        let mut c = Self::open(addr, connect.version).await?;
        c.send(&connect.encode()).await?;
        let ack = c.recv().await?.connack(connect.version)?;
        Ok((c, ack))
    }

    /// Connects and checks that the CONNACK accepts the connection.
    pub async fn connected(addr: SocketAddr, connect: &Connect) -> Result<Self> {
        let (c, ack) = Self::connect(addr, connect).await?;
        ensure!(ack.code == 0, "CONNECT refused with 0x{:02x}", ack.code);
        Ok(c)
    }

    /// [`connected`](Self::connected), tried again for up to 2 s while
    /// the node refuses: for a listener at its `max_connections`, where a
    /// connection that just closed (the test harness's readiness probe
    /// among them) counts until the node has seen it close.
    pub async fn connected_when_room(addr: SocketAddr, connect: &Connect) -> Result<Self> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            match Self::connected(addr, connect).await {
                Ok(c) => return Ok(c),
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e.context("refused for 2 s")),
            }
        }
    }

    /// Writes raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        timeout(WAIT, self.stream.write_all(bytes))
            .await
            .context("write timed out")??;
        Ok(())
    }

    fn try_parse(&mut self) -> Result<Option<Frame>> {
        let mut len = 0usize;
        let mut i = 1;
        loop {
            let Some(&b) = self.buf.get(i) else {
                return Ok(None);
            };
            len |= usize::from(b & 0x7F) << (7 * (i - 1));
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            ensure!(i <= 4, "bad remaining length from broker");
        }
        if self.buf.len() < i + len {
            return Ok(None);
        }
        let header = self.buf[0];
        self.buf.advance(i);
        let body = self.buf.split_to(len).to_vec();
        Ok(Some(Frame { header, body }))
    }

    /// The next frame within `limit`; `Ok(None)` on timeout; an error when
    /// the connection ends.
    pub async fn recv_within(&mut self, limit: Duration) -> Result<Option<Frame>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(f) = self.try_parse()? {
                return Ok(Some(f));
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf));
            match read.await {
                Err(_) => return Ok(None),
                Ok(Ok(0)) => bail!("connection closed by the broker"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => bail!("connection error: {e}"),
            }
        }
    }

    /// The next frame, which must come within [`WAIT`].
    pub async fn recv(&mut self) -> Result<Frame> {
        self.recv_within(WAIT)
            .await?
            .ok_or_else(|| anyhow!("no packet from the broker within {WAIT:?}"))
    }

    /// The next PUBLISH within [`WAIT`], skipping nothing.
    pub async fn recv_publish(&mut self) -> Result<Publish> {
        let v = self.version;
        self.recv().await?.publish(v)
    }

    /// Asserts that no frame arrives within `limit` and the connection stays up.
    pub async fn expect_silence(&mut self, limit: Duration) -> Result<()> {
        match self.recv_within(limit).await? {
            None => Ok(()),
            Some(f) => bail!("unexpected packet {:02x} {:02x?}", f.header, f.body),
        }
    }

    /// Reads until the broker closes the connection, within `limit`.
    pub async fn closed_within(&mut self, limit: Duration) -> Result<Closed> {
        let deadline = Instant::now() + limit;
        let mut frames = Vec::new();
        loop {
            while let Some(f) = self.try_parse()? {
                frames.push(f);
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf));
            match read.await {
                Err(_) => bail!("connection still open after {limit:?}; got {frames:?}"),
                Ok(Ok(0)) | Ok(Err(_)) => return Ok(Closed { frames }),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Reads until the broker closes the connection, within `limit`, and
    /// fails if it ends with an error (a TCP reset) rather than an end of
    /// stream: a reset may destroy what the broker sent last.
    pub async fn closed_cleanly_within(&mut self, limit: Duration) -> Result<Closed> {
        let deadline = Instant::now() + limit;
        let mut frames = Vec::new();
        loop {
            while let Some(f) = self.try_parse()? {
                frames.push(f);
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf));
            match read.await {
                Err(_) => bail!("connection still open after {limit:?}; got {frames:?}"),
                Ok(Ok(0)) => return Ok(Closed { frames }),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => bail!("connection error {e} instead of a close; got {frames:?}"),
            }
        }
    }

    /// The client's own address (the broker's peer address for it).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.stream.local_addr()?)
    }

    /// Subscribes and returns the SUBACK reason codes.
    pub async fn subscribe(&mut self, pid: u16, filters: &[(&str, u8)]) -> Result<Vec<u8>> {
        self.subscribe_with(pid, filters, &Vec::new()).await
    }

    /// Subscribes with properties and returns the SUBACK reason codes.
    pub async fn subscribe_with(
        &mut self,
        pid: u16,
        filters: &[(&str, u8)],
        props: &Props,
    ) -> Result<Vec<u8>> {
        self.send(&subscribe(self.version, pid, filters, props))
            .await?;
        let (got, codes) = self.recv().await?.suback(self.version)?;
        ensure!(got == pid, "SUBACK for {got}, expected {pid}");
        Ok(codes)
    }

    /// Publishes and completes the QoS flow as the sender (waits for PUBACK,
    /// or PUBREC then PUBCOMP).
    pub async fn publish(&mut self, p: &Publish) -> Result<()> {
        self.send(&p.encode(self.version)).await?;
        match p.qos {
            0 => Ok(()),
            1 => {
                let (pid, _) = self.recv().await?.ack()?;
                ensure!(pid == p.pid, "PUBACK for {pid}, expected {}", p.pid);
                Ok(())
            }
            _ => {
                let f = self.recv().await?;
                ensure!(f.kind() == kind::PUBREC, "expected PUBREC, got {f:?}");
                self.send(&ack(0x62, p.pid)).await?;
                let f = self.recv().await?;
                ensure!(f.kind() == kind::PUBCOMP, "expected PUBCOMP, got {f:?}");
                Ok(())
            }
        }
    }

    /// Sends a normal DISCONNECT and waits until the broker has closed the
    /// connection, so that the session is offline when this returns.
    pub async fn disconnect(mut self) -> Result<()> {
        let v = self.version;
        self.send(&disconnect(v, 0, &Vec::new())).await?;
        self.closed_within(WAIT).await.map(|_| ())
    }
}

/// Polls `check` every 20 ms until it returns true or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("condition not met within {limit:?}")
}
