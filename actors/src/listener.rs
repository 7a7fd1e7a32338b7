//! TCP listeners: an acceptor actor per listener, and the dynamic
//! supervisor that holds that listener's channel actors.
//!
//! ```text
//! listener:tcp:default (rest_for_one)
//! ├─ connections   dynamic supervisor; one temporary channel actor per
//! │                socket, spread round-robin over the arbiter pool
//! └─ acceptor      permanent; accepts and hands sockets to `connections`
//! ```
//!
//! The listening socket is bound before the tree starts (so that a port in
//! use stops start-up with a clear error) and shared with every incarnation
//! of the acceptor, which survives acceptor restarts.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::prelude::*;
use girder_supervision::{
    spawn_with, ChildSpec, Pid, Placement, Restart, StartArgs, Strategy, SupFlags, SupervisorRef,
    SupervisorSpec,
};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::channel::ChannelActor;
use crate::node::NodeShared;

/// A bound listener, ready to be put in the tree.
#[derive(Debug, Clone)]
pub struct BoundListener {
    /// `tcp:default` style name.
    pub name: String,
    /// The bound socket.
    pub socket: Arc<std::net::TcpListener>,
    /// Most connections at once (`None`: unlimited).
    pub max_connections: Option<usize>,
}

impl BoundListener {
    /// Binds `addr` now.
    pub fn bind(
        name: String,
        addr: SocketAddr,
        max_connections: Option<usize>,
    ) -> std::io::Result<Self> {
        let socket = std::net::TcpListener::bind(addr)?;
        socket.set_nonblocking(true)?;
        Ok(Self {
            name,
            socket: Arc::new(socket),
            max_connections,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The listener's subtree.
    pub fn child_spec(self, shared: Arc<NodeShared>) -> ChildSpec {
        let connections = SupervisorSpec::new(
            SupFlags::new(Strategy::Dynamic).intensity(u32::MAX, std::time::Duration::from_secs(1)),
        )
        .into_child_spec("connections");
        let this = self.clone();
        let acceptor = ChildSpec::new(
            "acceptor",
            Arc::new(move |args: StartArgs| {
                let this = this.clone();
                let shared = Arc::clone(&shared);
                let parent = args.parent.clone();
                spawn_with(args.spawn_options(), move |_| Acceptor {
                    listener: this,
                    shared,
                    parent,
                    connections: None,
                })
                .map(|s| s.pid)
            }),
        );
        SupervisorSpec::new(SupFlags::new(Strategy::RestForOne))
            .child(connections)
            .child(acceptor)
            .into_child_spec(format!("listener:{}", self.name))
    }
}

/// Accepts sockets and starts a channel actor for each.
#[derive(Debug)]
struct Acceptor {
    listener: BoundListener,
    shared: Arc<NodeShared>,
    parent: Pid,
    connections: Option<SupervisorRef>,
}

#[derive(Debug)]
struct Accepted(std::io::Result<(tokio::net::TcpStream, SocketAddr)>);

impl Actor for Acceptor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let socket = match self
            .listener
            .socket
            .try_clone()
            .and_then(TcpListener::from_std)
        {
            Ok(socket) => socket,
            Err(err) => {
                warn!(listener = %self.listener.name, cause = %err, "listener socket unusable");
                ctx.stop();
                return;
            }
        };
        if let Ok(addr) = socket.local_addr() {
            info!(listener = %self.listener.name, %addr, "listener_started");
        }
        let accepts = futures::stream::unfold(socket, |socket| async move {
            let accepted = socket.accept().await;
            Some((Accepted(accepted), socket))
        });
        ctx.add_stream(accepts);
        // Find the sibling `connections` supervisor.
        if let Some(parent) = SupervisorRef::from_pid(&self.parent) {
            let lookup = async move {
                let children = parent.which_children().await.ok()?;
                children
                    .into_iter()
                    .find(|c| c.id == "connections")
                    .and_then(|c| c.pid)
                    .and_then(|pid| SupervisorRef::from_pid(&pid))
            };
            ctx.wait(lookup.into_actor(self).map(|found, act, ctx| {
                if found.is_none() {
                    warn!(listener = %act.listener.name, "no connections supervisor");
                    ctx.stop();
                }
                act.connections = found;
            }));
        }
    }
}

impl StreamHandler<Accepted> for Acceptor {
    fn handle(&mut self, Accepted(result): Accepted, ctx: &mut Context<Self>) {
        let (stream, peer) = match result {
            Ok(accepted) => accepted,
            Err(err) => {
                // EMFILE and friends: keep accepting once things calm down.
                debug!(listener = %self.listener.name, cause = %err, "accept failed");
                return;
            }
        };
        let open = self.shared.metrics.connections.load(Ordering::Relaxed) as usize;
        if self.listener.max_connections.is_some_and(|max| open >= max) {
            self.shared
                .metrics
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            debug!(listener = %self.listener.name, %peer, "connection refused: listener full");
            return;
        }
        let Some(connections) = self.connections.clone() else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let std_stream = match stream.into_std() {
            Ok(s) => s,
            Err(_) => return,
        };
        let socket = Arc::new(Mutex::new(Some(std_stream)));
        let shared = Arc::clone(&self.shared);
        let start = Arc::new(move |args: StartArgs| {
            let socket = socket.lock().take();
            let shared = Arc::clone(&shared);
            spawn_with(args.spawn_options(), move |_| {
                let stream = socket.and_then(|s| tokio::net::TcpStream::from_std(s).ok());
                ChannelActor::start_with(stream, shared)
            })
            .map(|s| s.pid)
        });
        let spec = ChildSpec::new("channel", start)
            .restart(Restart::Temporary)
            .placement(Placement::RoundRobin);
        let start = async move { connections.start_child(spec).await };
        ctx.spawn(start.into_actor(self).map(|result, act, _| {
            if let Err(err) = result {
                debug!(listener = %act.listener.name, cause = %err, "channel not started");
            }
        }));
    }
}
