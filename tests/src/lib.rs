//! girder-tests.
