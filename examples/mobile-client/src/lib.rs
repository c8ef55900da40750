//! The MFS mobile app's token flow, as a library the CLI (`src/main.rs`) and the tests share:
//!
//! 1. **log in** with the `password` grant as the first-party public client (no client secret:
//!    an app cannot keep one) and get an access token plus a rotating `ghar_` refresh token;
//! 2. **call the API** (field-service `GET /jobs`) with the access token;
//! 3. **refresh** before the access token expires. Each refresh token works once; the
//!    authority answers a *repeat* of the same request within its grace window with the *same*
//!    successor. So when a refresh response is lost (a tunnel, a dropped mobile connection), the
//!    client sends the very same request again instead of giving up or logging the user out.
//!    Only an RFC 6749 error (`invalid_grant`: the login has ended or was revoked) means
//!    "log in again".

use std::time::Duration;

use gha_auth::SecretString;
use reqwest::StatusCode;
use serde::Deserialize;
use thiserror::Error;

/// The public client the app is registered as by default.
pub const DEFAULT_CLIENT_ID: &str = "mfs-mobile";

/// Why a step failed. Never contains a password or token.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No answer (connection refused or dropped, timeout) after every retry.
    #[error("{what}: no response after {attempts} attempts: {message}")]
    Unreachable {
        /// The step.
        what: &'static str,
        /// How many requests were sent.
        attempts: u32,
        /// The last transport error.
        message: String,
    },
    /// The authority refused (an RFC 6749 error): for a refresh, the login is over.
    #[error("{what}: the authority refused: {error} ({description})")]
    Refused {
        /// The step.
        what: &'static str,
        /// `error`.
        error: String,
        /// `error_description`.
        description: String,
    },
    /// The API or the authority answered something unexpected.
    #[error("{what}: unexpected answer {status}")]
    Unexpected {
        /// The step.
        what: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// The client could not be built (bad URL, TLS setup).
    #[error("client setup: {0}")]
    Setup(String),
}

impl ClientError {
    /// Whether the user must log in again (the refresh token is no longer valid).
    pub fn login_required(&self) -> bool {
        matches!(self, ClientError::Refused { error, .. } if error == "invalid_grant")
    }
}

/// What a login or refresh gives the app. `Debug` hides the tokens.
#[derive(Clone)]
pub struct Tokens {
    /// The access token for the API.
    pub access_token: SecretString,
    /// The refresh token (keep it in the platform's secure storage).
    pub refresh_token: SecretString,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: u64,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// A field-service job, as much of it as the app shows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Job {
    /// Id within the tenant.
    pub id: u64,
    /// What to do.
    pub title: String,
    /// Its status.
    pub status: String,
}

/// The app's connection to the authority and the API.
#[derive(Debug, Clone)]
pub struct MobileClient {
    http: reqwest::Client,
    token_url: String,
    api: String,
    client_id: String,
    attempts: u32,
    retry_pause: Duration,
}

impl MobileClient {
    /// A client of the authority at `authority` (base URL) and the field-service API at `api`.
    pub fn new(authority: &str, api: &str) -> Result<Self, ClientError> {
        let http = gha_auth::outbound::HttpClientBuilder::new("mobile-client")
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Self {
            http,
            token_url: format!("{}/oauth2/token", authority.trim_end_matches('/')),
            api: api.trim_end_matches('/').to_owned(),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            attempts: 4,
            retry_pause: Duration::from_millis(200),
        })
    }

    /// Uses another client id.
    #[must_use]
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    /// How many times a token request is sent before giving up (at least 1), and the pause
    /// before the first retry (it doubles).
    #[must_use]
    pub fn retries(mut self, attempts: u32, pause: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.retry_pause = pause;
        self
    }

    /// Logs in as `username` (in `tenant`, when the client serves several).
    pub async fn login(
        &self,
        username: &str,
        password: &SecretString,
        tenant: Option<&str>,
    ) -> Result<Tokens, ClientError> {
        let mut form = vec![
            ("grant_type", "password"),
            ("client_id", self.client_id.as_str()),
            ("username", username),
            ("password", password.expose()),
        ];
        if let Some(tenant) = tenant {
            form.push(("tenant", tenant));
        }
        self.token_request("login", &form).await
    }

    /// Rotates `tokens`. A request that gets no response is sent again, unchanged: within the
    /// authority's grace window the repeat gets the same successor, so a lost response costs
    /// nothing.
    pub async fn refresh(&self, tokens: &Tokens) -> Result<Tokens, ClientError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", self.client_id.as_str()),
            ("refresh_token", tokens.refresh_token.expose()),
        ];
        self.token_request("refresh", &form).await
    }

    /// `POST /oauth2/token` with retries on transport failures and 5xx answers only.
    async fn token_request(
        &self,
        what: &'static str,
        form: &[(&str, &str)],
    ) -> Result<Tokens, ClientError> {
        let mut pause = self.retry_pause;
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            if attempt > 1 {
                tracing::info!(what, attempt, "no response; sending the same request again");
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
            }
            let response = match self.http.post(&self.token_url).form(form).send().await {
                Ok(response) => response,
                Err(e) => {
                    last = e.without_url().to_string();
                    continue;
                }
            };
            let status = response.status();
            if status.is_server_error() {
                last = format!("status {status}");
                continue;
            }
            let body = match response.bytes().await {
                Ok(body) => body,
                // The connection dropped mid-body: as good as no response.
                Err(e) => {
                    last = e.without_url().to_string();
                    continue;
                }
            };
            return parse_token_answer(what, status, &body);
        }
        Err(ClientError::Unreachable {
            what,
            attempts: self.attempts,
            message: last,
        })
    }

    /// `GET /jobs` on the API with the access token.
    pub async fn jobs(&self, tokens: &Tokens) -> Result<Vec<Job>, ClientError> {
        let what = "list jobs";
        let response = self
            .http
            .get(format!("{}/jobs", self.api))
            .bearer_auth(tokens.access_token.expose())
            .send()
            .await
            .map_err(|e| ClientError::Unreachable {
                what,
                attempts: 1,
                message: e.without_url().to_string(),
            })?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(ClientError::Unexpected {
                what,
                status: status.as_u16(),
            });
        }
        response.json().await.map_err(|_| ClientError::Unexpected {
            what,
            status: status.as_u16(),
        })
    }
}

fn parse_token_answer(
    what: &'static str,
    status: StatusCode,
    body: &[u8],
) -> Result<Tokens, ClientError> {
    if status == StatusCode::OK {
        let parsed: TokenBody =
            serde_json::from_slice(body).map_err(|_| ClientError::Unexpected {
                what,
                status: status.as_u16(),
            })?;
        let refresh = parsed.refresh_token.ok_or(ClientError::Unexpected {
            what,
            status: status.as_u16(),
        })?;
        return Ok(Tokens {
            access_token: SecretString::from(parsed.access_token),
            refresh_token: SecretString::from(refresh),
            expires_in: parsed.expires_in,
        });
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(error) => Err(ClientError::Refused {
            what,
            error: error.error,
            description: error.error_description,
        }),
        Err(_) => Err(ClientError::Unexpected {
            what,
            status: status.as_u16(),
        }),
    }
}

/// What one run of the app did (no tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Jobs listed with the first access token.
    pub jobs_after_login: Vec<Job>,
    /// Jobs listed with the access token from the refresh.
    pub jobs_after_refresh: Vec<Job>,
}

/// The app's session: log in, list jobs, refresh, list jobs again. Returns what it saw and the
/// tokens it holds at the end.
pub async fn run(
    client: &MobileClient,
    username: &str,
    password: &SecretString,
    tenant: Option<&str>,
) -> Result<(Report, Tokens), ClientError> {
    let tokens = client.login(username, password, tenant).await?;
    let jobs_after_login = client.jobs(&tokens).await?;
    let tokens = client.refresh(&tokens).await?;
    let jobs_after_refresh = client.jobs(&tokens).await?;
    Ok((
        Report {
            jobs_after_login,
            jobs_after_refresh,
        },
        tokens,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed_and_errors_say_whether_to_log_in_again() {
        let ok = parse_token_answer(
            "refresh",
            StatusCode::OK,
            br#"{"access_token":"a","token_type":"Bearer","expires_in":600,"refresh_token":"ghar_x"}"#,
        )
        .unwrap();
        assert_eq!(ok.refresh_token.expose(), "ghar_x");
        assert!(!format!("{ok:?}").contains("ghar_x"));
        let over = parse_token_answer(
            "refresh",
            StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_grant","error_description":"gone"}"#,
        )
        .unwrap_err();
        assert!(over.login_required());
        let odd = parse_token_answer("refresh", StatusCode::BAD_REQUEST, b"<html>").unwrap_err();
        assert!(!odd.login_required());
        let no_refresh = parse_token_answer(
            "login",
            StatusCode::OK,
            br#"{"access_token":"a","expires_in":600}"#,
        );
        assert!(no_refresh.is_err());
    }
}
