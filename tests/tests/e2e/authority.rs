//! The token authority end to end: `gha-auth-server` running in-process on
//! 127.0.0.1:0 with a manual clock, on SQLite and on PostgreSQL, driven over real HTTP.
//!
//! Every test runs on both stores; PostgreSQL databases come from `gha-auth-testkit`.

use std::time::Duration as StdDuration;

use chrono::{DateTime, TimeDelta, Utc};
use gha_auth::jwt::{AccessClaims, Validation, Verifier, encode_jws, parse_header};
use gha_auth::keys::{Algorithm, JwkSet, SigningKey};
use gha_auth::{Clock, ManualClock};
use gha_auth_server::config::Config;
use gha_auth_server::testing::Services;
use gha_auth_server::testing::{ClientRegistration, GrantType};
use gha_auth_server::{RunningApp, build_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{AUDIENCE, Backend, START, assert_audit_intact, register_service_client};

/// A running authority plus everything needed to restart it on the same data.
struct Authority {
    running: Option<RunningApp>,
    clock: ManualClock,
    config: Config,
    http: reqwest::Client,
    _data: tempfile::TempDir,
    _backend: Backend,
}

impl Authority {
    async fn start(backend: Backend) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = data.path().join("data");
        if let Backend::Postgres(db) = &backend {
            config.store.url = Some(db.url().to_owned());
        }
        let clock = ManualClock::at_unix(START);
        let mut authority = Self {
            running: None,
            clock,
            config,
            http: reqwest::Client::new(),
            _data: data,
            _backend: backend,
        };
        authority.boot().await;
        authority
    }

    async fn boot(&mut self) {
        let app = build_app(self.config.clone(), self.clock.shared())
            .await
            .expect("authority starts");
        self.running = Some(app.spawn());
    }

    /// Stops the service and starts it again on the same data directory and store.
    async fn restart(&mut self) {
        if let Some(running) = self.running.take() {
            // Same address again, so the issuer (http://<listen>) stays the same.
            self.config.listen = running.local_addr();
            running.shutdown().await.unwrap();
        }
        self.boot().await;
    }

    fn app(&self) -> &RunningApp {
        self.running.as_ref().expect("running")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app().base_url())
    }

    fn issuer(&self) -> String {
        self.app().authority().issuer().to_owned()
    }

    fn token_url(&self) -> String {
        self.app().authority().token_endpoint().to_owned()
    }

    /// Registers a client the way `gha-auth clients add` does; returns its secret, if any.
    async fn register(&self, registration: ClientRegistration) -> Option<String> {
        let (_, secret) = self
            .app()
            .authority()
            .clients()
            .register(registration, "e2e")
            .await
            .expect("registered");
        secret.map(|s| s.expose().to_owned())
    }

    async fn service_client(&self, id: &str) -> String {
        self.register(
            ClientRegistration::new(id)
                .grant(GrantType::ClientCredentials)
                .scope("orders:read")
                .scope("orders:write")
                .audience(AUDIENCE)
                .tenant("acme"),
        )
        .await
        .expect("confidential clients get a secret")
    }

    async fn token_basic(
        &self,
        id: &str,
        secret: &str,
        params: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(params);
        self.http
            .post(self.token_url())
            .basic_auth(id, Some(secret))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    async fn token_post(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.token_url())
            .form(form)
            .send()
            .await
            .unwrap()
    }

    async fn access_token(&self, id: &str, secret: &str) -> String {
        let response = self.token_basic(id, secret, &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn jwks(&self) -> (JwkSet, String) {
        let response = self
            .http
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        (response.json().await.unwrap(), etag)
    }

    async fn jwks_kids(&self) -> Vec<String> {
        self.jwks()
            .await
            .0
            .keys
            .into_iter()
            .filter_map(|k| k.kid)
            .collect()
    }

    /// Verifies `token` the way an API would: with the published JWKS and strict validation.
    async fn verify(&self, token: &str) -> Result<AccessClaims, gha_auth::jwt::JwtError> {
        let body = self
            .http
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let keys = JwkSet::parse_lenient(&body).unwrap();
        let validation = Validation::new(self.issuer(), [AUDIENCE]).unwrap();
        Verifier::new(validation, self.clock.shared())
            .verify::<AccessClaims>(token, &keys)
            .map(|v| v.claims)
    }

    async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.unwrap();
        }
    }
}

async fn error_of(response: reqwest::Response) -> (StatusCode, String, Value) {
    let status = response.status();
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "token responses are never cached"
    );
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = response.json().await.expect("error bodies are JSON");
    (status, challenge, body)
}

async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if condition().await {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Whether a key-lifecycle audit event whose detail contains `needle` has been written.
async fn audited(authority: &Authority, needle: &str) -> bool {
    let rows = authority
        .app()
        .authority()
        .store()
        .audit_rows_after(0, 1000)
        .await
        .unwrap();
    rows.iter()
        .any(|r| r.kind == "keys.advanced" && r.detail.contains(needle))
}

fn at(clock: &ManualClock) -> DateTime<Utc> {
    clock.now()
}

// ---------------------------------------------------------------------------------------------
// Issue a token and verify it with the JWKS.

async fn issues_verifiable_tokens(backend: Backend) {
    let authority = Authority::start(backend).await;
    let secret = authority.service_client("svc-orders").await;
    assert!(secret.starts_with("ghac_"));

    let response = authority
        .token_basic("svc-orders", &secret, &[("scope", "orders:read")])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "orders:read");
    let token = body["access_token"].as_str().unwrap();

    let header = parse_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256, "ES256 by default");
    assert_eq!(authority.jwks_kids().await, vec![header.kid.clone()]);

    let claims = authority
        .verify(token)
        .await
        .expect("verifies with the published JWKS");
    assert_eq!(claims.iss, authority.issuer());
    assert_eq!(claims.sub, "svc-orders");
    assert_eq!(claims.client_id, "svc-orders");
    assert!(claims.aud.contains(AUDIENCE));
    assert_eq!(claims.scope.as_deref(), Some("orders:read"));
    assert_eq!(claims.tenant.as_deref(), Some("acme"));
    assert_eq!(claims.iat, START);
    assert_eq!(claims.nbf, Some(START));
    assert_eq!(claims.exp, START + 600);
    assert!(!claims.jti.is_empty());

    // No scope requested: everything the client may have. The audience defaults to its only one.
    let claims = authority
        .verify(&authority.access_token("svc-orders", &secret).await)
        .await
        .unwrap();
    assert_eq!(claims.scope.as_deref(), Some("orders:read orders:write"));

    // Expired tokens stop verifying (the verifier reads the same manual clock).
    authority.clock.advance(TimeDelta::minutes(12));
    assert!(authority.verify(token).await.is_err());
    authority.shutdown().await;
}

#[tokio::test]
async fn sqlite_issues_tokens_that_verify_with_the_jwks() {
    issues_verifiable_tokens(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_issues_tokens_that_verify_with_the_jwks() {
    issues_verifiable_tokens(Backend::postgres().await).await;
}

// ---------------------------------------------------------------------------------------------
// Each client-authentication method.

fn assertion(key: &SigningKey, client_id: &str, aud: &str, exp: i64, jti: &str) -> String {
    let claims = json!({"iss": client_id, "sub": client_id, "aud": aud, "exp": exp, "iat": START, "jti": jti});
    encode_jws(key, "JWT", &claims).unwrap()
}

async fn every_client_authentication_method(backend: Backend) {
    let authority = Authority::start(backend).await;
    let secret = authority.service_client("svc-basic").await;

    // client_secret_basic
    let response = authority.token_basic("svc-basic", &secret, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);

    // client_secret_post
    let response = authority
        .token_post(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc-basic"),
            ("client_secret", &secret),
            ("audience", AUDIENCE),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    // private_key_jwt, for every key type a client may register
    for (n, alg) in Algorithm::ALL.into_iter().enumerate() {
        let key = SigningKey::generate(alg).unwrap();
        let id = format!("svc-jwt-{n}");
        let jwk = serde_json::to_value(key.public_jwk()).unwrap();
        let secret = authority
            .register(
                ClientRegistration::new(id.as_str())
                    .grant(GrantType::ClientCredentials)
                    .scope("orders:read")
                    .audience(AUDIENCE)
                    .jwk(jwk),
            )
            .await;
        assert!(
            secret.is_none(),
            "a private_key_jwt client holds no shared secret"
        );
        let exp = START + 120;
        for (aud, jti) in [(authority.token_url(), "a-1"), (authority.issuer(), "a-2")] {
            let signed = assertion(&key, &id, &aud, exp, jti);
            let response = authority
                .token_post(&[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &signed),
                ])
                .await;
            assert_eq!(response.status(), StatusCode::OK, "{alg:?} with aud {aud}");
            let token = response.json::<Value>().await.unwrap()["access_token"]
                .as_str()
                .unwrap()
                .to_owned();
            assert_eq!(authority.verify(&token).await.unwrap().sub, id);
        }

        // The same assertion again is a replay.
        let replay = assertion(&key, &id, &authority.token_url(), exp, "a-1");
        let response = authority
            .token_post(&[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &replay),
            ])
            .await;
        let (status, _, body) = error_of(response).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_client"))
        );

        // Wrong audience, too long-lived, expired: refused, saying what the client can fix;
        // signed by another key: refused without a reason.
        let other = SigningKey::generate(alg).unwrap();
        let audience_rule = "the client assertion's aud must name this server's issuer or the URL of the endpoint it is sent to";
        for (bad, description) in [
            (
                assertion(&key, &id, "https://elsewhere", exp, "b-1"),
                audience_rule,
            ),
            (
                assertion(&key, &id, &authority.token_url(), START + 7200, "b-2"),
                "the client assertion's exp is further ahead than this server accepts (tokens.client_assertion_max_lifetime)",
            ),
            (
                assertion(&key, &id, &authority.token_url(), START - 120, "b-4"),
                "the client assertion has expired or has no exp",
            ),
            (
                assertion(&other, &id, &authority.token_url(), exp, "b-3"),
                "client authentication failed",
            ),
        ] {
            let response = authority
                .token_post(&[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &bad),
                ])
                .await;
            let (_, _, body) = error_of(response).await;
            assert_eq!(body["error"], "invalid_client");
            assert_eq!(body["error_description"], description);
        }
    }
    let rows = authority
        .app()
        .authority()
        .store()
        .audit_rows_after(0, 1000)
        .await
        .unwrap();
    assert!(rows.iter().any(|r| r.kind == "client.assertion_replayed"));
    assert!(
        rows.iter().any(
            |r| r.kind == "client.auth_failed" && r.detail.contains("assertion_wrong_audience")
        )
    );
    authority.shutdown().await;
}

/// A failed assertion reads the same whether or not its client exists: the reasons a client can
/// fix are checked before the client is looked up, and a bad signature has no reason.
#[tokio::test]
async fn assertion_errors_do_not_tell_whether_a_client_exists() {
    let authority = Authority::start(Backend::Sqlite).await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let jwk = serde_json::to_value(key.public_jwk()).unwrap();
    authority
        .register(
            ClientRegistration::new("svc-known")
                .grant(GrantType::ClientCredentials)
                .scope("orders:read")
                .audience(AUDIENCE)
                .jwk(jwk),
        )
        .await;
    let other = SigningKey::generate(Algorithm::ES256).unwrap();
    let exp = START + 120;
    let mut answers = Vec::new();
    for id in ["svc-known", "svc-unknown"] {
        for signed in [
            assertion(&key, id, "https://elsewhere", exp, "c-1"),
            assertion(&other, id, &authority.token_url(), exp, "c-2"),
        ] {
            let response = authority
                .token_post(&[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &signed),
                ])
                .await;
            let (status, _, body) = error_of(response).await;
            answers.push((
                status,
                body["error"].clone(),
                body["error_description"].clone(),
            ));
        }
    }
    assert_eq!(answers[0], answers[2], "wrong audience");
    assert_eq!(answers[1], answers[3], "wrong key");
    assert_eq!(answers[1].2, "client authentication failed");
    authority.shutdown().await;
}

#[tokio::test]
async fn sqlite_every_client_authentication_method_works() {
    every_client_authentication_method(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_every_client_authentication_method_works() {
    every_client_authentication_method(Backend::postgres().await).await;
}

// ---------------------------------------------------------------------------------------------
// Bad requests: each a clear RFC 6749 error, never a 500.

async fn bad_requests_get_rfc6749_errors(backend: Backend) {
    let authority = Authority::start(backend).await;
    let secret = authority.service_client("svc").await;
    let other_secret = authority.service_client("svc-disabled").await;
    authority
        .app()
        .authority()
        .clients()
        .disable("svc-disabled", "e2e")
        .await
        .unwrap();
    let exchange_secret = authority
        .register(
            ClientRegistration::new("svc-exchange-only")
                .grant(GrantType::TokenExchange)
                .audience(AUDIENCE),
        )
        .await
        .unwrap();
    let http = &authority.http;
    let url = authority.token_url();

    // Wrong secret, unknown client, disabled client: the same answer, never which half was wrong.
    let wrong =
        gha_auth::apikey::ApiKey::generate(gha_auth::apikey::SecretKind::ClientSecret).unwrap();
    let mut answers = Vec::new();
    for (id, secret) in [
        ("svc", wrong.expose()),
        ("svc", "ghac_not-even-the-right-format"),
        ("nobody", secret.as_str()),
        ("svc-disabled", other_secret.as_str()),
        ("svc", other_secret.as_str()),
    ] {
        let (status, challenge, body) =
            error_of(authority.token_basic(id, secret, &[]).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{id}");
        assert!(challenge.starts_with("Basic "), "{challenge}");
        answers.push(body);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(answers[0]["error"], "invalid_client");

    // The same over client_secret_post: 400, no Basic challenge.
    let (status, challenge, body) = error_of(
        authority
            .token_post(&[
                ("grant_type", "client_credentials"),
                ("client_id", "svc"),
                ("client_secret", wrong.expose()),
            ])
            .await,
    )
    .await;
    assert_eq!(
        (status, challenge.as_str(), body["error"].as_str()),
        (StatusCode::BAD_REQUEST, "", Some("invalid_client"))
    );

    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            "disallowed scope",
            http.post(&url).basic_auth("svc", Some(&secret)).form(&[
                ("grant_type", "client_credentials"),
                ("scope", "orders:read admin"),
            ]),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "disallowed audience",
            http.post(&url).basic_auth("svc", Some(&secret)).form(&[
                ("grant_type", "client_credentials"),
                ("audience", "payroll.api"),
            ]),
            StatusCode::BAD_REQUEST,
            "invalid_target",
        ),
        (
            "disallowed resource",
            http.post(&url).basic_auth("svc", Some(&secret)).form(&[
                ("grant_type", "client_credentials"),
                ("resource", "https://payroll"),
            ]),
            StatusCode::BAD_REQUEST,
            "invalid_target",
        ),
        (
            "grant not allowed for the client",
            http.post(&url)
                .basic_auth("svc-exchange-only", Some(&exchange_secret))
                .form(&[("grant_type", "client_credentials")]),
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
        ),
        (
            "unknown grant",
            http.post(&url)
                .basic_auth("svc", Some(&secret))
                .form(&[("grant_type", "implicit")]),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            "grant not offered",
            http.post(&url)
                .basic_auth("svc", Some(&secret))
                .form(&[("grant_type", "authorization_code"), ("code", "x")]),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            "missing grant_type",
            http.post(&url)
                .basic_auth("svc", Some(&secret))
                .form(&[("scope", "orders:read")]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "repeated parameter",
            http.post(&url)
                .basic_auth("svc", Some(&secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&scope=a&scope=b"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "JSON body",
            http.post(&url)
                .basic_auth("svc", Some(&secret))
                .json(&json!({"grant_type": "client_credentials"})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "no content type",
            http.post(&url)
                .basic_auth("svc", Some(&secret))
                .body("grant_type=client_credentials"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "oversized body",
            http.post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "grant_type=client_credentials&x={}",
                    "a".repeat(64 * 1024)
                )),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "binary garbage",
            http.post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(vec![0xff, 0xfe, 0x00, b'=', b'&', 0x80]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "two authentication methods",
            http.post(&url).basic_auth("svc", Some(&secret)).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "svc"),
                ("client_secret", &secret),
            ]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "secret without client_id",
            http.post(&url).form(&[
                ("grant_type", "client_credentials"),
                ("client_secret", &secret),
            ]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "wrong assertion type",
            http.post(&url).form(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", "saml"),
                ("client_assertion", "x"),
            ]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "garbage assertion",
            http.post(&url).form(&[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", "not.a.jwt"),
            ]),
            StatusCode::BAD_REQUEST,
            "invalid_client",
        ),
        (
            "no client authentication",
            http.post(&url)
                .form(&[("grant_type", "client_credentials")]),
            StatusCode::BAD_REQUEST,
            "invalid_client",
        ),
        (
            "client_id only for a confidential client",
            http.post(&url)
                .form(&[("grant_type", "client_credentials"), ("client_id", "svc")]),
            StatusCode::BAD_REQUEST,
            "invalid_client",
        ),
        (
            "malformed Basic header",
            http.post(&url)
                .header("authorization", "Basic %%%")
                .form(&[("grant_type", "client_credentials")]),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "Basic without a colon",
            http.post(&url)
                .header("authorization", "Basic c3Zj")
                .form(&[("grant_type", "client_credentials")]),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "client id with control characters",
            http.post(&url)
                .basic_auth("svc\n\u{0}", Some(&secret))
                .form(&[("grant_type", "client_credentials")]),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
    ];
    for (name, request, status, error) in cases {
        let (got_status, _, body) = error_of(request.send().await.unwrap()).await;
        assert_eq!(got_status, status, "{name}: {body}");
        assert_eq!(body["error"], error, "{name}: {body}");
        assert!(body["error_description"].is_string(), "{name}");
        assert!(
            !body.to_string().contains(&secret),
            "{name}: the secret is never echoed"
        );
    }

    // Wrong method on the endpoint: 405, not 500.
    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    // The failures are audited without the secrets, and the chain holds.
    let rows = authority
        .app()
        .authority()
        .store()
        .audit_rows_after(0, 1000)
        .await
        .unwrap();
    let failures: Vec<_> = rows
        .iter()
        .filter(|r| r.kind == "client.auth_failed")
        .collect();
    assert!(failures.len() >= 8, "{}", failures.len());
    for reason in [
        "wrong_secret",
        "unknown_client",
        "client_disabled",
        "malformed_secret",
        "no_credentials",
    ] {
        assert!(
            failures.iter().any(|r| r.detail.contains(reason)),
            "{reason}"
        );
    }
    for row in &rows {
        let text = format!("{row:?}");
        assert!(
            !text.contains(&secret) && !text.contains(wrong.expose()),
            "audit holds no secret"
        );
    }
    assert_audit_intact(authority.app().authority().store()).await;
    authority.shutdown().await;
}

#[tokio::test]
async fn sqlite_bad_requests_get_rfc6749_errors_never_500() {
    bad_requests_get_rfc6749_errors(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_bad_requests_get_rfc6749_errors_never_500() {
    bad_requests_get_rfc6749_errors(Backend::postgres().await).await;
}

// ---------------------------------------------------------------------------------------------
// Rotation on a manual clock.

async fn rotation_with_a_manual_clock(backend: Backend) {
    let authority = Authority::start(backend).await;
    let secret = authority.service_client("svc").await;
    let schedule = *authority.app().authority().keys().schedule();
    let kid_of = |token: &str| parse_header(token).unwrap().kid;

    let first_token = authority.access_token("svc", &secret).await;
    let first = kid_of(&first_token);
    let (_, first_etag) = authority.jwks().await;

    // ETag and 304.
    let response = authority
        .http
        .get(authority.url("/.well-known/jwks.json"))
        .header("if-none-match", &first_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    let response = authority
        .http
        .get(authority.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["cache-control"],
        format!("public, max-age={}", schedule.jwks_max_age.num_seconds())
    );

    // The next key is published publish_ahead before it signs: the scheduler wakes on the clock.
    let publish_at = at(&authority.clock) + schedule.rotation_period - schedule.publish_ahead;
    authority.clock.set(publish_at);
    wait_until("the next key is published", || async {
        authority.jwks_kids().await.len() == 2
    })
    .await;
    let kids = authority.jwks_kids().await;
    let next = kids.iter().find(|k| **k != first).unwrap().clone();
    let (_, etag) = authority.jwks().await;
    assert_ne!(etag, first_etag, "a new key set has a new ETag");
    assert_eq!(
        kid_of(&authority.access_token("svc", &secret).await),
        first,
        "published, not signing yet"
    );

    // Just before the handover: a token from the old key.
    authority
        .clock
        .set(publish_at + schedule.publish_ahead - TimeDelta::seconds(1));
    let old_token = authority.access_token("svc", &secret).await;
    assert_eq!(kid_of(&old_token), first);

    // At the handover the next key signs.
    authority.clock.advance(TimeDelta::seconds(1));
    let new_token = authority.access_token("svc", &secret).await;
    assert_eq!(kid_of(&new_token), next);

    // The old key stays published: its last token verifies until it expires.
    authority.clock.advance(TimeDelta::minutes(9));
    wait_until("the scheduler retires the old key", || async {
        audited(&authority, "\"retired\"").await && audited(&authority, "\"activated\"").await
    })
    .await;
    assert!(
        authority
            .app()
            .authority()
            .keys()
            .list()
            .iter()
            .any(|k| k.kid == first && k.state == gha_auth::keys::KeyState::Retired)
    );
    assert!(authority.jwks_kids().await.contains(&first));
    assert_eq!(authority.verify(&old_token).await.unwrap().sub, "svc");
    assert!(authority.verify(&new_token).await.is_ok());
    authority.clock.advance(TimeDelta::minutes(3));
    assert!(authority.verify(&old_token).await.is_err(), "expired");

    // Once no token it signed can be valid, the old key leaves the JWKS.
    let handover = publish_at + schedule.publish_ahead;
    authority.clock.set(handover + schedule.retain_retired);
    wait_until("the old key is removed", || async {
        authority.jwks_kids().await == vec![next.clone()]
    })
    .await;
    assert!(
        authority.verify(&new_token).await.is_err(),
        "new_token expired long ago too"
    );
    assert!(
        authority
            .verify(&authority.access_token("svc", &secret).await)
            .await
            .is_ok()
    );

    // Generation, activation, retirement and removal are all audited.
    wait_until("the removal is audited", || {
        audited(&authority, "\"removed\"")
    })
    .await;
    let rows = authority
        .app()
        .authority()
        .store()
        .audit_rows_after(0, 1000)
        .await
        .unwrap();
    let key_events = rows.iter().filter(|r| r.kind.starts_with("keys.")).count();
    assert_eq!(
        key_events, 5,
        "two generations, activation, retirement, removal"
    );
    assert_audit_intact(authority.app().authority().store()).await;
    authority.shutdown().await;
}

#[tokio::test]
async fn sqlite_rotation_publishes_before_signing_and_keeps_old_keys_until_tokens_expire() {
    rotation_with_a_manual_clock(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_rotation_publishes_before_signing_and_keeps_old_keys_until_tokens_expire() {
    rotation_with_a_manual_clock(Backend::postgres().await).await;
}

// ---------------------------------------------------------------------------------------------
// Restart loses nothing; admin commands work on the same store while the server runs.

async fn restart_loses_nothing(backend: Backend) {
    let mut authority = Authority::start(backend).await;
    let secret = authority.service_client("svc").await;
    let token = authority.access_token("svc", &secret).await;
    authority.app().authority().keys().rotate().await.unwrap();
    let kids = authority.jwks_kids().await;
    assert_eq!(kids.len(), 2);
    let rows_before = authority
        .app()
        .authority()
        .store()
        .audit_rows_after(0, 10_000)
        .await
        .unwrap()
        .len();

    // An admin command in "another process" (its own Services on the same config) while the
    // server runs: the server sees the new client at once.
    let admin = Services::open(&authority.config, authority.clock.shared(), "cli:e2e")
        .await
        .unwrap();
    let admin_secret = register_service_client(&admin.clients, "svc-admin", "cli:e2e").await;
    authority.access_token("svc-admin", &admin_secret).await;
    // Secret rotation from the CLI: both secrets work during the grace period.
    let rotated = admin
        .clients
        .rotate_secret("svc-admin", TimeDelta::hours(24), "cli:e2e")
        .await
        .unwrap();
    authority.access_token("svc-admin", rotated.expose()).await;
    authority.access_token("svc-admin", &admin_secret).await;
    // Disabling from the CLI reaches the running server within clients.cache_ttl.
    let gone_secret = register_service_client(&admin.clients, "svc-gone", "cli:e2e").await;
    authority.access_token("svc-gone", &gone_secret).await;
    admin.clients.disable("svc-gone", "cli:e2e").await.unwrap();
    authority
        .clock
        .advance(authority.config.clients.cache_ttl.as_delta());
    let (status, _, body) =
        error_of(authority.token_basic("svc-gone", &gone_secret, &[]).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    admin.store.close().await;

    authority.restart().await;

    assert_eq!(authority.jwks_kids().await, kids, "keys survive");
    assert_eq!(
        authority.verify(&token).await.unwrap().sub,
        "svc",
        "tokens from before verify"
    );
    let claims = authority
        .verify(&authority.access_token("svc", &secret).await)
        .await
        .unwrap();
    assert_eq!(claims.tenant.as_deref(), Some("acme"), "clients survive");
    authority.access_token("svc-admin", rotated.expose()).await;
    authority.clock.advance(TimeDelta::hours(24));
    let (status, _, _) =
        error_of(authority.token_basic("svc-admin", &admin_secret, &[]).await).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the old secret expires with its grace period"
    );

    let report = assert_audit_intact(authority.app().authority().store()).await;
    assert!(
        report.rows as usize > rows_before,
        "audit survives and grows"
    );
    authority.shutdown().await;
}

#[tokio::test]
async fn sqlite_restart_loses_nothing() {
    restart_loses_nothing(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_restart_loses_nothing() {
    restart_loses_nothing(Backend::postgres().await).await;
}

// ---------------------------------------------------------------------------------------------
// Metadata and health.

#[tokio::test]
async fn metadata_and_health_describe_the_service() {
    let authority = Authority::start(Backend::Sqlite).await;
    let metadata: Value = authority
        .http
        .get(authority.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], authority.issuer());
    assert_eq!(metadata["token_endpoint"], authority.token_url());
    assert_eq!(
        metadata["jwks_uri"],
        authority.url("/.well-known/jwks.json")
    );
    assert_eq!(
        metadata["grant_types_supported"],
        json!([
            "client_credentials",
            "password",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    assert_eq!(
        metadata["revocation_endpoint"],
        authority.url("/oauth2/revoke")
    );
    assert_eq!(
        metadata["introspection_endpoint"],
        authority.url("/oauth2/introspect")
    );
    assert_eq!(
        metadata["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none"
        ])
    );

    let response = authority
        .http
        .get(authority.url("/HealthCheck"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let health: Value = response.json().await.unwrap();
    assert_eq!(health["status"], "Healthy", "{health}");
    assert_eq!(health["checks"]["store"]["status"], "Healthy");
    assert_eq!(health["checks"]["signing_keys"]["status"], "Healthy");
    authority.shutdown().await;
}
