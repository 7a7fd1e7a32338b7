//! The messages the rlog's processes take, typed at the boundary: what
//! arrives at `girder.rlog` is decoded once into an [`RlogMsg`], what
//! arrives at `girder.rlog.raft.<shard>` into a [`RaftMsg`], and the
//! handlers match on the enum; what is sent is built from the same enums,
//! so a type name on the wire is written in one place.

use girder_proto::rlog as pb;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use prost::Message;

use super::raft::TypeConfig;
use crate::process::Payload;

const T_SUBSCRIBE: &str = "girder.rlog.v1.Subscribe";
const T_UNSUBSCRIBE: &str = "girder.rlog.v1.Unsubscribe";
const T_PUSH: &str = "girder.rlog.v1.Push";
const T_WRITE: &str = "girder.rlog.v1.Write";
const T_LOCK: &str = "girder.rlog.v1.Lock";
const T_PROBE: &str = "girder.rlog.v1.Probe";
const T_JOIN_GROUP: &str = "girder.rlog.v1.JoinGroup";
/// The answer to a [`RlogMsg::Write`].
pub(crate) const T_WRITE_REPLY: &str = "girder.rlog.v1.WriteReply";
/// The answer to a [`RlogMsg::Lock`].
pub(crate) const T_LOCK_REPLY: &str = "girder.rlog.v1.LockReply";
/// The answer to a [`RlogMsg::Probe`].
pub(crate) const T_PROBE_REPLY: &str = "girder.rlog.v1.ProbeReply";
/// The answer to a [`RlogMsg::JoinGroup`] (empty).
pub(crate) const T_JOIN_GROUP_REPLY: &str = T_JOIN_GROUP;

const T_APPEND: &str = "girder.rlog.raft.Append";
const T_VOTE: &str = "girder.rlog.raft.Vote";
const T_SNAPSHOT: &str = "girder.rlog.raft.Snapshot";

/// Why an arriving message was not taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MsgError {
    /// A type name this process does not take.
    #[error("unknown message type {0:?}")]
    Unknown(String),
    /// A known type whose body does not decode.
    #[error("malformed {type_name}: {cause}")]
    Malformed {
        /// The type name.
        type_name: String,
        /// The decoder's error.
        cause: String,
    },
}

fn malformed(type_name: &str, cause: impl ToString) -> MsgError {
    MsgError::Malformed {
        type_name: type_name.to_owned(),
        cause: cause.to_string(),
    }
}

/// A message to `girder.rlog`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RlogMsg {
    /// Start or resume following a feed (also the follower's ack).
    Subscribe(pb::Subscribe),
    /// Stop following a feed.
    Unsubscribe(pb::Unsubscribe),
    /// Entries of a followed feed.
    Push(pb::Push),
    /// A lease-lock request to a core (a call).
    Lock(pb::Lock),
    /// A consensus write forwarded to a core (a call).
    Write(pb::Write),
    /// Which consensus groups does this core hold (a call).
    Probe,
    /// Add the caller to this core's groups (a call).
    JoinGroup(pb::JoinGroup),
}

impl RlogMsg {
    /// Decodes an arriving payload.
    pub(crate) fn decode(p: &Payload) -> Result<Self, MsgError> {
        fn body<M: Message + Default>(p: &Payload) -> Result<M, MsgError> {
            M::decode(p.data.clone()).map_err(|e| malformed(&p.type_name, e))
        }
        Ok(match p.type_name.as_str() {
            T_SUBSCRIBE => Self::Subscribe(body(p)?),
            T_UNSUBSCRIBE => Self::Unsubscribe(body(p)?),
            T_PUSH => Self::Push(body(p)?),
            T_LOCK => Self::Lock(body(p)?),
            T_WRITE => Self::Write(body(p)?),
            T_PROBE => Self::Probe,
            T_JOIN_GROUP => Self::JoinGroup(body(p)?),
            other => return Err(MsgError::Unknown(other.to_owned())),
        })
    }

    /// The payload to send.
    pub(crate) fn encode(&self) -> Payload {
        match self {
            Self::Subscribe(m) => Payload::encode(T_SUBSCRIBE, m),
            Self::Unsubscribe(m) => Payload::encode(T_UNSUBSCRIBE, m),
            Self::Push(m) => Payload::encode(T_PUSH, m),
            Self::Lock(m) => Payload::encode(T_LOCK, m),
            Self::Write(m) => Payload::encode(T_WRITE, m),
            Self::Probe => Payload::new(T_PROBE, Vec::new()),
            Self::JoinGroup(m) => Payload::encode(T_JOIN_GROUP, m),
        }
    }
}

/// An openraft RPC to `girder.rlog.raft.<shard>` (serde JSON bodies, as
/// openraft defines them).
#[derive(Debug)]
pub(crate) enum RaftMsg {
    /// Entries or heartbeats from the leader.
    Append(AppendEntriesRequest<TypeConfig>),
    /// A candidate's vote request.
    Vote(VoteRequest<u64>),
    /// A chunk of the leader's snapshot.
    Snapshot(InstallSnapshotRequest<TypeConfig>),
}

/// Which openraft RPC: the type name its request and answer travel under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RaftRpc {
    /// [`RaftMsg::Append`].
    Append,
    /// [`RaftMsg::Vote`].
    Vote,
    /// [`RaftMsg::Snapshot`].
    Snapshot,
}

impl RaftRpc {
    /// The type name on the wire.
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Self::Append => T_APPEND,
            Self::Vote => T_VOTE,
            Self::Snapshot => T_SNAPSHOT,
        }
    }
}

impl RaftMsg {
    /// Decodes an arriving payload.
    pub(crate) fn decode(p: &Payload) -> Result<Self, MsgError> {
        let json = |e: serde_json::Error| malformed(&p.type_name, e);
        Ok(match p.type_name.as_str() {
            T_APPEND => Self::Append(serde_json::from_slice(&p.data).map_err(json)?),
            T_VOTE => Self::Vote(serde_json::from_slice(&p.data).map_err(json)?),
            T_SNAPSHOT => Self::Snapshot(serde_json::from_slice(&p.data).map_err(json)?),
            other => return Err(MsgError::Unknown(other.to_owned())),
        })
    }

    /// Which RPC it is.
    pub(crate) fn rpc(&self) -> RaftRpc {
        match self {
            Self::Append(_) => RaftRpc::Append,
            Self::Vote(_) => RaftRpc::Vote,
            Self::Snapshot(_) => RaftRpc::Snapshot,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlog_messages_round_trip_and_unknown_or_malformed_ones_are_refused() {
        let msgs = [
            RlogMsg::Subscribe(pb::Subscribe {
                feed: "owned".into(),
                epoch: 3,
                from: 7,
                session: 9,
            }),
            RlogMsg::Unsubscribe(pb::Unsubscribe {
                feed: "shard:auth".into(),
            }),
            RlogMsg::Probe,
            RlogMsg::Write(pb::Write {
                shard: "auth".into(),
                ops: Vec::new(),
            }),
        ];
        for m in msgs {
            assert_eq!(RlogMsg::decode(&m.encode()).expect("decodes"), m);
        }
        assert!(matches!(
            RlogMsg::decode(&Payload::new("girder.rlog.v1.Nope", Vec::new())),
            Err(MsgError::Unknown(t)) if t == "girder.rlog.v1.Nope"
        ));
        assert!(matches!(
            RlogMsg::decode(&Payload::new(T_PUSH, vec![0xff, 0xff, 0xff])),
            Err(MsgError::Malformed { .. })
        ));
    }

    #[test]
    fn raft_messages_are_told_apart_by_type_name() {
        let vote = VoteRequest::<u64>::new(openraft::Vote::new(2, 1), None);
        let p = Payload::new(
            RaftRpc::Vote.type_name(),
            serde_json::to_vec(&vote).expect("json"),
        );
        let m = RaftMsg::decode(&p).expect("decodes");
        assert_eq!(m.rpc(), RaftRpc::Vote);
        assert!(matches!(
            RaftMsg::decode(&Payload::new(RaftRpc::Append.type_name(), b"{".to_vec())),
            Err(MsgError::Malformed { .. })
        ));
    }
}
