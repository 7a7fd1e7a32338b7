//! A serde deserializer over the merged `config::Value` tree that knows where
//! it is: every error carries the dotted key path, the value found there and
//! the layer that set it.
//!
//! It also applies HOCON's scalar coercions, which matter because values from
//! environment variables and from quoted HOCON strings arrive as text: `"64"`
//! reads as an integer, `"true"` as a boolean, `64` as the string `"64"`.

use std::fmt;

use config::{Value, ValueKind};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use crate::error::ConfigError;

/// Deserializes `T` from the root of a merged tree.
pub(crate) fn from_value<T: de::DeserializeOwned>(root: &Value) -> Result<T, ConfigError> {
    T::deserialize(De {
        value: root,
        path: String::new(),
    })
    .map_err(DeError::into_config_error)
}

/// Renders a value compactly, in HOCON style, for error messages.
pub(crate) fn display(value: &Value) -> String {
    const MAX: usize = 120;
    let mut out = match &value.kind {
        ValueKind::Nil => "null".to_owned(),
        ValueKind::Boolean(b) => b.to_string(),
        ValueKind::I64(n) => n.to_string(),
        ValueKind::I128(n) => n.to_string(),
        ValueKind::U64(n) => n.to_string(),
        ValueKind::U128(n) => n.to_string(),
        ValueKind::Float(n) => n.to_string(),
        ValueKind::String(s) => format!("{s:?}"),
        ValueKind::Array(items) => {
            let items: Vec<String> = items.iter().map(display).collect();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Table(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k} = {}", display(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    };
    if out.len() > MAX {
        let mut cut = MAX;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

/// The layer that set `value`: its own origin, or for a table or list built
/// by the merge (which carries none), the origin of its first leaf.
pub(crate) fn any_origin(value: &Value) -> Option<String> {
    if let Some(origin) = value.origin() {
        return Some(origin.to_owned());
    }
    match &value.kind {
        ValueKind::Table(map) => map.values().find_map(any_origin),
        ValueKind::Array(items) => items.iter().find_map(any_origin),
        _ => None,
    }
}

/// Joins a parent path and a key (`mqtt` + `max_inflight`).
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// What went wrong, before the location is known.
#[derive(Debug)]
enum Kind {
    /// "expected ..." (from `invalid_type`, `invalid_value`, `unknown_variant`).
    Expected(String),
    /// A free-form message from a `Deserialize` impl.
    Message(String),
    UnknownField(String),
    MissingField(&'static str),
}

/// Where it went wrong.
#[derive(Debug)]
struct At {
    path: String,
    value: Option<String>,
    origin: Option<String>,
}

/// The deserializer's error: a [`Kind`] and, once known, where.
#[derive(Debug)]
pub(crate) struct DeError {
    kind: Kind,
    at: Option<At>,
}

impl DeError {
    fn new(kind: Kind) -> Self {
        Self { kind, at: None }
    }

    fn expected(what: impl Into<String>) -> Self {
        Self::new(Kind::Expected(what.into()))
    }

    fn into_config_error(self) -> ConfigError {
        let At {
            path,
            value,
            origin,
        } = self.at.unwrap_or(At {
            path: "(root)".to_owned(),
            value: None,
            origin: None,
        });
        let value = value.unwrap_or_default();
        match self.kind {
            Kind::UnknownField(_) => ConfigError::UnknownKey { path, origin },
            Kind::MissingField(_) => ConfigError::MissingKey { path },
            Kind::Expected(what) => ConfigError::Invalid {
                path,
                value,
                reason: format!("expected {what}"),
                origin,
            },
            Kind::Message(reason) => ConfigError::Invalid {
                path,
                value,
                reason,
                origin,
            },
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Expected(what) => write!(f, "expected {what}"),
            Kind::Message(msg) => f.write_str(msg),
            Kind::UnknownField(name) => write!(f, "unknown key {name}"),
            Kind::MissingField(name) => write!(f, "missing key {name}"),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new(Kind::Message(msg.to_string()))
    }

    fn invalid_type(_: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::expected(exp.to_string())
    }

    fn invalid_value(_: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::expected(exp.to_string())
    }

    fn invalid_length(_: usize, exp: &dyn de::Expected) -> Self {
        Self::expected(exp.to_string())
    }

    fn unknown_variant(_: &str, expected: &'static [&'static str]) -> Self {
        Self::expected(format!("one of {}", expected.join(", ")))
    }

    fn unknown_field(field: &str, _: &'static [&'static str]) -> Self {
        Self::new(Kind::UnknownField(field.to_owned()))
    }

    fn missing_field(field: &'static str) -> Self {
        Self::new(Kind::MissingField(field))
    }
}

/// Fills in the location of an error raised while reading `value` at `path`,
/// unless a deeper level already did.
fn locate<T>(value: &Value, path: &str, result: Result<T, DeError>) -> Result<T, DeError> {
    result.map_err(|mut e| {
        if e.at.is_none() {
            let (path, shown) = match &e.kind {
                Kind::MissingField(field) => (join(path, field), None),
                Kind::UnknownField(field) => (join(path, field), None),
                _ => (path.to_owned(), Some(display(value))),
            };
            e.at = Some(At {
                path,
                value: shown,
                origin: any_origin(value),
            });
        }
        e
    })
}

/// Deserializer for one value at one path.
struct De<'a> {
    value: &'a Value,
    path: String,
}

impl De<'_> {
    /// Fills in the location of an error raised while reading this value.
    fn locate<T>(&self, result: Result<T, DeError>) -> Result<T, DeError> {
        locate(self.value, &self.path, result)
    }

    fn fail<T>(&self, expected: impl Into<String>) -> Result<T, DeError> {
        self.locate(Err(DeError::expected(expected)))
    }

    /// The value as an integer within `min..=max`, with HOCON's coercions.
    fn integer(&self, min: i128, max: i128) -> Result<i128, DeError> {
        let expected = if min == 0 && max == i128::from(u64::MAX) {
            "a non-negative integer".to_owned()
        } else if min == i128::from(i64::MIN) && max == i128::from(i64::MAX) {
            "an integer".to_owned()
        } else {
            format!("an integer between {min} and {max}")
        };
        let n = match &self.value.kind {
            ValueKind::I64(n) => Some(i128::from(*n)),
            ValueKind::U64(n) => Some(i128::from(*n)),
            ValueKind::I128(n) => Some(*n),
            ValueKind::U128(n) => i128::try_from(*n).ok(),
            ValueKind::Float(f) if f.fract() == 0.0 && f.abs() < 1e18 => Some(*f as i128),
            ValueKind::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => self.fail(expected),
        }
    }

    fn float(&self) -> Result<f64, DeError> {
        match &self.value.kind {
            ValueKind::Float(f) => Ok(*f),
            ValueKind::I64(n) => Ok(*n as f64),
            ValueKind::U64(n) => Ok(*n as f64),
            ValueKind::String(s) => match s.trim().parse() {
                Ok(f) => Ok(f),
                Err(_) => self.fail("a number"),
            },
            _ => self.fail("a number"),
        }
    }

    /// The value as text, if it is a scalar (numbers and booleans read as
    /// their HOCON spelling).
    fn text(&self) -> Option<String> {
        match &self.value.kind {
            ValueKind::String(s) => Some(s.clone()),
            ValueKind::Boolean(b) => Some(b.to_string()),
            ValueKind::I64(n) => Some(n.to_string()),
            ValueKind::I128(n) => Some(n.to_string()),
            ValueKind::U64(n) => Some(n.to_string()),
            ValueKind::U128(n) => Some(n.to_string()),
            ValueKind::Float(n) => Some(n.to_string()),
            ValueKind::Nil | ValueKind::Table(_) | ValueKind::Array(_) => None,
        }
    }
}

macro_rules! deserialize_integer {
    ($($method:ident: $ty:ty => $visit:ident as $wide:ty;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let n = self.integer(i128::from(<$ty>::MIN), i128::from(<$ty>::MAX))?;
            // In range by construction: `integer` checked the bounds of $ty.
            let n = n as $wide;
            self.locate(visitor.$visit(n))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.value.kind {
            ValueKind::Nil => visitor.visit_unit(),
            ValueKind::Boolean(b) => visitor.visit_bool(*b),
            ValueKind::I64(n) => visitor.visit_i64(*n),
            ValueKind::I128(n) => visitor.visit_i128(*n),
            ValueKind::U64(n) => visitor.visit_u64(*n),
            ValueKind::U128(n) => visitor.visit_u128(*n),
            ValueKind::Float(f) => visitor.visit_f64(*f),
            ValueKind::String(s) => visitor.visit_str(s),
            ValueKind::Array(items) => visitor.visit_seq(SeqDe::new(items.iter(), &self.path)),
            ValueKind::Table(map) => visitor.visit_map(MapDe::new(map, &self.path)),
        };
        self.locate(result)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let b = match &self.value.kind {
            ValueKind::Boolean(b) => Some(*b),
            ValueKind::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" => Some(true),
                "false" | "no" | "off" => Some(false),
                _ => None,
            },
            _ => None,
        };
        match b {
            Some(b) => self.locate(visitor.visit_bool(b)),
            None => self.fail("true or false"),
        }
    }

    deserialize_integer! {
        deserialize_u8: u8 => visit_u64 as u64;
        deserialize_u16: u16 => visit_u64 as u64;
        deserialize_u32: u32 => visit_u64 as u64;
        deserialize_u64: u64 => visit_u64 as u64;
        deserialize_i8: i8 => visit_i64 as i64;
        deserialize_i16: i16 => visit_i64 as i64;
        deserialize_i32: i32 => visit_i64 as i64;
        deserialize_i64: i64 => visit_i64 as i64;
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let f = self.float()?;
        self.locate(visitor.visit_f64(f))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let f = self.float()?;
        self.locate(visitor.visit_f64(f))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.text() {
            Some(text) => self.locate(visitor.visit_string(text)),
            None => self.fail("a string"),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value.kind {
            ValueKind::Nil => visitor.visit_none(),
            _ => {
                let path = self.path.clone();
                visitor.visit_some(De {
                    value: self.value,
                    path,
                })
            }
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.locate(visitor.visit_unit())
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.value.kind {
            ValueKind::Array(items) => {
                let result = visitor.visit_seq(SeqDe::new(items.iter(), &self.path));
                self.locate(result)
            }
            // EMQX lets an array be written as a 1-based index map
            // (`authentication.1.enable = false`).
            ValueKind::Table(map) if index_map(map).is_some() => {
                let items = index_map(map).unwrap_or_default();
                let result = visitor.visit_seq(SeqDe::new(items.into_iter(), &self.path));
                self.locate(result)
            }
            _ => self.fail("a list"),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.value.kind {
            ValueKind::Table(map) => {
                let result = visitor.visit_map(MapDe::new(map, &self.path));
                self.locate(result)
            }
            _ => self.fail("an object such as { key = value }"),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.text() {
            Some(name) => {
                let result = visitor.visit_enum(UnitVariant { name: name.trim() });
                self.locate(result)
            }
            None => self.fail(format!("one of {}", variants.join(", "))),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit_struct tuple tuple_struct
    }
}

/// The elements of a table whose keys are exactly `1..=n`, in index order.
fn index_map(map: &config::Map<String, Value>) -> Option<Vec<&Value>> {
    let mut items: Vec<(usize, &Value)> = map
        .iter()
        .map(|(k, v)| k.parse::<usize>().ok().map(|i| (i, v)))
        .collect::<Option<_>>()?;
    items.sort_by_key(|(i, _)| *i);
    let dense = items.iter().enumerate().all(|(pos, (i, _))| *i == pos + 1);
    (dense && !items.is_empty()).then(|| items.into_iter().map(|(_, v)| v).collect())
}

struct SeqDe<'a, I> {
    items: I,
    index: usize,
    path: &'a str,
}

impl<'a, I> SeqDe<'a, I> {
    fn new(items: I, path: &'a str) -> Self {
        Self {
            items,
            index: 0,
            path,
        }
    }
}

impl<'de, 'v, I: Iterator<Item = &'v Value>> de::SeqAccess<'de> for SeqDe<'_, I> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(value) = self.items.next() else {
            return Ok(None);
        };
        self.index += 1;
        // 1-based, as EMQX numbers array elements in paths.
        let path = join(self.path, &self.index.to_string());
        let result = seed.deserialize(De {
            value,
            path: path.clone(),
        });
        locate(value, &path, result).map(Some)
    }
}

struct MapDe<'a> {
    entries: std::vec::IntoIter<(&'a String, &'a Value)>,
    pending: Option<(&'a String, &'a Value)>,
    path: &'a str,
}

impl<'a> MapDe<'a> {
    fn new(map: &'a config::Map<String, Value>, path: &'a str) -> Self {
        Self {
            entries: map.iter().collect::<Vec<_>>().into_iter(),
            pending: None,
            path,
        }
    }
}

impl<'de> de::MapAccess<'de> for MapDe<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some((key, value));
        seed.deserialize(key.as_str().into_deserializer())
            .map(Some)
            .map_err(|mut e: DeError| {
                e.at = Some(At {
                    path: join(self.path, key),
                    value: None,
                    origin: any_origin(value),
                });
                e
            })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, value)) = self.pending.take() else {
            return Err(de::Error::custom("value requested before key"));
        };
        let path = join(self.path, key);
        let result = seed.deserialize(De {
            value,
            path: path.clone(),
        });
        locate(value, &path, result)
    }
}

/// An enum variant written as a bare name (`role = core`).
struct UnitVariant<'a> {
    name: &'a str,
}

impl<'de> de::EnumAccess<'de> for UnitVariant<'_> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), DeError> {
        let variant = seed.deserialize(self.name.into_deserializer())?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariant<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _: T) -> Result<T::Value, DeError> {
        Err(DeError::expected("a plain name"))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, DeError> {
        Err(DeError::expected("a plain name"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, DeError> {
        Err(DeError::expected("a plain name"))
    }
}
