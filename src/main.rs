//! The `girder` binary.
fn main() {}
