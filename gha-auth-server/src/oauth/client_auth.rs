//! Client authentication at the token endpoint (RFC 6749 §2.3, RFC 7523 §2.2).
//!
//! Exactly one method per request: HTTP Basic (`client_secret_basic`), `client_secret` in the
//! body (`client_secret_post`), a signed assertion (`private_key_jwt`), or none (a public client
//! naming itself with `client_id`). Every failure is the same `invalid_client` to the client;
//! the audit log records the real reason (never the credential).

use std::fmt;
use std::net::SocketAddr;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gha_auth::SecretString;
use gha_auth::apikey::{ApiKey, SecretKind};

use super::assertion::{self, AssertionError, AssertionRules, JWT_BEARER_ASSERTION_TYPE};
use super::{OAuthError, TokenForm};
use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::clients::record_assertion_jti;
use crate::clients::{AuthMethod, Client, client_key_from_json, is_valid_client_id};
use crate::oauth::OAuth;

/// How the client presented itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum PresentedMethod {
    /// `client_secret_basic`.
    Basic,
    /// `client_secret_post`.
    Post,
    /// `private_key_jwt`.
    PrivateKeyJwt,
    /// No credentials, only `client_id` (public clients).
    None,
}

impl PresentedMethod {
    /// The RFC 8414 name of the method.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PresentedMethod::Basic => "client_secret_basic",
            PresentedMethod::Post => "client_secret_post",
            PresentedMethod::PrivateKeyJwt => "private_key_jwt",
            PresentedMethod::None => "none",
        }
    }
}

/// A client that proved who it is (or, for [`PresentedMethod::None`], a public client that
/// named itself: grants decide whether that is enough).
#[derive(Debug, Clone)]
pub(crate) struct AuthenticatedClient {
    /// The client.
    pub(crate) client: Client,
    /// How it authenticated.
    pub(crate) method: PresentedMethod,
}

/// The credentials found in a request, before any lookup.
enum Credentials {
    Secret {
        client_id: String,
        secret: SecretString,
        method: PresentedMethod,
    },
    Assertion {
        client_id: Option<String>,
        assertion: String,
    },
    Public {
        client_id: String,
    },
    Missing,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials([redacted])")
    }
}

/// Why authentication failed, for the audit log.
#[derive(Debug, Clone, Copy)]
enum Failure {
    NoCredentials,
    MalformedBasic,
    UnknownClient,
    Disabled,
    WrongMethod,
    MalformedSecret,
    WrongSecret,
    Assertion(AssertionError),
    Replayed,
    /// The store failed: not the client's fault, answered with `server_error`.
    Internal,
}

impl Failure {
    fn reason(self) -> &'static str {
        match self {
            Failure::NoCredentials => "no_credentials",
            Failure::MalformedBasic => "malformed_basic_header",
            Failure::UnknownClient => "unknown_client",
            Failure::Disabled => "client_disabled",
            Failure::WrongMethod => "method_not_registered",
            Failure::MalformedSecret => "malformed_secret",
            Failure::WrongSecret => "wrong_secret",
            Failure::Assertion(e) => e.reason(),
            Failure::Replayed => "assertion_replayed",
            Failure::Internal => "internal_error",
        }
    }
}

/// Authenticates the client of a token request.
pub(crate) async fn authenticate(
    state: &OAuth,
    headers: &HeaderMap,
    form: &TokenForm,
    peer: Option<SocketAddr>,
) -> Result<AuthenticatedClient, OAuthError> {
    let basic_used = has_basic(headers);
    let credentials = match extract(headers, form) {
        Ok(credentials) => credentials,
        Err(Extract::Request(e)) => return Err(e),
        Err(Extract::MalformedBasic) => {
            state.limits.check_backoff(None, peer)?;
            state.limits.authentication_failed(None, peer);
            audit_failure(
                state,
                None,
                PresentedMethod::Basic,
                Failure::MalformedBasic,
                peer,
            )
            .await;
            return Err(OAuthError::invalid_client().with_basic_challenge(true));
        }
    };
    authenticate_credentials(state, credentials, basic_used, peer).await
}

/// Authenticates a public client that names itself, as the token endpoint would (the session
/// endpoints act for their configured client this way).
pub(crate) async fn authenticate_public(
    state: &OAuth,
    client_id: &str,
    peer: Option<SocketAddr>,
) -> Result<AuthenticatedClient, OAuthError> {
    let credentials = Credentials::Public {
        client_id: client_id.to_owned(),
    };
    authenticate_credentials(state, credentials, false, peer).await
}

async fn authenticate_credentials(
    state: &OAuth,
    credentials: Credentials,
    basic_used: bool,
    peer: Option<SocketAddr>,
) -> Result<AuthenticatedClient, OAuthError> {
    // Backing off: refused before any lookup or hash, so failures cost the attacker time.
    let named = match &credentials {
        Credentials::Secret { client_id, .. } | Credentials::Public { client_id } => {
            Some(client_id.clone())
        }
        Credentials::Assertion {
            client_id,
            assertion,
        } => client_id
            .clone()
            .or_else(|| assertion::claimed_subject(assertion)),
        Credentials::Missing => None,
    };
    state.limits.check_backoff(named.as_deref(), peer)?;
    let result = match credentials {
        Credentials::Missing => Err((None, PresentedMethod::None, Failure::NoCredentials)),
        Credentials::Public { client_id } => public(state, client_id).await,
        Credentials::Secret {
            client_id,
            secret,
            method,
        } => with_secret(state, client_id, &secret, method).await,
        Credentials::Assertion {
            client_id,
            assertion,
        } => with_assertion(state, client_id, &assertion).await,
    };
    match result {
        Ok(authenticated) => {
            state
                .limits
                .authentication_succeeded(&authenticated.client.id, peer);
            Ok(authenticated)
        }
        Err((_, _, Failure::Internal)) => Err(OAuthError::server_error()),
        Err((client_id, method, failure)) => {
            state
                .limits
                .authentication_failed(client_id.as_deref().or(named.as_deref()), peer);
            audit_failure(state, client_id.as_deref(), method, failure, peer).await;
            let error = match failure {
                Failure::Assertion(e) => e.description().map_or_else(
                    OAuthError::invalid_client,
                    OAuthError::invalid_client_because,
                ),
                _ => OAuthError::invalid_client(),
            };
            Err(error.with_basic_challenge(basic_used))
        }
    }
}

type Attempt = Result<AuthenticatedClient, (Option<String>, PresentedMethod, Failure)>;

/// The client, from the short-lived cache unless `fresh`.
async fn lookup(
    state: &OAuth,
    client_id: &str,
    method: PresentedMethod,
    fresh: bool,
) -> Result<Client, (Option<String>, PresentedMethod, Failure)> {
    let fail = |failure| (Some(client_id.to_owned()), method, failure);
    if !is_valid_client_id(client_id) {
        return Err(fail(Failure::UnknownClient));
    }
    let client = match state.clients.find_for_auth(client_id, fresh).await {
        Ok(Some(client)) => client,
        Ok(None) => return Err(fail(Failure::UnknownClient)),
        Err(e) => {
            tracing::error!(error = %e, "client lookup failed");
            return Err(fail(Failure::Internal));
        }
    };
    if client.disabled {
        return Err(fail(Failure::Disabled));
    }
    Ok(client)
}

async fn public(state: &OAuth, client_id: String) -> Attempt {
    let method = PresentedMethod::None;
    let client = lookup(state, &client_id, method, false).await?;
    if client.auth_method != AuthMethod::None {
        // A confidential client must authenticate.
        return Err((Some(client_id), method, Failure::NoCredentials));
    }
    Ok(AuthenticatedClient { client, method })
}

async fn with_secret(
    state: &OAuth,
    client_id: String,
    secret: &SecretString,
    method: PresentedMethod,
) -> Attempt {
    // Checked before the lookup: a typo or a made-up secret costs no database round trip.
    let Ok(key) = ApiKey::parse_kind(secret.expose(), SecretKind::ClientSecret) else {
        return Err((Some(client_id), method, Failure::MalformedSecret));
    };
    let now = state.clock.unix_seconds();
    let pepper = state.clients.pepper();
    let mut client = lookup(state, &client_id, method, false).await?;
    if client.auth_method == AuthMethod::ClientSecret && !client.secret_matches(pepper, &key, now) {
        // The cached copy may predate a secret rotation done elsewhere: ask the store.
        client = lookup(state, &client_id, method, true).await?;
    }
    if client.auth_method != AuthMethod::ClientSecret {
        return Err((Some(client_id), method, Failure::WrongMethod));
    }
    if !client.secret_matches(pepper, &key, now) {
        return Err((Some(client_id), method, Failure::WrongSecret));
    }
    Ok(AuthenticatedClient { client, method })
}

async fn with_assertion(state: &OAuth, client_id: Option<String>, token: &str) -> Attempt {
    let method = PresentedMethod::PrivateKeyJwt;
    let Some(client_id) = client_id.or_else(|| assertion::claimed_subject(token)) else {
        return Err((None, method, Failure::Assertion(AssertionError::Malformed)));
    };
    let leeway = state.keys.schedule().leeway.num_seconds();
    let audiences = [
        state.issuer.as_str(),
        state.token_endpoint.as_str(),
        state.introspection_endpoint.as_str(),
        state.revocation_endpoint.as_str(),
    ];
    let rules = AssertionRules {
        client_id: &client_id,
        audiences: &audiences,
        now: state.clock.unix_seconds(),
        leeway,
        max_lifetime: state.tokens.client_assertion_max_lifetime.as_secs(),
    };
    // The mistakes a client can fix are found before the lookup, so saying which reveals
    // nothing about whether the client exists.
    if let Err(e) = assertion::precheck(token, &rules) {
        return Err((Some(client_id.clone()), method, Failure::Assertion(e)));
    }
    let client = lookup(state, &client_id, method, false).await?;
    let key = match (&client.auth_method, &client.jwk) {
        (AuthMethod::PrivateKeyJwt, Some(jwk)) => match client_key_from_json(jwk) {
            Ok(key) => key,
            Err(e) => {
                tracing::error!(client_id = %client.id, error = %e, "registered JWK is unusable");
                return Err((Some(client_id), method, Failure::WrongMethod));
            }
        },
        _ => return Err((Some(client_id), method, Failure::WrongMethod)),
    };
    let verified = assertion::verify(token, &key, &rules)
        .map_err(|e| (Some(client_id.clone()), method, Failure::Assertion(e)))?;
    match record_assertion_jti(
        &state.store,
        &client.id,
        &verified.jti,
        verified.exp + leeway,
    )
    .await
    {
        Ok(true) => Ok(AuthenticatedClient { client, method }),
        Ok(false) => {
            state
                .audit
                .record_or_log(
                    AuditEvent::new(
                        AuditKind::AssertionReplayed,
                        &client_id,
                        &client_id,
                        Outcome::Failure,
                    )
                    .detail("jti", verified.jti.as_str()),
                )
                .await;
            Err((Some(client_id), method, Failure::Replayed))
        }
        Err(e) => {
            tracing::error!(error = %e, "could not record assertion jti");
            Err((Some(client_id), method, Failure::Internal))
        }
    }
}

enum Extract {
    Request(OAuthError),
    MalformedBasic,
}

fn has_basic(headers: &HeaderMap) -> bool {
    headers.get_all(AUTHORIZATION).iter().any(|v| {
        v.to_str()
            .ok()
            .and_then(|s| s.get(..6))
            .is_some_and(|p| p.eq_ignore_ascii_case("basic "))
    })
}

fn extract(headers: &HeaderMap, form: &TokenForm) -> Result<Credentials, Extract> {
    let basic = if has_basic(headers) {
        Some(parse_basic(headers)?)
    } else {
        None
    };
    let body_secret = form.get("client_secret");
    let assertion = form.get("client_assertion");
    let assertion_type = form.get("client_assertion_type");
    let body_id = form.get("client_id");

    let presented = [
        basic.is_some(),
        body_secret.is_some(),
        assertion.is_some() || assertion_type.is_some(),
    ];
    if presented.iter().filter(|p| **p).count() > 1 {
        return Err(Extract::Request(OAuthError::invalid_request(
            "use exactly one client authentication method",
        )));
    }
    if let Some((id, secret)) = basic {
        if body_id.is_some_and(|b| b != id) {
            return Err(Extract::Request(OAuthError::invalid_request(
                "client_id does not match the Authorization header",
            )));
        }
        return Ok(Credentials::Secret {
            client_id: id,
            secret,
            method: PresentedMethod::Basic,
        });
    }
    if let Some(secret) = body_secret {
        let Some(id) = body_id else {
            return Err(Extract::Request(OAuthError::invalid_request(
                "client_secret requires client_id",
            )));
        };
        return Ok(Credentials::Secret {
            client_id: id.to_owned(),
            secret: SecretString::from(secret),
            method: PresentedMethod::Post,
        });
    }
    if assertion.is_some() || assertion_type.is_some() {
        if assertion_type != Some(JWT_BEARER_ASSERTION_TYPE) {
            return Err(Extract::Request(OAuthError::invalid_request(
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            )));
        }
        let Some(assertion) = assertion else {
            return Err(Extract::Request(OAuthError::invalid_request(
                "client_assertion is missing",
            )));
        };
        return Ok(Credentials::Assertion {
            client_id: body_id.map(str::to_owned),
            assertion: assertion.to_owned(),
        });
    }
    Ok(match body_id {
        Some(id) => Credentials::Public {
            client_id: id.to_owned(),
        },
        None => Credentials::Missing,
    })
}

/// Decodes `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(headers: &HeaderMap) -> Result<(String, SecretString), Extract> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(Extract::MalformedBasic);
    };
    let encoded = value
        .to_str()
        .ok()
        .and_then(|s| s.get(6..))
        .ok_or(Extract::MalformedBasic)?;
    let decoded = zeroize::Zeroizing::new(
        STANDARD
            .decode(encoded.trim())
            .map_err(|_| Extract::MalformedBasic)?,
    );
    let text = std::str::from_utf8(&decoded).map_err(|_| Extract::MalformedBasic)?;
    let (id, secret) = text.split_once(':').ok_or(Extract::MalformedBasic)?;
    let id = form_decode(id).ok_or(Extract::MalformedBasic)?;
    let secret = SecretString::new(form_decode(secret).ok_or(Extract::MalformedBasic)?);
    if id.is_empty() || secret.is_empty() {
        return Err(Extract::MalformedBasic);
    }
    Ok((id, secret))
}

/// `application/x-www-form-urlencoded` decoding of one component.
fn form_decode(text: &str) -> Option<String> {
    let bytes: Vec<u8> = url::form_urlencoded::parse(format!("v={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())?;
    String::from_utf8(bytes).ok()
}

async fn audit_failure(
    state: &OAuth,
    client_id: Option<&str>,
    method: PresentedMethod,
    failure: Failure,
    peer: Option<SocketAddr>,
) {
    let subject = client_id.unwrap_or("");
    tracing::info!(
        client_id = %crate::audit::clean(subject),
        method = method.as_str(),
        reason = failure.reason(),
        "client authentication failed"
    );
    let mut event = AuditEvent::new(
        AuditKind::ClientAuthFailed,
        "anonymous",
        subject,
        Outcome::Failure,
    )
    .detail("method", method.as_str())
    .detail("reason", failure.reason());
    if let Some(peer) = peer {
        event = event.detail("source", peer.ip().to_string());
    }
    state.audit.record_or_log(event).await;
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn basic(id: &str, secret: &str) -> HeaderMap {
        headers(&format!(
            "Basic {}",
            STANDARD.encode(format!("{id}:{secret}"))
        ))
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let (id, secret) = parse_basic(&basic("svc%2Da", "ghac_x%3Ay")).ok().unwrap();
        assert_eq!(id, "svc-a");
        assert_eq!(secret.expose(), "ghac_x:y");
        let (id, _) = parse_basic(&headers(&format!("basic {}", STANDARD.encode("a:b"))))
            .ok()
            .unwrap();
        assert_eq!(id, "a");
    }

    #[test]
    fn malformed_basic_headers_are_refused() {
        for value in [
            "Basic",
            "Basic !!!",
            &format!("Basic {}", STANDARD.encode("nocolon")),
            &format!("Basic {}", STANDARD.encode(":secret")),
            &format!("Basic {}", STANDARD.encode("id:")),
        ] {
            assert!(
                matches!(parse_basic(&headers(value)), Err(Extract::MalformedBasic)),
                "{value}"
            );
        }
    }

    #[test]
    fn only_one_method_per_request() {
        let form = TokenForm::parse(b"client_id=a&client_secret=s").unwrap();
        assert!(matches!(
            extract(&basic("a", "s"), &form),
            Err(Extract::Request(_))
        ));
        let form = TokenForm::parse(
            b"client_id=a&client_secret=s&client_assertion=x&client_assertion_type=y",
        )
        .unwrap();
        assert!(matches!(
            extract(&HeaderMap::new(), &form),
            Err(Extract::Request(_))
        ));
        let form = TokenForm::parse(b"client_id=b").unwrap();
        assert!(matches!(
            extract(&basic("a", "s"), &form),
            Err(Extract::Request(_))
        ));
        let form = TokenForm::parse(b"client_secret=s").unwrap();
        assert!(matches!(
            extract(&HeaderMap::new(), &form),
            Err(Extract::Request(_))
        ));
        let form = TokenForm::parse(b"client_assertion=x&client_assertion_type=saml").unwrap();
        assert!(matches!(
            extract(&HeaderMap::new(), &form),
            Err(Extract::Request(_))
        ));
        let form = TokenForm::parse(b"").unwrap();
        assert!(matches!(
            extract(&HeaderMap::new(), &form),
            Ok(Credentials::Missing)
        ));
        // Other schemes are not client authentication.
        assert!(matches!(
            extract(&headers("Bearer abc"), &form),
            Ok(Credentials::Missing)
        ));
    }
}
