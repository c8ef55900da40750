//! Auth methods: how the identity loop obtains a token.
//!
//! Each method re-reads its credential (token file, secret_id file, service-account token file)
//! at **every** login: the loop may run for months while those files are replaced underneath.
//! Add a method by implementing [`AuthMethod`]; [`post_login`] does the HTTP part of the usual
//! `POST auth/<mount>/login` shape.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use rustify::enums::RequestMethod;
use serde::Serialize;

use super::client::{VaultConnection, check_token};
use super::config::CredentialSource;
use super::error::VaultError;
use super::raw::{self, RawRequest};
use crate::SecretString;

/// The result of a successful login.
#[derive(Clone)]
#[non_exhaustive]
pub struct LoginResult {
    /// The client token.
    pub token: SecretString,
    /// Seconds the token is valid for (`0`: no expiry).
    pub ttl: Duration,
    /// Whether the token can be renewed.
    pub renewable: bool,
    /// The increment to ask for when renewing (usually the TTL the token was created with).
    pub renew_increment: Duration,
    /// Its policies.
    pub policies: Vec<String>,
}

impl LoginResult {
    /// A login result.
    pub fn new(token: SecretString, ttl: Duration, renewable: bool) -> Self {
        Self {
            token,
            ttl,
            renewable,
            renew_increment: ttl,
            policies: Vec::new(),
        }
    }

    /// With these policies.
    pub fn with_policies(mut self, policies: Vec<String>) -> Self {
        self.policies = policies;
        self
    }
}

impl fmt::Debug for LoginResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginResult")
            .field("token", &self.token)
            .field("ttl", &self.ttl)
            .field("renewable", &self.renewable)
            .field("renew_increment", &self.renew_increment)
            .field("policies", &self.policies)
            .finish()
    }
}

/// A way to obtain a Vault token.
#[async_trait]
pub trait AuthMethod: Send + Sync + fmt::Debug {
    /// Short name for logs and metrics (`approle`, `kubernetes`, …).
    fn name(&self) -> &str;

    /// Logs in, reading the credential afresh. Errors must not contain the credential.
    async fn login(&self, connection: &VaultConnection) -> Result<LoginResult, VaultError>;
}

/// Sends a login request (`POST <path>` with `body`, usually `auth/<mount>/login`) and returns
/// the token of the `auth` block.
pub async fn post_login<B: Serialize + Sync + ?Sized>(
    connection: &VaultConnection,
    path: &str,
    body: &B,
) -> Result<LoginResult, VaultError> {
    let request = RawRequest::<serde_json::Value>::with_body(RequestMethod::POST, path, body)?;
    let envelope = raw::call(connection.unauthenticated(), request).await?;
    let auth = envelope.auth.ok_or_else(|| VaultError::InvalidResponse {
        path: path.to_owned(),
        detail: "login response has no auth block".to_owned(),
    })?;
    check_token(&auth.client_token)?;
    let ttl = Duration::from_secs(auth.lease_duration);
    Ok(LoginResult {
        token: auth.client_token,
        ttl,
        renewable: auth.renewable,
        renew_increment: ttl,
        policies: auth.policies,
    })
}

/// Token auth: a token given or read from a file. "Logging in" re-reads the file and looks the
/// token up (`auth/token/lookup-self`) for its TTL; a replaced file yields the new token.
#[derive(Debug, Clone)]
pub struct TokenAuth {
    token: CredentialSource,
}

impl TokenAuth {
    /// Token auth from `token`.
    pub fn new(token: CredentialSource) -> Self {
        Self { token }
    }
}

#[derive(serde::Deserialize)]
struct LookupSelf {
    #[serde(default)]
    ttl: u64,
    #[serde(default)]
    creation_ttl: u64,
    #[serde(default)]
    renewable: bool,
    #[serde(default)]
    policies: Vec<String>,
    /// `null` for a token without expiry.
    #[serde(default)]
    expire_time: Option<String>,
}

#[async_trait]
impl AuthMethod for TokenAuth {
    fn name(&self) -> &str {
        "token"
    }

    async fn login(&self, connection: &VaultConnection) -> Result<LoginResult, VaultError> {
        let token = self.token.read("token").await?;
        let client = connection.authenticated(&token)?;
        let request = RawRequest::<LookupSelf>::new(RequestMethod::GET, "auth/token/lookup-self");
        let lookup = raw::call(&client, request)
            .await?
            .into_data("auth/token/lookup-self")?;
        if lookup.ttl == 0 && lookup.expire_time.is_some() {
            // An expiring token with nothing left: do not mistake it for a non-expiring one.
            return Err(VaultError::InvalidCredential {
                what: "token",
                reason: "the token has (almost) expired; replace it".to_owned(),
            });
        }
        Ok(LoginResult {
            token,
            ttl: Duration::from_secs(lookup.ttl),
            renewable: lookup.renewable,
            renew_increment: Duration::from_secs(lookup.creation_ttl.max(lookup.ttl)),
            policies: lookup.policies,
        })
    }
}

/// AppRole auth: `role_id` and `secret_id`, both re-read at every login, so a provisioner can
/// replace the secret_id file (and destroy the old secret_id) at any time.
#[derive(Debug, Clone)]
pub struct AppRoleAuth {
    mount: String,
    role_id: CredentialSource,
    secret_id: CredentialSource,
}

impl AppRoleAuth {
    /// AppRole on the mount `approle`.
    pub fn new(role_id: CredentialSource, secret_id: CredentialSource) -> Self {
        Self {
            mount: "approle".to_owned(),
            role_id,
            secret_id,
        }
    }

    /// On another mount path.
    pub fn with_mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = raw::clean(&mount.into()).to_owned();
        self
    }
}

#[derive(Serialize)]
struct AppRoleLogin<'a> {
    role_id: &'a str,
    secret_id: &'a str,
}

#[async_trait]
impl AuthMethod for AppRoleAuth {
    fn name(&self) -> &str {
        "approle"
    }

    async fn login(&self, connection: &VaultConnection) -> Result<LoginResult, VaultError> {
        let role_id = self.role_id.read("role_id").await?;
        let secret_id = self.secret_id.read("secret_id").await?;
        let body = AppRoleLogin {
            role_id: role_id.expose(),
            secret_id: secret_id.expose(),
        };
        post_login(connection, &format!("auth/{}/login", self.mount), &body).await
    }
}

/// Kubernetes auth: the pod's service-account JWT, re-read at every login (projected tokens
/// are rotated by the kubelet and are never cached here).
#[derive(Debug, Clone)]
pub struct KubernetesAuth {
    mount: String,
    role: String,
    jwt: CredentialSource,
}

impl KubernetesAuth {
    /// Kubernetes auth as `role` on the mount `kubernetes`, with the JWT from `jwt`.
    pub fn new(role: impl Into<String>, jwt: CredentialSource) -> Self {
        Self {
            mount: "kubernetes".to_owned(),
            role: role.into(),
            jwt,
        }
    }

    /// On another mount path.
    pub fn with_mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = raw::clean(&mount.into()).to_owned();
        self
    }
}

#[derive(Serialize)]
struct KubernetesLogin<'a> {
    role: &'a str,
    jwt: &'a str,
}

#[async_trait]
impl AuthMethod for KubernetesAuth {
    fn name(&self) -> &str {
        "kubernetes"
    }

    async fn login(&self, connection: &VaultConnection) -> Result<LoginResult, VaultError> {
        let jwt = self.jwt.read("service-account token").await?;
        let body = KubernetesLogin {
            role: &self.role,
            jwt: jwt.expose(),
        };
        post_login(connection, &format!("auth/{}/login", self.mount), &body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_methods_shows_no_values() {
        let approle = AppRoleAuth::new(
            CredentialSource::value("the-role-id"),
            CredentialSource::file("/run/secrets/secret_id"),
        )
        .with_mount("/approle-x/");
        let k8s = KubernetesAuth::new("app", CredentialSource::value("eyJhbGciOi.jwt.sig"));
        let token = TokenAuth::new(CredentialSource::value("s.root"));
        let debug = format!("{approle:?} {k8s:?} {token:?}");
        for secret in ["the-role-id", "eyJhbGciOi", "s.root"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("/run/secrets/secret_id"));
        assert_eq!(approle.mount, "approle-x");
    }

    #[test]
    fn login_result_debug_is_redacted() {
        let result = LoginResult::new(SecretString::from("s.tok"), Duration::from_secs(5), true)
            .with_policies(vec!["default".into()]);
        let debug = format!("{result:?}");
        assert!(!debug.contains("s.tok"), "{debug}");
        assert!(debug.contains("default"));
    }
}
