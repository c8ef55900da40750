//! Who is calling: a verified access token, or the legacy link key of an integration.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The scopes a principal holds, as a set of scope tokens.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Scopes(Arc<[Box<str>]>);

impl Scopes {
    /// Scopes from an RFC 6749 §3.3 space-delimited list; duplicates and empty items dropped.
    pub fn from_space_delimited(list: &str) -> Self {
        Self::from_iter(list.split(' '))
    }

    /// Whether `scope` is held.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|held| &**held == scope)
    }

    /// The scope tokens.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| &**s)
    }

    /// How many scopes are held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no scope is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<S: AsRef<str>> FromIterator<S> for Scopes {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut scopes: Vec<Box<str>> = Vec::new();
        for scope in iter {
            let scope = scope.as_ref();
            if !scope.is_empty() && !scopes.iter().any(|s| &**s == scope) {
                scopes.push(scope.into());
            }
        }
        Self(scopes.into())
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The authenticated caller, put in the request by [`crate::AuthLayer`].
///
/// Extract it in a handler with `principal: Principal` (401 when the route allowed anonymous
/// access and nobody authenticated), or `OptionalPrincipal` / `Option<Principal>`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Principal {
    /// A caller with a verified access token.
    Token(TokenPrincipal),
    /// A legacy integration that presented one of its currently valid link keys.
    LinkKey(LinkKeyPrincipal),
}

impl Principal {
    /// The subject: the token's `sub`, or `link-key:<name>` for a link key.
    pub fn subject(&self) -> &str {
        match self {
            Principal::Token(token) => &token.0.subject,
            Principal::LinkKey(link) => &link.0.subject,
        }
    }

    /// The GHA customer this caller acts for, if any.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Principal::Token(token) => token.0.tenant.as_deref(),
            Principal::LinkKey(link) => link.0.tenant.as_deref(),
        }
    }

    /// The scopes held.
    pub fn scopes(&self) -> &Scopes {
        match self {
            Principal::Token(token) => &token.0.scopes,
            Principal::LinkKey(link) => &link.0.scopes,
        }
    }

    /// The roles held.
    pub fn roles(&self) -> &[String] {
        match self {
            Principal::Token(token) => &token.0.roles,
            Principal::LinkKey(link) => &link.0.roles,
        }
    }

    /// Whether `scope` is held.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().contains(scope)
    }

    /// Whether `role` is held.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles().iter().any(|held| held == role)
    }

    /// The OAuth client the token was issued to (`client_id`); `None` for a link key.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Principal::Token(token) => token.0.client_id.as_deref(),
            Principal::LinkKey(_) => None,
        }
    }

    /// The token, if this caller presented one.
    pub fn as_token(&self) -> Option<&TokenPrincipal> {
        match self {
            Principal::Token(token) => Some(token),
            Principal::LinkKey(_) => None,
        }
    }

    /// The link key, if this caller presented one.
    pub fn as_link_key(&self) -> Option<&LinkKeyPrincipal> {
        match self {
            Principal::LinkKey(link) => Some(link),
            Principal::Token(_) => None,
        }
    }

    /// Checks a [`crate::Requirement`] in a handler: `principal.require(&Requirement::scope("x"))?`.
    pub fn require(&self, requirement: &crate::Requirement) -> Result<(), crate::AuthError> {
        requirement.check(self)
    }

    /// Shorthand for `require(&Requirement::scope(scope))`: 403 `insufficient_scope` if missing.
    pub fn require_scope(&self, scope: &str) -> Result<(), crate::AuthError> {
        crate::Requirement::scope(scope).check(self)
    }
}

/// A caller authenticated by a verified access token.
#[derive(Clone)]
pub struct TokenPrincipal(pub(crate) Arc<VerifiedToken>);

impl TokenPrincipal {
    /// `sub`.
    pub fn subject(&self) -> &str {
        &self.0.subject
    }

    /// `jti`, if the token has one.
    pub fn token_id(&self) -> Option<&str> {
        self.0.jti.as_deref()
    }

    /// `exp`.
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.0.expires_at, 0).unwrap_or_default()
    }

    /// `iat`, if present.
    pub fn issued_at(&self) -> Option<DateTime<Utc>> {
        self.0
            .issued_at
            .and_then(|iat| DateTime::from_timestamp(iat, 0))
    }

    /// The key id (`kid`) of the key that signed the token.
    pub fn key_id(&self) -> &str {
        &self.0.kid
    }

    /// The verified claims as JSON text, for claims this crate does not model.
    pub fn claims_json(&self) -> &str {
        &self.0.payload
    }

    /// The verified claims deserialized into `T` (e.g. `gha_auth::jwt::AccessClaims` or your own
    /// struct with custom claims).
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0.payload)
    }
}

impl fmt::Debug for TokenPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token itself is never held here; claims are not secret but stay out of Debug to
        // keep logs small.
        f.debug_struct("TokenPrincipal")
            .field("sub", &self.0.subject)
            .field("client_id", &self.0.client_id)
            .field("tenant", &self.0.tenant)
            .field("scopes", &self.0.scopes)
            .field("roles", &self.0.roles)
            .field("jti", &self.0.jti)
            .field("exp", &self.0.expires_at)
            .field("kid", &self.0.kid)
            .finish()
    }
}

/// A legacy integration authenticated by one of its link keys (`x-api-key`).
#[derive(Clone, Debug)]
pub struct LinkKeyPrincipal(pub(crate) Arc<LinkKeyIdentity>);

impl LinkKeyPrincipal {
    /// The integration's name (e.g. `epicor`).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The id of the link key that matched (not the key).
    pub fn key_id(&self) -> &str {
        &self.0.key_id
    }
}

/// What a link key maps to: set by configuration, not by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkKeyIdentity {
    pub(crate) name: Arc<str>,
    pub(crate) key_id: Arc<str>,
    pub(crate) subject: String,
    pub(crate) tenant: Option<String>,
    pub(crate) scopes: Scopes,
    pub(crate) roles: Vec<String>,
}

/// A token whose signature and claims were verified; what the verified-token cache holds.
#[derive(Debug)]
pub(crate) struct VerifiedToken {
    pub(crate) subject: String,
    pub(crate) client_id: Option<String>,
    pub(crate) tenant: Option<String>,
    pub(crate) scopes: Scopes,
    pub(crate) roles: Vec<String>,
    pub(crate) jti: Option<String>,
    /// The `jti`s of the tokens this one was derived from by token exchange (`derived_from`):
    /// it is revoked with any of them.
    pub(crate) derived_from: Vec<String>,
    pub(crate) issued_at: Option<i64>,
    pub(crate) expires_at: i64,
    pub(crate) kid: Arc<str>,
    /// The claims JSON, for [`crate::Claims`].
    pub(crate) payload: Box<str>,
    /// The revocation generation this token was last checked against.
    pub(crate) checked_generation: AtomicU64,
}

impl VerifiedToken {
    /// Builds the principal data from the verified claims JSON.
    pub(crate) fn from_payload(
        payload: Box<str>,
        kid: Arc<str>,
        generation: u64,
    ) -> Result<Self, serde_json::Error> {
        let claims: PrincipalClaims = serde_json::from_str(&payload)?;
        let mut scopes: Vec<String> = claims
            .scope
            .as_deref()
            .map(|s| s.split(' ').map(str::to_owned).collect())
            .unwrap_or_default();
        match claims.scp {
            Some(StringOrList::One(list)) => scopes.extend(list.split(' ').map(str::to_owned)),
            Some(StringOrList::Many(list)) => scopes.extend(list),
            None => {}
        }
        let roles = match claims.roles {
            Some(StringOrList::One(role)) => vec![role],
            Some(StringOrList::Many(roles)) => roles,
            None => Vec::new(),
        };
        Ok(Self {
            subject: claims.sub,
            client_id: claims.client_id,
            tenant: claims.tenant,
            scopes: scopes.iter().collect(),
            roles,
            jti: claims.jti,
            derived_from: claims.derived_from,
            issued_at: claims.iat,
            expires_at: claims.exp,
            kid,
            payload,
            checked_generation: AtomicU64::new(generation),
        })
    }

    pub(crate) fn checked_generation(&self) -> u64 {
        self.checked_generation.load(Ordering::Acquire)
    }

    pub(crate) fn set_checked_generation(&self, generation: u64) {
        self.checked_generation.store(generation, Ordering::Release);
    }
}

/// The claims the principal is built from. The core verifier has already checked them; this
/// only reads them.
#[derive(Deserialize)]
struct PrincipalClaims {
    sub: String,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    derived_from: Vec<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    /// The claim name .NET clients use for delegated scopes.
    #[serde(default)]
    scp: Option<StringOrList>,
    #[serde(default)]
    roles: Option<StringOrList>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_space_delimited_and_dedupe() {
        let scopes = Scopes::from_space_delimited("jobs:read  jobs:write jobs:read");
        assert_eq!(
            scopes.iter().collect::<Vec<_>>(),
            ["jobs:read", "jobs:write"]
        );
        assert!(scopes.contains("jobs:write"));
        assert!(!scopes.contains("jobs"));
        assert!(Scopes::from_space_delimited("").is_empty());
    }

    #[test]
    fn principal_reads_scope_scp_and_roles() {
        let payload = r#"{"sub":"u1","exp":100,"iat":50,"scope":"a b","scp":["c"],"roles":"admin","tenant":"acme","client_id":"mfs","jti":"j1"}"#;
        let token = VerifiedToken::from_payload(payload.into(), "k1".into(), 0).unwrap();
        let principal = Principal::Token(TokenPrincipal(Arc::new(token)));
        assert!(principal.has_scope("a") && principal.has_scope("b") && principal.has_scope("c"));
        assert!(principal.has_role("admin"));
        assert_eq!(principal.tenant(), Some("acme"));
        assert_eq!(principal.client_id(), Some("mfs"));
        assert_eq!(principal.subject(), "u1");
        let token = principal.as_token().unwrap();
        assert_eq!(token.token_id(), Some("j1"));
        assert_eq!(token.expires_at().timestamp(), 100);
        assert_eq!(token.issued_at().map(|t| t.timestamp()), Some(50));
        assert_eq!(token.key_id(), "k1");
    }
}
