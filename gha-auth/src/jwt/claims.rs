//! The claims of an RFC 9068 access token.

use std::fmt;

use chrono::TimeDelta;
use serde::de::{self, DeserializeOwned, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{JwtError, new_jti};

/// The `aud` claim: one audience or several. A single audience is written as a plain string, as
/// most verifiers expect.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audience(Vec<String>);

impl Audience {
    /// Whether `audience` is one of them.
    pub fn contains(&self, audience: &str) -> bool {
        self.0.iter().any(|a| a == audience)
    }

    /// The audiences, in token order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether there is none (such a token is never issued or accepted).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Audience {
    fn from(audience: String) -> Self {
        Self(vec![audience])
    }
}

impl From<&str> for Audience {
    fn from(audience: &str) -> Self {
        Self(vec![audience.to_owned()])
    }
}

impl From<Vec<String>> for Audience {
    fn from(audiences: Vec<String>) -> Self {
        Self(audiences)
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => serializer.serialize_str(one),
            many => many.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AudienceVisitor;

        impl<'de> Visitor<'de> for AudienceVisitor {
            type Value = Audience;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Audience, E> {
                Ok(Audience(vec![value.to_owned()]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Audience, A::Error> {
                let mut audiences = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
                while let Some(audience) = seq.next_element::<String>()? {
                    audiences.push(audience);
                }
                Ok(Audience(audiences))
            }
        }

        deserializer.deserialize_any(AudienceVisitor)
    }
}

/// The claims of an access token (RFC 9068 §2.2), plus `roles`, `tenant`, `act` (RFC 8693) and
/// any custom claims in `extra`.
///
/// Times are JWT NumericDates: seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: the authority's URL.
    pub iss: String,
    /// Subject: the user, or the client for `client_credentials`.
    pub sub: String,
    /// Audience: the API(s) the token is for.
    pub aud: Audience,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Unique token id, for revocation.
    pub jti: String,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// Granted scopes, space-separated (RFC 6749 §3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Roles of the subject.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The GHA customer the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The acting party of a token exchange (RFC 8693 §4.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<serde_json::Value>,
    /// Every other claim, for typed custom claims ([`AccessClaims::extra_as`]).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl AccessClaims {
    /// Claims issued at `issued_at` (Unix seconds) that live for `lifetime`, with a fresh `jti`,
    /// `nbf = iat` and no scope, roles or tenant yet.
    pub fn new(
        issuer: impl Into<String>,
        subject: impl Into<String>,
        audience: impl Into<Audience>,
        client_id: impl Into<String>,
        issued_at: i64,
        lifetime: TimeDelta,
    ) -> Result<Self, JwtError> {
        Ok(Self {
            iss: issuer.into(),
            sub: subject.into(),
            aud: audience.into(),
            exp: issued_at.saturating_add(lifetime.num_seconds()),
            iat: issued_at,
            nbf: Some(issued_at),
            jti: new_jti()?,
            client_id: client_id.into(),
            scope: None,
            roles: Vec::new(),
            tenant: None,
            act: None,
            extra: serde_json::Map::new(),
        })
    }

    /// Sets `scope` from individual scopes (none clears it).
    #[must_use]
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let joined = scopes
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .collect::<Vec<_>>()
            .join(" ");
        self.scope = (!joined.is_empty()).then_some(joined);
        self
    }

    /// The granted scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
    }

    /// Whether `scope` was granted (exact match).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// Whether the subject has `role` (exact match).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The custom claims read as `T`.
    pub fn extra_as<T: DeserializeOwned>(&self) -> Result<T, JwtError> {
        T::deserialize(serde_json::Value::Object(self.extra.clone()))
            .map_err(|_| JwtError::InvalidClaims)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims() -> AccessClaims {
        AccessClaims::new(
            "https://auth.gha.test",
            "user-1",
            "field-service.api",
            "mfs-app",
            1_000,
            TimeDelta::minutes(10),
        )
        .unwrap()
    }

    #[test]
    fn single_audience_serializes_as_a_string() {
        let one = serde_json::to_value(claims()).unwrap();
        assert_eq!(one["aud"], "field-service.api");
        let mut many = claims();
        many.aud = vec!["a".to_owned(), "b".to_owned()].into();
        assert_eq!(
            serde_json::to_value(&many).unwrap()["aud"],
            json!(["a", "b"])
        );
        let back: AccessClaims =
            serde_json::from_value(serde_json::to_value(&many).unwrap()).unwrap();
        assert_eq!(back, many);
        assert!(serde_json::from_value::<Audience>(json!(5)).is_err());
        assert!(serde_json::from_value::<Audience>(json!(["a", 5])).is_err());
    }

    #[test]
    fn new_fills_the_rfc9068_claims() {
        let c = claims();
        assert_eq!((c.iat, c.nbf, c.exp), (1_000, Some(1_000), 1_600));
        assert_eq!(c.jti.len(), 22);
        assert_ne!(c.jti, claims().jti);
        let json = serde_json::to_value(&c).unwrap();
        for absent in ["scope", "roles", "tenant", "act"] {
            assert!(json.get(absent).is_none(), "{absent}");
        }
    }

    #[test]
    fn scopes_roles_and_custom_claims() {
        let mut c = claims().with_scopes(["orders.read", "orders.write"]);
        assert_eq!(c.scope.as_deref(), Some("orders.read orders.write"));
        assert!(c.has_scope("orders.read"));
        assert!(!c.has_scope("orders"));
        c.scope = Some("  a  b ".into());
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["a", "b"]);
        assert!(claims().with_scopes(Vec::<String>::new()).scope.is_none());
        c.roles = vec!["dispatcher".into()];
        assert!(c.has_role("dispatcher"));
        assert!(!c.has_role("admin"));

        #[derive(Deserialize, PartialEq, Debug)]
        struct Custom {
            branch: String,
        }
        c.extra.insert("branch".into(), json!("north"));
        assert_eq!(
            c.extra_as::<Custom>().unwrap(),
            Custom {
                branch: "north".into()
            }
        );
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["branch"], "north");
        let back: AccessClaims = serde_json::from_value(json).unwrap();
        assert_eq!(back.extra.get("branch"), Some(&json!("north")));
        assert!(!back.extra.contains_key("iss"));
    }
}
