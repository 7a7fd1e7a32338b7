//! What `Rlog::status` reports of this node's shards, owners and feeds.

use std::collections::HashMap;

use super::{shard_feed, Scope, Shared, OWNED_FEED};
use crate::options::NodeName;
use crate::rlog::feed::Follow;
use crate::rlog::store::ShardKind;
use crate::rlog::{OwnerStatus, RlogStatus, Role, ShardStatus};

impl Shared {
    pub(crate) fn status(&self) -> RlogStatus {
        // One lock at a time: the lock order elsewhere is served → store
        // and follows → store.
        let follows: Vec<(Scope, Follow)> = self
            .follows
            .lock()
            .iter()
            .map(|(s, f)| (s.clone(), f.follow.clone()))
            .collect();
        let follows: HashMap<Scope, Follow> = follows.into_iter().collect();
        let (owned_head, heads, subscribers) = {
            let served = self.tables.served.lock();
            let heads: HashMap<String, u64> =
                served.iter().map(|(n, f)| (n.clone(), f.head())).collect();
            let mut subs: Vec<(String, NodeName, u64)> = served
                .iter()
                .flat_map(|(name, feed)| {
                    feed.subscribers()
                        .into_iter()
                        .map(move |(n, p)| (name.clone(), n, p))
                })
                .collect();
            subs.sort();
            (heads.get(OWNED_FEED).copied().unwrap_or(0), heads, subs)
        };
        let store = self.tables.store.read();
        let rows = |shard: &str| -> usize {
            self.opts
                .shards
                .iter()
                .filter(|s| s.name == shard)
                .flat_map(|s| s.tables.iter())
                .map(|t| store.count(t))
                .sum()
        };
        let mut shards = Vec::new();
        for s in &self.opts.shards {
            let mut st = ShardStatus {
                shard: s.name.clone(),
                kind: s.kind,
                following: None,
                leader: None,
                position: 0,
                head: 0,
                lag: 0,
                copies: 0,
                rows: rows(&s.name),
                voters: Vec::new(),
                learners: Vec::new(),
                term: 0,
            };
            match (s.kind, self.opts.role) {
                (ShardKind::Owned, _) => {
                    st.position = owned_head;
                    st.head = st.position;
                }
                (ShardKind::Consensus, Role::Core) => {
                    st.position = heads.get(&shard_feed(&s.name)).copied().unwrap_or(0);
                    st.head = st.position;
                    if let Some(r) = &self.rafts {
                        let view = r.view(&s.name);
                        st.leader = view.leader;
                        st.voters = view.voters;
                        st.learners = view.learners;
                        st.term = view.term;
                    }
                }
                (ShardKind::Consensus, Role::Replicant) => {
                    if let Some(f) = follows.get(&Scope::Shard(s.name.clone())) {
                        st.following = f.server.clone();
                        st.position = f.pos;
                        st.head = f.head.max(f.pos);
                        st.lag = f.lag();
                        st.copies = f.copies;
                    }
                }
            }
            shards.push(st);
        }
        let mut owners: Vec<OwnerStatus> = follows
            .iter()
            .filter_map(|(scope, f)| match scope {
                Scope::Owner(o) => Some(OwnerStatus {
                    owner: o.clone(),
                    epoch: f.epoch,
                    position: f.pos,
                    lag: f.lag(),
                    copies: f.copies,
                    live: f.live,
                }),
                Scope::Shard(_) => None,
            })
            .collect();
        owners.sort_by(|a, b| a.owner.cmp(&b.owner));
        RlogStatus {
            node: self.me.clone(),
            role: self.opts.role,
            incarnation: self.incarnation,
            shards,
            owners,
            subscribers,
            lag_p99_ms: self.lag.lock().p99(),
        }
    }
}
