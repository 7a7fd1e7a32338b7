//! girder-actors: the actix actors of a Girder node and its supervision
//! tree.
//!
//! # Layout
//!
//! - [`node`]: [`Node::start`] binds the listeners and starts the tree;
//!   [`NodeShared`] is what every channel actor shares.
//! - [`listener`]: the acceptor of each listener and the dynamic supervisor
//!   of its connections.
//! - [`channel`]: the channel actor, one per client: socket I/O around the
//!   pure `girder_broker::channel::Channel`.
//! - [`keepalive`]: one keep-alive wheel per arbiter thread instead of a
//!   timer per connection.
//! - [`router`]: the pure `girder_broker::routing::Router` wired to the
//!   subscribers' mailboxes, the counters and the route table, read
//!   directly by publishers (no router actor on the publish path);
//!   `router/shard.rs`: the supervised routing shard actors that write the
//!   route rows.
//! - [`cluster`]: the distribution layer and the admin endpoint.
//! - [`retainer`]: the periodic removal of expired retained messages.
//! - [`sys`]: the `$SYS` topics: periodic messages and client events.
//! - [`cm`]: client id → channel actor (EMQX's `emqx_cm`).
//! - [`handover`]: one session per client id across the cluster: taking a
//!   client id over from another node.
//! - [`metrics`]: counters with EMQX's names.
//! - [`settings`]: configuration → settings of the parts.
//! - [`wire`]: broker messages to and from their form between nodes.
//!
//! [`Node::start`]: node::Node::start
//! [`NodeShared`]: node::NodeShared

pub mod channel;
pub mod cluster;
pub mod cm;
pub mod handover;
pub mod keepalive;
pub mod listener;
pub mod metrics;
pub mod node;
pub mod retainer;
pub mod router;
pub mod settings;
pub mod sys;
pub mod wire;

pub use node::{ClusterCause, ClusterPart, ConfigProblem, Node, NodeError, NodeShared};
