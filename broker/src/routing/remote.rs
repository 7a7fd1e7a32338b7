//! The other nodes' routes, as this node's publishers read them: which
//! nodes have subscribers to a filter, and which nodes have members of a
//! shared group.
//!
//! The rows come from the cluster's route table (one row per filter and
//! node, written by the node that has the subscribers; a shared group's
//! row is keyed `$share/{group}/{filter}`, see [`RouteKey`]). A node whose
//! link is down keeps its rows (they are removed everywhere after the
//! grace period) but gets nothing while it is down: [`RemoteRoutes::set_down`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::topic::SubscriptionIndex;

/// A key of the route table: a filter that plain subscriptions use, or a
/// shared group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKey<'a> {
    /// A filter with ordinary subscriptions.
    Plain(&'a str),
    /// A shared group `$share/{group}/{filter}`.
    Group {
        /// The share name.
        group: &'a str,
        /// The group's filter.
        filter: &'a str,
    },
}

const SHARE_PREFIX: &str = "$share/";

impl<'a> RouteKey<'a> {
    /// The key as the route table holds it.
    pub fn parse(key: &'a str) -> Self {
        key.strip_prefix(SHARE_PREFIX)
            .and_then(|rest| rest.split_once('/'))
            .map_or(RouteKey::Plain(key), |(group, filter)| RouteKey::Group {
                group,
                filter,
            })
    }

    /// The filter that messages are matched against.
    pub fn filter(&self) -> &'a str {
        match *self {
            RouteKey::Plain(filter) | RouteKey::Group { filter, .. } => filter,
        }
    }
}

/// The route-table key of the shared group `group` on `filter`.
pub fn group_key(group: &str, filter: &str) -> String {
    format!("{SHARE_PREFIX}{group}/{filter}")
}

/// An entry of the remote index, under the filter it matches with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Entry {
    /// `node` has plain subscriptions to the filter.
    Node(Arc<str>),
    /// `node` has members of `group` on the filter.
    Group {
        group: Arc<str>,
        filter: Arc<str>,
        node: Arc<str>,
    },
}

/// Every other node's routes, matched like a subscriber index.
#[derive(Debug, Default)]
pub struct RemoteRoutes {
    index: SubscriptionIndex<Entry, ()>,
    /// Node names, shared by their entries, with their number of routes.
    nodes: HashMap<Arc<str>, usize>,
    /// Nodes whose link is down: their routes are kept and not used.
    down: HashSet<Arc<str>>,
}

impl RemoteRoutes {
    /// No routes.
    pub fn new() -> Self {
        Self::default()
    }

    fn intern(&mut self, node: &str) -> Arc<str> {
        match self.nodes.get_key_value(node) {
            Some((name, _)) => Arc::clone(name),
            None => Arc::from(node),
        }
    }

    fn entry(&mut self, key: RouteKey<'_>, node: &str) -> Entry {
        let node = self.intern(node);
        match key {
            RouteKey::Plain(_) => Entry::Node(node),
            RouteKey::Group { group, filter } => Entry::Group {
                group: Arc::from(group),
                filter: Arc::from(filter),
                node,
            },
        }
    }

    /// Adds `node`'s route `key` (as the route table holds it). Returns
    /// whether it is new.
    pub fn add(&mut self, key: &str, node: &str) -> bool {
        let key = RouteKey::parse(key);
        let entry = self.entry(key, node);
        let name = match &entry {
            Entry::Node(n) | Entry::Group { node: n, .. } => Arc::clone(n),
        };
        let added = self
            .index
            .insert(key.filter(), entry, ())
            .previous
            .is_none();
        if added {
            *self.nodes.entry(name).or_default() += 1;
        }
        added
    }

    /// Removes `node`'s route `key`. Returns whether it was there.
    pub fn remove(&mut self, key: &str, node: &str) -> bool {
        let key = RouteKey::parse(key);
        let entry = self.entry(key, node);
        let removed = self.index.remove(key.filter(), &entry).removed.is_some();
        if removed {
            if let Some(count) = self.nodes.get_mut(node) {
                *count -= 1;
                if *count == 0 {
                    self.nodes.remove(node);
                }
            }
        }
        removed
    }

    /// Removes every route; which nodes are down is kept.
    pub fn clear(&mut self) {
        self.index = SubscriptionIndex::new();
        self.nodes.clear();
    }

    /// Marks `node` down (its routes are not used) or up again.
    pub fn set_down(&mut self, node: &str, down: bool) {
        if down {
            let name = self.intern(node);
            self.down.insert(name);
        } else {
            self.down.remove(node);
        }
    }

    /// Number of routes held (of every node, down or not).
    pub fn len(&self) -> usize {
        self.index.subscription_count()
    }

    /// Whether no route is held.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Visits the routes that match the topic `name`, skipping nodes that
    /// are down: `plain` once per node and matching filter with plain
    /// subscriptions, `group` once per (group, filter, node).
    pub fn match_topic(
        &self,
        name: &str,
        plain: &mut impl FnMut(&Arc<str>),
        group: &mut impl FnMut(&Arc<str>, &Arc<str>, &Arc<str>),
    ) {
        self.index
            .match_topic(name, &mut |entry: &Entry, ()| match entry {
                Entry::Node(node) if !self.down.contains(node) => plain(node),
                Entry::Group {
                    group: g,
                    filter,
                    node,
                } if !self.down.contains(node) => group(g, filter, node),
                _ => {}
            });
    }

    /// Every route as (key, node), sorted.
    #[cfg(test)]
    fn routes(&self) -> Vec<(String, String)> {
        let mut routes = Vec::with_capacity(self.len());
        self.index.for_each(|filter, entry, ()| match entry {
            Entry::Node(node) => routes.push((filter.to_owned(), node.to_string())),
            Entry::Group { group, node, .. } => {
                routes.push((group_key(group, filter), node.to_string()));
            }
        });
        routes.sort();
        routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matched(routes: &RemoteRoutes, topic: &str) -> (Vec<String>, Vec<String>) {
        let mut plain = Vec::new();
        let mut groups = Vec::new();
        routes.match_topic(
            topic,
            &mut |node| plain.push(node.to_string()),
            &mut |group, filter, node| groups.push(format!("{group}|{filter}|{node}")),
        );
        plain.sort();
        groups.sort();
        (plain, groups)
    }

    #[test]
    fn keys_parse_as_plain_filters_or_groups() {
        assert_eq!(RouteKey::parse("a/+/c"), RouteKey::Plain("a/+/c"));
        assert_eq!(
            RouteKey::parse("$share/g1/a/#"),
            RouteKey::Group {
                group: "g1",
                filter: "a/#"
            }
        );
        assert_eq!(RouteKey::parse(&group_key("g", "x/y")).filter(), "x/y");
    }

    #[test]
    fn routes_match_by_filter_and_skip_down_nodes() {
        let mut routes = RemoteRoutes::new();
        assert!(routes.add("a/+", "n2"));
        assert!(!routes.add("a/+", "n2"));
        routes.add("a/#", "n2");
        routes.add("a/b", "n3");
        routes.add("$share/g/a/#", "n3");
        routes.add("$share/g/a/#", "n4");
        routes.add("x", "n4");
        let (plain, groups) = matched(&routes, "a/b");
        // n2 twice: two of its filters match; the caller deduplicates.
        assert_eq!(plain, ["n2", "n2", "n3"]);
        assert_eq!(groups, ["g|a/#|n3", "g|a/#|n4"]);
        routes.set_down("n3", true);
        let (plain, groups) = matched(&routes, "a/b");
        assert_eq!(plain, ["n2", "n2"]);
        assert_eq!(groups, ["g|a/#|n4"]);
        routes.set_down("n3", false);
        assert_eq!(matched(&routes, "a/b").0, ["n2", "n2", "n3"]);
        assert!(matched(&routes, "b").0.is_empty());
    }

    #[test]
    fn routes_come_and_go_one_by_one() {
        let mut routes = RemoteRoutes::new();
        routes.add("a/+", "n2");
        routes.add("$share/g/a/#", "n2");
        routes.add("a/+", "n3");
        assert_eq!(routes.len(), 3);
        assert!(routes.remove("$share/g/a/#", "n2"));
        assert!(routes.remove("a/+", "n2"));
        assert_eq!(routes.routes(), [("a/+".to_owned(), "n3".to_owned())]);
        assert!(routes.remove("a/+", "n3"));
        assert!(!routes.remove("a/+", "n3"));
        assert!(routes.is_empty());
        assert!(routes.nodes.is_empty());
    }
}
