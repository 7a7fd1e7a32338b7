//! TCP listeners: the acceptors of each listener, and the dynamic
//! supervisor that holds that listener's channel actors.
//!
//! ```text
//! listener:tcp:default (rest_for_one)
//! ├─ connections   dynamic supervisor; one temporary channel actor per
//! │                socket, spread round-robin over the arbiter pool
//! ├─ acceptor:0    permanent; accepts, checks and hands sockets to
//! ├─ ...           `connections`; `acceptors` of them, on the listening
//! └─ acceptor:N-1  socket, spread over the arbiter pool
//! ```
//!
//! The listening socket is bound before the tree starts (so that a port in
//! use stops start-up with a clear error), with the listener's
//! `tcp_options` ([`socket`]), and shared with every acceptor and every
//! incarnation of one, which survives acceptor restarts.
//!
//! An accepted socket gets the per-connection `tcp_options`. With
//! `proxy_protocol` it must then send a PROXY header ([`proxy`]) within
//! `proxy_protocol_timeout`, and the address the header names is the
//! client's. The `access_rules` are checked against the client's address
//! before any MQTT byte is read; a denied connection is closed at once.
//! A channel actor starts with the listener's [`ListenerContext`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use girder_broker::channel::ChannelConfig;
use girder_config::AccessRules;
use girder_supervision::{
    spawn_with, ChildSpec, Pid, Placement, Restart, StartArgs, Strategy, SupFlags, SupervisorRef,
    SupervisorSpec,
};
use parking_lot::Mutex;
use socket2::SockRef;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::channel::{ChannelActor, READ_CHUNK};
use crate::node::NodeShared;

pub mod proxy;
pub mod socket;

use socket::SocketOptions;

/// What a listener gives each of its channel actors. Connections without a
/// PROXY header share their listener's; one that sent a header gets a copy
/// of its own naming the client.
#[derive(Debug, Clone)]
pub struct ListenerContext {
    /// `tcp:default` style name.
    pub name: String,
    /// What this listener's channels enforce.
    pub channel_config: Arc<ChannelConfig>,
    /// A write blocked (the socket not writable while output is pending)
    /// this long closes the connection; `None`: never
    /// (`tcp_options.send_timeout` and `send_timeout_close`).
    pub send_timeout: Option<Duration>,
    /// Bytes read from the socket at a time (`tcp_options.buffer`).
    pub read_chunk: usize,
    /// The client's address as its connection's PROXY header named it.
    pub proxied: Option<SocketAddr>,
}

impl ListenerContext {
    /// The context of a TCP listener named `name` (`tcp:default`).
    pub fn new(
        name: String,
        channel_config: Arc<ChannelConfig>,
        listener: &girder_config::TcpListener,
    ) -> Self {
        let o = &listener.tcp_options;
        Self {
            name,
            channel_config,
            send_timeout: o.send_timeout_close.then_some(o.send_timeout.0),
            read_chunk: o
                .buffer
                .and_then(|b| usize::try_from(b.0).ok())
                .unwrap_or(READ_CHUNK),
            proxied: None,
        }
    }
}

/// How a listener accepts: the settings its acceptors use.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// Most connections at once (`None`: unlimited).
    pub max_connections: Option<usize>,
    /// Accept loops on the listening socket.
    pub acceptors: usize,
    /// `tcp_options`.
    pub socket: SocketOptions,
    /// Who may connect.
    pub access: AccessRules,
    /// With `proxy_protocol`: the time allowed for the PROXY header.
    pub proxy_protocol: Option<Duration>,
}

impl ListenerSettings {
    /// The settings of a TCP listener's configuration; the error names the
    /// key (validation at load refuses the same values).
    pub fn from_config(l: &girder_config::TcpListener) -> Result<Self, String> {
        let access = AccessRules::parse(&l.access_rules)
            .map_err(|(rule, e)| format!("access_rules: {rule:?}: {e}"))?;
        Ok(Self {
            max_connections: l.max_connections.finite().map(|n| n as usize),
            acceptors: l.acceptors.max(1) as usize,
            socket: SocketOptions::from_config(&l.tcp_options)?,
            access,
            proxy_protocol: l.proxy_protocol.then_some(l.proxy_protocol_timeout.0),
        })
    }
}

/// What the acceptors of one listener share.
#[derive(Debug)]
struct Edge {
    name: String,
    settings: ListenerSettings,
    context: Arc<ListenerContext>,
    /// Connections closed by the access rules.
    denied: AtomicU64,
}

/// A bound listener, ready to be put in the tree.
#[derive(Debug, Clone)]
pub struct BoundListener {
    /// `tcp:default` style name.
    pub name: String,
    /// The bound socket.
    pub socket: Arc<std::net::TcpListener>,
    edge: Arc<Edge>,
}

impl BoundListener {
    /// Binds `addr` now, with the listening socket's options.
    pub fn bind(
        addr: SocketAddr,
        settings: ListenerSettings,
        context: Arc<ListenerContext>,
    ) -> std::io::Result<Self> {
        let socket = settings.socket.listen(addr)?;
        let name = context.name.clone();
        Ok(Self {
            name: name.clone(),
            socket: Arc::new(socket),
            edge: Arc::new(Edge {
                name,
                settings,
                context,
                denied: AtomicU64::new(0),
            }),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// How many connections the access rules have closed.
    pub fn denied(&self) -> u64 {
        self.edge.denied.load(Ordering::Relaxed)
    }

    /// The listener's subtree.
    pub fn child_spec(self, shared: Arc<NodeShared>) -> ChildSpec {
        let connections = SupervisorSpec::new(
            SupFlags::new(Strategy::Dynamic).intensity(u32::MAX, std::time::Duration::from_secs(1)),
        )
        .into_child_spec("connections");
        let mut spec = SupervisorSpec::new(SupFlags::new(Strategy::RestForOne)).child(connections);
        for index in 0..self.edge.settings.acceptors {
            let this = self.clone();
            let shared = Arc::clone(&shared);
            let acceptor = ChildSpec::new(
                format!("acceptor:{index}"),
                Arc::new(move |args: StartArgs| {
                    let this = this.clone();
                    let shared = Arc::clone(&shared);
                    let parent = args.parent.clone();
                    spawn_with(args.spawn_options(), move |_| Acceptor {
                        index,
                        socket: this.socket,
                        edge: this.edge,
                        shared,
                        parent,
                        connections: None,
                    })
                    .map(|s| s.pid)
                }),
            )
            .placement(Placement::Pool(index));
            spec = spec.child(acceptor);
        }
        spec.into_child_spec(format!("listener:{}", self.name))
    }
}

/// Accepts sockets and starts a channel actor for each.
#[derive(Debug)]
struct Acceptor {
    index: usize,
    socket: Arc<std::net::TcpListener>,
    edge: Arc<Edge>,
    shared: Arc<NodeShared>,
    parent: Pid,
    connections: Option<SupervisorRef>,
}

#[derive(Debug)]
struct Accepted(std::io::Result<(tokio::net::TcpStream, SocketAddr)>);

impl Actor for Acceptor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let socket = match self.socket.try_clone().and_then(TcpListener::from_std) {
            Ok(socket) => socket,
            Err(err) => {
                warn!(listener = %self.edge.name, cause = %err, "listener socket unusable");
                ctx.stop();
                return;
            }
        };
        if let Ok(addr) = socket.local_addr() {
            info!(listener = %self.edge.name, acceptor = self.index, %addr, "listener_started");
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
                    warn!(listener = %act.edge.name, "no connections supervisor");
                    ctx.stop();
                }
                act.connections = found;
            }));
        }
    }
}

impl Acceptor {
    /// Whether the access rules let `client` in; a denied one is counted
    /// and logged.
    fn admits(&self, client: SocketAddr) -> bool {
        if self.edge.settings.access.allows(client.ip()) {
            return true;
        }
        let denied = self.edge.denied.fetch_add(1, Ordering::Relaxed) + 1;
        debug!(
            listener = %self.edge.name,
            peer = %client,
            denied_total = denied,
            "connection denied by access rules"
        );
        false
    }

    /// Waits for the PROXY header, then admits the client it names.
    fn await_proxy_header(
        &self,
        ctx: &mut Context<Self>,
        mut stream: tokio::net::TcpStream,
        peer: SocketAddr,
        limit: Duration,
    ) {
        let read = async move {
            let header = tokio::time::timeout(limit, proxy::read_header(&mut stream)).await;
            (header, stream)
        };
        ctx.spawn(read.into_actor(self).map(move |(header, stream), act, ctx| {
            let source = match header {
                Ok(Ok(source)) => source,
                Ok(Err(err)) => {
                    debug!(listener = %act.edge.name, %peer, cause = %err, "connection closed");
                    return;
                }
                Err(_) => {
                    debug!(listener = %act.edge.name, %peer, "no PROXY header in time");
                    return;
                }
            };
            if act.admits(source.unwrap_or(peer)) {
                act.start_channel(ctx, stream, source);
            }
        }));
    }

    /// Hands the socket to a new channel actor under `connections`.
    fn start_channel(
        &self,
        ctx: &mut Context<Self>,
        stream: tokio::net::TcpStream,
        proxied: Option<SocketAddr>,
    ) {
        let Some(connections) = self.connections.clone() else {
            return;
        };
        let std_stream = match stream.into_std() {
            Ok(s) => s,
            Err(_) => return,
        };
        let socket = Arc::new(Mutex::new(Some(std_stream)));
        let shared = Arc::clone(&self.shared);
        let context = match proxied {
            None => Arc::clone(&self.edge.context),
            Some(client) => Arc::new(ListenerContext {
                proxied: Some(client),
                ..ListenerContext::clone(&self.edge.context)
            }),
        };
        let start = Arc::new(move |args: StartArgs| {
            let socket = socket.lock().take();
            let shared = Arc::clone(&shared);
            let context = Arc::clone(&context);
            spawn_with(args.spawn_options(), move |_| {
                let stream = socket.and_then(|s| tokio::net::TcpStream::from_std(s).ok());
                ChannelActor::start_with(stream, shared, context)
            })
            .map(|s| s.pid)
        });
        let spec = ChildSpec::new("channel", start)
            .restart(Restart::Temporary)
            .placement(Placement::RoundRobin);
        let start = async move { connections.start_child(spec).await };
        ctx.spawn(start.into_actor(self).map(|result, act, _| {
            if let Err(err) = result {
                debug!(listener = %act.edge.name, cause = %err, "channel not started");
            }
        }));
    }
}

impl StreamHandler<Accepted> for Acceptor {
    fn handle(&mut self, Accepted(result): Accepted, ctx: &mut Context<Self>) {
        let (stream, peer) = match result {
            Ok(accepted) => accepted,
            Err(err) => {
                // EMFILE and friends: keep accepting once things calm down.
                debug!(listener = %self.edge.name, cause = %err, "accept failed");
                return;
            }
        };
        let settings = &self.edge.settings;
        let open = self.shared.metrics.connections.load(Ordering::Relaxed) as usize;
        if settings.max_connections.is_some_and(|max| open >= max) {
            self.shared
                .metrics
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            debug!(listener = %self.edge.name, %peer, "connection refused: listener full");
            return;
        }
        // Without a PROXY header to wait for, a denied client is closed
        // before anything is set on its socket.
        if settings.proxy_protocol.is_none() && !self.admits(peer) {
            return;
        }
        if let Err(err) = settings.socket.apply(SockRef::from(&stream)) {
            debug!(listener = %self.edge.name, %peer, cause = %err, "socket options not set");
        }
        match settings.proxy_protocol {
            Some(limit) => self.await_proxy_header(ctx, stream, peer, limit),
            None => self.start_channel(ctx, stream, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(text: &str) -> girder_config::TcpListener {
        let config = girder_config::Config::from_hocon(text).expect("test config");
        config.listeners.tcp["default"].clone()
    }

    fn context(l: &girder_config::TcpListener) -> ListenerContext {
        ListenerContext::new("tcp:default".into(), Arc::default(), l)
    }

    #[test]
    fn the_context_carries_send_timeout_and_read_size() {
        let d = context(&listener(""));
        assert_eq!(d.send_timeout, Some(Duration::from_secs(15)));
        assert_eq!(d.read_chunk, READ_CHUNK);
        assert_eq!(d.proxied, None);
        let l = listener("listeners.tcp.default.tcp_options { buffer = 2KB, send_timeout = 3s }\n");
        let c = context(&l);
        assert_eq!(c.read_chunk, 2048);
        assert_eq!(c.send_timeout, Some(Duration::from_secs(3)));
        let never = listener("listeners.tcp.default.tcp_options.send_timeout_close = false\n");
        assert_eq!(context(&never).send_timeout, None);
    }

    #[test]
    fn settings_follow_the_listener_keys() {
        let d = ListenerSettings::from_config(&listener("")).expect("settings");
        assert_eq!(d.acceptors, 16);
        assert_eq!(d.proxy_protocol, None);
        assert_eq!(d.max_connections, None);
        assert_eq!(d.socket.backlog, 1024);
        let s = ListenerSettings::from_config(&listener(
            "listeners.tcp.default {\n  acceptors = 3\n  proxy_protocol = true\n  \
             proxy_protocol_timeout = 2s\n  max_connections = 10\n  \
             access_rules = [\"deny 10.0.0.0/8\"]\n}\n",
        ))
        .expect("settings");
        assert_eq!(s.acceptors, 3);
        assert_eq!(s.proxy_protocol, Some(Duration::from_secs(2)));
        assert_eq!(s.max_connections, Some(10));
        assert!(!s.access.allows("10.1.2.3".parse().expect("ip")));
        assert!(s.access.allows("11.1.2.3".parse().expect("ip")));
    }
}
