//! PUBLISH from the client: topic aliases, the mountpoint, the checks the
//! listener's settings ask for, and the message that is routed.

use std::sync::Arc;
use std::time::Instant;

use crate::codec::{Packet, PayloadFormat, PubAck, PubRec, Publish, QoS, ReasonCode};
use crate::message::Message;
use crate::session::SessionError;
use crate::topic::validate_name;

use super::{alias, session_of, Action, Channel, PendingAck};

impl Channel {
    pub(super) fn handle_publish(
        &mut self,
        mut publish: Publish,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if publish.qos > self.config.max_qos_allowed {
            return self.protocol_error(ReasonCode::QoSNotSupported, now, out);
        }
        if publish.retain && !self.config.retain_available {
            return self.protocol_error(ReasonCode::RetainNotSupported, now, out);
        }
        match self
            .inbound_aliases
            .resolve(&publish.topic, publish.properties.topic_alias)
        {
            Ok(topic) => publish.topic = topic,
            Err(alias::AliasError::OutOfRange) => {
                return self.protocol_error(ReasonCode::TopicAliasInvalid, now, out)
            }
            Err(alias::AliasError::Unknown) => {
                return self.protocol_error(ReasonCode::ProtocolError, now, out)
            }
        }
        publish.properties.topic_alias = None;
        if validate_name(&publish.topic, &self.config.topic_limits).is_err() {
            return self.protocol_error(ReasonCode::TopicNameInvalid, now, out);
        }
        let Some(info) = self.info.as_ref() else {
            return;
        };
        if let Some(mountpoint) = &self.config.mountpoint {
            let username = info.username.as_deref();
            publish.topic = mountpoint.mount(&info.client_id, username, &publish.topic);
            if validate_name(&publish.topic, &self.config.topic_limits).is_err() {
                return self.protocol_error(ReasonCode::TopicNameInvalid, now, out);
            }
        }
        let v5 = info.is_v5();
        let client_id = info.client_id.clone();
        let (qos, packet_id, dup) = (publish.qos, publish.packet_id, publish.dup);
        if self.config.strict_mode && !payload_format_valid(&publish) {
            // MQTT-3.3.2-4: a payload that is not the UTF-8 it claims to be.
            return self.refuse_publish(qos, packet_id, ReasonCode::PayloadFormatInvalid, now, out);
        }
        let message = Message::from_publish(publish, client_id, now)
            .with_default_expiry(self.config.message_expiry_interval);
        let message = Arc::new(message);
        match (qos, packet_id) {
            (QoS::AtMostOnce, _) => out.push(Action::Publish { message, ack: None }),
            (QoS::AtLeastOnce, Some(packet_id)) => out.push(Action::Publish {
                message,
                ack: Some(PendingAck { packet_id, qos, v5 }),
            }),
            (QoS::ExactlyOnce, Some(packet_id)) => {
                let session = session_of(&mut self.session);
                // MQTT-3.3.4-9: a v5 client may have no more unreleased QoS 2
                // messages than the Receive Maximum it was given (v3 clients
                // were told no limit: `max_awaiting_rel` alone bounds them).
                if v5
                    && session.awaiting_rel_len() >= usize::from(self.config.receive_maximum)
                    && !(dup && session.is_awaiting_rel(packet_id))
                {
                    return self.protocol_error(ReasonCode::ReceiveMaximumExceeded, now, out);
                }
                match session.on_publish_qos2(packet_id, dup, now) {
                    Ok(true) => out.push(Action::Publish {
                        message,
                        ack: Some(PendingAck { packet_id, qos, v5 }),
                    }),
                    // A resent PUBLISH of a message already routed: exactly
                    // once means acknowledging it without routing it again.
                    Ok(false) => out.push(Action::Send(Packet::PubRec(PubRec::new(packet_id)))),
                    Err(SessionError::ReceiveMaximumExceeded(_)) => {
                        self.protocol_error(ReasonCode::ReceiveMaximumExceeded, now, out)
                    }
                    Err(err) => {
                        let mut rec = PubRec::new(packet_id);
                        rec.reason_code = err.reason_code();
                        out.push(Action::Send(Packet::PubRec(rec)));
                    }
                }
            }
            // The decoder guarantees a packet id for QoS 1 and 2.
            (_, None) => self.protocol_error(ReasonCode::ProtocolError, now, out),
        }
    }

    /// Refuses a PUBLISH with `reason`: a PUBACK or PUBREC carrying it
    /// (QoS 1, 2), or the end of the connection (QoS 0, which has no reply).
    fn refuse_publish(
        &mut self,
        qos: QoS,
        packet_id: Option<u16>,
        reason: ReasonCode,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        match (qos, packet_id) {
            (QoS::AtLeastOnce, Some(id)) => {
                let mut ack = PubAck::new(id);
                ack.reason_code = reason;
                out.push(Action::Send(Packet::PubAck(ack)));
            }
            (QoS::ExactlyOnce, Some(id)) => {
                let mut rec = PubRec::new(id);
                rec.reason_code = reason;
                out.push(Action::Send(Packet::PubRec(rec)));
            }
            _ => self.protocol_error(reason, now, out),
        }
    }
}

/// Whether a PUBLISH whose Payload Format Indicator says UTF-8 carries
/// UTF-8 (a publish that says nothing is always right).
fn payload_format_valid(publish: &Publish) -> bool {
    publish.properties.payload_format_indicator != Some(PayloadFormat::Utf8)
        || std::str::from_utf8(&publish.payload).is_ok()
}
