//! CONNECT: what a channel accepts, and the CONNACK it answers with.

use std::time::Duration;

use crate::codec::{
    ByteStr, ConnAck, ConnAckProperties, Connect, PayloadFormat, ProtocolVersion, QoS, ReasonCode,
};
use crate::topic::validate_name;

use super::{ChannelConfig, MountpointRefusal};

/// What the channel keeps of an accepted CONNECT.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Protocol version the client speaks.
    pub protocol: ProtocolVersion,
    /// The client identifier (assigned by the broker when the client sent
    /// none).
    pub client_id: ByteStr,
    /// Whether the broker assigned `client_id`.
    pub assigned_client_id: bool,
    /// The username, if any (a `Box<str>`: 16 bytes in every connection
    /// rather than a shared string's 32).
    pub username: Option<Box<str>>,
    /// Clean session (v3) / clean start (v5).
    pub clean_start: bool,
    /// Keep alive in force, in seconds (0: none).
    pub keep_alive: u16,
    /// Session expiry interval in seconds; `u32::MAX` never expires.
    pub session_expiry: u32,
    /// The client's Receive Maximum: how many QoS 1/2 messages it takes
    /// unacknowledged.
    pub receive_maximum: u16,
    /// The client's Maximum Packet Size.
    pub max_packet_size: u32,
    /// The client's Topic Alias Maximum.
    pub topic_alias_maximum: u16,
    /// Whether the client wants reason strings and user properties on
    /// packets other than PUBLISH, CONNACK and DISCONNECT.
    pub request_problem_information: bool,
    /// Whether the client asked for Response Information.
    pub request_response_information: bool,
}

impl ConnInfo {
    /// Whether the client speaks MQTT 5.
    pub fn is_v5(&self) -> bool {
        self.protocol.is_v5()
    }

    /// The session expiry as a duration (`None`: never expires).
    pub fn session_expiry(&self) -> Option<Duration> {
        (self.session_expiry != u32::MAX).then(|| Duration::from_secs(self.session_expiry.into()))
    }
}

/// Checks a CONNECT and derives the connection's parameters, or returns the
/// reason code of the CONNACK that refuses it.
pub(super) fn accept(
    connect: &Connect,
    config: &ChannelConfig,
    assign_id: impl FnOnce() -> ByteStr,
) -> Result<ConnInfo, ReasonCode> {
    let v5 = connect.protocol.is_v5();
    let props = &connect.properties;
    if props.authentication_method.is_some() {
        // Enhanced authentication has no method configured.
        return Err(ReasonCode::BadAuthenticationMethod);
    }

    // Kept for the life of the connection: compacted out of the read buffer.
    let mut client_id = connect.client_id.compact();
    if config.use_username_as_clientid {
        if let Some(username) = &connect.username {
            client_id = username.compact();
        }
    }
    let mut assigned_client_id = false;
    if client_id.is_empty() {
        // v3.1.1 allows an empty id only with clean session (MQTT-3.1.3-7,
        // MQTT-3.1.3-8); v3.1 not at all; v5 always, with an assigned id
        // (MQTT-3.1.3-6).
        let allowed = match connect.protocol {
            ProtocolVersion::V3_1 => false,
            ProtocolVersion::V3_1_1 => connect.clean_start,
            ProtocolVersion::V5 => true,
        };
        if !allowed {
            return Err(ReasonCode::ClientIdentifierNotValid);
        }
        client_id = assign_id();
        assigned_client_id = true;
    }
    if client_id.len() > config.max_clientid_len {
        return Err(ReasonCode::ClientIdentifierNotValid);
    }

    if let Some(will) = &connect.will {
        if validate_name(&will.topic, &config.topic_limits).is_err() {
            return Err(ReasonCode::TopicNameInvalid);
        }
        if will.qos > config.max_qos_allowed {
            return Err(ReasonCode::QoSNotSupported);
        }
        if will.retain && !config.retain_available {
            return Err(ReasonCode::RetainNotSupported);
        }
        if config.strict_mode
            && will.properties.payload_format_indicator == Some(PayloadFormat::Utf8)
            && std::str::from_utf8(&will.payload).is_err()
        {
            // MQTT 5 section 3.1.3.2.3: a will that is not the UTF-8 it
            // says it is may be refused.
            return Err(ReasonCode::PayloadFormatInvalid);
        }
    }
    if let Some(mountpoint) = &config.mountpoint {
        let username = connect.username.as_deref();
        match mountpoint.check(&client_id, username) {
            Ok(()) => {}
            Err(MountpointRefusal::ClientId) => return Err(ReasonCode::ClientIdentifierNotValid),
            Err(MountpointRefusal::Username) => return Err(ReasonCode::BadUserNameOrPassword),
        }
    }

    let keep_alive = match (v5, config.server_keepalive) {
        (true, Some(server)) => server,
        _ => connect.keep_alive,
    };
    let session_expiry = if v5 {
        props.session_expiry_interval.unwrap_or(0)
    } else if connect.clean_start {
        0
    } else {
        u32::try_from(config.session_expiry_interval.as_secs()).unwrap_or(u32::MAX)
    };

    Ok(ConnInfo {
        protocol: connect.protocol,
        client_id,
        assigned_client_id,
        username: connect.username.as_deref().map(Box::from),
        clean_start: connect.clean_start,
        keep_alive,
        session_expiry,
        receive_maximum: props.receive_maximum.unwrap_or(u16::MAX),
        max_packet_size: props.maximum_packet_size.unwrap_or(u32::MAX),
        topic_alias_maximum: if v5 {
            props.topic_alias_maximum.unwrap_or(0)
        } else {
            0
        },
        request_problem_information: props.request_problem_information.unwrap_or(true),
        request_response_information: props.request_response_information.unwrap_or(false),
    })
}

/// The CONNACK that accepts a connection.
pub(super) fn connack(info: &ConnInfo, config: &ChannelConfig, session_present: bool) -> ConnAck {
    let mut properties = ConnAckProperties::default();
    if info.is_v5() {
        properties.receive_maximum = Some(config.receive_maximum.max(1));
        if config.max_qos_allowed < QoS::ExactlyOnce {
            properties.maximum_qos = Some(config.max_qos_allowed);
        }
        if !config.retain_available {
            properties.retain_available = Some(false);
        }
        properties.maximum_packet_size = Some(config.max_packet_size);
        if info.assigned_client_id {
            properties.assigned_client_identifier = Some(info.client_id.clone());
        }
        properties.topic_alias_maximum = Some(config.max_topic_alias);
        if !config.wildcard_subscription {
            properties.wildcard_subscription_available = Some(false);
        }
        if !config.shared_subscription {
            properties.shared_subscription_available = Some(false);
        }
        properties.subscription_identifiers_available = Some(true);
        if let Some(keep_alive) = config.server_keepalive {
            properties.server_keep_alive = Some(keep_alive);
        }
        if info.request_response_information && !config.response_information.is_empty() {
            properties.response_information =
                Some(ByteStr::from(config.response_information.clone()));
        }
    }
    ConnAck {
        session_present,
        reason_code: ReasonCode::Success,
        properties,
    }
}

/// The CONNACK that refuses a connection with `reason`.
pub(crate) fn refusal(reason: ReasonCode) -> ConnAck {
    ConnAck {
        session_present: false,
        reason_code: reason,
        properties: ConnAckProperties::default(),
    }
}
