//! girder-supervision.
