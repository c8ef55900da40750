//! The secrets client: secrets and database credentials from the broker, kept fresh.
//!
//! [`SecretsClient`] asks the broker (`GET /v1/secrets/{path}`, `POST /v1/database/creds/{role}`)
//! with a bearer token from a [`TokenKeeper`]. Each [`SecretsClient::secret`] or
//! [`SecretsClient::database_credentials`] call fetches the value once and returns a handle
//! whose background task refreshes it before it goes out of date; see [`BrokerValue`] for
//! stale-if-error and the watch channel.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::broker_client::{BrokerClient, Target};
use super::error::ConsumerError;
use super::http;
use super::refresh::{self, DatabaseCredsHandle, RefreshSettings, SecretHandle};
use super::token::TokenKeeper;
use crate::broker::{DatabaseCredsResponse, SecretResponse};
use crate::outbound::UrlPolicy;
use crate::schedule::RenewalPolicy;

/// Builds a [`SecretsClient`].
#[derive(Debug)]
pub struct SecretsClientBuilder {
    keeper: TokenKeeper,
    broker: Option<String>,
    timeout: Duration,
    policy: RenewalPolicy,
    stale_window: Duration,
    max_interval: Duration,
    client: Option<reqwest::Client>,
    accept_plain_http: bool,
}

impl SecretsClientBuilder {
    /// The broker's base URL (default: the keeper's authority, which hosts the broker).
    pub fn broker_url(mut self, url: impl Into<String>) -> Self {
        self.broker = Some(url.into());
        self
    }

    /// Timeout of each broker request (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Renewal fraction, jitter and backoff of the refresh loops (default: refresh at 2/3 ± 10 %
    /// of the life, back off from 1 s doubling to 30 s, at most one on-demand fetch a second).
    pub fn renewal_policy(mut self, policy: RenewalPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How long past its `max_age` a secret is still served while the broker fails (default
    /// 10 min). Database credentials are never served past their `expires_at`.
    pub fn stale_window(mut self, window: Duration) -> Self {
        self.stale_window = window;
        self
    }

    /// Longest time between two fetches of one value, however long it lives (default 5 min):
    /// the bound on how long a password rotated by hand at the source goes unnoticed when no
    /// connection is refused meanwhile.
    pub fn max_refresh_interval(mut self, interval: Duration) -> Self {
        self.max_interval = interval;
        self
    }

    /// The HTTP client (default: rustls, no redirects, the timeout above).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Allows plain HTTP to a non-loopback broker (behind a TLS-terminating proxy you trust).
    pub fn danger_accept_plain_http(mut self, accept: bool) -> Self {
        self.accept_plain_http = accept;
        self
    }

    /// Checks the settings. No request is made until the first handle is asked for.
    pub fn build(self) -> Result<SecretsClient, ConsumerError> {
        if self.timeout.is_zero()
            || self.policy.min_backoff.is_zero()
            || self.max_interval < self.policy.min_interval
        {
            return Err(ConsumerError::Config(
                "timeout and backoff must be positive, the longest refresh interval at least the shortest".into(),
            ));
        }
        let base = match &self.broker {
            Some(url) => UrlPolicy::new()
                .allow_plain_http(self.accept_plain_http)
                .check(url)?,
            None => self.keeper.authority().clone(),
        };
        let client = match self.client {
            Some(client) => client,
            None => http::default_client(self.timeout)?,
        };
        Ok(SecretsClient {
            broker: BrokerClient::new(base, self.keeper, client),
            settings: Arc::new(RefreshSettings {
                policy: self.policy,
                stale_window: self.stale_window,
                max_interval: self.max_interval,
            }),
        })
    }
}

/// Reads secrets and database credentials from the broker. Cheap to clone.
#[derive(Clone)]
pub struct SecretsClient {
    broker: BrokerClient,
    settings: Arc<RefreshSettings>,
}

impl fmt::Debug for SecretsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsClient")
            .field("broker", &self.broker)
            .field("stale_window", &self.settings.stale_window)
            .finish_non_exhaustive()
    }
}

impl SecretsClient {
    /// A builder over `keeper`, whose tokens must carry the broker's audience.
    pub fn builder(keeper: TokenKeeper) -> SecretsClientBuilder {
        SecretsClientBuilder {
            keeper,
            broker: None,
            timeout: Duration::from_secs(10),
            policy: RenewalPolicy::default()
                .with_backoff(Duration::from_secs(1), Duration::from_secs(30)),
            stale_window: Duration::from_secs(600),
            max_interval: Duration::from_secs(300),
            client: None,
            accept_plain_http: false,
        }
    }

    /// The broker's base URL.
    pub fn broker_url(&self) -> &url::Url {
        self.broker.base()
    }

    /// The token keeper.
    pub fn token_keeper(&self) -> &TokenKeeper {
        self.broker.keeper()
    }

    /// The secret at `path`, kept fresh in the background. Fails if the first read fails.
    pub async fn secret(&self, path: &str) -> Result<SecretHandle, ConsumerError> {
        let target = Target::secret(path)?;
        refresh::start(self.broker.clone(), target, Arc::clone(&self.settings)).await
    }

    /// Credentials of the database `role`, kept fresh in the background (re-fetched before the
    /// lease ends and when a static role rotates). Fails if the first request fails.
    pub async fn database_credentials(
        &self,
        role: &str,
    ) -> Result<DatabaseCredsHandle, ConsumerError> {
        let target = Target::database_role(role)?;
        refresh::start(self.broker.clone(), target, Arc::clone(&self.settings)).await
    }

    /// Reads the secret at `path` once, without a refresh loop.
    pub async fn read_secret(&self, path: &str) -> Result<SecretResponse, ConsumerError> {
        self.broker.fetch(&Target::secret(path)?).await
    }

    /// Asks for credentials of the database `role` once, without a refresh loop.
    pub async fn read_database_credentials(
        &self,
        role: &str,
    ) -> Result<DatabaseCredsResponse, ConsumerError> {
        self.broker.fetch(&Target::database_role(role)?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use crate::consumer::ClientAuth;

    fn keeper(authority: &str, clock: &ManualClock) -> TokenKeeper {
        TokenKeeper::builder(authority, ClientAuth::secret("svc", "client-s3cret".into()))
            .clock(clock.shared())
            .build()
            .unwrap()
    }

    #[test]
    fn builder_checks_the_broker_url_and_debug_shows_no_secret() {
        let clock = ManualClock::at_unix(1_000_000);
        let keeper = keeper("http://127.0.0.1:9", &clock);
        let client = SecretsClient::builder(keeper.clone()).build().unwrap();
        assert_eq!(client.broker_url().as_str(), "http://127.0.0.1:9/");
        assert!(
            SecretsClient::builder(keeper.clone())
                .broker_url("http://broker.example")
                .build()
                .is_err()
        );
        assert!(
            SecretsClient::builder(keeper.clone())
                .timeout(Duration::ZERO)
                .build()
                .is_err()
        );
        let debug = format!("{client:?}");
        assert!(!debug.contains("client-s3cret"), "{debug}");
    }

    #[tokio::test]
    async fn a_broker_that_cannot_be_reached_fails_the_first_read_clearly() {
        let clock = ManualClock::at_unix(1_000_000);
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let keeper = keeper(&format!("http://127.0.0.1:{port}"), &clock);
        let client = SecretsClient::builder(keeper).build().unwrap();
        let error = client.secret("apps/x").await.unwrap_err();
        assert_eq!(error.kind(), "unreachable", "{error}");
        let error = client.secret("../x").await.unwrap_err();
        assert_eq!(error.kind(), "config", "{error}");
    }
}
