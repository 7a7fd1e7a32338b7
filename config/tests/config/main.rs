//! Integration tests of girder-config: real files on disk, real environment
//! pairs, every layer and every class of error.

mod common;
mod errors;
mod layers;
mod support;
