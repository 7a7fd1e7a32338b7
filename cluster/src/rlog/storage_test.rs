//! The Raft log and state machine on redb: openraft's storage test suite
//! (in memory and on disk), and what must survive a reopen of the file.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftLogReader, RaftSnapshotBuilder,
    StorageError, Vote,
};
use parking_lot::{Mutex, RwLock};
use prost::Message;
use tokio::sync::Notify;

use super::*;
use crate::rlog::feed::ops_to_pb;
use crate::rlog::node::Tables;
use crate::rlog::store::{Op, ShardKind, Store};

fn tables() -> Arc<Tables> {
    let mut shard_of = HashMap::new();
    shard_of.insert(
        "users".to_owned(),
        ("auth".to_owned(), ShardKind::Consensus),
    );
    Arc::new(Tables {
        store: RwLock::new(Store::new(shard_of)),
        served: Mutex::new(HashMap::new()),
        kick: Notify::new(),
    })
}

fn open(
    dir: Option<&std::path::Path>,
    tables: Arc<Tables>,
) -> Result<(LogStore, StateMachine), StorageError<u64>> {
    let db = open_db(dir).map_err(io)?;
    let log = LogStore::new(db.clone(), "auth").map_err(io)?;
    let sm = StateMachine::open(db, "auth", tables, &RlogOptions::default()).map_err(io)?;
    Ok((log, sm))
}

/// A store on an in-memory redb.
struct InMemory;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, ()> for InMemory {
    async fn build(&self) -> Result<((), LogStore, StateMachine), StorageError<u64>> {
        let (log, sm) = open(None, tables())?;
        Ok(((), log, sm))
    }
}

/// A store on a redb file in a temporary directory (removed with the guard).
struct OnDisk;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for OnDisk {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().map_err(io)?;
        let (log, sm) = open(Some(dir.path()), tables())?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_in_memory() -> Result<(), StorageError<u64>> {
    Suite::test_all(InMemory)
}

#[test]
fn openraft_storage_suite_on_disk() -> Result<(), StorageError<u64>> {
    Suite::test_all(OnDisk)
}

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 0), index)
}

fn normal(term: u64, index: u64, ops: &[Op]) -> Entry<TypeConfig> {
    let data = girder_proto::rlog::Ops {
        ops: ops_to_pb(ops),
    }
    .encode_to_vec();
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(super::super::raft::Batch(data)),
    }
}

#[test]
fn log_vote_committed_and_snapshot_survive_a_reopen() -> Result<(), StorageError<u64>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io)?;
    let dir = tempfile::tempdir().map_err(io)?;
    rt.block_on(async {
        let members = Membership::new(vec![BTreeSet::from([1u64, 2, 3])], None);
        {
            let (mut log, mut sm) = open(Some(dir.path()), tables())?;
            log.save_vote(&Vote::new_committed(2, 1)).await?;
            let entries = vec![
                Entry {
                    log_id: log_id(1, 1),
                    payload: EntryPayload::Membership(members.clone()),
                },
                normal(1, 2, &[Op::put("users", "a", "1")]),
                normal(2, 3, &[Op::put("users", "b", "2")]),
                normal(2, 4, &[Op::put("users", "a", "3")]),
            ];
            // The first three are applied and in a snapshot; the fourth is
            // committed after it.
            log.blocking_append(entries.clone()).await?;
            sm.apply(entries[..3].to_vec()).await?;
            sm.get_snapshot_builder().await.build_snapshot().await?;
            log.save_committed(Some(log_id(2, 4))).await?;
        }
        let t = tables();
        let (mut log, mut sm) = open(Some(dir.path()), t.clone())?;
        assert_eq!(log.read_vote().await?, Some(Vote::new_committed(2, 1)));
        assert_eq!(log.read_committed().await?, Some(log_id(2, 4)));
        let state = log.get_log_state().await?;
        assert_eq!(state.last_log_id, Some(log_id(2, 4)));
        let entries = log.try_get_log_entries(1..5).await?;
        assert_eq!(
            entries.iter().map(|e| e.log_id).collect::<Vec<_>>(),
            vec![log_id(1, 1), log_id(1, 2), log_id(2, 3), log_id(2, 4)]
        );
        // The snapshot's rows are back in memory, and its position is the
        // state machine's and the feed's.
        let (applied, membership) = sm.applied_state().await?;
        assert_eq!(applied, Some(log_id(2, 3)));
        assert_eq!(membership.membership(), &members);
        {
            let store = t.store.read();
            assert_eq!(store.get("users", b"a").as_deref(), Some(&b"1"[..]));
            assert_eq!(store.get("users", b"b").as_deref(), Some(&b"2"[..]));
        }
        assert_eq!(
            t.served
                .lock()
                .get(&crate::rlog::node::shard_feed("auth"))
                .map(|f| f.head()),
            Some(3)
        );
        // What openraft re-applies after the snapshot moves the rows on.
        sm.apply(entries[3..].to_vec()).await?;
        assert_eq!(
            t.store.read().get("users", b"a").as_deref(),
            Some(&b"3"[..])
        );
        // Purged entries stay purged across a reopen.
        log.purge(log_id(2, 3)).await?;
        drop((log, sm));
        let (mut log, _sm) = open(Some(dir.path()), tables())?;
        let state = log.get_log_state().await?;
        assert_eq!(state.last_purged_log_id, Some(log_id(2, 3)));
        assert_eq!(log.try_get_log_entries(0..5).await?.len(), 1);
        Ok(())
    })
}
