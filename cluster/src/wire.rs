//! Conversions between the prost types of `girder.dist.v1` and the crate's own.
//! Prost types do not leave this module's callers (link I/O).

use girder_proto::dist as pb;
use girder_proto::dist::{down, envelope, frame, member, reject, reply};

use crate::handshake::{HandshakeError, HsMsg, Intro, RejectReason};
use crate::membership::{Member, MemberStatus};
use crate::options::NodeName;
use crate::process::Payload;

/// Why a monitored process is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// The link to its node went down (Erlang's `noconnection`).
    NoConnection,
    /// Nothing was registered under the name when the monitor arrived (`noproc`).
    NoProc,
    /// The name was unregistered, or its process went away.
    Unregistered,
}

/// The result carried by a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplyResult {
    Ok(Payload),
    NoSuchName,
    Failed(String),
}

/// One item on an established link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Envelope {
    Tick,
    Cast {
        to: String,
        reply_to: Option<String>,
        payload: Payload,
    },
    Call {
        id: u64,
        to: String,
        payload: Payload,
    },
    Reply {
        id: u64,
        result: ReplyResult,
    },
    Monitor {
        mref: u64,
        name: String,
    },
    Demonitor {
        mref: u64,
    },
    Down {
        mref: u64,
        reason: DownReason,
    },
    Members(Vec<Member>),
}

fn payload_to(p: Payload) -> pb::Payload {
    pb::Payload {
        type_name: p.type_name,
        data: p.data,
    }
}

fn payload_from(p: Option<pb::Payload>) -> Payload {
    let p = p.unwrap_or_default();
    Payload {
        type_name: p.type_name,
        data: p.data,
    }
}

impl From<Envelope> for pb::Envelope {
    fn from(e: Envelope) -> Self {
        use envelope::Body;
        let body = match e {
            Envelope::Tick => Body::Tick(pb::Tick {}),
            Envelope::Cast {
                to,
                reply_to,
                payload,
            } => Body::Cast(pb::Cast {
                to,
                payload: Some(payload_to(payload)),
                reply_to: reply_to.unwrap_or_default(),
            }),
            Envelope::Call { id, to, payload } => Body::Call(pb::Call {
                id,
                to,
                payload: Some(payload_to(payload)),
            }),
            Envelope::Reply { id, result } => Body::Reply(pb::Reply {
                id,
                result: Some(match result {
                    ReplyResult::Ok(p) => reply::Result::Ok(payload_to(p)),
                    ReplyResult::NoSuchName => reply::Result::NoSuchName(pb::NoSuchName {}),
                    ReplyResult::Failed(e) => reply::Result::Failed(e),
                }),
            }),
            Envelope::Monitor { mref, name } => Body::Monitor(pb::Monitor {
                monitor_ref: mref,
                name,
            }),
            Envelope::Demonitor { mref } => Body::Demonitor(pb::Demonitor { monitor_ref: mref }),
            Envelope::Down { mref, reason } => Body::Down(pb::Down {
                monitor_ref: mref,
                reason: Some(match reason {
                    DownReason::NoProc | DownReason::NoConnection => {
                        down::Reason::Noproc(pb::NoProc {})
                    }
                    DownReason::Unregistered => down::Reason::Unregistered(pb::Unregistered {}),
                }),
            }),
            Envelope::Members(list) => Body::Members(pb::Members {
                members: list.into_iter().map(member_to).collect(),
            }),
        };
        pb::Envelope { body: Some(body) }
    }
}

fn member_to(m: Member) -> pb::Member {
    pb::Member {
        node: m.node.to_string(),
        addr: m.addr,
        incarnation: m.incarnation,
        version: m.version,
        status: Some(match m.status {
            MemberStatus::Joined => member::Status::Joined(pb::Joined {}),
            MemberStatus::Left => member::Status::Left(pb::Left {}),
        }),
    }
}

/// Decodes an envelope. `Ok(None)` for an arm this release does not know
/// (sent by a newer peer): it is skipped.
pub(crate) fn envelope_from(e: pb::Envelope) -> Result<Option<Envelope>, String> {
    use envelope::Body;
    let Some(body) = e.body else { return Ok(None) };
    Ok(Some(match body {
        Body::Tick(_) => Envelope::Tick,
        Body::Cast(c) => Envelope::Cast {
            to: c.to,
            reply_to: (!c.reply_to.is_empty()).then_some(c.reply_to),
            payload: payload_from(c.payload),
        },
        Body::Call(c) => Envelope::Call {
            id: c.id,
            to: c.to,
            payload: payload_from(c.payload),
        },
        Body::Reply(r) => Envelope::Reply {
            id: r.id,
            result: match r.result {
                Some(reply::Result::Ok(p)) => ReplyResult::Ok(payload_from(Some(p))),
                Some(reply::Result::NoSuchName(_)) => ReplyResult::NoSuchName,
                Some(reply::Result::Failed(e)) => ReplyResult::Failed(e),
                None => ReplyResult::Failed("reply of an unknown kind".into()),
            },
        },
        Body::Monitor(m) => Envelope::Monitor {
            mref: m.monitor_ref,
            name: m.name,
        },
        Body::Demonitor(d) => Envelope::Demonitor {
            mref: d.monitor_ref,
        },
        Body::Down(d) => Envelope::Down {
            mref: d.monitor_ref,
            reason: match d.reason {
                Some(down::Reason::Unregistered(_)) => DownReason::Unregistered,
                Some(down::Reason::Noproc(_)) | None => DownReason::NoProc,
            },
        },
        Body::Members(list) => {
            let mut members = Vec::with_capacity(list.members.len());
            for m in list.members {
                let node = NodeName::parse(&m.node).map_err(|e| e.to_string())?;
                let status = match m.status {
                    Some(member::Status::Left(_)) => MemberStatus::Left,
                    Some(member::Status::Joined(_)) => MemberStatus::Joined,
                    None => continue,
                };
                members.push(Member {
                    node,
                    addr: m.addr,
                    incarnation: m.incarnation,
                    version: m.version,
                    status,
                });
            }
            Envelope::Members(members)
        }
    }))
}

/// A batch frame.
pub(crate) fn batch(envelopes: Vec<Envelope>) -> pb::Frame {
    pb::Frame {
        kind: Some(frame::Kind::Batch(pb::Batch {
            envelopes: envelopes.into_iter().map(Into::into).collect(),
        })),
    }
}

impl From<HsMsg> for pb::Frame {
    fn from(m: HsMsg) -> Self {
        let kind = match m {
            HsMsg::Hello(i) => frame::Kind::Hello(pb::Hello {
                version: i.version,
                node: i.node,
                cluster: i.cluster,
                nonce: i.nonce,
                incarnation: i.incarnation,
                member_version: i.member_version,
                addr: i.addr,
            }),
            HsMsg::Challenge(i) => frame::Kind::Challenge(pb::Challenge {
                version: i.version,
                node: i.node,
                cluster: i.cluster,
                nonce: i.nonce,
                incarnation: i.incarnation,
                addr: i.addr,
            }),
            HsMsg::Response { mac } => frame::Kind::Response(pb::Response { mac }),
            HsMsg::Accept { mac } => frame::Kind::Accept(pb::Accept { mac }),
            HsMsg::Reject(r) => frame::Kind::Reject(pb::Reject {
                reason: Some(match r {
                    RejectReason::Duplicate => reject::Reason::Duplicate(pb::Duplicate {}),
                    RejectReason::Removed(v) => {
                        reject::Reason::Removed(pb::Removed { member_version: v })
                    }
                    RejectReason::Refused => reject::Reason::Refused(pb::Refused {}),
                }),
            }),
        };
        pb::Frame { kind: Some(kind) }
    }
}

impl TryFrom<pb::Frame> for HsMsg {
    type Error = HandshakeError;

    fn try_from(f: pb::Frame) -> Result<Self, HandshakeError> {
        Ok(match f.kind {
            Some(frame::Kind::Hello(h)) => HsMsg::Hello(Intro {
                version: h.version,
                node: h.node,
                cluster: h.cluster,
                nonce: h.nonce,
                incarnation: h.incarnation,
                member_version: h.member_version,
                addr: h.addr,
            }),
            Some(frame::Kind::Challenge(c)) => HsMsg::Challenge(Intro {
                version: c.version,
                node: c.node,
                cluster: c.cluster,
                nonce: c.nonce,
                incarnation: c.incarnation,
                member_version: 0,
                addr: c.addr,
            }),
            Some(frame::Kind::Response(r)) => HsMsg::Response { mac: r.mac },
            Some(frame::Kind::Accept(a)) => HsMsg::Accept { mac: a.mac },
            Some(frame::Kind::Reject(r)) => HsMsg::Reject(match r.reason {
                Some(reject::Reason::Duplicate(_)) => RejectReason::Duplicate,
                Some(reject::Reason::Removed(v)) => RejectReason::Removed(v.member_version),
                Some(reject::Reason::Refused(_)) | None => RejectReason::Refused,
            }),
            Some(frame::Kind::Batch(_)) => return Err(HandshakeError::Unexpected("batch")),
            None => return Err(HandshakeError::Malformed("empty frame".into())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_through_protobuf() {
        let m = Member {
            node: NodeName::parse("a@h").unwrap(),
            addr: "h:4370".into(),
            incarnation: 9,
            version: 2,
            status: MemberStatus::Left,
        };
        let all = vec![
            Envelope::Tick,
            Envelope::Cast {
                to: "x".into(),
                reply_to: Some("y".into()),
                payload: Payload::new("t", vec![1u8, 2]),
            },
            Envelope::Cast {
                to: "x".into(),
                reply_to: None,
                payload: Payload::new("t", vec![]),
            },
            Envelope::Call {
                id: 5,
                to: "x".into(),
                payload: Payload::new("t", vec![3u8]),
            },
            Envelope::Reply {
                id: 5,
                result: ReplyResult::Ok(Payload::new("t", vec![4u8])),
            },
            Envelope::Reply {
                id: 6,
                result: ReplyResult::NoSuchName,
            },
            Envelope::Reply {
                id: 7,
                result: ReplyResult::Failed("boom".into()),
            },
            Envelope::Monitor {
                mref: 1,
                name: "x".into(),
            },
            Envelope::Demonitor { mref: 1 },
            Envelope::Down {
                mref: 1,
                reason: DownReason::Unregistered,
            },
            Envelope::Down {
                mref: 2,
                reason: DownReason::NoProc,
            },
            Envelope::Members(vec![m]),
        ];
        for e in all {
            let back = envelope_from(pb::Envelope::from(e.clone())).unwrap();
            assert_eq!(back, Some(e));
        }
        assert_eq!(envelope_from(pb::Envelope { body: None }).unwrap(), None);
    }
}
