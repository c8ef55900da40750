//! `private_key_jwt` client assertions (RFC 7523 §3, RFC 7521 §4.2).
//!
//! The key is the client's registered public key, and its algorithm is the only one accepted;
//! nothing in the assertion header can choose a key or an algorithm. Claims are read only after
//! the signature has verified. `exp` is required and must be near (at most
//! `tokens.client_assertion_max_lifetime` ahead), and `jti` is recorded until the assertion
//! expires so it cannot be replayed.
//!
//! Before any client is looked up, [`precheck`] reads the claims unverified for the mistakes a
//! client can fix (audience, lifetime, times, `jti`): those are told in `error_description`,
//! and since they are found without knowing whether the client exists, telling them reveals
//! nothing about it. Everything else stays a bare `invalid_client`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gha_auth::jwt::Audience;
use gha_auth::keys::VerifyingKey;
use serde::Deserialize;

/// The one `client_assertion_type` of RFC 7523.
pub(crate) const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest accepted assertion, in bytes.
const MAX_ASSERTION_BYTES: usize = 8 * 1024;

/// Longest accepted `jti`.
const MAX_JTI_LEN: usize = 256;

/// Why an assertion was refused: for the audit log, and for the client when it can fix it
/// ([`AssertionError::description`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum AssertionError {
    /// Not a compact JWS of acceptable size and shape.
    Malformed,
    /// The header names another algorithm than the key's, or has `crit`.
    BadHeader,
    /// The signature does not verify with the registered key.
    BadSignature,
    /// `iss` and `sub` are not both the client id.
    WrongSubject,
    /// `aud` names none of this server's client-authenticating endpoints nor its issuer.
    WrongAudience,
    /// `exp` is missing or passed.
    Expired,
    /// `exp` is further ahead than allowed.
    TooLongLived,
    /// `nbf` or `iat` is in the future.
    NotYetValid,
    /// `jti` is missing or too long.
    BadJti,
}

impl AssertionError {
    /// A stable reason for the audit log.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            AssertionError::Malformed => "assertion_malformed",
            AssertionError::BadHeader => "assertion_bad_header",
            AssertionError::BadSignature => "assertion_bad_signature",
            AssertionError::WrongSubject => "assertion_wrong_subject",
            AssertionError::WrongAudience => "assertion_wrong_audience",
            AssertionError::Expired => "assertion_expired",
            AssertionError::TooLongLived => "assertion_too_long_lived",
            AssertionError::NotYetValid => "assertion_not_yet_valid",
            AssertionError::BadJti => "assertion_bad_jti",
        }
    }

    /// What to tell the client, for a mistake it can fix that [`precheck`] finds; `None` for
    /// the rest, which get a bare `invalid_client`.
    pub(crate) fn description(self) -> Option<&'static str> {
        match self {
            AssertionError::WrongSubject => {
                Some("the client assertion's iss and sub must both be the client id")
            }
            AssertionError::WrongAudience => Some(
                "the client assertion's aud must name this server's issuer or the URL of the \
                 endpoint it is sent to",
            ),
            AssertionError::Expired => Some("the client assertion has expired or has no exp"),
            AssertionError::TooLongLived => Some(
                "the client assertion's exp is further ahead than this server accepts \
                 (tokens.client_assertion_max_lifetime)",
            ),
            AssertionError::NotYetValid => {
                Some("the client assertion's nbf or iat is in the future")
            }
            AssertionError::BadJti => {
                Some("the client assertion needs a jti of at most 256 characters")
            }
            AssertionError::Malformed
            | AssertionError::BadHeader
            | AssertionError::BadSignature => None,
        }
    }
}

/// What an accepted assertion says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerifiedAssertion {
    /// Its unique id, to record against replay.
    pub(crate) jti: String,
    /// Its expiry (Unix seconds).
    pub(crate) exp: i64,
}

/// The rules an assertion must meet.
#[derive(Debug, Clone)]
pub(crate) struct AssertionRules<'a> {
    /// The client id `iss` and `sub` must equal.
    pub(crate) client_id: &'a str,
    /// Accepted `aud` values: the issuer and the URLs of the endpoints that authenticate clients
    /// (token, introspection, revocation).
    pub(crate) audiences: &'a [&'a str],
    /// Now (Unix seconds).
    pub(crate) now: i64,
    /// Clock leeway (seconds).
    pub(crate) leeway: i64,
    /// Longest `exp - now` accepted (seconds).
    pub(crate) max_lifetime: i64,
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
}

struct Parts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    signing_input: &'a str,
}

fn split(assertion: &str) -> Result<Parts<'_>, AssertionError> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(AssertionError::Malformed);
    }
    let mut segments = assertion.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(AssertionError::Malformed);
    };
    let signing_input = &assertion[..header.len() + 1 + payload.len()];
    Ok(Parts {
        header,
        payload,
        signature,
        signing_input,
    })
}

fn decode(segment: &str) -> Result<Vec<u8>, AssertionError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| AssertionError::Malformed)
}

fn json_object<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, AssertionError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => serde_json::from_slice(bytes).map_err(|_| AssertionError::Malformed),
        _ => Err(AssertionError::Malformed),
    }
}

/// The `sub` an assertion claims, read **without** verification: only to find which client's
/// key to verify it with, when the request has no `client_id`.
pub(crate) fn claimed_subject(assertion: &str) -> Option<String> {
    let parts = split(assertion).ok()?;
    let payload = decode(parts.payload).ok()?;
    let claims: Claims = json_object(&payload).ok()?;
    claims.sub
}

/// Verifies `assertion` with `key` under `rules`. Does not record the `jti`: the caller does,
/// so replay is checked against the shared store.
pub(crate) fn verify(
    assertion: &str,
    key: &VerifyingKey,
    rules: &AssertionRules<'_>,
) -> Result<VerifiedAssertion, AssertionError> {
    let parts = split(assertion)?;
    let header: Header = json_object(&decode(parts.header)?)?;
    if header.crit.is_some() || header.alg.as_deref() != Some(key.algorithm().name()) {
        return Err(AssertionError::BadHeader);
    }
    let signature = decode(parts.signature)?;
    if !key.verify_signature(parts.signing_input.as_bytes(), &signature) {
        return Err(AssertionError::BadSignature);
    }
    let claims: Claims = json_object(&decode(parts.payload)?)?;
    check_claims(claims, rules)
}

/// The claim checks of [`verify`], on the claims read **without** verification, for the
/// mistakes a client can fix; run before the client is looked up.
pub(crate) fn precheck(assertion: &str, rules: &AssertionRules<'_>) -> Result<(), AssertionError> {
    let parts = split(assertion)?;
    let claims: Claims = json_object(&decode(parts.payload)?)?;
    check_claims(claims, rules).map(|_| ())
}

fn check_claims(
    claims: Claims,
    rules: &AssertionRules<'_>,
) -> Result<VerifiedAssertion, AssertionError> {
    let is_client = |v: &Option<String>| v.as_deref() == Some(rules.client_id);
    if !is_client(&claims.iss) || !is_client(&claims.sub) {
        return Err(AssertionError::WrongSubject);
    }
    let audience_ok = claims.aud.as_ref().is_some_and(|aud| {
        rules
            .audiences
            .iter()
            .any(|expected| aud.contains(expected))
    });
    if !audience_ok {
        return Err(AssertionError::WrongAudience);
    }
    let exp = claims.exp.ok_or(AssertionError::Expired)?;
    if exp.saturating_add(rules.leeway) <= rules.now {
        return Err(AssertionError::Expired);
    }
    if exp.saturating_sub(rules.now) > rules.max_lifetime.saturating_add(rules.leeway) {
        return Err(AssertionError::TooLongLived);
    }
    let future = |t: Option<i64>| t.is_some_and(|t| t > rules.now.saturating_add(rules.leeway));
    if future(claims.nbf) || future(claims.iat) {
        return Err(AssertionError::NotYetValid);
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
        .ok_or(AssertionError::BadJti)?;
    Ok(VerifiedAssertion { jti, exp })
}

#[cfg(test)]
mod tests {
    use gha_auth::jwt::encode_jws;
    use gha_auth::keys::{Algorithm, SigningKey};
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_700_000_000;
    const TOKEN_URL: &str = "https://auth.example/oauth2/token";

    fn rules() -> AssertionRules<'static> {
        AssertionRules {
            client_id: "svc",
            audiences: &[TOKEN_URL, "https://auth.example"],
            now: NOW,
            leeway: 60,
            max_lifetime: 300,
        }
    }

    fn good_claims() -> serde_json::Value {
        json!({"iss": "svc", "sub": "svc", "aud": TOKEN_URL, "exp": NOW + 120, "iat": NOW, "jti": "j-1"})
    }

    fn sign(key: &SigningKey, claims: &serde_json::Value) -> String {
        encode_jws(key, "JWT", claims).unwrap()
    }

    #[test]
    fn accepts_a_good_assertion_for_every_algorithm() {
        for alg in Algorithm::ALL {
            let key = SigningKey::generate(alg).unwrap();
            let assertion = sign(&key, &good_claims());
            assert_eq!(claimed_subject(&assertion).as_deref(), Some("svc"));
            let verified = verify(&assertion, &key.verifying_key(), &rules()).unwrap();
            assert_eq!(
                verified,
                VerifiedAssertion {
                    jti: "j-1".into(),
                    exp: NOW + 120
                }
            );
        }
    }

    #[test]
    fn issuer_as_audience_and_audience_arrays_are_accepted() {
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        let mut claims = good_claims();
        claims["aud"] = json!(["other", "https://auth.example"]);
        assert!(verify(&sign(&key, &claims), &key.verifying_key(), &rules()).is_ok());
    }

    #[test]
    fn refuses_each_broken_rule() {
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        let other = SigningKey::generate(Algorithm::ES256).unwrap();
        let with = |field: &str, value: serde_json::Value| {
            let mut claims = good_claims();
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(field);
            } else {
                claims[field] = value;
            }
            sign(&key, &claims)
        };
        let cases = [
            (sign(&other, &good_claims()), AssertionError::BadSignature),
            (with("iss", json!("evil")), AssertionError::WrongSubject),
            (with("sub", json!("evil")), AssertionError::WrongSubject),
            (
                with("aud", json!("https://elsewhere")),
                AssertionError::WrongAudience,
            ),
            (
                with("aud", serde_json::Value::Null),
                AssertionError::WrongAudience,
            ),
            (
                with("exp", serde_json::Value::Null),
                AssertionError::Expired,
            ),
            (with("exp", json!(NOW - 61)), AssertionError::Expired),
            (with("exp", json!(NOW + 3600)), AssertionError::TooLongLived),
            (with("nbf", json!(NOW + 600)), AssertionError::NotYetValid),
            (with("iat", json!(NOW + 600)), AssertionError::NotYetValid),
            (with("jti", serde_json::Value::Null), AssertionError::BadJti),
            (with("jti", json!("x".repeat(300))), AssertionError::BadJti),
            ("a.b".to_owned(), AssertionError::Malformed),
            ("!!.!!.!!".to_owned(), AssertionError::Malformed),
            ("x".repeat(9000), AssertionError::Malformed),
        ];
        for (assertion, expected) in cases {
            assert_eq!(
                verify(&assertion, &key.verifying_key(), &rules()),
                Err(expected),
                "{expected:?}"
            );
        }
    }

    #[test]
    fn the_algorithm_comes_from_the_key() {
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        let good = sign(&key, &good_claims());
        let (_, rest) = good.split_once('.').unwrap();
        for header in [
            json!({"alg": "none"}),
            json!({"alg": "HS256"}),
            json!({"alg": "RS256"}),
            json!({"alg": "ES256", "crit": ["x"]}),
        ] {
            let forged = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()));
            assert_eq!(
                verify(&forged, &key.verifying_key(), &rules()),
                Err(AssertionError::BadHeader)
            );
        }
        // r = s = 0 (CVE-2022-21449)
        let (signing_input, _) = good.rsplit_once('.').unwrap();
        let zero = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode([0u8; 64]));
        assert_eq!(
            verify(&zero, &key.verifying_key(), &rules()),
            Err(AssertionError::BadSignature)
        );
    }
}
