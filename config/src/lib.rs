//! Girder's typed configuration: an EMQX-shaped schema, embedded defaults,
//! HOCON files, `GIRDER_*`/`EMQX_*` environment overrides, command-line
//! overrides and validation.
//!
//! ```
//! use girder_config::{Config, LoadOptions};
//!
//! let loaded = Config::load(&LoadOptions {
//!     file: None,
//!     env: vec![("GIRDER_NODE__DB_ROLE".into(), "replicant".into())],
//!     overrides: vec!["mqtt.max_inflight=64".into()],
//! })?;
//! assert_eq!(loaded.config.node.role, girder_config::DbRole::Replicant);
//! assert_eq!(loaded.config.mqtt.max_inflight, 64);
//! # Ok::<(), girder_config::ConfigError>(())
//! ```
//!
//! Layers, lowest first: the embedded default file ([`default_file`]), the
//! configuration file, `EMQX_*` variables, `GIRDER_*` variables, then
//! `key.path=value` overrides. They are `config::Source`s stacked by
//! `config::ConfigBuilder`; the merged tree is deserialized by a small
//! deserializer of this crate so that every error is one line naming the key,
//! the value and what was expected:
//!
//! ```text
//! config error: mqtt.max_packet_size = "12XB": expected a byte size such as 1MB or 1048576 (from /etc/girder.conf)
//! config error: unknown key mqtt.max_pakcet_size (from /etc/girder.conf)
//! config error: node.role = "leader": expected one of core, replicant (from env GIRDER_NODE__ROLE)
//! ```
//!
//! # Layout
//!
//! - `types.rs`: [`ByteSize`] (binary units), [`Duration`], [`Limit`]
//!   (`infinity`), [`Bind`], [`NodeName`].
//! - `schema.rs` and `schema/`: [`Config`] and its sections (`cluster.rs`
//!   holds `node` and `cluster`; `listeners.rs`; `mqtt.rs` with `retainer`;
//!   `security.rs` with authentication and authorization; `ops.rs` with log,
//!   prometheus, admin and sys_topics), each with `validate`.
//! - `sources.rs`: the layers as `config::Source`s: [`HoconSource`],
//!   [`EnvSource`], [`OverrideSource`], and [`Hocon`] as a `config::Format`.
//! - `de.rs`: the path-tracking deserializer over the merged tree.
//! - `load.rs`: [`Config::load`], [`LoadOptions`], [`Loaded`],
//!   [`check_file`], [`default_file`].
//! - `error.rs`: [`ConfigError`] and [`Warning`].
//! - `../etc/girder.conf`: the commented default file.

mod de;
mod error;
mod load;
mod schema;
mod sources;
mod support;
mod types;

pub use error::{ConfigError, Warning};
pub use load::{check_file, default_file, LoadOptions, Loaded};
pub use schema::*;
pub use sources::{EnvSource, Hocon, HoconSource, OverrideSource};
pub use support::{schema_keys, support, Support, KEYS};
pub use types::{Bind, ByteSize, Duration, Limit, NodeName, NodeNameError, Quantity};
