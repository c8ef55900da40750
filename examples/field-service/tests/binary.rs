//! The `field-service` binary as an operator runs it: `--authority` pointing at a JWKS server
//! (a stand-in for `gha-auth serve` until the authority's end-to-end test exists), `--listen`
//! on a free port, a link-key file; then real HTTP requests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use chrono::TimeDelta;
use gha_auth::apikey::{ApiKey, SecretKind};
use gha_auth::jwt::{AccessClaims, issue};
use gha_auth::keys::{Algorithm, JwkSet, SigningKey};
use gha_auth::{Clock, SystemClock};
use gha_auth_middleware::linkkey::{LinkKeyEntry, LinkKeySet};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_binary_serves_the_api_with_keys_from_the_authority() {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let jwks = String::from_utf8(
        JwkSet {
            keys: vec![key.public_jwk().clone()],
        }
        .to_json()
        .unwrap(),
    )
    .unwrap();
    let authority: Router = Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let jwks = jwks.clone();
            async move { ([("cache-control", "max-age=300")], jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, authority).await.unwrap() });

    let epicor_key = ApiKey::generate(SecretKind::LinkKey).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let link_keys = dir.path().join("epicor-keys.json");
    let set = LinkKeySet {
        name: "epicor".into(),
        keys: vec![LinkKeyEntry::current("lk-1", epicor_key.expose())],
    };
    std::fs::write(&link_keys, serde_json::to_vec(&set).unwrap()).unwrap();

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_field-service"))
            .args([
                "--authority",
                &authority_url,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--link-keys-file")
            .arg(&link_keys)
            .args(["--epicor-tenant", "acme"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let client = reqwest::Client::new();
    let mut health = None;
    for _ in 0..200 {
        if let Ok(response) = client.get(format!("{base}/HealthCheck")).send().await {
            health = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = health.expect("the binary started");
    assert_eq!(health.status(), 200);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["checks"]["jwks"]["status"], "Healthy", "{body}");

    let mut claims = AccessClaims::new(
        &authority_url,
        "tech-7",
        "field-service",
        "mfs-app",
        SystemClock.unix_seconds(),
        TimeDelta::minutes(10),
    )
    .unwrap()
    .with_scopes(["jobs:read", "jobs:write"]);
    claims.tenant = Some("acme".into());
    let token = issue(&key, &claims).unwrap();

    let created = client
        .post(format!("{base}/jobs"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"title": "Fix pump"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let update = client
        .post(format!("{base}/epicor/job-updates"))
        .header("x-api-key", epicor_key.expose())
        .json(&serde_json::json!({"job_number": "J-7", "status": "scheduled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(update.status(), 201);
    let jobs: serde_json::Value = client
        .get(format!("{base}/jobs"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 2, "{jobs}");

    let refused = client.get(format!("{base}/jobs")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");

    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("gha_auth_requests_total"), "{metrics}");
    // Every family has HELP text (what `promtool check metrics` insists on).
    let families: Vec<&str> = metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    assert!(families.len() >= 5, "{metrics}");
    for family in families {
        assert!(
            metrics.contains(&format!("# HELP {family} ")),
            "{family} has no HELP line: {metrics}"
        );
    }
    gha_auth_testkit::promtool_check_metrics(&metrics).unwrap();
}
