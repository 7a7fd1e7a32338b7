//! girder-cluster: Girder's distribution layer, Erlang distribution rebuilt
//! on tonic (gRPC, port 4370).
//!
//! One authenticated link per pair of nodes carries batched, ordered
//! envelopes: heartbeats, casts and calls to registered names, monitors,
//! replies, and the member list. The handshake proves both sides hold the
//! cookie (HMAC-SHA256 challenge/response, never the cookie itself) and
//! belong to the same cluster; simultaneous connects resolve to one link (the
//! lower-named node's outgoing one). The member list is a state-based CRDT
//! gossiped on every link, so every node converges on it. With
//! [`ClusterOptions::tls`] ([`DistTls`]) every link runs over mutual TLS.
//!
//! ```no_run
//! # async fn demo() -> Result<(), girder_cluster::ClusterError> {
//! use std::time::Duration;
//! use girder_cluster::{start, ClusterOptions, NodeName, Payload, ECHO};
//! let node = start(ClusterOptions::new("n1@127.0.0.1", "secret", "girder")?).await?;
//! node.join("n2@127.0.0.1").await?;
//! let n2 = NodeName::parse("n2@127.0.0.1")?;
//! let pong = node.call(&n2, ECHO, Payload::new("ping", "hi"), Duration::from_secs(1)).await?;
//! assert_eq!(&pong.data[..], b"hi");
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! ```text
//! handle.rs      start(), ClusterHandle (send/call/monitor/join/leave/...), RemoteMonitor
//! node.rs        shared state: links, members, registry, watchers; dispatch; events
//! handshake.rs   the handshake as a pure state machine (+ handshake_test.rs)
//! membership.rs  the member list CRDT (pure)
//! link.rs        handshake driver, batching writer, reader with heartbeat timeout
//! dial.rs        one dial, the per-member reconnect loop, discovery (static, dns)
//! server.rs      the tonic Dist service (accepting side)
//! wire.rs        prost <-> crate types, at the boundary
//! process.rs     Payload, RemoteMessage, ReplyTo, the Process trait
//! builtin.rs     names every node registers (girder.echo, girder.debug.sleep)
//! fault.rs       fault injection (cut, restore, delay, drop)
//! admin.rs       the admin gRPC service's cluster calls
//! task.rs        Task, Tasks: long-lived tasks a supervisor starts again
//! options.rs     ClusterOptions, NodeName, Target, Discovery, Backoff, DistTls
//! error.rs       ClusterError
//! ```
//!
//! # Tasks
//!
//! Every long-lived part of the distribution layer is a tokio task tracked
//! by the node and stopped by [`ClusterHandle::shutdown`]: the listener,
//! discovery, one connector per joined member, and per link one task
//! (reader + writer). Links and connectors recover by themselves (reconnect
//! with backoff).
//!
//! The replicated tables' long-lived loops ([`rlog::Rlog::tasks`]: the
//! `girder.rlog` dispatcher, the pump, the ticker, the group driver, and on
//! cores each consensus shard's Raft server and write batcher) are
//! [`task::Task`]s: spawned at once, and kept with the function that starts
//! them again over the state they share, so that a supervisor (the node's
//! `cluster` subtree in girder-actors) can start one again after a panic.

mod admin;
mod builtin;
mod dial;
mod error;
mod fault;
mod handle;
mod handshake;
mod link;
mod membership;
mod node;
mod options;
mod process;
pub mod rlog;
mod server;
pub mod task;
mod wire;

pub use admin::{serve as serve_admin, Admin};
pub use builtin::{DEBUG_SLEEP, ECHO};
pub use error::ClusterError;
pub use fault::FaultAction;
pub use handle::{start, ClusterHandle, ClusterStatus, RemoteMonitor};
pub use handshake::{HandshakeError, RejectReason};
pub use membership::{Member, MemberStatus};
pub use node::{NodeDownReason, NodeEvent};
pub use options::{
    Backoff, ClusterOptions, Discovery, DistTls, NodeName, Target, DEFAULT_DIST_PORT,
};
pub use process::{Payload, Process, RemoteMessage, ReplyTo};
pub use wire::DownReason;
