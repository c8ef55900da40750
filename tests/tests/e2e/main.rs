//! End-to-end tests: one test binary, one module per area, all against real components started
//! by `gha-auth-testkit` (OpenBao dev servers, PostgreSQL databases).

mod authority;
mod harness;
mod vault;
