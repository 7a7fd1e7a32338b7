//! Who asks for votes early when a shard's leader is lost: the cores'
//! reports of their logs (from probe replies and vote replies) and the rule
//! [`defer_to`] that [`RaftShards::check_leaders`](super::RaftShards::check_leaders)
//! applies with them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::options::NodeName;

/// A log's last entry, ordered as Raft compares logs when it grants a vote:
/// by term, then index (`None`, an empty log, is the least).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct LastLog {
    /// The term of the leader that wrote the entry.
    pub(crate) term: u64,
    /// The entry's index.
    pub(crate) index: u64,
}

impl LastLog {
    /// The last log of an openraft log id.
    pub(crate) fn of(id: &openraft::LogId<u64>) -> Self {
        Self {
            term: id.leader_id.term,
            index: id.index,
        }
    }
}

/// How long a core's report of its log counts for [`defer_to`] (probe
/// replies come every 500 ms).
pub(crate) const REPORT_FRESH: Duration = Duration::from_secs(2);

/// The reachable voter this core leaves an early election to, if any:
/// one whose report, at most [`REPORT_FRESH`] old, shows a log strictly
/// more up-to-date than `mine` (it can win votes this core cannot, and a
/// vote this core asked for itself would only delay it). On a tie both
/// may try. `reports`: each reachable voter but this core, with its
/// report of the shard's log and the report's age.
pub(crate) fn defer_to<'a>(
    mine: Option<LastLog>,
    reports: &[(&'a NodeName, Option<LastLog>, Duration)],
) -> Option<&'a NodeName> {
    reports
        .iter()
        .filter(|(_, log, age)| *age <= REPORT_FRESH && *log > mine)
        .max_by_key(|(_, log, _)| *log)
        .map(|(n, _, _)| *n)
}

/// One core's latest report of one shard's log.
#[derive(Clone, Copy, Debug)]
struct Report {
    /// When the reply that carried it came.
    at: Instant,
    log: Option<LastLog>,
}

/// The latest report of each core's log, per shard: from the probe replies
/// (`group.rs`, every 500 ms) and the replies to this core's vote requests.
#[derive(Debug, Default)]
pub(crate) struct LogReports(parking_lot::Mutex<HashMap<(NodeName, String), Report>>);

impl LogReports {
    /// Keeps `node`'s report of `shard`'s log, from a reply that came `at`,
    /// unless a newer one is kept.
    pub(crate) fn note(&self, node: &NodeName, shard: &str, at: Instant, log: Option<LastLog>) {
        let mut reports = self.0.lock();
        let kept = reports
            .entry((node.clone(), shard.to_owned()))
            .or_insert(Report { at, log });
        if kept.at <= at {
            *kept = Report { at, log };
        }
    }

    /// Forgets `node`'s reports (its link dropped: they may not hold when it
    /// is back).
    pub(crate) fn forget(&self, node: &NodeName) {
        self.0.lock().retain(|(n, _), _| n != node);
    }

    /// The reports of `shard`'s log by these `peers` (those without one are
    /// left out), each with its age at `now`, as [`defer_to`] takes them.
    pub(crate) fn of<'a>(
        &self,
        shard: &str,
        peers: &'a [NodeName],
        now: Instant,
    ) -> Vec<(&'a NodeName, Option<LastLog>, Duration)> {
        let reports = self.0.lock();
        peers
            .iter()
            .filter_map(|n| {
                let r = reports.get(&(n.clone(), shard.to_owned()))?;
                Some((n, r.log, now.saturating_duration_since(r.at)))
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "elect_test.rs"]
mod tests;
