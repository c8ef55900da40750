//! Token sources through the layer: cookie with CSRF, CORS preflight, link keys.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::{DateTime, TimeDelta};
use gha_auth::SecretString;
use gha_auth::apikey::{ApiKey, SecretKind};
use gha_auth_middleware::linkkey::{
    HttpLinkKeySource, LinkKeyDigest, LinkKeyEntry, LinkKeyIntegration, LinkKeySet, LinkKeySource,
    LinkKeyState, StaticLinkKeys, StaticToken,
};
use gha_auth_middleware::{AuthErrorKind, CookieSource, Principal, Requirement};

use crate::common::*;

const PORTAL: &str = "https://portal.gha.test";
const COOKIE: &str = "__Host-gha_at";

fn cookie_router(authority: &Authority) -> Router {
    let cookie = CookieSource::new(COOKIE)
        .unwrap()
        .allow_origin(PORTAL)
        .unwrap();
    protected(authority.builder().cookie_source(cookie).build().unwrap())
}

#[tokio::test]
async fn cookie_token_with_allowed_origin_and_csrf_header_is_accepted() {
    let authority = Authority::new();
    let router = cookie_router(&authority);
    let cookie = format!("theme=dark; {COOKIE}={}", authority.token());
    let answer = call(
        &router,
        request(
            "POST",
            &[("cookie", &cookie), ("origin", PORTAL), ("x-gha-csrf", "1")],
        ),
    )
    .await;
    answer.assert_ok();
    assert_eq!(answer.body, "user-1");
    // Same-origin GET without Origin (browsers omit it) but with the header: accepted.
    call(
        &router,
        get_with(&[("cookie", &cookie), ("x-gha-csrf", "1")]),
    )
    .await
    .assert_ok();
}

#[tokio::test]
async fn cookie_csrf_failures_are_refused_with_403() {
    let authority = Authority::new();
    let router = cookie_router(&authority);
    let cookie = format!("{COOKIE}={}", authority.token());
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "cross-origin",
            vec![("origin", "https://evil.example"), ("x-gha-csrf", "1")],
        ),
        ("null origin", vec![("origin", "null"), ("x-gha-csrf", "1")]),
        ("no custom header", vec![("origin", PORTAL)]),
        ("no custom header, no origin", vec![]),
        (
            "cross-site fetch without origin",
            vec![("sec-fetch-site", "cross-site"), ("x-gha-csrf", "1")],
        ),
        (
            "lookalike origin",
            vec![
                ("origin", "https://portal.gha.test.evil.example"),
                ("x-gha-csrf", "1"),
            ],
        ),
        (
            "http downgrade",
            vec![("origin", "http://portal.gha.test"), ("x-gha-csrf", "1")],
        ),
    ];
    for (name, mut headers) in cases {
        headers.push(("cookie", &cookie));
        let answer = call(&router, request("POST", &headers)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{name}");
        assert!(answer.challenges().is_empty(), "{name}");
        assert_eq!(
            answer.error.unwrap().kind(),
            AuthErrorKind::CsrfRejected,
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_cookie_is_ignored_when_no_cookie_source_is_configured() {
    let authority = Authority::new();
    let router = protected(authority.layer());
    let cookie = format!("{COOKIE}={}", authority.token());
    let answer = call(
        &router,
        request(
            "POST",
            &[("cookie", &cookie), ("origin", PORTAL), ("x-gha-csrf", "1")],
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.challenges(), ["Bearer"]);
}

#[tokio::test]
async fn a_cors_preflight_passes_through_untouched() {
    let authority = Authority::new();
    let router = Router::new()
        .route(
            "/whoami",
            axum::routing::options(|| async { StatusCode::NO_CONTENT })
                .route_layer(Requirement::scope("never").layer()),
        )
        .layer(authority.layer());
    let answer = call(
        &router,
        request(
            "OPTIONS",
            &[
                ("origin", PORTAL),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "authorization"),
            ],
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "reached the handler");
    assert!(answer.error.is_none());
    // A plain OPTIONS is a request like any other.
    let answer = call(&router, request("OPTIONS", &[("origin", PORTAL)])).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_cors_layer_in_front_answers_preflights_and_tokens_still_work() {
    let authority = Authority::new();
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(axum::http::HeaderValue::from_static(PORTAL))
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([axum::http::header::AUTHORIZATION]);
    let router = protected(authority.layer()).layer(cors);
    let answer = call(
        &router,
        request(
            "OPTIONS",
            &[("origin", PORTAL), ("access-control-request-method", "GET")],
        ),
    )
    .await;
    assert!(answer.status.is_success());
    call(&router, bearer(&authority.token())).await.assert_ok();
}

fn epicor_router(authority: &Authority, keys: Vec<LinkKeyEntry>) -> Router {
    let source = StaticLinkKeys::new(LinkKeySet {
        name: "epicor".into(),
        keys,
    });
    let layer = authority
        .builder()
        .link_key(
            LinkKeyIntegration::new("epicor", source)
                .scopes(["jobs:epicor-update"])
                .tenant("acme"),
        )
        .build()
        .unwrap();
    Router::new()
        .route(
            "/whoami",
            post(|principal: Principal| async move {
                let link = principal.as_link_key().map(|l| l.key_id().to_owned());
                format!(
                    "{} {:?} {:?}",
                    principal.subject(),
                    principal.tenant(),
                    link
                )
            })
            .route_layer(Requirement::scope("jobs:epicor-update").layer()),
        )
        .layer(layer)
}

#[tokio::test]
async fn the_current_and_previous_link_keys_are_accepted() {
    let authority = Authority::new();
    let current = ApiKey::generate(SecretKind::LinkKey).unwrap();
    let previous = ApiKey::generate(SecretKind::LinkKey).unwrap();
    let mut old = LinkKeyEntry::current("lk-old", previous.expose());
    old.state = LinkKeyState::Previous;
    old.expires_at = Some(authority.clock.now() + TimeDelta::hours(1));
    let router = epicor_router(
        &authority,
        vec![LinkKeyEntry::current("lk-new", current.expose()), old],
    );

    let answer = call(&router, request("POST", &[("x-api-key", current.expose())])).await;
    answer.assert_ok();
    assert_eq!(
        answer.body,
        r#"link-key:epicor Some("acme") Some("lk-new")"#
    );
    let answer = call(
        &router,
        request("POST", &[("x-api-key", previous.expose())]),
    )
    .await;
    answer.assert_ok();
    assert!(answer.body.ends_with(r#"Some("lk-old")"#));

    // The previous key ends at its expiry even though the list was not refreshed.
    authority.clock.advance(TimeDelta::hours(1));
    call(
        &router,
        request("POST", &[("x-api-key", previous.expose())]),
    )
    .await
    .assert_invalid_token();
    call(&router, request("POST", &[("x-api-key", current.expose())]))
        .await
        .assert_ok();
}

#[tokio::test]
async fn wrong_link_keys_are_refused() {
    let authority = Authority::new();
    let current = ApiKey::generate(SecretKind::LinkKey).unwrap();
    let router = epicor_router(
        &authority,
        vec![LinkKeyEntry::current("lk-new", current.expose())],
    );
    let stranger = ApiKey::generate(SecretKind::LinkKey).unwrap();
    let client_secret = ApiKey::generate(SecretKind::ClientSecret).unwrap();
    let mut typo = current.expose().to_owned();
    typo.pop();
    typo.push(if current.expose().ends_with('0') {
        '1'
    } else {
        '0'
    });
    for key in [
        stranger.expose(),
        client_secret.expose(),
        &typo,
        "static-legacy-key-123456",
        "x",
    ] {
        let answer = call(&router, request("POST", &[("x-api-key", key)])).await;
        answer.assert_invalid_token();
        let reason = answer.error.unwrap().reason().to_owned();
        assert!(
            !reason.contains(key),
            "the key must not reach the log reason"
        );
    }
    // A bearer token and a link key at once: a malformed request.
    let answer = call(
        &router,
        request(
            "POST",
            &[
                ("x-api-key", current.expose()),
                ("authorization", &format!("Bearer {}", authority.token())),
            ],
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    // A token without the route's scope: 403 naming it.
    let answer = call(
        &router,
        request(
            "POST",
            &[("authorization", &format!("Bearer {}", authority.token()))],
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.challenges(),
        [r#"Bearer error="insufficient_scope", scope="jobs:epicor-update""#]
    );
}

#[tokio::test]
async fn link_keys_from_the_authority_with_usage_reports() {
    use std::sync::{Arc, Mutex};

    use axum::Json;
    use axum::routing::get;

    let key = ApiKey::generate(SecretKind::LinkKey).unwrap();
    let set = LinkKeySet {
        name: "epicor".into(),
        keys: vec![LinkKeyEntry::current("lk-1", key.expose())],
    };
    let reports: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let seen_auth: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = {
        let reports = Arc::clone(&reports);
        let seen_auth = Arc::clone(&seen_auth);
        Router::new()
            .route(
                "/v1/link-keys/epicor",
                get(move |headers: axum::http::HeaderMap| {
                    let set = set.clone();
                    let seen_auth = Arc::clone(&seen_auth);
                    async move {
                        let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
                        seen_auth
                            .lock()
                            .unwrap()
                            .push(auth.unwrap_or_default().to_owned());
                        ([("cache-control", "max-age=60")], Json(set))
                    }
                }),
            )
            .route(
                "/v1/link-keys/epicor/usage",
                post(move |Json(body): Json<serde_json::Value>| {
                    let reports = Arc::clone(&reports);
                    async move {
                        reports.lock().unwrap().push(body);
                        StatusCode::NO_CONTENT
                    }
                }),
            )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let authority = Authority::new();
    let source = HttpLinkKeySource::builder(format!("http://{addr}"), "epicor")
        .validator_name("field-service")
        .token_provider(StaticToken(SecretString::from("validator-token")))
        .report_interval(Duration::from_secs(60))
        .clock(authority.clock.shared())
        .build()
        .unwrap();
    assert!(source.wait_loaded(Duration::from_secs(5)).await);
    assert_eq!(
        seen_auth.lock().unwrap().as_slice(),
        ["Bearer validator-token"]
    );
    let layer = authority
        .builder()
        .link_key(LinkKeyIntegration::new("epicor", source.clone()).scopes(["jobs:epicor-update"]))
        .build()
        .unwrap();
    let router = protected(layer);
    let answer = call(&router, request("POST", &[("x-api-key", key.expose())])).await;
    answer.assert_ok();
    assert_eq!(
        source.usage().last_seen("lk-1"),
        Some(authority.clock.now())
    );

    // The report goes out on the clock's schedule.
    authority.clock.advance(TimeDelta::seconds(61));
    eventually("usage report", || !reports.lock().unwrap().is_empty()).await;
    let report = reports.lock().unwrap()[0].clone();
    assert_eq!(report["name"], "epicor");
    assert_eq!(report["validator"], "field-service");
    assert_eq!(report["keys"][0]["id"], "lk-1");
    assert_eq!(report["keys"][0]["uses"], 1);
    let last_seen: DateTime<chrono::Utc> =
        serde_json::from_value(report["keys"][0]["last_seen"].clone()).unwrap();
    assert_eq!(last_seen.timestamp(), START);
    assert!(!report.to_string().contains(key.expose()));
    assert_eq!(
        LinkKeyDigest::of_key(key.expose()),
        LinkKeyDigest::from_hex(&LinkKeyDigest::of_key(key.expose()).to_hex()).unwrap()
    );
}
