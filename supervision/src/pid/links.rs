//! The set of processes linked to one process.
//!
//! Nearly every process has exactly one link, to its supervisor, while a supervisor has
//! one per child (tens of thousands under a dynamic supervisor). A `HashMap` would cost
//! a heap allocation for that single link; [`Links`] keeps zero or one link inline and
//! switches to a set only from the second one on: a set of pids found by id, one word
//! per link (a map from id to pid would be two).

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use super::Pid;

/// A linked pid in a set, found by its id.
pub(super) struct Linked(Pid);

impl PartialEq for Linked {
    fn eq(&self, other: &Self) -> bool {
        self.0.id() == other.0.id()
    }
}

impl Eq for Linked {}

impl Hash for Linked {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `u64` hashes, so that the set can be searched by id.
        self.0.id().hash(state);
    }
}

impl Borrow<u64> for Linked {
    fn borrow(&self) -> &u64 {
        &self.0.cell().id
    }
}

/// Linked processes, keyed by pid id.
#[derive(Default)]
pub(super) enum Links {
    /// No links.
    #[default]
    None,
    /// One link, stored inline.
    One(Pid),
    /// Two or more links (or fewer, after removals); boxed to keep the set small.
    #[expect(
        clippy::box_collection,
        reason = "keeps `Links` two words in every cell"
    )]
    Many(Box<HashSet<Linked>>),
}

impl Links {
    /// Adds a link (a second link to the same pid replaces the first).
    #[expect(
        clippy::mutable_key_type,
        reason = "a linked pid hashes by its id, which never changes"
    )]
    pub(super) fn insert(&mut self, pid: Pid) {
        match self {
            Links::None => *self = Links::One(pid),
            Links::One(one) if one.id() == pid.id() => *one = pid,
            Links::One(_) => {
                let Links::One(one) = std::mem::take(self) else {
                    return;
                };
                let mut set = HashSet::with_capacity(2);
                set.insert(Linked(one));
                set.insert(Linked(pid));
                *self = Links::Many(Box::new(set));
            }
            Links::Many(set) => {
                set.replace(Linked(pid));
            }
        }
    }

    /// Removes the link to the pid with this id; returns whether there was one.
    pub(super) fn remove(&mut self, id: u64) -> bool {
        match self {
            Links::None => false,
            Links::One(one) => {
                let found = one.id() == id;
                if found {
                    *self = Links::None;
                }
                found
            }
            Links::Many(set) => {
                let found = set.remove(&id);
                if set.is_empty() {
                    *self = Links::None;
                }
                found
            }
        }
    }

    /// True if linked to the pid with this id.
    pub(super) fn contains(&self, id: u64) -> bool {
        match self {
            Links::None => false,
            Links::One(one) => one.id() == id,
            Links::Many(set) => set.contains(&id),
        }
    }

    /// The linked pids, consuming the set.
    pub(super) fn into_pids(self) -> Vec<Pid> {
        match self {
            Links::None => Vec::new(),
            Links::One(one) => vec![one],
            Links::Many(set) => set.into_iter().map(|l| l.0).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(links: Links) -> Vec<u64> {
        let mut ids: Vec<u64> = links.into_pids().iter().map(Pid::id).collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn one_link_stays_inline() {
        let a = Pid::new();
        let mut links = Links::default();
        links.insert(a.clone());
        links.insert(a.clone());
        assert!(matches!(links, Links::One(_)));
        assert!(links.contains(a.id()));
        assert_eq!(ids(links), vec![a.id()]);
    }

    #[test]
    fn second_link_moves_to_a_map_and_removals_shrink_to_none() {
        let (a, b, c) = (Pid::new(), Pid::new(), Pid::new());
        let mut links = Links::default();
        links.insert(a.clone());
        links.insert(b.clone());
        assert!(matches!(links, Links::Many(_)));
        assert!(links.contains(a.id()) && links.contains(b.id()));
        assert!(!links.contains(c.id()));
        assert!(!links.remove(c.id()));
        assert!(links.remove(a.id()));
        assert!(!links.contains(a.id()));
        assert!(links.remove(b.id()));
        assert!(matches!(links, Links::None));
        assert!(ids(links).is_empty());
    }

    #[test]
    fn removing_the_inline_link() {
        let (a, b) = (Pid::new(), Pid::new());
        let mut links = Links::default();
        links.insert(a.clone());
        assert!(!links.remove(b.id()));
        assert!(links.remove(a.id()));
        assert!(matches!(links, Links::None));
    }
}
