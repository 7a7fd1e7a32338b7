//! Shared subscriptions (MQTT 5.0 §4.8.2, EMQX's `emqx_shared_sub`): the
//! members of each (group, filter) and the choice of the one member that gets
//! a message.
//!
//! # Layout
//!
//! - [`Strategy`]: EMQX's `shared_subscription_strategy` names.
//! - [`SharedGroup`]: the members of one (group, filter) and its picker.
//! - [`SharedSubscriptions`]: every group of a node or of the cluster, keyed
//!   by filter then group, so that a lookup by `&str` allocates nothing.
//!
//! # Use with the subscription index
//!
//! A shared subscription takes one entry in the
//! [`SubscriptionIndex`](crate::topic::SubscriptionIndex) per (group,
//! filter), under a key that names the group (for example an enum variant
//! `Shared { group, filter }`): [`SharedSubscriptions::join`] says when the
//! group is new (insert that entry), [`SharedSubscriptions::leave`] when it is
//! gone (remove it). When a publish matches that entry, the caller picks the
//! member with [`SharedSubscriptions::pick`], and, if that member goes away
//! without acknowledging, picks again with
//! [`SharedSubscriptions::pick_excluding`] naming the members already tried.
//!
//! Picking takes `&self`: the round-robin cursor, the sticky choice and the
//! random state are atomics, so many publishers can pick from a group held
//! behind a read lock, and round robin stays exactly even under concurrency.
//!
//! ```
//! use girder_broker::shared::{PickInput, SharedSubscriptions, Strategy};
//!
//! let mut shared = SharedSubscriptions::new(Strategy::RoundRobin);
//! assert!(shared.join("g1", "jobs/+", "worker-a"));
//! assert!(!shared.join("g1", "jobs/+", "worker-b"));
//! let input = PickInput { publisher: "producer", topic: "jobs/1" };
//! let first = shared.pick("g1", "jobs/+", &input).copied();
//! let second = shared.pick("g1", "jobs/+", &input).copied();
//! assert_ne!(first, second);
//! // Redelivery: anyone but the member that left without acknowledging.
//! let retry = shared.pick_excluding("g1", "jobs/+", &input, |m| Some(*m) == first);
//! assert_eq!(retry.copied(), second);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

#[cfg(test)]
mod tests;

/// Errors of the shared-subscription layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharedError {
    /// A strategy name that is not one of [`Strategy`]'s.
    #[error("unknown shared subscription strategy {0:?} (expected random, round_robin, sticky, hash_clientid or hash_topic)")]
    UnknownStrategy(String),
}

/// How a group chooses the member that receives a message, with EMQX's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// A uniformly random member.
    Random,
    /// Each member in turn (EMQX's default).
    #[default]
    RoundRobin,
    /// A random member, then the same one until it leaves (or is excluded).
    Sticky,
    /// A member chosen by a stable hash of the publisher's client id, so
    /// that one publisher's messages go to one member while the members stay
    /// the same.
    HashClientId,
    /// A member chosen by a stable hash of the message's topic.
    HashTopic,
}

impl Strategy {
    /// The EMQX configuration name of the strategy.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Random => "random",
            Strategy::RoundRobin => "round_robin",
            Strategy::Sticky => "sticky",
            Strategy::HashClientId => "hash_clientid",
            Strategy::HashTopic => "hash_topic",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = SharedError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Strategy::Random,
            Strategy::RoundRobin,
            Strategy::Sticky,
            Strategy::HashClientId,
            Strategy::HashTopic,
        ]
        .into_iter()
        .find(|strategy| strategy.as_str() == s)
        .ok_or_else(|| SharedError::UnknownStrategy(s.to_owned()))
    }
}

/// What a pick may depend on: the message being delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PickInput<'a> {
    /// The client id of the publisher ([`Strategy::HashClientId`]).
    pub publisher: &'a str,
    /// The topic name of the message ([`Strategy::HashTopic`]).
    pub topic: &'a str,
}

/// 64-bit FNV-1a: a fixed hash, the same on every node and every run, so
/// that the hash strategies choose the same member for the same input.
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The SplitMix64 increment and output function. Its state only ever grows
/// by a constant, so one `fetch_add` on an atomic is a lock-free generator.
const SPLITMIX_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(SPLITMIX_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `value % n` as an index; `n` is a member count, so the result fits.
fn reduce(value: u64, n: usize) -> usize {
    (value % n as u64) as usize
}

/// No sticky member chosen yet.
const NO_MEMBER: usize = usize::MAX;

/// The members of one (group, filter) and the state of its picker.
///
/// Members keep their join order, so round robin visits them in that order
/// and the hash strategies map an input to the same member while the member
/// list is unchanged. Join and leave are O(members); picks are O(1) without
/// exclusions, and O(members) when some members are excluded.
#[derive(Debug)]
pub struct SharedGroup<K> {
    strategy: Strategy,
    members: Vec<K>,
    /// Next round-robin position (taken modulo the member count).
    cursor: AtomicUsize,
    /// Index of the sticky member, or [`NO_MEMBER`].
    sticky: AtomicUsize,
    /// SplitMix64 state for [`Strategy::Random`] and [`Strategy::Sticky`].
    random: AtomicU64,
}

impl<K: Eq> SharedGroup<K> {
    /// An empty group, its random state seeded from the OS.
    pub fn new(strategy: Strategy) -> Self {
        Self::with_seed(strategy, rand::random())
    }

    /// An empty group with a fixed random seed (for reproducible tests).
    pub fn with_seed(strategy: Strategy, seed: u64) -> Self {
        Self {
            strategy,
            members: Vec::new(),
            cursor: AtomicUsize::new(0),
            sticky: AtomicUsize::new(NO_MEMBER),
            random: AtomicU64::new(seed),
        }
    }

    /// The group's strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Adds a member; returns whether it was not a member already.
    pub fn join(&mut self, member: K) -> bool {
        if self.members.contains(&member) {
            return false;
        }
        // Pin the round-robin position before the member count changes; the
        // new member goes last, so the order of the others is kept.
        let cursor = self.cursor.get_mut();
        *cursor = cursor.checked_rem(self.members.len()).unwrap_or(0);
        self.members.push(member);
        true
    }

    /// Removes a member; returns whether it was a member. A sticky group
    /// chooses a new member at its next pick if this one was its choice.
    pub fn leave(&mut self, member: &K) -> bool {
        let Some(i) = self.members.iter().position(|m| m == member) else {
            return false;
        };
        self.members.remove(i);
        // Keep the round-robin order: the members after `i` moved down by one.
        // `position` is the member the next pick would have chosen.
        let cursor = self.cursor.get_mut();
        let position = *cursor % (self.members.len() + 1);
        *cursor = if i < position { position - 1 } else { position };
        let sticky = self.sticky.get_mut();
        if *sticky == i {
            *sticky = NO_MEMBER;
        } else if *sticky != NO_MEMBER && *sticky > i {
            *sticky -= 1;
        }
        true
    }

    /// The members, in join order.
    pub fn members(&self) -> &[K] {
        &self.members
    }

    /// Whether `member` belongs to the group.
    pub fn contains(&self, member: &K) -> bool {
        self.members.contains(member)
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the group has no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The member that gets a message, `None` if the group is empty.
    pub fn pick(&self, input: &PickInput<'_>) -> Option<&K> {
        self.pick_excluding(input, |_| false)
    }

    /// The member that gets a message among those for which `exclude` is
    /// false, e.g. for redelivery to another member than those that failed.
    /// `None` if no member is left.
    pub fn pick_excluding(
        &self,
        input: &PickInput<'_>,
        exclude: impl Fn(&K) -> bool,
    ) -> Option<&K> {
        self.pick_index(input, &exclude).map(|i| &self.members[i])
    }

    fn pick_index(&self, input: &PickInput<'_>, exclude: &dyn Fn(&K) -> bool) -> Option<usize> {
        let len = self.members.len();
        if len == 0 {
            return None;
        }
        match self.strategy {
            Strategy::RoundRobin => {
                let start = self.cursor.fetch_add(1, Ordering::Relaxed);
                let i = (0..len)
                    .map(|step| start.wrapping_add(step) % len)
                    .find(|&i| !exclude(&self.members[i]))?;
                Some(i)
            }
            Strategy::Random => self.random_eligible(exclude),
            Strategy::Sticky => {
                let current = self.sticky.load(Ordering::Acquire);
                if current < len && !exclude(&self.members[current]) {
                    return Some(current);
                }
                let chosen = self.random_eligible(exclude)?;
                match self.sticky.compare_exchange(
                    current,
                    chosen,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    // Another picker chose first: follow it if it may be used.
                    Err(winner) if winner < len && !exclude(&self.members[winner]) => Some(winner),
                    _ => Some(chosen),
                }
            }
            Strategy::HashClientId => {
                self.nth_eligible(stable_hash(input.publisher.as_bytes()), exclude)
            }
            Strategy::HashTopic => self.nth_eligible(stable_hash(input.topic.as_bytes()), exclude),
        }
    }

    fn random_eligible(&self, exclude: &dyn Fn(&K) -> bool) -> Option<usize> {
        let state = self.random.fetch_add(SPLITMIX_GAMMA, Ordering::Relaxed);
        self.nth_eligible(splitmix64(state), exclude)
    }

    /// The index of the eligible member number `value % eligible`.
    fn nth_eligible(&self, value: u64, exclude: &dyn Fn(&K) -> bool) -> Option<usize> {
        let eligible = self.members.iter().filter(|m| !exclude(m)).count();
        if eligible == 0 {
            return None;
        }
        if eligible == self.members.len() {
            return Some(reduce(value, eligible));
        }
        let n = reduce(value, eligible);
        self.members
            .iter()
            .enumerate()
            .filter(|(_, m)| !exclude(m))
            .nth(n)
            .map(|(i, _)| i)
    }
}

/// Every shared group, keyed by filter then group name.
pub struct SharedSubscriptions<K> {
    strategy: Strategy,
    groups: HashMap<Box<str>, HashMap<Box<str>, SharedGroup<K>>>,
    members: usize,
}

impl<K> fmt::Debug for SharedSubscriptions<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSubscriptions")
            .field("strategy", &self.strategy)
            .field("filters", &self.groups.len())
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

impl<K: Eq> SharedSubscriptions<K> {
    /// No group yet; new groups use `strategy`.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            strategy,
            groups: HashMap::new(),
            members: 0,
        }
    }

    /// Adds `member` to the group `group` of `filter`. Returns whether the
    /// group is new: the caller then adds the group to the subscription index
    /// (and the cluster route for the shared filter).
    pub fn join(&mut self, group: &str, filter: &str, member: K) -> bool {
        let groups = self.groups.entry(filter.into()).or_default();
        let mut created = false;
        let shared = groups.entry(group.into()).or_insert_with(|| {
            created = true;
            SharedGroup::new(self.strategy)
        });
        if shared.join(member) {
            self.members += 1;
        }
        created
    }

    /// Removes `member` from the group. Returns whether the group is now
    /// gone (it had no other member): the caller removes it from the index.
    pub fn leave(&mut self, group: &str, filter: &str, member: &K) -> bool {
        let Some(groups) = self.groups.get_mut(filter) else {
            return false;
        };
        let Some(shared) = groups.get_mut(group) else {
            return false;
        };
        if !shared.leave(member) {
            return false;
        }
        self.members -= 1;
        if !shared.is_empty() {
            return false;
        }
        groups.remove(group);
        if groups.is_empty() {
            self.groups.remove(filter);
        }
        true
    }

    /// The group `group` of `filter`.
    pub fn group(&self, group: &str, filter: &str) -> Option<&SharedGroup<K>> {
        self.groups.get(filter)?.get(group)
    }

    /// The groups subscribed to `filter`, by name.
    pub fn groups_of<'a>(
        &'a self,
        filter: &str,
    ) -> impl Iterator<Item = (&'a str, &'a SharedGroup<K>)> {
        self.groups
            .get(filter)
            .into_iter()
            .flat_map(|groups| groups.iter().map(|(name, group)| (&**name, group)))
    }

    /// [`SharedGroup::pick`] in the group `group` of `filter`.
    pub fn pick(&self, group: &str, filter: &str, input: &PickInput<'_>) -> Option<&K> {
        self.group(group, filter)?.pick(input)
    }

    /// [`SharedGroup::pick_excluding`] in the group `group` of `filter`.
    pub fn pick_excluding(
        &self,
        group: &str,
        filter: &str,
        input: &PickInput<'_>,
        exclude: impl Fn(&K) -> bool,
    ) -> Option<&K> {
        self.group(group, filter)?.pick_excluding(input, exclude)
    }

    /// Number of (group, filter) pairs with at least one member.
    pub fn group_count(&self) -> usize {
        self.groups.values().map(HashMap::len).sum()
    }

    /// Number of (group, filter, member) memberships.
    pub fn member_count(&self) -> usize {
        self.members
    }
}
