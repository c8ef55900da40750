//! Raw Vault requests through vaultrs's own plumbing (its `VaultClient`, middleware and rustify
//! endpoints), without vaultrs's response stripping.
//!
//! vaultrs's API functions return only the `data` of a response: the lease (`lease_id`,
//! `lease_duration`, `renewable`) is dropped (vaultrs issue #144), it has no `sys/leases` API, and
//! its strict response structs and error-level logging of every 404 do not suit a long-running
//! loop. Every call of this module goes through [`call`], which keeps the whole response envelope
//! and maps errors to [`VaultError`] without copying any content.

use std::marker::PhantomData;

use rustify::endpoint::{Endpoint, Wrapper};
use rustify::enums::{RequestMethod, RequestType, ResponseType};
use rustify::errors::ClientError as RestError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use vaultrs::client::{Client as _, VaultClient};
use zeroize::Zeroizing;

use super::error::{VaultError, serde_detail};

/// One request: method, path below `/v1/`, optional query and JSON body.
pub(crate) struct RawRequest<T> {
    method: RequestMethod,
    path: String,
    query: Option<String>,
    /// The JSON body; it may hold a secret (a secret_id, a KV value), so it is wiped on drop.
    body: Option<Zeroizing<Vec<u8>>>,
    response: PhantomData<fn() -> T>,
}

impl<T> RawRequest<T> {
    /// A request without a body.
    pub(crate) fn new(method: RequestMethod, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: None,
            body: None,
            response: PhantomData,
        }
    }

    /// A request with a JSON body.
    pub(crate) fn with_body<B: Serialize + ?Sized>(
        method: RequestMethod,
        path: impl Into<String>,
        body: &B,
    ) -> Result<Self, VaultError> {
        let path = path.into();
        let bytes = serde_json::to_vec(body).map_err(|e| VaultError::Data {
            action: "encode",
            path: path.clone(),
            detail: serde_detail(&e),
        })?;
        Ok(Self {
            body: Some(Zeroizing::new(bytes)),
            ..Self::new(method, path)
        })
    }

    /// Adds a query string (already encoded; values here are never secret).
    pub(crate) fn query(mut self, query: impl Into<String>) -> Self {
        self.query = Some(query.into());
        self
    }

    /// The path, for errors and logs.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }
}

impl<T: DeserializeOwned + Send + Sync> Endpoint for RawRequest<T> {
    type Response = T;
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        self.path.clone()
    }

    fn method(&self) -> RequestMethod {
        self.method.clone()
    }

    fn query(&self) -> Result<Option<String>, RestError> {
        Ok(self.query.clone())
    }

    fn body(&self) -> Result<Option<Vec<u8>>, RestError> {
        Ok(self.body.as_ref().map(|body| body.to_vec()))
    }
}

/// The response envelope of Vault, every field kept.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Envelope<T> {
    /// The payload.
    #[serde(default = "none")]
    pub(crate) data: Option<T>,
    /// Present on logins and token renewals.
    #[serde(default)]
    pub(crate) auth: Option<AuthBlock>,
    /// The lease of a leased secret (empty otherwise). Not a secret.
    #[serde(default)]
    pub(crate) lease_id: String,
    /// Seconds until the lease expires.
    #[serde(default)]
    pub(crate) lease_duration: u64,
    /// Whether the lease can be renewed.
    #[serde(default)]
    pub(crate) renewable: bool,
    /// Warnings (e.g. "TTL … exceeded the effective max_ttl …").
    #[serde(default)]
    pub(crate) warnings: Option<Vec<String>>,
}

fn none<T>() -> Option<T> {
    None
}

impl<T> Envelope<T> {
    fn empty() -> Self {
        Self {
            data: None,
            auth: None,
            lease_id: String::new(),
            lease_duration: 0,
            renewable: false,
            warnings: None,
        }
    }

    /// The payload, or an error naming `path` when there is none.
    pub(crate) fn into_data(self, path: &str) -> Result<T, VaultError> {
        self.data.ok_or_else(|| VaultError::InvalidResponse {
            path: path.to_owned(),
            detail: "response has no data".to_owned(),
        })
    }
}

impl<T: DeserializeOwned + Send + Sync> Wrapper for Envelope<T> {
    type Value = T;
}

/// The `auth` block of a login or token renewal. `client_token` is wiped on drop and never
/// printed.
#[derive(serde::Deserialize)]
pub(crate) struct AuthBlock {
    pub(crate) client_token: crate::SecretString,
    #[serde(default)]
    pub(crate) policies: Vec<String>,
    #[serde(default)]
    pub(crate) lease_duration: u64,
    #[serde(default)]
    pub(crate) renewable: bool,
    #[serde(default)]
    pub(crate) token_type: String,
}

impl std::fmt::Debug for AuthBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthBlock")
            .field("client_token", &self.client_token)
            .field("policies", &self.policies)
            .field("lease_duration", &self.lease_duration)
            .field("renewable", &self.renewable)
            .field("token_type", &self.token_type)
            .finish()
    }
}

/// Sends `request` with `client` (its token, namespace and timeout) and returns the whole
/// envelope. An empty body (HTTP 204) gives an envelope with nothing in it.
pub(crate) async fn call<T: DeserializeOwned + Send + Sync>(
    client: &VaultClient,
    request: RawRequest<T>,
) -> Result<Envelope<T>, VaultError> {
    let path = request.path().to_owned();
    let result = request
        .with_middleware(client.middle())
        .exec(client.http())
        .await
        .map_err(|e| VaultError::from_rest(e, &path))?;
    if result.response.body().iter().all(u8::is_ascii_whitespace) {
        return Ok(Envelope::empty());
    }
    let envelope = result
        .wrap::<Envelope<T>>()
        .map_err(|e| VaultError::from_rest(e, &path))?;
    if let Some(warnings) = envelope.warnings.as_ref().filter(|w| !w.is_empty()) {
        tracing::debug!(path = %path, ?warnings, "Vault returned warnings");
    }
    Ok(envelope)
}

/// Checks a path given by a caller: relative, no empty, `.` or `..` segments, no control
/// characters. Vault paths are used in URLs and in authorization decisions, so ambiguity is
/// rejected rather than normalised.
pub(crate) fn check_path(what: &'static str, path: &str) -> Result<(), VaultError> {
    let bad = |reason: &str| Err(VaultError::Config(format!("{what} {path:?}: {reason}")));
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return bad("empty");
    }
    if path
        .chars()
        .any(|c| c.is_control() || c == '?' || c == '#' || c == '%')
    {
        return bad("control characters, '?', '#' and '%' are not allowed");
    }
    if trimmed
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return bad("empty, '.' and '..' segments are not allowed");
    }
    Ok(())
}

/// `path` without leading and trailing slashes (after [`check_path`]).
pub(crate) fn clean(path: &str) -> &str {
    path.trim_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        for ok in ["secret", "app/db", "/app/db/", "a-b_c.d/e"] {
            assert!(check_path("path", ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/", "a//b", "a/../b", "./a", "a/..", "a?b", "a#b", "a%2e", "a\nb",
        ] {
            assert!(check_path("path", bad).is_err(), "{bad:?}");
        }
        assert_eq!(clean("/app/db/"), "app/db");
    }

    #[test]
    fn envelope_keeps_lease_metadata() {
        let json = r#"{"request_id":"r","lease_id":"database/creds/app/abc","renewable":true,
            "lease_duration":3,"data":{"username":"u"},"wrap_info":null,"warnings":null,"auth":null}"#;
        let envelope: Envelope<serde_json::Value> = serde_json::from_str(json).unwrap();
        assert_eq!(envelope.lease_id, "database/creds/app/abc");
        assert_eq!(envelope.lease_duration, 3);
        assert!(envelope.renewable);
        assert!(envelope.data.is_some());
    }

    #[test]
    fn auth_block_never_prints_the_token() {
        let json = r#"{"client_token":"s.very-secret-token","policies":["default"],
            "lease_duration":60,"renewable":true,"token_type":"service"}"#;
        let auth: AuthBlock = serde_json::from_str(json).unwrap();
        let debug = format!("{auth:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert_eq!(auth.client_token.expose(), "s.very-secret-token");
    }
}
