//! The link handshake as a pure state machine.
//!
//! ```text
//!  dialer                                   acceptor
//!    | Hello {version, node, cluster, nonce_d}  |
//!    |----------------------------------------->|  version + cluster checked,
//!    |                                          |  admission (tie-break, tombstones)
//!    |  Challenge {version, node, cluster, nonce_a} | or Reject {reason}
//!    |<-----------------------------------------|
//!    | Response {mac_d}                          |  mac_d checked; a wrong cookie
//!    |----------------------------------------->|  gets nothing more
//!    |  Accept {mac_a}                           |
//!    |<-----------------------------------------|
//! ```
//!
//! Both MACs are HMAC-SHA256 keyed by the cookie over a role label, the
//! cluster name, both node names and both nonces, so each side proves it
//! holds the cookie without sending it, a MAC cannot be replayed in the
//! other direction or to another pair, and the cluster name is bound in.
//! As in Erlang's `dist_util`, the acceptor proves itself last, only to a
//! dialer that proved itself first.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::options::NodeName;

/// The protocol version this release speaks. A peer within one of it is accepted.
pub(crate) const PROTOCOL_VERSION: u32 = 1;

/// Length of a handshake nonce in bytes.
pub(crate) const NONCE_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The peer speaks a protocol version too far from ours.
    #[error("protocol version {theirs} is not compatible with {ours}")]
    Version {
        /// Our version.
        ours: u32,
        /// Theirs.
        theirs: u32,
    },
    /// The peer belongs to another cluster.
    #[error("peer is in cluster {theirs:?}, this node in {ours:?}")]
    WrongCluster {
        /// Our cluster name.
        ours: String,
        /// Theirs.
        theirs: String,
    },
    /// The peer's MAC is wrong: it does not hold the cookie.
    #[error("the peer's proof does not match the cookie")]
    BadMac,
    /// The node answering is not the node dialed.
    #[error("dialed {expected} but {actual} answered")]
    UnexpectedNode {
        /// The node dialed.
        expected: String,
        /// The node that answered.
        actual: String,
    },
    /// The peer sent an invalid node name or nonce.
    #[error("malformed handshake message: {0}")]
    Malformed(String),
    /// A node dialed itself.
    #[error("a node cannot link to itself")]
    SelfLink,
    /// The acceptor refused the link.
    #[error("rejected by the peer: {0}")]
    Rejected(RejectReason),
    /// A message arrived out of order.
    #[error("unexpected {0} during the handshake")]
    Unexpected(&'static str),
    /// The stream ended or failed.
    #[error("the connection closed during the handshake")]
    Closed,
    /// The peer was too slow.
    #[error("the handshake timed out")]
    Timeout,
}

/// Why an acceptor refuses a link to a peer that may well hold the cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// A link exists already or another handshake between the pair wins.
    Duplicate,
    /// The dialer was removed from the cluster; the tombstone's member version.
    Removed(u64),
    /// The acceptor refuses links for now (left, shut down, link cut).
    Refused,
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Duplicate => f.write_str("a link between the two nodes exists"),
            Self::Removed(v) => write!(f, "removed from the cluster (member version {v})"),
            Self::Refused => f.write_str("refused"),
        }
    }
}

/// A handshake message, as the state machine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HsMsg {
    Hello(Intro),
    Challenge(Intro),
    Response { mac: Vec<u8> },
    Accept { mac: Vec<u8> },
    Reject(RejectReason),
}

/// What each side says about itself (`Hello` and `Challenge`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Intro {
    pub(crate) version: u32,
    pub(crate) node: String,
    pub(crate) cluster: String,
    pub(crate) nonce: Vec<u8>,
    pub(crate) incarnation: u64,
    /// Meaningful in `Hello` only.
    pub(crate) member_version: u64,
    pub(crate) addr: String,
}

/// This node's side of a handshake.
#[derive(Clone)]
pub(crate) struct Local {
    pub(crate) node: NodeName,
    pub(crate) cluster: String,
    pub(crate) cookie: std::sync::Arc<[u8]>,
    pub(crate) incarnation: u64,
    pub(crate) member_version: u64,
    pub(crate) addr: String,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("node", &self.node)
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

/// The peer, once it has introduced itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Peer {
    pub(crate) node: NodeName,
    pub(crate) version: u32,
    pub(crate) incarnation: u64,
    pub(crate) member_version: u64,
    pub(crate) addr: String,
}

/// An input to the state machine.
#[derive(Debug)]
pub(crate) enum Input {
    /// A message from the peer.
    Msg(HsMsg),
    /// The node's decision on a peer that introduced itself (acceptor only).
    Admission(Result<(), RejectReason>),
}

/// The state of one handshake.
#[derive(Debug)]
pub(crate) enum Handshake {
    /// Dialer: `Hello` sent, waiting for `Challenge`.
    AwaitChallenge {
        local: Local,
        expected: NodeName,
        nonce: Vec<u8>,
    },
    /// Dialer: `Response` sent, waiting for `Accept`.
    AwaitAccept {
        local: Local,
        peer: Peer,
        nonce: Vec<u8>,
        peer_nonce: Vec<u8>,
    },
    /// Acceptor: waiting for `Hello`.
    AwaitHello { local: Local, nonce: Vec<u8> },
    /// Acceptor: the peer introduced itself; the node decides whether to admit it.
    AwaitAdmission {
        local: Local,
        peer: Peer,
        nonce: Vec<u8>,
        peer_nonce: Vec<u8>,
    },
    /// Acceptor: `Challenge` sent, waiting for `Response`.
    AwaitResponse {
        local: Local,
        peer: Peer,
        nonce: Vec<u8>,
        peer_nonce: Vec<u8>,
    },
    /// The link is authenticated.
    Established(Peer),
    /// The handshake failed; the link is dropped.
    Failed(HandshakeError),
}

impl Handshake {
    /// Starts a dial: the state and the `Hello` to send.
    pub(crate) fn dial(local: Local, expected: NodeName, nonce: Vec<u8>) -> (Self, HsMsg) {
        let hello = HsMsg::Hello(intro(&local, &nonce));
        (
            Self::AwaitChallenge {
                local,
                expected,
                nonce,
            },
            hello,
        )
    }

    /// Starts an accept.
    pub(crate) fn accept(local: Local, nonce: Vec<u8>) -> Self {
        Self::AwaitHello { local, nonce }
    }

    /// One step: the next state and the message to send, if any.
    pub(crate) fn next(self, input: Input) -> (Self, Option<HsMsg>) {
        use Handshake as H;
        match (self, input) {
            (
                H::AwaitChallenge {
                    local,
                    expected,
                    nonce,
                },
                Input::Msg(HsMsg::Challenge(c)),
            ) => {
                let peer = match check_intro(&local, &c) {
                    Ok(peer) => peer,
                    Err(e) => return (H::Failed(e), None),
                };
                if peer.node != expected {
                    let e = HandshakeError::UnexpectedNode {
                        expected: expected.to_string(),
                        actual: peer.node.to_string(),
                    };
                    return (H::Failed(e), None);
                }
                let mac = proof(
                    &local,
                    Role::Dialer,
                    &local.node,
                    &peer.node,
                    &nonce,
                    &c.nonce,
                );
                let next = H::AwaitAccept {
                    local,
                    peer,
                    nonce,
                    peer_nonce: c.nonce,
                };
                (next, Some(HsMsg::Response { mac }))
            }
            (H::AwaitChallenge { .. }, Input::Msg(HsMsg::Reject(r))) => {
                (H::Failed(HandshakeError::Rejected(r)), None)
            }
            (
                H::AwaitAccept {
                    local,
                    peer,
                    nonce,
                    peer_nonce,
                },
                Input::Msg(HsMsg::Accept { mac }),
            ) => {
                let ok = verify(
                    &local,
                    Role::Acceptor,
                    &local.node,
                    &peer.node,
                    &nonce,
                    &peer_nonce,
                    &mac,
                );
                if ok {
                    (H::Established(peer), None)
                } else {
                    (H::Failed(HandshakeError::BadMac), None)
                }
            }
            (H::AwaitHello { local, nonce }, Input::Msg(HsMsg::Hello(h))) => {
                match check_intro(&local, &h) {
                    Ok(peer) => (
                        H::AwaitAdmission {
                            local,
                            peer,
                            nonce,
                            peer_nonce: h.nonce,
                        },
                        None,
                    ),
                    Err(e) => (H::Failed(e), None),
                }
            }
            (
                H::AwaitAdmission {
                    local,
                    peer,
                    nonce,
                    peer_nonce,
                },
                Input::Admission(decision),
            ) => match decision {
                Ok(()) => {
                    let challenge = HsMsg::Challenge(intro(&local, &nonce));
                    (
                        H::AwaitResponse {
                            local,
                            peer,
                            nonce,
                            peer_nonce,
                        },
                        Some(challenge),
                    )
                }
                Err(r) => (
                    H::Failed(HandshakeError::Rejected(r)),
                    Some(HsMsg::Reject(r)),
                ),
            },
            (
                H::AwaitResponse {
                    local,
                    peer,
                    nonce,
                    peer_nonce,
                },
                Input::Msg(HsMsg::Response { mac }),
            ) => {
                if !verify(
                    &local,
                    Role::Dialer,
                    &peer.node,
                    &local.node,
                    &peer_nonce,
                    &nonce,
                    &mac,
                ) {
                    return (H::Failed(HandshakeError::BadMac), None);
                }
                let mac = proof(
                    &local,
                    Role::Acceptor,
                    &peer.node,
                    &local.node,
                    &peer_nonce,
                    &nonce,
                );
                (H::Established(peer), Some(HsMsg::Accept { mac }))
            }
            (state @ (H::Established(_) | H::Failed(_)), _) => (state, None),
            (_, Input::Admission(_)) => (H::Failed(HandshakeError::Unexpected("admission")), None),
            (_, Input::Msg(m)) => (H::Failed(HandshakeError::Unexpected(msg_name(&m))), None),
        }
    }
}

fn msg_name(m: &HsMsg) -> &'static str {
    match m {
        HsMsg::Hello(_) => "hello",
        HsMsg::Challenge(_) => "challenge",
        HsMsg::Response { .. } => "response",
        HsMsg::Accept { .. } => "accept",
        HsMsg::Reject(_) => "reject",
    }
}

fn intro(local: &Local, nonce: &[u8]) -> Intro {
    Intro {
        version: PROTOCOL_VERSION,
        node: local.node.to_string(),
        cluster: local.cluster.clone(),
        nonce: nonce.to_vec(),
        incarnation: local.incarnation,
        member_version: local.member_version,
        addr: local.addr.clone(),
    }
}

fn check_intro(local: &Local, intro: &Intro) -> Result<Peer, HandshakeError> {
    if intro.version == 0 || intro.version.abs_diff(PROTOCOL_VERSION) > 1 {
        return Err(HandshakeError::Version {
            ours: PROTOCOL_VERSION,
            theirs: intro.version,
        });
    }
    if intro.cluster != local.cluster {
        return Err(HandshakeError::WrongCluster {
            ours: local.cluster.clone(),
            theirs: intro.cluster.clone(),
        });
    }
    if intro.nonce.len() != NONCE_LEN {
        return Err(HandshakeError::Malformed(format!(
            "nonce of {} bytes",
            intro.nonce.len()
        )));
    }
    let node =
        NodeName::parse(&intro.node).map_err(|e| HandshakeError::Malformed(e.to_string()))?;
    if node == local.node {
        return Err(HandshakeError::SelfLink);
    }
    Ok(Peer {
        node,
        version: intro.version,
        incarnation: intro.incarnation,
        member_version: intro.member_version,
        addr: intro.addr.clone(),
    })
}

#[derive(Clone, Copy)]
enum Role {
    Dialer,
    Acceptor,
}

fn keyed(
    local: &Local,
    role: Role,
    dialer: &NodeName,
    acceptor: &NodeName,
    nonce_d: &[u8],
    nonce_a: &[u8],
) -> HmacSha256 {
    // An HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(&local.cookie).unwrap_or_else(|_| unreachable!());
    let label: &[u8] = match role {
        Role::Dialer => b"girder-dist-v1 dialer",
        Role::Acceptor => b"girder-dist-v1 acceptor",
    };
    for field in [
        label,
        local.cluster.as_bytes(),
        dialer.as_str().as_bytes(),
        acceptor.as_str().as_bytes(),
        nonce_d,
        nonce_a,
    ] {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field);
    }
    mac
}

fn proof(
    local: &Local,
    role: Role,
    dialer: &NodeName,
    acceptor: &NodeName,
    nonce_d: &[u8],
    nonce_a: &[u8],
) -> Vec<u8> {
    keyed(local, role, dialer, acceptor, nonce_d, nonce_a)
        .finalize()
        .into_bytes()
        .to_vec()
}

fn verify(
    local: &Local,
    role: Role,
    dialer: &NodeName,
    acceptor: &NodeName,
    nonce_d: &[u8],
    nonce_a: &[u8],
    mac: &[u8],
) -> bool {
    keyed(local, role, dialer, acceptor, nonce_d, nonce_a)
        .verify_slice(mac)
        .is_ok()
}

#[cfg(test)]
#[path = "handshake_test.rs"]
mod tests;
