//! Routing shards: one supervised actor per shard of the subscriber index
//! (EMQX's `emqx_router` pool workers), under the node's `router`
//! supervisor (one_for_one, permanent children).
//!
//! ```text
//!  router (one_for_one)
//!  ├─ shard:0      WriteRoute(filter) ──► route row of filter: present
//!  ├─ ...                                   while the index uses it
//!  └─ shard:N      (the wildcard shard)
//! ```
//!
//! A shard actor writes the route rows of its shard's filters, one at a
//! time. It owns no routing state: the index lives in the node's [`Router`]
//! and publishers read it directly (no mailbox hop on the publish path), so
//! a shard actor that dies loses no subscription. What it may lose is
//! route-row writes that were in its mailbox: a restarted shard actor
//! therefore rebuilds the shard's part of the route table from the index
//! (rows for every used filter, none for the others). Changes made while
//! no shard actor has attached yet (before the first start) are written by
//! the subscriber's actor itself.

use std::sync::Arc;

use actix::prelude::*;
use girder_supervision::{
    ChildSpec, Placement, ProcessContext, Strategy, SupFlags, SupervisorSpec,
};
use tracing::{debug, info};

use super::{Mailbox, Router};

/// The registered name of routing shard `shard`.
pub fn shard_name(shard: usize) -> String {
    format!("router:shard:{shard}")
}

/// The filter's use on this node changed: write its route row.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(super) struct WriteRoute(pub(super) Box<str>);

/// The actor of one routing shard. See the module documentation.
#[derive(Debug)]
pub struct RoutingShard<S: Mailbox + Unpin> {
    router: Arc<Router<S>>,
    shard: usize,
}

impl<S: Mailbox + Unpin> RoutingShard<S> {
    /// The `router` supervisor: one permanent shard actor per index shard,
    /// spread over the node's arbiters.
    pub fn supervisor(router: &Arc<Router<S>>) -> ChildSpec {
        let mut spec = SupervisorSpec::new(SupFlags::new(Strategy::OneForOne));
        for shard in 0..router.shard_count() {
            let router = Arc::clone(router);
            spec = spec.child(
                ChildSpec::worker(format!("shard:{shard}"), move || RoutingShard {
                    router: Arc::clone(&router),
                    shard,
                })
                .placement(Placement::RoundRobin),
            );
        }
        spec.into_child_spec("router")
    }
}

impl<S: Mailbox + Unpin> Actor for RoutingShard<S> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Err(err) = ctx.register(&shard_name(self.shard)) {
            debug!(shard = self.shard, cause = %err, "routing shard name not registered");
        }
        // Changes from now on come here; those lost with a previous
        // incarnation are in the index, which the rebuild reads after this.
        let restarted = self
            .router
            .attach_shard(self.shard, ctx.address().recipient());
        if restarted {
            let written = self.router.rebuild_routes(self.shard);
            info!(shard = self.shard, written, "routing_shard_rebuilt");
        }
    }
}

impl<S: Mailbox + Unpin> Handler<WriteRoute> for RoutingShard<S> {
    type Result = ();

    fn handle(&mut self, WriteRoute(filter): WriteRoute, _ctx: &mut Context<Self>) {
        self.router.write_route_row(&filter);
    }
}
