//! Local processes reachable from other nodes: the name registry's entries,
//! the messages they receive and how they answer calls.

use std::fmt;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::error::ClusterError;
use crate::options::NodeName;
use crate::wire::{Envelope, ReplyResult};

/// An opaque typed message: the registering layer owns the type name and the
/// encoding (normally a protobuf message).
#[derive(Clone, PartialEq, Eq)]
pub struct Payload {
    /// The message type, e.g. `girder.mqtt.v1.Forward`.
    pub type_name: String,
    /// The encoded message.
    pub data: Bytes,
}

impl Payload {
    /// A payload from a type name and raw bytes.
    pub fn new(type_name: impl Into<String>, data: impl Into<Bytes>) -> Self {
        Self {
            type_name: type_name.into(),
            data: data.into(),
        }
    }

    /// Encodes a protobuf message under a type name.
    pub fn encode<M: prost::Message>(type_name: &str, msg: &M) -> Self {
        Self::new(type_name, msg.encode_to_vec())
    }

    /// Decodes the payload as `M`, checking the type name first.
    pub fn decode<M: prost::Message + Default>(&self, type_name: &str) -> Result<M, ClusterError> {
        if self.type_name != type_name {
            return Err(ClusterError::PayloadType {
                expected: type_name.to_owned(),
                actual: self.type_name.clone(),
            });
        }
        Ok(M::decode(self.data.clone())?)
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({}, {} bytes)", self.type_name, self.data.len())
    }
}

/// A message delivered to a registered process.
#[derive(Debug)]
pub struct RemoteMessage {
    /// The node it came from (this node for local sends).
    pub from: NodeName,
    /// The name on `from` that answers go to, when the sender gave one.
    pub reply_to_name: Option<String>,
    /// The message.
    pub payload: Payload,
    /// Set for calls: answer through it. Dropping it unanswered fails the call.
    pub reply: Option<ReplyTo>,
}

impl actix::Message for RemoteMessage {
    type Result = ();
}

/// The way back to a caller.
pub struct ReplyTo {
    target: Option<ReplyTarget>,
}

enum ReplyTarget {
    Remote {
        queue: mpsc::UnboundedSender<Envelope>,
        id: u64,
    },
    Local(oneshot::Sender<Result<Payload, ClusterError>>),
}

impl ReplyTo {
    pub(crate) fn remote(queue: mpsc::UnboundedSender<Envelope>, id: u64) -> Self {
        Self {
            target: Some(ReplyTarget::Remote { queue, id }),
        }
    }

    pub(crate) fn local(tx: oneshot::Sender<Result<Payload, ClusterError>>) -> Self {
        Self {
            target: Some(ReplyTarget::Local(tx)),
        }
    }

    /// Disarms it without answering (the caller is answered another way).
    pub(crate) fn forget(mut self) {
        self.target = None;
    }

    /// Answers the call; an `Err` reaches the caller as [`ClusterError::Remote`].
    /// A caller that has timed out or whose link went down ignores it.
    pub fn reply(mut self, result: Result<Payload, String>) {
        if let Some(target) = self.target.take() {
            send_reply(target, result);
        }
    }
}

fn send_reply(target: ReplyTarget, result: Result<Payload, String>) {
    match target {
        ReplyTarget::Remote { queue, id } => {
            let result = match result {
                Ok(p) => ReplyResult::Ok(p),
                Err(e) => ReplyResult::Failed(e),
            };
            // A closed queue means the link is down; the caller sees NodeDown.
            let _ = queue.send(Envelope::Reply { id, result });
        }
        ReplyTarget::Local(tx) => {
            let _ = tx.send(result.map_err(ClusterError::Remote));
        }
    }
}

impl Drop for ReplyTo {
    fn drop(&mut self) {
        if let Some(target) = self.target.take() {
            send_reply(
                target,
                Err("the process dropped the call without a reply".into()),
            );
        }
    }
}

impl fmt::Debug for ReplyTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplyTo")
    }
}

/// A registered process: something that accepts [`RemoteMessage`]s without
/// blocking. Delivery happens in the order messages arrived on a link.
///
/// Implemented for actix `Recipient<RemoteMessage>` and tokio mpsc senders, so
/// an actor registers with `handle.register("name", addr.recipient())`.
pub trait Process: Send + Sync + 'static {
    /// Hands over one message; gives it back if the process is gone, which
    /// unregisters it (its monitors get `Down`).
    fn deliver(&self, msg: RemoteMessage) -> Result<(), RemoteMessage>;
}

impl Process for actix::Recipient<RemoteMessage> {
    fn deliver(&self, msg: RemoteMessage) -> Result<(), RemoteMessage> {
        if self.connected() {
            self.do_send(msg);
            Ok(())
        } else {
            Err(msg)
        }
    }
}

impl Process for mpsc::UnboundedSender<RemoteMessage> {
    fn deliver(&self, msg: RemoteMessage) -> Result<(), RemoteMessage> {
        self.send(msg).map_err(|e| e.0)
    }
}

impl Process for mpsc::Sender<RemoteMessage> {
    /// A full channel is treated like a closed one: a bounded mailbox that
    /// overflows loses the message, as the sender cannot be made to wait.
    fn deliver(&self, msg: RemoteMessage) -> Result<(), RemoteMessage> {
        match self.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("process mailbox full, message dropped");
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(m)) => Err(m),
        }
    }
}
