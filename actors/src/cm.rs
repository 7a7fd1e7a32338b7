//! The channel manager (EMQX's `emqx_cm`): which channel actor holds each
//! client id on this node.
//!
//! Registering returns the previous holder atomically, so that of two
//! connections racing with one client id, exactly one ends up registered and
//! the other is taken over by it.
//!
//! Across nodes, a client id is claimed (see `handover`): a registration
//! made while other nodes are linked starts as a claim in progress, which
//! another node's claimant (holding the client id's cluster-wide lock) may
//! supersede before it settles; the registry keeps that state beside the
//! holder:
//!
//! ```text
//!   register(claiming) ──► Claiming ──settle──► Settled
//!                              │
//!          another node's claimant (under the lock): supersede
//!                              ▼
//!                          Superseded ──► the connection ends, not opened
//! ```
//!
//! The registry is generic over the channel actor type and is given its
//! table: it imports nothing else of this crate.

use std::collections::HashMap;

use actix::{Actor, WeakAddr};
use bytes::Bytes;
use girder_broker::codec::ByteStr;
use girder_cluster::rlog::Rlog;
use girder_cluster::ClusterHandle;
use parking_lot::Mutex;
use tracing::warn;

/// A registered channel: the actor incarnation's id and its address.
#[derive(Debug)]
pub struct Registered<A: Actor> {
    /// The channel actor's unique id.
    pub id: u64,
    /// Its address, weak: the registry is read on takeover and kick only,
    /// and a strong address would cost every connection a sender of its
    /// own. An actor that ended without unregistering fails to upgrade.
    pub addr: WeakAddr<A>,
}

impl<A: Actor> Clone for Registered<A> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            addr: self.addr.clone(),
        }
    }
}

/// Where this node's client rows go: a table of the replicated tables.
#[derive(Debug, Clone)]
pub struct ClientTable {
    /// The replicated tables.
    pub rlog: Rlog,
    /// The owned table of clients (client id → this node).
    pub table: &'static str,
    /// The distribution layer: client ids are taken over from other nodes
    /// through it.
    pub cluster: ClusterHandle,
}

/// Where a registration stands in its cluster-wide claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// Held on this node; other nodes were asked to give the id up (or no
    /// other node was linked).
    Settled,
    /// Other nodes are being asked to give the id up.
    Claiming,
    /// A claimant on another node took the id while this one was still
    /// claiming: this registration must end without opening its session.
    Superseded,
}

#[derive(Debug)]
struct Entry<A: Actor> {
    holder: Registered<A>,
    claim: Claim,
}

/// What this node does when another node claims a client id.
#[derive(Debug)]
pub enum GiveUp<A: Actor> {
    /// The client id is not held here.
    NotHere,
    /// It was still being claimed here: that claim is superseded and will
    /// end without taking the id.
    Superseded,
    /// Held by this channel actor, which must hand it over.
    Holder(Registered<A>),
}

/// Client id → channel actor, for this node; mirrored as this node's rows
/// of the replicated client table.
#[derive(Debug)]
pub struct ClientRegistry<A: Actor> {
    channels: Mutex<HashMap<ByteStr, Entry<A>>>,
    tables: Option<ClientTable>,
}

impl<A: Actor> ClientRegistry<A> {
    /// An empty registry; `tables` receives this node's client rows.
    pub fn new(tables: Option<ClientTable>) -> Self {
        Self {
            channels: Mutex::default(),
            tables,
        }
    }

    /// Makes `entry` the holder of `client_id`, returning the previous
    /// holder, if any. With `claiming`, the registration is a claim in
    /// progress until [`settle`](Self::settle).
    pub fn register(
        &self,
        client_id: &ByteStr,
        entry: Registered<A>,
        claiming: bool,
    ) -> Option<Registered<A>> {
        let claim = if claiming {
            Claim::Claiming
        } else {
            Claim::Settled
        };
        let previous = self.channels.lock().insert(
            client_id.clone(),
            Entry {
                holder: entry,
                claim,
            },
        );
        if previous.is_none() {
            self.client_row(client_id, true);
        }
        previous.map(|e| e.holder)
    }

    /// Whether the claim of `client_id` by registration `id` was
    /// superseded by another node's.
    pub fn is_superseded(&self, client_id: &ByteStr, id: u64) -> bool {
        self.channels
            .lock()
            .get(client_id)
            .is_some_and(|e| e.holder.id == id && e.claim == Claim::Superseded)
    }

    /// Ends the claim of `client_id` by registration `id`: false when
    /// another node's claim superseded it; true when it holds the id
    /// (settled now) or a newer connection of this node registered it
    /// meanwhile (which takes the session over from this one, as on any
    /// local takeover).
    pub fn settle(&self, client_id: &ByteStr, id: u64) -> bool {
        let mut channels = self.channels.lock();
        match channels.get_mut(client_id) {
            Some(e) if e.holder.id == id => {
                if e.claim == Claim::Superseded {
                    return false;
                }
                e.claim = Claim::Settled;
                true
            }
            _ => true,
        }
    }

    /// Another node claims `client_id` (holding its cluster-wide lock): a
    /// claim in progress here is superseded; a settled holder is returned,
    /// to be asked to hand over.
    pub fn give_up(&self, client_id: &ByteStr) -> GiveUp<A> {
        let mut channels = self.channels.lock();
        match channels.get_mut(client_id) {
            None => GiveUp::NotHere,
            Some(e) => match e.claim {
                Claim::Settled => GiveUp::Holder(e.holder.clone()),
                Claim::Claiming | Claim::Superseded => {
                    e.claim = Claim::Superseded;
                    GiveUp::Superseded
                }
            },
        }
    }

    /// The replicated tables and the distribution layer, when the node has
    /// them.
    pub fn tables(&self) -> Option<&ClientTable> {
        self.tables.as_ref()
    }

    /// Removes `client_id` if `id` still holds it.
    pub fn unregister(&self, client_id: &ByteStr, id: u64) {
        let removed = {
            let mut channels = self.channels.lock();
            let held = channels.get(client_id).is_some_and(|e| e.holder.id == id);
            held && channels.remove(client_id).is_some()
        };
        if removed {
            self.client_row(client_id, false);
        }
    }

    fn client_row(&self, client_id: &ByteStr, present: bool) {
        if let Some(tables) = &self.tables {
            let key = client_id.clone().into_bytes();
            let value = present.then(Bytes::new);
            if let Err(err) = tables.rlog.write_owned(tables.table, key, value) {
                warn!(client_id = %client_id, cause = %err, "client row not written");
            }
        }
    }

    /// The holder of `client_id`.
    pub fn lookup(&self, client_id: &ByteStr) -> Option<Registered<A>> {
        self.channels
            .lock()
            .get(client_id)
            .map(|e| e.holder.clone())
    }

    /// Number of registered client ids (sessions on this node).
    pub fn len(&self) -> usize {
        self.channels.lock().len()
    }

    /// Whether no client is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use actix::{Actor, Context};

    use super::*;

    struct Holder;

    impl Actor for Holder {
        type Context = Context<Self>;
    }

    fn entry(id: u64) -> Registered<Holder> {
        Registered {
            id,
            addr: Holder.start().downgrade(),
        }
    }

    #[actix_rt::test]
    async fn a_claim_in_progress_is_superseded_and_a_settled_one_handed_over() {
        let cm = ClientRegistry::<Holder>::new(None);
        let id = ByteStr::from("c");
        assert!(matches!(cm.give_up(&id), GiveUp::NotHere));

        // Another node claims while this one is still claiming.
        assert!(cm.register(&id, entry(1), true).is_none());
        assert!(!cm.is_superseded(&id, 1));
        assert!(matches!(cm.give_up(&id), GiveUp::Superseded));
        assert!(cm.is_superseded(&id, 1));
        assert!(!cm.settle(&id, 1));
        cm.unregister(&id, 1);
        assert!(cm.is_empty());

        // A settled holder is named, to be asked to hand over.
        cm.register(&id, entry(2), true);
        assert!(cm.settle(&id, 2));
        assert!(matches!(cm.give_up(&id), GiveUp::Holder(h) if h.id == 2));
        // Registered without a claim (no peers): settled at once.
        let other = ByteStr::from("d");
        cm.register(&other, entry(3), false);
        assert!(matches!(cm.give_up(&other), GiveUp::Holder(h) if h.id == 3));

        // A newer local connection replaced a claimant: the older one still
        // opens (the newer takes its session over), and only the newer one
        // can be superseded.
        let third = ByteStr::from("e");
        cm.register(&third, entry(4), true);
        let previous = cm.register(&third, entry(5), true);
        assert_eq!(previous.map(|p| p.id), Some(4));
        assert!(matches!(cm.give_up(&third), GiveUp::Superseded));
        assert!(cm.settle(&third, 4));
        assert!(!cm.is_superseded(&third, 4));
        assert!(cm.is_superseded(&third, 5));
    }
}
