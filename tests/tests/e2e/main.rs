//! End-to-end tests: one test binary, one module per area, all against real components started
//! by `gha-auth-testkit` (OpenBao dev servers, PostgreSQL databases).
//!
//! Add an area as `mod <area>;` below, in `tests/e2e/<area>.rs`.

// Clippy's allow-*-in-tests settings cover `#[test]` functions only, not the helpers of a test
// binary; here every function is test code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test binary: failing loudly is the point"
)]

mod authority;
mod authority_vault;
mod availability;
mod broker;
mod console;
mod consumer;
mod consumer_secrets;
mod discovery;
mod epicor_link;
mod field_service;
mod harness;
mod linkkeys;
mod mobile_client;
mod monitor;
mod pentest;
mod pentest_oauth;
mod python;
mod revocation_feed;
mod sessions;
mod support;
mod token_exchange;
mod users;
mod vault;
mod web_portal;
