//! The layers, as `config` crate sources: HOCON text and files, Girder's and
//! EMQX's environment variables, and `key.path=value` overrides.
//!
//! Each source parses eagerly (so a syntax error is reported when the source
//! is made, with its file name and line) into a tree of `config::Value`s
//! whose origin names the layer, e.g. `/etc/girder.conf` or
//! `env GIRDER_NODE__NAME`. `config::ConfigBuilder` then deep-merges the
//! trees in the order the sources were added.
//!
//! Workarounds for what the `config` crate does not do: its `Environment`
//! source cannot parse `[a@h1, b@h2]` into a list and has no HOCON reader, so
//! both are implemented here; its deep merge replaces arrays whole, which is
//! also EMQX's behaviour. Keys are never lower-cased by `config` 0.15 when a
//! source returns nested tables, so listener names keep their case in files.

use std::collections::HashMap;
use std::error::Error;
use std::path::Path;

use config::{Map, Value, ValueKind};
use hocon::{HoconError, HoconValue, ScalarType};

use crate::de::{display, join};
use crate::error::{ConfigError, Warning};
use crate::schema::ROOTS;

/// A tree of values, the unit every source produces.
type Tree = Map<String, Value>;

/// A HOCON document as a configuration layer.
#[derive(Clone, Debug)]
pub struct HoconSource {
    tree: Tree,
}

impl HoconSource {
    /// Parses HOCON text; `origin` names it in error messages. Substitutions
    /// (`${?VAR}`) are resolved against `env` only.
    pub fn from_text(
        origin: &str,
        text: &str,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let doc = hocon::parse_with_env(text, env).map_err(|e| hocon_error(origin, e))?;
        Self::from_document(origin, &doc)
    }

    /// Reads and parses a HOCON file; `include` paths are relative to it.
    pub fn from_file(path: &Path, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let doc = hocon::parse_file_with_env(path, env).map_err(|e| match e {
            HoconError::Io(source) => ConfigError::Io {
                path: path.to_owned(),
                source,
            },
            other => hocon_error(&origin, other),
        })?;
        Self::from_document(&origin, &doc)
    }

    fn from_document(origin: &str, doc: &hocon::Config) -> Result<Self, ConfigError> {
        let origin = origin.to_owned();
        let mut tree = Tree::new();
        for key in doc.keys() {
            let lookup = if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                key.to_owned()
            } else {
                format!("{key:?}")
            };
            let value = doc.get(&lookup).ok_or_else(|| ConfigError::Syntax {
                origin: origin.clone(),
                line: 1,
                column: 1,
                message: format!("cannot read top-level key {key:?}"),
            })?;
            tree.insert(key.to_owned(), convert(value, &origin, key)?);
        }
        normalize_aliases(&mut tree)?;
        Ok(Self { tree })
    }
}

impl config::Source for HoconSource {
    fn clone_into_box(&self) -> Box<dyn config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Tree, config::ConfigError> {
        Ok(self.tree.clone())
    }
}

/// HOCON as a `config` file format, so `config::File::new("girder", Hocon)`
/// also reads Girder files (without Girder's own error messages).
#[derive(Clone, Copy, Debug, Default)]
pub struct Hocon;

impl config::Format for Hocon {
    fn parse(
        &self,
        uri: Option<&String>,
        text: &str,
    ) -> Result<Tree, Box<dyn Error + Send + Sync>> {
        let origin = uri.map_or("hocon", String::as_str);
        Ok(HoconSource::from_text(origin, text, &HashMap::new())?.tree)
    }
}

impl config::FileStoredFormat for Hocon {
    fn file_extensions(&self) -> &'static [&'static str] {
        &["conf", "hocon"]
    }
}

fn hocon_error(origin: &str, e: HoconError) -> ConfigError {
    let (line, column, message) = match e {
        HoconError::Parse(p) => (p.line, p.col, p.message),
        HoconError::Resolve(r) => (r.line, r.col, format!("{} ({})", r.message, r.path)),
        other => (1, 1, other.to_string()),
    };
    ConfigError::Syntax {
        origin: origin.to_owned(),
        line,
        column,
        message,
    }
}

/// Converts a HOCON value into a `config` value tagged with its origin.
fn convert(value: &HoconValue, origin: &String, path: &str) -> Result<Value, ConfigError> {
    let kind = match value {
        HoconValue::Object(map) => {
            let mut table = Tree::new();
            for (k, v) in map {
                table.insert(k.clone(), convert(v, origin, &join(path, k))?);
            }
            ValueKind::Table(table)
        }
        HoconValue::Array(items) => ValueKind::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| convert(v, origin, &join(path, &(i + 1).to_string())))
                .collect::<Result<_, _>>()?,
        ),
        HoconValue::Scalar(s) => match s.value_type {
            ScalarType::Number => {
                number(&s.raw).unwrap_or_else(|| ValueKind::String(s.raw.clone()))
            }
            ScalarType::Boolean => value
                .as_bool()
                .map_or_else(|| ValueKind::String(s.raw.clone()), ValueKind::Boolean),
            ScalarType::Null => ValueKind::Nil,
            _ => ValueKind::String(s.raw.clone()),
        },
        _ => {
            return Err(ConfigError::Syntax {
                origin: origin.clone(),
                line: 1,
                column: 1,
                message: format!("unresolved substitution at {path}"),
            })
        }
    };
    Ok(Value::new(Some(origin), kind))
}

/// A number in its narrowest exact `config` kind.
fn number(text: &str) -> Option<ValueKind> {
    if let Ok(n) = text.parse::<i64>() {
        return Some(ValueKind::I64(n));
    }
    if let Ok(n) = text.parse::<u64>() {
        return Some(ValueKind::U64(n));
    }
    let numeric = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    if numeric {
        text.parse::<f64>().ok().map(ValueKind::Float)
    } else {
        None
    }
}

/// Parses a value given as text (an environment variable or an override), as
/// EMQX does: as a HOCON value where it is one, else as a plain string.
///
/// - `[..]`, `{..}` and `"..."` are parsed as HOCON. A list that is not valid
///   HOCON (`[a@h1, b@h2]`: an unquoted `@` is not allowed) is split at its
///   top-level commas, each item read on its own.
/// - Anything else is a boolean or a number when it is exactly one, else the
///   text itself. It is deliberately not run through the HOCON parser, which
///   would cut `abc#def` at the comment sign and read `host:1883` as an
///   object.
pub(crate) fn parse_text_value(raw: &str, origin: &String) -> Value {
    let text = raw.trim();
    if text.starts_with(['[', '{', '"']) {
        if let Some(v) = parse_hocon_value(text, origin) {
            return v;
        }
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            let items = split_top_level(inner)
                .into_iter()
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| parse_text_value(item, origin))
                .collect::<Vec<_>>();
            return Value::new(Some(origin), ValueKind::Array(items));
        }
        return Value::new(Some(origin), text.to_owned());
    }
    let kind = match text {
        "true" => ValueKind::Boolean(true),
        "false" => ValueKind::Boolean(false),
        _ => number(text).unwrap_or_else(|| ValueKind::String(text.to_owned())),
    };
    Value::new(Some(origin), kind)
}

fn parse_hocon_value(text: &str, origin: &String) -> Option<Value> {
    let doc = hocon::parse_with_env(&format!("v = {text}"), &HashMap::new()).ok()?;
    convert(doc.get("v")?, origin, "").ok()
}

/// Splits at commas outside double quotes and nested brackets.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut escaped, mut start) = (0usize, false, false, 0);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '[' | '{' if !quoted => depth += 1,
            ']' | '}' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Sets `value` at `path` in `tree`, creating (or replacing non-table)
/// intermediate tables.
fn insert_path(tree: &mut Tree, path: &[String], value: Value, origin: &String) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut table = tree;
    for key in parents {
        let entry = table
            .entry(key.clone())
            .or_insert_with(|| Value::new(Some(origin), Tree::new()));
        if !matches!(entry.kind, ValueKind::Table(_)) {
            *entry = Value::new(Some(origin), Tree::new());
        }
        let ValueKind::Table(inner) = &mut entry.kind else {
            return;
        };
        table = inner;
    }
    table.insert(last.clone(), value);
}

/// Old EMQX key names and where they live now: `node.db_role` (EMQX 5.0) is
/// `node.role`, `node.db_backend` is `cluster.db_backend`, and
/// `log.console_handler` is `log.console`.
const ALIASES: [(&[&str], &[&str]); 3] = [
    (&["node", "db_role"], &["node", "role"]),
    (&["node", "db_backend"], &["cluster", "db_backend"]),
    (&["log", "console_handler"], &["log", "console"]),
];

/// Moves aliased keys to their current names within one layer, so that the
/// layers' precedence applies whichever spelling each layer uses.
pub(crate) fn normalize_aliases(tree: &mut Tree) -> Result<(), ConfigError> {
    for (from, to) in ALIASES {
        let Some(value) = remove_path(tree, from) else {
            continue;
        };
        let target: Vec<String> = to.iter().map(|s| (*s).to_owned()).collect();
        match get_path_mut(tree, to) {
            None => {
                let origin = value.origin().map(str::to_owned).unwrap_or_default();
                insert_path(tree, &target, value, &origin);
            }
            Some(existing) => merge_alias(existing, value, &from.join("."), &to.join("."))?,
        }
    }
    Ok(())
}

/// Merges an aliased value into the value already set under the current
/// name: tables merge key by key (`log.console_handler.enable` beside
/// `log.console.level`); a leaf set under both names must agree.
fn merge_alias(
    existing: &mut Value,
    incoming: Value,
    from: &str,
    to: &str,
) -> Result<(), ConfigError> {
    if let (ValueKind::Table(current), ValueKind::Table(extra)) =
        (&mut existing.kind, &incoming.kind)
    {
        for (key, value) in extra {
            match current.get_mut(key) {
                Some(slot) => merge_alias(slot, value.clone(), &join(from, key), &join(to, key))?,
                None => {
                    current.insert(key.clone(), value.clone());
                }
            }
        }
        return Ok(());
    }
    if existing.kind == incoming.kind {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        path: from.to_owned(),
        value: display(&incoming),
        reason: format!(
            "expected the same value as {to} = {} set beside it",
            display(existing)
        ),
        origin: incoming.origin().map(str::to_owned),
    })
}

fn get_path_mut<'t>(tree: &'t mut Tree, path: &[&str]) -> Option<&'t mut Value> {
    let (first, rest) = path.split_first()?;
    let mut value = tree.get_mut(*first)?;
    for key in rest {
        let ValueKind::Table(table) = &mut value.kind else {
            return None;
        };
        value = table.get_mut(*key)?;
    }
    Some(value)
}

#[cfg(test)]
fn get_path<'t>(tree: &'t Tree, path: &[&str]) -> Option<&'t Value> {
    let (first, rest) = path.split_first()?;
    let mut value = tree.get(*first)?;
    for key in rest {
        let ValueKind::Table(table) = &value.kind else {
            return None;
        };
        value = table.get(*key)?;
    }
    Some(value)
}

fn remove_path(tree: &mut Tree, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut table = tree;
    for key in parents {
        let ValueKind::Table(inner) = &mut table.get_mut(*key)?.kind else {
            return None;
        };
        table = inner;
    }
    table.shift_remove(*last)
}

/// One environment variable mapped to a key path.
#[derive(Clone, Debug)]
struct EnvEntry {
    var: String,
    path: Vec<String>,
    value: Value,
}

/// Environment variables with one prefix (`GIRDER_` or `EMQX_`) as a layer:
/// the prefix is removed, the rest lower-cased, `__` becomes `.`, and the
/// value is parsed by [`parse_text_value`]. Variables whose first segment is
/// not a configuration root are ignored (launcher variables such as
/// `EMQX_HOST` share the prefix). `<PREFIX>NODE_NAME` and `<PREFIX>NODE_COOKIE`,
/// the single-underscore launcher spellings, are read as `node.name` and
/// `node.cookie` unless the `__` spelling is also set.
#[derive(Clone, Debug)]
pub struct EnvSource {
    entries: Vec<EnvEntry>,
}

impl EnvSource {
    /// Selects and parses the variables with `prefix` from `vars`.
    pub fn new(prefix: &str, vars: &[(String, String)]) -> Self {
        let mut legacy = Vec::new();
        let mut entries = Vec::new();
        for (var, raw) in vars {
            let Some(rest) = var.strip_prefix(prefix) else {
                continue;
            };
            let path: Vec<String> = match rest {
                "NODE_NAME" => vec!["node".into(), "name".into()],
                "NODE_COOKIE" => vec!["node".into(), "cookie".into()],
                _ => rest.to_lowercase().split("__").map(str::to_owned).collect(),
            };
            if !ROOTS.contains(&path[0].as_str()) {
                continue;
            }
            let origin = format!("env {var}");
            let entry = EnvEntry {
                var: var.clone(),
                value: parse_text_value(raw, &origin),
                path,
            };
            if rest.contains("__") {
                entries.push(entry);
            } else {
                legacy.push(entry);
            }
        }
        legacy.extend(entries);
        Self { entries: legacy }
    }

    /// Drops the variable `var`; returns its key path if it was present.
    pub(crate) fn remove(&mut self, var: &str) -> Option<String> {
        let pos = self.entries.iter().position(|e| e.var == var)?;
        Some(self.entries.remove(pos).path.join("."))
    }

    /// The key path variable `var` maps to, if this source has it.
    pub(crate) fn path_of(&self, var: &str) -> Option<String> {
        self.entries
            .iter()
            .find(|e| e.var == var)
            .map(|e| e.path.join("."))
    }

    /// Drops variables with an empty path segment (`GIRDER_MQTT____X`),
    /// reporting each as a warning.
    pub(crate) fn take_malformed(&mut self) -> Vec<Warning> {
        let (bad, good) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|e: &EnvEntry| e.path.iter().any(String::is_empty));
        self.entries = good;
        bad.into_iter()
            .map(|e| Warning::UnknownEnvVar {
                path: e.path.join("."),
                var: e.var,
            })
            .collect()
    }

    fn tree(&self) -> Result<Tree, ConfigError> {
        let mut tree = Tree::new();
        for e in &self.entries {
            let origin = format!("env {}", e.var);
            insert_path(&mut tree, &e.path, e.value.clone(), &origin);
        }
        normalize_aliases(&mut tree)?;
        Ok(tree)
    }

    /// Checks that the variables form a valid layer (no conflicting aliases).
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        self.tree().map(drop)
    }
}

impl config::Source for EnvSource {
    fn clone_into_box(&self) -> Box<dyn config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Tree, config::ConfigError> {
        self.tree()
            .map_err(|e| config::ConfigError::Foreign(Box::new(e)))
    }
}

/// Command-line overrides, `key.path=value` each, as the top layer.
#[derive(Clone, Debug)]
pub struct OverrideSource {
    tree: Tree,
}

impl OverrideSource {
    /// Parses the overrides; later ones win over earlier ones.
    pub fn new(args: &[String]) -> Result<Self, ConfigError> {
        let mut tree = Tree::new();
        for arg in args {
            let bad = || ConfigError::BadOverride { arg: arg.clone() };
            let (key, raw) = arg.split_once('=').ok_or_else(bad)?;
            let path: Vec<String> = key.trim().split('.').map(str::to_owned).collect();
            if path.iter().any(String::is_empty) {
                return Err(bad());
            }
            let origin = format!("override {}", key.trim());
            insert_path(&mut tree, &path, parse_text_value(raw, &origin), &origin);
        }
        normalize_aliases(&mut tree)?;
        Ok(Self { tree })
    }
}

impl config::Source for OverrideSource {
    fn clone_into_box(&self) -> Box<dyn config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Tree, config::ConfigError> {
        Ok(self.tree.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ValueKind {
        parse_text_value(text, &"test".to_owned()).kind
    }

    fn strings(kind: &ValueKind) -> Vec<String> {
        match kind {
            ValueKind::Array(items) => items
                .iter()
                .map(|v| match &v.kind {
                    ValueKind::String(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .collect(),
            other => panic!("not a list: {other:?}"),
        }
    }

    #[test]
    fn text_values_parse_like_emqx_env_values() {
        assert_eq!(parse("64"), ValueKind::I64(64));
        assert_eq!(parse("1.5"), ValueKind::Float(1.5));
        assert_eq!(parse("true"), ValueKind::Boolean(true));
        assert_eq!(parse("replicant"), ValueKind::String("replicant".into()));
        assert_eq!(parse("infinity"), ValueKind::String("infinity".into()));
        assert_eq!(parse("abc#def"), ValueKind::String("abc#def".into()));
        assert_eq!(parse("host:1883"), ValueKind::String("host:1883".into()));
        assert_eq!(
            parse("\"0.0.0.0:1884\""),
            ValueKind::String("0.0.0.0:1884".into())
        );
        assert_eq!(strings(&parse("[a@h1, b@h2]")), ["a@h1", "b@h2"]);
        assert_eq!(strings(&parse("[\"x\", \"y\"]")), ["x", "y"]);
        assert_eq!(strings(&parse("[a@h1, \"b,c\"]")), ["a@h1", "b,c"]);
        assert_eq!(strings(&parse("[]")), Vec::<String>::new());
        let ValueKind::Table(t) = parse("{bind = 8883, enable = true}") else {
            panic!("not a table");
        };
        assert_eq!(t.get("bind").map(|v| &v.kind), Some(&ValueKind::I64(8883)));
    }

    #[test]
    fn aliases_move_within_a_layer_and_conflicts_are_reported() {
        let mut src = HoconSource::from_text("t", "node.db_role = replicant", &HashMap::new())
            .expect("parses")
            .tree;
        normalize_aliases(&mut src).expect("no conflict");
        assert_eq!(
            get_path(&src, &["node", "role"]).map(|v| &v.kind),
            Some(&ValueKind::String("replicant".into()))
        );
        assert!(get_path(&src, &["node", "db_role"]).is_none());
        let err = HoconSource::from_text(
            "t",
            "node { role = core, db_role = replicant }",
            &HashMap::new(),
        )
        .expect_err("conflict");
        assert_eq!(err.path(), Some("node.db_role"));
    }
}
