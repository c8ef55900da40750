//! The wire format of the secrets broker, shared by the broker (server) and its consumers.
//!
//! - `GET /v1/secrets/{path}` → [`SecretResponse`];
//! - `POST /v1/database/creds/{role}` → [`DatabaseCredsResponse`];
//! - refusals other than RFC 6750 ones → [`BrokerErrorBody`].
//!
//! Secret values are held as [`SecretString`]: `Debug` prints `[redacted]` and memory is wiped on
//! drop. They are serialized only because the broker must send them; nothing else here prints
//! them. Times are RFC 3339 UTC on the wire.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::SecretString;

/// Path of the secret endpoint, without the secret's path.
pub const SECRETS_PATH_PREFIX: &str = "/v1/secrets/";
/// Path of the database credentials endpoint, without the role.
pub const DATABASE_CREDS_PATH_PREFIX: &str = "/v1/database/creds/";
/// The audience the broker's tokens must carry by default.
pub const DEFAULT_BROKER_AUDIENCE: &str = "gha-auth-broker";

/// The fields of a secret: a JSON object whose values are strings. Values never print.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretData(BTreeMap<String, SecretString>);

impl SecretData {
    /// An empty set of fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: impl Into<String>, value: SecretString) {
        self.0.insert(key.into(), value);
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&SecretString> {
        self.0.get(key)
    }

    /// The field names (not secret).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Fields and values, for code that must hand the values on (keep the borrows short).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SecretString)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Field names help debugging; the values are redacted by SecretString.
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl FromIterator<(String, SecretString)> for SecretData {
    fn from_iter<T: IntoIterator<Item = (String, SecretString)>>(iter: T) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl Serialize for SecretData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value.expose())?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for SecretData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, SecretString>::deserialize(deserializer).map(Self)
    }
}

/// `200` of `GET /v1/secrets/{path}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SecretResponse {
    /// The secret's path, as requested.
    pub path: String,
    /// Its version (KV v2 version, or the local store's version), increasing on every write.
    pub version: u64,
    /// The fields.
    pub data: SecretData,
    /// When the broker read this value from its source.
    pub fetched_at: DateTime<Utc>,
    /// How long the consumer may use the value before asking again.
    pub max_age_seconds: u64,
}

impl SecretResponse {
    /// A response for `path` at `version`.
    pub fn new(
        path: impl Into<String>,
        version: u64,
        data: SecretData,
        fetched_at: DateTime<Utc>,
        max_age_seconds: u64,
    ) -> Self {
        Self {
            path: path.into(),
            version,
            data,
            fetched_at,
            max_age_seconds,
        }
    }
}

/// Whether a database credential is issued per lease or belongs to a rotated static role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CredentialKind {
    /// A dynamic role: a fresh user per lease.
    Dynamic,
    /// A static role: one user whose password the engine rotates.
    Static,
}

impl CredentialKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Dynamic => "dynamic",
            CredentialKind::Static => "static",
        }
    }
}

/// `200` of `POST /v1/database/creds/{role}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DatabaseCredsResponse {
    /// The broker's role name.
    pub role: String,
    /// Dynamic or static.
    pub kind: CredentialKind,
    /// Database user name.
    pub username: String,
    /// Database password.
    #[serde(serialize_with = "expose_secret")]
    pub password: SecretString,
    /// When the credential was issued (dynamic) or last rotated (static).
    pub issued_at: DateTime<Utc>,
    /// When it stops working: never later than the broker can keep it alive.
    pub expires_at: DateTime<Utc>,
    /// When to ask again (about 2/3 of the remaining life).
    pub refresh_at: DateTime<Utc>,
}

impl DatabaseCredsResponse {
    /// A response for `role`.
    pub fn new(
        role: impl Into<String>,
        kind: CredentialKind,
        username: impl Into<String>,
        password: SecretString,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        refresh_at: DateTime<Utc>,
    ) -> Self {
        Self {
            role: role.into(),
            kind,
            username: username.into(),
            password,
            issued_at,
            expires_at,
            refresh_at,
        }
    }
}

fn expose_secret<S: Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose())
}

/// The `error` codes of the broker's own refusals.
pub mod error_codes {
    /// The caller's policy does not allow this path or role (403).
    pub const ACCESS_DENIED: &str = "access_denied";
    /// No such secret or role (404).
    pub const NOT_FOUND: &str = "not_found";
    /// The broker cannot serve now (e.g. Vault cannot issue database credentials); 503 with
    /// `Retry-After`.
    pub const TEMPORARILY_UNAVAILABLE: &str = "temporarily_unavailable";
    /// The secret's source has failed for longer than the stale window and no cached value may
    /// be served any more (503, with `Retry-After`).
    pub const SECRETS_UNAVAILABLE: &str = "secrets_unavailable";
    /// The path or role name is malformed (400).
    pub const INVALID_REQUEST: &str = "invalid_request";
}

/// The body of a broker refusal: `{"error":"access_denied"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BrokerErrorBody {
    /// One of [`error_codes`].
    pub error: String,
    /// A fixed human text; never repeats a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl BrokerErrorBody {
    /// A body with `error` and no description.
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            error_description: None,
        }
    }

    /// The same body with a (fixed, secret-free) description.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.error_description = Some(description.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn secret_response_round_trips_and_never_debug_prints_values() {
        let mut data = SecretData::new();
        data.insert("username", SecretString::from("app"));
        data.insert("password", SecretString::from("pw-that-must-not-print"));
        let response = SecretResponse::new(
            "apps/db-consumer/config",
            3,
            data,
            at("2026-12-01T10:00:00Z"),
            60,
        );
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(json["path"], "apps/db-consumer/config");
        assert_eq!(json["version"], 3);
        assert_eq!(json["data"]["password"], "pw-that-must-not-print");
        assert_eq!(json["fetched_at"], "2026-12-01T10:00:00Z");
        assert_eq!(json["max_age_seconds"], 60);
        let back: SecretResponse = serde_json::from_value(json).unwrap();
        assert_eq!(back, response);
        let debug = format!("{response:?}");
        assert!(!debug.contains("pw-that-must-not-print"), "{debug}");
        assert!(debug.contains("password"), "{debug}");
    }

    #[test]
    fn database_creds_round_trip_with_kind_and_redacted_debug() {
        let text = r#"{"role":"db-consumer","kind":"dynamic","username":"v-abc",
            "password":"db-pw-secret","issued_at":"2026-12-01T10:00:00Z",
            "expires_at":"2026-12-01T11:00:00Z","refresh_at":"2026-12-01T10:40:00Z"}"#;
        let creds: DatabaseCredsResponse = serde_json::from_str(text).unwrap();
        assert_eq!(creds.kind, CredentialKind::Dynamic);
        assert_eq!(creds.password.expose(), "db-pw-secret");
        assert!(!format!("{creds:?}").contains("db-pw-secret"));
        let json = serde_json::to_value(&creds).unwrap();
        assert_eq!(json["password"], "db-pw-secret");
        assert_eq!(json["kind"], "dynamic");
        let stat: CredentialKind = serde_json::from_str("\"static\"").unwrap();
        assert_eq!(stat, CredentialKind::Static);
        assert_eq!(stat.as_str(), "static");
    }

    #[test]
    fn non_string_secret_values_are_refused() {
        let err = serde_json::from_str::<SecretData>(r#"{"port":5432}"#);
        assert!(err.is_err());
    }

    #[test]
    fn error_body_omits_an_absent_description() {
        let body = BrokerErrorBody::new(error_codes::ACCESS_DENIED);
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":"access_denied"}"#
        );
    }
}
