//! The channel: one client connection's MQTT protocol state machine.
//!
//! A channel takes events (packets from the client, deliveries from the
//! router, the socket closing, timers) and pushes [`Action`]s for its owner
//! to carry out (send a packet, route a message, update the subscriber
//! index, close). It does no I/O and knows no runtime, as EMQX's
//! `emqx_channel` is driven by `emqx_connection`.
//!
//! ```text
//!   Idle ──CONNECT──▶ Connecting ──opened()──▶ Connected ──closed()──▶ Disconnected
//!    │                    │                        │  (session kept while     │
//!    └── anything else ───┴──▶ closed              │   its expiry runs)       │
//!                                                  └──takeover()──▶ ended ◀───┘
//! ```
//!
//! The channel owns the client's [`Session`] while it lives; when the socket
//! closes and the session expiry interval is not 0 the owner keeps the
//! channel (and so the session) until the session expires or a new
//! connection with the same client id takes it over.

mod alias;
mod config;
mod connect;
mod mountpoint;
mod publish;
mod subscribe;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::{
    ByteStr, Disconnect, DisconnectProperties, LastWill, Packet, ProtocolVersion, PubAck, PubComp,
    PubRec, PubRel, Publish, PublishProperties, QoS, ReasonCode,
};
use crate::message::{Delivery, Message, OutPublish, SubOpts};
use crate::session::{Outgoing, Session, SessionError};

use alias::{InboundAliases, OutboundAlias, OutboundAliases};
pub use config::ChannelConfig;
pub(crate) use connect::refusal;
pub use connect::ConnInfo;
pub use mountpoint::{mount_filter, Mountpoint, MountpointError, MountpointRefusal};

/// What the owner of a channel must do, in order.
#[derive(Debug)]
pub enum Action {
    /// Encode and write a packet to the client.
    Send(Packet),
    /// Write a PUBLISH of a shared message to the client (see
    /// [`OutPublish::encode`]: subscribers that need the same bytes share
    /// one encoded frame).
    SendPublish(OutPublish),
    /// CONNECT was accepted: find the client id's existing session (take it
    /// over from its current owner, or discard it when `clean_start`), then
    /// call [`Channel::opened`].
    Open {
        /// The client identifier.
        client_id: ByteStr,
        /// Whether the client asked for a new session.
        clean_start: bool,
    },
    /// Route a message to every matching subscriber; then, when `ack` is
    /// set, send the acknowledgement that [`PendingAck::packet`] builds.
    Publish {
        /// The message, shared by all its subscribers.
        message: Arc<Message>,
        /// The PUBACK or PUBREC owed to the publisher once it is routed.
        ack: Option<PendingAck>,
    },
    /// Add this session to the subscriber index under `filter` (the filter
    /// as the client sent it, `$share/...` included).
    Subscribe {
        /// The filter.
        filter: ByteStr,
        /// Options of the subscription.
        opts: SubOpts,
        /// Whether retained messages matching the filter are to be sent now
        /// (through [`Channel::deliver_retained`]).
        send_retained: bool,
    },
    /// Remove this session from the subscriber index under `filter`.
    Unsubscribe {
        /// The filter as the client sent it.
        filter: ByteStr,
    },
    /// Publish the client's will message now.
    PublishWill(Arc<Message>),
    /// Call [`Channel::will_timer`] after this delay.
    ScheduleWill(Duration),
    /// Close the socket (after writing what was sent before).
    Close,
    /// A delivery was dropped because it exceeds the client's Maximum
    /// Packet Size (counted by the owner).
    DroppedTooLarge,
    /// The socket is gone and the session lives on: keep the channel, and
    /// call [`Channel::expire`] after the delay (`None`: never).
    Park(Option<Duration>),
    /// The session is over: remove its subscriptions from the index and end.
    Terminate,
}

/// The acknowledgement of a QoS 1 or QoS 2 PUBLISH, sent once the message is
/// routed so that it can say whether anybody matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingAck {
    packet_id: u16,
    qos: QoS,
    v5: bool,
}

impl PendingAck {
    /// The PUBACK (QoS 1) or PUBREC (QoS 2) to send, given how many
    /// subscribers matched (v5 reports 0x10 No matching subscribers).
    pub fn packet(&self, matched: usize) -> Packet {
        let reason = if self.v5 && matched == 0 {
            ReasonCode::NoMatchingSubscribers
        } else {
            ReasonCode::Success
        };
        if self.qos == QoS::ExactlyOnce {
            let mut ack = PubRec::new(self.packet_id);
            ack.reason_code = reason;
            Packet::PubRec(ack)
        } else {
            let mut ack = PubAck::new(self.packet_id);
            ack.reason_code = reason;
            Packet::PubAck(ack)
        }
    }
}

/// Why the connection ended, as the owner saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCause {
    /// The client closed the socket, or reading or writing it failed.
    SocketClosed,
    /// Nothing arrived within 1.5 keep-alive periods.
    KeepAliveTimeout,
    /// The broker is stopping.
    ServerShutdown,
    /// An administrator kicked the client.
    Kicked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Connecting,
    Connected,
    Disconnected,
    Ended,
}

/// A will waiting for the connection's end; intervals in seconds, as
/// CONNECT carries them (every connection holds this inline).
#[derive(Debug)]
struct Will {
    message: Arc<Message>,
    /// The Will Delay Interval.
    delay_secs: u32,
    /// The Will Message Expiry Interval, which runs from the will's
    /// publication, not from CONNECT (MQTT 5 section 3.1.3.2.4).
    expiry_secs: Option<u32>,
}

impl Will {
    fn delay(&self) -> Duration {
        Duration::from_secs(self.delay_secs.into())
    }

    /// Dates the will message as published at `at`.
    fn stamp(&mut self, at: Instant) {
        let expiry = self.expiry_secs.map(|s| Duration::from_secs(s.into()));
        let message = Arc::make_mut(&mut self.message);
        message.received_at = at;
        message.expires_at = expiry.map(|expiry| at + expiry);
    }
}

/// One client connection's protocol state. See the module documentation.
#[derive(Debug)]
pub struct Channel {
    config: Arc<ChannelConfig>,
    state: State,
    info: Option<ConnInfo>,
    session: Option<Session>,
    will: Option<Will>,
    /// The will of a normal DISCONNECT is dropped; 0x04 keeps it.
    inbound_aliases: InboundAliases,
    outbound_aliases: OutboundAliases,
    /// Why the channel itself ended the connection, if it did (see
    /// [`Channel::server_close_reason`]).
    server_reason: Option<ReasonCode>,
}

impl Channel {
    /// A channel waiting for CONNECT.
    pub fn new(config: Arc<ChannelConfig>) -> Self {
        Self {
            config,
            state: State::Idle,
            info: None,
            session: None,
            will: None,
            inbound_aliases: InboundAliases::default(),
            outbound_aliases: OutboundAliases::default(),
            server_reason: None,
        }
    }

    /// The accepted CONNECT's parameters (after CONNECT).
    pub fn info(&self) -> Option<&ConnInfo> {
        self.info.as_ref()
    }

    /// The protocol version, once CONNECT told it.
    pub fn protocol(&self) -> Option<ProtocolVersion> {
        self.info.as_ref().map(|i| i.protocol)
    }

    /// The session, once opened.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Whether CONNECT was accepted and the owner has yet to answer
    /// [`Action::Open`]: packets after CONNECT must wait until then.
    pub fn is_opening(&self) -> bool {
        self.state == State::Connecting
    }

    /// Whether a client is connected (CONNACK sent, socket open).
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// The reason code the channel ended the connection with, when it was
    /// the channel's decision: a CONNECT refused (the CONNACK's code), or a
    /// protocol error of the client (the DISCONNECT's code; MQTT 3 clients,
    /// which get no DISCONNECT, are closed for the same reason). `None`
    /// while open, and when the client or the owner ended the connection.
    pub fn server_close_reason(&self) -> Option<ReasonCode> {
        self.server_reason
    }

    /// How long the client may stay silent before it is considered gone
    /// (keep alive × `keepalive_multiplier`); `None` without keep alive.
    pub fn keepalive_timeout(&self) -> Option<Duration> {
        let info = self.info.as_ref()?;
        (info.keep_alive > 0).then(|| {
            Duration::from_secs_f32(f32::from(info.keep_alive) * self.config.keepalive_multiplier)
        })
    }

    /// Handles one packet from the client.
    pub fn handle_in(&mut self, packet: Packet, now: Instant, out: &mut Vec<Action>) {
        match (self.state, packet) {
            (State::Idle, Packet::Connect(connect)) => self.handle_connect(&connect, now, out),
            // MQTT-3.1.0-1: the first packet must be CONNECT.
            (State::Idle, _) => {
                self.server_reason = Some(ReasonCode::ProtocolError);
                self.end(out)
            }
            // MQTT-3.1.0-2: a second CONNECT is a protocol error.
            (State::Connected, Packet::Connect(_)) => {
                self.protocol_error(ReasonCode::ProtocolError, now, out)
            }
            (State::Connecting, Packet::Connect(_)) => {
                self.server_reason = Some(ReasonCode::ProtocolError);
                self.end(out)
            }
            (State::Connected, Packet::Publish(publish)) => self.handle_publish(publish, now, out),
            (State::Connected, Packet::PubAck(ack)) => {
                let mut sent = Vec::new();
                let result = session_of(&mut self.session).on_puback(ack.packet_id, now, &mut sent);
                self.after_ack(result, sent, now, out);
            }
            (State::Connected, Packet::PubRec(ack)) => {
                let mut sent = Vec::new();
                let result = session_of(&mut self.session).on_pubrec(
                    ack.packet_id,
                    ack.reason_code,
                    now,
                    &mut sent,
                );
                self.after_ack(result, sent, now, out);
            }
            (State::Connected, Packet::PubComp(ack)) => {
                let mut sent = Vec::new();
                let result =
                    session_of(&mut self.session).on_pubcomp(ack.packet_id, now, &mut sent);
                self.after_ack(result, sent, now, out);
            }
            (State::Connected, Packet::PubRel(rel)) => {
                let mut comp = PubComp::new(rel.packet_id);
                if session_of(&mut self.session)
                    .on_pubrel(rel.packet_id)
                    .is_err()
                {
                    comp.reason_code = ReasonCode::PacketIdentifierNotFound;
                }
                out.push(Action::Send(Packet::PubComp(comp)));
            }
            (State::Connected, Packet::Subscribe(subscribe)) => {
                self.handle_subscribe(subscribe, now, out)
            }
            (State::Connected, Packet::Unsubscribe(unsubscribe)) => {
                self.handle_unsubscribe(unsubscribe, out)
            }
            (State::Connected, Packet::PingReq) => out.push(Action::Send(Packet::PingResp)),
            (State::Connected, Packet::Disconnect(disconnect)) => {
                self.handle_disconnect(&disconnect, now, out)
            }
            // Enhanced authentication is not offered, so AUTH is unexpected;
            // so is any server-to-client packet.
            (State::Connected, _) => self.protocol_error(ReasonCode::ProtocolError, now, out),
            // Packets racing a close are ignored.
            (State::Connecting | State::Disconnected | State::Ended, _) => {}
        }
    }

    fn handle_connect(
        &mut self,
        connect: &crate::codec::Connect,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let accepted = connect::accept(connect, &self.config, generate_client_id);
        let info = match accepted {
            Ok(info) => info,
            Err(reason) => {
                self.server_reason = Some(reason);
                out.push(Action::Send(Packet::ConnAck(Box::new(refusal(reason)))));
                self.end(out);
                return;
            }
        };
        if let Some(will) = &connect.will {
            let mut message = will_message(will, info.client_id.clone(), now);
            if let Some(mountpoint) = &self.config.mountpoint {
                let username = info.username.as_deref();
                message.topic = mountpoint.mount(&info.client_id, username, &will.topic);
            }
            let mut expiry_secs = will.properties.message_expiry_interval;
            if let (None, Some(default)) = (expiry_secs, self.config.message_expiry_interval) {
                // The broker's default, dated from the will's publication
                // and not sent to subscribers.
                expiry_secs = Some(u32::try_from(default.as_secs()).unwrap_or(u32::MAX));
                message.expiry_sent = false;
            }
            self.will = Some(Will {
                message: Arc::new(message),
                delay_secs: will.properties.will_delay_interval.unwrap_or(0),
                expiry_secs,
            });
        }
        self.inbound_aliases = InboundAliases::new(if info.is_v5() {
            self.config.max_topic_alias
        } else {
            0
        });
        self.outbound_aliases = OutboundAliases::new(info.topic_alias_maximum);
        out.push(Action::Open {
            client_id: info.client_id.clone(),
            clean_start: info.clean_start,
        });
        self.info = Some(info);
        self.state = State::Connecting;
    }

    /// The owner's answer to [`Action::Open`]: `resumed` is the session taken
    /// over from a previous connection (`None` for a new session). Sends
    /// CONNACK, re-subscribes a resumed session and resends what it had in
    /// flight.
    pub fn opened(&mut self, resumed: Option<Session>, now: Instant, out: &mut Vec<Action>) {
        let Some(info) = self.info.as_ref() else {
            return;
        };
        if self.state != State::Connecting {
            return;
        }
        let session_present = resumed.is_some();
        let mut session = resumed.unwrap_or_else(|| {
            Session::new(info.client_id.clone(), self.config.session.clone(), now)
        });
        session.set_receive_maximum(Some(info.receive_maximum));
        session.set_expiry_interval(info.session_expiry());
        let connack = connect::connack(info, &self.config, session_present);
        out.push(Action::Send(Packet::ConnAck(Box::new(connack))));
        for (filter, opts) in session.subscriptions() {
            out.push(Action::Subscribe {
                filter: filter.clone(),
                opts: *opts,
                send_retained: false,
            });
        }
        let mut sent = Vec::new();
        session.replay(now, &mut sent);
        self.session = Some(session);
        self.state = State::Connected;
        self.flush_sent(sent, now, out);
    }

    fn handle_disconnect(&mut self, disconnect: &Disconnect, now: Instant, out: &mut Vec<Action>) {
        if let (Some(info), Some(expiry)) = (
            self.info.as_mut(),
            disconnect.properties.session_expiry_interval,
        ) {
            // MQTT-3.14.2-2: a session that was to end with the connection
            // cannot be given an expiry at DISCONNECT.
            if info.session_expiry == 0 && expiry != 0 {
                return self.protocol_error(ReasonCode::ProtocolError, now, out);
            }
            info.session_expiry = expiry;
            let expiry = info.session_expiry();
            if let Some(session) = self.session.as_mut() {
                session.set_expiry_interval(expiry);
            }
        }
        if disconnect.reason_code != ReasonCode::DisconnectWithWillMessage {
            // MQTT-3.14.4-3: a normal DISCONNECT discards the will.
            self.will = None;
        }
        out.push(Action::Close);
        self.closed(CloseCause::SocketClosed, now, out);
    }

    /// Delivers messages routed to this session: sent now, queued, or
    /// dropped as the session decides.
    pub fn deliver(
        &mut self,
        deliveries: impl IntoIterator<Item = Delivery>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let mut sent = Vec::new();
        if self.config.ignore_loop_deliver {
            let me = session.client_id().clone();
            let deliveries = deliveries.into_iter().filter(|d| d.message.from != me);
            session.deliver(deliveries, now, &mut sent);
        } else {
            session.deliver(deliveries, now, &mut sent);
        }
        self.flush_sent(sent, now, out);
    }

    /// Delivers retained messages for a new subscription to `filter`: each
    /// is sent with the retain flag set (MQTT-3.3.1-8).
    pub fn deliver_retained(
        &mut self,
        filter: &str,
        messages: Vec<Arc<Message>>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(opts) = self
            .session
            .as_ref()
            .and_then(|s| s.subscription(filter))
            .copied()
        else {
            return;
        };
        let deliveries = messages
            .into_iter()
            .map(|message| Delivery::retained(message, opts));
        self.deliver(deliveries, now, out);
    }

    /// Timed work, due at [`Self::next_deadline`]: forgets incoming QoS 2
    /// packet ids that waited `await_rel_timeout` for their PUBREL, and
    /// resends (DUP) the unacknowledged PUBLISH and PUBREL packets of an
    /// MQTT 3 client after `retry_interval`. A v5 client gets them again
    /// only when it resumes its session (MQTT-4.4.0-1).
    pub fn tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        let retry = self.state == State::Connected && !self.is_v5();
        let mut sent = Vec::new();
        if let Some(session) = self.session.as_mut() {
            session.expire_awaiting_rel(now);
            if retry {
                session.retry(now, &mut sent);
            }
        }
        self.flush_sent(sent, now, out);
    }

    /// When [`Self::tick`] has work next while a client is connected: the
    /// earliest retry (MQTT 3 clients) or awaiting-PUBREL expiry. `None`
    /// when nothing is due, or without a client.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.state != State::Connected {
            return None;
        }
        let session = self.session.as_ref()?;
        let retry = if self.is_v5() {
            None
        } else {
            session.retry_deadline()
        };
        match (retry, session.awaiting_rel_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn is_v5(&self) -> bool {
        self.info.as_ref().is_some_and(ConnInfo::is_v5)
    }

    /// The socket closed (or the owner closes it): decide the fate of the
    /// will and of the session.
    pub fn closed(&mut self, _cause: CloseCause, now: Instant, out: &mut Vec<Action>) {
        match self.state {
            State::Connected => {}
            State::Idle | State::Connecting => return self.end(out),
            State::Disconnected | State::Ended => return,
        }
        self.state = State::Disconnected;
        let expiry = self.info.as_ref().and_then(ConnInfo::session_expiry);
        if let Some(will) = &mut self.will {
            // The will waits for its delay, or for the session's end if that
            // comes sooner (MQTT-3.1.3-9).
            let delay = match expiry {
                Some(expiry) => will.delay().min(expiry),
                None => will.delay(),
            };
            will.stamp(now + delay);
            if delay.is_zero() {
                self.publish_will(out);
            } else {
                out.push(Action::ScheduleWill(delay));
            }
        }
        if let Some(session) = self.session.as_mut() {
            session.on_disconnect(now);
        }
        if expiry == Some(Duration::ZERO) {
            self.state = State::Ended;
            self.release_exclusive();
            out.push(Action::Terminate);
        } else {
            out.push(Action::Park(expiry));
        }
    }

    /// The will delay elapsed while the session lives on without a client.
    pub fn will_timer(&mut self, out: &mut Vec<Action>) {
        if self.state == State::Disconnected {
            self.publish_will(out);
        }
    }

    /// The session expiry elapsed: the session ends (its pending will, if
    /// any, is published first).
    pub fn expire(&mut self, out: &mut Vec<Action>) {
        if self.state == State::Disconnected {
            self.publish_will(out);
            self.state = State::Ended;
            self.release_exclusive();
            out.push(Action::Terminate);
        }
    }

    /// A new connection with the same client id takes over. When the new
    /// connection continues the session (`clean_start` false) the session is
    /// returned and the will is dropped; otherwise the session ends here and
    /// the will is published. A connected client gets DISCONNECT 0x8E.
    pub fn takeover(
        &mut self,
        clean_start: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Option<Session> {
        if self.state == State::Connected {
            if self.info.as_ref().is_some_and(ConnInfo::is_v5) {
                out.push(disconnect(ReasonCode::SessionTakenOver));
            }
            out.push(Action::Close);
        }
        self.state = State::Ended;
        if clean_start {
            if let Some(will) = self.will.as_mut() {
                will.stamp(now);
            }
            self.publish_will(out);
            self.release_exclusive();
            self.session = None;
            None
        } else {
            self.will = None;
            let mut session = self.session.take();
            if let Some(session) = session.as_mut() {
                session.on_disconnect(now);
            }
            session
        }
    }

    /// The server ends the connection with `reason` (v5 clients get a
    /// DISCONNECT carrying it), then the session follows the usual rules.
    pub fn server_disconnect(
        &mut self,
        reason: ReasonCode,
        cause: CloseCause,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if self.state == State::Connected && self.info.as_ref().is_some_and(ConnInfo::is_v5) {
            out.push(disconnect(reason));
        }
        out.push(Action::Close);
        self.closed(cause, now, out);
    }

    fn publish_will(&mut self, out: &mut Vec<Action>) {
        if let Some(will) = self.will.take() {
            out.push(Action::PublishWill(will.message));
        }
    }

    fn after_ack(
        &mut self,
        result: Result<(), SessionError>,
        sent: Vec<Outgoing>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        // An acknowledgement for an unknown packet id is tolerated, as EMQX
        // does (it may follow a resend); the session counts it.
        let _ = result;
        self.flush_sent(sent, now, out);
    }

    /// Turns the packets the session produced into sends, applying the
    /// client's topic aliases and Maximum Packet Size.
    fn flush_sent(&mut self, mut sent: Vec<Outgoing>, now: Instant, out: &mut Vec<Action>) {
        let Some(info) = self.info.as_ref() else {
            return;
        };
        let (version, max_size) = (info.protocol, info.max_packet_size);
        // Completing a dropped exchange frees a window slot, which the
        // session may fill at once: loop until it has nothing more.
        while !sent.is_empty() {
            for outgoing in std::mem::take(&mut sent) {
                let mut publish = match outgoing {
                    Outgoing::PubRel(id) => {
                        out.push(Action::Send(Packet::PubRel(PubRel::new(id))));
                        continue;
                    }
                    Outgoing::Publish(publish) => publish,
                };
                publish.strip = self.mountpoint_len(&publish.message.topic);
                let alias = self.outbound_aliases.alias_for(&publish.message.topic);
                match alias {
                    OutboundAlias::None => {}
                    OutboundAlias::Set(alias) => publish.topic_alias = Some(alias),
                    OutboundAlias::Use(alias) => {
                        publish.topic_alias = Some(alias);
                        publish.alias_only = true;
                    }
                }
                if max_size != u32::MAX
                    && publish
                        .encoded_len(version)
                        .is_ok_and(|len| len > max_size as usize)
                {
                    self.drop_too_large(&publish, alias, now, &mut sent);
                    out.push(Action::DroppedTooLarge);
                    continue;
                }
                out.push(Action::SendPublish(publish));
            }
        }
    }

    /// How much of `topic` is this client's mountpoint, which it does not
    /// see (0 without a mountpoint).
    fn mountpoint_len(&self, topic: &str) -> u32 {
        let (Some(mountpoint), Some(info)) = (&self.config.mountpoint, &self.info) else {
            return 0;
        };
        let len = mountpoint.prefix_len(&info.client_id, info.username.as_deref(), topic);
        u32::try_from(len).unwrap_or(0)
    }

    /// MQTT-3.1.2-25: a packet larger than the client accepts is discarded,
    /// and the server behaves as if it had completed sending it: a QoS 1/2
    /// exchange ends (freeing its window slot), and an alias it would have
    /// set stays unknown to the client, so it is not bound.
    fn drop_too_large(
        &mut self,
        publish: &OutPublish,
        alias: OutboundAlias,
        now: Instant,
        sent: &mut Vec<Outgoing>,
    ) {
        if let OutboundAlias::Set(_) = alias {
            self.outbound_aliases.forget(&publish.message.topic);
        }
        if let (Some(id), Some(session)) = (publish.packet_id, self.session.as_mut()) {
            // The id was just put in flight by the session: neither call fails.
            let _ = match publish.opts.qos {
                QoS::ExactlyOnce => session.on_pubrec(id, ReasonCode::PacketTooLarge, now, sent),
                _ => session.on_puback(id, now, sent),
            };
        }
    }

    fn protocol_error(&mut self, reason: ReasonCode, now: Instant, out: &mut Vec<Action>) {
        self.server_reason = Some(reason);
        if self.state == State::Connected && self.info.as_ref().is_some_and(ConnInfo::is_v5) {
            out.push(disconnect(reason));
        }
        // A protocol error is an abnormal end: the will is published.
        out.push(Action::Close);
        self.closed(CloseCause::SocketClosed, now, out);
    }

    fn end(&mut self, out: &mut Vec<Action>) {
        if self.state != State::Ended {
            self.state = State::Ended;
            out.push(Action::Close);
            out.push(Action::Terminate);
        }
    }
}

/// The session of a connected channel.
fn session_of(session: &mut Option<Session>) -> &mut Session {
    session
        .as_mut()
        .expect("a connected channel always holds its session")
}

fn disconnect(reason: ReasonCode) -> Action {
    Action::Send(Packet::Disconnect(Disconnect {
        reason_code: reason,
        properties: DisconnectProperties::default(),
    }))
}

/// The CONNACK packet that refuses a connection with `reason` (for errors
/// found while decoding CONNECT).
pub fn refusal_packet(reason: ReasonCode) -> Packet {
    Packet::ConnAck(Box::new(refusal(reason)))
}

/// The message a will becomes when it is published.
fn will_message(will: &LastWill, from: ByteStr, now: Instant) -> Message {
    let props = &will.properties;
    let publish = Publish {
        dup: false,
        qos: will.qos,
        retain: will.retain,
        topic: will.topic.clone(),
        packet_id: None,
        payload: will.payload.clone(),
        properties: PublishProperties {
            payload_format_indicator: props.payload_format_indicator,
            message_expiry_interval: props.message_expiry_interval,
            topic_alias: None,
            response_topic: props.response_topic.clone(),
            correlation_data: props.correlation_data.clone(),
            user_properties: props.user_properties.clone(),
            subscription_identifiers: Vec::new(),
            content_type: props.content_type.clone(),
        },
    };
    // A will waits for the whole connection: copied out of the read buffer.
    Message::from_publish(publish, from, now).compact()
}

/// A client id for a client that sent none: random 96 bits, recognisable by
/// its prefix.
fn generate_client_id() -> ByteStr {
    let a: u64 = rand::random();
    let b: u32 = rand::random();
    ByteStr::from(format!("girder-{a:016x}{b:08x}"))
}
