//! girder-broker.
