//! Channel state-machine tests.
