//! girder-proto: Protocol Buffers definitions of Girder's wire protocols and
//! the prost/tonic code generated from them (by `protox`, no system protoc).
//!
//! # Layout
//!
//! - `proto/girder/dist/v1/dist.proto` → [`dist`]: the node-to-node link
//!   (handshake frames, batched envelopes, membership). Only `girder-cluster`
//!   uses it; it converts these types to its own at the boundary.
//! - `proto/girder/admin/v1/admin.proto` → [`admin`]: the admin API served on
//!   `admin.bind` and called by `girder ctl`.
//! - `proto/girder/rlog/v1/rlog.proto` → [`rlog`]: the replicated tables':
//!   feeds, snapshots and forwarded writes.
//! - `proto/girder/broker/v1/broker.proto` → [`broker`]: messages routed
//!   between nodes (a publisher's node forwarding to subscribers' nodes);
//!   `proto/girder/broker/v1/retained.proto`, in the same package: the rows
//!   of the replicated `retained` table; and
//!   `proto/girder/broker/v1/session.proto`: a client id taken over from
//!   another node, with its session's state.
//!
//! All are versioned packages (`v1`); changes are additive only so that
//! adjacent releases interoperate.

/// The distribution protocol (`girder.dist.v1`).
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod dist {
    tonic::include_proto!("girder.dist.v1");
}

/// The admin API (`girder.admin.v1`).
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod admin {
    tonic::include_proto!("girder.admin.v1");
}

/// Replicated tables: feeds, snapshots and forwarded writes (`girder.rlog.v1`).
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod rlog {
    tonic::include_proto!("girder.rlog.v1");
}

/// Messages routed between the broker's nodes (`girder.broker.v1`).
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod broker {
    tonic::include_proto!("girder.broker.v1");
}
