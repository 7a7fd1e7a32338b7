//! The checks a channel actor gets from its thread's wheel
//! ([`keepalive`]): one entry per actor, at the earliest time it has work
//! at. Before CONNECT that is the CONNECT timeout; while connected the
//! keep alive's timeout, the next retry of an unacknowledged QoS 1/2
//! message (MQTT 3 clients with `mqtt.retry_interval`) and the next
//! incoming QoS 2 packet id to forget (`mqtt.await_rel_timeout`); without
//! a client, the session's expiry.

use std::time::Instant;

use actix::prelude::*;
use girder_broker::channel::CloseCause;
use girder_broker::codec::ReasonCode;

use super::{close_log, take_actions, ChannelActor};
use crate::keepalive::{self, KeepaliveCheck, Slot};

impl ChannelActor {
    /// Puts this actor on its thread's wheel at `at`, wherever it was.
    pub(super) fn schedule_check(&mut self, ctx: &mut Context<Self>, at: Instant) {
        keepalive::schedule(&mut self.wheel, || ctx.address().downgrade(), at);
    }

    /// When a connected client next needs a check: the earliest of its
    /// keep alive's timeout and the channel's next deadline.
    fn next_check(&self) -> Option<Instant> {
        let keepalive = self
            .channel
            .keepalive_timeout()
            .map(|timeout| self.last_recv.instant() + timeout);
        match (keepalive, self.channel.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Puts a connected client's actor on the wheel at its next check (or
    /// takes it off when nothing is due).
    pub(super) fn reschedule(&mut self, ctx: &mut Context<Self>) {
        match self.next_check() {
            Some(at) => self.schedule_check(ctx, at),
            None => keepalive::cancel(&mut self.wheel),
        }
    }

    /// After input or deliveries: a deadline they created (a message put
    /// in flight, a QoS 2 packet id awaiting PUBREL) is checked in time.
    /// The keep alive needs nothing here: its timeout only moves later.
    pub(super) fn arm(&mut self, ctx: &mut Context<Self>) {
        if !self.life.has_socket() || !self.channel.is_connected() {
            return;
        }
        if let Some(at) = self.channel.next_deadline() {
            keepalive::schedule_by(&mut self.wheel, || ctx.address().downgrade(), at);
        }
    }
}

impl Handler<KeepaliveCheck> for ChannelActor {
    type Result = ();

    fn handle(&mut self, check: KeepaliveCheck, ctx: &mut Context<Self>) {
        if !self.wheel.is_for(&check) {
            // Superseded by a later schedule.
            return;
        }
        self.wheel = Slot::NONE;
        if !self.life.has_socket() {
            // The session kept without a client has expired.
            let mut actions = take_actions();
            self.channel.expire(&mut actions);
            self.run_actions(ctx, actions);
            self.finish(ctx);
            return;
        }
        if self.channel.info().is_none() {
            close_log::log(&close_log::Closed {
                what: "no CONNECT in time, connection closed",
                peer: &self.peer(),
                client_id: None,
                reason: None,
                detail: &"",
                severity: close_log::Severity::Info,
            });
            self.close_socket(ctx, CloseCause::SocketClosed, None);
            self.terminate(ctx);
            return;
        }
        if !self.channel.is_connected() {
            // Opening: `opened` puts the actor back on the wheel.
            return;
        }
        let now = Instant::now();
        let silent = self.channel.keepalive_timeout().is_some_and(|timeout| {
            now.saturating_duration_since(self.last_recv.instant()) > timeout
        });
        if silent {
            close_log::log(&close_log::Closed {
                what: "keep alive timeout, connection closed",
                peer: &self.peer(),
                client_id: self.channel.info().map(|i| i.client_id.as_str()),
                reason: Some(ReasonCode::KeepAliveTimeout),
                detail: &"",
                severity: close_log::Severity::Info,
            });
            self.close_socket(
                ctx,
                CloseCause::KeepAliveTimeout,
                Some(ReasonCode::KeepAliveTimeout),
            );
            self.finish(ctx);
            return;
        }
        let mut actions = take_actions();
        self.channel.tick(now, &mut actions);
        self.run_actions(ctx, actions);
        if self.life.has_socket() {
            self.reschedule(ctx);
        }
        self.finish(ctx);
    }
}
