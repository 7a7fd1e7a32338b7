//! The channel actor: one per client, as EMQX's `emqx_connection` process.
//!
//! It owns the socket and a pure [`Channel`] (which owns the session), feeds
//! the channel what it reads, and carries out the channel's [`Action`]s:
//! writing packets, routing messages through the
//! [`Router`](crate::router::Router), registering the
//! client id, taking a session over from another channel actor.
//!
//! Memory is spent only while there is something to do: the read buffer is
//! allocated when the socket is readable and released once every complete
//! packet was decoded from it; the write buffer is released once flushed.
//! An idle connection holds its socket, its channel and the actor itself.
//!
//! When the socket closes and the session lives on (a non-zero session
//! expiry), the actor stays, without a socket, holding the session: messages
//! routed to it are queued by the session, and a new connection with the
//! same client id takes the session over.
//!
//! # Layout
//!
//! - `channel.rs`: the actor, its I/O and its mailbox messages;
//!   `channel/readiness.rs`: the futures that wait for its socket.
//! - `channel/lifecycle.rs`: the actor's phase (socket open, registered,
//!   session kept without a socket, taken over) as one enum.
//! - `channel/takeover.rs`: taking a client id over from its previous
//!   holder, both sides (on this node, or on another: `crate::handover`).
//! - `channel/subscriber.rs`: the actor's handle in the subscriber index.
//! - `channel/timers.rs`: the checks its thread's wheel sends (CONNECT
//!   timeout, keep alive, retries, awaiting-PUBREL expiry, session expiry).
//! - `channel/linger.rs`: closing a socket so that the client reads its
//!   last packets.
//! - `channel/close_log.rs`: the rate-limited line for each connection the
//!   broker closes.

mod close_log;
mod lifecycle;
mod linger;
mod readiness;
mod subscriber;
mod takeover;
mod timers;

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::BytesMut;
use girder_broker::channel::{refusal_packet, Action, Channel, CloseCause};
use girder_broker::codec::{self, ByteStr, ErrorReply, Packet, ProtocolVersion, ReasonCode};
use girder_broker::message::{Delivery, OutPublish, SubOpts};
use tokio::net::TcpStream;
use tracing::debug;

use crate::keepalive::{self, Slot, Stamp};
use crate::listener::ListenerContext;
use crate::metrics::Metrics;
use crate::node::NodeShared;
use crate::router::DeliveryBatch;

use readiness::{Reader, Writable};
pub use subscriber::{Subscriber, SubscriberData};
pub use takeover::{HandOver, Handed, Takeover};

use lifecycle::Lifecycle;

/// Most bytes read from one socket before yielding to other actors.
const READ_BUDGET: usize = 64 * 1024;
/// Size of each read, unless the listener's `tcp_options.buffer` says.
pub(crate) const READ_CHUNK: usize = 8 * 1024;
/// Output held for a slow client before QoS 0 deliveries are dropped.
const MAX_WRITE_BACKLOG: usize = 4 * 1024 * 1024;

/// Messages routed to this channel's session.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Vec<Delivery>);

/// Ends the connection (admin kick, node shutdown).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Kick {
    /// Reason sent to a v5 client.
    pub reason: ReasonCode,
}

/// A channel actor that has subscribed: its entry in the subscriber index.
#[derive(Debug)]
struct Subscribed {
    sub: Subscriber,
    /// Filters this actor put in the subscriber index (removed at the end).
    indexed: HashSet<ByteStr>,
}

thread_local! {
    /// The action buffer the channel actors of this thread share: actions
    /// are carried out as soon as the channel produced them, so no actor
    /// needs a buffer of its own between two inputs.
    static ACTIONS: std::cell::Cell<Vec<Action>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The thread's action buffer (a new one if it is in use: a handler that
/// runs inside another's actions).
fn take_actions() -> Vec<Action> {
    ACTIONS.take()
}

/// Gives an action buffer back to the thread, emptied; an unusually large
/// one is freed instead.
fn recycle_actions(mut actions: Vec<Action>) {
    actions.clear();
    if actions.capacity() <= 1024 {
        ACTIONS.set(actions);
    }
}

/// A connection's read and write buffers, allocated together while there
/// is something to read or write.
#[derive(Debug, Default)]
struct Buffers {
    read: BytesMut,
    write: BytesMut,
}

/// Shows the client's address in logs: the one its PROXY header named,
/// else the socket's peer address, or `-` once the socket is gone.
struct Peer<'a>(Option<&'a TcpStream>, Option<&'a SocketAddr>);

impl std::fmt::Display for Peer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addr = match self {
            Peer(None, _) => None,
            Peer(Some(_), Some(proxied)) => Some(**proxied),
            Peer(Some(stream), None) => stream.peer_addr().ok(),
        };
        match addr {
            Some(addr) => addr.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// One client's actor. See the module documentation.
#[derive(Debug)]
pub struct ChannelActor {
    id: u64,
    shared: Arc<NodeShared>,
    /// Socket open, client id registered, session kept without a socket,
    /// taken over: see [`lifecycle`].
    life: Lifecycle,
    /// The read and write buffers, while either holds bytes: an idle
    /// connection keeps neither.
    bufs: Option<Box<Buffers>>,
    decoder: codec::Decoder,
    channel: Channel,
    /// Deliveries routed while handling one input; allocated at the first
    /// publication (a subscribe-only device never routes anything).
    batch: Option<Box<DeliveryBatch<Subscriber>>>,
    /// When the client last sent something (for its keep alive).
    last_recv: Stamp,
    /// This actor as a subscriber, from its first subscription on: a client
    /// that never subscribes holds no address of its own actor.
    subscriber: Option<Box<Subscribed>>,
    /// Where this actor is on its thread's wheel (the CONNECT timeout, then
    /// the keep alive, retries and awaiting-PUBREL expiry, then the expiry
    /// of the session it keeps without a client; see [`keepalive`]).
    wheel: Slot,
    /// The listener's settings (channel config, send timeout, read size)
    /// and the client's address from a PROXY header.
    listener: Arc<ListenerContext>,
    /// Whether this connection's overload drops were logged.
    overload_logged: bool,
}

impl ChannelActor {
    /// A channel actor for a freshly accepted socket (`None` when the
    /// socket could not be registered with this arbiter: the actor ends at
    /// once), of the listener whose context is `listener`.
    pub fn start_with(
        stream: Option<TcpStream>,
        shared: Arc<NodeShared>,
        listener: Arc<ListenerContext>,
    ) -> Self {
        let config = Arc::clone(&listener.channel_config);
        Self {
            id: shared.router.next_subscriber_id(),
            decoder: codec::Decoder::new(config.max_packet_size),
            channel: Channel::new(config),
            shared,
            life: Lifecycle::accepted(stream),
            bufs: None,
            batch: None,
            last_recv: Stamp::now(),
            subscriber: None,
            wheel: Slot::NONE,
            listener,
            overload_logged: false,
        }
    }

    fn version(&self) -> ProtocolVersion {
        self.channel
            .protocol()
            .or_else(|| self.decoder.version())
            .unwrap_or(ProtocolVersion::V3_1_1)
    }

    /// Reads what the socket has (up to a budget), decodes and handles every
    /// complete packet.
    fn read_ready(&mut self, ctx: &mut Context<Self>) {
        let Some(stream) = self.life.stream() else {
            return;
        };
        let mut total = 0;
        let mut eof = false;
        let rbuf = &mut self.bufs.get_or_insert_default().read;
        while total < READ_BUDGET {
            rbuf.reserve(self.listener.read_chunk);
            match stream.try_read_buf(rbuf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    debug!(peer = %Peer(Some(stream), self.listener.proxied.as_ref()), cause = %e, "read error");
                    eof = true;
                    break;
                }
            }
        }
        Metrics::add(&self.shared.metrics.bytes_received, total as u64);
        // Nothing more can reach the client that closed: no lingering.
        if let Some(conn) = self.life.conn_mut() {
            conn.peer_closed |= eof;
        }
        if total > 0 {
            self.last_recv = Stamp::now();
        }
        self.process_input(ctx);
        if eof && self.life.has_socket() {
            self.close_socket(ctx, CloseCause::SocketClosed, None);
        }
        self.finish(ctx);
    }

    /// Decodes and handles every complete packet in the read buffer. Stops
    /// while the session is being opened (packets may follow CONNECT before
    /// CONNACK; they are handled once the session is there).
    fn process_input(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        while !self.channel.is_opening() {
            let Some(bufs) = self.bufs.as_mut() else {
                break;
            };
            match self.decoder.decode(&mut bufs.read) {
                Ok(Some(packet)) => {
                    if matches!(packet, Packet::Publish(_)) {
                        Metrics::add(&self.shared.metrics.messages_received, 1);
                    }
                    let mut actions = take_actions();
                    self.channel.handle_in(packet, now, &mut actions);
                    self.run_actions(ctx, actions);
                    if !self.life.has_socket() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    let reason = err.reason_code();
                    let reply = self.decoder.error_reply(&err);
                    close_log::log(&close_log::Closed {
                        what: match reply {
                            ErrorReply::ConnAck(..) => "bad CONNECT, connection refused",
                            _ => "malformed packet, connection closed",
                        },
                        peer: &self.peer(),
                        client_id: self.channel.info().map(|i| i.client_id.as_str()),
                        reason: Some(reason),
                        detail: &err,
                        severity: close_log::Severity::of(reason),
                    });
                    match reply {
                        ErrorReply::ConnAck(version, reason) => {
                            let refusal = refusal_packet(reason);
                            let _ = codec::encode(&refusal, version, self.wbuf());
                            self.close_socket(ctx, CloseCause::SocketClosed, None);
                        }
                        ErrorReply::Disconnect(reason) => {
                            self.close_socket(ctx, CloseCause::SocketClosed, Some(reason));
                        }
                        ErrorReply::Close => {
                            self.close_socket(ctx, CloseCause::SocketClosed, None);
                        }
                    }
                    break;
                }
            }
        }
        self.release_buffers();
    }

    /// Ends the socket side: a server DISCONNECT (v5) when `reason` is
    /// given, then the channel decides on will and session.
    fn close_socket(
        &mut self,
        ctx: &mut Context<Self>,
        cause: CloseCause,
        reason: Option<ReasonCode>,
    ) {
        let now = Instant::now();
        let mut actions = take_actions();
        match reason {
            Some(reason) => self
                .channel
                .server_disconnect(reason, cause, now, &mut actions),
            None => self.channel.closed(cause, now, &mut actions),
        }
        self.run_actions(ctx, actions);
        // The channel may have had nothing to say (before CONNECT).
        self.drop_socket(ctx);
    }

    /// Carries out the channel's actions, in order, then gives the buffer
    /// back to the thread.
    fn run_actions(&mut self, ctx: &mut Context<Self>, mut actions: Vec<Action>) {
        for action in actions.drain(..) {
            match action {
                Action::Send(packet) => self.send(&packet),
                Action::SendPublish(publish) => self.send_publish(&publish),
                Action::Open {
                    client_id,
                    clean_start,
                } => {
                    crate::sys::client_connected(
                        &self.shared,
                        &self.channel,
                        self.life.stream(),
                        &self.listener,
                    );
                    self.take_over(ctx, client_id, clean_start);
                }
                Action::Publish { message, ack } => {
                    if message.retain {
                        self.shared.router.retain(&message, Instant::now());
                    }
                    let batch = self.batch.get_or_insert_default();
                    let matched = self.shared.router.route(&message, batch);
                    if let Some(ack) = ack {
                        self.send(&ack.packet(matched));
                    }
                }
                Action::Subscribe {
                    filter,
                    opts,
                    send_retained,
                } => {
                    self.index(ctx, &filter, opts);
                    if send_retained {
                        self.send_retained(ctx, &filter);
                    }
                }
                Action::Unsubscribe { filter } => {
                    if let Some(subscribed) = &mut self.subscriber {
                        self.shared.router.unsubscribe(&filter, &subscribed.sub);
                        subscribed.indexed.remove(&filter);
                    }
                }
                Action::PublishWill(message) => {
                    if message.retain {
                        self.shared.router.retain(&message, Instant::now());
                    }
                    let batch = self.batch.get_or_insert_default();
                    self.shared.router.route(&message, batch);
                }
                Action::ScheduleWill(delay) => {
                    ctx.run_later(delay, |act, ctx| {
                        let mut actions = take_actions();
                        act.channel.will_timer(&mut actions);
                        act.run_actions(ctx, actions);
                        act.finish(ctx);
                    });
                }
                Action::Close => {
                    self.log_channel_close();
                    self.drop_socket(ctx);
                }
                Action::DroppedTooLarge => {
                    Metrics::add(&self.shared.metrics.delivery_dropped_too_large, 1);
                }
                Action::Park(expiry) => {
                    // The socket is gone: the wheel's pending check (keep
                    // alive, retries) is void.
                    self.drop_socket(ctx);
                    // An expiry too far away to be an `Instant` is never.
                    if let Some(at) = expiry.and_then(|e| Instant::now().checked_add(e)) {
                        self.schedule_check(ctx, at);
                    }
                }
                Action::Terminate => self.terminate(ctx),
            }
        }
        recycle_actions(actions);
    }

    fn send(&mut self, packet: &Packet) {
        if !self.life.has_socket() {
            return;
        }
        let version = self.version();
        if let Err(err) = codec::encode(packet, version, self.wbuf()) {
            debug!(peer = %self.peer(), error = %err, "packet not encodable");
        }
    }

    fn send_publish(&mut self, publish: &OutPublish) {
        if !self.life.has_socket() {
            return;
        }
        let version = self.version();
        if let Err(err) = publish.encode(version, self.wbuf()) {
            debug!(peer = %self.peer(), error = %err, "PUBLISH not encodable");
        }
    }

    /// Removes everything this actor put in shared tables, and stops.
    fn terminate(&mut self, ctx: &mut Context<Self>) {
        self.unindex();
        self.redispatch_shared();
        self.unregister();
        self.drop_socket(ctx);
        ctx.stop();
    }

    /// Frees the client id, unless another channel took it since.
    fn unregister(&mut self) {
        if self.life.unregister() {
            if let Some(info) = self.channel.info() {
                self.shared.cm.unregister(&info.client_id, self.id);
            }
        }
    }

    /// The session ends with QoS 1/2 messages its client never
    /// acknowledged: those of shared subscriptions go to another member of
    /// their group (the subscriptions must already be out of the index).
    fn redispatch_shared(&mut self) {
        let (Some(subscribed), Some(session)) = (&self.subscriber, self.channel.session()) else {
            return;
        };
        let groups: Vec<ByteStr> = session
            .subscriptions()
            .map(|(filter, _)| filter)
            .filter(|f| f.starts_with("$share/") || f.starts_with("$queue/"))
            .cloned()
            .collect();
        if groups.is_empty() {
            return;
        }
        let unacked = session.unacked_messages();
        if !unacked.is_empty() {
            self.shared.router.redispatch(
                &subscribed.sub,
                &groups,
                unacked,
                self.batch.get_or_insert_default(),
            );
        }
    }

    /// Puts `filter` (as subscribed, `$share/...` included) in the
    /// subscriber index, once the client id is registered.
    fn index(&mut self, ctx: &mut Context<Self>, filter: &ByteStr, opts: SubOpts) {
        let Some(info) = self.channel.info().filter(|_| self.life.is_registered()) else {
            return;
        };
        let subscribed = self.subscriber.get_or_insert_with(|| {
            Box::new(Subscribed {
                sub: Subscriber::new(self.id, ctx.address(), info.client_id.clone()),
                indexed: HashSet::new(),
            })
        });
        self.shared.router.subscribe(filter, &subscribed.sub, opts);
        subscribed.indexed.insert(filter.clone());
    }

    /// Sends the retained messages a new subscription to `filter` gets,
    /// before the actions that followed the subscription.
    fn send_retained(&mut self, ctx: &mut Context<Self>, filter: &ByteStr) {
        let now = Instant::now();
        let retained = self.shared.router.retained_matching(filter, now);
        if !retained.is_empty() {
            let mut actions = take_actions();
            self.channel
                .deliver_retained(filter, retained, now, &mut actions);
            self.run_actions(ctx, actions);
        }
    }

    fn unindex(&mut self) {
        if let Some(subscribed) = &mut self.subscriber {
            for filter in subscribed.indexed.drain() {
                self.shared.router.unsubscribe(&filter, &subscribed.sub);
            }
        }
    }

    /// Writes what can be written now, then closes the socket: at once when
    /// the client closed its side, else after lingering (see [`linger`]).
    fn drop_socket(&mut self, ctx: &mut Context<Self>) {
        if !self.life.has_socket() {
            return;
        }
        self.flush(ctx);
        // The reader ends by itself without a socket; the wheel's pending
        // check (CONNECT timeout, keep alive, retries) is void.
        keepalive::cancel(&mut self.wheel);
        let unsent = self.bufs.take().map(|b| b.write).filter(|w| !w.is_empty());
        if let Some(conn) = self.life.take_conn() {
            crate::sys::client_disconnected(
                &self.shared,
                &self.channel,
                &conn.stream,
                &self.listener,
            );
            if !conn.peer_closed {
                linger::close(conn.stream, unsent);
            }
            Metrics::dec(&self.shared.metrics.connections);
            Metrics::add(&self.shared.metrics.client_disconnected, 1);
        }
    }

    /// End of a handler: send the batched deliveries, write the output,
    /// have new deadlines checked in time.
    fn finish(&mut self, ctx: &mut Context<Self>) {
        if let Some(batch) = self.batch.as_mut().filter(|b| !b.is_empty()) {
            if let Some(accepted) = self.shared.router.flush(batch) {
                // QoS 1/2 messages went to other nodes: what this handler
                // wrote (their PUBACKs and PUBRECs among it) waits until
                // those nodes have routed them, and so does everything
                // else the actor would do.
                ctx.wait(
                    actix::fut::wrap_future(accepted).map(|(), act: &mut Self, ctx| {
                        act.flush(ctx);
                        act.arm(ctx);
                    }),
                );
                return;
            }
        }
        self.flush(ctx);
        self.arm(ctx);
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        let (Some(conn), Some(bufs)) = (self.life.conn_mut(), self.bufs.as_mut()) else {
            return;
        };
        if conn.write_waiting {
            return;
        }
        let stream = &conn.stream;
        let wbuf = &mut bufs.write;
        while !wbuf.is_empty() {
            match stream.try_write(wbuf) {
                Ok(n) => {
                    Metrics::add(&self.shared.metrics.bytes_sent, n as u64);
                    let _ = wbuf.split_to(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.write_waiting = true;
                    // A write blocked past the listener's send timeout
                    // closes the connection; each blocked write is timed.
                    match self.listener.send_timeout {
                        Some(limit) => {
                            ctx.spawn(Writable.timeout(limit).map(|result, act, ctx| {
                                act.writable(
                                    ctx,
                                    result.unwrap_or(Err(io::ErrorKind::TimedOut.into())),
                                )
                            }))
                        }
                        None => {
                            ctx.spawn(Writable.map(|result, act, ctx| act.writable(ctx, result)))
                        }
                    };
                    return;
                }
                Err(e) => {
                    debug!(peer = %Peer(Some(stream), self.listener.proxied.as_ref()), cause = %e, "write error");
                    wbuf.clear();
                    conn.peer_closed = true;
                    conn.write_waiting = true;
                    ctx.run_later(Duration::ZERO, |act, ctx| {
                        if let Some(conn) = act.life.conn_mut() {
                            conn.write_waiting = false;
                        }
                        act.close_socket(ctx, CloseCause::SocketClosed, None);
                        act.finish(ctx);
                    });
                    return;
                }
            }
        }
        *wbuf = BytesMut::new();
        self.release_buffers();
    }

    /// A blocked write ended: the socket is writable again, or it failed or
    /// stayed blocked past the send timeout (the connection is closed).
    fn writable(&mut self, ctx: &mut Context<Self>, result: io::Result<()>) {
        if let Some(conn) = self.life.conn_mut() {
            conn.write_waiting = false;
        }
        if let Err(err) = result {
            debug!(peer = %self.peer(), cause = %err, "write blocked: connection closed");
            // What is still pending cannot be written.
            if let Some(bufs) = self.bufs.as_mut() {
                bufs.write.clear();
            }
            self.close_socket(ctx, CloseCause::SocketClosed, None);
        }
        // Also sends what closing routed (a will).
        self.finish(ctx);
    }

    /// The write buffer (allocating the buffers if need be).
    fn wbuf(&mut self) -> &mut BytesMut {
        &mut self.bufs.get_or_insert_default().write
    }

    /// Drops the buffers once both are empty (their memory with them).
    fn release_buffers(&mut self) {
        if self
            .bufs
            .as_ref()
            .is_some_and(|b| b.read.is_empty() && b.write.is_empty())
        {
            self.bufs = None;
        }
    }

    /// The client's address, for logs (read from the socket rather than
    /// kept in every connection).
    fn peer(&self) -> Peer<'_> {
        Peer(self.life.stream(), self.listener.proxied.as_ref())
    }
}

impl Actor for ChannelActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.life.has_socket() {
            // Counted while the actor holds its socket.
            Metrics::add(&self.shared.metrics.connections, 1);
            ctx.spawn(Reader);
            // The CONNECT timeout, checked by this thread's wheel: no timer
            // to set up and cancel for every connection.
            let at = Instant::now() + self.shared.idle_timeout;
            keepalive::schedule(&mut self.wheel, || ctx.address().downgrade(), at);
        }
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        // A stop that did not go through terminate (e.g. shutdown) still
        // cleans up the shared tables.
        self.unindex();
        self.unregister();
        if self.life.take_conn().is_some() {
            Metrics::dec(&self.shared.metrics.connections);
        }
    }
}

impl Handler<Deliver> for ChannelActor {
    type Result = ();

    fn handle(&mut self, Deliver(deliveries): Deliver, ctx: &mut Context<Self>) {
        if let Some(subscribed) = &self.subscriber {
            subscribed
                .sub
                .pending
                .fetch_sub(deliveries.len(), Ordering::Relaxed);
        }
        self.deliver(ctx, deliveries);
    }
}

impl ChannelActor {
    /// Hands deliveries to the session (or to the successor of a session
    /// taken over).
    fn deliver(&mut self, ctx: &mut Context<Self>, deliveries: Vec<Delivery>) {
        let Some(mut deliveries) = self.pass_on(deliveries) else {
            return;
        };
        let backlog = self.bufs.as_ref().map_or(0, |b| b.write.len());
        if backlog > MAX_WRITE_BACKLOG {
            let before = deliveries.len();
            deliveries.retain(|d| d.opts.options.qos != codec::QoS::AtMostOnce);
            let dropped = before - deliveries.len();
            self.shared.metrics.dropped_overload(dropped);
            if dropped > 0 && !std::mem::replace(&mut self.overload_logged, true) {
                close_log::log(&close_log::Closed {
                    what: "send backlog full, QoS 0 deliveries dropped",
                    peer: &self.peer(),
                    client_id: self.channel.info().map(|i| i.client_id.as_str()),
                    reason: None,
                    detail: &format_args!("backlog {backlog} bytes"),
                    severity: close_log::Severity::Warn,
                });
            }
        }
        Metrics::add(
            &self.shared.metrics.messages_delivered,
            deliveries.len() as u64,
        );
        let mut actions = take_actions();
        self.channel
            .deliver(deliveries, Instant::now(), &mut actions);
        self.run_actions(ctx, actions);
        self.finish(ctx);
    }
}

impl Handler<Kick> for ChannelActor {
    type Result = ();

    fn handle(&mut self, msg: Kick, ctx: &mut Context<Self>) {
        self.close_socket(ctx, CloseCause::Kicked, Some(msg.reason));
        self.finish(ctx);
    }
}

#[cfg(test)]
mod tests {
    /// The actor is stored inline in its task, once per connection: state
    /// that only some clients use (a subscriber entry, a delivery batch,
    /// aliases, the QoS 2 table, session counters, I/O buffers) lives behind
    /// pointers allocated on first use. The task is the actor plus 368
    /// bytes (actix context and mailbox handle, the process wrapper, tokio's
    /// stage) plus tokio's 80-byte header and trailer, rounded up to 128:
    /// up to 448 bytes of actor it is 896 bytes, jemalloc's 896 class; a
    /// few bytes more take the 1024 class, 128 bytes more for every
    /// connection.
    #[test]
    fn the_channel_actor_stays_small() {
        let size = std::mem::size_of::<super::ChannelActor>();
        assert!(size <= 448, "ChannelActor is {size} bytes");
    }
}
