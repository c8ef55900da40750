//! Browser sessions (`/session/*`) over real HTTP, on SQLite and PostgreSQL, with two
//! replicas on one store: login, refresh, the grace window, replay, replicas, restarts, logout,
//! the CSRF defence and CORS. The cookie is handled by hand here so every attribute is checked;
//! the browser itself drives the page in `web_portal.rs`.

use chrono::TimeDelta;
use gha_auth_server::testing::{ClientRegistration, GrantType};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::Value;

use crate::support::{AUDIENCE, Backend};
use crate::users::{Cluster, PASSWORD, error_of};

const PORTAL: &str = "web-portal";
const ORIGIN: &str = "http://127.0.0.1:7443";
const COOKIE: &str = "__Host-gha-session";
const ATTRIBUTES: &str = "Path=/; HttpOnly; Secure; SameSite=Strict";

/// How a session request is sent.
#[derive(Clone, Copy)]
struct Via<'a> {
    origin: Option<&'a str>,
    csrf: bool,
    cookie: Option<&'a str>,
}

const PAGE: Via<'static> = Via {
    origin: Some(ORIGIN),
    csrf: true,
    cookie: None,
};

impl<'a> Via<'a> {
    fn with_cookie(self, cookie: &'a str) -> Self {
        Self {
            cookie: Some(cookie),
            ..self
        }
    }
}

async fn post(
    cluster: &Cluster,
    i: usize,
    path: &str,
    how: Via<'_>,
    body: Option<(&str, String)>,
) -> reqwest::Response {
    let mut request = cluster.http.post(cluster.url(i, path));
    if let Some(origin) = how.origin {
        request = request.header("origin", origin);
    }
    if how.csrf {
        request = request.header("x-gha-csrf", "1");
    }
    if let Some(cookie) = how.cookie {
        request = request.header("cookie", format!("other=1; {COOKIE}={cookie}"));
    }
    if let Some((content_type, body)) = body {
        request = request.header("content-type", content_type).body(body);
    }
    request.send().await.unwrap()
}

fn form(pairs: &[(&str, &str)]) -> Option<(&'static str, String)> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    Some(("application/x-www-form-urlencoded", body))
}

async fn login(cluster: &Cluster, i: usize, how: Via<'_>, user: &str) -> reqwest::Response {
    post(
        cluster,
        i,
        "/session/login",
        how,
        form(&[("username", user), ("password", PASSWORD)]),
    )
    .await
}

/// The session cookie a response sets: its value ("" when it is deleted), after checking
/// every attribute.
fn cookie_of(headers: &HeaderMap) -> String {
    let cookies: Vec<_> = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cookie = &cookies[0];
    let (value, rest) = cookie
        .strip_prefix(&format!("{COOKIE}="))
        .and_then(|c| c.split_once("; "))
        .unwrap_or_else(|| panic!("{cookie}"));
    assert!(rest.ends_with(ATTRIBUTES), "{cookie}");
    if value.is_empty() {
        assert!(rest.starts_with("Max-Age=0;"), "{cookie}");
    } else {
        // refresh.idle_lifetime in the cluster's configuration: 2 days.
        assert!(rest.starts_with("Max-Age=172800;"), "{cookie}");
        assert!(value.starts_with("ghar_"), "{cookie}");
    }
    value.to_owned()
}

/// A 200 session response: (access token, cookie value). The body holds no refresh token.
async fn session(response: reqwest::Response) -> (String, String) {
    let status = response.status();
    let headers = response.headers().clone();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let cookie = cookie_of(&headers);
    assert!(!cookie.is_empty());
    (body["access_token"].as_str().unwrap().to_owned(), cookie)
}

/// A refused session request: (status, error code), checking that it is RFC 6749-style JSON.
async fn refused(response: reqwest::Response) -> (StatusCode, String) {
    let (status, error, _) = error_of(response).await;
    (status, error)
}

async fn configured(backend: Backend) -> Cluster {
    let cluster = Cluster::start_configured(backend, 2, |config| {
        config.session.client_id = Some(PORTAL.to_owned());
        config.session.allowed_origins = vec![ORIGIN.to_owned()];
    })
    .await;
    cluster.setup().await;
    cluster
        .app(0)
        .authority()
        .clients()
        .register(
            ClientRegistration::new(PORTAL)
                .grant(GrantType::Password)
                .grant(GrantType::RefreshToken)
                .scope("jobs:read")
                .audience(AUDIENCE)
                .first_party(true)
                .public(true),
            "e2e",
        )
        .await
        .unwrap();
    cluster
}

async fn session_flow(backend: Backend) {
    let mut cluster = configured(backend).await;

    // Login: the access token in JSON, the refresh token only in the cookie.
    let (access, c0) = session(login(&cluster, 0, PAGE, "alice").await).await;
    let claims = cluster.verify(&access).await;
    assert_eq!(claims.client_id, PORTAL);
    assert_eq!(claims.roles, ["technician", "dispatcher"]);

    // Refresh: a new cookie and access token for the same user. (Tokens are checked against
    // replica 0's issuer: with no configured issuer each replica names its own address.)
    let (access1, c1) =
        session(post(&cluster, 0, "/session/refresh", PAGE.with_cookie(&c0), None).await).await;
    assert_ne!(c1, c0);
    assert_eq!(cluster.verify(&access1).await.sub, claims.sub);

    // The same refresh again within the grace window (the response was lost): the same
    // successor, on either replica.
    cluster.clock.advance(TimeDelta::seconds(10));
    for i in [0, 1] {
        let (_, again) =
            session(post(&cluster, i, "/session/refresh", PAGE.with_cookie(&c0), None).await).await;
        assert_eq!(again, c1, "replica {i}: a repeat gets the same successor");
    }

    // The CSRF defence: a missing or foreign Origin, or no X-GHA-CSRF header, is refused
    // before the cookie is looked at, and the session is untouched.
    for how in [
        Via {
            origin: None,
            ..PAGE
        },
        Via {
            origin: Some("http://127.0.0.1:7444"),
            ..PAGE
        },
        Via {
            origin: Some("http://localhost:7443"),
            ..PAGE
        },
        Via {
            origin: Some("null"),
            ..PAGE
        },
        Via {
            csrf: false,
            ..PAGE
        },
    ] {
        let response = post(&cluster, 0, "/session/refresh", how.with_cookie(&c1), None).await;
        assert!(response.headers().get(SET_COOKIE).is_none());
        assert_eq!(
            refused(response).await,
            (StatusCode::FORBIDDEN, "access_denied".to_owned())
        );
        let response = login(&cluster, 0, how, "alice").await;
        assert_eq!(refused(response).await.0, StatusCode::FORBIDDEN);
        let response = post(&cluster, 0, "/session/logout", how.with_cookie(&c1), None).await;
        assert_eq!(refused(response).await.0, StatusCode::FORBIDDEN);
    }

    // Restarts lose no session, and a session from one replica continues on the other: c1
    // came from replica 0 and is refreshed on replica 1 after both restarted.
    cluster.restart(0).await;
    cluster.restart(1).await;
    let (_, c2) =
        session(post(&cluster, 1, "/session/refresh", PAGE.with_cookie(&c1), None).await).await;

    // Replay of an old cookie after the grace window: the family is revoked, the cookie deleted,
    // and the live successor dies too.
    cluster.clock.advance(TimeDelta::seconds(31));
    let response = post(&cluster, 0, "/session/refresh", PAGE.with_cookie(&c1), None).await;
    assert_eq!(cookie_of(response.headers()), "");
    assert_eq!(
        refused(response).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".to_owned())
    );
    let response = post(&cluster, 1, "/session/refresh", PAGE.with_cookie(&c2), None).await;
    assert_eq!(refused(response).await.1, "invalid_grant");

    // No cookie, or a made-up one: invalid_grant, never a 500.
    for cookie in [None, Some("ghar_nonsense"), Some("x")] {
        let how = Via { cookie, ..PAGE };
        let response = post(&cluster, 0, "/session/refresh", how, None).await;
        assert_eq!(refused(response).await.1, "invalid_grant");
    }

    // Logout revokes the family and deletes the cookie; the cookie is dead afterwards, on
    // every replica. A second logout (or one with no cookie) is harmless.
    let (_, d0) = session(login(&cluster, 1, PAGE, "alice").await).await;
    let (_, d1) =
        session(post(&cluster, 0, "/session/refresh", PAGE.with_cookie(&d0), None).await).await;
    let response = post(&cluster, 1, "/session/logout", PAGE.with_cookie(&d1), None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(cookie_of(response.headers()), "");
    let response = post(&cluster, 0, "/session/refresh", PAGE.with_cookie(&d1), None).await;
    assert_eq!(refused(response).await.1, "invalid_grant");
    for how in [PAGE.with_cookie(&d1), PAGE] {
        let response = post(&cluster, 0, "/session/logout", how, None).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    // A cookie of another client (the mobile app's refresh token) is not ended by logout.
    let (_, mobile) = crate::users::tokens(cluster.login(0, "alice", PASSWORD).await).await;
    let response = post(
        &cluster,
        0,
        "/session/logout",
        PAGE.with_cookie(&mobile),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    crate::users::tokens(cluster.refresh(0, &mobile).await).await;

    // Everything that matters is audited, with no token or password in it.
    let audit = cluster.audit_kinds().await;
    let count = |kind: &str| audit.iter().filter(|(k, _)| k == kind).count();
    assert_eq!(count("session.started"), 2);
    assert_eq!(count("session.ended"), 1);
    assert_eq!(count("session.refused"), 15);
    assert_eq!(count("refresh.reuse_detected"), 1);
    for (_, detail) in &audit {
        assert!(
            !detail.contains("ghar_") && !detail.contains(PASSWORD),
            "{detail}"
        );
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn sqlite_session_login_refresh_grace_replay_replicas_restart_logout() {
    session_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_session_login_refresh_grace_replay_replicas_restart_logout() {
    session_flow(Backend::postgres().await).await;
}

async fn session_bad_input(backend: Backend) {
    let cluster = configured(backend).await;

    // Wrong password, unknown user, disabled user: byte-for-byte the same answer.
    let mut answers = Vec::new();
    for (user, password) in [
        ("alice", "wrong password"),
        ("mallory", PASSWORD),
        ("bob", PASSWORD),
    ] {
        let response = post(
            &cluster,
            0,
            "/session/login",
            PAGE,
            form(&[("username", user), ("password", password)]),
        )
        .await;
        assert!(response.headers().get(SET_COOKIE).is_none());
        let status = response.status();
        let body = response.text().await.unwrap();
        answers.push((status, body));
    }
    assert_eq!(answers[0].0, StatusCode::BAD_REQUEST);
    assert!(answers[0].1.contains("invalid_grant"), "{}", answers[0].1);
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);

    // Malformed bodies and parameters the server sets itself.
    let cases: Vec<Option<(&str, String)>> = vec![
        None,
        Some(("application/json", r#"{"username":"alice"}"#.to_owned())),
        Some(("application/x-www-form-urlencoded", "%%%&&=".to_owned())),
        form(&[("username", "alice")]),
        form(&[("password", PASSWORD)]),
        form(&[
            ("username", "alice"),
            ("username", "bob"),
            ("password", "x"),
        ]),
        form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("client_id", "mfs-mobile"),
        ]),
        form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("grant_type", "client_credentials"),
        ]),
        Some((
            "application/x-www-form-urlencoded",
            format!("username=alice&password={}", "a".repeat(64 * 1024)),
        )),
    ];
    for body in cases {
        let shown = format!(
            "{:?}",
            body.as_ref().map(|(t, b)| (t, &b[..b.len().min(80)]))
        );
        let response = post(&cluster, 0, "/session/login", PAGE, body).await;
        let (status, error) = refused(response).await;
        assert!(status.is_client_error(), "{shown}: {status}");
        assert!(
            ["invalid_request", "invalid_grant"].contains(&error.as_str()),
            "{shown}: {error}"
        );
    }

    // CORS: a preflight from the allowed origin is granted with credentials, others get none.
    let preflight = |origin: &'static str| {
        cluster
            .http
            .request(reqwest::Method::OPTIONS, cluster.url(0, "/session/refresh"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "x-gha-csrf")
            .send()
    };
    let allowed = preflight(ORIGIN).await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    let allowed_headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed_headers.contains("x-gha-csrf"), "{allowed_headers}");
    let foreign = preflight("http://127.0.0.1:7444").await.unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // CORS is for the session routes only.
    let token = cluster
        .http
        .request(reqwest::Method::OPTIONS, cluster.url(0, "/oauth2/token"))
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(token.headers().get("access-control-allow-origin").is_none());
    cluster.shutdown().await;
}

#[tokio::test]
async fn sqlite_session_bad_input_gets_rfc6749_errors_and_cors_only_for_allowed_origins() {
    session_bad_input(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_session_bad_input_gets_rfc6749_errors_and_cors_only_for_allowed_origins() {
    session_bad_input(Backend::postgres().await).await;
}

/// With no `[session]` configuration, sessions are off and no origin gets CORS.
#[tokio::test]
async fn sessions_are_off_without_configuration() {
    let cluster = Cluster::start_configured(Backend::Sqlite, 1, |_| {}).await;
    cluster.setup().await;
    for path in ["/session/login", "/session/refresh", "/session/logout"] {
        let response = post(
            &cluster,
            0,
            path,
            PAGE.with_cookie("ghar_x"),
            form(&[("username", "alice"), ("password", PASSWORD)]),
        )
        .await;
        assert!(response.headers().get(SET_COOKIE).is_none());
        assert_eq!(
            refused(response).await,
            (StatusCode::NOT_FOUND, "not_found".to_owned()),
            "{path}"
        );
        let preflight = cluster
            .http
            .request(reqwest::Method::OPTIONS, cluster.url(0, path))
            .header("origin", ORIGIN)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert!(
            preflight
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
    }
    cluster.shutdown().await;
}
