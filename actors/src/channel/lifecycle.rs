//! Where a channel actor is in its life, as one value.
//!
//! ```text
//!   phase        socket   client id registered
//!   Open         yes      no     before CONNECT is accepted, or while ending
//!   Registered   yes      yes
//!   Kept         no       yes    the session waits for its client or expiry
//!   TakenOver    no       no     late deliveries go to the successor
//!                                (an actor of this node, or another node)
//!   Ended        no       no
//!
//!   register:    Open → Registered          Ended → Kept
//!   take_conn:   Open → Ended               Registered → Kept
//!   unregister:  Registered → Open          Kept → Ended
//!   taken_over:  (no socket) → TakenOver
//! ```
//!
//! A connection claiming its client id across the cluster (see
//! `crate::handover`) is `Registered` while it waits, its input paused; the
//! claim's own state (claiming, settled, superseded by another node's
//! claim) is kept by the registry, where the other node's request finds
//! it without waiting for the actor.
//!
//! The socket exists in `Open` and `Registered` only, so "has a socket" and
//! "holds its client id" cannot disagree with the phase; the connections
//! gauge counts the actors that hold a socket.

use actix::Addr;
use girder_cluster::NodeName;
use tokio::net::TcpStream;

use super::ChannelActor;

/// A connection's open socket and its I/O state.
#[derive(Debug)]
pub(super) struct Conn {
    /// The socket.
    pub(super) stream: TcpStream,
    /// A write is blocked: nothing is flushed until the socket is writable
    /// again.
    pub(super) write_waiting: bool,
    /// The client closed its side, or the socket failed: the socket is
    /// dropped at once rather than lingering (see `linger`).
    pub(super) peer_closed: bool,
}

/// Who continues a session that was taken over.
#[derive(Debug)]
pub(super) enum Successor {
    /// A channel actor of this node.
    Local(Addr<ChannelActor>),
    /// The client id's holder on another node (reached through its
    /// `girder.cm` process).
    Remote(NodeName),
}

/// The phase of a channel actor. See the module documentation.
#[derive(Debug)]
pub(super) enum Lifecycle {
    /// A socket; the client id is not registered (no CONNECT accepted yet,
    /// or the session is ending).
    Open(Conn),
    /// A socket, and the client id registered to this actor.
    Registered(Conn),
    /// No socket; the client id still registered: the actor keeps the
    /// session until it expires or a new connection takes it over.
    Kept,
    /// Another actor took the client id over; deliveries that arrive late
    /// go to it when it continues the session (boxed: rare).
    TakenOver(Option<Box<Successor>>),
    /// No socket, nothing registered: the actor is ending.
    Ended,
}

impl Lifecycle {
    /// The phase of a freshly accepted socket (`None`: it could not be
    /// registered with the arbiter, and the actor ends at once).
    pub(super) fn accepted(stream: Option<TcpStream>) -> Self {
        match stream {
            Some(stream) => Lifecycle::Open(Conn {
                stream,
                write_waiting: false,
                peer_closed: false,
            }),
            None => Lifecycle::Ended,
        }
    }

    /// The open socket.
    pub(super) fn conn(&self) -> Option<&Conn> {
        match self {
            Lifecycle::Open(conn) | Lifecycle::Registered(conn) => Some(conn),
            _ => None,
        }
    }

    /// The open socket, to change its I/O state.
    pub(super) fn conn_mut(&mut self) -> Option<&mut Conn> {
        match self {
            Lifecycle::Open(conn) | Lifecycle::Registered(conn) => Some(conn),
            _ => None,
        }
    }

    /// The socket, while it is open.
    pub(super) fn stream(&self) -> Option<&TcpStream> {
        self.conn().map(|c| &c.stream)
    }

    /// Whether the socket is open.
    pub(super) fn has_socket(&self) -> bool {
        self.conn().is_some()
    }

    /// Whether this actor holds its client id in the registry.
    pub(super) fn is_registered(&self) -> bool {
        matches!(self, Lifecycle::Registered(_) | Lifecycle::Kept)
    }

    /// The client id was registered to this actor.
    pub(super) fn register(&mut self) {
        *self = match std::mem::replace(self, Lifecycle::Ended) {
            Lifecycle::Open(conn) | Lifecycle::Registered(conn) => Lifecycle::Registered(conn),
            Lifecycle::Ended | Lifecycle::Kept => Lifecycle::Kept,
            taken @ Lifecycle::TakenOver(_) => taken,
        };
    }

    /// Gives the registration up; returns whether it was held.
    pub(super) fn unregister(&mut self) -> bool {
        let held = self.is_registered();
        *self = match std::mem::replace(self, Lifecycle::Ended) {
            Lifecycle::Registered(conn) | Lifecycle::Open(conn) => Lifecycle::Open(conn),
            Lifecycle::Kept | Lifecycle::Ended => Lifecycle::Ended,
            taken @ Lifecycle::TakenOver(_) => taken,
        };
        held
    }

    /// Takes the socket out (the session stays registered if it was).
    pub(super) fn take_conn(&mut self) -> Option<Conn> {
        match std::mem::replace(self, Lifecycle::Ended) {
            Lifecycle::Open(conn) => Some(conn),
            Lifecycle::Registered(conn) => {
                *self = Lifecycle::Kept;
                Some(conn)
            }
            other => {
                *self = other;
                None
            }
        }
    }

    /// Another actor took the client id over (its registry entry already
    /// names it); `successor` gets late deliveries when it continues the
    /// session. The socket must be gone already.
    pub(super) fn taken_over(&mut self, successor: Option<Successor>) {
        debug_assert!(!self.has_socket());
        *self = Lifecycle::TakenOver(successor.map(Box::new));
    }

    /// The actor that continues this session, once taken over.
    pub(super) fn successor(&self) -> Option<&Successor> {
        match self {
            Lifecycle::TakenOver(Some(successor)) => Some(successor),
            _ => None,
        }
    }
}
