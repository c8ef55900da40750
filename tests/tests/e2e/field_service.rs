//! The field-service example accepting tokens minted by the real authority: the
//! authority runs in-process on 127.0.0.1:0, the example fetches its JWKS over HTTP, and a
//! service client calls the jobs API with a `client_credentials` token.

use std::time::Duration;

use field_service::{JobStore, app};
use gha_auth::SystemClock;
use gha_auth_middleware::AuthLayer;
use gha_auth_server::config::Config;
use gha_auth_server::testing::{ClientRegistration, GrantType};
use gha_auth_server::{RunningApp, build_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

const AUDIENCE: &str = "field-service";

async fn start_authority(data: &tempfile::TempDir) -> RunningApp {
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = data.path().join("data");
    // Real time: the example's layer reads the wall clock too.
    build_app(config, SystemClock::shared())
        .await
        .unwrap()
        .spawn()
}

async fn register(authority: &RunningApp, id: &str, scopes: &[&str], audience: &str) -> String {
    let mut registration = ClientRegistration::new(id)
        .grant(GrantType::ClientCredentials)
        .audience(audience)
        .tenant("acme");
    for scope in scopes {
        registration = registration.scope(*scope);
    }
    let (_, secret) = authority
        .authority()
        .clients()
        .register(registration, "e2e")
        .await
        .unwrap();
    secret.unwrap().expose().to_owned()
}

async fn token(http: &reqwest::Client, authority: &RunningApp, id: &str, secret: &str) -> String {
    let response = http
        .post(authority.authority().token_endpoint())
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn start_field_service(authority: &RunningApp) -> String {
    let auth = AuthLayer::builder()
        .issuer(authority.authority().issuer())
        .audience(AUDIENCE)
        .jwks_url(format!("{}/.well-known/jwks.json", authority.base_url()))
        .build()
        .unwrap();
    assert!(
        auth.wait_ready(Duration::from_secs(10)).await,
        "JWKS fetched from the authority"
    );
    let router = app(auth, JobStore::new(SystemClock::shared()), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn field_service_accepts_tokens_minted_by_the_authority() {
    let data = tempfile::tempdir().unwrap();
    let authority = start_authority(&data).await;
    let http = reqwest::Client::new();
    let writer_secret = register(
        &authority,
        "mfs-sync",
        &["jobs:read", "jobs:write"],
        AUDIENCE,
    )
    .await;
    let reader_secret = register(&authority, "dashboard", &["jobs:read"], AUDIENCE).await;
    let stranger_secret = register(&authority, "ap-automation", &["jobs:read"], "ap.api").await;
    let service = start_field_service(&authority).await;

    let writer = token(&http, &authority, "mfs-sync", &writer_secret).await;
    let created = http
        .post(format!("{service}/jobs"))
        .bearer_auth(&writer)
        .json(&json!({ "title": "Replace pump seal" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    let reader = token(&http, &authority, "dashboard", &reader_secret).await;
    let listed = http
        .get(format!("{service}/jobs"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let jobs: Value = listed.json().await.unwrap();
    assert_eq!(jobs[0]["title"], "Replace pump seal");

    // Read-only token: 403 with the scope it lacks.
    let refused = http
        .post(format!("{service}/jobs"))
        .bearer_auth(&reader)
        .json(&json!({ "title": "nope" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");

    // A genuine token for another API is not a token for this one.
    let foreign = token(&http, &authority, "ap-automation", &stranger_secret).await;
    let refused = http
        .get(format!("{service}/jobs"))
        .bearer_auth(&foreign)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("invalid_token"), "{challenge}");

    // No token at all.
    let anonymous = http.get(format!("{service}/jobs")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    authority.shutdown().await.unwrap();
}
