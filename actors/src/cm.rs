//! The channel manager (EMQX's `emqx_cm`): which channel actor holds each
//! client id on this node.
//!
//! Registering returns the previous holder atomically, so that of two
//! connections racing with one client id, exactly one ends up registered and
//! the other is taken over by it.

use std::collections::HashMap;

use actix::Addr;
use girder_broker::codec::ByteStr;
use parking_lot::Mutex;

use crate::channel::ChannelActor;

/// A registered channel: the actor incarnation's id and its address.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The channel actor's unique id.
    pub id: u64,
    /// Its address.
    pub addr: Addr<ChannelActor>,
}

/// Client id → channel actor, for this node.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    channels: Mutex<HashMap<ByteStr, Registered>>,
}

impl ClientRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `entry` the holder of `client_id`, returning the previous
    /// holder, if any.
    pub fn register(&self, client_id: &ByteStr, entry: Registered) -> Option<Registered> {
        self.channels.lock().insert(client_id.clone(), entry)
    }

    /// Removes `client_id` if `id` still holds it.
    pub fn unregister(&self, client_id: &ByteStr, id: u64) {
        let mut channels = self.channels.lock();
        if channels.get(client_id).is_some_and(|r| r.id == id) {
            channels.remove(client_id);
        }
    }

    /// The holder of `client_id`.
    pub fn lookup(&self, client_id: &ByteStr) -> Option<Registered> {
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
