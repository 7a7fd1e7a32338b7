//! The member list: a state-based CRDT that every node merges into.
//!
//! Each node owns the entry for itself and writes it (join, leave); a
//! force-leave writes a tombstone over another node's entry. Of two entries for
//! one node the one with the greater `(incarnation, version, status)` wins, so
//! merging in any order converges, and nodes exchange whole lists on every new
//! link and after every change. A restarted node has a greater incarnation and
//! so overrides an old tombstone: it may join again.

use std::collections::BTreeMap;

use crate::options::NodeName;

/// Whether a member is in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemberStatus {
    /// In the cluster.
    Joined,
    /// Left or removed: a tombstone; links to it are refused.
    Left,
}

/// One member entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The node.
    pub node: NodeName,
    /// Where it accepts links (`host:port`).
    pub addr: String,
    /// Its process start time (ms since the epoch).
    pub incarnation: u64,
    /// Bumped on every change of this entry within one incarnation.
    pub version: u64,
    /// Joined or left.
    pub status: MemberStatus,
}

impl Member {
    fn rank(&self) -> (u64, u64, MemberStatus) {
        (self.incarnation, self.version, self.status)
    }
}

/// What one merge changed, for the node to act on.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Nodes that are now joined and were not.
    pub(crate) joined: Vec<NodeName>,
    /// Nodes that are now tombstones and were not.
    pub(crate) left: Vec<NodeName>,
    /// Whether anything changed at all (then the list is gossiped on).
    pub(crate) any: bool,
}

/// The member list.
#[derive(Debug, Clone, Default)]
pub(crate) struct Membership {
    entries: BTreeMap<NodeName, Member>,
}

impl Membership {
    /// Merges one entry; returns the change it made.
    pub(crate) fn merge(&mut self, entry: Member) -> Changes {
        self.merge_all(std::iter::once(entry))
    }

    /// Merges a whole list.
    pub(crate) fn merge_all(&mut self, entries: impl IntoIterator<Item = Member>) -> Changes {
        let mut changes = Changes::default();
        for entry in entries {
            let before = self.entries.get(&entry.node).map(|m| m.status);
            let wins = self
                .entries
                .get(&entry.node)
                .is_none_or(|m| entry.rank() > m.rank());
            if !wins {
                continue;
            }
            changes.any = true;
            match (before, entry.status) {
                (Some(MemberStatus::Joined), MemberStatus::Joined)
                | (Some(MemberStatus::Left), MemberStatus::Left) => {}
                (_, MemberStatus::Joined) => changes.joined.push(entry.node.clone()),
                (_, MemberStatus::Left) => changes.left.push(entry.node.clone()),
            }
            self.entries.insert(entry.node.clone(), entry);
        }
        changes
    }

    /// The entry for a node.
    pub(crate) fn get(&self, node: &NodeName) -> Option<&Member> {
        self.entries.get(node)
    }

    /// Whether the node is a joined member.
    pub(crate) fn is_joined(&self, node: &NodeName) -> bool {
        self.get(node)
            .is_some_and(|m| m.status == MemberStatus::Joined)
    }

    /// The tombstone version that refuses a peer introducing itself with this
    /// incarnation and own member version, if any.
    pub(crate) fn refuses(
        &self,
        node: &NodeName,
        incarnation: u64,
        member_version: u64,
    ) -> Option<u64> {
        let m = self.get(node)?;
        (m.status == MemberStatus::Left
            && (incarnation, member_version) <= (m.incarnation, m.version))
            .then_some(m.version)
    }

    /// Every entry, tombstones included (what is gossiped).
    pub(crate) fn all(&self) -> impl Iterator<Item = &Member> {
        self.entries.values()
    }

    /// The joined members.
    pub(crate) fn joined(&self) -> impl Iterator<Item = &Member> {
        self.all().filter(|m| m.status == MemberStatus::Joined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(node: &str, inc: u64, ver: u64, status: MemberStatus) -> Member {
        Member {
            node: NodeName::parse(node).unwrap(),
            addr: "h:1".into(),
            incarnation: inc,
            version: ver,
            status,
        }
    }

    #[test]
    fn merge_order_does_not_matter() {
        let entries = [
            m("a@h", 1, 0, MemberStatus::Joined),
            m("b@h", 1, 0, MemberStatus::Joined),
            m("a@h", 1, 1, MemberStatus::Left),
            m("b@h", 2, 0, MemberStatus::Joined),
            m("b@h", 1, 5, MemberStatus::Left),
        ];
        let mut forward = Membership::default();
        forward.merge_all(entries.clone());
        let mut backward = Membership::default();
        backward.merge_all(entries.into_iter().rev());
        let f: Vec<_> = forward.all().cloned().collect();
        let b: Vec<_> = backward.all().cloned().collect();
        assert_eq!(f, b);
        assert!(!forward.is_joined(&NodeName::parse("a@h").unwrap()));
        assert!(forward.is_joined(&NodeName::parse("b@h").unwrap()));
    }

    #[test]
    fn changes_report_joins_and_leaves_once() {
        let mut list = Membership::default();
        let c = list.merge(m("a@h", 1, 0, MemberStatus::Joined));
        assert_eq!(c.joined.len(), 1);
        assert!(list.merge(m("a@h", 1, 0, MemberStatus::Joined)) == Changes::default());
        let c = list.merge(m("a@h", 1, 1, MemberStatus::Left));
        assert_eq!((c.left.len(), c.any), (1, true));
        let c = list.merge(m("a@h", 1, 0, MemberStatus::Joined));
        assert!(!c.any, "an older entry never wins");
    }

    #[test]
    fn tombstones_refuse_the_same_incarnation_but_not_a_restart_or_a_rejoin() {
        let mut list = Membership::default();
        list.merge(m("a@h", 10, 4, MemberStatus::Left));
        let a = NodeName::parse("a@h").unwrap();
        assert_eq!(list.refuses(&a, 10, 3), Some(4));
        assert_eq!(list.refuses(&a, 10, 4), Some(4));
        assert_eq!(
            list.refuses(&a, 10, 5),
            None,
            "an explicit rejoin bumps the version"
        );
        assert_eq!(
            list.refuses(&a, 11, 0),
            None,
            "a restart has a new incarnation"
        );
        assert_eq!(list.refuses(&NodeName::parse("b@h").unwrap(), 1, 0), None);
    }
}
