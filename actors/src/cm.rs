//! The channel manager (EMQX's `emqx_cm`): which channel actor holds each
//! client id on this node.
//!
//! Registering returns the previous holder atomically, so that of two
//! connections racing with one client id, exactly one ends up registered and
//! the other is taken over by it.
//!
//! The registry is generic over the channel actor type and is given its
//! table: it imports nothing else of this crate.

use std::collections::HashMap;

use actix::{Actor, WeakAddr};
use bytes::Bytes;
use girder_broker::codec::ByteStr;
use girder_cluster::rlog::Rlog;
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
}

/// Client id → channel actor, for this node; mirrored as this node's rows
/// of the replicated client table.
#[derive(Debug)]
pub struct ClientRegistry<A: Actor> {
    channels: Mutex<HashMap<ByteStr, Registered<A>>>,
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
    /// holder, if any.
    pub fn register(&self, client_id: &ByteStr, entry: Registered<A>) -> Option<Registered<A>> {
        let previous = self.channels.lock().insert(client_id.clone(), entry);
        if previous.is_none() {
            self.client_row(client_id, true);
        }
        previous
    }

    /// Removes `client_id` if `id` still holds it.
    pub fn unregister(&self, client_id: &ByteStr, id: u64) {
        let removed = {
            let mut channels = self.channels.lock();
            let held = channels.get(client_id).is_some_and(|r| r.id == id);
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
        self.channels.lock().get(client_id).cloned()
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
