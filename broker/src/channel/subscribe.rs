//! SUBSCRIBE and UNSUBSCRIBE: checking filters against the listener's
//! settings, mounting them under the mountpoint, and holding exclusive
//! filters.

use std::time::Instant;

use crate::codec::{
    ByteStr, Packet, ReasonCode, RetainHandling, SubAck, Subscribe, UnsubAck, Unsubscribe,
};
use crate::exclusive;
use crate::message::SubOpts;
use crate::topic::{is_wildcard, parse_filter};

use super::mountpoint::mount_filter;
use super::{session_of, Action, Channel, ConnInfo};

impl Channel {
    pub(super) fn handle_subscribe(
        &mut self,
        subscribe: Subscribe,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let v5 = self.info.as_ref().is_some_and(ConnInfo::is_v5);
        let subscription_id = subscribe.properties.subscription_identifier;
        let mut reason_codes = Vec::with_capacity(subscribe.filters.len());
        let mut actions = Vec::with_capacity(subscribe.filters.len());
        for (filter, options) in subscribe.filters {
            let exclusive = self.exclusive_filter(&filter).is_some();
            let checked = self.exclusive_filter(&filter).unwrap_or(&filter);
            let parsed = match parse_filter(checked, &self.config.topic_limits) {
                // `$exclusive/$share/...` is no filter.
                Ok(parsed) if !(exclusive && parsed.is_shared()) => parsed,
                _ => {
                    reason_codes.push(ReasonCode::TopicFilterInvalid);
                    continue;
                }
            };
            let shared = parsed.is_shared();
            if shared && options.no_local && v5 {
                // MQTT-3.8.3-4: No Local on a shared subscription.
                return self.protocol_error(ReasonCode::ProtocolError, now, out);
            }
            if shared && !self.config.shared_subscription {
                reason_codes.push(ReasonCode::SharedSubscriptionsNotSupported);
                continue;
            }
            if is_wildcard(parsed.filter) && !self.config.wildcard_subscription {
                reason_codes.push(ReasonCode::WildcardSubscriptionsNotSupported);
                continue;
            }
            // Kept as long as the subscription: a copy out of the read
            // buffer, with the mountpoint in front.
            let Some(filter) = self.mounted_filter(&filter) else {
                reason_codes.push(ReasonCode::TopicFilterInvalid);
                continue;
            };
            let session = session_of(&mut self.session);
            if let Some(max) = self.config.max_subscriptions {
                if session.subscription(&filter).is_none() && session.subscriptions().count() >= max
                {
                    reason_codes.push(ReasonCode::QuotaExceeded);
                    continue;
                }
            }
            if let (true, Some(table)) = (exclusive, &self.config.exclusive) {
                if !table.claim(&filter, session.client_id(), session.created_at()) {
                    // Held by another client (EMQX answers 0x97 as well).
                    reason_codes.push(ReasonCode::QuotaExceeded);
                    continue;
                }
            }
            let mut granted = options;
            granted.qos = options.qos.min(self.config.max_qos_allowed);
            let opts = SubOpts {
                options: granted,
                subscription_id,
            };
            let is_new = session.subscribe(filter.clone(), opts).is_none();
            let send_retained = self.config.retain_available
                && !shared
                && match options.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendIfNewSubscription => is_new,
                    RetainHandling::DoNotSend => false,
                };
            reason_codes.push(ReasonCode::granted(granted.qos));
            actions.push(Action::Subscribe {
                filter,
                opts,
                send_retained,
            });
        }
        if !v5 {
            // MQTT 3 has one failure code, 0x80.
            for code in &mut reason_codes {
                if code.is_error() {
                    *code = ReasonCode::UnspecifiedError;
                }
            }
        }
        out.push(Action::Send(Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            reason_codes,
            properties: Default::default(),
        })));
        out.extend(actions);
    }

    pub(super) fn handle_unsubscribe(&mut self, unsubscribe: Unsubscribe, out: &mut Vec<Action>) {
        let mut reason_codes = Vec::with_capacity(unsubscribe.filters.len());
        for filter in unsubscribe.filters {
            let filter = self.mounted_filter(&filter).unwrap_or(filter);
            let session = session_of(&mut self.session);
            if session.unsubscribe(&filter).is_some() {
                if let Some(table) = &self.config.exclusive {
                    if exclusive::strip(&filter).is_some() {
                        table.release(&filter, session.client_id(), session.created_at());
                    }
                }
                reason_codes.push(ReasonCode::Success);
                out.push(Action::Unsubscribe { filter });
            } else {
                reason_codes.push(ReasonCode::NoSubscriptionExisted);
            }
        }
        out.push(Action::Send(Packet::UnsubAck(UnsubAck {
            packet_id: unsubscribe.packet_id,
            reason_codes,
            properties: Default::default(),
        })));
    }

    /// The topic filter of an `$exclusive/...` subscription when exclusive
    /// subscriptions are allowed.
    fn exclusive_filter<'a>(&self, filter: &'a str) -> Option<&'a str> {
        self.config
            .exclusive
            .as_ref()
            .and_then(|_| exclusive::strip(filter))
    }

    /// A subscription filter as the session and the router know it: with
    /// the mountpoint in front of its topic filter (`None` when that makes
    /// it too deep to be valid), else a copy of the filter as sent.
    fn mounted_filter(&self, filter: &ByteStr) -> Option<ByteStr> {
        let (Some(mountpoint), Some(info)) = (&self.config.mountpoint, &self.info) else {
            return Some(filter.compact());
        };
        let exclusive = self.config.exclusive.is_some();
        let mounted = mount_filter(
            mountpoint,
            &info.client_id,
            info.username.as_deref(),
            filter,
            exclusive,
        );
        let checked = self.exclusive_filter(&mounted).unwrap_or(&mounted);
        parse_filter(checked, &self.config.topic_limits).ok()?;
        Some(mounted)
    }

    /// The session ends: frees the exclusive filters it holds.
    pub(super) fn release_exclusive(&self) {
        let (Some(table), Some(session)) = (&self.config.exclusive, &self.session) else {
            return;
        };
        for (filter, _) in session.subscriptions() {
            if exclusive::strip(filter).is_some() {
                table.release(filter, session.client_id(), session.created_at());
            }
        }
    }
}
