//! The token authority with Vault: signing keys in a real OpenBao's KV v2 shared by two
//! replicas on one PostgreSQL, rotating at the same instant; and interop with software nobody
//! here wrote: OpenBao's JWT auth method verifies a token this service issued, with the keys it
//! fetches from our JWKS URL.

use std::path::Path;

use chrono::TimeDelta;
use gha_auth::{ManualClock, SharedClock, SystemClock};
use gha_auth_server::config::Config;
use gha_auth_server::testing::{ClientRegistration, GrantType};
use gha_auth_server::{App, build_app};
use gha_auth_testkit::{Method, OpenBao, PgDatabase, random_hex};
use serde_json::{Value, json};

use crate::support::{AUDIENCE, START, openbao_jwt_login_token, register_service_client};

fn vault_config(bao: &OpenBao, data: &Path, prefix: &str, store: Option<&str>) -> Config {
    let token_file = data.join("vault-token");
    std::fs::create_dir_all(data).unwrap();
    std::fs::write(&token_file, bao.root_token()).unwrap();
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = data.join("data");
    config.store.url = store.map(str::to_owned);
    config.vault.address = Some(bao.addr().to_owned());
    config.vault.token_file = Some(token_file);
    config.vault.key_prefix = prefix.to_owned();
    config
}

async fn start(config: Config, clock: SharedClock) -> App {
    build_app(config, clock).await.expect("authority starts")
}

#[tokio::test]
async fn two_replicas_on_one_postgres_and_one_openbao_rotate_exactly_once() {
    let bao = OpenBao::start().await.expect("OpenBao dev server");
    bao.enable_kv2("secret").await.unwrap();
    let db = PgDatabase::create().await.expect("PostgreSQL database");
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("gha-auth-e2e-{}/keys", random_hex(4).unwrap());
    let clock_a = ManualClock::at_unix(START);
    let clock_b = ManualClock::at_unix(START);
    let config_a = vault_config(&bao, &dir.path().join("a"), &prefix, Some(db.url()));
    let config_b = vault_config(&bao, &dir.path().join("b"), &prefix, Some(db.url()));
    let rotation = config_a.keys.rotation_period.as_delta();
    let ahead = config_a.keys.publish_ahead.as_delta();

    // Both start at once: exactly one creates the ring, the other adopts it.
    let (a, b) = tokio::join!(
        start(config_a, clock_a.shared()),
        start(config_b, clock_b.shared())
    );
    for app in [&a, &b] {
        let described = app.authority().key_store_description();
        assert!(described.starts_with("vault"), "{described}");
    }
    let kids = |app: &App| -> Vec<String> {
        let mut kids: Vec<String> = app
            .authority()
            .keys()
            .list()
            .into_iter()
            .map(|k| k.kid)
            .collect();
        kids.sort();
        kids
    };
    assert_eq!(kids(&a).len(), 1);
    assert_eq!(kids(&a), kids(&b));

    // The pepper is shared too: a client registered through one replica authenticates on the
    // other (they share the database and Vault, nothing else).
    let secret = register_service_client(a.authority().clients(), "svc", "e2e").await;

    // The same scheduled instant on both: the next key is due.
    let due = TimeDelta::seconds(rotation.num_seconds() - ahead.num_seconds() + 1);
    clock_a.advance(due);
    clock_b.advance(due);
    let (ra, rb) = tokio::join!(a.authority().keys().sync(), b.authority().keys().sync());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let generated = [&ra, &rb].iter().filter(|r| r.generated.is_some()).count();
    assert_eq!(
        generated, 1,
        "exactly one replica generates the key: {ra:?} {rb:?}"
    );
    // Both see the same two keys once they re-read.
    a.authority().keys().sync().await.unwrap();
    b.authority().keys().sync().await.unwrap();
    assert_eq!(kids(&a).len(), 2);
    assert_eq!(kids(&a), kids(&b));

    // Vault holds exactly two versions of the ring: the initial one and the rotation.
    let metadata = bao
        .sys_call(
            Method::GET,
            &format!("secret/metadata/{prefix}/signing-keys"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(metadata["data"]["current_version"], 2, "{metadata}");

    // Health shows Vault; tokens work on both replicas with the shared pepper.
    let (a, b) = (a.spawn(), b.spawn());
    let http = reqwest::Client::new();
    for app in [&a, &b] {
        let health: Value = http
            .get(format!("{}/HealthCheck", app.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["checks"]["vault"]["status"], "Healthy", "{health}");
        assert_eq!(health["checks"]["vault"]["holds_signing_keys"], true);
        let response = http
            .post(app.authority().token_endpoint())
            .basic_auth("svc", Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn openbao_jwt_auth_accepts_a_token_this_service_issued() {
    let bao = OpenBao::start().await.expect("OpenBao dev server");
    bao.enable_kv2("secret").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // OpenBao checks exp/nbf/iat against its own (real) clock.
    let mut config = vault_config(&bao, dir.path(), "gha-auth-interop/keys", None);
    config.vault.address = None;
    config.vault.token_file = None;
    let app = start(config, SystemClock::shared()).await.spawn();
    let (_, secret) = app
        .authority()
        .clients()
        .register(
            ClientRegistration::new("field-sync")
                .grant(GrantType::ClientCredentials)
                .scope("orders:read")
                .audience(AUDIENCE),
            "e2e",
        )
        .await
        .unwrap();
    let secret = secret.unwrap().expose().to_owned();

    let config = json!({
        "jwks_url": format!("{}/.well-known/jwks.json", app.base_url()),
        "bound_issuer": app.authority().issuer(),
    });
    let jwt = &openbao_jwt_login_token(&bao, config, &app, &secret).await;
    let http = reqwest::Client::new();

    let response = http
        .post(format!("{}/v1/auth/jwt/login", bao.addr()))
        .json(&json!({ "role": "field-sync", "jwt": jwt }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body["auth"]["client_token"].is_string(), "{body}");
    assert_eq!(body["auth"]["metadata"]["role"], "field-sync", "{body}");

    // A token with a broken signature is refused, so the acceptance above is real.
    let tampered = format!("{jwt}x");
    let refused = http
        .post(format!("{}/v1/auth/jwt/login", bao.addr()))
        .json(&json!({ "role": "field-sync", "jwt": tampered }))
        .send()
        .await
        .unwrap();
    assert!(refused.status().is_client_error(), "{}", refused.status());
    app.shutdown().await.unwrap();
}
