//! The operators' console (`/console`) in a real headless browser (Debian's `chromium`, driven
//! by `console.js` through playwright-core), as a phone (390x844) and a desktop (1280x800),
//! against a real authority (SQLite) whose health board watches a real field-service instance
//! and a port where nothing answers, and whose link key rotates into a real HTTP key holder.
//!
//! An administrator signs in through the browser-session flow, reads the health board, the
//! history, the signing keys, the link keys, the clients, the users and the audit log; rotates
//! the link key and disables a client behind the confirmation dialog. The test then checks what
//! happened behind the page: the rotation ran, the client gets no token, each act left an
//! `admin.api_call` row naming the user. A user without the admin role is refused (the admin
//! API's 403, seen by the browser) and shown no data. Every page: the Content-Security-Policy
//! is sent, no console error or CSP violation, nothing wider than the screen, axe-core finds
//! nothing serious or critical. Screenshots go to `target/tmp/console/` (their paths are
//! printed).

use std::path::Path;
use std::time::{Duration, Instant};

use field_service::{JobStore, app};
use gha_auth::{SecretString, SystemClock};
use gha_auth_middleware::AuthLayer;
use gha_auth_server::config::{Config, Duration as ConfigDuration, MonitorTarget};
use gha_auth_server::testing::{ClientRegistration, GrantType};
use gha_auth_server::{RunningApp, build_app};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::linkkeys::KeyHolder;

const ADMIN_AUDIENCE: &str = "gha-auth-admin";
const SESSION_CLIENT: &str = "gha-auth-console";
const ADMIN: &str = "olivia";
const ADMIN_PASSWORD: &str = "board of the health";
const TECHNICIAN: &str = "tom";
const TECHNICIAN_PASSWORD: &str = "pump seals all day";
/// One client for each screen to disable.
const DOOMED: [&str; 2] = ["billing-sync", "reports-sync"];
/// The user the desktop disables.
const DOOMED_USER: &str = "ursula";
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A free local port (the authority's origin must be in its own configuration).
async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A field-service instance taking its keys from the authority at `authority`.
async fn field_service(authority: &str) -> String {
    let auth = AuthLayer::builder()
        .issuer(authority)
        .audience("field-service")
        .jwks_url(format!("{authority}/.well-known/jwks.json"))
        .build()
        .unwrap();
    let router = app(auth, JobStore::new(SystemClock::shared()), None);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/HealthCheck")
}

struct Console {
    app: RunningApp,
    holder: KeyHolder,
    http: reqwest::Client,
    /// Secrets of the clients the browser disables.
    secrets: Vec<String>,
    _data: tempfile::TempDir,
}

impl Console {
    async fn start() -> Self {
        let port = free_port().await;
        let origin = format!("http://127.0.0.1:{port}");
        let service = field_service(&origin).await;
        let silent = format!("http://127.0.0.1:{}/HealthCheck", free_port().await);
        let holder = KeyHolder::start().await;
        let data = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.listen = format!("127.0.0.1:{port}").parse().unwrap();
        config.issuer = Some(origin.clone());
        config.data_dir = data.path().join("data");
        config.users.argon2_memory_kib = 1024;
        config.users.argon2_iterations = 1;
        // The least the console needs: a session client and the console's own origin.
        config.session.client_id = Some(SESSION_CLIENT.to_owned());
        config.session.allowed_origins = vec![origin];
        config.monitor.failures_before_alert = 1;
        config.monitor.targets = vec![
            MonitorTarget::new("field-service", service)
                .every(ConfigDuration::seconds(1), ConfigDuration::seconds(1)),
            MonitorTarget::new("billing-api", silent)
                .every(ConfigDuration::seconds(1), ConfigDuration::seconds(1)),
        ];
        let mut link_key: Value = json!({
            "rotation_period": "1d", "publish_ahead": "2s", "overlap": "1h",
            "quiet_period": "10m", "max_age": "1s", "validator_max_stale": "1s",
            "check_interval": "1s", "retry_base": "1s", "retry_max": "4s", "claim_timeout": "30s",
        });
        link_key["target"] = holder.target_json();
        config
            .link_keys
            .insert("epicor".into(), serde_json::from_value(link_key).unwrap());
        let app = build_app(config, SystemClock::shared())
            .await
            .unwrap()
            .spawn();
        let state = app.authority();
        state
            .clients()
            .register(
                // Short-lived tokens: the page refreshes them during the tour.
                ClientRegistration::new(SESSION_CLIENT)
                    .grant(GrantType::Password)
                    .grant(GrantType::RefreshToken)
                    .audience(ADMIN_AUDIENCE)
                    .token_lifetime(chrono::TimeDelta::seconds(25))
                    .first_party(true)
                    .public(true),
                "e2e",
            )
            .await
            .unwrap();
        let mut secrets = Vec::new();
        for id in DOOMED {
            let (_, secret) = state
                .clients()
                .register(
                    ClientRegistration::new(id)
                        .grant(GrantType::ClientCredentials)
                        .audience("field-service"),
                    "e2e",
                )
                .await
                .unwrap();
            secrets.push(secret.unwrap().expose().to_owned());
        }
        for (name, role, password) in [
            (ADMIN, "admin", ADMIN_PASSWORD),
            (TECHNICIAN, "technician", TECHNICIAN_PASSWORD),
            (DOOMED_USER, "auditor", TECHNICIAN_PASSWORD),
        ] {
            state
                .users()
                .add(
                    "",
                    name,
                    &[role.to_owned()],
                    &SecretString::from(password),
                    "e2e",
                )
                .await
                .unwrap();
        }
        Self {
            app,
            holder,
            http: reqwest::Client::new(),
            secrets,
            _data: data,
        }
    }

    /// A token of a client with every admin scope, to look behind the page.
    async fn operator_token(&self) -> String {
        let scopes = ["admin:link-keys", "admin:monitor", "admin:users"];
        let mut registration = ClientRegistration::new("e2e-operator")
            .grant(GrantType::ClientCredentials)
            .audience(ADMIN_AUDIENCE);
        for scope in scopes {
            registration = registration.scope(scope);
        }
        let (_, secret) = self
            .app
            .authority()
            .clients()
            .register(registration, "e2e")
            .await
            .unwrap();
        let token = self
            .client_token("e2e-operator", secret.unwrap().expose())
            .await;
        token.1["access_token"].as_str().unwrap().to_owned()
    }

    async fn client_token(&self, id: &str, secret: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.app.authority().token_endpoint())
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn admin_get(&self, token: &str, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.app.base_url()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.unwrap()
    }

    /// Waits until `check` holds of the answer at `path`.
    async fn wait_for(&self, token: &str, path: &str, what: &str, check: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let value = self.admin_get(token, path).await;
            if check(&value) {
                return;
            }
            assert!(Instant::now() < deadline, "never {what}: {value}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `admin.api_call` rows as (actor, action, outcome).
    async fn admin_calls(&self) -> Vec<(String, String, String)> {
        self.app
            .authority()
            .store()
            .audit_rows_after(0, 100_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == "admin.api_call")
            .map(|r| {
                let detail: Value = serde_json::from_str(&r.detail).unwrap();
                (
                    r.actor,
                    detail["action"].as_str().unwrap().to_owned(),
                    r.outcome,
                )
            })
            .collect()
    }
}

/// Every page a screen visited: its own checks.
fn check_pages(screen: &str, seen: &Value, width: u64) {
    let pages = seen["pages"].as_object().unwrap();
    for name in [
        "signed-out",
        "overview",
        "history",
        "keys",
        "link-keys",
        "confirm",
        "clients",
        "users",
        "audit",
    ] {
        let page = &pages[name];
        assert!(page.is_object(), "{screen} never reached {name}: {seen}");
        let state = format!("{screen}, {name}");
        crate::web_portal::check_axe(&state, &page["axe"]);
        let layout = &page["layout"];
        assert_eq!(layout["client_width"], width, "{state}: {layout}");
        assert!(
            layout["scroll_width"].as_u64().unwrap() <= width,
            "{state}: the page scrolls sideways: {layout}"
        );
        assert_eq!(
            layout["overflowing"],
            json!([]),
            "{state}: text wider than its box"
        );
    }
    // The access token lives in the page's memory only: storage holds the mark and the name.
    assert_eq!(
        seen["storage"],
        json!({"document_cookie": "", "session_storage": 0,
            "local_storage": {"gha-console.session": format!("{{\"user\":\"{ADMIN}\"}}")}}),
        "{screen}"
    );
    assert_eq!(seen["console"], json!([]), "{screen}: console errors");
    assert_eq!(
        seen["csp_violations"],
        json!([]),
        "{screen}: CSP violations"
    );
    assert_eq!(seen["csp"], CSP, "{screen}");
    assert_eq!(seen["nosniff"], "nosniff", "{screen}");
    assert!(
        seen["first_requests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| !r.as_str().unwrap().contains("/session/")),
        "a first visit makes no session call: {seen}"
    );
    // The board as the browser shows it: the live service is up, the silent port down with
    // its reason.
    let board = &seen["board"];
    assert_eq!(board["field-service"]["state"], "up", "{board}");
    assert_eq!(board["billing-api"]["state"], "down", "{board}");
    assert!(
        board["billing-api"]["text"]
            .as_str()
            .unwrap()
            .contains("Reason"),
        "{board}"
    );
    assert!(
        seen["history"].as_u64().unwrap() >= 1,
        "the history lists checks: {seen}"
    );
    assert!(seen["keys"].as_u64().unwrap() >= 1, "{seen}");
    assert_eq!(seen["after_cancel"], "Cancelled; nothing was changed.");
    assert!(
        seen["after_rotate"]
            .as_str()
            .unwrap()
            .starts_with("Rotation of epicor requested"),
        "{seen}"
    );
    assert!(
        seen["after_disable"]
            .as_str()
            .unwrap()
            .ends_with("is disabled."),
        "{seen}"
    );
    assert_eq!(seen["verify"], "true", "the audit chain verifies: {seen}");
    assert!(
        seen["audit_kinds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.as_str().unwrap().starts_with("admin.api_call"))
    );
    assert_eq!(seen["after_logout"], "You are signed out.");
    // The access token outlived its lifetime: the page refreshed it through the cookie.
    let refreshes = seen["refreshes"].as_array().unwrap();
    assert!(!refreshes.is_empty(), "{screen}: never refreshed");
    assert!(
        refreshes
            .iter()
            .all(|r| r.as_str().unwrap().starts_with("200 POST ")),
        "{screen}: {refreshes:?}"
    );
}

/// An authority with sessions off: its console says what to configure, with no sign-in form.
async fn sessions_off() -> (RunningApp, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = data.path().join("data");
    let app = build_app(config, SystemClock::shared())
        .await
        .unwrap()
        .spawn();
    (app, data)
}

fn check_sessions_off(off: &Value, origin: &str) {
    assert_eq!(off["title"], "Sign-in is not configured", "{off}");
    assert_eq!(off["signin_visible"], false);
    let text = off["text"].as_str().unwrap();
    for needed in [
        "[session]",
        "client_id = \"gha-auth-console\"",
        &format!("allowed_origins = [\"{origin}\"]"),
        "--grant password --grant refresh_token",
        "--audience gha-auth-admin --first-party --public",
        "--role admin",
    ] {
        assert!(text.contains(needed), "{needed:?} in {text:?}");
    }
    crate::web_portal::check_axe("sessions off", &off["axe"]);
    assert_eq!(off["layout"]["overflowing"], json!([]), "{off}");
    assert_eq!(off["console"], json!([]), "{off}");
    assert_eq!(off["csp_violations"], json!([]), "{off}");
}

#[tokio::test]
async fn console_signs_in_an_admin_rotates_a_link_key_disables_a_client_and_refuses_others_in_headless_chromium()
 {
    let (chromium, node, modules) = crate::web_portal::tools();
    let console = Console::start().await;
    let base = console.app.base_url();
    let operator = console.operator_token().await;
    let (off, _off_data) = sessions_off().await;

    // Before the browser: the board has seen both targets, the link key has its first key.
    console
        .wait_for(&operator, "/admin/v1/monitor", "up and down", |board| {
            board["targets"][0]["state"] == "up" && board["targets"][1]["state"] == "down"
        })
        .await;
    console
        .wait_for(&operator, "/admin/v1/link-keys", "a first key", |status| {
            status["link_keys"][0]["rotations"] == 1
        })
        .await;
    let first_key = console.holder.key().expect("the first key is installed");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/console.js");
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&artifacts).unwrap();
    let started = Instant::now();
    let run = tokio::process::Command::new(&node)
        .arg(&script)
        .env("NODE_PATH", &modules)
        .env("CHROMIUM", &chromium)
        .env("CONSOLE_URL", format!("{base}/console"))
        .env("OFF_URL", format!("{}/console", off.base_url()))
        .env("ADMIN_USER", ADMIN)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("OTHER_USER", TECHNICIAN)
        .env("OTHER_PASSWORD", TECHNICIAN_PASSWORD)
        .env("DOOMED", DOOMED.join(","))
        .env("DOOMED_USER", DOOMED_USER)
        .env("ARTIFACTS_DIR", &artifacts)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the browser run finishes within 5 minutes")
        .unwrap();
    eprintln!("browser run: {:.1} s", started.elapsed().as_secs_f64());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "console.js failed: {stderr}");
    let seen: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));
    let shots = seen["screenshots"].as_array().unwrap();
    for shot in shots {
        eprintln!("screenshot: {}", shot.as_str().unwrap());
        assert!(Path::new(shot.as_str().unwrap()).is_file());
    }
    assert!(shots.len() >= 20, "{}", shots.len());
    check_sessions_off(&seen["off"], &off.base_url());

    check_pages("phone", &seen["phone"], 390);
    check_pages("desktop", &seen["desktop"], 1280);
    // The link key's history names the scheduler's rotations, and the phone's request by the
    // time the desktop looks.
    let history = &seen["desktop"]["rotation_history"];
    for kind in [
        "link_keys.rotated",
        "link_keys.rotation_started",
        "admin.link_keys_rotate",
    ] {
        assert!(
            history.as_array().unwrap().iter().any(|k| k == kind),
            "{kind} in the rotation history: {history}"
        );
    }
    let keyboard = &seen["desktop"]["keyboard"];
    assert_eq!(
        keyboard["first_focus"], "Skip to main content",
        "{keyboard}"
    );
    assert!(
        keyboard["outline"]
            .as_str()
            .unwrap()
            .starts_with("solid 3px"),
        "a visible focus ring: {keyboard}"
    );
    assert_eq!(keyboard["focus_after_login"], "page-title", "{keyboard}");

    // The other user: refused by the admin API (the browser saw the 403), shown no data.
    let other = &seen["other"];
    assert_eq!(other["view"], "refused", "{other}");
    assert_eq!(other["title"], "This account is not an administrator");
    assert_eq!(other["data_shown"], 0, "{other}");
    assert!(
        other["statuses"].as_array().unwrap().iter().any(|s| s
            .as_str()
            .unwrap()
            .starts_with("403 ")
            && s.as_str().unwrap().contains("/admin/v1/monitor")),
        "{other}"
    );
    crate::web_portal::check_axe("refused", &other["axe"]);
    assert_eq!(other["csp_violations"], json!([]));
    assert_eq!(
        other["wrong_password"],
        json!({"text": "Sign-in failed: the username or password is wrong", "role": "alert",
            "invalid": ["true", "true"], "focused": "password"})
    );
    for line in other["console"].as_array().unwrap() {
        let line = line.as_str().unwrap();
        assert!(
            line.contains("status of 400") || line.contains("status of 403"),
            "only the wrong password's 400 and the refusal's 403: {other}"
        );
    }

    // Behind the page: the rotation ran (a new key in the holder), the clients get no token.
    console
        .wait_for(&operator, "/admin/v1/link-keys", "the rotation", |status| {
            status["link_keys"][0]["rotations"].as_u64().unwrap() >= 2
        })
        .await;
    assert_ne!(console.holder.key().unwrap(), first_key);
    for (id, secret) in DOOMED.iter().zip(&console.secrets) {
        let (status, body) = console.client_token(id, secret).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{id}: {body}");
        assert_eq!(body["error"], "invalid_client");
    }

    // The disabled user cannot sign in any more.
    assert_eq!(
        seen["desktop"]["after_user_disable"],
        format!("User {DOOMED_USER} is disabled.")
    );
    let login = console
        .http
        .post(console.app.authority().token_endpoint())
        .form(&[
            ("grant_type", "password"),
            ("client_id", SESSION_CLIENT),
            ("username", DOOMED_USER),
            ("password", TECHNICIAN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::BAD_REQUEST);

    // Each act is audited with the user who did it; the refusal too.
    let users = console.admin_get(&operator, "/admin/v1/users").await;
    let id_of = |name: &str| {
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (admin, other) = (
        format!("user:{}", id_of(ADMIN)),
        format!("user:{}", id_of(TECHNICIAN)),
    );
    let calls = console.admin_calls().await;
    let count = |actor: &str, action: &str, outcome: &str| {
        calls
            .iter()
            .filter(|(a, c, o)| a == actor && c == action && o == outcome)
            .count()
    };
    assert_eq!(count(&admin, "clients.disable", "success"), 2, "{calls:?}");
    assert_eq!(count(&admin, "link_keys.rotate", "success"), 2, "{calls:?}");
    assert_eq!(count(&admin, "users.disable", "success"), 1, "{calls:?}");
    assert!(count(&admin, "monitor.board", "success") >= 2, "{calls:?}");
    assert!(count(&admin, "audit.verify", "success") >= 2, "{calls:?}");
    assert!(count(&other, "monitor.board", "failure") >= 1, "{calls:?}");
    assert!(
        calls.iter().all(|(a, _, o)| a != &other || o == "failure"),
        "the other user did nothing: {calls:?}"
    );
    console.app.shutdown().await.unwrap();
    off.shutdown().await.unwrap();
}
