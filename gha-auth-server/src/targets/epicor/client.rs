//! The Epicor REST API v2 client: URLs, the API key and user authentication on every call, the
//! token cache, retries, and mapping answers to [`TargetError`]s without secrets.

use std::fmt;

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use gha_auth::{SecretString, SharedClock};
use serde::Serialize;
use tokio::sync::Mutex;
use url::Url;

use super::wire::{self, UpdateRefused, UserCodesTableset};
use crate::targets::http::{self, Answer, HttpSettings};
use crate::targets::secrets::SecretSource;
use crate::targets::{EpicorAuthMode, TargetError};

/// The service the client calls.
const USER_CODES_SVC: &str = "Ice.BO.UserCodesSvc";

/// A token is renewed this long before Epicor says it expires.
const TOKEN_MARGIN: TimeDelta = TimeDelta::seconds(60);

/// Lifetime assumed when the token endpoint does not say (the shortest figure reported).
const DEFAULT_TOKEN_LIFETIME: TimeDelta = TimeDelta::hours(1);

/// The integration user's credentials and the API key, read from the secret source per call.
struct Credentials {
    username: SecretString,
    password: SecretString,
    api_key: SecretString,
}

struct CachedToken {
    token: SecretString,
    renew_at: DateTime<Utc>,
}

/// A small Epicor REST v2 client for one company.
pub(crate) struct EpicorClient {
    base: Url,
    company: String,
    auth: EpicorAuthMode,
    credentials: SecretSource,
    http: reqwest::Client,
    settings: HttpSettings,
    clock: SharedClock,
    token: Mutex<Option<CachedToken>>,
}

impl fmt::Debug for EpicorClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpicorClient")
            .field("base", &self.base.as_str())
            .field("company", &self.company)
            .field("auth", &self.auth)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl EpicorClient {
    pub(crate) fn new(
        base: Url,
        company: String,
        auth: EpicorAuthMode,
        credentials: SecretSource,
        http: reqwest::Client,
        settings: HttpSettings,
        clock: SharedClock,
    ) -> Self {
        Self {
            base,
            company,
            auth,
            credentials,
            http,
            settings,
            clock,
            token: Mutex::new(None),
        }
    }

    /// The base URL (for descriptions).
    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    /// `POST …/Ice.BO.UserCodesSvc/GetByID {"codeTypeID":…}`: the code type and its codes.
    pub(crate) async fn get_user_codes(
        &self,
        code_type_id: &str,
    ) -> Result<UserCodesTableset, TargetError> {
        let input = wire::GetByIdInput { code_type_id };
        let body = self.call("GetByID", &input, &[]).await?;
        wire::parse_get_by_id(&body).map_err(TargetError::Protocol)
    }

    /// `POST …/Ice.BO.UserCodesSvc/UpdateExt`: writes `value` into `column` of one code
    /// (`add`: create it). Row errors in a 200 answer are a rejection.
    pub(crate) async fn update_user_code(
        &self,
        code_type_id: &str,
        code_id: &str,
        column: &str,
        value: &SecretString,
        add: bool,
    ) -> Result<(), TargetError> {
        let input = wire::update_ext_input(
            &self.company,
            code_type_id,
            code_id,
            column,
            value.expose(),
            add,
        );
        let body = self.call("UpdateExt", &input, &[value]).await?;
        match wire::parse_update_ext(&body) {
            Ok(()) => Ok(()),
            Err(UpdateRefused::Malformed(reason)) => Err(TargetError::Protocol(reason)),
            Err(UpdateRefused::RowErrors(text)) => Err(TargetError::Rejected {
                status: 200,
                message: format!("UpdateExt refused the row: {}", scrub(&text, &[value])),
            }),
        }
    }

    /// `{base}/api/v2/odata/{company}/Ice.BO.UserCodesSvc/{method}`.
    fn method_url(&self, method: &str) -> Result<Url, TargetError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| TargetError::Config("Epicor base URL cannot be a base".into()))?
            .pop_if_empty()
            .extend(["api", "v2", "odata", &self.company, USER_CODES_SVC, method]);
        Ok(url)
    }

    /// Calls a service method with retries; on a 401 in token mode, drops the cached token and
    /// tries once more with a new one (tokens end early when Epicor restarts).
    async fn call<T: Serialize + Sync>(
        &self,
        method: &str,
        input: &T,
        secrets: &[&SecretString],
    ) -> Result<Vec<u8>, TargetError> {
        let url = self.method_url(method)?;
        let body = serde_json::to_vec(input)
            .map_err(|e| TargetError::Config(format!("{method} input: {e}")))?;
        let body = zeroize::Zeroizing::new(body);
        let what = format!("{USER_CODES_SVC}/{method}");
        let mut fresh_token = false;
        loop {
            let credentials = self.credentials().await?;
            let authorization = self.authorization(&credentials, fresh_token).await?;
            let answer = http::with_retries(&self.settings, &self.clock, &what, || {
                let request = self
                    .http
                    .post(url.clone())
                    .header("x-api-key", credentials.api_key.expose())
                    .header(reqwest::header::AUTHORIZATION, authorization.expose())
                    .header(reqwest::header::ACCEPT, "application/json")
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_vec());
                http::send(request)
            })
            .await?;
            if answer.status == 401 && self.auth == EpicorAuthMode::Token && !fresh_token {
                fresh_token = true;
                continue;
            }
            return check(&what, answer, secrets);
        }
    }

    async fn credentials(&self) -> Result<Credentials, TargetError> {
        let mut fields = self
            .credentials
            .fields(&["username", "password", "api_key"])
            .await?;
        let mut take = |name: &str| {
            fields
                .remove(name)
                .ok_or_else(|| TargetError::Config(format!("credential {name:?} missing")))
        };
        Ok(Credentials {
            username: take("username")?,
            password: take("password")?,
            api_key: take("api_key")?,
        })
    }

    /// The `Authorization` header value: Basic, or a (cached) bearer token.
    async fn authorization(
        &self,
        credentials: &Credentials,
        renew: bool,
    ) -> Result<SecretString, TargetError> {
        match self.auth {
            EpicorAuthMode::Basic => Ok(basic(credentials)),
            EpicorAuthMode::Token => {
                let mut cached = self.token.lock().await;
                let now = self.clock.now();
                if !renew && let Some(token) = cached.as_ref().filter(|t| now < t.renew_at) {
                    return Ok(SecretString::new(format!(
                        "Bearer {}",
                        token.token.expose()
                    )));
                }
                let token = self.fetch_token(credentials).await?;
                let header = SecretString::new(format!("Bearer {}", token.token.expose()));
                *cached = Some(token);
                Ok(header)
            }
        }
    }

    /// `POST {base}/TokenResource.svc/` with Basic auth and the API key →
    /// `{"AccessToken":…,"ExpiresIn":…,"TokenType":"Bearer"}`.
    async fn fetch_token(&self, credentials: &Credentials) -> Result<CachedToken, TargetError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| TargetError::Config("Epicor base URL cannot be a base".into()))?
            .pop_if_empty()
            .extend(["TokenResource.svc", ""]);
        let authorization = basic(credentials);
        let what = "TokenResource.svc";
        let answer = http::with_retries(&self.settings, &self.clock, what, || {
            let request = self
                .http
                .post(url.clone())
                .header("x-api-key", credentials.api_key.expose())
                .header(reqwest::header::AUTHORIZATION, authorization.expose())
                .header(reqwest::header::ACCEPT, "application/json")
                .header(reqwest::header::CONTENT_LENGTH, "0");
            http::send(request)
        })
        .await?;
        let body = check(what, answer, &[])?;
        let token = wire::parse_token(&body).map_err(TargetError::Protocol)?;
        let lifetime = token
            .expires_in
            .filter(|s| *s > 0)
            .map_or(DEFAULT_TOKEN_LIFETIME, TimeDelta::seconds);
        // Renew well before the end, and never trust a lifetime shorter than the margin.
        let renew_in = (lifetime - TOKEN_MARGIN).max(lifetime / 2);
        Ok(CachedToken {
            token: token.access_token,
            renew_at: self.clock.now() + renew_in,
        })
    }
}

fn basic(credentials: &Credentials) -> SecretString {
    let pair = zeroize::Zeroizing::new(format!(
        "{}:{}",
        credentials.username.expose(),
        credentials.password.expose()
    ));
    let encoded = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
    SecretString::new(format!("Basic {encoded}"))
}

/// 2xx → the body; anything else → [`TargetError::Rejected`] with Epicor's message (scrubbed).
fn check(what: &str, answer: Answer, secrets: &[&SecretString]) -> Result<Vec<u8>, TargetError> {
    if (200..300).contains(&answer.status) {
        return Ok(answer.body);
    }
    let message = wire::error_message(&answer.body).unwrap_or_else(|| match answer.status {
        401 => "unauthorized (API key or user credentials refused)".to_owned(),
        403 => "forbidden".to_owned(),
        _ => "no Epicor error body".to_owned(),
    });
    Err(TargetError::Rejected {
        status: answer.status,
        message: format!("{what}: {}", scrub(&message, secrets)),
    })
}

/// Removes any secret from a message Epicor wrote (its messages may echo input), and bounds it.
fn scrub(message: &str, secrets: &[&SecretString]) -> String {
    let mut text: String = message.chars().take(500).collect();
    for secret in secrets {
        if !secret.is_empty() {
            text = text.replace(secret.expose(), "[redacted]");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_secrets_and_bounds_length() {
        let key = SecretString::from("ghal_secret");
        assert_eq!(
            scrub("value ghal_secret is too long", &[&key]),
            "value [redacted] is too long"
        );
        assert_eq!(scrub(&"x".repeat(2000), &[]).len(), 500);
    }

    #[test]
    fn non_2xx_answers_are_rejections_with_epicor_messages() {
        let answer = Answer {
            status: 400,
            body: br#"{"HttpStatus":400,"ErrorMessage":"Bad ghal_k"}"#.to_vec(),
        };
        let key = SecretString::from("ghal_k");
        let error = check("GetByID", answer, &[&key]).unwrap_err();
        let TargetError::Rejected { status, message } = error else {
            panic!("not a rejection");
        };
        assert_eq!(status, 400);
        assert_eq!(message, "GetByID: Bad [redacted]");
    }
}
