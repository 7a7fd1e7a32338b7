//! The retained-message clearer (EMQX's `retainer.msg_clear_interval`):
//! a supervised worker that removes expired retained messages from the
//! router's store every interval. Until it does, an expired message is no
//! longer sent to new subscribers but keeps its place in the store, so it
//! still counts against `retainer.max_retained_messages` (without a
//! clearer, a full store removes its expired messages itself when a new
//! topic would not fit). With the replicated `retained` table, a core's
//! clearer also deletes the expired rows (see `router::retained`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext, Context};
use girder_supervision::ChildSpec;
use tracing::debug;

use crate::router::{Mailbox, Router};

/// Removes expired retained messages every `interval`.
#[derive(Debug)]
pub struct RetainedClearer<S> {
    router: Arc<Router<S>>,
    interval: Duration,
}

impl<S: Mailbox + Unpin> RetainedClearer<S> {
    /// A clearer of `router`'s retained store.
    pub fn new(router: Arc<Router<S>>, interval: Duration) -> Self {
        Self { router, interval }
    }

    /// The child spec of a permanent worker clearing `router` every
    /// `interval` (restarted by its supervisor if it fails).
    pub fn child_spec(router: Arc<Router<S>>, interval: Duration) -> ChildSpec {
        ChildSpec::worker("retainer", move || {
            RetainedClearer::new(Arc::clone(&router), interval)
        })
    }

    fn clear(&mut self) {
        let removed = self.router.purge_expired_retained(Instant::now());
        if removed > 0 {
            debug!(removed, "expired retained messages removed");
        }
    }
}

impl<S: Mailbox + Unpin> Actor for RetainedClearer<S> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.interval, |act, _| act.clear());
    }
}
