//! openraft's storage for consensus shards, on redb: the log, the vote, the
//! committed id and the latest snapshot are durable (file `rlog.redb` in
//! `node.data_dir`, or in memory without one); the state machine is the
//! node's [`Store`](super::store::Store), rebuilt at start from the snapshot
//! and the committed entries after it (openraft re-applies them).

// openraft's `StorageError` is the error type its storage traits require.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::Arc;

use girder_proto::rlog as pb;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership, Vote,
};
use prost::Message;
use redb::{Database, ReadableTable, TableDefinition};

use super::feed::{ops_from_pb, ops_to_pb, Feed};
use super::node::{now_ms, shard_feed, Tables};
use super::raft::TypeConfig;
use super::{RlogError, RlogOptions};

type Err = StorageError<u64>;

const LOG: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("log");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");

fn io(e: impl ToString) -> Err {
    StorageError::IO {
        source: StorageIOError::write(AnyError::error(e.to_string())),
    }
}

/// Opens (or creates) the durable store.
pub(crate) fn open_db(dir: Option<&Path>) -> Result<Arc<Database>, RlogError> {
    let db = match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| RlogError::Storage(e.to_string()))?;
            Database::create(dir.join("rlog.redb"))
        }
        None => Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()),
    }
    .map_err(|e| RlogError::Storage(e.to_string()))?;
    let tx = db
        .begin_write()
        .map_err(|e| RlogError::Storage(e.to_string()))?;
    {
        tx.open_table(LOG)
            .map_err(|e| RlogError::Storage(e.to_string()))?;
        tx.open_table(META)
            .map_err(|e| RlogError::Storage(e.to_string()))?;
    }
    tx.commit().map_err(|e| RlogError::Storage(e.to_string()))?;
    Ok(Arc::new(db))
}

/// Deletes a shard's Raft state: its log entries, vote, committed id,
/// purged id and snapshot (the core then holds no group for it).
pub(crate) fn clear_shard(db: &Database, shard: &str) -> Result<(), RlogError> {
    let fail = |e: &dyn std::fmt::Display| RlogError::Storage(e.to_string());
    let tx = db.begin_write().map_err(|e| fail(&e))?;
    {
        let mut log = tx.open_table(LOG).map_err(|e| fail(&e))?;
        log.retain_in((shard, 0)..=(shard, u64::MAX), |_, _| false)
            .map_err(|e| fail(&e))?;
        let mut meta = tx.open_table(META).map_err(|e| fail(&e))?;
        for what in ["vote", "committed", "purged", "snapshot"] {
            meta.remove(format!("{shard}/{what}").as_str())
                .map_err(|e| fail(&e))?;
        }
    }
    tx.commit().map_err(|e| fail(&e))
}

fn get_meta<T: for<'de> serde::Deserialize<'de>>(
    db: &Database,
    key: &str,
) -> Result<Option<T>, Err> {
    let tx = db.begin_read().map_err(io)?;
    let t = tx.open_table(META).map_err(io)?;
    match t.get(key).map_err(io)? {
        Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(io)?)),
        None => Ok(None),
    }
}

fn put_meta<T: serde::Serialize>(db: &Database, key: &str, value: &T) -> Result<(), Err> {
    let bytes = serde_json::to_vec(value).map_err(io)?;
    let tx = db.begin_write().map_err(io)?;
    tx.open_table(META)
        .map_err(io)?
        .insert(key, bytes.as_slice())
        .map_err(io)?;
    tx.commit().map_err(io)
}

/// One shard's Raft log.
#[derive(Clone, Debug)]
pub(crate) struct LogStore {
    db: Arc<Database>,
    shard: String,
}

impl LogStore {
    pub(crate) fn new(db: Arc<Database>, shard: &str) -> Result<Self, RlogError> {
        Ok(Self {
            db,
            shard: shard.to_owned(),
        })
    }

    fn key(&self, what: &str) -> String {
        format!("{}/{what}", self.shard)
    }

    /// No vote and no log yet: a core that has never run this shard.
    pub(crate) fn is_fresh(&self) -> Result<bool, RlogError> {
        let vote: Option<Vote<u64>> =
            get_meta(&self.db, &self.key("vote")).map_err(|e| RlogError::Storage(e.to_string()))?;
        Ok(vote.is_none())
    }

    fn last(&self) -> Result<Option<LogId<u64>>, Err> {
        let tx = self.db.begin_read().map_err(io)?;
        let t = tx.open_table(LOG).map_err(io)?;
        let last = t
            .range((self.shard.as_str(), 0)..=(self.shard.as_str(), u64::MAX))
            .map_err(io)?
            .next_back();
        match last {
            Some(r) => {
                let (_, v) = r.map_err(io)?;
                let e: openraft::Entry<TypeConfig> =
                    serde_json::from_slice(v.value()).map_err(io)?;
                Ok(Some(e.log_id))
            }
            None => Ok(None),
        }
    }

    fn remove(&self, from: u64, to: u64) -> Result<(), Err> {
        let tx = self.db.begin_write().map_err(io)?;
        {
            let mut t = tx.open_table(LOG).map_err(io)?;
            let shard = self.shard.as_str();
            let keys: Vec<u64> = t
                .range((shard, from)..=(shard, to))
                .map_err(io)?
                .map(|r| r.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()
                .map_err(io)?;
            for k in keys {
                t.remove((shard, k)).map_err(io)?;
            }
        }
        tx.commit().map_err(io)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<openraft::Entry<TypeConfig>>, Err> {
        use std::ops::Bound;
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => *e,
            Bound::Excluded(0) => return Ok(Vec::new()),
            Bound::Excluded(e) => e - 1,
            Bound::Unbounded => u64::MAX,
        };
        if end < start {
            return Ok(Vec::new());
        }
        let tx = self.db.begin_read().map_err(io)?;
        let t = tx.open_table(LOG).map_err(io)?;
        let shard = self.shard.as_str();
        let mut out = Vec::new();
        for r in t.range((shard, start)..=(shard, end)).map_err(io)? {
            let (_, v) = r.map_err(io)?;
            out.push(serde_json::from_slice(v.value()).map_err(io)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, Err> {
        let last_purged: Option<LogId<u64>> = get_meta(&self.db, &self.key("purged"))?;
        let last = self.last()?.or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), Err> {
        put_meta(&self.db, &self.key("vote"), vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, Err> {
        get_meta(&self.db, &self.key("vote"))
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<(), Err> {
        put_meta(&self.db, &self.key("committed"), &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, Err> {
        Ok(get_meta::<Option<LogId<u64>>>(&self.db, &self.key("committed"))?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), Err>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let tx = self.db.begin_write().map_err(io)?;
        {
            let mut t = tx.open_table(LOG).map_err(io)?;
            for e in entries {
                let bytes = serde_json::to_vec(&e).map_err(io)?;
                t.insert((self.shard.as_str(), e.log_id.index), bytes.as_slice())
                    .map_err(io)?;
            }
        }
        tx.commit().map_err(io)?;
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), Err> {
        self.remove(log_id.index, u64::MAX)
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), Err> {
        put_meta(&self.db, &self.key("purged"), &log_id)?;
        self.remove(0, log_id.index)
    }
}

/// A snapshot as stored: openraft's meta and the rows (a protobuf `Ops`).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<u64, openraft::BasicNode>,
    data: super::raft::Batch,
}

/// One shard's state machine: applies committed entries to the node's rows
/// and to the shard's feed (which replicants follow).
#[derive(Debug)]
pub(crate) struct StateMachine {
    db: Arc<Database>,
    shard: String,
    tables: Arc<Tables>,
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, openraft::BasicNode>,
}

impl StateMachine {
    /// Restores the last snapshot (if any) into the rows and opens the feed.
    pub(crate) fn open(
        db: Arc<Database>,
        shard: &str,
        tables: Arc<Tables>,
        opts: &RlogOptions,
    ) -> Result<Self, RlogError> {
        let snap: Option<StoredSnapshot> = get_meta(&db, &format!("{shard}/snapshot"))
            .map_err(|e| RlogError::Storage(e.to_string()))?;
        let mut sm = Self {
            db,
            shard: shard.to_owned(),
            tables,
            last_applied: None,
            membership: StoredMembership::default(),
        };
        let head = match snap {
            Some(s) => {
                let ops = pb::Ops::decode(s.data.0.as_slice())
                    .map_err(|e| RlogError::Storage(e.to_string()))?;
                sm.tables.store.write().apply(&ops_from_pb(ops.ops));
                sm.last_applied = s.meta.last_log_id;
                sm.membership = s.meta.last_membership;
                s.meta.last_log_id.map_or(0, |l| l.index)
            }
            None => 0,
        };
        sm.tables.served.lock().insert(
            shard_feed(shard),
            Feed::new(&shard_feed(shard), 0, head, opts.retain, opts.window),
        );
        Ok(sm)
    }

    fn snapshot_now(&self) -> Snapshot<TypeConfig> {
        let rows = {
            // The feed lock keeps rows and position consistent.
            let _served = self.tables.served.lock();
            self.tables.store.read().shard_rows(&self.shard)
        };
        let data = pb::Ops {
            ops: ops_to_pb(&rows),
        }
        .encode_to_vec();
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!(
                "{}-{}-{}",
                self.shard,
                self.last_applied.map_or(0, |l| l.index),
                now_ms()
            ),
        };
        Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }
    }
}

/// Builds a snapshot from the rows captured when it was asked for.
#[derive(Debug)]
pub(crate) struct Builder {
    db: Arc<Database>,
    shard: String,
    snapshot: Option<Snapshot<TypeConfig>>,
}

impl RaftSnapshotBuilder<TypeConfig> for Builder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, Err> {
        let snap = self
            .snapshot
            .take()
            .ok_or_else(|| io("snapshot already built"))?;
        let stored = StoredSnapshot {
            meta: snap.meta.clone(),
            data: super::raft::Batch(snap.snapshot.get_ref().clone()),
        };
        put_meta(&self.db, &format!("{}/snapshot", self.shard), &stored)?;
        Ok(snap)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Builder;

    async fn applied_state(
        &mut self,
    ) -> Result<
        (
            Option<LogId<u64>>,
            StoredMembership<u64, openraft::BasicNode>,
        ),
        Err,
    > {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<u64>, Err>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        let at = now_ms();
        let feed_name = shard_feed(&self.shard);
        for e in entries {
            let ops = match e.payload {
                EntryPayload::Normal(b) => pb::Ops::decode(b.0.as_slice()).map_err(io)?.ops,
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(e.log_id), m);
                    Vec::new()
                }
                EntryPayload::Blank => Vec::new(),
            };
            {
                let mut served = self.tables.served.lock();
                self.tables
                    .store
                    .write()
                    .apply_at(&ops_from_pb(ops.clone()), e.log_id.index);
                if let Some(feed) = served.get_mut(&feed_name) {
                    feed.append(e.log_id.index, ops, at);
                }
            }
            self.last_applied = Some(e.log_id);
            out.push(e.log_id.index);
        }
        self.tables.kick.notify_one();
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Builder {
        Builder {
            db: self.db.clone(),
            shard: self.shard.clone(),
            snapshot: Some(self.snapshot_now()),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, Err> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), Err> {
        let data = snapshot.into_inner();
        let ops = pb::Ops::decode(data.as_slice()).map_err(io)?;
        {
            let mut served = self.tables.served.lock();
            let mut store = self.tables.store.write();
            store.clear_shard(&self.shard);
            store.apply(&ops_from_pb(ops.ops));
            if let Some(feed) = served.get_mut(&shard_feed(&self.shard)) {
                feed.reset(meta.last_log_id.map_or(0, |l| l.index));
            }
        }
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: super::raft::Batch(data),
        };
        put_meta(&self.db, &format!("{}/snapshot", self.shard), &stored)?;
        self.tables.kick.notify_one();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, Err> {
        let stored: Option<StoredSnapshot> =
            get_meta(&self.db, &format!("{}/snapshot", self.shard))?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data.0)),
        }))
    }
}

#[cfg(test)]
#[path = "storage_test.rs"]
mod tests;
