//! The channel actor as a subscriber: the handle the router's index and the
//! publishers' delivery batches hold.

use std::hash::{Hash, Hasher};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use actix::Addr;
use girder_broker::codec::ByteStr;
use girder_broker::message::Delivery;
use girder_broker::routing;

use super::{ChannelActor, Deliver};
use crate::router::Mailbox;

/// One live subscriber: a channel actor incarnation. Equal by `id` only.
///
/// A shared handle (its fields are reached through `Deref`): the index holds
/// one per subscription and a delivery batch one per subscriber it sends to,
/// so cloning it is one reference count, not an actor address of its own
/// (which allocates a sender record per clone).
#[derive(Debug, Clone)]
pub struct Subscriber(Arc<SubscriberData>);

/// What a [`Subscriber`] handle shares.
#[derive(Debug)]
pub struct SubscriberData {
    /// Unique for the life of the node.
    pub id: u64,
    /// Where deliveries go.
    pub addr: Addr<ChannelActor>,
    /// The subscriber's client id (for logs).
    pub client_id: ByteStr,
    /// Deliveries sent and not yet handled: the bound that protects a slow
    /// subscriber's mailbox.
    pub pending: AtomicUsize,
}

impl Subscriber {
    /// A subscriber with nothing pending.
    pub fn new(id: u64, addr: Addr<ChannelActor>, client_id: ByteStr) -> Self {
        Self(Arc::new(SubscriberData {
            id,
            addr,
            client_id,
            pending: AtomicUsize::new(0),
        }))
    }
}

impl std::ops::Deref for Subscriber {
    type Target = SubscriberData;

    fn deref(&self) -> &SubscriberData {
        &self.0
    }
}

impl PartialEq for Subscriber {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Subscriber {}

impl Hash for Subscriber {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl routing::Subscriber for Subscriber {
    fn id(&self) -> u64 {
        self.0.id
    }
}

impl Mailbox for Subscriber {
    fn pending(&self) -> &AtomicUsize {
        &self.0.pending
    }

    fn deliver(&self, deliveries: Vec<Delivery>) {
        self.0.addr.do_send(Deliver(deliveries));
    }
}
