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

/// The key prefix of a write id op (see [`Store::apply`]).
const WRITE_ID_PREFIX: &[u8] = b"\0write\0";

/// Sequences of one origin below its highest applied one that are still
/// told apart: a write overtaken by this many later writes of the same
/// origin (node incarnation) is no longer applied.
pub(crate) const ONCE_WINDOW: u64 = 65_536;

/// The hidden table of a consensus shard that holds, per origin (a node
/// incarnation), the write sequences applied (see [`once_admit`]).
pub(crate) fn written_table(shard: &str) -> String {
    format!("\0written.{shard}")
}

impl Op {
    /// The id of one consensus write (`origin`'s `seq`-th), put before its
    /// `covers` ops: the state machine applies them only the first time it
    /// sees this id, so a write sent again after a lost answer is applied
    /// once. The op itself changes only the shard's hidden written table.
    pub(crate) fn write_id(shard: &str, origin: &[u8], seq: u64, covers: u32) -> Self {
        let mut k = Vec::with_capacity(WRITE_ID_PREFIX.len() + 12 + origin.len());
        k.extend_from_slice(WRITE_ID_PREFIX);
        k.extend_from_slice(covers.to_string().as_bytes());
        k.push(0);
        k.extend_from_slice(origin);
        Self {
            table: written_table(shard),
            key: k.into(),
            value: Some(Bytes::copy_from_slice(&seq.to_be_bytes())),
        }
    }

    /// For a write id op: (ops it covers, origin, sequence).
    fn as_write_id(&self) -> Option<(usize, &[u8], u64)> {
        let rest = self.key.strip_prefix(WRITE_ID_PREFIX)?;
        let at = rest.iter().position(|b| *b == 0)?;
        let covers = std::str::from_utf8(&rest[..at]).ok()?.parse().ok()?;
        let seq = u64::from_be_bytes(self.value.as_deref()?.try_into().ok()?);
        Some((covers, &rest[at + 1..], seq))
    }
}

/// The dedup decision for `seq` of an origin whose written row is `row`:
/// the new row when `seq` was not applied yet, `None` when it was (or is
/// [`ONCE_WINDOW`] or more below the highest applied one, and so is taken
/// as applied). A row is the highest sequence applied (8 bytes, big
/// endian) then a bitmap of the missing ones below it: bit `i` (byte
/// `i / 8`, bit `i % 8`) set when `high - 1 - i` was not applied, trailing
/// zero bytes left out (in order, a row is 8 bytes).
pub(crate) fn once_admit(row: Option<&[u8]>, seq: u64) -> Option<Bytes> {
    let (high, missing) = match row {
        Some(r) if r.len() >= 8 => {
            let mut h = [0u8; 8];
            h.copy_from_slice(&r[..8]);
            (u64::from_be_bytes(h), &r[8..])
        }
        _ => (0, &[][..]),
    };
    let is_missing = |i: u64| {
        usize::try_from(i / 8)
            .ok()
            .and_then(|b| missing.get(b))
            .is_some_and(|byte| byte & (1 << (i % 8)) != 0)
    };
    let mut out = Vec::with_capacity(8 + missing.len());
    if seq > high {
        // Every sequence in (high, seq) is missing; the old bits shift up
        // past them and the old high (applied, or 0: no sequence).
        let shift = seq - high;
        let bytes = (ONCE_WINDOW / 8) as usize;
        let mut map = vec![0u8; bytes.min(missing.len() + (shift / 8) as usize + 1)];
        if shift < ONCE_WINDOW {
            let (q, r) = ((shift / 8) as usize, (shift % 8) as u32);
            for (b, out) in map.iter_mut().enumerate().skip(q) {
                let lo = missing.get(b - q).copied().unwrap_or(0);
                let carry = match (r, (b - q).checked_sub(1)) {
                    (1.., Some(c)) => missing.get(c).copied().unwrap_or(0) >> (8 - r),
                    _ => 0,
                };
                *out = (lo << r) | carry;
            }
        }
        let fresh = (shift - 1).min(ONCE_WINDOW);
        if map.len() * 8 < fresh as usize {
            map.resize(fresh.div_ceil(8) as usize, 0);
        }
        for (b, byte) in map.iter_mut().enumerate() {
            let from = b as u64 * 8;
            if from + 8 <= fresh {
                *byte = 0xff;
            } else if from < fresh {
                *byte |= (1u8 << (fresh - from)) - 1;
            }
        }
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&map);
    } else {
        if seq == high || high - seq > ONCE_WINDOW {
            return None;
        }
        let i = high - 1 - seq;
        if !is_missing(i) {
            return None;
        }
        out.extend_from_slice(&high.to_be_bytes());
        out.extend_from_slice(missing);
        out[8 + (i / 8) as usize] &= !(1 << (i % 8));
    }
    while out.len() > 8 && out.last() == Some(&0) {
        out.pop();
    }
    Some(Bytes::from(out))
}

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
    /// This node's write origin (see [`Store::set_origin`]).
    origin: Bytes,
    /// This origin's writes applied here: sequence → log index (0: unknown).
    own_applied: BTreeMap<u64, u64>,
}

/// Most entries of [`Store::own_applied`] kept (writes whose caller gave up
/// are dropped oldest first).
const OWN_APPLIED_MAX: usize = 8192;

/// The capacity of a watcher's channel; a watcher that falls further behind
/// gets `Lagged` and should re-read the table.
const WATCH_CAPACITY: usize = 4096;

impl Store {
    /// A store with the given tables: name → (shard, kind).
    /// Every consensus shard also gets its hidden written table.
    pub(crate) fn new(mut shard_of: HashMap<String, (String, ShardKind)>) -> Self {
        let consensus: Vec<String> = shard_of
            .values()
            .filter(|(_, k)| *k == ShardKind::Consensus)
            .map(|(s, _)| s.clone())
            .collect();
        for shard in consensus {
            shard_of.insert(written_table(&shard), (shard, ShardKind::Consensus));
        }
        let tables = shard_of
            .keys()
            .map(|t| (t.clone(), Table::default()))
            .collect();
        Self {
            tables,
            shard_of,
            watchers: HashMap::new(),
            origin: Bytes::new(),
            own_applied: BTreeMap::new(),
        }
    }

    /// Sets the origin of this node's writes, whose applied indexes
    /// [`Store::take_applied`] reports.
    pub(crate) fn set_origin(&mut self, origin: Bytes) {
        self.origin = origin;
    }

    /// The log index at which this node's write `seq` was applied here, if
    /// it was (0 when the index is not known), forgetting it.
    pub(crate) fn take_applied(&mut self, seq: u64) -> Option<u64> {
        self.own_applied.remove(&seq)
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

    /// Applies consensus ops (unknown tables are skipped: a newer peer's
    /// table) of an entry whose index is not known (rows of a copy).
    pub(crate) fn apply(&mut self, ops: &[Op]) {
        self.apply_at(ops, 0);
    }

    /// Applies the consensus ops of the entry at log `index`. A write id op
    /// ([`Op::write_id`]) whose id this shard already applied skips the
    /// ops it covers (no row changes, no change is emitted); otherwise it
    /// is recorded in the shard's written table. Every node applies the
    /// same entries to the same rows, so every node makes the same choice.
    pub(crate) fn apply_at(&mut self, ops: &[Op], index: u64) {
        let mut skip = 0;
        for op in ops {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            if let Some((covers, origin, seq)) = op.as_write_id() {
                let Some(t) = self.tables.get_mut(&op.table) else {
                    continue;
                };
                match once_admit(t.rows.get(origin).map(|r| &r[..]), seq) {
                    Some(row) => {
                        t.rows.insert(Bytes::copy_from_slice(origin), row);
                        if origin == &self.origin[..] {
                            self.own_applied.insert(seq, index);
                            while self.own_applied.len() > OWN_APPLIED_MAX {
                                self.own_applied.pop_first();
                            }
                        }
                    }
                    None => skip = covers,
                }
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

    fn admit_all(seqs: &[u64]) -> (Option<Bytes>, Vec<bool>) {
        let mut row: Option<Bytes> = None;
        let mut taken = Vec::new();
        for &q in seqs {
            match once_admit(row.as_deref(), q) {
                Some(r) => {
                    row = Some(r);
                    taken.push(true);
                }
                None => taken.push(false),
            }
        }
        (row, taken)
    }

    #[test]
    fn write_ids_in_order_are_each_applied_once_and_keep_the_row_small() {
        let seqs: Vec<u64> = (1..=1000).collect();
        let (row, taken) = admit_all(&seqs);
        assert!(taken.iter().all(|t| *t));
        assert_eq!(row.as_deref().map(<[u8]>::len), Some(8));
        let row = row.expect("a row");
        for q in [1, 500, 1000] {
            assert_eq!(once_admit(Some(&row), q), None, "seq {q} twice");
        }
        assert!(once_admit(Some(&row), 1001).is_some());
    }

    #[test]
    fn write_ids_out_of_order_within_the_window_are_applied_once() {
        // 3 and 5 are overtaken, then arrive, then arrive again.
        let (_, taken) = admit_all(&[1, 2, 4, 6, 9000, 5, 3, 3, 5, 7, 8, 6, 9000]);
        assert_eq!(
            taken,
            vec![true, true, true, true, true, true, true, false, false, true, true, false, false]
        );
        // A first write of an origin seen at 5: 1 to 4 are still to come.
        let (_, taken) = admit_all(&[5, 2, 2, 1, 4, 3, 5]);
        assert_eq!(taken, vec![true, true, false, true, true, true, false]);
    }

    #[test]
    fn a_write_id_beyond_the_window_is_not_applied() {
        let w = ONCE_WINDOW;
        // 2 is missing; it is still applied while within the window.
        let (_, taken) = admit_all(&[1, w + 2, 2]);
        assert_eq!(taken, vec![true, true, true]);
        // One more later write, and it is out of the window.
        let (row, taken) = admit_all(&[1, w + 3, 2]);
        assert_eq!(taken, vec![true, true, false]);
        // However many are missing, a row stays within the window's bits.
        let row = row.expect("a row");
        let row = once_admit(Some(&row), 3 * w).expect("later write");
        assert_eq!(row.len(), 8 + (w as usize) / 8);
        // Bits move up one per write and fall out at the window's end.
        let row = once_admit(Some(&once_admit(None, 1).expect("first")), 3).expect("later");
        assert_eq!(row.len(), 9);
        let row = once_admit(Some(&row), 2 + w).expect("later write");
        // 2 is the last bit, 3 (applied) the one before.
        assert_eq!(row[row.len() - 1], 0xbf);
        let row = once_admit(Some(&row), 3 + w).expect("later write");
        assert_eq!(once_admit(Some(&row), 2), None);
        assert_eq!(once_admit(Some(&row), 3), None);
        assert!(once_admit(Some(&row), 4).is_some());
    }

    fn dedup_store() -> Store {
        let mut s = store();
        s.set_origin(Bytes::from_static(b"a@h/1"));
        s
    }

    fn write(seq: u64, origin: &[u8], ops: Vec<Op>) -> Vec<Op> {
        let mut v = vec![Op::write_id("auth", origin, seq, ops.len() as u32)];
        v.extend(ops);
        v
    }

    #[test]
    fn a_write_applied_again_changes_no_row_and_emits_no_change() {
        let mut s = dedup_store();
        let mut w = s.watch("users");
        let first = write(1, b"a@h/1", vec![Op::put("users", "k", "1")]);
        // Group commit: two writes in one entry, each with its own id.
        let mut entry = write(1, b"b@h/7", vec![Op::put("users", "j", "x")]);
        entry.extend(first.clone());
        s.apply_at(&entry, 10);
        s.apply_at(&write(2, b"a@h/1", vec![Op::put("users", "k", "2")]), 11);
        // The first write sent again lands after the second one.
        s.apply_at(&first, 12);
        assert_eq!(s.get("users", b"k"), Some(Bytes::from("2")));
        assert_eq!(s.get("users", b"j"), Some(Bytes::from("x")));
        let changes: Vec<Change> = std::iter::from_fn(|| w.try_recv().ok()).collect();
        assert_eq!(changes.len(), 3);
        assert_eq!(s.count("users"), 2);
        // The writer learns the index its write took effect at.
        assert_eq!(s.take_applied(1), Some(10));
        assert_eq!(s.take_applied(2), Some(11));
        assert_eq!(s.take_applied(1), None);
        // Another origin's writes are not recorded as this node's.
        assert_eq!(s.take_applied(7), None);
    }

    #[test]
    fn written_ids_survive_a_copy_of_the_shard() {
        let mut s = dedup_store();
        let first = write(1, b"a@h/1", vec![Op::put("users", "k", "1")]);
        s.apply_at(&first, 1);
        s.apply_at(&write(2, b"a@h/1", vec![Op::put("users", "k", "2")]), 2);
        // A snapshot carries the rows of the shard, the written table too.
        let rows = s.shard_rows("auth");
        assert_eq!(rows.len(), 2);
        let mut copy = store();
        copy.clear_shard("auth");
        copy.apply(&rows);
        copy.apply_at(&first, 3);
        assert_eq!(copy.get("users", b"k"), Some(Bytes::from("2")));
        // Without an id, ops apply as before.
        copy.apply_at(&[Op::put("users", "k", "1")], 4);
        copy.apply_at(&[Op::put("users", "k", "1")], 5);
        assert_eq!(copy.get("users", b"k"), Some(Bytes::from("1")));
    }
}
