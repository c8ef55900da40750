//! Clients of the authority for services that consume it (feature `consumer`).
//!
//! - [`TokenKeeper`]: an access token from the client-credentials grant (`client_secret_basic`
//!   or `private_key_jwt`), renewed at 2/3 of its life, one request at a time, backing off with
//!   a cap when the authority fails;
//! - [`SecretsClient`]: secrets and database credentials from the broker, refreshed in the
//!   background before they go out of date, published through watch channels, served stale for
//!   a bounded time while the broker fails, re-fetched at once on demand
//!   ([`BrokerValue::refresh_now`]) after an authentication failure.
//!
//! All time comes from the injected [`SharedClock`](crate::SharedClock); HTTP goes through
//! reqwest with rustls, a timeout on every request and no redirects. Secrets (client secrets,
//! tokens, secret values, passwords) never appear in `Debug`, logs or errors.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gha_auth::consumer::ConsumerError> {
//! use gha_auth::consumer::{ClientAuth, TokenKeeper};
//!
//! let keeper = TokenKeeper::builder(
//!     "https://auth.example.internal",
//!     ClientAuth::secret_file("db-consumer", "/run/secrets/client_secret"),
//! )
//! .audience("gha-auth-broker")
//! .build()?;
//! let token = keeper.token().await?;
//! // send `Authorization: Bearer {token.secret().expose()}`
//!
//! let secrets = gha_auth::consumer::SecretsClient::builder(keeper).build()?;
//! let db = secrets.database_credentials("db-consumer").await?;
//! let mut changes = db.subscribe();
//! while changes.changed().await.is_ok() {
//!     // rebuild the connection pool with changes.borrow().username and .password
//! }
//! # Ok(()) }
//! ```

mod broker_client;
mod credentials;
mod error;
mod http;
mod refresh;
mod secrets;
mod token;

pub use credentials::{ClientAuth, read_secret_file};
pub use error::ConsumerError;
pub use refresh::{BrokerValue, DatabaseCredsHandle, Freshness, RefreshStatus, SecretHandle};
pub use secrets::{SecretsClient, SecretsClientBuilder};
pub use token::{AccessToken, TokenKeeper, TokenKeeperBuilder, TokenStatus};
