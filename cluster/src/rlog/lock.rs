//! The lease lock: exclusive ownership of a key (a client id) granted by a
//! majority of the cores, for a lease the holder renews. Each core keeps a
//! [`LockTable`] (pure); the holder's [`LeaseLock`] asks every core and holds
//! the lock only while a majority granted it and the lease runs.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::join_all;
use girder_proto::rlog as pb;

use super::msg::{RlogMsg, T_LOCK_REPLY};
use super::node::RLOG;
use super::RlogError;
use crate::handle::ClusterHandle;
use crate::options::NodeName;

#[derive(Debug)]
struct Held {
    owner: NodeName,
    token: u64,
    until: Instant,
}

/// The locks one core has granted.
#[derive(Debug, Default)]
pub(crate) struct LockTable {
    held: HashMap<Bytes, Held>,
}

impl LockTable {
    /// Grants `key` to (`owner`, `token`) until `now + lease` if it is free,
    /// expired, or already theirs (a renewal); else names the holder.
    pub(crate) fn acquire(
        &mut self,
        key: Bytes,
        owner: &NodeName,
        token: u64,
        lease: Duration,
        now: Instant,
    ) -> Result<(), NodeName> {
        match self.held.get(&key) {
            Some(h) if h.until > now && (h.owner != *owner || h.token != token) => {
                Err(h.owner.clone())
            }
            _ => {
                self.held.insert(
                    key,
                    Held {
                        owner: owner.clone(),
                        token,
                        until: now + lease,
                    },
                );
                Ok(())
            }
        }
    }

    /// Releases `key` if (`owner`, `token`) holds it.
    pub(crate) fn release(&mut self, key: &[u8], owner: &NodeName, token: u64) {
        if self
            .held
            .get(key)
            .is_some_and(|h| h.owner == *owner && h.token == token)
        {
            self.held.remove(key);
        }
        if self.held.len() > 1024 {
            let now = Instant::now();
            self.held.retain(|_, h| h.until > now);
        }
    }

    /// Answers a `Lock` request from `from`.
    pub(crate) fn handle(&mut self, from: &NodeName, req: pb::Lock) -> pb::LockReply {
        if req.release {
            self.release(&req.key, from, req.token);
            return pb::LockReply {
                granted: true,
                holder: String::new(),
            };
        }
        let lease = Duration::from_millis(req.lease_ms);
        match self.acquire(Bytes::from(req.key), from, req.token, lease, Instant::now()) {
            Ok(()) => pb::LockReply {
                granted: true,
                holder: from.to_string(),
            },
            Err(holder) => pb::LockReply {
                granted: false,
                holder: holder.to_string(),
            },
        }
    }
}

/// A lock held on a majority of the cores until `valid_until`; renew it
/// before then, release it when done (dropping it lets the lease run out).
#[derive(Debug)]
pub struct LeaseLock {
    handle: ClusterHandle,
    cores: Vec<NodeName>,
    key: Bytes,
    token: u64,
    lease: Duration,
    valid_until: Instant,
}

impl LeaseLock {
    /// Takes the lock on `key` for `lease` from a majority of `cores`.
    pub(crate) async fn acquire(
        handle: ClusterHandle,
        cores: Vec<NodeName>,
        key: Bytes,
        lease: Duration,
    ) -> Result<Self, RlogError> {
        let mut lock = Self {
            handle,
            cores,
            key,
            token: rand::random(),
            lease,
            valid_until: Instant::now(),
        };
        lock.renew().await?;
        Ok(lock)
    }

    /// The key.
    pub fn key(&self) -> &Bytes {
        &self.key
    }

    /// Until when the lock is held for sure (the lease, counted from before
    /// the request was sent, so the cores' leases outlast it).
    pub fn valid_until(&self) -> Instant {
        self.valid_until
    }

    /// Extends the lease on a majority; on failure the lock is released
    /// wherever it was granted and must be considered lost.
    pub async fn renew(&mut self) -> Result<(), RlogError> {
        let started = Instant::now();
        let replies = self.ask(false).await;
        let granted = replies
            .iter()
            .filter(|r| r.as_ref().is_some_and(|r| r.granted))
            .count();
        if granted > self.cores.len() / 2 {
            self.valid_until = started + self.lease;
            return Ok(());
        }
        let holder = replies
            .into_iter()
            .flatten()
            .find(|r| !r.granted)
            .map(|r| r.holder)
            .unwrap_or_else(|| "no majority of cores reachable".into());
        self.ask(true).await;
        Err(RlogError::Locked {
            key: String::from_utf8_lossy(&self.key).into_owned(),
            holder,
        })
    }

    /// Releases the lock on every core.
    pub async fn release(self) {
        self.ask(true).await;
    }

    async fn ask(&self, release: bool) -> Vec<Option<pb::LockReply>> {
        let payload = RlogMsg::Lock(pb::Lock {
            key: self.key.to_vec(),
            token: self.token,
            lease_ms: self.lease.as_millis() as u64,
            release,
        })
        .encode();
        let timeout = (self.lease / 4).clamp(Duration::from_millis(50), Duration::from_secs(2));
        let calls = self.cores.iter().map(|core| {
            let payload = payload.clone();
            async move {
                let reply = self.handle.call(core, RLOG, payload, timeout).await.ok()?;
                reply.decode::<pb::LockReply>(T_LOCK_REPLY).ok()
            }
        });
        join_all(calls).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> NodeName {
        NodeName::parse(s).expect("valid name")
    }

    #[test]
    fn one_holder_at_a_time_until_the_lease_runs_out() {
        let mut t = LockTable::default();
        let now = Instant::now();
        let lease = Duration::from_secs(5);
        let key = Bytes::from("client-1");
        assert_eq!(t.acquire(key.clone(), &n("a@h"), 1, lease, now), Ok(()));
        assert_eq!(
            t.acquire(key.clone(), &n("b@h"), 2, lease, now),
            Err(n("a@h"))
        );
        // The holder renews with its token; another token of the same node is refused.
        assert_eq!(t.acquire(key.clone(), &n("a@h"), 1, lease, now), Ok(()));
        assert_eq!(
            t.acquire(key.clone(), &n("a@h"), 9, lease, now),
            Err(n("a@h"))
        );
        // After the lease, anyone may take it.
        let later = now + lease + Duration::from_millis(1);
        assert_eq!(t.acquire(key.clone(), &n("b@h"), 2, lease, later), Ok(()));
        // Only the holder's release counts.
        t.release(&key, &n("a@h"), 1);
        assert_eq!(
            t.acquire(key.clone(), &n("c@h"), 3, lease, later),
            Err(n("b@h"))
        );
        t.release(&key, &n("b@h"), 2);
        assert_eq!(t.acquire(key, &n("c@h"), 3, lease, later), Ok(()));
    }
}
