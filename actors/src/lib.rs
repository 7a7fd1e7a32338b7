//! girder-actors.
