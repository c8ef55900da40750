//! The field-service API with tokens minted by the core library (until the authority's
//! end-to-end test drives it with real ones).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::TimeDelta;
use field_service::{JobStore, SCOPE_EPICOR_UPDATE, app};
use gha_auth::apikey::{ApiKey, SecretKind};
use gha_auth::jwt::{AccessClaims, issue};
use gha_auth::keys::{Algorithm, SigningKey};
use gha_auth::{Clock, ManualClock};
use gha_auth_middleware::linkkey::{LinkKeyEntry, LinkKeyIntegration, LinkKeySet, StaticLinkKeys};
use gha_auth_middleware::{AuthLayer, LocalKeys};
use tower::ServiceExt;

const ISSUER: &str = "http://127.0.0.1:8700";

struct World {
    key: SigningKey,
    clock: ManualClock,
    epicor_key: ApiKey,
    router: Router,
}

fn world() -> World {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let clock = ManualClock::at_unix(1_793_491_200);
    let epicor_key = ApiKey::generate(SecretKind::LinkKey).unwrap();
    let link_keys = StaticLinkKeys::new(LinkKeySet {
        name: "epicor".into(),
        keys: vec![LinkKeyEntry::current("lk-1", epicor_key.expose())],
    });
    let auth = AuthLayer::builder()
        .issuer(ISSUER)
        .audience("field-service")
        .key_source(LocalKeys::new([key.verifying_key()]).unwrap())
        .link_key(
            LinkKeyIntegration::new("epicor", link_keys)
                .scopes([SCOPE_EPICOR_UPDATE])
                .tenant("acme"),
        )
        .clock(clock.shared())
        .build()
        .unwrap();
    let router = app(auth, JobStore::new(clock.shared()), None);
    World {
        key,
        clock,
        epicor_key,
        router,
    }
}

impl World {
    fn token(&self, tenant: Option<&str>, scopes: &[&str]) -> String {
        let mut claims = AccessClaims::new(
            ISSUER,
            "tech-7",
            "field-service",
            "mfs-app",
            self.clock.unix_seconds(),
            TimeDelta::minutes(10),
        )
        .unwrap()
        .with_scopes(scopes.iter().copied());
        claims.tenant = tenant.map(str::to_owned);
        issue(&self.key, &claims).unwrap()
    }

    /// [`Self::send`] with `Authorization: Bearer <token>`.
    async fn send_bearer(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value, Vec<String>) {
        let authorization = format!("Bearer {token}");
        self.send(method, path, Some(("authorization", &authorization)), body)
            .await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        auth: Option<(&str, &str)>,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value, Vec<String>) {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some((name, value)) = auth {
            builder = builder.header(name, value);
        }
        let body = match body {
            Some(json) => {
                builder = builder.header("content-type", "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(builder.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let challenges = response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json, challenges)
    }
}

#[tokio::test]
async fn jobs_are_read_and_written_with_the_right_scopes_per_tenant() {
    let w = world();
    let writer = w.token(Some("acme"), &["jobs:read", "jobs:write"]);
    let reader = w.token(Some("acme"), &["jobs:read"]);
    let other_tenant = w.token(Some("globex"), &["jobs:read", "jobs:write"]);

    let (status, job, _) = w
        .send_bearer(
            "POST",
            "/jobs",
            &writer,
            Some(serde_json::json!({"title": "Fix pump"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["title"], "Fix pump");
    assert_eq!(job["updated_by"], "tech-7");

    let (status, jobs, _) = w.send_bearer("GET", "/jobs", &reader, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jobs.as_array().unwrap().len(), 1);

    // A reader may not write: 403 naming the scope.
    let (status, _, challenges) = w
        .send_bearer(
            "POST",
            "/jobs",
            &reader,
            Some(serde_json::json!({"title": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenges,
        [r#"Bearer error="insufficient_scope", scope="jobs:write""#]
    );

    // Another tenant sees none of acme's jobs.
    let (status, jobs, _) = w.send_bearer("GET", "/jobs", &other_tenant, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jobs, serde_json::json!([]));

    // A token without a tenant cannot use tenant-scoped routes.
    let no_tenant = w.token(None, &["jobs:read"]);
    let (status, _, _) = w.send_bearer("GET", "/jobs", &no_tenant, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Validation errors are 422, not auth errors.
    let (status, _, _) = w
        .send_bearer(
            "POST",
            "/jobs",
            &writer,
            Some(serde_json::json!({"title": " "})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn requests_without_valid_tokens_are_refused() {
    let w = world();
    let (status, body, challenges) = w.send("GET", "/jobs", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges, ["Bearer"]);
    assert_eq!(body, serde_json::json!({"error": "unauthorized"}));

    let stranger = SigningKey::generate(Algorithm::ES256).unwrap();
    let claims = AccessClaims::new(
        ISSUER,
        "x",
        "field-service",
        "c",
        w.clock.unix_seconds(),
        TimeDelta::minutes(5),
    )
    .unwrap()
    .with_scopes(["jobs:read"]);
    let forged = issue(&stranger, &claims).unwrap();
    let (status, _, challenges) = w.send_bearer("GET", "/jobs", &forged, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges, [r#"Bearer error="invalid_token""#]);

    // Expired.
    let token = w.token(Some("acme"), &["jobs:read"]);
    w.clock.advance(TimeDelta::minutes(12));
    let (status, _, _) = w.send_bearer("GET", "/jobs", &token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn epicor_posts_job_updates_with_its_link_key() {
    let w = world();
    let update = serde_json::json!({"job_number": "J-1001", "status": "in_progress"});
    let (status, job, _) = w
        .send(
            "POST",
            "/epicor/job-updates",
            Some(("x-api-key", w.epicor_key.expose())),
            Some(update),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["epicor_job"], "J-1001");
    assert_eq!(job["updated_by"], "link-key:epicor");

    let update = serde_json::json!({"job_number": "J-1001", "status": "completed"});
    let (status, job, _) = w
        .send(
            "POST",
            "/epicor/job-updates",
            Some(("x-api-key", w.epicor_key.expose())),
            Some(update),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["status"], "completed");
    assert_eq!(job["id"], 1);

    // The job landed in the link key's tenant.
    let reader = w.token(Some("acme"), &["jobs:read"]);
    let (_, jobs, _) = w.send_bearer("GET", "/jobs", &reader, None).await;
    assert_eq!(jobs[0]["status"], "completed");

    // A wrong key, and the link key on a route it has no scope for.
    let wrong = ApiKey::generate(SecretKind::LinkKey).unwrap();
    let update = serde_json::json!({"job_number": "J-1", "status": "open"});
    let (status, _, challenges) = w
        .send(
            "POST",
            "/epicor/job-updates",
            Some(("x-api-key", wrong.expose())),
            Some(update),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges, [r#"Bearer error="invalid_token""#]);
    let (status, _, _) = w
        .send(
            "GET",
            "/jobs",
            Some(("x-api-key", w.epicor_key.expose())),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Bad input is a 422.
    let bad = serde_json::json!({"job_number": "J-1", "status": "exploded"});
    let (status, _, _) = w
        .send(
            "POST",
            "/epicor/job-updates",
            Some(("x-api-key", w.epicor_key.expose())),
            Some(bad),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn health_check_is_open_and_reports_components() {
    let w = world();
    let (status, body, _) = w.send("GET", "/HealthCheck", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "Healthy");
    assert_eq!(body["checks"]["jwks"]["status"], "Healthy");
    assert_eq!(body["checks"]["link_keys:epicor"]["status"], "Healthy");
    let (status, body, _) = w.send("GET", "/HealthCheck/live", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({"status": "Healthy"}));
}
