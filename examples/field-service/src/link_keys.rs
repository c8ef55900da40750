//! Where field-service gets the valid Epicor link keys: from the authority
//! (`GET {authority}/v1/link-keys/epicor`, refreshed on its `max-age`, last use reported back),
//! authenticating with a `client_credentials` token for audience [`LINK_KEYS_AUDIENCE`]; or from
//! a static file (tests, and before the authority serves link keys).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::future::BoxFuture;
use gha_auth::{SecretString, SharedClock};
use gha_auth_middleware::RefreshPolicy;
use gha_auth_middleware::linkkey::{AccessTokenProvider, BoxError, HttpLinkKeySource};
use serde::Deserialize;
use tokio::sync::Mutex;

/// The audience of the authority's link-key API.
pub const LINK_KEYS_AUDIENCE: &str = "gha-auth-link-keys";

/// The integration name of the Epicor link key.
pub const EPICOR_LINK_KEY: &str = "epicor";

/// A token is renewed this long before it expires.
const RENEW_MARGIN: TimeDelta = TimeDelta::seconds(30);

/// Access tokens from the authority's token endpoint by `client_credentials`, cached until
/// shortly before they expire.
pub struct ClientCredentialsToken {
    token_url: String,
    client_id: String,
    client_secret: SecretString,
    audience: String,
    http: reqwest::Client,
    clock: SharedClock,
    cached: Mutex<Option<(SecretString, DateTime<Utc>)>>,
}

impl fmt::Debug for ClientCredentialsToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsToken")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: SecretString,
    #[serde(default)]
    expires_in: Option<i64>,
}

impl ClientCredentialsToken {
    /// Tokens for `audience` from `{authority}/oauth2/token`, as client `client_id`.
    pub fn new(
        authority: &str,
        client_id: impl Into<String>,
        client_secret: SecretString,
        audience: impl Into<String>,
        clock: SharedClock,
    ) -> Result<Self, BoxError> {
        let http = gha_auth::outbound::HttpClientBuilder::new("field-service")
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            token_url: format!("{}/oauth2/token", authority.trim_end_matches('/')),
            client_id: client_id.into(),
            client_secret,
            audience: audience.into(),
            http,
            clock,
            cached: Mutex::new(None),
        })
    }

    async fn fetch(&self) -> Result<(SecretString, DateTime<Utc>), BoxError> {
        let response = self
            .http
            .post(&self.token_url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("audience", self.audience.as_str()),
            ])
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("token endpoint answered {status}").into());
        }
        let answer: TokenAnswer = response
            .json()
            .await
            .map_err(|_| "token endpoint answer is not a token response")?;
        let lifetime = TimeDelta::seconds(answer.expires_in.unwrap_or(60).max(1));
        // Short-lived tokens: renew at half their life rather than never.
        let renew_in = (lifetime - RENEW_MARGIN).max(lifetime / 2);
        Ok((answer.access_token, self.clock.now() + renew_in))
    }
}

impl AccessTokenProvider for ClientCredentialsToken {
    fn access_token(&self) -> BoxFuture<'_, Result<SecretString, BoxError>> {
        Box::pin(async move {
            let mut cached = self.cached.lock().await;
            if let Some((token, renew_at)) = cached.as_ref()
                && self.clock.now() < *renew_at
            {
                return Ok(token.clone());
            }
            let (token, renew_at) = self.fetch().await?;
            *cached = Some((token.clone(), renew_at));
            Ok(token)
        })
    }
}

/// Settings of the authority link-key source.
#[derive(Debug, Clone)]
pub struct AuthorityLinkKeys {
    /// Base URL of the authority.
    pub authority: String,
    /// The client field-service authenticates as.
    pub client_id: String,
    /// Its secret.
    pub client_secret: SecretString,
    /// Refresh bounds: `min_interval` caps how fast the list follows a rotation.
    pub refresh: RefreshPolicy,
    /// How often last use is reported.
    pub report_interval: Duration,
    /// Allows a plain-HTTP authority off loopback.
    pub accept_plain_http: bool,
}

impl AuthorityLinkKeys {
    /// Defaults: refresh on `max-age` between 5 s and 5 min, 1 h stale-if-error, report every
    /// 30 s.
    pub fn new(
        authority: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> Self {
        Self {
            authority: authority.into(),
            client_id: client_id.into(),
            client_secret,
            refresh: RefreshPolicy {
                min_interval: Duration::from_secs(5),
                max_interval: Duration::from_secs(300),
                default_interval: Duration::from_secs(60),
                max_stale: Duration::from_secs(3600),
                retry_initial: Duration::from_secs(1),
            },
            report_interval: Duration::from_secs(30),
            accept_plain_http: false,
        }
    }

    /// Starts the HTTP link-key source for the Epicor key (needs a Tokio runtime).
    pub fn start(self, clock: SharedClock) -> Result<HttpLinkKeySource, BoxError> {
        let authority = self.authority.trim_end_matches('/').to_owned();
        let token = ClientCredentialsToken::new(
            &authority,
            self.client_id,
            self.client_secret,
            LINK_KEYS_AUDIENCE,
            clock.clone(),
        )?;
        let source = HttpLinkKeySource::builder(authority, EPICOR_LINK_KEY)
            .validator_name("field-service")
            .token_provider(token)
            .refresh_policy(self.refresh)
            .report_interval(self.report_interval)
            .clock(clock)
            .danger_accept_plain_http(self.accept_plain_http)
            .build()?;
        Ok(source)
    }
}
