//! The client model: identifiers, grants, and what a registered client may do.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use gha_auth::apikey::{ApiKey, KeyedHash, Pepper};
use serde::Serialize;

use super::ClientError;
use super::store::ClientRow;

/// Longest client id.
pub(crate) const MAX_CLIENT_ID_LEN: usize = 128;

/// Whether `id` is an acceptable client id: 1–128 of `A-Z a-z 0-9 . _ ~ -`. The restriction
/// keeps ids safe in URLs, logs and HTTP Basic credentials.
pub(crate) fn is_valid_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLIENT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

/// Whether `scope` is a valid RFC 6749 §3.3 scope token.
pub(crate) fn is_valid_scope(scope: &str) -> bool {
    !scope.is_empty()
        && scope.len() <= 128
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Whether `audience` is acceptable: printable ASCII without spaces, at most 256 bytes.
pub(crate) fn is_valid_audience(audience: &str) -> bool {
    !audience.is_empty() && audience.len() <= 256 && audience.bytes().all(|b| b.is_ascii_graphic())
}

/// An OAuth grant type a client may be allowed. Serialized as its wire value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GrantType {
    /// `client_credentials` (RFC 6749 §4.4).
    ClientCredentials,
    /// `password` (RFC 6749 §4.3), first-party public clients only.
    Password,
    /// `refresh_token` (RFC 6749 §6).
    RefreshToken,
    /// `urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693).
    TokenExchange,
}

impl GrantType {
    /// Every grant type.
    pub const ALL: [GrantType; 4] = [
        GrantType::ClientCredentials,
        GrantType::Password,
        GrantType::RefreshToken,
        GrantType::TokenExchange,
    ];

    /// The `grant_type` value on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::ClientCredentials => "client_credentials",
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
            GrantType::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
        }
    }

    /// The wire value, or `None` for an unknown grant.
    pub fn from_wire(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == value)
    }
}

impl Serialize for GrantType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for GrantType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_wire(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown grant type {text:?}")))
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GrantType {
    type Err = ClientError;

    /// Accepts the wire value and the short name `token-exchange`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "token-exchange" | "token_exchange" => Ok(GrantType::TokenExchange),
            other => Self::from_wire(other)
                .ok_or_else(|| ClientError::Invalid(format!("unknown grant type {other:?}"))),
        }
    }
}

/// How a client proves who it is at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthMethod {
    /// A public client: no credentials (`none`).
    None,
    /// A `ghac_` secret by `client_secret_basic` or `client_secret_post`.
    ClientSecret,
    /// A signed assertion verified with the registered public key (RFC 7523).
    PrivateKeyJwt,
}

impl AuthMethod {
    /// The name the JSON output and the documentation use.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::ClientSecret => "client_secret",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// A registered client. Holds keyed hashes of its secrets, never the secrets.
#[derive(Clone, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Client {
    /// Client id.
    pub id: String,
    /// The GHA customer it belongs to.
    pub tenant: Option<String>,
    /// Grants it may use.
    pub grants: Vec<GrantType>,
    /// Scopes it may receive.
    pub scopes: Vec<String>,
    /// Audiences it may receive tokens for.
    pub audiences: Vec<String>,
    /// Audiences it serves as a resource server: it may introspect tokens addressed to them.
    pub resource_audiences: Vec<String>,
    /// Its own access-token lifetime in seconds, if any.
    pub token_lifetime_secs: Option<i64>,
    /// First-party (may use the password grant).
    pub first_party: bool,
    /// Public (holds no secret).
    pub public: bool,
    /// Registered public JWK for `private_key_jwt`.
    pub jwk: Option<serde_json::Value>,
    /// Disabled clients cannot authenticate.
    pub disabled: bool,
    /// How it authenticates.
    pub auth_method: AuthMethod,
    /// Whether a previous secret is still valid, and until when (Unix seconds).
    pub previous_secret_valid_until: Option<i64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    secret_hash: Option<KeyedHash>,
    #[serde(skip)]
    prev_secret: Option<(KeyedHash, i64)>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("grants", &self.grants)
            .field("scopes", &self.scopes)
            .field("audiences", &self.audiences)
            .field("resource_audiences", &self.resource_audiences)
            .field("auth_method", &self.auth_method)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// A digest of the same kind as a client's, that no presented secret is expected to match.
static NO_CLIENT_DIGEST: std::sync::LazyLock<Option<KeyedHash>> =
    std::sync::LazyLock::new(|| KeyedHash::from_hex(&"5a".repeat(32)));

/// The work of [`Client::secret_matches`] for a client id that names no client: the same keyed
/// hash and the same two constant-time comparisons, against a digest no secret has, so that an
/// unknown client is answered in the time a known one with a wrong secret is. False (short of a
/// preimage of the keyed hash).
pub(crate) fn secret_matches_no_client(pepper: &Pepper, presented: &ApiKey, now: i64) -> bool {
    let dummy = *NO_CLIENT_DIGEST;
    check_secret(dummy, dummy.map(|d| (d, now)), pepper, presented, now)
}

#[cfg(test)]
thread_local! {
    /// Secret checks done on this thread, for the tests that compare the paths' work.
    pub(crate) static SECRET_CHECKS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

fn check_secret(
    current: Option<KeyedHash>,
    previous: Option<(KeyedHash, i64)>,
    pepper: &Pepper,
    presented: &ApiKey,
    now: i64,
) -> bool {
    #[cfg(test)]
    SECRET_CHECKS.with(|count| count.set(count.get() + 1));
    let hash = pepper.hash(presented);
    let current = current.is_some_and(|h| h == hash);
    let previous = previous.is_some_and(|(h, until)| (h == hash) & (now < until));
    current | previous
}

impl Client {
    /// Whether the client may use `grant`.
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grants.contains(&grant)
    }

    /// Checks a presented secret against the current one and, until its grace period ends, the
    /// previous one. Both comparisons always run, in constant time.
    pub fn secret_matches(&self, pepper: &Pepper, presented: &ApiKey, now: i64) -> bool {
        check_secret(self.secret_hash, self.prev_secret, pepper, presented, now)
    }

    /// The lifetime of tokens issued to this client: its own, or `default`.
    pub fn token_lifetime(&self, default: TimeDelta) -> TimeDelta {
        self.token_lifetime_secs.map_or(default, TimeDelta::seconds)
    }

    pub fn from_row(row: ClientRow) -> Result<Self, ClientError> {
        let corrupt = |what: &str| ClientError::Corrupt(format!("client {:?}: {what}", row.id));
        let grants = row
            .grants
            .iter()
            .map(|g| GrantType::from_wire(g).ok_or_else(|| corrupt("unknown grant")))
            .collect::<Result<Vec<_>, _>>()?;
        let secret_hash = match &row.secret_hash {
            Some(hex) => Some(KeyedHash::from_hex(hex).ok_or_else(|| corrupt("bad secret hash"))?),
            None => None,
        };
        let prev_secret = match (&row.prev_secret_hash, row.prev_secret_expires_at) {
            (Some(hex), Some(until)) => Some((
                KeyedHash::from_hex(hex).ok_or_else(|| corrupt("bad secret hash"))?,
                until,
            )),
            _ => None,
        };
        let jwk = match &row.jwk {
            Some(text) => Some(serde_json::from_str(text).map_err(|_| corrupt("bad jwk"))?),
            None => None,
        };
        let auth_method = if row.public_client {
            AuthMethod::None
        } else if jwk.is_some() {
            AuthMethod::PrivateKeyJwt
        } else {
            AuthMethod::ClientSecret
        };
        let time = |secs: i64| DateTime::from_timestamp(secs, 0).unwrap_or_default();
        Ok(Self {
            previous_secret_valid_until: prev_secret.map(|(_, until)| until),
            id: row.id,
            tenant: row.tenant,
            grants,
            scopes: row.scopes,
            audiences: row.audiences,
            resource_audiences: row.resource_audiences,
            token_lifetime_secs: row.token_lifetime_secs,
            first_party: row.first_party,
            public: row.public_client,
            jwk,
            disabled: row.disabled,
            auth_method,
            created_at: time(row.created_at),
            updated_at: time(row.updated_at),
            secret_hash,
            prev_secret,
        })
    }
}
