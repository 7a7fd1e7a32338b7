//! Wire primitives (section 1.5): a zero-copy [`Reader`] over a packet body
//! and a [`Sink`] that either writes bytes or only counts them, so that one
//! encoding routine yields both the length and the bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{ByteStr, DecodeError, EncodeError};

/// Largest value of a variable byte integer (section 1.5.5).
pub(crate) const MAX_VAR_INT: u32 = 268_435_455;

/// Reads the fields of one packet body; strings and binaries are slices of
/// the body, never copies.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Self {
        Self { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless everything was read.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.need(2)?;
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }

    /// A non-zero packet identifier (MQTT-2.2.1-3).
    pub(crate) fn packet_id(&mut self) -> Result<u16, DecodeError> {
        match self.u16()? {
            0 => Err(DecodeError::PacketIdZero),
            id => Ok(id),
        }
    }

    /// A variable byte integer (section 1.5.5), minimal and at most 4 bytes.
    pub(crate) fn var_int(&mut self) -> Result<u32, DecodeError> {
        match parse_var_int(&self.buf) {
            VarInt::Value { value, len } => {
                self.buf.advance(len);
                Ok(value)
            }
            VarInt::Incomplete => Err(DecodeError::UnexpectedEof),
            VarInt::Malformed => Err(DecodeError::MalformedVariableInteger),
        }
    }

    /// `n` bytes as a slice of the body.
    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// Binary data: a two-byte length and that many bytes (section 1.5.6).
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16()?);
        self.take(len)
    }

    /// A UTF-8 string (section 1.5.4): well-formed (MQTT-1.5.4-1), and
    /// without U+0000 (MQTT-1.5.4-2).
    pub(crate) fn string(&mut self) -> Result<ByteStr, DecodeError> {
        let bytes = self.binary()?;
        if bytes.contains(&0) {
            return Err(DecodeError::NullCharacter);
        }
        ByteStr::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)
    }

    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            Err(DecodeError::UnexpectedEof)
        } else {
            Ok(())
        }
    }
}

/// Outcome of parsing a variable byte integer from a prefix of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarInt {
    /// The value and how many bytes encoded it.
    Value { value: u32, len: usize },
    /// The buffer ends inside the integer.
    Incomplete,
    /// More than four bytes, or not the shortest encoding (MQTT-1.5.5-1).
    Malformed,
}

pub(crate) fn parse_var_int(buf: &[u8]) -> VarInt {
    let mut value: u32 = 0;
    for (i, &byte) in buf.iter().take(4).enumerate() {
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            // A last byte of 0 after a continuation is a longer encoding of
            // the same value.
            if i > 0 && byte == 0 {
                return VarInt::Malformed;
            }
            return VarInt::Value { value, len: i + 1 };
        }
    }
    if buf.len() >= 4 {
        VarInt::Malformed
    } else {
        VarInt::Incomplete
    }
}

/// Number of bytes that encode `value` as a variable byte integer.
pub(crate) const fn var_int_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Where encoded bytes go: a buffer, or a counter that computes lengths by
/// running the same code.
pub(crate) trait Sink {
    fn put_slice(&mut self, bytes: &[u8]);

    fn put_u8(&mut self, v: u8) {
        self.put_slice(&[v]);
    }

    fn put_u16(&mut self, v: u16) {
        self.put_slice(&v.to_be_bytes());
    }

    fn put_u32(&mut self, v: u32) {
        self.put_slice(&v.to_be_bytes());
    }

    fn put_var_int(&mut self, v: u32) -> Result<(), EncodeError> {
        if v > MAX_VAR_INT {
            return Err(EncodeError::VariableIntegerOutOfRange);
        }
        let mut v = v;
        loop {
            let byte = (v & 0x7F) as u8;
            v >>= 7;
            if v == 0 {
                self.put_u8(byte);
                return Ok(());
            }
            self.put_u8(byte | 0x80);
        }
    }

    /// Binary data with its two-byte length.
    fn put_binary(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let len = u16::try_from(bytes.len()).map_err(|_| EncodeError::FieldTooLong)?;
        self.put_u16(len);
        self.put_slice(bytes);
        Ok(())
    }

    /// A UTF-8 string with its two-byte length.
    fn put_str(&mut self, s: &str) -> Result<(), EncodeError> {
        self.put_binary(s.as_bytes())
    }
}

impl Sink for BytesMut {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn put_u8(&mut self, v: u8) {
        BufMut::put_u8(self, v);
    }
}

/// A [`Sink`] that only counts.
#[derive(Debug, Default)]
pub(crate) struct Counter(pub(crate) usize);

impl Sink for Counter {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }

    fn put_u8(&mut self, _: u8) {
        self.0 += 1;
    }
}
