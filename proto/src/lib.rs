//! girder-proto: Protocol Buffers definitions of Girder's wire protocols.
