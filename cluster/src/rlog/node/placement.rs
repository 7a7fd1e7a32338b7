//! A replicant's placement of its consensus shards on the live cores: the
//! core each shard follows, rebalancing when a core comes back or joins,
//! and moving off a core that serves it too slowly.
//!
//! The decisions are pure ([`Placement`]: the cores, the live ones and each
//! shard's [`ShardState`] in, the moves out); the shell (`impl Shared`
//! below) reads the followed streams, keeps the clocks (how long a shard
//! has lagged, how long the shards have been unbalanced) and subscribes to
//! the chosen cores.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tracing::info;

use super::{Following, Scope, Shared};
use crate::options::NodeName;
use crate::rlog::node::node_id;
use crate::rlog::store::ShardKind;
use crate::rlog::Role;

/// How long an imbalance of a replicant's shards across cores must last
/// before a shard moves, and the least time between two moves.
pub(super) const REBALANCE_HOLD: Duration = Duration::from_secs(1);

/// How long a subscription may go without its stream flowing before the
/// shard is placed again.
const STALE_AFTER: Duration = Duration::from_secs(1);

/// The rebalancing clocks of a replicant.
#[derive(Debug, Default)]
pub(super) struct Balance {
    imbalanced_since: Option<Instant>,
    last_move: Option<Instant>,
}

/// One consensus shard as this replicant follows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ShardState {
    /// The core it follows (subscribed to), if any.
    pub(super) server: Option<NodeName>,
    /// Its stream flows.
    pub(super) live: bool,
    /// Subscribed a while ago and still not flowing.
    pub(super) stale: bool,
    /// Kept far behind its core's head for too long.
    pub(super) lagging: bool,
}

/// A shard to follow on another core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Move {
    /// The shard's index among the consensus shards.
    pub(super) shard: usize,
    /// The core it leaves, if it follows one.
    pub(super) from: Option<NodeName>,
    /// The core it goes to.
    pub(super) to: NodeName,
}

/// The placement problem of one replicant: its cores in their preferred
/// order, where its rotation of them starts, and the cores it has a live
/// link to.
#[derive(Clone, Copy, Debug)]
pub(super) struct Placement<'a> {
    /// `cluster.core_nodes`.
    pub(super) cores: &'a [NodeName],
    /// Where the replicant's rotation of the cores starts (a hash of its
    /// name, so that two replicants start at different cores).
    pub(super) offset: u64,
    /// The cores with a live link, in `cores` order.
    pub(super) live: &'a [NodeName],
}

impl Placement<'_> {
    /// Where `core` comes in the `i`th shard's preferred order: the cores
    /// rotated by `i` plus the replicant's offset.
    pub(super) fn rank(&self, i: usize, core: &NodeName) -> usize {
        let n = self.cores.len().max(1);
        let start = (i + (self.offset % n as u64) as usize) % n;
        let at = self.cores.iter().position(|x| x == core).unwrap_or(0);
        (at + n - start) % n
    }

    /// Per live core, the shards that follow it.
    pub(super) fn counts(&self, shards: &[ShardState]) -> HashMap<NodeName, usize> {
        let mut counts: HashMap<NodeName, usize> =
            self.live.iter().map(|c| (c.clone(), 0)).collect();
        for s in shards {
            if let Some(n) = s.server.as_ref().and_then(|c| counts.get_mut(c)) {
                *n += 1;
            }
        }
        counts
    }

    /// The core for the `i`th shard: the live core (other than `not`) that
    /// the fewest shards follow; ties go to the shard's preferred order.
    pub(super) fn pick(
        &self,
        i: usize,
        counts: &HashMap<NodeName, usize>,
        not: Option<&NodeName>,
    ) -> Option<NodeName> {
        self.live
            .iter()
            .filter(|c| Some(*c) != not)
            .min_by_key(|c| (counts.get(*c).copied().unwrap_or(0), self.rank(i, c)))
            .cloned()
    }

    /// Shards whose core is gone, that follow none, or whose stream went
    /// stale, placed (again) in shard order, each counted where it goes
    /// before the next is placed. A stale shard may stay on its core.
    pub(super) fn place(&self, shards: &[ShardState]) -> Vec<Move> {
        let mut counts = self.counts(shards);
        let mut moves = Vec::new();
        for (i, s) in shards.iter().enumerate() {
            let server_up = s.server.as_ref().is_some_and(|c| self.live.contains(c));
            if server_up && !s.stale {
                continue;
            }
            if let (true, Some(c)) = (server_up, &s.server) {
                if let Some(n) = counts.get_mut(c) {
                    *n = n.saturating_sub(1);
                }
            }
            if let Some(to) = self.pick(i, &counts, None) {
                *counts.entry(to.clone()).or_default() += 1;
                moves.push(Move {
                    shard: i,
                    from: s.server.clone(),
                    to,
                });
            }
        }
        moves
    }

    /// Lagging shards, each moved to another live core.
    pub(super) fn off_lagging(&self, shards: &[ShardState]) -> Vec<Move> {
        let counts = self.counts(shards);
        shards
            .iter()
            .enumerate()
            .filter(|(_, s)| s.lagging)
            .filter_map(|(i, s)| {
                self.pick(i, &counts, s.server.as_ref()).map(|to| Move {
                    shard: i,
                    from: s.server.clone(),
                    to,
                })
            })
            .collect()
    }

    /// When every shard flows on a live core and the core followed most
    /// serves more than one shard more than the core followed least, the
    /// shard to move from the first to the second: of those on the
    /// busiest core, the one that prefers the emptiest most.
    pub(super) fn rebalance(&self, shards: &[ShardState]) -> Option<Move> {
        let settled = shards
            .iter()
            .all(|s| s.live && s.server.as_ref().is_some_and(|c| self.live.contains(c)));
        if !settled {
            return None;
        }
        let counts = self.counts(shards);
        let count = |c: &NodeName| counts.get(c).copied().unwrap_or(0);
        let most = self.live.iter().max_by_key(|c| count(c))?;
        let fewest = self.live.iter().min_by_key(|c| count(c))?;
        if count(most) <= count(fewest) + 1 {
            return None;
        }
        shards
            .iter()
            .enumerate()
            .filter(|(_, s)| s.server.as_ref() == Some(most))
            .min_by_key(|(i, _)| self.rank(*i, fewest))
            .map(|(i, _)| Move {
                shard: i,
                from: Some(most.clone()),
                to: fewest.clone(),
            })
    }
}

impl Shared {
    /// The consensus shards, in the order of the options.
    pub(super) fn consensus_shards(&self) -> Vec<String> {
        self.opts
            .shards
            .iter()
            .filter(|s| s.kind == ShardKind::Consensus)
            .map(|s| s.name.clone())
            .collect()
    }

    /// The cores of `cluster.core_nodes` with a live link, in that order.
    pub(super) fn live_cores(&self, connected: &[NodeName]) -> Vec<NodeName> {
        self.opts
            .core_nodes
            .iter()
            .filter(|c| connected.contains(c))
            .cloned()
            .collect()
    }

    /// This replicant's placement problem over `live`.
    fn placement<'a>(&'a self, live: &'a [NodeName]) -> Placement<'a> {
        Placement {
            cores: &self.opts.core_nodes,
            offset: node_id(&self.me),
            live,
        }
    }

    /// The consensus shards as followed now; `lagging` from the clocks
    /// kept in `follows`.
    fn shard_states(
        &self,
        shards: &[String],
        follows: &HashMap<Scope, Following>,
    ) -> Vec<ShardState> {
        shards
            .iter()
            .map(|s| match follows.get(&Scope::Shard(s.clone())) {
                None => ShardState::default(),
                Some(f) => ShardState {
                    server: f.follow.server.clone(),
                    live: f.follow.live,
                    stale: !f.follow.live && f.subscribed_at.elapsed() > STALE_AFTER,
                    lagging: f
                        .behind_since
                        .is_some_and(|t| t.elapsed() > self.opts.lag_switch_after),
                },
            })
            .collect()
    }

    /// Places the consensus shards whose core is gone, or that never
    /// started flowing, on live cores (a replicant's tick).
    pub(super) fn place_shards(&self, connected: &[NodeName]) {
        if self.opts.role != Role::Replicant {
            return;
        }
        let live = self.live_cores(connected);
        let shards = self.consensus_shards();
        let moves = {
            let follows = self.follows.lock();
            self.placement(&live)
                .place(&self.shard_states(&shards, &follows))
        };
        for m in moves {
            self.subscribe(Scope::Shard(shards[m.shard].clone()), m.to);
        }
    }

    /// Moves one shard from the live core this replicant follows the most
    /// shards on to the one it follows the fewest on, when they differ by
    /// more than one (a core came back or joined) for `REBALANCE_HOLD`,
    /// and at most once per `REBALANCE_HOLD`. Only shards that are flowing
    /// move, and a move resumes from the replicant's position.
    pub(super) fn rebalance(&self, connected: &[NodeName]) {
        if self.opts.role != Role::Replicant {
            return;
        }
        let live = self.live_cores(connected);
        let shards = self.consensus_shards();
        let chosen = {
            let follows = self.follows.lock();
            let wanted = self
                .placement(&live)
                .rebalance(&self.shard_states(&shards, &follows));
            let mut balance = self.balance.lock();
            let Some(wanted) = wanted else {
                balance.imbalanced_since = None;
                return;
            };
            let since = *balance.imbalanced_since.get_or_insert_with(Instant::now);
            if since.elapsed() < REBALANCE_HOLD
                || balance
                    .last_move
                    .is_some_and(|t| t.elapsed() < REBALANCE_HOLD)
            {
                return;
            }
            balance.last_move = Some(Instant::now());
            balance.imbalanced_since = None;
            wanted
        };
        let shard = shards[chosen.shard].clone();
        let from = chosen.from.map(|f| f.to_string()).unwrap_or_default();
        info!(%shard, %from, to = %chosen.to, "rlog replicant rebalancing a shard");
        self.subscribe(Scope::Shard(shard), chosen.to);
    }

    /// Moves a replicant off a core that keeps it far behind that core's own
    /// head (the core is too slow to serve it).
    pub(super) fn switch_lagging(&self, connected: &[NodeName]) {
        if self.opts.role != Role::Replicant {
            return;
        }
        let live = self.live_cores(connected);
        let shards = self.consensus_shards();
        let moves = {
            let mut follows = self.follows.lock();
            for s in &shards {
                if let Some(f) = follows.get_mut(&Scope::Shard(s.clone())) {
                    if f.follow.lag() > self.opts.lag_switch_entries {
                        f.behind_since.get_or_insert_with(Instant::now);
                    } else {
                        f.behind_since = None;
                    }
                }
            }
            self.placement(&live)
                .off_lagging(&self.shard_states(&shards, &follows))
        };
        for m in moves {
            let scope = Scope::Shard(shards[m.shard].clone());
            info!(?scope, core = %m.to, "rlog replicant lagging, moving to another core");
            self.subscribe(scope, m.to);
        }
    }
}

#[cfg(test)]
#[path = "placement_test.rs"]
mod tests;
