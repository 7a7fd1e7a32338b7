//! Received packets: [`Frame`] and its decoders, written from the
//! specification (independent of girder's codec).

use super::*;

/// Packet types, as the upper nibble of the fixed header.
pub mod kind {
    /// CONNACK.
    pub const CONNACK: u8 = 2;
    /// PUBLISH.
    pub const PUBLISH: u8 = 3;
    /// PUBACK.
    pub const PUBACK: u8 = 4;
    /// PUBREC.
    pub const PUBREC: u8 = 5;
    /// PUBREL.
    pub const PUBREL: u8 = 6;
    /// PUBCOMP.
    pub const PUBCOMP: u8 = 7;
    /// SUBACK.
    pub const SUBACK: u8 = 9;
    /// UNSUBACK.
    pub const UNSUBACK: u8 = 11;
    /// PINGRESP.
    pub const PINGRESP: u8 = 13;
    /// DISCONNECT.
    pub const DISCONNECT: u8 = 14;
}

/// A received packet: fixed header byte and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The first byte (type and flags).
    pub header: u8,
    /// The bytes after the remaining length.
    pub body: Vec<u8>,
}

/// A decoded CONNACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Session present flag.
    pub session_present: bool,
    /// Return code (v3.1.1) or reason code (v5).
    pub code: u8,
    /// Properties (v5).
    pub props: Props,
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8> {
        ensure!(self.0.has_remaining(), "packet too short");
        Ok(self.0.get_u8())
    }
    fn u16(&mut self) -> Result<u16> {
        ensure!(self.0.remaining() >= 2, "packet too short");
        Ok(self.0.get_u16())
    }
    fn u32(&mut self) -> Result<u32> {
        ensure!(self.0.remaining() >= 4, "packet too short");
        Ok(self.0.get_u32())
    }
    fn varint(&mut self) -> Result<u32> {
        let (mut n, mut shift) = (0u32, 0);
        loop {
            let b = self.u8()?;
            n |= u32::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
            shift += 7;
            ensure!(shift < 28, "bad variable byte integer");
        }
    }
    fn bin(&mut self) -> Result<Vec<u8>> {
        let len = usize::from(self.u16()?);
        ensure!(self.0.remaining() >= len, "packet too short");
        let v = self.0[..len].to_vec();
        self.0.advance(len);
        Ok(v)
    }
    fn str(&mut self) -> Result<String> {
        Ok(String::from_utf8(self.bin()?)?)
    }
    fn props(&mut self) -> Result<Props> {
        let len = self.varint()? as usize;
        ensure!(self.0.remaining() >= len, "properties too long");
        let mut r = Reader(&self.0[..len]);
        self.0.advance(len);
        let mut out = Vec::new();
        while r.0.has_remaining() {
            let id = r.u8()?;
            let value = match id {
                0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => Prop::Byte(r.u8()?),
                0x13 | 0x21 | 0x22 | 0x23 => Prop::U16(r.u16()?),
                0x02 | 0x11 | 0x18 | 0x27 => Prop::U32(r.u32()?),
                0x0B => Prop::VarInt(r.varint()?),
                0x03 | 0x08 | 0x12 | 0x15 | 0x1A | 0x1C | 0x1F => Prop::Str(r.str()?),
                0x09 | 0x16 => Prop::Bin(r.bin()?),
                0x26 => Prop::Pair(r.str()?, r.str()?),
                other => bail!("unknown property 0x{other:02x}"),
            };
            out.push((id, value));
        }
        Ok(out)
    }
}

impl Frame {
    /// The packet type (upper nibble).
    pub fn kind(&self) -> u8 {
        self.header >> 4
    }

    fn expect(&self, kind: u8) -> Result<()> {
        ensure!(
            self.kind() == kind,
            "expected packet type {kind}, got {} ({:02x?})",
            self.kind(),
            self.body
        );
        Ok(())
    }

    /// Decodes a CONNACK.
    pub fn connack(&self, version: Version) -> Result<ConnAck> {
        self.expect(kind::CONNACK)?;
        let mut r = Reader(&self.body);
        let flags = r.u8()?;
        let code = r.u8()?;
        let props = if version == Version::V5 && r.0.has_remaining() {
            r.props()?
        } else {
            Vec::new()
        };
        Ok(ConnAck {
            session_present: flags & 1 == 1,
            code,
            props,
        })
    }

    /// Decodes a PUBLISH.
    pub fn publish(&self, version: Version) -> Result<Publish> {
        self.expect(kind::PUBLISH)?;
        let qos = (self.header >> 1) & 3;
        let mut r = Reader(&self.body);
        let topic = r.str()?;
        let pid = if qos > 0 { r.u16()? } else { 0 };
        let props = if version == Version::V5 {
            r.props()?
        } else {
            Vec::new()
        };
        Ok(Publish {
            topic,
            qos,
            retain: self.header & 1 == 1,
            dup: self.header & 8 == 8,
            pid,
            props,
            payload: r.0.to_vec(),
        })
    }

    /// Decodes a SUBACK or UNSUBACK: packet id and reason codes.
    pub fn suback(&self, version: Version) -> Result<(u16, Vec<u8>)> {
        ensure!(
            matches!(self.kind(), kind::SUBACK | kind::UNSUBACK),
            "expected SUBACK/UNSUBACK, got {}",
            self.kind()
        );
        let mut r = Reader(&self.body);
        let pid = r.u16()?;
        if version == Version::V5 {
            r.props()?;
        }
        Ok((pid, r.0.to_vec()))
    }

    /// Decodes a PUBACK/PUBREC/PUBREL/PUBCOMP: packet id and reason code
    /// (0 when omitted).
    pub fn ack(&self) -> Result<(u16, u8)> {
        ensure!(
            (kind::PUBACK..=kind::PUBCOMP).contains(&self.kind()),
            "expected an ack, got {}",
            self.kind()
        );
        let mut r = Reader(&self.body);
        let pid = r.u16()?;
        let reason = if r.0.has_remaining() { r.u8()? } else { 0 };
        Ok((pid, reason))
    }

    /// Decodes a v5 DISCONNECT: reason code and properties.
    pub fn disconnect(&self) -> Result<(u8, Props)> {
        self.expect(kind::DISCONNECT)?;
        let mut r = Reader(&self.body);
        if !r.0.has_remaining() {
            return Ok((0, Vec::new()));
        }
        let reason = r.u8()?;
        let props = if r.0.has_remaining() {
            r.props()?
        } else {
            Vec::new()
        };
        Ok((reason, props))
    }
}

/// How a connection ended, as seen by [`RawClient::closed_within`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// Every frame received before the end of stream.
    pub frames: Vec<Frame>,
}

impl Closed {
    /// The reason code of the last DISCONNECT received, if any.
    pub fn disconnect_reason(&self) -> Option<u8> {
        self.frames
            .iter()
            .rev()
            .find(|f| f.kind() == kind::DISCONNECT)
            .and_then(|f| f.disconnect().ok())
            .map(|(r, _)| r)
    }
}
