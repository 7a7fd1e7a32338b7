//! A hash map that costs one pointer until its first entry.
//!
//! A connection holds several maps (subscriptions, the inflight window,
//! QoS 2 ids awaiting PUBREL, topic aliases) that an idle device never
//! fills; an empty `HashMap` is 48 bytes inline, this is 8. The table is
//! allocated at the first insert and kept (emptied, not freed) after that,
//! so a busy connection pays one pointer more per lookup and nothing else.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// See the module documentation.
// The box is the point: 8 bytes inline instead of an empty map's 48.
#[allow(clippy::box_collection)]
#[derive(Debug, Clone)]
pub(crate) struct LazyMap<K, V>(Option<Box<HashMap<K, V>>>);

impl<K, V> Default for LazyMap<K, V> {
    fn default() -> Self {
        Self(None)
    }
}

impl<K: Hash + Eq, V> LazyMap<K, V> {
    /// An empty map, with nothing allocated.
    pub(crate) fn new() -> Self {
        Self(None)
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |m| m.len())
    }

    /// The value of `key`.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.as_ref()?.get(key)
    }

    /// The value of `key`, mutably.
    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.as_mut()?.get_mut(key)
    }

    /// Whether `key` has a value.
    pub(crate) fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`, returning the value it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.0.get_or_insert_default().insert(key, value)
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.as_mut()?.remove(key)
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().flat_map(|m| m.iter())
    }

    /// Every value, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    /// Keeps the entries for which `keep` is true.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&K, &mut V) -> bool) {
        if let Some(m) = self.0.as_mut() {
            m.retain(keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LazyMap;

    #[test]
    fn allocates_at_the_first_insert_only() {
        let mut m: LazyMap<u16, &str> = LazyMap::new();
        assert_eq!(std::mem::size_of_val(&m), std::mem::size_of::<usize>());
        assert!(m.0.is_none());
        assert_eq!(m.remove(&1), None);
        m.retain(|_, _| false);
        assert!(m.0.is_none(), "reads and removals allocate nothing");
        assert_eq!(m.insert(1, "a"), None);
        assert_eq!(m.insert(1, "b"), Some("a"));
        assert_eq!(m.insert(2, "c"), None);
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(&1), Some(&"b"));
        *m.get_mut(&2).unwrap() = "d";
        let mut values: Vec<_> = m.values().copied().collect();
        values.sort_unstable();
        assert_eq!(values, ["b", "d"]);
        m.retain(|k, _| *k == 2);
        assert!(!m.contains_key(&1));
        assert_eq!(m.remove(&2), Some("d"));
        assert_eq!(m.len(), 0);
    }
}
