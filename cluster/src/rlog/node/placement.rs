//! A replicant's placement of its consensus shards on the live cores:
//! the core each shard follows, rebalancing when a core comes back or
//! joins, and moving off a core that serves it too slowly.

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

/// The rebalancing state of a replicant.
#[derive(Debug, Default)]
pub(super) struct Balance {
    imbalanced_since: Option<Instant>,
    last_move: Option<Instant>,
}

/// Per live core, the consensus shards this replicant follows on it.
pub(super) fn core_counts(
    follows: &HashMap<Scope, Following>,
    live: &[NodeName],
) -> HashMap<NodeName, usize> {
    let mut counts: HashMap<NodeName, usize> = live.iter().map(|c| (c.clone(), 0)).collect();
    for (scope, f) in follows {
        if let (Scope::Shard(_), Some(c)) = (scope, &f.follow.server) {
            if let Some(n) = counts.get_mut(c) {
                *n += 1;
            }
        }
    }
    counts
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

    /// The core for the `i`th consensus shard: the live core (other than
    /// `not`) this replicant follows the fewest shards on; ties go to the
    /// shard's preferred order, the cores rotated by `i` plus a hash of the
    /// replicant's name, so one replicant's shards spread over every core
    /// and two replicants start their rotations at different cores.
    pub(super) fn place(
        &self,
        i: usize,
        live: &[NodeName],
        counts: &HashMap<NodeName, usize>,
        not: Option<&NodeName>,
    ) -> Option<NodeName> {
        live.iter()
            .filter(|c| Some(*c) != not)
            .min_by_key(|c| (counts.get(*c).copied().unwrap_or(0), self.rank(i, c)))
            .cloned()
    }

    /// Where `core` comes in the `i`th consensus shard's preferred order.
    pub(super) fn rank(&self, i: usize, core: &NodeName) -> usize {
        let cores = &self.opts.core_nodes;
        let n = cores.len().max(1);
        let start = (i + (node_id(&self.me) % n as u64) as usize) % n;
        let at = cores.iter().position(|x| x == core).unwrap_or(0);
        (at + n - start) % n
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
            let settled = shards.iter().all(|s| {
                follows.get(&Scope::Shard(s.clone())).is_some_and(|f| {
                    f.follow.live && f.follow.server.as_ref().is_some_and(|c| live.contains(c))
                })
            });
            let counts = core_counts(&follows, &live);
            let most = live
                .iter()
                .max_by_key(|c| counts.get(*c).copied().unwrap_or(0));
            let fewest = live
                .iter()
                .min_by_key(|c| counts.get(*c).copied().unwrap_or(0));
            let mut balance = self.balance.lock();
            let (Some(most), Some(fewest), true) = (most, fewest, settled) else {
                balance.imbalanced_since = None;
                return;
            };
            let (hi, lo) = (counts[most], counts.get(fewest).copied().unwrap_or(0));
            if hi <= lo + 1 {
                balance.imbalanced_since = None;
                return;
            }
            let since = *balance.imbalanced_since.get_or_insert_with(Instant::now);
            if since.elapsed() < REBALANCE_HOLD
                || balance
                    .last_move
                    .is_some_and(|t| t.elapsed() < REBALANCE_HOLD)
            {
                return;
            }
            // The shard on the busiest core that prefers the emptiest most.
            let pick = shards
                .iter()
                .enumerate()
                .filter(|(_, s)| {
                    follows
                        .get(&Scope::Shard((*s).clone()))
                        .and_then(|f| f.follow.server.as_ref())
                        == Some(most)
                })
                .min_by_key(|(i, _)| self.rank(*i, fewest))
                .map(|(_, s)| s.clone());
            balance.last_move = Some(Instant::now());
            balance.imbalanced_since = None;
            pick.map(|s| (s, fewest.clone(), most.clone()))
        };
        if let Some((shard, to, from)) = chosen {
            info!(%shard, %from, %to, "rlog replicant rebalancing a shard");
            self.subscribe(Scope::Shard(shard), to);
        }
    }

    /// Moves a replicant off a core that keeps it far behind that core's own
    /// head (the core is too slow to serve it).
    pub(super) fn switch_lagging(&self, connected: &[NodeName]) {
        if self.opts.role != Role::Replicant {
            return;
        }
        let live = self.live_cores(connected);
        let mut moves = Vec::new();
        {
            let mut follows = self.follows.lock();
            let counts = core_counts(&follows, &live);
            for (i, s) in self.consensus_shards().iter().enumerate() {
                let Some(f) = follows.get_mut(&Scope::Shard(s.clone())) else {
                    continue;
                };
                if f.follow.lag() > self.opts.lag_switch_entries {
                    let since = *f.behind_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > self.opts.lag_switch_after {
                        let current = f.follow.server.clone();
                        if let Some(other) = self.place(i, &live, &counts, current.as_ref()) {
                            moves.push((Scope::Shard(s.clone()), other));
                        }
                    }
                } else {
                    f.behind_since = None;
                }
            }
        }
        for (scope, core) in moves {
            info!(?scope, %core, "rlog replicant lagging, moving to another core");
            self.subscribe(scope, core);
        }
    }
}
