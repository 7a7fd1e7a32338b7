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
//! This node's row of a client id is empty while the claim runs and holds
//! the time it settled once it has: when a split (the lock not had, the
//! holder not reached) leaves one client id settled on two nodes, each node
//! sees the other's row once they are linked again, and the one that
//! settled first gives the id up ([`ClientRegistry::outdated_by`]).
//!
//! The registry is generic over the channel actor type and is given its
//! table: it imports nothing else of this crate.

use std::collections::HashMap;

use actix::{Actor, WeakAddr};
use bytes::Bytes;
use girder_broker::codec::ByteStr;
use girder_cluster::rlog::Rlog;
use girder_cluster::{ClusterHandle, NodeName};
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
    /// When the registration settled ([`stamp_now`]; 0 while claiming):
    /// the value of this node's row, which orders two registrations left on
    /// two nodes by a split (see [`ClientRegistry::outdated_by`]).
    stamp: u64,
}

/// Wall-clock milliseconds since the epoch, at least 1.
pub fn stamp_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .max(1)
}

/// The settled stamp a `clients` row holds (`None`: empty, the claim is in
/// progress).
pub fn row_stamp(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.try_into().ok()?))
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
        let (claim, stamp) = if claiming {
            (Claim::Claiming, 0)
        } else {
            (Claim::Settled, stamp_now())
        };
        let previous = self.channels.lock().insert(
            client_id.clone(),
            Entry {
                holder: entry,
                claim,
                stamp,
            },
        );
        // A claim's row is written at once, empty, so that a claimant on
        // another node sees it; it gets its stamp when it settles.
        if previous.is_none() || !claiming {
            self.client_row(client_id, Some(stamp));
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
        let stamp = {
            let mut channels = self.channels.lock();
            match channels.get_mut(client_id) {
                Some(e) if e.holder.id == id => {
                    if e.claim == Claim::Superseded {
                        return false;
                    }
                    e.claim = Claim::Settled;
                    e.stamp = stamp_now();
                    e.stamp
                }
                _ => return true,
            }
        };
        self.client_row(client_id, Some(stamp));
        true
    }

    /// Another node's row for `client_id` settled with `stamp`: when this
    /// node holds the id too, settled and earlier (by stamp, then node
    /// name), its holder is returned, to give the id up to `other`. Two
    /// registrations of one id on two nodes are left only by a split (the
    /// lock not had, or the holder not reached); both nodes decide alike
    /// once each has the other's row, so exactly one gives up.
    pub fn outdated_by(
        &self,
        client_id: &ByteStr,
        stamp: u64,
        other: &NodeName,
        me: &NodeName,
    ) -> Option<Registered<A>> {
        let channels = self.channels.lock();
        let e = channels.get(client_id)?;
        let older = (e.stamp, me) < (stamp, other);
        (e.claim == Claim::Settled && older).then(|| e.holder.clone())
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
            self.client_row(client_id, None);
        }
    }

    /// Writes this node's row of `client_id`: its stamp (empty while 0,
    /// claiming), or no row with `None`.
    fn client_row(&self, client_id: &ByteStr, stamp: Option<u64>) {
        if let Some(tables) = &self.tables {
            let key = client_id.clone().into_bytes();
            let value = stamp.map(|s| match s {
                0 => Bytes::new(),
                s => Bytes::copy_from_slice(&s.to_be_bytes()),
            });
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

    #[actix_rt::test]
    async fn of_two_settled_registrations_left_by_a_split_the_older_gives_up() {
        let cm = ClientRegistry::<Holder>::new(None);
        let (me, other) = (
            NodeName::parse("a@h").unwrap(),
            NodeName::parse("b@h").unwrap(),
        );
        let id = ByteStr::from("c");
        // A claim in progress is left to the lock.
        cm.register(&id, entry(1), true);
        assert!(cm.outdated_by(&id, u64::MAX, &other, &me).is_none());
        assert!(cm.settle(&id, 1));
        let mine = cm.channels.lock()[&id].stamp;
        assert!(mine > 0);
        // An older or equal-and-lower-named registration elsewhere: kept.
        assert!(cm.outdated_by(&id, mine - 1, &other, &me).is_none());
        // A newer one: this one gives up; a tie goes to the higher name.
        assert_eq!(
            cm.outdated_by(&id, mine + 1, &other, &me).map(|h| h.id),
            Some(1)
        );
        assert!(cm.outdated_by(&id, mine, &other, &me).is_some());
        assert!(cm.outdated_by(&id, mine, &me, &other).is_none());
        assert!(cm
            .outdated_by(&ByteStr::from("x"), u64::MAX, &other, &me)
            .is_none());
        assert_eq!(row_stamp(&mine.to_be_bytes()), Some(mine));
        assert_eq!(row_stamp(b""), None);
    }
}
