//! The takeover of a client id, both sides in one place (EMQX's
//! `emqx_cm:takeover_session`).
//!
//! ```text
//!  new actor (CONNECT accepted)            previous holder
//!  ─────────────────────────────            ───────────────
//!  take_over: register in cm ──(previous)──►
//!             send Takeover ───────────────► hand_over:
//!             (wait ≤ 5 s, input paused)      give the registration up (cm
//!                                             names the new actor already)
//!                                             channel.takeover: DISCONNECT
//!                                             0x8E, the session moves (or
//!                                             ends: clean start)
//!                                             drop the socket, leave the index
//!             ◄──────────── Option<Session> ─ TakenOver: late deliveries are
//!  opened: channel.opened(session)            forwarded for 2 s, then stop
//!          CONNACK, resubscribe, resend
//! ```

use std::time::{Duration, Instant};

use actix::prelude::*;
use girder_broker::codec::ByteStr;
use girder_broker::session::Session;

use super::{take_actions, ChannelActor};
use crate::cm::Registered;
use crate::keepalive::{self, Stamp};
use crate::metrics::Metrics;

/// How long a new connection waits for the previous holder of its client
/// id to hand the session over.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a taken-over actor forwards late deliveries to its successor.
const TAKEOVER_GRACE: Duration = Duration::from_secs(2);

/// Another channel actor takes this client id over. The reply is the
/// session when the new connection continues it.
#[derive(Debug, Message)]
#[rtype(result = "Option<Session>")]
pub struct Takeover {
    /// Whether the new connection starts a new session.
    pub clean_start: bool,
    /// The new holder, which gets deliveries that arrive late.
    pub successor: Addr<ChannelActor>,
}

impl ChannelActor {
    /// CONNECT was accepted: registers the client id, takes the session
    /// over from a previous holder, then opens the channel.
    pub(super) fn take_over(
        &mut self,
        ctx: &mut Context<Self>,
        client_id: ByteStr,
        clean_start: bool,
    ) {
        let me = ctx.address();
        let previous = self.shared.cm.register(
            &client_id,
            Registered {
                id: self.id,
                addr: me.downgrade(),
            },
        );
        self.life.register();
        Metrics::add(&self.shared.metrics.client_connected, 1);
        // A previous holder whose actor is gone has nothing to hand over.
        let previous = previous
            .filter(|p| p.id != self.id)
            .and_then(|p| p.addr.upgrade());
        let Some(previous) = previous else {
            self.opened(ctx, None);
            return;
        };
        let request = previous
            .send(Takeover {
                clean_start,
                successor: me,
            })
            .timeout(TAKEOVER_TIMEOUT);
        ctx.wait(request.into_actor(self).map(|result, act, ctx| {
            let session = result.ok().flatten();
            act.opened(ctx, session);
        }));
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
        successor: Addr<ChannelActor>,
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
        // Ending the session is the successor's business now: the registry
        // entry already names it, so it is not removed.
        self.life.unregister();
        self.run_actions(ctx, actions);
        self.unindex();
        self.drop_socket(ctx);
        // Nothing to check any more (no session to expire).
        keepalive::cancel(&mut self.wheel);
        self.life.taken_over(session.is_some().then_some(successor));
        self.finish(ctx);
        ctx.run_later(TAKEOVER_GRACE, |_, ctx| ctx.stop());
        session
    }
}

impl Handler<Takeover> for ChannelActor {
    type Result = MessageResult<Takeover>;

    fn handle(&mut self, msg: Takeover, ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.hand_over(ctx, msg.clean_start, msg.successor))
    }
}
