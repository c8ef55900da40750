//! `Caller` against a real in-process authority (SQLite in a temp dir, manual clock).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use chrono::TimeDelta;
use gha_auth::jwt::{AccessClaims, issue};
use gha_auth::keys::{Algorithm, SigningKey};
use gha_auth::{Clock, ManualClock};
use tower::ServiceExt;

use super::{BrokerApi, Caller, Callers, LinkKeysApi};
use crate::config::Config;
use crate::services::Services;

const START: i64 = 1_767_225_600;

struct Fixture {
    state: Arc<Callers>,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

#[allow(clippy::field_reassign_with_default)] // Config is #[non_exhaustive]-style: set what the test needs.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.path().join("data");
    let clock = ManualClock::at_unix(START);
    let services = Services::open(&config, clock.shared(), "test")
        .await
        .unwrap();
    let callers = Callers::new(
        "http://127.0.0.1:8700".to_owned(),
        clock.shared(),
        services.signing_keys().await.unwrap(),
        services.store,
        config.api_auth,
    );
    Fixture {
        state: Arc::new(callers),
        clock,
        _dir: dir,
    }
}

async fn broker_probe(caller: Caller<BrokerApi>) -> String {
    format!("{} {}", caller.client_id, caller.subject)
}

async fn link_probe(caller: Caller<LinkKeysApi>) -> String {
    caller.client_id
}

fn router(state: &Arc<Callers>) -> Router {
    Router::new()
        .route("/broker", get(broker_probe))
        .route("/link", get(link_probe))
        .with_state(state.clone())
}

impl Fixture {
    fn claims(&self, audience: &str, lifetime: i64) -> AccessClaims {
        AccessClaims::new(
            &self.state.issuer,
            "svc",
            audience,
            "svc",
            self.clock.unix_seconds(),
            TimeDelta::seconds(lifetime),
        )
        .unwrap()
        .with_scopes(["secrets:read"])
    }

    fn sign(&self, claims: &AccessClaims) -> String {
        let snapshot = self.state.keys.snapshot();
        let key = snapshot.signing_key(self.clock.now()).unwrap();
        issue(key, claims).unwrap()
    }

    fn token(&self, audience: &str) -> String {
        self.sign(&self.claims(audience, 600))
    }

    async fn call(&self, path: &str, auth: &[&str]) -> (StatusCode, Option<String>, String) {
        let mut request = Request::get(path);
        for value in auth {
            request = request.header(header::AUTHORIZATION, *value);
        }
        let response = router(&self.state)
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, challenge, String::from_utf8(body.to_vec()).unwrap())
    }
}

const INVALID: &str = r#"Bearer error="invalid_token""#;

#[tokio::test]
async fn a_valid_token_for_the_api_yields_the_caller() {
    let f = fixture().await;
    let token = f.token("gha-auth-broker");
    let (status, _, body) = f.call("/broker", &[&format!("Bearer {token}")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "svc svc");
    // The cached path answers the same.
    let (status, _, body) = f.call("/broker", &[&format!("bearer {token}")]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "svc svc"));
}

#[tokio::test]
async fn missing_or_non_bearer_credentials_get_a_bare_bearer_challenge() {
    let f = fixture().await;
    for auth in [&[][..], &["Basic c3ZjOnB3"][..]] {
        let (status, challenge, _) = f.call("/broker", auth).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge.as_deref(), Some("Bearer"));
    }
    let token = f.token("gha-auth-broker");
    let bearer = format!("Bearer {token}");
    let (status, challenge, _) = f.call("/broker", &[&bearer, &bearer]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        challenge.as_deref(),
        Some(r#"Bearer error="invalid_request""#)
    );
}

/// The same RFC 6750 §3.1 answers as every API behind the middleware: a malformed header is 400
/// `invalid_request`, whether the token is missing or followed by more.
#[tokio::test]
async fn finding_12_malformed_bearer_headers_get_the_middlewares_answers() {
    let f = fixture().await;
    for auth in ["Bearer", "Bearer ", "Bearer x y", "Bearer a,b", "Bearer\tx"] {
        let (status, challenge, _) = f.call("/broker", &[auth]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{auth:?}");
        assert_eq!(
            challenge.as_deref(),
            Some(r#"Bearer error="invalid_request""#),
            "{auth:?}"
        );
    }
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused_per_api() {
    let f = fixture().await;
    let broker = f.token("gha-auth-broker");
    let (status, challenge, body) = f.call("/link", &[&format!("Bearer {broker}")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some(INVALID));
    assert_eq!(body, r#"{"error":"invalid_token"}"#);
    // Verified and cached for the broker first: still refused for link keys.
    let (status, _, _) = f.call("/broker", &[&format!("Bearer {broker}")]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = f.call("/link", &[&format!("Bearer {broker}")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let link = f.token("gha-auth-link-keys");
    let (status, _, body) = f.call("/link", &[&format!("Bearer {link}")]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "svc"));
    let other = f.token("mfs.api");
    let (status, _, _) = f.call("/broker", &[&format!("Bearer {other}")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_expired_token_is_refused_even_after_it_was_cached() {
    let f = fixture().await;
    let token = f.sign(&f.claims("gha-auth-broker", 120));
    let (status, _, _) = f.call("/broker", &[&format!("Bearer {token}")]).await;
    assert_eq!(status, StatusCode::OK);
    // Past exp and the 60 s leeway.
    f.clock.advance(TimeDelta::seconds(200));
    let (status, challenge, _) = f.call("/broker", &[&format!("Bearer {token}")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some(INVALID));
}

#[tokio::test]
async fn a_token_signed_by_an_unknown_key_or_another_issuer_is_refused() {
    let f = fixture().await;
    let stranger = SigningKey::generate(Algorithm::ES256).unwrap();
    let forged = issue(&stranger, &f.claims("gha-auth-broker", 600)).unwrap();
    let (status, challenge, _) = f.call("/broker", &[&format!("Bearer {forged}")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some(INVALID));
    let mut claims = f.claims("gha-auth-broker", 600);
    claims.iss = "https://elsewhere.example".to_owned();
    let foreign = f.sign(&claims);
    let (status, _, _) = f.call("/broker", &[&format!("Bearer {foreign}")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = f.call("/broker", &["Bearer not.a.jwt"]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn revoke(state: &Callers, kind: &str, value: &str, not_before: i64) {
    sqlx::query(
        "INSERT INTO revocations (kind, value, not_before, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $3)",
    )
    .bind(kind)
    .bind(value)
    .bind(not_before)
    .bind(not_before + 3600)
    .execute(state.store.pool())
    .await
    .unwrap();
}

#[tokio::test]
async fn a_revoked_jti_is_refused_at_once_when_never_seen() {
    let f = fixture().await;
    let claims = f.claims("gha-auth-broker", 600);
    let token = f.sign(&claims);
    revoke(&f.state, "jti", &claims.jti, START).await;
    let (status, challenge, _) = f.call("/broker", &[&format!("Bearer {token}")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some(INVALID));
}

#[tokio::test]
async fn a_client_revoked_after_caching_is_refused_after_the_check_interval() {
    let f = fixture().await;
    let token = f.token("gha-auth-broker");
    let (status, _, _) = f.call("/broker", &[&format!("Bearer {token}")]).await;
    assert_eq!(status, StatusCode::OK);
    revoke(&f.state, "client", "svc", START + 1).await;
    // revocation_check_interval (5 s by default) later, the store is asked again.
    f.clock.advance(TimeDelta::seconds(6));
    let (status, challenge, _) = f.call("/broker", &[&format!("Bearer {token}")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some(INVALID));
}
