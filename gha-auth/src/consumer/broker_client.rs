//! One request to the secrets broker: the bearer token from the [`TokenKeeper`], a timeout, a
//! bounded body, and the broker's refusals turned into [`ConsumerError`]s. A `401` means the
//! broker no longer accepts our token (rotated signing key, revoked token): the token is
//! invalidated and the request sent once more with a fresh one.

use std::fmt;

use serde::de::DeserializeOwned;
use url::Url;
use zeroize::Zeroizing;

use super::error::ConsumerError;
use super::http;
use super::token::{AccessToken, TokenKeeper};
use crate::broker::{DATABASE_CREDS_PATH_PREFIX, DatabaseCredsResponse, SECRETS_PATH_PREFIX};
use crate::broker::{SecretResponse, error_codes};
use crate::outbound::join_path;

/// Longest secret path or role name sent to the broker.
const MAX_NAME: usize = 512;

/// What is asked of the broker: a secret path or a database role.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    Secret(String),
    DatabaseRole(String),
}

impl Target {
    /// A secret path: segments of `A-Z a-z 0-9 . _ -` separated by single `/`, no `.` or `..`
    /// segment (the path goes into the URL; nothing may escape the endpoint).
    pub(crate) fn secret(path: &str) -> Result<Self, ConsumerError> {
        let path = path.trim_matches('/');
        let segments_ok = path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".." && s.bytes().all(name_byte));
        if path.is_empty() || path.len() > MAX_NAME || !segments_ok {
            return Err(ConsumerError::Config(format!(
                "secret path {:?}: expected segments of A-Z a-z 0-9 . _ - separated by /",
                shown(path)
            )));
        }
        Ok(Self::Secret(path.to_owned()))
    }

    /// A database role: one segment of `A-Z a-z 0-9 . _ -`.
    pub(crate) fn database_role(role: &str) -> Result<Self, ConsumerError> {
        let ok = !role.is_empty()
            && role.len() <= MAX_NAME
            && role != "."
            && role != ".."
            && role.bytes().all(name_byte);
        if !ok {
            return Err(ConsumerError::Config(format!(
                "database role {:?}: expected A-Z a-z 0-9 . _ -",
                shown(role)
            )));
        }
        Ok(Self::DatabaseRole(role.to_owned()))
    }

    /// The path or role, for errors, logs and metrics.
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Secret(path) => path,
            Self::DatabaseRole(role) => role,
        }
    }

    /// `secret <path>` or `database role <role>`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Secret(path) => format!("secret {path}"),
            Self::DatabaseRole(role) => format!("database role {role}"),
        }
    }

    fn url(&self, base: &Url) -> Url {
        let (prefix, name) = match self {
            Self::Secret(path) => (SECRETS_PATH_PREFIX, path),
            Self::DatabaseRole(role) => (DATABASE_CREDS_PATH_PREFIX, role),
        };
        join_path(base, &format!("{}{name}", prefix.trim_start_matches('/')))
    }
}

fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._-".contains(&b)
}

/// A rejected name, shortened and without control characters (it may be a typo of a value).
fn shown(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// A response of the broker that names what it answers, so a mixed-up answer is refused.
pub(crate) trait BrokerAnswer: DeserializeOwned + Send + Sync + 'static {
    /// The secret path or role the answer is for.
    fn answers(&self) -> &str;
}

impl BrokerAnswer for SecretResponse {
    fn answers(&self) -> &str {
        &self.path
    }
}

impl BrokerAnswer for DatabaseCredsResponse {
    fn answers(&self) -> &str {
        &self.role
    }
}

/// The broker's HTTP side, shared by all handles of one [`SecretsClient`](super::SecretsClient).
#[derive(Clone)]
pub(crate) struct BrokerClient {
    base: Url,
    keeper: TokenKeeper,
    client: reqwest::Client,
}

impl fmt::Debug for BrokerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerClient")
            .field("base", &self.base.as_str())
            .field("keeper", &self.keeper)
            .finish_non_exhaustive()
    }
}

impl BrokerClient {
    pub(crate) fn new(base: Url, keeper: TokenKeeper, client: reqwest::Client) -> Self {
        Self {
            base,
            keeper,
            client,
        }
    }

    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    pub(crate) fn keeper(&self) -> &TokenKeeper {
        &self.keeper
    }

    /// Asks the broker for `target`; a refused token is replaced and the request sent once more.
    pub(crate) async fn fetch<T: BrokerAnswer>(&self, target: &Target) -> Result<T, ConsumerError> {
        let token = self.keeper.token().await?;
        match self.send(target, &token).await? {
            Sent::Answer(answer) => Ok(answer),
            Sent::TokenRefused => {
                tracing::info!(what = %target.describe(), serial = token.serial,
                    "broker refused the access token: fetching a new one");
                self.keeper.invalidate(&token);
                let fresh = self.keeper.token().await?;
                match self.send(target, &fresh).await? {
                    Sent::Answer(answer) => Ok(answer),
                    Sent::TokenRefused => {
                        self.keeper.invalidate(&fresh);
                        Err(ConsumerError::InvalidToken {
                            what: target.describe(),
                        })
                    }
                }
            }
        }
    }

    async fn send<T: BrokerAnswer>(
        &self,
        target: &Target,
        token: &AccessToken,
    ) -> Result<Sent<T>, ConsumerError> {
        let url = target.url(&self.base);
        let request = match target {
            Target::Secret(_) => self.client.get(url.clone()),
            Target::DatabaseRole(_) => self.client.post(url.clone()),
        };
        let bearer = Zeroizing::new(format!("Bearer {}", token.secret().expose()));
        let mut authorization = reqwest::header::HeaderValue::from_str(&bearer)
            .map_err(|_| ConsumerError::Config("access token not encodable in a header".into()))?;
        authorization.set_sensitive(true);
        let response = request
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| http::unreachable(&url, &e))?;
        let status = response.status();
        let retry_after = http::retry_after(response.headers());
        // The body of a success holds the secret: wiped once parsed.
        let body = Zeroizing::new(http::read_body(&url, response).await?);
        let what = target.describe();
        match status.as_u16() {
            200 => {
                let answer: T =
                    serde_json::from_slice(&body).map_err(|_| ConsumerError::InvalidResponse {
                        url: url.to_string(),
                        message: "not a broker answer".into(),
                    })?;
                if answer.answers() != target.name() {
                    return Err(ConsumerError::InvalidResponse {
                        url: url.to_string(),
                        message: "the answer is for another path or role".into(),
                    });
                }
                Ok(Sent::Answer(answer))
            }
            401 => Ok(Sent::TokenRefused),
            403 => Err(ConsumerError::Denied { what }),
            404 => Err(ConsumerError::NotFound { what }),
            429 | 500..=599 => Err(ConsumerError::Unavailable {
                what,
                status: status.as_u16(),
                retry_after,
            }),
            code => {
                // Only the broker's fixed codes are repeated; any other text could echo input.
                let known = serde_json::from_slice::<crate::broker::BrokerErrorBody>(&body)
                    .ok()
                    .map(|b| b.error)
                    .filter(|e| e == error_codes::INVALID_REQUEST);
                Err(ConsumerError::InvalidResponse {
                    url: url.to_string(),
                    message: match known {
                        Some(error) => format!("status {code} ({error})"),
                        None => format!("status {code}"),
                    },
                })
            }
        }
    }
}

enum Sent<T> {
    Answer(T),
    TokenRefused,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_paths_are_checked_before_they_reach_a_url() {
        for ok in ["apps/db", "/apps/db/", "a", "a.b/c-d/e_f"] {
            assert!(Target::secret(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            Target::secret("/apps/db/").unwrap(),
            Target::Secret("apps/db".into())
        );
        for bad in [
            "",
            "/",
            "a//b",
            "a/../b",
            "..",
            "a/./b",
            "a b",
            "a?x=1",
            "a#f",
            "a%2fb",
            &"x".repeat(600),
        ] {
            let error = Target::secret(bad).unwrap_err();
            assert_eq!(error.kind(), "config", "{bad}");
        }
        assert!(Target::database_role("app-rw").is_ok());
        for bad in ["", "a/b", "..", "a b"] {
            assert!(Target::database_role(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_name_the_endpoint_under_the_base_path() {
        let base = Url::parse("https://auth.example/base").unwrap();
        let secret = Target::secret("apps/db").unwrap();
        assert_eq!(
            secret.url(&base).as_str(),
            "https://auth.example/base/v1/secrets/apps/db"
        );
        let role = Target::database_role("app").unwrap();
        assert_eq!(
            role.url(&base).as_str(),
            "https://auth.example/base/v1/database/creds/app"
        );
        assert_eq!(role.describe(), "database role app");
    }
}
