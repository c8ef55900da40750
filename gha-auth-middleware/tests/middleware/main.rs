//! Integration tests of gha-auth-middleware: one test binary, one module per area.

// Test support code outside #[test] functions: failing loudly is what it should do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod extractors;
mod remote;
mod revocation_feed;
mod security;
mod sources;
