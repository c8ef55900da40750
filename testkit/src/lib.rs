//! Test support for gha-auth: real OpenBao dev servers and PostgreSQL databases, started by the
//! tests themselves on free ports (no mocks).
//!
//! - [`OpenBao`]: `bao server -dev` per test, with helpers to configure KV v2, AppRole,
//!   policies, tokens and the database engine, and a ready [`vaultrs`] client.
//! - [`PgDatabase`]: a throwaway database on the shared PostgreSQL at 127.0.0.1:5432 (trust
//!   auth), dropped afterwards.
//! - [`PrivatePostgres`]: a private cluster with password authentication, for tests that must
//!   prove a credential works.

mod bao;
mod pg;
mod private_pg;
mod util;

pub use bao::OpenBao;
pub use pg::{DEFAULT_PG_URL, PgDatabase};
pub use private_pg::PrivatePostgres;
pub use reqwest::Method;
pub use util::{free_port, random_hex, workspace_root};
