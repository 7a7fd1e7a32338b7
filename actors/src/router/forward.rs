//! Messages for other nodes' subscribers: each node with a matching route
//! gets one `Forward` per publisher flush, over its link, and routes the
//! messages to its own subscribers ([`ForwardReceiver`]).
//!
//! Order: a link delivers in order, and a publisher flushes its batches in
//! the order it routed them, so the messages of one publisher reach each
//! node in publish order. A `Forward` is always a cast; when it holds a
//! QoS 1 or 2 message, a barrier call follows it on the same link, and its
//! answer (which the receiver gives after routing everything before it)
//! is what the publisher's acknowledgements wait for ([`Accepted`]).
//!
//! A node whose link is down (or that does not answer in time) does not
//! hold the publisher: the forward counts as failed
//! (`emqx_messages_forward_failed`), as a subscriber on a node that is down
//! cannot be reached anyway.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use girder_broker::codec::QoS;
use girder_cluster::{NodeName, Payload, Process, RemoteMessage};
use girder_proto::broker as pb;
use tracing::{debug, warn};

use super::{DeliveryBatch, Mailbox, RouteTable, Router};
use crate::metrics::Metrics;
use crate::wire::{message_from_wire, message_to_wire};

/// The name every node's [`ForwardReceiver`] is registered under.
pub const FORWARD: &str = "girder.route.forward";

/// The payload type of a batch of forwarded messages.
const FORWARD_TYPE: &str = "girder.broker.v1.Forward";

/// The payload type of the barrier that confirms the forwards before it.
const BARRIER_TYPE: &str = "girder.broker.v1.ForwardBarrier";

/// How long a publisher's acknowledgements wait for a node to confirm.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves once every node sent QoS 1 or 2 messages has routed them (or
/// is known to be unreachable).
pub type Accepted = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Sends each node in `batch` its messages; see the module docs.
pub(super) fn send<S>(
    routes: &RouteTable,
    metrics: &Arc<Metrics>,
    batch: &mut DeliveryBatch<S>,
) -> Option<Accepted> {
    let now = Instant::now();
    let mut barriers = Vec::new();
    for (node, list) in batch.drain_remote() {
        let count = list.len() as u64;
        let Ok(name) = NodeName::parse(&node) else {
            // Route rows are written by nodes under their own names.
            warn!(%node, "a route row names no valid node");
            continue;
        };
        let confirm = list.iter().any(|d| d.message.qos != QoS::AtMostOnce);
        let forward = pb::Forward {
            messages: list
                .iter()
                .map(|d| pb::Forwarded {
                    message: Some(message_to_wire(&d.message, now)),
                    plain: d.plain,
                    groups: d
                        .groups
                        .iter()
                        .map(|(group, filter)| pb::SharedPick {
                            group: Bytes::copy_from_slice(group.as_bytes()),
                            filter: Bytes::copy_from_slice(filter.as_bytes()),
                        })
                        .collect(),
                })
                .collect(),
        };
        let payload = Payload::encode(FORWARD_TYPE, &forward);
        if let Err(err) = routes.cluster.send(&name, FORWARD, payload) {
            Metrics::add(&metrics.messages_forward_failed, count);
            debug!(node = %name, cause = %err, "forward not sent");
            continue;
        }
        Metrics::add(&metrics.messages_forward, count);
        if confirm {
            let cluster = routes.cluster.clone();
            let metrics = Arc::clone(metrics);
            barriers.push(async move {
                let barrier = Payload::new(BARRIER_TYPE, Bytes::new());
                if let Err(err) = cluster.call(&name, FORWARD, barrier, CONFIRM_TIMEOUT).await {
                    Metrics::add(&metrics.messages_forward_failed, count);
                    debug!(node = %name, cause = %err, "forward not confirmed");
                }
            });
        }
    }
    if barriers.is_empty() {
        return None;
    }
    Some(Box::pin(async move {
        futures::future::join_all(barriers).await;
    }))
}

/// Routes the messages other nodes forward to this node's subscribers, in
/// the order they arrive, and answers barriers. It runs on the link's
/// reader, without waiting on any actor: routing reads the index and sends
/// to mailboxes.
#[derive(Debug)]
pub struct ForwardReceiver<S> {
    router: Arc<Router<S>>,
}

impl<S: Mailbox> ForwardReceiver<S> {
    /// A receiver routing into `router`.
    pub fn new(router: Arc<Router<S>>) -> Self {
        Self { router }
    }

    fn route(&self, from: &NodeName, payload: &Payload) {
        let forward: pb::Forward = match payload.decode(FORWARD_TYPE) {
            Ok(forward) => forward,
            Err(err) => {
                warn!(%from, cause = %err, "forwarded messages not decodable, dropped");
                return;
            }
        };
        let now = Instant::now();
        let mut batch = DeliveryBatch::default();
        for forwarded in forward.messages {
            let Some(wire) = forwarded.message else {
                continue;
            };
            let message = match message_from_wire(wire, now) {
                Ok(message) => Arc::new(message),
                Err(err) => {
                    warn!(%from, cause = %err, "forwarded message refused");
                    continue;
                }
            };
            let groups: Vec<(&str, &str)> = forwarded
                .groups
                .iter()
                .filter_map(|pick| {
                    Some((
                        std::str::from_utf8(&pick.group).ok()?,
                        std::str::from_utf8(&pick.filter).ok()?,
                    ))
                })
                .collect();
            let got = self
                .router
                .route_forwarded(&message, forwarded.plain, &groups, &mut batch);
            if got == 0 {
                self.router.metrics().dropped_no_subscriber();
            }
        }
        self.router.flush_local(&mut batch);
    }
}

impl<S: Mailbox> Process for ForwardReceiver<S> {
    fn deliver(&self, msg: RemoteMessage) -> Result<(), RemoteMessage> {
        if msg.payload.type_name == FORWARD_TYPE {
            self.route(&msg.from, &msg.payload);
        }
        if let Some(reply) = msg.reply {
            reply.reply(Ok(Payload::new(BARRIER_TYPE, Bytes::new())));
        }
        Ok(())
    }
}
