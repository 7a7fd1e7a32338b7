//! girder-broker.

/// MQTT 3.1/3.1.1/5.0 packets and their pure, incremental codec.
pub mod codec;
