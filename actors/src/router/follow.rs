//! The other nodes' route rows, followed into the router's remote routes
//! (DESIGN §4: an actor watches a table; the router uses it).
//!
//! [`RouteFollower`] is a permanent worker under the node's root. It reads
//! the whole route table when it starts (and again whenever it fell behind
//! the table's change feed), then applies each change of another node's
//! rows. Link events mark a node down at once, so that no message is
//! forwarded into a dead link while its rows wait out the grace period,
//! and up again when its link is back. A restarted follower starts over
//! from the table.

use std::collections::HashSet;
use std::sync::Arc;

use actix::{Actor, ActorContext, AsyncContext, Context, StreamHandler};
use futures::stream::{self, StreamExt};
use girder_cluster::rlog::Change;
use girder_cluster::NodeEvent;
use girder_supervision::ChildSpec;
use tokio::sync::broadcast::{self, error::RecvError};
use tracing::{debug, info};

use super::{Mailbox, RouteTable, Router};

/// What the follower reacts to.
#[derive(Debug)]
pub enum Input {
    /// A change of the route table, or how the feed failed.
    Change(Result<Change, RecvError>),
    /// A link went up or down, or how the feed failed.
    Node(Result<NodeEvent, RecvError>),
}

impl actix::Message for Input {
    type Result = ();
}

/// Follows the route table's rows of other nodes into `router`.
#[derive(Debug)]
pub struct RouteFollower<S> {
    router: Arc<Router<S>>,
}

/// A broadcast receiver as a stream that ends when the sender is gone.
fn feed<T: Clone + Send + 'static>(
    rx: broadcast::Receiver<T>,
) -> impl futures::Stream<Item = Result<T, RecvError>> {
    stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Err(RecvError::Closed) => None,
            result => Some((result, rx)),
        }
    })
}

impl<S: Mailbox + Unpin> RouteFollower<S> {
    /// The child spec of the follower of `router`'s route table; `None` when
    /// the router writes no route table (no cluster side).
    pub fn child_spec(router: &Arc<Router<S>>) -> Option<ChildSpec> {
        router.route_table()?;
        let router = Arc::clone(router);
        Some(ChildSpec::worker("route_follower", move || RouteFollower {
            router: Arc::clone(&router),
        }))
    }

    fn table(&self) -> &RouteTable {
        self.router
            .route_table()
            .expect("started only with a route table")
    }

    /// Reads every other node's rows again and marks the nodes without a
    /// link down.
    fn resync(&self) {
        let table = self.table();
        let me = table.node.to_string();
        let rows = table.rlog.scan_owned(table.table, b"");
        let routes: Vec<(String, String)> = rows
            .into_iter()
            .filter_map(|(key, owner, _)| {
                let owner = owner.to_string();
                let key = String::from_utf8(key.to_vec()).ok()?;
                (owner != me).then_some((key, owner))
            })
            .collect();
        let routing = self.router.routing();
        routing.reset_remote_routes(routes.iter().map(|(k, n)| (k.as_str(), n.as_str())));
        let connected: HashSet<String> = table
            .cluster
            .connected()
            .iter()
            .map(ToString::to_string)
            .collect();
        let owners: HashSet<&String> = routes.iter().map(|(_, n)| n).collect();
        for owner in owners {
            routing.set_node_down(owner, !connected.contains(owner));
        }
        info!(
            routes = routes.len(),
            "remote routes read from the route table"
        );
    }

    fn apply(&self, change: Change) {
        let Some(owner) = change.owner.map(|o| o.to_string()) else {
            return;
        };
        let table = self.table();
        if change.table != table.table || owner == table.node.to_string() {
            return;
        }
        let Ok(key) = std::str::from_utf8(&change.key) else {
            return;
        };
        let routing = self.router.routing();
        if change.value.is_some() {
            routing.add_remote_route(key, &owner);
        } else {
            routing.remove_remote_route(key, &owner);
        }
    }
}

impl<S: Mailbox + Unpin> Actor for RouteFollower<S> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Subscribe first, then read: no change falls in between.
        let table = self.table();
        let changes = feed(table.rlog.watch(table.table)).map(Input::Change);
        let events = feed(table.cluster.subscribe()).map(Input::Node);
        ctx.add_stream(stream::select(changes, events));
        self.resync();
    }
}

impl<S: Mailbox + Unpin> StreamHandler<Input> for RouteFollower<S> {
    fn handle(&mut self, input: Input, _ctx: &mut Context<Self>) {
        match input {
            Input::Change(Ok(change)) => self.apply(change),
            Input::Change(Err(_)) => {
                debug!("route table feed fell behind: reading the table again");
                self.resync();
            }
            Input::Node(Ok(NodeEvent::Down(node, reason))) => {
                debug!(%node, ?reason, "node down: its routes are not used");
                self.router.routing().set_node_down(&node.to_string(), true);
            }
            Input::Node(Ok(NodeEvent::Up(node))) => {
                self.router
                    .routing()
                    .set_node_down(&node.to_string(), false);
            }
            // Missed link events: the links are read again with the table.
            Input::Node(Err(_)) => self.resync(),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        // A feed ended: the cluster side is stopping.
        ctx.stop();
    }
}
