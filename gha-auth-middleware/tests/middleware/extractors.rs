//! Extractors, guards, optional authentication, misconfiguration, health, and what reaches the
//! logs.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use gha_auth_middleware::{
    AuthErrorKind, Claims, OptionalPrincipal, Principal, Requirement, Tenant, health_check_route,
    require_scope,
};
use serde::Deserialize;

use crate::common::*;

#[derive(Debug, Deserialize)]
struct FieldClaims {
    sub: String,
    tenant: String,
    region: Option<String>,
}

fn app(layer: gha_auth_middleware::AuthLayer) -> Router {
    Router::new()
        .route(
            "/claims",
            get(|Claims(claims): Claims<FieldClaims>| async move {
                format!("{} {} {:?}", claims.sub, claims.tenant, claims.region)
            }),
        )
        .route(
            "/core-claims",
            get(|Claims(c): Claims<gha_auth::jwt::AccessClaims>| async move { c.client_id }),
        )
        .route(
            "/tenant",
            get(|Tenant(tenant): Tenant| async move { tenant }),
        )
        .route(
            "/read",
            get(|| async { "read" }).route_layer(require_scope("jobs:read")),
        )
        .route(
            "/write",
            get(|| async { "write" }).route_layer(require_scope("jobs:write")),
        )
        .route(
            "/either",
            get(|| async { "either" })
                .route_layer(Requirement::any_scope(["jobs:write", "jobs:admin"]).layer()),
        )
        .route(
            "/acme-dispatch",
            get(|| async { "dispatch" }).route_layer(
                Requirement::scope("jobs:read")
                    .and_role("dispatcher")
                    .and_tenant("acme")
                    .layer(),
            ),
        )
        .route(
            "/in-handler",
            get(|principal: Principal| async move {
                principal.require_scope("jobs:write")?;
                Ok::<_, gha_auth_middleware::AuthError>("ok")
            }),
        )
        .layer(layer)
}

fn at(path: &str, token: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(path);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn typed_custom_claims_are_extracted() {
    let authority = Authority::new();
    let router = app(authority.layer());
    let token = authority.token_with(|c| {
        c.tenant = Some("acme".into());
        c.extra.insert("region".into(), "north".into());
    });
    let answer = call(&router, at("/claims", Some(&token))).await;
    answer.assert_ok();
    assert_eq!(answer.body, r#"user-1 acme Some("north")"#);
    let answer = call(&router, at("/core-claims", Some(&token))).await;
    assert_eq!(answer.body, "mfs-app");
    // Claims that do not fit the type: 401 invalid_token, reason logged.
    let no_tenant = authority.token();
    let answer = call(&router, at("/claims", Some(&no_tenant))).await;
    answer.assert_invalid_token();
    assert!(answer.error.unwrap().reason().contains("FieldClaims"));
}

#[tokio::test]
async fn scope_role_and_tenant_guards_compose_per_route() {
    let authority = Authority::new();
    let router = app(authority.layer());
    let reader = authority.token_with(|c| c.tenant = Some("acme".into()));
    let dispatcher = authority.token_with(|c| {
        c.tenant = Some("acme".into());
        c.roles = vec!["dispatcher".into()];
    });
    let other_dispatcher = authority.token_with(|c| {
        c.tenant = Some("globex".into());
        c.roles = vec!["dispatcher".into()];
    });
    call(&router, at("/read", Some(&reader))).await.assert_ok();
    let answer = call(&router, at("/write", Some(&reader))).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.challenges(),
        [r#"Bearer error="insufficient_scope", scope="jobs:write""#]
    );
    assert_eq!(answer.body, r#"{"error":"insufficient_scope"}"#);
    let answer = call(&router, at("/either", Some(&reader))).await;
    assert_eq!(
        answer.challenges(),
        [
            r#"Bearer error="insufficient_scope", scope="jobs:write""#,
            r#"Bearer error="insufficient_scope", scope="jobs:admin""#
        ]
    );
    assert_eq!(
        call(&router, at("/acme-dispatch", Some(&reader)))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    call(&router, at("/acme-dispatch", Some(&dispatcher)))
        .await
        .assert_ok();
    assert_eq!(
        call(&router, at("/acme-dispatch", Some(&other_dispatcher)))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&router, at("/tenant", Some(&reader))).await.body,
        "acme"
    );
    let answer = call(&router, at("/tenant", Some(&authority.token()))).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = call(&router, at("/in-handler", Some(&reader))).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.challenges(),
        [r#"Bearer error="insufficient_scope", scope="jobs:write""#]
    );
}

#[tokio::test]
async fn optional_authentication_lets_anonymous_callers_in_but_not_bad_tokens() {
    let authority = Authority::new();
    let layer = authority.layer();
    let router = Router::new()
        .route(
            "/",
            get(
                |OptionalPrincipal(principal): OptionalPrincipal| async move {
                    principal.map_or("anonymous".to_owned(), |p| p.subject().to_owned())
                },
            ),
        )
        .route(
            "/opt",
            get(|principal: Option<Principal>| async move { principal.is_some().to_string() }),
        )
        .route(
            "/guarded",
            get(|| async { "x" }).route_layer(require_scope("jobs:read")),
        )
        .layer(layer.allow_anonymous());
    assert_eq!(call(&router, at("/", None)).await.body, "anonymous");
    assert_eq!(
        call(&router, at("/", Some(&authority.token()))).await.body,
        "user-1"
    );
    assert_eq!(call(&router, at("/opt", None)).await.body, "false");
    call(&router, at("/", Some("not.a.token")))
        .await
        .assert_invalid_token();
    // A guard on an anonymous request: 401 with a bare challenge.
    let answer = call(&router, at("/guarded", None)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.challenges(), ["Bearer"]);
    call(&router, at("/guarded", Some(&authority.token())))
        .await
        .assert_ok();
}

/// Collects log output for the current thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || logs.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_extractor_without_the_layer_fails_loudly() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let router: Router = Router::new()
        .route(
            "/me",
            get(|principal: Principal| async move { principal.subject().to_owned() }),
        )
        .route(
            "/guarded",
            get(|| async { "x" }).route_layer(require_scope("jobs:read")),
        );
    for path in ["/me", "/guarded"] {
        let answer = call(&router, at(path, None)).await;
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(answer.error.unwrap().kind(), AuthErrorKind::MissingLayer);
        assert_eq!(answer.body, r#"{"error":"server_error"}"#);
    }
    let text = logs.text();
    assert!(text.contains("ERROR"), "{text}");
    assert!(text.contains("AuthLayer does not cover"), "{text}");
}

#[tokio::test(flavor = "current_thread")]
async fn secrets_never_reach_the_logs_or_bodies() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let authority = Authority::new();
    let router = app(authority.layer());
    let good = authority.token();
    let expired = authority.token_with(|c| {
        c.exp = c.iat + 1;
    });
    authority.clock.advance(chrono::TimeDelta::seconds(120));
    let forged = format!("{}x", &good[..good.len() - 1]);
    let mut bodies = String::new();
    for token in [&good, &expired, &forged] {
        let answer = call(&router, at("/read", Some(token))).await;
        bodies.push_str(&answer.body);
        bodies.push_str(&format!("{:?}", answer.error));
    }
    let text = logs.text();
    for token in [&good, &expired, &forged] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !text.contains(signature),
            "a token reached the logs: {text}"
        );
        assert!(!bodies.contains(signature));
    }
    assert!(text.contains("request refused"), "{text}");
}

#[tokio::test]
async fn health_check_reports_key_set_freshness() {
    let authority = Authority::new();
    let layer = authority.layer();
    let router: Router = Router::new()
        .route("/x", get(|| async { "x" }))
        .layer(layer.clone())
        .merge(health_check_route(layer.health()));
    let answer = call(&router, at("/HealthCheck", None)).await;
    assert_eq!(answer.status, StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["status"], "Healthy");
    assert_eq!(body["checks"]["jwks"]["status"], "Healthy");
    assert_eq!(body["checks"]["jwks"]["keys"], 1);
    // Taken at the layer's (injected) time.
    let checked_at = chrono::DateTime::parse_from_rfc3339(body["checked_at"].as_str().unwrap());
    assert_eq!(
        checked_at.unwrap().timestamp(),
        authority.clock.unix_seconds()
    );
    let live = call(&router, at("/HealthCheck/live", None)).await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.body, r#"{"status":"Healthy"}"#);
    assert_eq!(
        call(&router, at("/x", None)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn debug_output_holds_no_secrets() {
    let authority = Authority::new();
    let layer = authority.layer();
    let debug = format!("{layer:?}");
    assert!(!debug.contains("BEGIN"), "{debug}");
    let key = gha_auth::apikey::ApiKey::generate(gha_auth::apikey::SecretKind::LinkKey).unwrap();
    let entry = gha_auth_middleware::linkkey::LinkKeyEntry::current("k", key.expose());
    let debug = format!("{entry:?}");
    assert!(!debug.contains(&key.expose()[5..]), "{debug}");
}
