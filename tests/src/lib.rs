//! girder-tests: cross-crate tests of Girder with real clients against real
//! nodes.
//!
//! # Layout
//! - [`node`]: start the real `girder` binary as a child process on loopback
//!   ports, wait until it listens, and kill it when the handle is dropped.
//! - [`compose`]: the cluster of `docker-compose.yml` under a project of its
//!   own, taken down with its volumes when dropped.
//! - [`linearizability`]: a WGL checker of register histories (the rlog
//!   history test).
//! - `tests/*.rs`: the suites; `mqtt_*` drive a node with rumqttc and raw
//!   sockets, `cluster_*` drive several nodes as separate processes.

pub mod cluster;
pub mod compose;
pub mod linearizability;
pub mod mqtt;
pub mod node;
pub mod rlog;
