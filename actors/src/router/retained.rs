//! Retained messages cluster-wide: the router's retained store mirrors the
//! consensus table `retained` (topic name → `girder.broker.v1.Retained`),
//! durable on the cores' disks.
//!
//! ```text
//!  channel actor ── Router::retain ──► local store (at once, limits checked)
//!                                  └─► queue ──► writer task ── rlog.write (one
//!                                                 batch per write, in order)
//!  rlog.watch("retained") ──► watch task ──► local store
//!  (every node, every change: its own writes too)
//! ```
//!
//! - **Write path.** A RETAIN publish (or a retained will) is applied to the
//!   local store at once, where the limits are checked (a refused one is
//!   counted and goes no further), and queued for the node's writer task.
//!   The writer takes everything queued and commits it as one consensus
//!   write (on a single node, one redb commit for the whole batch); while a
//!   write is in flight the next batch gathers. One writer per node keeps
//!   the order of this node's writes to a topic. An empty payload deletes
//!   the row.
//! - **Read path.** Every node's store is loaded from the table at start and
//!   then follows the table's changes; subscribers read the local store (no
//!   round trip on SUBSCRIBE). A watch that lags reloads the whole table.
//! - **Read your writes.** While a topic has writes of this node queued or
//!   in flight, the table's changes to that topic are not applied locally
//!   (they are older than what the local store holds); when the last one is
//!   settled (committed and applied here, or failed), the topic is read
//!   from the table again, which then has the last word.
//! - **Expiry.** Rows hold wall-clock deadlines, so that they survive a
//!   restart; an expired message is never sent. The clearer
//!   (`retainer.msg_clear_interval`) removes expired messages from the local
//!   store and, on cores, deletes their rows, guarded by the row's value so
//!   that a message retained since on that topic is not deleted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use girder_broker::message::Message;
use girder_broker::routing::RetainOutcome;
use girder_cluster::rlog::{Change, Op, Rlog, RlogError, Role};
use girder_proto::broker as pb;
use parking_lot::Mutex;
use prost::Message as _;
use tokio::sync::{broadcast, mpsc, Notify};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::{Mailbox, Router};
use crate::wire::{self, WireError};

/// Writes that may wait for the writer; a retained publish that finds the
/// queue full is refused (and counted).
const QUEUE: usize = 65_536;
/// Most writes in one consensus write.
const MAX_BATCH: usize = 1024;
/// Most row bytes in one consensus write (one write is taken whatever its
/// size).
const MAX_BATCH_BYTES: usize = 8 << 20;
/// How long the writer waits for its committed write to be applied here
/// before it reads the table again.
const APPLY_WAIT: Duration = Duration::from_secs(5);

/// The wall clock, in milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One queued change of the table, by this node.
#[derive(Debug)]
enum Write {
    /// Retain the encoded row on the topic.
    Put { topic: Arc<str>, row: Bytes },
    /// Clear the topic (a retained publish with an empty payload).
    Delete { topic: Arc<str> },
    /// Delete the topic's row if it still is `row` (which expired).
    DeleteExpired { topic: Arc<str>, row: Bytes },
}

impl Write {
    fn topic(&self) -> &Arc<str> {
        match self {
            Write::Put { topic, .. }
            | Write::Delete { topic }
            | Write::DeleteExpired { topic, .. } => topic,
        }
    }

    fn size(&self) -> usize {
        self.topic().len()
            + match self {
                Write::Put { row, .. } | Write::DeleteExpired { row, .. } => row.len(),
                Write::Delete { .. } => 0,
            }
    }
}

/// The replicated table behind a router's retained store, and this node's
/// writes to it that are not settled yet.
#[derive(Debug)]
pub struct RetainedTable {
    rlog: Rlog,
    table: &'static str,
    shard: String,
    queue: mpsc::Sender<Write>,
    /// Topics with writes of this node queued or in flight, and how many.
    /// Held while the local store is changed, so that the store and this
    /// map agree.
    pending: Mutex<HashMap<Arc<str>, usize>>,
    /// Woken when no write is pending any more.
    settled: Notify,
    /// Whether this node deletes expired rows (cores do; a replicant only
    /// clears its own store).
    clears_rows: bool,
}

/// The ops of a batch of writes to `table`, in order; a put or delete
/// overtaken by a later one on the same topic in the batch is left out.
fn batch_ops(table: &str, writes: Vec<Write>) -> Vec<Op> {
    let mut ops: Vec<Op> = Vec::with_capacity(writes.len());
    let mut last: HashMap<Arc<str>, usize> = HashMap::new();
    for write in writes {
        let (topic, value) = match write {
            Write::Put { topic, row } => (topic, Some(row)),
            Write::Delete { topic } => (topic, None),
            Write::DeleteExpired { topic, row } => {
                last.remove(&topic);
                ops.push(Op::guard(table, topic.as_bytes(), Some(row), 1));
                ops.push(Op::delete(table, key(&topic)));
                continue;
            }
        };
        let op = Op {
            table: table.to_owned(),
            key: key(&topic),
            value,
        };
        match last.get(&topic) {
            Some(&i) => ops[i] = op,
            None => {
                last.insert(topic, ops.len());
                ops.push(op);
            }
        }
    }
    ops
}

fn key(topic: &str) -> Bytes {
    Bytes::copy_from_slice(topic.as_bytes())
}

/// The tasks that keep a router's retained store and its table in step:
/// the writer and the watcher. Dropping it stops them.
#[derive(Debug)]
pub struct RetainedTasks {
    table: Arc<RetainedTable>,
    tasks: Vec<JoinHandle<()>>,
}

impl RetainedTasks {
    /// Waits (at most `timeout`) until every write of this node is settled,
    /// then stops the tasks. Call it once nothing publishes any more.
    pub async fn stop(self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let settled = self.table.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            let left = self.table.pending.lock().len();
            if left == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                warn!(
                    topics = left,
                    "retained messages not written to the table at shutdown"
                );
                break;
            }
        }
    }
}

impl Drop for RetainedTasks {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl<S: Mailbox> Router<S> {
    /// Makes the retained store a mirror of `table` (a consensus table of
    /// `rlog`): loads it now, then follows its changes and writes this
    /// node's retained messages to it, in tasks on the current runtime.
    pub fn replicate_retained(
        self: &Arc<Self>,
        rlog: Rlog,
        table: &'static str,
    ) -> Result<RetainedTasks, RlogError> {
        let shard = rlog
            .shard_of(table)
            .ok_or_else(|| RlogError::UnknownTable(table.to_owned()))?;
        let (queue, writes) = mpsc::channel(QUEUE);
        let changes = rlog.watch(table);
        let clears_rows = rlog.role() == Role::Core;
        let retained = Arc::new(RetainedTable {
            rlog,
            table,
            shard,
            queue,
            pending: Mutex::new(HashMap::new()),
            settled: Notify::new(),
            clears_rows,
        });
        if self.retained_table.set(Arc::clone(&retained)).is_err() {
            return Err(RlogError::InvalidOption(
                "the retained store already mirrors a table".to_owned(),
            ));
        }
        // Watching before the load: a change in between is applied twice,
        // none is missed.
        let loaded = self.reload_retained(&retained);
        info!(table, messages = loaded, "retained_table_loaded");
        let tasks = vec![
            tokio::spawn(write_loop(Arc::clone(self), Arc::clone(&retained), writes)),
            tokio::spawn(watch_loop(Arc::clone(self), Arc::clone(&retained), changes)),
        ];
        Ok(RetainedTasks {
            table: retained,
            tasks,
        })
    }

    /// [`Router::retain`] with a table: applied here at once, then queued
    /// for the writer.
    pub(super) fn retain_in_table(&self, table: &RetainedTable, message: &Message, now: Instant) {
        let Ok(permit) = table.queue.try_reserve() else {
            debug!(topic = %message.topic, "retained message refused: the table's queue is full");
            self.metrics.retained_refused();
            return;
        };
        let topic: Arc<str> = Arc::from(message.topic.as_str());
        let write = if message.payload.is_empty() {
            Write::Delete { topic }
        } else {
            let deadline = self.routing.retained_deadline(message, now);
            let row = wire::retained_to_row(message, deadline, now, unix_ms());
            Write::Put {
                topic,
                row: row.encode_to_vec().into(),
            }
        };
        let mut pending = table.pending.lock();
        if let RetainOutcome::Refused(_) = self.routing.retain(message, now) {
            self.metrics.retained_refused();
            return;
        }
        *pending.entry(Arc::clone(write.topic())).or_default() += 1;
        permit.send(write);
    }

    /// [`Router::purge_expired_retained`] with a table: expired messages
    /// leave the local store, and a core queues the deletion of their rows
    /// (each guarded by the expired row's value).
    pub(super) fn purge_in_table(&self, table: &RetainedTable, now: Instant) -> usize {
        let now_unix = unix_ms();
        let mut pending = table.pending.lock();
        let expired = self.routing.take_expired_retained(now);
        for topic in &expired {
            if pending.contains_key(topic) {
                // This node's write on it settles it.
                continue;
            }
            let Some(row) = table.rlog.read(table.table, topic.as_bytes()) else {
                continue;
            };
            match decode(&row, now, now_unix) {
                Ok((_, Some(deadline))) if deadline <= now => {
                    if !table.clears_rows {
                        continue;
                    }
                    let Ok(permit) = table.queue.try_reserve() else {
                        debug!(%topic, "expired retained row left: the table's queue is full");
                        continue;
                    };
                    *pending.entry(Arc::clone(topic)).or_default() += 1;
                    permit.send(Write::DeleteExpired {
                        topic: Arc::clone(topic),
                        row,
                    });
                }
                // The row is not the expired message (the wall clock says
                // otherwise, or it was replaced meanwhile): keep it here.
                _ => self.apply_retained_row(topic, Some(&row), now, now_unix),
            }
        }
        expired.len()
    }

    /// Makes the local store hold what `row` says of `topic` (`None`: no
    /// retained message).
    fn apply_retained_row(&self, topic: &str, row: Option<&Bytes>, now: Instant, now_unix: u64) {
        let Some(row) = row else {
            self.routing.retained_remove(topic);
            return;
        };
        match decode(row, now, now_unix) {
            Ok((message, deadline)) => {
                self.routing
                    .retained_put(topic, Arc::new(message), deadline);
            }
            Err(err) => {
                warn!(%topic, cause = %err, "retained row not understood: not retained here");
                self.routing.retained_remove(topic);
            }
        }
    }

    /// Makes the local store hold what the table holds, but for the topics
    /// with writes of this node pending; returns the rows of the table.
    fn reload_retained(&self, table: &RetainedTable) -> usize {
        let (now, now_unix) = (Instant::now(), unix_ms());
        let pending = table.pending.lock();
        let rows = table.rlog.scan(table.table, b"");
        let mut present = HashSet::with_capacity(rows.len());
        for (key, row) in &rows {
            let Ok(topic) = std::str::from_utf8(key) else {
                continue;
            };
            present.insert(topic);
            if !pending.contains_key(topic) {
                self.apply_retained_row(topic, Some(row), now, now_unix);
            }
        }
        for topic in self.routing.retained_topics() {
            if !present.contains(&*topic) && !pending.contains_key(&topic) {
                self.routing.retained_remove(&topic);
            }
        }
        rows.len()
    }

    /// A change of the table, as the watch reports it.
    fn retained_changed(&self, table: &RetainedTable, change: &Change) {
        let Ok(topic) = std::str::from_utf8(&change.key) else {
            return;
        };
        let pending = table.pending.lock();
        if pending.contains_key(topic) {
            return;
        }
        self.apply_retained_row(topic, change.value.as_ref(), Instant::now(), unix_ms());
        drop(pending);
    }

    /// This node's writes on `topics` are settled: a topic with none left
    /// pending takes the table's row.
    fn settle_retained(&self, table: &RetainedTable, topics: Vec<Arc<str>>) {
        let (now, now_unix) = (Instant::now(), unix_ms());
        let mut pending = table.pending.lock();
        for topic in topics {
            let Some(n) = pending.get_mut(&topic) else {
                continue;
            };
            *n -= 1;
            if *n == 0 {
                pending.remove(&topic);
                let row = table.rlog.read(table.table, topic.as_bytes());
                self.apply_retained_row(&topic, row.as_ref(), now, now_unix);
            }
        }
        if pending.is_empty() {
            table.settled.notify_waiters();
        }
    }
}

/// The message and deadline of an encoded row.
fn decode(
    row: &Bytes,
    now: Instant,
    now_unix: u64,
) -> Result<(Message, Option<Instant>), WireError> {
    let row = pb::Retained::decode(row.clone())?;
    wire::retained_from_row(row, now, now_unix)
}

/// The writer: takes what is queued, commits it as one write, settles it;
/// one write at a time, so this node's writes keep their order.
async fn write_loop<S: Mailbox>(
    router: Arc<Router<S>>,
    table: Arc<RetainedTable>,
    mut writes: mpsc::Receiver<Write>,
) {
    while let Some(first) = writes.recv().await {
        let mut bytes = first.size();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match writes.try_recv() {
                Ok(write) => {
                    bytes += write.size();
                    batch.push(write);
                }
                Err(_) => break,
            }
        }
        let topics: Vec<Arc<str>> = batch.iter().map(|w| Arc::clone(w.topic())).collect();
        let ops = batch_ops(table.table, batch);
        match table.rlog.write(&table.shard, ops).await {
            Ok(index) => {
                if !table
                    .rlog
                    .wait_applied(&table.shard, index, APPLY_WAIT)
                    .await
                {
                    debug!(index, "retained write committed, not applied here yet");
                }
            }
            Err(err) => {
                warn!(cause = %err, writes = topics.len(), "retained messages not written to the table");
            }
        }
        router.settle_retained(&table, topics);
    }
}

/// The watcher: applies the table's changes to the local store; reloads
/// the whole table when it lagged behind.
async fn watch_loop<S: Mailbox>(
    router: Arc<Router<S>>,
    table: Arc<RetainedTable>,
    mut changes: broadcast::Receiver<Change>,
) {
    loop {
        match changes.recv().await {
            Ok(change) => router.retained_changed(&table, &change),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                warn!(missed, "retained table watch lagged: reloading the table");
                router.reload_retained(&table);
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(topic: &str, row: &'static [u8]) -> Write {
        Write::Put {
            topic: topic.into(),
            row: Bytes::from_static(row),
        }
    }

    #[test]
    fn a_batch_keeps_the_last_write_of_each_topic_and_guards_expired_deletes() {
        let writes = vec![
            put("a", b"1"),
            put("b", b"1"),
            put("a", b"2"),
            Write::Delete { topic: "b".into() },
            Write::DeleteExpired {
                topic: "a".into(),
                row: Bytes::from_static(b"2"),
            },
            put("a", b"3"),
        ];
        let ops = batch_ops("retained", writes);
        let shown: Vec<(String, Option<&[u8]>)> = ops
            .iter()
            .map(|op| {
                (
                    String::from_utf8_lossy(&op.key).into_owned(),
                    op.value.as_deref(),
                )
            })
            .collect();
        let guard = Op::guard("retained", b"a", Some(Bytes::from_static(b"2")), 1);
        assert_eq!(
            shown,
            vec![
                ("a".to_owned(), Some(&b"2"[..])),
                ("b".to_owned(), None),
                (
                    String::from_utf8_lossy(&guard.key).into_owned(),
                    Some(&b"2"[..])
                ),
                ("a".to_owned(), None),
                ("a".to_owned(), Some(&b"3"[..])),
            ]
        );
        assert!(ops.iter().all(|op| op.table == "retained"));
    }

    #[test]
    fn a_row_keeps_wall_clock_expiries() {
        use girder_broker::codec::{ByteStr, QoS};

        let now = Instant::now();
        let mut message = Message::new(
            ByteStr::from("t"),
            Bytes::from_static(b"p"),
            QoS::AtLeastOnce,
            true,
            ByteStr::from("c"),
            now,
        );
        message.expires_at = Some(now + Duration::from_secs(10));
        message.expiry_sent = true;
        let deadline = Some(now + Duration::from_secs(8));
        let row = wire::retained_to_row(&message, deadline, now, 1_000_000);
        assert_eq!(row.expires_at_unix_ms, Some(1_008_000));
        let row = Bytes::from(row.encode_to_vec());

        // Read 3 s later (of wall clock) by a node whose `Instant`s differ.
        let there = Instant::now() + Duration::from_secs(100);
        let (got, deadline) = decode(&row, there, 1_003_000).unwrap();
        assert_eq!(deadline, Some(there + Duration::from_secs(5)));
        assert_eq!(got.remaining_expiry(there), Some(7));
        assert_eq!(&got.payload[..], b"p");

        // Read after the deadline: expired at once.
        let (_, deadline) = decode(&row, there, 1_009_000).unwrap();
        assert_eq!(deadline, Some(there));
        assert!(decode(&Bytes::from_static(b"\xff\xff"), there, 0).is_err());
    }
}
