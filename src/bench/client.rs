//! The load generator's MQTT client: a TCP connection bound to a chosen
//! local address, split into a packet reader and a buffered packet writer,
//! on top of `girder_broker::codec` (client-side decoder, zero-copy
//! payloads).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::BytesMut;
use girder_broker::codec::{
    encode, ByteStr, Connect, ConnectProperties, Decoder, Packet, ProtocolVersion, QoS, Subscribe,
    SubscribeProperties, SubscriptionOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpSocket;

use super::BenchError;

/// Largest packet accepted from the broker.
const MAX_PACKET_SIZE: u32 = 1 << 20;
/// Bytes reserved before each read.
const READ_CHUNK: usize = 16 * 1024;

/// How every client of a run connects.
#[derive(Debug, Clone)]
pub(crate) struct ConnectOptions {
    /// MQTT 3.1.1 or 5.
    pub(crate) version: ProtocolVersion,
    /// Keep alive in seconds (0: none).
    pub(crate) keep_alive: u16,
    /// Clean start / clean session.
    pub(crate) clean_start: bool,
    /// How long to wait for the TCP connect and the CONNACK.
    pub(crate) timeout: Duration,
}

/// Reads packets from the broker.
#[derive(Debug)]
pub(crate) struct PacketReader {
    read: OwnedReadHalf,
    decoder: Decoder,
    buf: BytesMut,
}

impl PacketReader {
    /// The next packet, or `None` when the broker closed the connection.
    pub(crate) async fn next(&mut self) -> Result<Option<Packet>, BenchError> {
        loop {
            if let Some(packet) = self.try_next()? {
                return Ok(Some(packet));
            }
            self.buf.reserve(READ_CHUNK);
            if self.read.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// A packet already buffered, without reading the socket.
    pub(crate) fn try_next(&mut self) -> Result<Option<Packet>, BenchError> {
        Ok(self.decoder.decode(&mut self.buf)?)
    }

    /// Drops the read buffer's memory while the connection is idle.
    pub(crate) fn release_buffer(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }
}

/// Writes packets to the broker: [`PacketWriter::queue`] encodes into a
/// buffer, [`PacketWriter::flush`] writes it in one go.
#[derive(Debug)]
pub(crate) struct PacketWriter {
    write: OwnedWriteHalf,
    version: ProtocolVersion,
    buf: BytesMut,
}

impl PacketWriter {
    /// Encodes a packet into the buffer.
    pub(crate) fn queue(&mut self, packet: &Packet) -> Result<(), BenchError> {
        Ok(encode(packet, self.version, &mut self.buf)?)
    }

    /// Writes everything buffered.
    pub(crate) async fn flush(&mut self) -> Result<(), BenchError> {
        if !self.buf.is_empty() {
            self.write.write_all(&self.buf).await?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Drops the write buffer's memory while the connection is idle.
    pub(crate) fn release_buffer(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }
}

/// A connected client.
#[derive(Debug)]
pub(crate) struct Client {
    /// Incoming packets.
    pub(crate) reader: PacketReader,
    /// Outgoing packets.
    pub(crate) writer: PacketWriter,
    /// The broker's receive maximum (v5 CONNACK), or 65535.
    pub(crate) server_receive_maximum: u16,
}

impl Client {
    /// Opens a TCP connection from `source` (port chosen by the kernel) to
    /// `server`, sends CONNECT and waits for a successful CONNACK.
    pub(crate) async fn connect(
        server: SocketAddr,
        source: Option<IpAddr>,
        client_id: &str,
        options: &ConnectOptions,
    ) -> Result<Self, BenchError> {
        let attempt = async {
            let socket = match server {
                SocketAddr::V4(_) => TcpSocket::new_v4()?,
                SocketAddr::V6(_) => TcpSocket::new_v6()?,
            };
            if let Some(ip) = source {
                socket.bind(SocketAddr::new(ip, 0))?;
            }
            let stream = socket.connect(server).await?;
            stream.set_nodelay(true)?;
            let (read, write) = stream.into_split();
            let mut client = Client {
                reader: PacketReader {
                    read,
                    decoder: Decoder::with_version(options.version, MAX_PACKET_SIZE),
                    buf: BytesMut::new(),
                },
                writer: PacketWriter {
                    write,
                    version: options.version,
                    buf: BytesMut::new(),
                },
                server_receive_maximum: u16::MAX,
            };
            let properties = ConnectProperties {
                receive_maximum: Some(u16::MAX),
                maximum_packet_size: Some(MAX_PACKET_SIZE),
                ..ConnectProperties::default()
            };
            client.writer.queue(&Packet::Connect(Box::new(Connect {
                protocol: options.version,
                clean_start: options.clean_start,
                keep_alive: options.keep_alive,
                client_id: ByteStr::copy_from_str(client_id),
                will: None,
                username: None,
                password: None,
                properties,
            })))?;
            client.writer.flush().await?;
            match client.reader.next().await? {
                Some(Packet::ConnAck(ack)) if !ack.reason_code.is_error() => {
                    if let Some(max) = ack.properties.receive_maximum {
                        client.server_receive_maximum = max;
                    }
                    Ok(client)
                }
                Some(Packet::ConnAck(ack)) => Err(BenchError::Refused(ack.reason_code)),
                Some(other) => Err(BenchError::Unexpected(other.packet_type(), "CONNACK")),
                None => Err(BenchError::Closed),
            }
        };
        tokio::time::timeout(options.timeout, attempt)
            .await
            .map_err(|_| BenchError::Timeout(options.timeout, "CONNACK"))?
    }

    /// Subscribes to `filters` with `qos` and waits for the SUBACK (every
    /// filter must be granted). Returns the packets that arrived before it
    /// (retained messages), for the caller to handle.
    pub(crate) async fn subscribe(
        &mut self,
        filters: &[String],
        qos: QoS,
        timeout: Duration,
    ) -> Result<Vec<Packet>, BenchError> {
        const PACKET_ID: u16 = 1;
        self.writer.queue(&Packet::Subscribe(Subscribe {
            packet_id: PACKET_ID,
            filters: filters
                .iter()
                .map(|f| {
                    (
                        ByteStr::copy_from_str(f),
                        SubscriptionOptions::with_qos(qos),
                    )
                })
                .collect(),
            properties: SubscribeProperties::default(),
        }))?;
        self.writer.flush().await?;
        let wait = async {
            let mut early = Vec::new();
            loop {
                match self.reader.next().await? {
                    Some(Packet::SubAck(ack)) if ack.packet_id == PACKET_ID => {
                        return match ack.reason_codes.iter().find(|c| c.is_error()) {
                            Some(code) => Err(BenchError::Refused(*code)),
                            None => Ok(early),
                        };
                    }
                    Some(packet) => early.push(packet),
                    None => return Err(BenchError::Closed),
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| BenchError::Timeout(timeout, "SUBACK"))?
    }
}
