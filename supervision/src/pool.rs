//! A pool of arbiters (one event-loop thread each), to spread actors over cores.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_rt::{Arbiter, ArbiterHandle, System};
use parking_lot::Mutex;

use crate::error::SupervisionError;

/// A fixed set of arbiters with round-robin placement. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct ArbiterPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    handles: Vec<ArbiterHandle>,
    arbiters: Mutex<Vec<Arbiter>>,
    next: AtomicUsize,
}

impl ArbiterPool {
    /// Starts `count` arbiters. Must be called inside a running actix `System`.
    pub fn new(count: usize) -> Result<Self, SupervisionError> {
        if count == 0 {
            return Err(SupervisionError::EmptyPool);
        }
        if System::try_current().is_none() {
            return Err(SupervisionError::NoArbiter);
        }
        let arbiters: Vec<Arbiter> = (0..count).map(|_| Arbiter::new()).collect();
        let handles = arbiters.iter().map(Arbiter::handle).collect();
        Ok(ArbiterPool {
            inner: Arc::new(Inner {
                handles,
                arbiters: Mutex::new(arbiters),
                next: AtomicUsize::new(0),
            }),
        })
    }

    /// One arbiter per available core.
    pub fn per_core() -> Result<Self, SupervisionError> {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(n)
    }

    /// The number of arbiters.
    pub fn len(&self) -> usize {
        self.inner.handles.len()
    }

    /// Always false: a pool has at least one arbiter.
    pub fn is_empty(&self) -> bool {
        self.inner.handles.is_empty()
    }

    /// The arbiter at `index` modulo the pool size.
    pub fn get(&self, index: usize) -> ArbiterHandle {
        self.inner.handles[index % self.inner.handles.len()].clone()
    }

    /// The next arbiter, round-robin.
    pub fn next_arbiter(&self) -> ArbiterHandle {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed);
        self.get(i)
    }

    /// Stops every arbiter and waits for their threads (call after the tree is down).
    pub fn stop(&self) {
        let arbiters = std::mem::take(&mut *self.inner.arbiters.lock());
        for a in &arbiters {
            a.stop();
        }
        for a in arbiters {
            let _ = a.join();
        }
    }
}
