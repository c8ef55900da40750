//! Test support for gha-auth: real OpenBao dev servers and PostgreSQL databases, started by the
//! tests themselves on free ports (no mocks).
//!
//! - [`OpenBao`]: `bao server -dev` per test, with helpers to configure KV v2, AppRole,
//!   policies, tokens and the database engine, and a ready [`vaultrs`] client.
//! - [`PgDatabase`]: a throwaway database on the shared PostgreSQL at 127.0.0.1:5432 (trust
//!   auth), dropped afterwards.
//! - [`PrivatePostgres`]: a private cluster with password authentication, for tests that must
//!   prove a credential works.
//! - [`promtool_check_metrics`]: Prometheus's linter over a `/metrics` answer.
//! - [`FakeEpicor`]: the one fake, since no Epicor is reachable: the REST API v2 calls the
//!   link-key rotation makes, and a data directive that sends the key it holds to an API.
//!
//! Everything is cleaned up on drop (processes killed, databases dropped); fixtures of a test
//! process that was killed outright are swept by later starts.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use gha_auth_testkit::{OpenBao, PgDatabase, PrivatePostgres};
//!
//! let bao = OpenBao::start().await?;
//! bao.enable_kv2("secret").await?; // dev servers have it already: a no-op then
//! let root = bao.client()?;
//! vaultrs::kv2::set(&root, "secret", "app/db", &serde_json::json!({ "password": "p1" })).await?;
//! bao.write_policy("app", r#"path "secret/data/app/*" { capabilities = ["read"] }"#).await?;
//! let (role_id, secret_id) = bao
//!     .enable_approle("app", &["app"], Duration::from_secs(60), Duration::from_secs(300))
//!     .await?;
//! let anonymous = bao.client_with_token("")?;
//! let login = vaultrs::auth::approle::login(&anonymous, "approle", &role_id, &secret_id).await?;
//!
//! let db = PgDatabase::create().await?;
//! sqlx::query("CREATE TABLE t (x INT)").execute(db.pool()).await?;
//! db.drop_db().await?;
//!
//! let pg = PrivatePostgres::start().await?; // password auth: wrong passwords fail
//! let _admin_url = pg.admin_url();
//! # let _ = login; Ok(()) }
//! ```

mod bao;
mod epicor;
mod pg;
mod private_pg;
mod promtool;
mod util;

pub use bao::OpenBao;
pub use epicor::{
    DataDirective, DirectiveCounts, EPICOR_INSTANCE, EpicorMode, FakeEpicor, FakeEpicorConfig,
};
pub use pg::{DEFAULT_PG_URL, PgDatabase};
pub use private_pg::PrivatePostgres;
pub use promtool::promtool_check_metrics;
pub use reqwest::Method;
pub use util::{free_port, random_hex, workspace_root};
