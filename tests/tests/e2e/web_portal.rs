//! The web-portal example in a real headless browser (Debian's `chromium`, driven by
//! `web_portal.js` through playwright-core), as a phone (390x844) and a desktop (1280x800):
//! a first visit is quiet (no session call, no console error), the layout fits the phone, a
//! wrong password is announced, signing in names the user, a lost session says so, the
//! keyboard alone signs in, the page resumes after a reload, a page on a foreign origin cannot
//! use the session, signing out ends it. axe-core checks every state; the cookie's attributes
//! are read from the browser itself. Screenshots of each state are written to
//! `target/tmp/web_portal/` (their paths are printed).
//!
//! Needs `chromium` (or `GHA_AUTH_CHROMIUM`), `node`, and playwright-core and axe-core in
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

pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// The browser, node and playwright-core, or a failure that says how to get them.
pub(crate) fn tools() -> (PathBuf, PathBuf, PathBuf) {
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
    for package in ["playwright-core", "axe-core"] {
        assert!(
            modules.join(package).is_dir(),
            "{package} is missing in {}: run scripts/test (it installs it into .tools/node) or set GHA_AUTH_NODE_MODULES",
            modules.display()
        );
    }
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
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web_portal");
    std::fs::create_dir_all(&artifacts).unwrap();
    let run = tokio::process::Command::new(&node)
        .arg(&script)
        .env("NODE_PATH", &modules)
        .env("CHROMIUM", &chromium)
        .env("PORTAL_URL", &portal)
        .env("EVIL_URL", &evil)
        .env("AUTHORITY_URL", &authority)
        .env("PORTAL_USER", "alice")
        .env("PORTAL_PASSWORD", USER_PASSWORD)
        .env("ARTIFACTS_DIR", &artifacts)
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
    for shot in seen["screenshots"].as_array().unwrap() {
        eprintln!("screenshot: {}", shot.as_str().unwrap());
    }
    assert_eq!(seen["screenshots"].as_array().unwrap().len(), 6, "{seen}");

    check_phone(&seen["phone"]);
    check_desktop_session(&seen["desktop"]);

    // After logout the family is revoked at the authority: the last cookie is refused.
    let resumed = session_cookie(&seen["desktop"]["cookies_after_second_reload"])["value"]
        .as_str()
        .unwrap()
        .to_owned();
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
    // The phone's session and the desktop's; only the desktop signs out.
    assert_eq!(count("session.started"), 2, "{audit:?}");
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

/// The accessibility problems axe-core rates serious or critical (the moderate ones are
/// printed, not fatal).
pub(crate) fn check_axe(state: &str, audit: &Value) {
    assert!(
        audit["passes"].as_u64().unwrap() > 10,
        "axe-core ran its rules: {audit}"
    );
    let violations = audit["violations"].as_array().unwrap();
    for violation in violations {
        eprintln!("axe ({state}): {violation}");
    }
    let severe: Vec<&Value> = violations
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect();
    assert!(severe.is_empty(), "axe-core, {state}: {severe:?}");
}

/// A first visit asks nothing of the authority and the console stays clean.
fn check_fresh_load(load: &Value) {
    assert_eq!(load["console"], serde_json::json!([]), "{load}");
    let requests = load["requests"].as_array().unwrap();
    assert!(!requests.is_empty(), "{load}");
    assert!(
        requests
            .iter()
            .all(|r| !r.as_str().unwrap().contains("/session/")),
        "no session call without a started session: {load}"
    );
}

/// The phone (390x844, mobile viewport rules): layout, touch target, the error and signed-in
/// states, and a session that disappeared.
fn check_phone(phone: &Value) {
    check_fresh_load(&phone["fresh_load"]);
    let layout = &phone["layout"];
    assert_eq!(
        layout["client_width"], 390,
        "the viewport meta tag lays the page out at the device width: {layout}"
    );
    assert!(
        layout["scroll_width"].as_f64().unwrap() <= 390.0,
        "nothing scrolls sideways: {layout}"
    );
    let button = &layout["login_button"];
    assert!(button["height"].as_f64().unwrap() >= 44.0, "{layout}");
    assert!(button["width"].as_f64().unwrap() >= 44.0, "{layout}");
    assert!(
        layout["input_font_px"].as_f64().unwrap() >= 16.0,
        "{layout}"
    );
    check_axe("phone, signed out", &phone["axe_signed_out"]);

    let error = &phone["error"];
    assert_eq!(error["role"], "alert", "{error}");
    assert_eq!(
        error["text"], "Sign-in failed: the username or password is wrong",
        "{error}"
    );
    assert_eq!(error["visible"], true);
    assert_eq!(error["view"], "signed-out");
    assert_eq!(error["invalid"], serde_json::json!(["true", "true"]));
    assert_eq!(error["focused"], "password");
    check_axe("phone, error", &phone["axe_error"]);

    assert_eq!(phone["who"], "Signed in as alice", "{phone}");
    assert_eq!(phone["jobs"], serde_json::json!([JOB_TITLE]));
    check_axe("phone, signed in", &phone["axe_signed_in"]);

    let ended = &phone["ended"];
    assert_eq!(ended["view"], "signed-out", "{ended}");
    assert_eq!(
        ended["status"],
        "Your session has ended. Please sign in again."
    );
    assert_eq!(ended["remembered"], 0, "the mark is gone with the session");
}

/// The desktop (1280x800): keyboard sign-in, the cookie as the browser holds it, resume, a
/// foreign origin, sign out.
fn check_desktop_session(desktop: &Value) {
    check_fresh_load(&desktop["fresh_load"]);
    assert_eq!(desktop["client_width"], 1280);
    check_axe("desktop, signed out", &desktop["axe_signed_out"]);
    assert_eq!(desktop["first_focus"], "username", "{desktop}");
    let focus = &desktop["button_focus"];
    assert_eq!(focus["id"], "login");
    assert!(
        focus["outline"].as_str().unwrap().starts_with("solid 3px"),
        "a visible focus ring: {focus}"
    );
    assert_eq!(desktop["who"], "Signed in as alice", "{desktop}");
    assert_eq!(desktop["focus_after_login"], "jobs-title");
    assert_eq!(desktop["jobs"], serde_json::json!([JOB_TITLE]));
    assert_eq!(desktop["badges"], serde_json::json!(["open"]));
    assert!(
        desktop["jobs_summary"]
            .as_str()
            .unwrap()
            .starts_with("1 job, updated "),
        "{desktop}"
    );
    check_axe("desktop, signed in", &desktop["axe_signed_in"]);

    // The cookie as the browser holds it: __Host-, HttpOnly, Secure, SameSite=Strict, Path=/,
    // host-only for the authority, and the refresh token in it.
    let cookie = session_cookie(&desktop["cookies_after_login"]);
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
    // The page's scripts see no token anywhere; storage holds only the mark with the name.
    assert_eq!(
        desktop["page_storage"],
        serde_json::json!({
            "document_cookie": "",
            "local_storage": {"mfs-portal.session": r#"{"user":"alice"}"#},
            "session_storage": 0,
        })
    );

    // A reload resumes the session through /session/refresh: the cookie rotated.
    assert_eq!(desktop["who_after_reload"], "Signed in as alice");
    assert_eq!(desktop["jobs_after_reload"], serde_json::json!([JOB_TITLE]));
    let reloaded = session_cookie(&desktop["cookies_after_reload"])["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(reloaded, first, "refresh rotated the cookie");

    // The foreign page: the preflighted request is blocked by the browser, the simple one is
    // refused by the authority (audited, checked by the caller); the session is untouched.
    let cross = &desktop["cross_origin"];
    assert!(
        cross["with_header"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("TypeError")),
        "{cross}"
    );
    assert_eq!(cross["simple"]["type"], "opaque", "{cross}");
    assert_eq!(
        session_cookie(&desktop["cookies_after_cross_origin"])["value"],
        reloaded.as_str()
    );
    let resumed = session_cookie(&desktop["cookies_after_second_reload"])["value"]
        .as_str()
        .unwrap();
    assert_ne!(resumed, reloaded);

    // Signed out: the page forgot everything and the browser dropped the cookie.
    assert_eq!(desktop["status_after_logout"], "You are signed out.");
    assert_eq!(desktop["focus_after_logout"], "username");
    assert_eq!(desktop["jobs_after_logout"], 0);
    assert_eq!(desktop["storage_after_logout"], 0);
    assert_eq!(desktop["cookies_after_logout"], serde_json::json!([]));
}
