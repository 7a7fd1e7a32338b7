//! The takeover of a client id, both sides in one place (EMQX's
//! `emqx_cm:takeover_session`).
//!
//! ```text
//!  new actor (CONNECT accepted)            previous holder on this node
//!  ─────────────────────────────            ────────────────────────────
//!  take_over: register in cm ──(previous)──►
//!             send Takeover ───────────────► hand_over:
//!             (wait ≤ 5 s, input paused)      give the registration up (cm
//!                                             names the new actor already)
//!                                             channel.takeover: DISCONNECT
//!                                             0x8E, the session moves (or
//!                                             ends: clean start)
//!                                             drop the socket, leave the index
//!             ◄──────────── Option<Session> ─ TakenOver: late deliveries are
//!                                             forwarded for 2 s, then stop
//!             with other nodes linked: claim
//!             the id across the cluster (see
//!             `handover`; the holder on
//!             another node gets HandOver and
//!             does as above, its session
//!             comes back serialized)
//!  opened: channel.opened(session)
//!          CONNACK, resubscribe, resend
//!  or, superseded by another node's claim:
//!          CONNACK, DISCONNECT 0x8E, end
//! ```

use std::time::{Duration, Instant};

use actix::prelude::*;
use girder_broker::codec::ByteStr;
use girder_broker::message::Delivery;
use girder_broker::session::Session;
use girder_cluster::NodeName;
use tracing::{debug, warn};

use super::lifecycle::Successor;
use super::{take_actions, ChannelActor};
use crate::cm::Registered;
use crate::handover::{self, Claim, Claimed};
use crate::keepalive::{self, Stamp};
use crate::metrics::Metrics;
use crate::wire;

/// How long a new connection waits for the previous holder of its client
/// id on this node to hand the session over.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a taken-over actor forwards late deliveries to its successor.
const TAKEOVER_GRACE: Duration = Duration::from_secs(2);

/// Another channel actor of this node takes this client id over. The reply
/// is the session when the new connection continues it.
#[derive(Debug, Message)]
#[rtype(result = "Option<Session>")]
pub struct Takeover {
    /// Whether the new connection starts a new session.
    pub clean_start: bool,
    /// The new holder, which gets deliveries that arrive late.
    pub successor: Addr<ChannelActor>,
}

/// A connection on another node takes this client id over. The reply is
/// the session when the new connection continues it.
#[derive(Debug, Message)]
#[rtype(result = "Option<Session>")]
pub struct HandOver {
    /// Whether the new connection starts a new session.
    pub clean_start: bool,
    /// The node of the new holder, which gets deliveries that arrive late.
    pub successor: NodeName,
}

/// Deliveries that reached the previous holder of this client id after it
/// handed the session over (not counted in this actor's pending
/// deliveries, unlike [`Deliver`](super::Deliver)).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Handed(pub Vec<Delivery>);

impl ChannelActor {
    /// CONNECT was accepted: registers the client id, takes the session
    /// over from a previous holder on this node, then (with other nodes
    /// linked) from its holder on another node, then opens the channel.
    pub(super) fn take_over(
        &mut self,
        ctx: &mut Context<Self>,
        client_id: ByteStr,
        clean_start: bool,
    ) {
        let me = ctx.address();
        let claim = Claim::new(&self.shared, &client_id, self.id, clean_start);
        let previous = self.shared.cm.register(
            &client_id,
            Registered {
                id: self.id,
                addr: me.downgrade(),
            },
            claim.is_some(),
        );
        self.life.register();
        Metrics::add(&self.shared.metrics.client_connected, 1);
        // A previous holder whose actor is gone has nothing to hand over.
        let previous = previous
            .filter(|p| p.id != self.id)
            .and_then(|p| p.addr.upgrade());
        if previous.is_none() && claim.is_none() {
            self.opened(ctx, None);
            return;
        }
        let local = previous.map(|previous| {
            previous
                .send(Takeover {
                    clean_start,
                    successor: me,
                })
                .timeout(TAKEOVER_TIMEOUT)
        });
        let taken = async move {
            let session = match local {
                Some(request) => request.await.ok().flatten(),
                None => None,
            };
            let claimed = match claim {
                Some(claim) => claim.run().await,
                None => Claimed::Held {
                    session: None,
                    lock: None,
                },
            };
            (session, claimed)
        };
        ctx.wait(
            taken
                .into_actor(self)
                .map(|(session, claimed), act, ctx| act.claimed(ctx, session, claimed)),
        );
    }

    /// The takeover ended: opens the session taken over on this node, or
    /// else the one another node sent, or a new one; or ends the
    /// connection that another node's claim superseded.
    fn claimed(&mut self, ctx: &mut Context<Self>, local: Option<Session>, claimed: Claimed) {
        let remote = match claimed {
            Claimed::Superseded => return self.superseded(ctx),
            Claimed::Held { session, lock } => {
                if let Some(lock) = lock {
                    // Settled: the lock is released while the session opens
                    // (dropped with the actor, it runs out with its lease).
                    ctx.spawn(lock.release().into_actor(self));
                }
                session
            }
        };
        let session = local.or_else(|| {
            let now = Instant::now();
            let state = remote?;
            match wire::session_from_wire(*state, now) {
                Ok(snapshot) => Some(Session::from_snapshot(
                    snapshot,
                    self.listener.channel_config.session.clone(),
                    now,
                )),
                Err(cause) => {
                    warn!(%cause, "session from another node refused: a new session starts");
                    None
                }
            }
        });
        self.opened(ctx, session);
    }

    /// Another node's connection with this client id claimed it first:
    /// CONNACK, then DISCONNECT 0x8E (v5; MQTT 3 clients are closed), and
    /// the actor ends without a session (MQTT-3.1.4-3: one connection per
    /// client id).
    fn superseded(&mut self, ctx: &mut Context<Self>) {
        debug!(peer = %self.peer(), "client id taken by another node's connection");
        let now = Instant::now();
        let mut actions = take_actions();
        self.channel.opened(None, now, &mut actions);
        // The fresh session is dropped; the will goes with it.
        let _ = self.channel.takeover(false, now, &mut actions);
        self.run_actions(ctx, actions);
        self.terminate(ctx);
        self.finish(ctx);
    }

    /// The session is there (taken over, or new): CONNACK and what follows.
    fn opened(&mut self, ctx: &mut Context<Self>, session: Option<Session>) {
        let mut actions = take_actions();
        self.channel.opened(session, Instant::now(), &mut actions);
        self.run_actions(ctx, actions);
        // The keep alive is timed from now.
        self.last_recv = Stamp::now();
        // Packets that arrived behind CONNECT.
        self.process_input(ctx);
        // The keep alive, retries and awaiting-PUBREL expiry are checked by
        // this thread's wheel (not timers of this actor's own); the CONNECT
        // timeout's check is superseded. A connection closed by the packets
        // behind CONNECT is already on the wheel for its session's expiry.
        if self.life.has_socket() {
            self.reschedule(ctx);
        }
        self.finish(ctx);
    }

    /// The previous holder's side: hands the session to `successor` (or
    /// ends it, on a clean start) and stays only to forward late
    /// deliveries.
    fn hand_over(
        &mut self,
        ctx: &mut Context<Self>,
        clean_start: bool,
        successor: Successor,
    ) -> Option<Session> {
        if clean_start {
            // The session ends here rather than moving on.
            self.unindex();
            self.redispatch_shared();
        }
        let mut actions = take_actions();
        let session = self
            .channel
            .takeover(clean_start, Instant::now(), &mut actions);
        match successor {
            // The registry entry already names the successor: it is not
            // removed.
            Successor::Local(_) => {
                self.life.unregister();
            }
            // The client id leaves this node: its entry and row go.
            Successor::Remote(_) => self.unregister(),
        }
        self.run_actions(ctx, actions);
        // A session moving to another node keeps its subscriptions here
        // for the grace period: until the new node's route rows have
        // reached every publisher's node, some still route to this one,
        // and what arrives is passed on. Removed at once, this node's rows
        // could leave a publisher's node before the new node's arrive
        // (they travel on two streams), and a message published between
        // the two would find no route. The index entries go when the
        // actor stops.
        let moving_away = session.is_some() && matches!(successor, Successor::Remote(_));
        if !moving_away {
            self.unindex();
        }
        self.drop_socket(ctx);
        // Nothing to check any more (no session to expire).
        keepalive::cancel(&mut self.wheel);
        self.life.taken_over(session.is_some().then_some(successor));
        self.finish(ctx);
        ctx.run_later(TAKEOVER_GRACE, |_, ctx| ctx.stop());
        session
    }

    /// Deliveries for this actor: passed on to the successor when the
    /// session was taken over (`None` then), else given back to deliver.
    pub(super) fn pass_on(&mut self, deliveries: Vec<Delivery>) -> Option<Vec<Delivery>> {
        let Some(successor) = self.life.successor() else {
            return Some(deliveries);
        };
        match successor {
            Successor::Local(successor) => successor.do_send(Handed(deliveries)),
            Successor::Remote(node) => {
                if let (Some(table), Some(info)) = (self.shared.cm.tables(), self.channel.info()) {
                    handover::pass_on(table, node, &info.client_id, &deliveries);
                }
            }
        }
        None
    }
}

impl Handler<Takeover> for ChannelActor {
    type Result = MessageResult<Takeover>;

    fn handle(&mut self, msg: Takeover, ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.hand_over(ctx, msg.clean_start, Successor::Local(msg.successor)))
    }
}

impl Handler<HandOver> for ChannelActor {
    type Result = MessageResult<HandOver>;

    fn handle(&mut self, msg: HandOver, ctx: &mut Context<Self>) -> Self::Result {
        // Already gone from this node (taken over meanwhile, ending):
        // nothing to hand.
        if !self.life.is_registered() {
            return MessageResult(None);
        }
        MessageResult(self.hand_over(ctx, msg.clean_start, Successor::Remote(msg.successor)))
    }
}

impl Handler<Handed> for ChannelActor {
    type Result = ();

    fn handle(&mut self, Handed(deliveries): Handed, ctx: &mut Context<Self>) {
        self.deliver(ctx, deliveries);
    }
}
