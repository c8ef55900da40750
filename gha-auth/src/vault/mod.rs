//! The Vault / OpenBao client layer: the two loops of Vault Agent, inside a library.
//!
//! - **Identity loop** ([`VaultSession`]): logs in with an [`AuthMethod`] (token, AppRole,
//!   Kubernetes; credentials re-read from their files at every login), renews the token at about
//!   2/3 of its TTL with jitter, and logs in again when a renewal fails or the TTL stops growing
//!   (max TTL reached). Backs off exponentially with a cap, never gives up, and shows its state
//!   in [`VaultStatus`]. The current token is published through a watch channel.
//! - **Secrets**: [`Kv2`] (versions, check-and-set, read-modify-write, a poller), [`Database`]
//!   (dynamic credentials with their lease, static roles) and [`Leases`] (`sys/leases`, which
//!   vaultrs lacks). [`DynamicCredentials`] and [`StaticCredentials`] keep database credentials
//!   fresh in the background and publish them through watch channels.
//!
//! Built on vaultrs (its client, TLS via rustls, middleware); requests go through its rustify
//! plumbing with our own endpoint type so the lease metadata vaultrs strips is kept. Every request
//! has the configured timeout. Secrets (tokens, secret_ids, passwords, KV values) never appear in
//! `Debug`, logs or errors; paths, versions and lease ids may.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gha_auth::vault::VaultError> {
//! use std::time::Duration;
//! use gha_auth::SystemClock;
//! use gha_auth::vault::{AuthConfig, CredentialSource, Database, DynamicCredentials, Kv2,
//!     VaultConfig, VaultSession};
//!
//! let config = VaultConfig::new(
//!     "https://vault.internal:8200",
//!     AuthConfig::approle(
//!         CredentialSource::file("/run/secrets/role_id"),
//!         CredentialSource::file("/run/secrets/secret_id"),
//!     ),
//! );
//! let session = VaultSession::start(&config, SystemClock::shared())?;
//! session.ready(Duration::from_secs(30)).await?;
//!
//! let kv = Kv2::new(session.clone(), "secret")?;
//! let secret = kv.read("apps/field-service").await?;
//! println!("version {}", secret.metadata.version);
//!
//! let db = Database::new(session.clone(), "database")?;
//! let creds = DynamicCredentials::start(db, "field-service").await?;
//! let mut changes = creds.subscribe();
//! while changes.changed().await.is_ok() {
//!     // rebuild the connection pool with changes.borrow().username / password
//! }
//! # Ok(()) }
//! ```

mod auth;
mod client;
mod config;
mod credentials;
mod database;
mod error;
mod kv2;
mod lease;
mod raw;
mod series;
mod session;

// The timing decisions are shared with the consumer clients, so they live at the crate root.
pub(crate) use crate::schedule;

pub use crate::schedule::{
    RenewalDecision, RenewalPolicy, backoff_delay, renew_delay, renewal_decision,
};
pub use auth::{AppRoleAuth, AuthMethod, KubernetesAuth, LoginResult, TokenAuth, post_login};
pub use client::VaultConnection;
pub use config::{
    AuthConfig, CredentialSource, DEFAULT_KUBERNETES_JWT_FILE, DEFAULT_REQUEST_TIMEOUT, VaultConfig,
};
pub use credentials::{CredentialsStatus, DynamicCredentials, StaticCredentials};
pub use database::{Database, DbCredentials, StaticDbCredentials};
pub use error::VaultError;
pub use kv2::{Kv2, KvData, KvMetadata, KvSecret, KvVersion, KvWatch, KvWatchStatus};
pub use lease::{Lease, LeaseInfo, Leases};
pub use series::describe_metrics;
pub use session::{SessionToken, VaultHealth, VaultSession, VaultStatus};
