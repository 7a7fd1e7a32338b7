//! Ordered feeds and their followers, as pure state machines.
//!
//! A [`Feed`] is the server side of one ordered stream: a consensus shard's
//! applied log on a core (position = Raft log index, the same on every core)
//! or a node's own owned rows (position = the owner's sequence number, epoch
//! = its incarnation). It keeps the last `retain` entries; a subscriber that
//! asks to resume from a position still held gets the entries after it, any
//! other gets a full copy (chunks of rows) and then the entries. At most
//! `window` entries are sent beyond what the subscriber acknowledged, so a
//! slow subscriber holds the server back instead of growing a queue.
//!
//! A [`Follow`] is the subscriber side: it checks sessions, epochs and
//! positions, turns pushes into [`Step`]s for the shell to carry out, and
//! notices gaps.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use girder_proto::rlog as pb;
use prost::Message;

use crate::options::NodeName;
use crate::rlog::store::Op;

/// Rows per snapshot chunk, and entries per push.
const ROWS_PER_PUSH: usize = 10_000;
const ENTRIES_PER_PUSH: usize = 1_000;
/// Ops per push, and per subscriber per round of the pump (the rest goes
/// out on the next round, which the subscriber's acknowledgement triggers).
const OPS_PER_PUSH: usize = 10_000;
const OPS_PER_ROUND: usize = 50_000;

/// Converts ops to their wire form.
pub(crate) fn ops_to_pb(ops: &[Op]) -> Vec<pb::Op> {
    ops.iter()
        .map(|o| pb::Op {
            table: o.table.clone(),
            key: o.key.to_vec(),
            value: o.value.as_ref().map(|v| v.to_vec()),
        })
        .collect()
}

/// Converts ops from their wire form.
pub(crate) fn ops_from_pb(ops: Vec<pb::Op>) -> Vec<Op> {
    ops.into_iter()
        .map(|o| Op {
            table: o.table,
            key: Bytes::from(o.key),
            value: o.value.map(Bytes::from),
        })
        .collect()
}

#[derive(Debug)]
struct Sub {
    session: u64,
    /// The last position sent.
    sent: u64,
    /// The last position the subscriber acknowledged.
    acked: u64,
    /// A full copy must be sent before anything else.
    needs_snapshot: bool,
    /// Something was sent in this session (else an empty push tells the
    /// subscriber that the subscription is served, and the head).
    greeted: bool,
}

/// One retained entry, kept encoded: one allocation per entry instead of
/// one per op, table name, key and value (a node's owned feed holds an entry
/// for every client that connected lately, up to `retain` of them).
#[derive(Debug)]
struct Retained {
    /// Ops in the entry.
    ops: u32,
    /// The `pb::Entry`, encoded.
    encoded: Box<[u8]>,
}

/// The server side of one feed.
#[derive(Debug)]
pub(crate) struct Feed {
    name: String,
    epoch: u64,
    head: u64,
    /// The entries up to `head`, contiguous: the last is at `head`.
    ring: VecDeque<Retained>,
    retain: usize,
    window: u64,
    subs: HashMap<NodeName, Sub>,
}

impl Feed {
    /// A feed at position `head` with no retained entries.
    pub(crate) fn new(name: &str, epoch: u64, head: u64, retain: usize, window: u64) -> Self {
        Self {
            name: name.to_owned(),
            epoch,
            head,
            ring: VecDeque::new(),
            retain: retain.max(1),
            window: window.max(1),
            subs: HashMap::new(),
        }
    }

    /// The last position.
    pub(crate) fn head(&self) -> u64 {
        self.head
    }

    /// The oldest position a subscriber may resume from without a full copy.
    fn oldest_resumable(&self) -> u64 {
        self.head.saturating_sub(self.ring.len() as u64)
    }

    /// Appends the entry at `pos`. A position that does not follow the head
    /// (a snapshot was installed underneath) restarts the retained range.
    pub(crate) fn append(&mut self, pos: u64, ops: Vec<pb::Op>, at_ms: u64) {
        if pos == 0 {
            // Raft's index 0 is the initial membership: no rows, and 0 is
            // the position of a follower that holds nothing.
            return;
        }
        if pos != self.head + 1 {
            self.ring.clear();
        }
        self.head = pos;
        let entry = pb::Entry { pos, ops, at_ms };
        self.ring.push_back(Retained {
            ops: u32::try_from(entry.ops.len()).unwrap_or(u32::MAX),
            encoded: entry.encode_to_vec().into_boxed_slice(),
        });
        while self.ring.len() > self.retain {
            self.ring.pop_front();
        }
    }

    /// Jumps to `pos` with nothing retained (a Raft snapshot was installed).
    pub(crate) fn reset(&mut self, pos: u64) {
        self.ring.clear();
        self.head = pos;
        for sub in self.subs.values_mut() {
            sub.needs_snapshot = true;
        }
    }

    /// Handles a subscribe (or, with the current session, an acknowledgement).
    pub(crate) fn subscribe(&mut self, from: &NodeName, req: &pb::Subscribe) {
        if let Some(sub) = self.subs.get_mut(from) {
            if sub.session == req.session {
                sub.acked = sub.acked.max(req.from);
                return;
            }
        }
        let resumable = req.epoch == self.epoch && req.from >= self.oldest_resumable();
        self.subs.insert(
            from.clone(),
            Sub {
                session: req.session,
                sent: if resumable { req.from } else { 0 },
                acked: if resumable { req.from } else { 0 },
                needs_snapshot: !resumable,
                greeted: false,
            },
        );
    }

    /// Forgets a subscriber.
    pub(crate) fn unsubscribe(&mut self, node: &NodeName) {
        self.subs.remove(node);
    }

    /// Subscribers and the positions they acknowledged.
    pub(crate) fn subscribers(&self) -> Vec<(NodeName, u64)> {
        self.subs
            .iter()
            .map(|(n, s)| (n.clone(), s.acked))
            .collect()
    }

    /// What to send now, to whom. `rows` gives a full copy at `head`.
    pub(crate) fn pump(&mut self, rows: &mut dyn FnMut() -> Vec<Op>) -> Vec<(NodeName, pb::Push)> {
        let mut out = Vec::new();
        let oldest = self.oldest_resumable();
        let mut copy: Option<Vec<Op>> = None;
        for (node, sub) in &mut self.subs {
            if !sub.needs_snapshot && sub.sent < oldest {
                sub.needs_snapshot = true;
            }
            let base = pb::Push {
                feed: self.name.clone(),
                epoch: self.epoch,
                session: sub.session,
                head: self.head,
                ..Default::default()
            };
            if sub.needs_snapshot {
                let all = copy.get_or_insert_with(&mut *rows);
                let mut chunks = all.chunks(ROWS_PER_PUSH).peekable();
                let mut first = true;
                if chunks.peek().is_none() {
                    out.push((
                        node.clone(),
                        snapshot_push(&base, &[], true, true, self.head),
                    ));
                }
                while let Some(chunk) = chunks.next() {
                    let done = chunks.peek().is_none();
                    out.push((
                        node.clone(),
                        snapshot_push(&base, chunk, first, done, self.head),
                    ));
                    first = false;
                }
                sub.needs_snapshot = false;
                sub.greeted = true;
                sub.sent = self.head;
                sub.acked = self.head;
                continue;
            }
            if !sub.greeted && sub.sent >= self.head.min(sub.acked + self.window) {
                // Nothing to send yet (an idle feed, or a server behind the
                // subscriber's position): say the subscription is served.
                out.push((node.clone(), base.clone()));
            }
            sub.greeted = true;
            let limit = self.head.min(sub.acked + self.window);
            let mut ops_this_round = 0;
            while sub.sent < limit && ops_this_round < OPS_PER_ROUND {
                let start = (sub.sent - oldest) as usize;
                let most = ((limit - sub.sent) as usize).min(ENTRIES_PER_PUSH);
                // Cut the push at OPS_PER_PUSH ops (at least one entry), so
                // no frame on the link is large enough to delay heartbeats.
                let mut entries = Vec::new();
                let mut ops = 0;
                for e in self.ring.range(start..start + most) {
                    let n = e.ops as usize;
                    if !entries.is_empty() && ops + n > OPS_PER_PUSH {
                        break;
                    }
                    match pb::Entry::decode(&*e.encoded) {
                        Ok(entry) => entries.push(entry),
                        // Not expected (the feed encoded it); a full copy
                        // repairs whatever it was.
                        Err(_) => break,
                    }
                    ops += n;
                }
                if entries.is_empty() {
                    sub.needs_snapshot = true;
                    break;
                }
                ops_this_round += ops;
                sub.sent += entries.len() as u64;
                out.push((
                    node.clone(),
                    pb::Push {
                        entries,
                        ..base.clone()
                    },
                ));
            }
        }
        out
    }
}

fn snapshot_push(base: &pb::Push, rows: &[Op], first: bool, done: bool, pos: u64) -> pb::Push {
    pb::Push {
        rows: rows
            .iter()
            .map(|o| pb::Row {
                table: o.table.clone(),
                key: o.key.to_vec(),
                value: o.value.as_ref().map(|v| v.to_vec()).unwrap_or_default(),
            })
            .collect(),
        snapshot: true,
        first,
        done,
        snapshot_pos: pos,
        ..base.clone()
    }
}

/// What a follower's shell does with a push.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Drop every row of the feed (a full copy begins).
    Clear,
    /// Apply these ops (rows of a copy, or one entry).
    Apply(Vec<Op>),
    /// Acknowledge the position to the server.
    Ack(u64),
    /// A gap or a broken copy: subscribe again from the current position.
    Resubscribe,
}

/// The subscriber side of one feed.
#[derive(Debug, Clone)]
pub(crate) struct Follow {
    /// The server followed, if any.
    pub(crate) server: Option<NodeName>,
    /// The server's epoch of `pos`.
    pub(crate) epoch: u64,
    /// The last position applied.
    pub(crate) pos: u64,
    /// The current subscription.
    pub(crate) session: u64,
    /// The server's head as last reported.
    pub(crate) head: u64,
    /// A copy is arriving.
    in_copy: bool,
    /// Pushes were received in this session.
    pub(crate) live: bool,
    /// Full copies received.
    pub(crate) copies: u64,
}

impl Default for Follow {
    fn default() -> Self {
        Self::new()
    }
}

impl Follow {
    /// A follower at position 0 of no epoch.
    pub(crate) fn new() -> Self {
        Self {
            server: None,
            epoch: 0,
            pos: 0,
            session: 0,
            head: 0,
            in_copy: false,
            live: false,
            copies: 0,
        }
    }

    /// Starts a subscription to `server`; returns the request to send.
    pub(crate) fn subscribe(
        &mut self,
        feed: &str,
        server: NodeName,
        session: u64,
    ) -> pb::Subscribe {
        self.server = Some(server);
        self.session = session;
        self.in_copy = false;
        self.live = false;
        pb::Subscribe {
            feed: feed.to_owned(),
            epoch: self.epoch,
            from: self.pos,
            session,
        }
    }

    /// Entries behind the server's head.
    pub(crate) fn lag(&self) -> u64 {
        self.head.saturating_sub(self.pos)
    }

    /// Handles a push from `from`; pushes of other sessions are ignored.
    /// Returns the steps and, per applied entry, its commit time.
    pub(crate) fn on_push(&mut self, from: &NodeName, push: pb::Push) -> (Vec<Step>, Vec<u64>) {
        let mut steps = Vec::new();
        let mut times = Vec::new();
        if push.session != self.session || self.server.as_ref() != Some(from) {
            return (steps, times);
        }
        self.live = true;
        self.head = self.head.max(push.head);
        if push.snapshot {
            if push.first {
                self.in_copy = true;
                steps.push(Step::Clear);
            } else if !self.in_copy {
                return (vec![Step::Resubscribe], times);
            }
            steps.push(Step::Apply(
                push.rows
                    .into_iter()
                    .map(|r| Op {
                        table: r.table,
                        key: Bytes::from(r.key),
                        value: Some(Bytes::from(r.value)),
                    })
                    .collect(),
            ));
            if push.done {
                self.in_copy = false;
                self.epoch = push.epoch;
                self.pos = push.snapshot_pos;
                self.copies += 1;
                steps.push(Step::Ack(self.pos));
            }
            return (steps, times);
        }
        if self.in_copy || push.epoch != self.epoch {
            return (vec![Step::Resubscribe], times);
        }
        for entry in push.entries {
            if entry.pos <= self.pos {
                continue;
            }
            if entry.pos != self.pos + 1 {
                steps.push(Step::Resubscribe);
                return (steps, times);
            }
            self.pos = entry.pos;
            times.push(entry.at_ms);
            steps.push(Step::Apply(ops_from_pb(entry.ops)));
        }
        steps.push(Step::Ack(self.pos));
        (steps, times)
    }
}

#[cfg(test)]
#[path = "feed_test.rs"]
mod tests;
