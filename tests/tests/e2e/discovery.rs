//! Discovery as clients nobody here wrote use it: node's `openid-client` with its default
//! discovery (then a token, introspection and revocation through the endpoints it found),
//! OpenBao's JWT auth with `oidc_discovery_url` (a Vault token for an access token minted
//! here); authlib's RFC 8414 validator is in `python.rs`. openid-client also discovers an
//! issuer with a path (RFC 8414 §3.1).
//!
//! Needs `node` with openid-client in `<workspace>/.tools/node/node_modules` (or
//! `GHA_AUTH_NODE_MODULES`) and OpenBao; `scripts/test` installs them. The tests fail, not
//! skip, when they are missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gha_auth::SystemClock;
use gha_auth_server::config::Config;
use gha_auth_server::testing::{ClientRegistration, GrantType};
use gha_auth_server::{RunningApp, build_app};
use gha_auth_testkit::OpenBao;
use serde_json::{Value, json};

use crate::python::workspace;
use crate::support::{AUDIENCE, openbao_jwt_login_token};
use crate::web_portal::on_path;

/// A server on SQLite on the real clock, with `issuer` (derived from the address when `None`)
/// on `listen`.
pub(crate) async fn start(dir: &Path, listen: &str, issuer: Option<String>) -> RunningApp {
    let mut config = Config::default();
    config.listen = listen.parse().unwrap();
    config.data_dir = dir.to_path_buf();
    config.issuer = issuer;
    build_app(config, SystemClock::shared())
        .await
        .expect("authority starts")
        .spawn()
}

/// A free loopback port (for an issuer that must name the port before the server starts).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

pub(crate) async fn register(app: &RunningApp, id: &str) -> String {
    let (_, secret) = app
        .authority()
        .clients()
        .register(
            ClientRegistration::new(id)
                .grant(GrantType::ClientCredentials)
                .scope("jobs:read")
                .audience(AUDIENCE),
            "e2e",
        )
        .await
        .unwrap();
    secret.unwrap().expose().to_owned()
}

#[tokio::test]
async fn openid_client_discovers_the_server_and_uses_what_it_found() {
    let node =
        on_path("node").expect("node is missing (apt-get install -y nodejs, or run scripts/test)");
    let modules = std::env::var_os("GHA_AUTH_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".tools/node/node_modules"));
    assert!(
        modules.join("openid-client").is_dir(),
        "openid-client is missing in {}: run scripts/test (it installs it into .tools/node) or set GHA_AUTH_NODE_MODULES",
        modules.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let app = start(&dir.path().join("root"), "127.0.0.1:0", None).await;
    let secret = register(&app, "discovery-client").await;
    let port = free_port();
    let path_issuer = format!("http://127.0.0.1:{port}/tenant/east");
    let path_app = start(
        &dir.path().join("path"),
        &format!("127.0.0.1:{port}"),
        Some(path_issuer.clone()),
    )
    .await;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/discovery.js");
    let run = tokio::process::Command::new(&node)
        .arg(&script)
        .env("NODE_MODULES", &modules)
        .env("ISSUER", app.authority().issuer())
        .env("PATH_ISSUER", &path_issuer)
        .env("CLIENT_ID", "discovery-client")
        .env("CLIENT_SECRET", &secret)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("openid-client finishes within 2 minutes")
        .unwrap();
    assert!(
        output.status.success(),
        "discovery.js failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));
    assert_eq!(
        seen,
        json!({
            "issuer": app.authority().issuer(),
            "token_endpoint": format!("{}/oauth2/token", app.authority().issuer()),
            "token_type": "bearer",
            "scope": "jobs:read",
            "active_before_revocation": true,
            "active_after_revocation": false,
            "path_oidc_issuer": path_issuer,
            "path_oauth2_issuer": path_issuer,
        })
    );
    path_app.shutdown().await.unwrap();
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn openbao_jwt_auth_with_oidc_discovery_url_accepts_a_token_minted_here() {
    let bao = OpenBao::start().await.expect("OpenBao dev server");
    let dir = tempfile::tempdir().unwrap();
    // OpenBao checks exp/nbf/iat against its own (real) clock.
    let app = start(dir.path(), "127.0.0.1:0", None).await;
    let secret = register(&app, "field-sync").await;
    let issuer = app.authority().issuer().to_owned();

    // Discovery alone: no jwks_url, no algorithm list; OpenBao reads both from the metadata.
    let config = json!({ "oidc_discovery_url": issuer, "bound_issuer": issuer });
    let jwt = &openbao_jwt_login_token(&bao, config, &app, &secret).await;
    let http = reqwest::Client::new();
    let login = |jwt: String| {
        let http = http.clone();
        let url = format!("{}/v1/auth/jwt/login", bao.addr());
        async move {
            let response = http
                .post(url)
                .json(&json!({ "role": "field-sync", "jwt": jwt }))
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = login(jwt.to_owned()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["auth"]["client_token"].is_string(), "{body}");
    // A broken signature is refused, so the acceptance above is real.
    let (status, body) = login(format!("{jwt}x")).await;
    assert!(status.is_client_error(), "{status} {body}");
    app.shutdown().await.unwrap();
}
