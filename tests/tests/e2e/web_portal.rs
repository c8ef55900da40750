//! The web-portal example in a real headless browser (Debian's `chromium`, driven by
//! `web_portal.js` through playwright-core): log in, see the jobs, resume after a reload, a
//! page on a foreign origin cannot use the session, log out. The cookie's attributes are read
//! from the browser itself.
//!
//! Needs `chromium` (or `GHA_AUTH_CHROMIUM`), `node`, and playwright-core in
//! `<workspace>/.tools/node/node_modules` (or `GHA_AUTH_NODE_MODULES`); `scripts/test` installs
//! them. The test fails, not skips, when they are missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::response::Html;
use serde_json::Value;
use tokio::net::TcpListener;
use web_portal::{PortalConfig, app};

use crate::mobile_client::{JOB_TITLE, Stack, USER_PASSWORD};

const COOKIE: &str = "__Host-gha-session";

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// The browser, node and playwright-core, or a failure that says how to get them.
fn tools() -> (PathBuf, PathBuf, PathBuf) {
    let chromium = std::env::var_os("GHA_AUTH_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| on_path("chromium"))
        .unwrap_or_else(|| {
            panic!(
                "chromium is missing: the browser test needs Debian's chromium \
                 (apt-get install -y chromium, or run scripts/test) or GHA_AUTH_CHROMIUM"
            )
        });
    let node = on_path("node").unwrap_or_else(|| {
        panic!("node is missing: the browser test drives chromium with node (apt-get install -y nodejs npm, or run scripts/test)")
    });
    let modules = std::env::var_os("GHA_AUTH_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/node/node_modules")
        });
    assert!(
        modules.join("playwright-core").is_dir(),
        "playwright-core is missing in {}: run scripts/test (it installs it into .tools/node) or set GHA_AUTH_NODE_MODULES",
        modules.display()
    );
    (chromium, node, modules)
}

async fn serve(listener: TcpListener, router: axum::Router) {
    tokio::spawn(async move { axum::serve(listener, router).await });
}

fn session_cookie(value: &Value) -> &serde_json::Map<String, Value> {
    let cookies = value.as_array().unwrap();
    assert_eq!(cookies.len(), 1, "{value}");
    let cookie = cookies[0].as_object().unwrap();
    assert_eq!(cookie["name"], COOKIE);
    cookie
}

#[tokio::test]
async fn web_portal_logs_in_lists_jobs_and_logs_out_in_headless_chromium() {
    let (chromium, node, modules) = tools();

    // The portal's port first: the authority allows exactly its origin.
    let portal_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let portal = format!("http://{}", portal_listener.local_addr().unwrap());
    let stack = Stack::start("web-portal", std::slice::from_ref(&portal), |config| {
        config.session.client_id = Some("web-portal".to_owned());
        config.session.allowed_origins = vec![portal.clone()];
    })
    .await;
    let authority = stack.authority.base_url();
    serve(
        portal_listener,
        app(&PortalConfig::new(&authority, &stack.api)).unwrap(),
    )
    .await;
    // Same site (127.0.0.1), another origin: the cookie is sent, the origin is not allowed.
    let evil_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let evil = format!("http://{}", evil_listener.local_addr().unwrap());
    serve(
        evil_listener,
        axum::Router::new().route(
            "/",
            axum::routing::get(|| async { Html("<!doctype html><title>elsewhere</title>") }),
        ),
    )
    .await;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/web_portal.js");
    let run = tokio::process::Command::new(&node)
        .arg(&script)
        .env("NODE_PATH", &modules)
        .env("CHROMIUM", &chromium)
        .env("PORTAL_URL", &portal)
        .env("EVIL_URL", &evil)
        .env("AUTHORITY_URL", &authority)
        .env("PORTAL_USER", "alice")
        .env("PORTAL_PASSWORD", USER_PASSWORD)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the browser run finishes within 5 minutes")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "web_portal.js failed: {stderr}");
    let seen: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));

    // Logged in, jobs listed.
    assert_eq!(seen["status_before_login"], "Please log in", "{seen}");
    let job = format!("{JOB_TITLE} (open)");
    assert_eq!(seen["jobs"], serde_json::json!([job]), "{seen}");
    assert_eq!(seen["status_logged_in"], "Logged in: 1 job(s)");

    // The cookie as the browser holds it: __Host-, HttpOnly, Secure, SameSite=Strict, Path=/,
    // host-only for the authority, and the refresh token in it.
    let cookie = session_cookie(&seen["cookies_after_login"]);
    assert_eq!(cookie["httpOnly"], true, "{cookie:?}");
    assert_eq!(cookie["secure"], true, "{cookie:?}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie:?}");
    assert_eq!(cookie["path"], "/");
    assert_eq!(cookie["domain"], "127.0.0.1");
    assert!(
        cookie["expires"].as_f64().unwrap() > 0.0,
        "a persistent cookie"
    );
    let first = cookie["value"].as_str().unwrap().to_owned();
    assert!(first.starts_with("ghar_"));
    // The page's scripts see no token anywhere.
    assert_eq!(
        seen["page_storage"],
        serde_json::json!({"document_cookie": "", "local_storage": 0, "session_storage": 0})
    );

    // A reload resumes the session through /session/refresh: the cookie rotated.
    assert_eq!(seen["jobs_after_reload"], serde_json::json!([job]));
    let reloaded = session_cookie(&seen["cookies_after_reload"])["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(reloaded, first, "refresh rotated the cookie");

    // The foreign page: the preflighted request is blocked by the browser, the simple one is
    // refused by the authority (audited below); the session is untouched and still works.
    let cross = &seen["cross_origin"];
    assert!(
        cross["with_header"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("TypeError")),
        "{cross}"
    );
    assert_eq!(cross["simple"]["type"], "opaque", "{cross}");
    assert_eq!(
        session_cookie(&seen["cookies_after_cross_origin"])["value"],
        reloaded.as_str()
    );
    let resumed = session_cookie(&seen["cookies_after_second_reload"])["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(resumed, reloaded);

    // Logged out: the page forgot everything, the browser dropped the cookie, and the family is
    // revoked at the authority.
    assert_eq!(seen["status_after_logout"], "Logged out");
    assert_eq!(seen["jobs_after_logout"], 0);
    assert_eq!(seen["cookies_after_logout"], serde_json::json!([]));
    let replay = reqwest::Client::new()
        .post(format!("{authority}/session/refresh"))
        .header("origin", &portal)
        .header("x-gha-csrf", "1")
        .header("cookie", format!("{COOKIE}={resumed}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), reqwest::StatusCode::BAD_REQUEST);

    let audit = stack.audit().await;
    let count = |kind: &str| audit.iter().filter(|(k, _)| k == kind).count();
    assert_eq!(count("session.started"), 1, "{audit:?}");
    assert_eq!(count("session.ended"), 1, "{audit:?}");
    assert_eq!(count("refresh.reuse_detected"), 0, "{audit:?}");
    assert!(
        audit.iter().any(|(k, d)| k == "session.refused"
            && d.contains("origin_not_allowed")
            && d.contains(&evil)),
        "the foreign page's simple request reached the authority and was refused: {audit:?}"
    );
    stack.authority.shutdown().await.unwrap();
}
