//! The server's cross-cutting HTTP behaviour, in-process on 127.0.0.1:0 with a manual clock:
//! abuse limits on the token endpoint (429 + `Retry-After`, backoff after failed client
//! authentication) and `GET /metrics`.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::TimeDelta;
use gha_auth::ManualClock;
use gha_auth_server::clients::{ClientRegistration, GrantType};
use gha_auth_server::config::Config;
use gha_auth_server::{RunningApp, build_app};
use reqwest::StatusCode;
use serde_json::Value;

const START: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

struct Server {
    app: RunningApp,
    clock: ManualClock,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Server {
    async fn start(adjust: impl FnOnce(&mut Config)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = data.path().join("data");
        adjust(&mut config);
        let clock = ManualClock::at_unix(START);
        let app = build_app(config, clock.shared()).await.unwrap().spawn();
        Self {
            app,
            clock,
            http: reqwest::Client::new(),
            _data: data,
        }
    }

    async fn client(&self, id: &str) -> String {
        let (_, secret) = self
            .app
            .state()
            .clients()
            .register(
                ClientRegistration::new(id)
                    .grant(GrantType::ClientCredentials)
                    .scope("orders:read")
                    .audience("mfs.api"),
                "test",
            )
            .await
            .unwrap();
        secret.unwrap().expose().to_owned()
    }

    async fn token(&self, id: &str, secret: &str) -> reqwest::Response {
        self.http
            .post(self.app.state().token_endpoint())
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.app.base_url()))
            .send()
            .await
            .unwrap()
    }
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn assert_limited(response: reqwest::Response) -> u64 {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&response);
    assert!(wait >= 1);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    wait
}

#[tokio::test]
async fn defaults_are_on_and_secure() {
    let config = Config::default();
    let limits = &config.rate_limit;
    assert!(limits.enabled);
    assert!(limits.per_source_per_second > 0 && limits.per_client_per_second > 0);
    assert!(limits.failures_before_backoff <= 10);
}

#[tokio::test]
async fn per_source_rate_limit_answers_429_with_retry_after() {
    let server = Server::start(|c| {
        c.rate_limit.per_source_per_second = 1;
        c.rate_limit.per_source_burst = 3;
    })
    .await;
    let secret = server.client("svc").await;
    for _ in 0..3 {
        assert_eq!(server.token("svc", &secret).await.status(), StatusCode::OK);
    }
    assert_limited(server.token("svc", &secret).await).await;
    // Other endpoints are not limited by the token endpoint's budget.
    assert_eq!(
        server.get("/.well-known/jwks.json").await.status(),
        StatusCode::OK
    );
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn per_client_rate_limit_counts_each_client_separately() {
    let server = Server::start(|c| {
        c.rate_limit.per_client_per_second = 1;
        c.rate_limit.per_client_burst = 2;
    })
    .await;
    let one = server.client("svc-one").await;
    let two = server.client("svc-two").await;
    for _ in 0..2 {
        assert_eq!(server.token("svc-one", &one).await.status(), StatusCode::OK);
    }
    assert_limited(server.token("svc-one", &one).await).await;
    assert_eq!(server.token("svc-two", &two).await.status(), StatusCode::OK);
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn failed_authentication_backs_off_exponentially_per_client_and_source() {
    let server = Server::start(|c| {
        c.rate_limit.failures_before_backoff = 3;
        c.rate_limit.source_failures_before_backoff = 100;
    })
    .await;
    let secret = server.client("svc").await;
    let wrong =
        gha_auth::apikey::ApiKey::generate(gha_auth::apikey::SecretKind::ClientSecret).unwrap();
    for _ in 0..2 {
        let r = server.token("svc", wrong.expose()).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The third failure starts the backoff: 1 s.
    assert_eq!(
        server.token("svc", wrong.expose()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Even the right secret waits now, without being checked.
    let first = assert_limited(server.token("svc", &secret).await).await;
    assert_eq!(first, 1);
    server.clock.advance(TimeDelta::seconds(2));
    // One more failure doubles the wait.
    assert_eq!(
        server.token("svc", wrong.expose()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let second = assert_limited(server.token("svc", &secret).await).await;
    assert_eq!(second, 2);
    server.clock.advance(TimeDelta::seconds(3));
    // After the wait the right secret works and resets the counter.
    assert_eq!(server.token("svc", &secret).await.status(), StatusCode::OK);
    assert_eq!(
        server.token("svc", wrong.expose()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(server.token("svc", &secret).await.status(), StatusCode::OK);
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_source_spraying_client_ids_backs_off() {
    let server = Server::start(|c| {
        c.rate_limit.source_failures_before_backoff = 4;
    })
    .await;
    let secret = server.client("svc").await;
    let wrong =
        gha_auth::apikey::ApiKey::generate(gha_auth::apikey::SecretKind::ClientSecret).unwrap();
    for i in 0..4 {
        let r = server.token(&format!("guess-{i}"), wrong.expose()).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert_limited(server.token("svc", &secret).await).await;
    server.clock.advance(TimeDelta::seconds(2));
    assert_eq!(server.token("svc", &secret).await.status(), StatusCode::OK);
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_render_requests_outcomes_latency_and_keys() {
    let server = Server::start(|_| {}).await;
    let secret = server.client("svc").await;
    assert_eq!(server.token("svc", &secret).await.status(), StatusCode::OK);
    let wrong =
        gha_auth::apikey::ApiKey::generate(gha_auth::apikey::SecretKind::ClientSecret).unwrap();
    server.token("svc", wrong.expose()).await;
    let response = server.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for needle in [
        "gha_auth_token_requests_total{grant=\"client_credentials\",outcome=\"success\"}",
        "gha_auth_token_requests_total{grant=\"client_credentials\",outcome=\"invalid_client\"}",
        "gha_auth_http_requests_total{endpoint=\"/oauth2/token\",method=\"POST\",status=\"200\"}",
        "gha_auth_http_request_duration_seconds_bucket{endpoint=\"/oauth2/token\",method=\"POST\",le=\"0.01\"}",
        "gha_auth_signing_key_age_seconds{state=\"active\"}",
        "gha_auth_signing_keys{state=\"active\"} 1",
        "gha_auth_jwks_age_seconds",
        "# TYPE gha_auth_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    // Rotations are counted by the process that performs them.
    server.app.state().keys().rotate().await.unwrap();
    let text = server.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains("gha_auth_key_rotations_total{kind=\"on_demand\"}"),
        "{text}"
    );
    assert!(!text.contains(&secret), "no secret in metrics");
    server.app.shutdown().await.unwrap();
}
