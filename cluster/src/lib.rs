//! girder-cluster.
