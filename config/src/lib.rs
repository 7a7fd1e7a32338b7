//! girder-config.
