//! The test harness itself works: OpenBao dev servers, throwaway databases and private
//! PostgreSQL clusters, used the way the other modules use them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gha_auth_testkit::{OpenBao, PgDatabase, PrivatePostgres};
use sqlx::{Connection, PgConnection};
use vaultrs::api::kv2::requests::SetSecretRequestOptions;
use vaultrs::error::ClientError;
use vaultrs::{auth::approle, kv2};

fn secret(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn database_exists(name: &str) -> bool {
    let mut admin = PgConnection::connect(&PgDatabase::admin_url_from_env())
        .await
        .unwrap();
    let found: Option<String> =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_optional(&mut admin)
            .await
            .unwrap();
    found.is_some()
}

#[tokio::test]
async fn openbao_kv2_round_trip_with_check_and_set() {
    let started = Instant::now();
    let bao = OpenBao::start().await.unwrap();
    eprintln!("OpenBao dev server ready in {:?}", started.elapsed());
    // A new mount (dev servers also have KV v2 at `secret/` already; enabling that is a no-op).
    bao.enable_kv2("kv").await.unwrap();
    bao.enable_kv2("secret").await.unwrap();
    let client = bao.client().unwrap();

    let v1 = kv2::set(&client, "kv", "app/db", &secret(&[("password", "one")]))
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    let read: HashMap<String, String> = kv2::read(&client, "kv", "app/db").await.unwrap();
    assert_eq!(read["password"], "one");

    // cas = 0 means "only if it does not exist yet": it does.
    let create_only = kv2::set_with_options(
        &client,
        "kv",
        "app/db",
        &secret(&[("password", "clobber")]),
        SetSecretRequestOptions { cas: 0 },
    )
    .await;
    assert!(
        create_only.is_err(),
        "cas=0 on an existing secret must fail"
    );

    let v2 = kv2::set_with_options(
        &client,
        "kv",
        "app/db",
        &secret(&[("password", "two")]),
        SetSecretRequestOptions { cas: 1 },
    )
    .await
    .unwrap();
    assert_eq!(v2.version, 2);

    // A writer that still believes version 1 is current loses.
    let stale = kv2::set_with_options(
        &client,
        "kv",
        "app/db",
        &secret(&[("password", "stale")]),
        SetSecretRequestOptions { cas: 1 },
    )
    .await;
    match stale {
        Err(ClientError::APIError { code, errors }) => {
            assert_eq!(code, 400, "{errors:?}");
            assert!(
                errors.iter().any(|e| e.contains("check-and-set")),
                "{errors:?}"
            );
        }
        other => panic!("stale cas write must be rejected, got {other:?}"),
    }

    let read: HashMap<String, String> = kv2::read(&client, "kv", "app/db").await.unwrap();
    assert_eq!(read["password"], "two");
    let old: HashMap<String, String> = kv2::read_version(&client, "kv", "app/db", 1).await.unwrap();
    assert_eq!(old["password"], "one");
}

#[tokio::test]
async fn openbao_approle_login_gets_a_token_limited_to_its_policy() {
    let bao = OpenBao::start().await.unwrap();
    bao.enable_kv2("secret").await.unwrap();
    bao.write_policy(
        "read-app",
        r#"path "secret/data/app/*" { capabilities = ["read"] }"#,
    )
    .await
    .unwrap();
    let root = bao.client().unwrap();
    kv2::set(&root, "secret", "app/api", &secret(&[("key", "k1")]))
        .await
        .unwrap();
    kv2::set(&root, "secret", "other/api", &secret(&[("key", "k2")]))
        .await
        .unwrap();

    let (role_id, secret_id) = bao
        .enable_approle(
            "svc",
            &["read-app"],
            Duration::from_secs(60),
            Duration::from_secs(120),
        )
        .await
        .unwrap();
    let anonymous = bao.client_with_token("").unwrap();
    let auth = approle::login(&anonymous, "approle", &role_id, &secret_id)
        .await
        .unwrap();
    assert_eq!(auth.lease_duration, 60);
    assert!(auth.token_policies.contains(&"read-app".to_owned()));

    let svc = bao.client_with_token(&auth.client_token).unwrap();
    let read: HashMap<String, String> = kv2::read(&svc, "secret", "app/api").await.unwrap();
    assert_eq!(read["key"], "k1");
    let denied = kv2::read::<HashMap<String, String>>(&svc, "secret", "other/api").await;
    assert!(
        matches!(denied, Err(ClientError::APIError { code: 403, .. })),
        "{denied:?}"
    );

    // A wrong secret id does not log in; a second generated one does.
    assert!(
        approle::login(&anonymous, "approle", &role_id, "not-the-secret-id")
            .await
            .is_err()
    );
    let another = bao.approle_secret_id("svc").await.unwrap();
    approle::login(&anonymous, "approle", &role_id, &another)
        .await
        .unwrap();

    // Tokens made directly carry the requested TTL.
    let token = bao
        .create_token(
            &["read-app"],
            Duration::from_secs(30),
            Some(Duration::from_secs(90)),
            true,
        )
        .await
        .unwrap();
    let info = vaultrs::token::lookup(&root, &token).await.unwrap();
    assert!(info.ttl <= 30 && info.ttl > 0, "ttl {}", info.ttl);
    assert_eq!(info.explicit_max_ttl, 90);
    assert_eq!(info.renewable, Some(true));
}

#[tokio::test]
async fn several_openbao_servers_run_at_once() {
    let (a, b) = tokio::join!(OpenBao::start(), OpenBao::start());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.addr(), b.addr());
    assert_ne!(a.root_token(), b.root_token());
    // Each one accepts only its own root token.
    let health = a
        .sys_call(
            gha_auth_testkit::Method::GET,
            "auth/token/lookup-self",
            None,
        )
        .await
        .unwrap();
    assert_eq!(health["data"]["id"], a.root_token());
    assert!(
        a.call_with_token(
            b.root_token(),
            gha_auth_testkit::Method::GET,
            "auth/token/lookup-self",
            None
        )
        .await
        .is_err()
    );

    // Dropping kills the server.
    let addr = a.addr().to_owned();
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let port = addr.trim_start_matches("http://127.0.0.1:");
    assert!(
        tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .is_err(),
        "OpenBao still listening after drop"
    );
}

#[tokio::test]
async fn throwaway_database_is_usable_and_dropped() {
    let db = PgDatabase::create().await.unwrap();
    let name = db.name().to_owned();
    assert!(name.starts_with("gha_test_"));
    assert!(db.url().ends_with(&format!("/{name}")));

    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(one, 1);
    sqlx::query("CREATE TABLE notes (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    for body in ["alpha", "beta"] {
        sqlx::query("INSERT INTO notes (body) VALUES ($1)")
            .bind(body)
            .execute(db.pool())
            .await
            .unwrap();
    }
    let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM notes ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(bodies, ["alpha", "beta"]);

    // Its own connection URL works too.
    let mut conn = PgConnection::connect(db.url()).await.unwrap();
    let current: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(current, name);
    // An open session does not stop the drop (WITH (FORCE)).

    assert!(database_exists(&name).await);
    db.drop_db().await.unwrap();
    assert!(!database_exists(&name).await, "{name} still exists");
}

#[tokio::test]
async fn throwaway_database_is_dropped_by_drop_too() {
    let db = PgDatabase::create().await.unwrap();
    let name = db.name().to_owned();
    sqlx::query("CREATE TABLE t (x INT)")
        .execute(db.pool())
        .await
        .unwrap();
    assert!(database_exists(&name).await);
    drop(db);
    assert!(!database_exists(&name).await, "{name} still exists");
}

#[tokio::test]
async fn private_postgres_checks_passwords() {
    let started = Instant::now();
    let pg = PrivatePostgres::start().await.unwrap();
    eprintln!("private PostgreSQL ready in {:?}", started.elapsed());

    let mut admin = PgConnection::connect(&pg.admin_url()).await.unwrap();
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(user, "postgres");

    let wrong = pg.url_for("postgres", "not-the-password", "postgres");
    let err = PgConnection::connect(&wrong)
        .await
        .expect_err("a wrong password must be rejected");
    let code = err
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("28P01"), "{err}"); // invalid_password

    // A role made here logs in with its password only.
    sqlx::query("CREATE ROLE app LOGIN PASSWORD 'app-pw-1'")
        .execute(&mut admin)
        .await
        .unwrap();
    PgConnection::connect(&pg.url_for("app", "app-pw-1", "postgres"))
        .await
        .unwrap();
    assert!(
        PgConnection::connect(&pg.url_for("app", "app-pw-2", "postgres"))
            .await
            .is_err()
    );
    admin.close().await.unwrap();

    let port = pg.port();
    drop(pg);
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "private PostgreSQL still listening after drop"
    );
}

#[tokio::test]
async fn openbao_database_engine_issues_working_postgres_credentials() {
    let (bao, pg) = tokio::join!(OpenBao::start(), PrivatePostgres::start());
    let (bao, pg) = (bao.unwrap(), pg.unwrap());

    bao.enable_database("database").await.unwrap();
    bao.configure_postgres_connection(
        "database",
        "appdb",
        &pg.vault_connection_url(),
        "postgres",
        &pg.superuser_password(),
        &["app"],
    )
    .await
    .unwrap();
    bao.create_database_role(
        "database",
        "app",
        "appdb",
        &[
            r#"CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"#,
        ],
        Duration::from_secs(60),
        Duration::from_secs(120),
    )
    .await
    .unwrap();

    let client = bao.client().unwrap();
    let creds = vaultrs::database::role::creds(&client, "database", "app")
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&pg.url_for(&creds.username, &creds.password, "postgres"))
        .await
        .unwrap();
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(user, creds.username);
    assert!(
        PgConnection::connect(&pg.url_for(&creds.username, "wrong", "postgres"))
            .await
            .is_err()
    );
}
