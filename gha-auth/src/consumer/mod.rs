//! Clients of the authority for services that consume it (feature `consumer`).
//!
//! - [`TokenKeeper`]: an access token from the client-credentials grant (`client_secret_basic`
//!   or `private_key_jwt`), renewed at 2/3 of its life, one request at a time, backing off with
//!   a cap when the authority fails.
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
//! # Ok(()) }
//! ```

mod credentials;
mod error;
mod http;
mod token;

pub use credentials::{ClientAuth, read_secret_file};
pub use error::ConsumerError;
pub use token::{AccessToken, TokenKeeper, TokenKeeperBuilder, TokenStatus};
