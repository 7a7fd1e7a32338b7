//! The rows a node holds, with no I/O: consensus tables (one value per key)
//! and owned tables (one value per key and owner), plus the watchers that see
//! every change.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::options::NodeName;

/// How a shard is replicated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShardKind {
    /// One log agreed by the cores (Raft); majority writes.
    Consensus,
    /// Every node writes its own rows locally; per-owner streams.
    Owned,
}

/// One change to one row, as watchers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The table.
    pub table: String,
    /// The row's key.
    pub key: Bytes,
    /// For owned tables, the node that owns the row.
    pub owner: Option<NodeName>,
    /// The new value; `None` when the row was deleted.
    pub value: Option<Bytes>,
}

/// The owners of one owned key and their values, sorted by owner. Most keys
/// have one owner (a client id, a route of one node), so this is a vector
/// that grows from one slot, not a map with a node of its own per key.
#[derive(Debug, Default)]
struct Owners(Vec<(NodeName, Bytes)>);

impl Owners {
    fn find(&self, owner: &NodeName) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.cmp(owner))
    }

    fn get(&self, owner: &NodeName) -> Option<&Bytes> {
        self.find(owner).ok().map(|i| &self.0[i].1)
    }

    fn insert(&mut self, owner: NodeName, value: Bytes) -> Option<Bytes> {
        match self.find(&owner) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                if self.0.capacity() == 0 {
                    self.0.reserve_exact(1);
                }
                self.0.insert(i, (owner, value));
                None
            }
        }
    }

    fn remove(&mut self, owner: &NodeName) -> Option<Bytes> {
        self.find(owner).ok().map(|i| self.0.remove(i).1)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = (&NodeName, &Bytes)> {
        self.0.iter().map(|(n, v)| (n, v))
    }
}

/// One op of a write: put `value` under `key`, or delete `key` (`None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The table.
    pub table: String,
    /// The key.
    pub key: Bytes,
    /// The value, or `None` to delete.
    pub value: Option<Bytes>,
}

impl Op {
    /// A put.
    pub fn put(table: &str, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        Self {
            table: table.to_owned(),
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// A delete.
    pub fn delete(table: &str, key: impl Into<Bytes>) -> Self {
        Self {
            table: table.to_owned(),
            key: key.into(),
            value: None,
        }
    }

    /// A guard for a compare-and-set in a consensus write: the `then` ops
    /// that follow it in the same write are applied only if `key` in
    /// `table` holds `expected` (`None`: the key is absent) when the entry
    /// is applied; otherwise they are skipped. Every node applies the same
    /// entries to the same rows, so every node makes the same choice. The
    /// guard itself changes no row. Its form is a key starting with
    /// [`GUARD_PREFIX`]; owned tables do not interpret it.
    pub fn guard(table: &str, key: impl AsRef<[u8]>, expected: Option<Bytes>, then: u32) -> Self {
        let mut k = Vec::with_capacity(GUARD_PREFIX.len() + 12 + key.as_ref().len());
        k.extend_from_slice(GUARD_PREFIX);
        k.extend_from_slice(then.to_string().as_bytes());
        k.push(0);
        k.extend_from_slice(key.as_ref());
        Self {
            table: table.to_owned(),
            key: k.into(),
            value: expected,
        }
    }

    /// For a guard op: (ops it covers, the guarded key).
    fn as_guard(&self) -> Option<(usize, &[u8])> {
        let rest = self.key.strip_prefix(GUARD_PREFIX)?;
        let at = rest.iter().position(|b| *b == 0)?;
        let then = std::str::from_utf8(&rest[..at]).ok()?.parse().ok()?;
        Some((then, &rest[at + 1..]))
    }
}

/// The key prefix of a guard op ([`Op::guard`]); MQTT client ids and topics
/// cannot contain NUL, so no row of the broker's tables starts with it.
pub const GUARD_PREFIX: &[u8] = b"\0guard\0";

#[derive(Debug, Default)]
struct Table {
    /// Consensus rows.
    rows: BTreeMap<Bytes, Bytes>,
    /// Owned rows: key → owner → value.
    owned: BTreeMap<Bytes, Owners>,
    /// Owned row count (the sum over `owned`).
    owned_count: usize,
}

/// Every table of every shard this node holds.
#[derive(Debug)]
pub(crate) struct Store {
    tables: HashMap<String, Table>,
    shard_of: HashMap<String, (String, ShardKind)>,
    watchers: HashMap<String, broadcast::Sender<Change>>,
}

/// The capacity of a watcher's channel; a watcher that falls further behind
/// gets `Lagged` and should re-read the table.
const WATCH_CAPACITY: usize = 4096;

impl Store {
    /// A store with the given tables: name → (shard, kind).
    pub(crate) fn new(shard_of: HashMap<String, (String, ShardKind)>) -> Self {
        let tables = shard_of
            .keys()
            .map(|t| (t.clone(), Table::default()))
            .collect();
        Self {
            tables,
            shard_of,
            watchers: HashMap::new(),
        }
    }

    /// The shard and kind of a table.
    pub(crate) fn shard_of(&self, table: &str) -> Option<&(String, ShardKind)> {
        self.shard_of.get(table)
    }

    fn emit(&mut self, change: Change) {
        if let Some(tx) = self.watchers.get(&change.table) {
            if tx.send(change.clone()).is_err() {
                self.watchers.remove(&change.table);
            }
        }
    }

    /// Watches a table's changes.
    pub(crate) fn watch(&mut self, table: &str) -> broadcast::Receiver<Change> {
        self.watchers
            .entry(table.to_owned())
            .or_insert_with(|| broadcast::channel(WATCH_CAPACITY).0)
            .subscribe()
    }

    /// Applies consensus ops (unknown tables are skipped: a newer peer's table).
    pub(crate) fn apply(&mut self, ops: &[Op]) {
        let mut skip = 0;
        for op in ops {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            if let Some((then, key)) = op.as_guard() {
                let current = self.tables.get(&op.table).and_then(|t| t.rows.get(key));
                if current != op.value.as_ref() {
                    skip = then;
                }
                continue;
            }
            let Some(t) = self.tables.get_mut(&op.table) else {
                continue;
            };
            let changed = match &op.value {
                Some(v) => t.rows.insert(op.key.clone(), v.clone()).as_ref() != Some(v),
                None => t.rows.remove(&op.key).is_some(),
            };
            if changed {
                self.emit(Change {
                    table: op.table.clone(),
                    key: op.key.clone(),
                    owner: None,
                    value: op.value.clone(),
                });
            }
        }
    }

    /// Applies ops of `owner`'s stream to owned tables.
    pub(crate) fn apply_owned(&mut self, owner: &NodeName, ops: &[Op]) {
        for op in ops {
            let Some(t) = self.tables.get_mut(&op.table) else {
                continue;
            };
            let changed = match &op.value {
                Some(v) => {
                    let prev = t
                        .owned
                        .entry(op.key.clone())
                        .or_default()
                        .insert(owner.clone(), v.clone());
                    if prev.is_none() {
                        t.owned_count += 1;
                    }
                    prev.as_ref() != Some(v)
                }
                None => match t.owned.get_mut(&op.key) {
                    Some(owners) => {
                        let removed = owners.remove(owner).is_some();
                        if owners.is_empty() {
                            t.owned.remove(&op.key);
                        }
                        if removed {
                            t.owned_count -= 1;
                        }
                        removed
                    }
                    None => false,
                },
            };
            if changed {
                self.emit(Change {
                    table: op.table.clone(),
                    key: op.key.clone(),
                    owner: Some(owner.clone()),
                    value: op.value.clone(),
                });
            }
        }
    }

    /// Removes every row of the given kind-`Consensus` shard (before a full copy).
    pub(crate) fn clear_shard(&mut self, shard: &str) {
        let tables: Vec<String> = self
            .shard_of
            .iter()
            .filter(|(_, (s, k))| s == shard && *k == ShardKind::Consensus)
            .map(|(t, _)| t.clone())
            .collect();
        for table in tables {
            let ops: Vec<Op> = self
                .tables
                .get(&table)
                .map(|t| {
                    t.rows
                        .keys()
                        .map(|k| Op::delete(&table, k.clone()))
                        .collect()
                })
                .unwrap_or_default();
            self.apply(&ops);
        }
    }

    /// Removes every owned row of `owner`.
    pub(crate) fn clear_owner(&mut self, owner: &NodeName) {
        let ops = self.owned_rows_of(owner);
        let ops: Vec<Op> = ops
            .into_iter()
            .map(|o| Op::delete(&o.table, o.key))
            .collect();
        self.apply_owned(owner, &ops);
    }

    /// Every owned row of `owner`, as puts.
    pub(crate) fn owned_rows_of(&self, owner: &NodeName) -> Vec<Op> {
        let mut out = Vec::new();
        for (name, t) in &self.tables {
            for (key, owners) in &t.owned {
                if let Some(v) = owners.get(owner) {
                    out.push(Op::put(name, key.clone(), v.clone()));
                }
            }
        }
        out
    }

    /// Every consensus row of a shard, as puts.
    pub(crate) fn shard_rows(&self, shard: &str) -> Vec<Op> {
        let mut out = Vec::new();
        for (name, (s, kind)) in &self.shard_of {
            if s != shard || *kind != ShardKind::Consensus {
                continue;
            }
            if let Some(t) = self.tables.get(name) {
                out.extend(
                    t.rows
                        .iter()
                        .map(|(k, v)| Op::put(name, k.clone(), v.clone())),
                );
            }
        }
        out
    }

    /// A consensus row.
    pub(crate) fn get(&self, table: &str, key: &[u8]) -> Option<Bytes> {
        self.tables.get(table)?.rows.get(key).cloned()
    }

    /// The owners of an owned key and their values.
    pub(crate) fn get_owned(&self, table: &str, key: &[u8]) -> Vec<(NodeName, Bytes)> {
        self.tables
            .get(table)
            .and_then(|t| t.owned.get(key))
            .map(|o| o.iter().map(|(n, v)| (n.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Consensus rows with keys starting with `prefix`, in key order.
    pub(crate) fn scan(&self, table: &str, prefix: &[u8]) -> Vec<(Bytes, Bytes)> {
        let Some(t) = self.tables.get(table) else {
            return Vec::new();
        };
        t.rows
            .range(Bytes::copy_from_slice(prefix)..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Owned rows with keys starting with `prefix`: (key, owner, value).
    pub(crate) fn scan_owned(&self, table: &str, prefix: &[u8]) -> Vec<(Bytes, NodeName, Bytes)> {
        let Some(t) = self.tables.get(table) else {
            return Vec::new();
        };
        t.owned
            .range(Bytes::copy_from_slice(prefix)..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .flat_map(|(k, o)| o.iter().map(|(n, v)| (k.clone(), n.clone(), v.clone())))
            .collect()
    }

    /// Rows in a table (consensus rows, or owned rows over all owners).
    pub(crate) fn count(&self, table: &str) -> usize {
        self.tables
            .get(table)
            .map_or(0, |t| t.rows.len() + t.owned_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        let mut m = HashMap::new();
        m.insert(
            "users".to_owned(),
            ("auth".to_owned(), ShardKind::Consensus),
        );
        m.insert("routes".to_owned(), ("route".to_owned(), ShardKind::Owned));
        Store::new(m)
    }

    fn n(s: &str) -> NodeName {
        NodeName::parse(s).expect("valid name")
    }

    #[test]
    fn owned_rows_are_per_owner_and_cleared_per_owner() {
        let mut s = store();
        let mut w = s.watch("routes");
        s.apply_owned(&n("a@h"), &[Op::put("routes", "t/1", "x")]);
        s.apply_owned(&n("b@h"), &[Op::put("routes", "t/1", "y")]);
        assert_eq!(s.count("routes"), 2);
        assert_eq!(s.get_owned("routes", b"t/1").len(), 2);
        s.clear_owner(&n("a@h"));
        assert_eq!(
            s.get_owned("routes", b"t/1"),
            vec![(n("b@h"), Bytes::from("y"))]
        );
        assert_eq!(s.count("routes"), 1);
        let changes: Vec<Change> = std::iter::from_fn(|| w.try_recv().ok()).collect();
        assert_eq!(changes.len(), 3);
        assert_eq!(changes[2].value, None);
        assert_eq!(changes[2].owner, Some(n("a@h")));
    }

    #[test]
    fn consensus_rows_scan_by_prefix_and_clear_by_shard() {
        let mut s = store();
        s.apply(&[
            Op::put("users", "u/1", "a"),
            Op::put("users", "u/2", "b"),
            Op::put("users", "v/1", "c"),
        ]);
        assert_eq!(s.scan("users", b"u/").len(), 2);
        s.apply(&[Op::delete("users", "u/1")]);
        assert_eq!(s.get("users", b"u/1"), None);
        assert_eq!(s.shard_rows("auth").len(), 2);
        s.clear_shard("auth");
        assert_eq!(s.count("users"), 0);
    }

    #[test]
    fn a_guard_applies_the_ops_it_covers_only_when_the_row_matches() {
        let mut s = store();
        let b = |v: &str| Some(Bytes::from(v.to_owned()));
        // Absent expected, absent found: the put is applied; the op after
        // the guarded one is not covered.
        s.apply(&[
            Op::guard("users", "k", None, 1),
            Op::put("users", "k", "1"),
            Op::put("users", "other", "x"),
        ]);
        assert_eq!(s.get("users", b"k"), b("1"));
        // A mismatch skips exactly the covered ops.
        s.apply(&[
            Op::guard("users", "k", b("0"), 2),
            Op::put("users", "k", "2"),
            Op::delete("users", "other"),
            Op::put("users", "after", "y"),
        ]);
        assert_eq!(s.get("users", b"k"), b("1"));
        assert_eq!(s.get("users", b"other"), b("x"));
        assert_eq!(s.get("users", b"after"), b("y"));
        // A match applies them; the guard itself is no row.
        s.apply(&[
            Op::guard("users", "k", b("1"), 1),
            Op::put("users", "k", "3"),
        ]);
        assert_eq!(s.get("users", b"k"), b("3"));
        assert_eq!(s.count("users"), 3);
    }
}
