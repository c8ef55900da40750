//! Integration tests of gha-auth-middleware: one test binary, one module per area.

mod common;
mod extractors;
mod remote;
mod security;
mod sources;
