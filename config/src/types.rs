//! Value types with EMQX's spelling: byte sizes, durations, limits, bind
//! addresses and node names.
//!
//! Each type has a hand-written `Deserialize` that accepts both the typed
//! value (an integer in a file) and its text form (every environment variable
//! arrives as a string), and reports what it expected in one phrase, which the
//! loader turns into `config error: <path> = <value>: expected <phrase>`.

use std::fmt;
use std::marker::PhantomData;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::Deserialize;

/// A value written either as a number or as text with a unit (`1MB`, `15s`).
///
/// Implemented by the types that [`Limit`] and the `disabled` helpers wrap.
pub trait Quantity: Sized {
    /// What a valid value looks like, completing "expected ...".
    const EXPECTED: &'static str;
    /// Parses the text form; `None` when it is not a valid value.
    fn from_text(text: &str) -> Option<Self>;
    /// Converts a plain non-negative integer; `None` when out of range.
    fn from_integer(n: u64) -> Option<Self>;
}

/// Deserializes any [`Quantity`]: an integer or its text form.
fn deserialize_quantity<'de, D: Deserializer<'de>, T: Quantity>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(QuantityVisitor::<T>(PhantomData))
}

struct QuantityVisitor<T>(PhantomData<T>);

impl<'de, T: Quantity> Visitor<'de> for QuantityVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTED)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        T::from_integer(n).ok_or_else(|| E::invalid_value(Unexpected::Unsigned(n), &self))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        u64::try_from(n)
            .ok()
            .and_then(T::from_integer)
            .ok_or_else(|| E::invalid_value(Unexpected::Signed(n), &self))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        T::from_text(s.trim()).ok_or_else(|| E::invalid_value(Unexpected::Str(s), &self))
    }
}

/// A size in bytes. Units are binary, as in EMQX: `1KB` = 1024, `1MB` =
/// 1048576, `1GB` = 2^30; a plain integer is a number of bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// `n` kibibytes (written `nKB`).
    pub const fn kb(n: u64) -> Self {
        Self(n * 1024)
    }

    /// `n` mebibytes (written `nMB`).
    pub const fn mb(n: u64) -> Self {
        Self(n * 1024 * 1024)
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl Quantity for ByteSize {
    const EXPECTED: &'static str = "a byte size such as 1MB or 1048576";

    fn from_text(text: &str) -> Option<Self> {
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let n: u64 = digits.parse().ok()?;
        let shift = match unit.trim().to_ascii_uppercase().as_str() {
            "" | "B" => 0,
            "K" | "KB" => 10,
            "M" | "MB" => 20,
            "G" | "GB" => 30,
            "T" | "TB" => 40,
            _ => return None,
        };
        n.checked_mul(1u64 << shift).map(Self)
    }

    fn from_integer(n: u64) -> Option<Self> {
        Some(Self(n))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_quantity(d)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u32, &str); 4] = [(40, "TB"), (30, "GB"), (20, "MB"), (10, "KB")];
        for (shift, unit) in UNITS {
            let size = 1u64 << shift;
            if self.0 >= size && self.0 % size == 0 {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// A length of time, written `500ms`, `15s`, `1m`, `2h`, `1d` or a
/// concatenation such as `1h30m`. A plain integer is milliseconds, as in
/// EMQX's `duration` type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// `n` milliseconds.
    pub const fn millis(n: u64) -> Self {
        Self(std::time::Duration::from_millis(n))
    }

    /// `n` seconds.
    pub const fn secs(n: u64) -> Self {
        Self(std::time::Duration::from_secs(n))
    }

    /// `n` minutes.
    pub const fn mins(n: u64) -> Self {
        Self::secs(n * 60)
    }

    /// `n` hours.
    pub const fn hours(n: u64) -> Self {
        Self::secs(n * 3600)
    }

    /// The standard-library duration.
    pub const fn get(self) -> std::time::Duration {
        self.0
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

impl Quantity for Duration {
    const EXPECTED: &'static str = "a duration such as 500ms, 15s, 1m, 2h or 1d";

    fn from_text(text: &str) -> Option<Self> {
        if text.is_empty() {
            return None;
        }
        if let Ok(ms) = text.parse::<u64>() {
            return Some(Self::millis(ms));
        }
        let mut total_ms: u64 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let digits_end = rest.find(|c: char| !c.is_ascii_digit())?;
            if digits_end == 0 {
                return None;
            }
            let n: u64 = rest[..digits_end].parse().ok()?;
            let after = &rest[digits_end..];
            let unit_end = after
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(after.len());
            let factor: u64 = match after[..unit_end].to_ascii_lowercase().as_str() {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return None,
            };
            total_ms = total_ms.checked_add(n.checked_mul(factor)?)?;
            rest = &after[unit_end..];
        }
        Some(Self::millis(total_ms))
    }

    fn from_integer(n: u64) -> Option<Self> {
        Some(Self::millis(n))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_quantity(d)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (size, unit) in [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
            (1, "ms"),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl Quantity for u64 {
    const EXPECTED: &'static str = "a non-negative integer";

    fn from_text(text: &str) -> Option<Self> {
        text.parse().ok()
    }

    fn from_integer(n: u64) -> Option<Self> {
        Some(n)
    }
}

impl Quantity for u16 {
    const EXPECTED: &'static str = "an integer between 0 and 65535";

    fn from_text(text: &str) -> Option<Self> {
        text.parse().ok()
    }

    fn from_integer(n: u64) -> Option<Self> {
        n.try_into().ok()
    }
}

/// A limit that may be `infinity` (EMQX's `max_connections = infinity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit<T = u64> {
    /// No limit.
    Infinity,
    /// At most this much.
    Finite(T),
}

impl<T: Copy> Limit<T> {
    /// The finite bound, or `None` for `infinity`.
    pub fn finite(self) -> Option<T> {
        match self {
            Self::Infinity => None,
            Self::Finite(v) => Some(v),
        }
    }
}

impl<'de, T: Quantity> Deserialize<'de> for Limit<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KeywordOr::<T>::new("infinity"))
            .map(|v| v.map_or(Self::Infinity, Self::Finite))
    }
}

impl<T: fmt::Display> fmt::Display for Limit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Infinity => f.write_str("infinity"),
            Self::Finite(v) => v.fmt(f),
        }
    }
}

/// Visits a [`Quantity`] or one keyword (`infinity`, `disabled`) which maps
/// to `None`.
struct KeywordOr<T> {
    keyword: &'static str,
    marker: PhantomData<T>,
}

impl<T> KeywordOr<T> {
    fn new(keyword: &'static str) -> Self {
        Self {
            keyword,
            marker: PhantomData,
        }
    }
}

impl<'de, T: Quantity> Visitor<'de> for KeywordOr<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} or {}", T::EXPECTED, self.keyword)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        T::from_integer(n)
            .map(Some)
            .ok_or_else(|| E::invalid_value(Unexpected::Unsigned(n), &self))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        u64::try_from(n)
            .ok()
            .and_then(T::from_integer)
            .map(Some)
            .ok_or_else(|| E::invalid_value(Unexpected::Signed(n), &self))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        let text = s.trim();
        if text.eq_ignore_ascii_case(self.keyword) {
            return Ok(None);
        }
        T::from_text(text)
            .map(Some)
            .ok_or_else(|| E::invalid_value(Unexpected::Str(s), &self))
    }
}

/// `deserialize_with` helper for EMQX settings that take `disabled` or a
/// value (`server_keepalive = disabled`, `sys_msg_interval = 1m`).
pub(crate) fn disabled_or<'de, D: Deserializer<'de>, T: Quantity>(
    d: D,
) -> Result<Option<T>, D::Error> {
    d.deserialize_any(KeywordOr::<T>::new("disabled"))
}

/// `deserialize_with` helper for lists that EMQX also accepts as one
/// comma-separated string (`core_nodes = "a@h1, b@h2"`, `ciphers`).
pub(crate) fn comma_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + Deserialize<'de>,
{
    struct ListVisitor<T>(PhantomData<T>);

    impl<'de, T: FromStr + Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list, or a comma-separated string")
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<T>, E> {
            s.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| {
                    item.parse()
                        .map_err(|_| E::invalid_value(Unexpected::Str(item), &self))
                })
                .collect()
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element()? {
                out.push(item);
            }
            Ok(out)
        }
    }

    d.deserialize_any(ListVisitor(PhantomData))
}

/// A listening address: `"0.0.0.0:1883"`, `"[::]:1883"` or a bare port
/// (`1883`, meaning all IPv4 interfaces), as EMQX's `bind` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Bind(pub SocketAddr);

impl Bind {
    /// Listen on all IPv4 interfaces on `port`.
    pub const fn any(port: u16) -> Self {
        Self(SocketAddr::new(
            std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port,
        ))
    }

    /// The socket address.
    pub const fn addr(self) -> SocketAddr {
        self.0
    }
}

impl Quantity for Bind {
    const EXPECTED: &'static str = "an address such as 0.0.0.0:1883 or a port";

    fn from_text(text: &str) -> Option<Self> {
        if let Ok(port) = text.parse::<u16>() {
            return Some(Self::any(port));
        }
        text.parse().ok().map(Self)
    }

    fn from_integer(n: u64) -> Option<Self> {
        u16::try_from(n).ok().map(Self::any)
    }
}

impl<'de> Deserialize<'de> for Bind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_quantity(d)
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An Erlang-style node name `name@host` (`girder1@10.0.0.5`,
/// `emqx@node1.emqx.io`). The host is an IP address or a DNS name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeName {
    name: String,
    host: String,
}

/// What a node name looks like, completing "expected ...".
pub(crate) const NODE_NAME_EXPECTED: &str = "a node name of the form name@host";

/// Error from [`NodeName::from_str`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not {NODE_NAME_EXPECTED}")]
pub struct NodeNameError {
    text: String,
}

impl NodeName {
    /// Builds a node name from its two parts, checking both.
    pub fn new(name: &str, host: &str) -> Result<Self, NodeNameError> {
        format!("{name}@{host}").parse()
    }

    /// `girder@127.0.0.1`, the default.
    pub(crate) fn girder_local() -> Self {
        Self {
            name: "girder".to_owned(),
            host: "127.0.0.1".to_owned(),
        }
    }

    /// The part before `@`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The part after `@`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The integer just left of the `@` (`emqx2@h` → 2), which EMQX adds to
    /// the base distribution port 4370; `None` when the name ends in a letter.
    pub fn port_offset(&self) -> Option<u64> {
        let stem = self.name.trim_end_matches(|c: char| c.is_ascii_digit());
        let digits = &self.name[stem.len()..];
        if digits.is_empty() {
            return None;
        }
        // Too many digits for a u64 is certainly out of the port range.
        Some(digits.parse().unwrap_or(u64::MAX))
    }
}

impl FromStr for NodeName {
    type Err = NodeNameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || NodeNameError {
            text: text.to_owned(),
        };
        let (name, host) = text.split_once('@').ok_or_else(err)?;
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
        if name_ok && host_ok {
            Ok(Self {
                name: name.to_owned(),
                host: host.to_owned(),
            })
        } else {
            Err(err())
        }
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.host)
    }
}

impl<'de> Deserialize<'de> for NodeName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NodeNameVisitor;

        impl Visitor<'_> for NodeNameVisitor {
            type Value = NodeName;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(NODE_NAME_EXPECTED)
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<NodeName, E> {
                s.trim()
                    .parse()
                    .map_err(|_| E::invalid_value(Unexpected::Str(s), &self))
            }
        }

        d.deserialize_str(NodeNameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_use_binary_units() {
        assert_eq!(ByteSize::from_text("1MB"), Some(ByteSize(1_048_576)));
        assert_eq!(ByteSize::from_text("4KB"), Some(ByteSize(4096)));
        assert_eq!(ByteSize::from_text("4kb"), Some(ByteSize(4096)));
        assert_eq!(ByteSize::from_text("2G"), Some(ByteSize(2 << 30)));
        assert_eq!(ByteSize::from_text("123"), Some(ByteSize(123)));
        assert_eq!(ByteSize::from_text("12XB"), None);
        assert_eq!(ByteSize::from_text("MB"), None);
        assert_eq!(ByteSize::from_text("99999999999TB"), None);
        assert_eq!(ByteSize::mb(50).to_string(), "50MB");
        assert_eq!(ByteSize(1000).to_string(), "1000");
    }

    #[test]
    fn durations_accept_emqx_units_and_concatenations() {
        assert_eq!(Duration::from_text("15s"), Some(Duration::secs(15)));
        assert_eq!(Duration::from_text("2h"), Some(Duration::hours(2)));
        assert_eq!(Duration::from_text("1m"), Some(Duration::mins(1)));
        assert_eq!(Duration::from_text("500ms"), Some(Duration::millis(500)));
        assert_eq!(Duration::from_text("1d"), Some(Duration::hours(24)));
        assert_eq!(Duration::from_text("1h30m"), Some(Duration::mins(90)));
        assert_eq!(Duration::from_text("250"), Some(Duration::millis(250)));
        for bad in ["", "s", "15x", "1.5s", "15s5", "-1s"] {
            assert_eq!(Duration::from_text(bad), None, "{bad:?}");
        }
        assert_eq!(Duration::mins(90).to_string(), "1h30m");
        assert_eq!(Duration::millis(1500).to_string(), "1s500ms");
        assert_eq!(Duration::secs(0).to_string(), "0s");
    }

    #[test]
    fn bind_accepts_a_bare_port() {
        assert_eq!(Bind::from_text("1883"), Some(Bind::any(1883)));
        assert_eq!(Bind::from_integer(8883), Some(Bind::any(8883)));
        assert_eq!(
            Bind::from_text("127.0.0.1:1884").map(|b| b.to_string()),
            Some("127.0.0.1:1884".to_owned())
        );
        assert!(Bind::from_text("[::]:1883").is_some());
        assert_eq!(Bind::from_text("localhost"), None);
        assert_eq!(Bind::from_integer(70_000), None);
    }

    #[test]
    fn node_names_split_at_the_at_sign() {
        let n: NodeName = "emqx12@node1.emqx.io".parse().expect("valid name");
        assert_eq!((n.name(), n.host()), ("emqx12", "node1.emqx.io"));
        assert_eq!(n.port_offset(), Some(12));
        assert_eq!(
            NodeName::new("girder", "127.0.0.1").map(|n| n.port_offset()),
            Ok(None)
        );
        for bad in ["girder", "@host", "name@", "a@b@c", "na me@h", "n@h/x"] {
            assert!(bad.parse::<NodeName>().is_err(), "{bad:?}");
        }
    }
}

/// Serializes a value as the text the configuration would spell it with.
macro_rules! serialize_as_text {
    ($($ty:ty),+) => {$(
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )+};
}

serialize_as_text!(ByteSize, Duration, Bind, NodeName);

impl<T: serde::Serialize> serde::Serialize for Limit<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Infinity => s.serialize_str("infinity"),
            Self::Finite(v) => v.serialize(s),
        }
    }
}
