//! Clients written in Python, against an authority running in-process on real time: each test
//! runs a script of `tests/python/` with the interpreter of `<workspace>/.tools/venv` (or
//! `GHA_AUTH_PYTHON`), where `scripts/test` installs the libraries they use (authlib).

use std::path::{Path, PathBuf};

use gha_auth::SystemClock;
use gha_auth_server::config::Config;
use gha_auth_server::testing::{ClientRegistration, GrantType};
use gha_auth_server::{RunningApp, build_app};
use serde_json::Value;

use crate::support::AUDIENCE;

pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The interpreter, or a failure that says how to get it.
fn python() -> PathBuf {
    let python = std::env::var_os("GHA_AUTH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".tools/venv/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: run scripts/test (it installs authlib into .tools/venv) or set GHA_AUTH_PYTHON",
        python.display()
    );
    python
}

/// Runs `tests/python/<script>` with `args`; its stdout, or a failure with its stderr.
async fn run_script(script: &str, args: &[&str]) -> String {
    let output = tokio::process::Command::new(python())
        .arg(workspace().join("tests/python").join(script))
        .args(args)
        .output()
        .await
        .expect("python runs");
    assert!(
        output.status.success(),
        "{script} {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

async fn authority(data: &Path) -> RunningApp {
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = data.join("data");
    build_app(config, SystemClock::shared())
        .await
        .expect("authority starts")
        .spawn()
}

/// authlib's `private_key_jwt` with its defaults (RS256, assertions valid for an hour, addressed
/// to the endpoint being called) works at the token, introspection and revocation endpoints;
/// an assertion that lives too long is refused with a description the client can act on.
#[tokio::test]
async fn authlib_private_key_jwt_with_its_defaults() {
    let data = tempfile::tempdir().unwrap();
    let keys = data.path().join("keys");
    run_script(
        "authlib_private_key_jwt.py",
        &["keygen", keys.to_str().unwrap()],
    )
    .await;
    let public: Value =
        serde_json::from_str(&std::fs::read_to_string(keys.join("public.json")).unwrap()).unwrap();

    let app = authority(data.path()).await;
    let (_, secret) = app
        .authority()
        .clients()
        .register(
            ClientRegistration::new("py-service")
                .grant(GrantType::ClientCredentials)
                .scope("orders:read")
                .audience(AUDIENCE)
                .jwk(public),
            "e2e",
        )
        .await
        .unwrap();
    assert!(secret.is_none());

    let output = run_script(
        "authlib_private_key_jwt.py",
        &["run", &app.base_url(), "py-service", keys.to_str().unwrap()],
    )
    .await;
    let result: Value = serde_json::from_str(output.trim()).unwrap();
    assert_eq!(result["token_type"], "Bearer", "{result}");
    assert_eq!(result["introspect_status"], 200, "{result}");
    assert_eq!(result["introspect_active"], true, "{result}");
    assert_eq!(result["introspect_client_id"], "py-service", "{result}");
    assert_eq!(result["revoke_status"], 200, "{result}");
    assert_eq!(result["after_revoke_active"], false, "{result}");
    // 400, not 401: the client did not authenticate with the Authorization header (RFC 6749 §5.2).
    assert_eq!(result["too_long_status"], 400, "{result}");
    assert_eq!(result["too_long_error"], "invalid_client", "{result}");
    let description = result["too_long_description"].as_str().unwrap_or_default();
    assert!(
        description.contains("client_assertion_max_lifetime"),
        "{result}"
    );
    app.shutdown().await.unwrap();
}

/// authlib's RFC 8414 validator accepts the metadata of an issuer with a path, served at the
/// path-inserted URL (RFC 8414 §3.1), the OIDC appended URL and the plain one alike
/// (regression: it refused an empty `response_types_supported`).
#[tokio::test]
async fn authlib_validates_the_metadata_of_an_issuer_with_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = "https://auth.gha.example/tenant/east";
    let app = crate::discovery::start(dir.path(), "127.0.0.1:0", Some(issuer.to_owned())).await;
    crate::discovery::register(&app, "scoped").await;
    let out = run_script("discovery_metadata.py", &[&app.base_url(), issuer]).await;
    let seen: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(seen["validated"].as_array().unwrap().len(), 3, "{seen}");
    assert_eq!(
        seen["response_types_supported"],
        serde_json::json!(["none"])
    );
    app.shutdown().await.unwrap();
}
