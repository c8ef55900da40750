//! The secrets broker (server half) against a real OpenBao, the real PostgreSQL and a
//! private PostgreSQL cluster with password authentication: reads from Vault KV v2 with version
//! and max_age, default deny with an audit row, the wrong audience, the local store on embedded
//! defaults (CLI put, then GET), Vault unreachable (stale, then 503, then recovery without a
//! restart), dynamic and static database credentials that really log in, and a whole scenario's
//! debug log searched for every secret it used.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use clap::Parser;
use gha_auth::{ManualClock, SharedClock, SystemClock};
use gha_auth_server::config::Config;
use gha_auth_server::testing::Store;
use gha_auth_server::testing::{ClientRegistration, GrantType};
use gha_auth_server::{RunningApp, build_app};
use gha_auth_testkit::{Method, OpenBao, PgDatabase, PrivatePostgres};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::support::{Proxy, START};

const BROKER_AUDIENCE: &str = "gha-auth-broker";

/// The server's configuration: `grants` is the `[[broker.grants]]` TOML, the rest defaults.
fn config(data: &Path, grants: &str) -> Config {
    let mut config = Config::from_toml(grants).expect("grants parse");
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = data.to_owned();
    config
}

/// Points `config` at OpenBao (through `address`) with its root token in a file.
fn with_vault(mut config: Config, bao: &OpenBao, address: &str) -> Config {
    let token_file = config.data_dir.with_extension("vault-token");
    std::fs::create_dir_all(config.data_dir.parent().unwrap()).unwrap();
    std::fs::write(&token_file, bao.root_token()).unwrap();
    config.vault.address = Some(address.to_owned());
    config.vault.token_file = Some(token_file);
    config.vault.request_timeout = gha_auth_server::config::Duration::seconds(2);
    config
}

struct Server {
    app: RunningApp,
    http: reqwest::Client,
}

impl Server {
    async fn start(config: Config, clock: SharedClock) -> Self {
        let app = build_app(config, clock)
            .await
            .expect("server starts")
            .spawn();
        Self {
            app,
            http: reqwest::Client::new(),
        }
    }

    fn store(&self) -> &Store {
        self.app.authority().store()
    }

    /// Registers a client-credentials client for `audience`; returns its secret.
    async fn client(&self, id: &str, audience: &str) -> String {
        let (_, secret) = self
            .app
            .authority()
            .clients()
            .register(
                ClientRegistration::new(id)
                    .grant(GrantType::ClientCredentials)
                    .audience(audience),
                "e2e",
            )
            .await
            .unwrap();
        secret.unwrap().expose().to_owned()
    }

    /// Registers `ops`, an admin client with `admin:broker`, for `gha-auth --server`; returns
    /// the CLI's arguments that act through this server as `ops` (its secret in a file in
    /// `dir`).
    async fn admin_cli_args(&self, dir: &Path) -> Vec<String> {
        let (_, secret) = self
            .app
            .authority()
            .clients()
            .register(
                ClientRegistration::new("ops")
                    .grant(GrantType::ClientCredentials)
                    .scope("admin:broker")
                    .audience("gha-auth-admin"),
                "e2e",
            )
            .await
            .unwrap();
        let file = dir.join("ops-secret");
        std::fs::write(&file, secret.unwrap().expose()).unwrap();
        vec![
            "--server".to_owned(),
            self.app.base_url(),
            "--client-id".to_owned(),
            "ops".to_owned(),
            "--client-secret-file".to_owned(),
            file.display().to_string(),
        ]
    }

    async fn token(&self, id: &str, secret: &str) -> String {
        let response: Value = self
            .http
            .post(self.app.authority().token_endpoint())
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        response["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {response}"))
            .to_owned()
    }

    async fn get_secret(&self, token: &str, path: &str) -> (u16, Option<String>, Value) {
        let response = self
            .http
            .get(format!("{}/v1/secrets/{path}", self.app.base_url()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        if status == 200 {
            assert_eq!(response.headers()["cache-control"], "no-store");
        }
        let body = response.json().await.unwrap_or(Value::Null);
        (status, retry_after, body)
    }

    async fn database_creds(&self, token: &str, role: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/v1/database/creds/{role}", self.app.base_url()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn audit_rows(&self, kind: &str) -> Vec<gha_auth_server::testing::AuditRow> {
        self.store()
            .audit_rows_after(0, 1_000_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|row| row.kind == kind)
            .collect()
    }
}

async fn kv_put(bao: &OpenBao, path: &str, data: Value) {
    bao.sys_call(
        Method::POST,
        &format!("secret/data/{path}"),
        Some(json!({ "data": data })),
    )
    .await
    .unwrap();
}

const BILLING_GRANTS: &str = r#"
[[broker.grants]]
client_id = "billing"
paths = ["apps/billing/*"]
database_roles = ["billing"]

[[broker.grants]]
client_id = "intruder"
paths = ["apps/intruder/*"]
"#;

#[tokio::test]
async fn vault_kv_reads_carry_version_and_max_age_and_everything_else_is_refused() {
    let bao = OpenBao::start().await.expect("OpenBao dev server");
    bao.enable_kv2("secret").await.unwrap();
    kv_put(&bao, "apps/billing/db", json!({"password": "kv-pw-one"})).await;
    kv_put(
        &bao,
        "apps/billing/db",
        json!({"password": "kv-pw-two", "user": "billing"}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at_unix(START);
    let pg = PgDatabase::create().await.unwrap();
    let mut config = with_vault(
        config(&dir.path().join("data"), BILLING_GRANTS),
        &bao,
        bao.addr(),
    );
    config.store.url = Some(pg.url().to_owned());
    let server = Server::start(config, clock.shared()).await;
    let billing = server.client("billing", BROKER_AUDIENCE).await;
    let intruder = server.client("intruder", BROKER_AUDIENCE).await;
    let other_api = server.client("other-api", "mfs.api").await;
    let token = server.token("billing", &billing).await;

    // Allowed: the latest KV version, the broker's TTL as max_age.
    let (status, _, body) = server.get_secret(&token, "apps/billing/db").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["path"], "apps/billing/db");
    assert_eq!(body["version"], 2);
    assert_eq!(body["data"]["password"], "kv-pw-two");
    assert_eq!(body["data"]["user"], "billing");
    assert_eq!(body["max_age_seconds"], 30);
    assert_eq!(body["fetched_at"], "2026-01-01T00:00:00Z");

    // Cached: a new version in Vault shows after the TTL, not before.
    kv_put(&bao, "apps/billing/db", json!({"password": "kv-pw-three"})).await;
    clock.advance(TimeDelta::seconds(20));
    let (_, _, body) = server.get_secret(&token, "apps/billing/db").await;
    assert_eq!(
        (body["version"].as_u64(), body["max_age_seconds"].as_u64()),
        (Some(2), Some(10))
    );
    clock.advance(TimeDelta::seconds(10));
    let (_, _, body) = server.get_secret(&token, "apps/billing/db").await;
    assert_eq!(body["version"], 3);
    assert_eq!(body["data"]["password"], "kv-pw-three");

    // Not there: 404. Malformed: 400.
    let (status, _, body) = server.get_secret(&token, "apps/billing/missing").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, _, body) = server.get_secret(&token, "apps/billing/a%20b").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // Outside the policy: 403, and an audit row that names client and path, never a value.
    let intruder_token = server.token("intruder", &intruder).await;
    let (status, _, body) = server.get_secret(&intruder_token, "apps/billing/db").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied")),
        "{body}"
    );
    assert!(!body.to_string().contains("kv-pw"), "{body}");
    let (status, body) = server.database_creds(&intruder_token, "billing").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied")),
        "{body}"
    );
    let denied = server.audit_rows("broker.denied").await;
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert_eq!(denied[0].actor, "intruder");
    assert_eq!(denied[0].subject, "apps/billing/db");
    assert_eq!(denied[0].outcome, "failure");
    assert_eq!(denied[1].subject, "billing");
    assert!(
        denied[1].detail.contains("database"),
        "{}",
        denied[1].detail
    );
    assert!(denied.iter().all(|row| !row.detail.contains("kv-pw")));

    // A token for another audience is not a broker token: 401 invalid_token (RFC 6750).
    let other_token = server.token("other-api", &other_api).await;
    let response = server
        .http
        .get(format!(
            "{}/v1/secrets/apps/billing/db",
            server.app.base_url()
        ))
        .bearer_auth(&other_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert!(!response.text().await.unwrap().contains("kv-pw"));
    // No token at all: 401 with a bare challenge.
    let response = server
        .http
        .get(format!(
            "{}/v1/secrets/apps/billing/db",
            server.app.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // Allowed reads are audited in aggregate: a row per client and path per interval (the
    // clock moved 30 s, so the background flush may have written some already), with counts.
    server.app.authority().broker().flush_audit().await;
    let reads = server.audit_rows("broker.read").await;
    let db_reads: Vec<_> = reads
        .iter()
        .filter(|row| row.subject == "apps/billing/db")
        .collect();
    assert!(!db_reads.is_empty() && db_reads.len() <= 3, "{reads:?}");
    let total: u64 = db_reads
        .iter()
        .map(|row| {
            serde_json::from_str::<Value>(&row.detail).unwrap()["count"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(total, 3, "{reads:?}");
    assert!(db_reads.iter().all(|row| row.actor == "billing"));
    crate::support::assert_audit_intact(server.store()).await;

    // Metrics count the outcomes.
    let metrics = server
        .http
        .get(format!("{}/metrics", server.app.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("gha_auth_broker_reads_total"), "{metrics}");
    assert!(metrics.contains("outcome=\"hit\""), "{metrics}");
    assert!(
        metrics.contains("gha_auth_vault_token_ttl_seconds"),
        "{metrics}"
    );
    server.app.shutdown().await.unwrap();
}

/// `gha-auth secrets …` run in-process, the way the binary runs it (`server`: the arguments
/// that act through a running server's admin API, or none).
async fn cli(
    config_file: &Path,
    data: &Path,
    server: &[String],
    args: &[&str],
) -> std::process::ExitCode {
    let mut argv = vec![
        "gha-auth".to_owned(),
        "--config".to_owned(),
        config_file.display().to_string(),
        "--data-dir".to_owned(),
        data.display().to_string(),
    ];
    argv.extend(server.iter().cloned());
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    gha_auth_server::run(gha_auth_server::cli::Cli::parse_from(argv)).await
}

/// A server with `config_file` on `data`, on a manual clock that starts at the wall clock's now
/// (where a CLI on the store made the signing keys).
async fn start_on(config_file: &Path, data: &Path) -> (ManualClock, Server) {
    let clock = ManualClock::new(gha_auth::Clock::now(&SystemClock));
    let mut config = Config::load(Some(config_file), Vec::new(), &Default::default()).unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = data.to_owned();
    let server = Server::start(config, clock.shared()).await;
    (clock, server)
}

/// `through_server`: the CLI acts through the running server's admin API (`--server`) instead of
/// on the store, with the same results.
async fn local_store_round_trip(store_url: Option<&str>, through_server: bool) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config_file = dir.path().join("gha-auth.toml");
    let mut text = String::from(BILLING_GRANTS);
    if let Some(url) = store_url {
        text = format!("[store]\nurl = {url:?}\n{text}");
    }
    std::fs::write(&config_file, &text).unwrap();
    let value_file = dir.path().join("pw");
    std::fs::write(&value_file, "local-pw-one\n").unwrap();
    let field = format!("password=@{}", value_file.display());
    // Through the server, it runs before the first put.
    let mut running = None;
    let mut through = Vec::new();
    if through_server {
        let (clock, server) = start_on(&config_file, &data).await;
        through = server.admin_cli_args(dir.path()).await;
        running = Some((clock, server));
    }
    assert_eq!(
        cli(
            &config_file,
            &data,
            &through,
            &["secrets", "put", "apps/billing/smtp", &field]
        )
        .await,
        std::process::ExitCode::SUCCESS
    );
    let (clock, server) = match running {
        Some(running) => running,
        None => start_on(&config_file, &data).await,
    };
    let billing = server.client("billing", BROKER_AUDIENCE).await;
    let token = server.token("billing", &billing).await;
    let (status, _, body) = server.get_secret(&token, "apps/billing/smtp").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 1);
    assert_eq!(body["data"]["password"], "local-pw-one");

    // A second put is a new version, served once the cached one is due.
    std::fs::write(&value_file, "local-pw-two").unwrap();
    assert_eq!(
        cli(
            &config_file,
            &data,
            &through,
            &["secrets", "put", "apps/billing/smtp", &field]
        )
        .await,
        std::process::ExitCode::SUCCESS
    );
    clock.advance(TimeDelta::seconds(30));
    let (_, _, body) = server.get_secret(&token, "apps/billing/smtp").await;
    assert_eq!(body["version"], 2);
    assert_eq!(body["data"]["password"], "local-pw-two");

    // The row is sealed; the put is audited without its value.
    let rows = server.audit_rows("admin.broker_secret_put").await;
    assert_eq!(rows.len(), 2);
    if through_server {
        // Written by the server for its admin client, not by a CLI on the store.
        assert!(rows.iter().all(|r| r.actor == "client:ops"), "{rows:?}");
    }
    assert!(
        rows.iter().all(|r| !r.detail.contains("local-pw")),
        "{rows:?}"
    );

    // A literal value on the command line is refused.
    assert_eq!(
        cli(
            &config_file,
            &data,
            &through,
            &[
                "secrets",
                "put",
                "apps/billing/smtp",
                "password=local-pw-argv"
            ]
        )
        .await,
        std::process::ExitCode::FAILURE
    );

    // No Vault, no database engine: a clear 404.
    let (status, body) = server.database_creds(&token, "billing").await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("Vault database"),
        "{body}"
    );
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn local_store_on_embedded_defaults_cli_put_then_get_sqlite() {
    local_store_round_trip(None, false).await;
}

#[tokio::test]
async fn local_store_on_embedded_defaults_cli_put_through_the_server_then_get_sqlite() {
    local_store_round_trip(None, true).await;
}

#[tokio::test]
async fn local_store_cli_put_then_get_postgres() {
    let pg = PgDatabase::create().await.unwrap();
    local_store_round_trip(Some(pg.url()), false).await;
}

#[tokio::test]
async fn local_store_cli_put_through_the_server_then_get_postgres() {
    let pg = PgDatabase::create().await.unwrap();
    local_store_round_trip(Some(pg.url()), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_unreachable_serves_stale_then_503_then_recovers_without_restart() {
    let bao = OpenBao::start().await.expect("OpenBao dev server");
    bao.enable_kv2("secret").await.unwrap();
    kv_put(
        &bao,
        "apps/billing/db",
        json!({"password": "outage-pw-one"}),
    )
    .await;
    let mut proxy = Proxy::start(bao.port()).await;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at_unix(START);
    let config = with_vault(
        config(&dir.path().join("data"), BILLING_GRANTS),
        &bao,
        &format!("http://127.0.0.1:{}", proxy.port),
    );
    let server = Server::start(config, clock.shared()).await;
    let billing = server.client("billing", BROKER_AUDIENCE).await;
    let token = server.token("billing", &billing).await;
    let (status, _, body) = server.get_secret(&token, "apps/billing/db").await;
    assert_eq!((status, body["version"].as_u64()), (200, Some(1)), "{body}");

    // Vault goes away. Past the TTL the cached value is still served, marked for a quick retry.
    proxy.cut();
    clock.advance(TimeDelta::seconds(31));
    let (status, _, body) = server.get_secret(&token, "apps/billing/db").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["password"], "outage-pw-one");
    assert_eq!(body["max_age_seconds"], 5);
    assert_eq!(body["fetched_at"], "2026-01-01T00:00:00Z");

    // Past the stale window: a clear 503 with Retry-After.
    clock.advance(TimeDelta::minutes(10));
    let token = server.token("billing", &billing).await;
    let (status, retry_after, body) = server.get_secret(&token, "apps/billing/db").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("secrets_unavailable")),
        "{body}"
    );
    let retry_after: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=5).contains(&retry_after), "{retry_after}");

    // Vault is back (with a new version): served again after the retry delay, no restart.
    proxy.restore().await;
    kv_put(
        &bao,
        "apps/billing/db",
        json!({"password": "outage-pw-two"}),
    )
    .await;
    clock.advance(TimeDelta::seconds(6));
    let (status, _, body) = server.get_secret(&token, "apps/billing/db").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 2);
    assert_eq!(body["data"]["password"], "outage-pw-two");
    assert_eq!(body["max_age_seconds"], 30);
    server.app.shutdown().await.unwrap();
}

/// A private cluster with password authentication, OpenBao's database engine on it with a
/// dynamic role `billing` and a static role `billing-static` for an existing user.
async fn database_engine(bao: &OpenBao) -> PrivatePostgres {
    let pg = PrivatePostgres::start().await.unwrap();
    let mut admin = PgConnection::connect(&pg.admin_url()).await.unwrap();
    sqlx::query("CREATE ROLE billing_static LOGIN PASSWORD 'initial-static-pw'")
        .execute(&mut admin)
        .await
        .unwrap();
    bao.enable_database("database").await.unwrap();
    bao.configure_postgres_connection(
        "database",
        "appdb",
        &pg.vault_connection_url(),
        "postgres",
        &pg.superuser_password(),
        &["billing", "billing-static"],
    )
    .await
    .unwrap();
    bao.create_database_role(
        "database",
        "billing",
        "appdb",
        &[r#"CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"#],
        Duration::from_secs(60),
        Duration::from_secs(120),
    )
    .await
    .unwrap();
    bao.create_database_static_role(
        "database",
        "billing-static",
        "appdb",
        "billing_static",
        Duration::from_secs(3600),
    )
    .await
    .unwrap();
    pg
}

async fn current_user(pg: &PrivatePostgres, user: &str, password: &str) -> Result<String, String> {
    let mut conn = PgConnection::connect(&pg.url_for(user, password, "postgres"))
        .await
        .map_err(|e| e.to_string())?;
    let name: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    conn.close().await.map_err(|e| e.to_string())?;
    Ok(name)
}

const DB_GRANTS: &str = r#"
[broker]
static_roles = ["billing-static"]
static_poll_interval = "1s"

[[broker.grants]]
client_id = "billing"
paths = ["apps/billing/*"]
database_roles = ["billing", "billing-static", "billing-missing"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_credentials_through_the_broker_log_in_to_postgres() {
    let bao = OpenBao::start().await.expect("OpenBao dev server");
    bao.enable_kv2("secret").await.unwrap();
    let pg = database_engine(&bao).await;
    let dir = tempfile::tempdir().unwrap();
    let config = with_vault(
        config(&dir.path().join("data"), DB_GRANTS),
        &bao,
        bao.addr(),
    );
    let server = Server::start(config, SystemClock::shared()).await;
    let billing = server.client("billing", BROKER_AUDIENCE).await;
    let token = server.token("billing", &billing).await;

    // Dynamic: a generated user that logs in, shared by the next caller, with its lease times.
    let (status, first) = server.database_creds(&token, "billing").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["kind"], "dynamic");
    assert_eq!(first["role"], "billing");
    let user = first["username"].as_str().unwrap();
    let password = first["password"].as_str().unwrap();
    assert_eq!(current_user(&pg, user, password).await.unwrap(), user);
    assert!(current_user(&pg, user, "not-the-password").await.is_err());
    let at =
        |v: &Value, k: &str| chrono::DateTime::parse_from_rfc3339(v[k].as_str().unwrap()).unwrap();
    assert!(
        at(&first, "issued_at") < at(&first, "refresh_at"),
        "{first}"
    );
    assert!(
        at(&first, "refresh_at") < at(&first, "expires_at"),
        "{first}"
    );
    let (_, second) = server.database_creds(&token, "billing").await;
    assert_eq!(second["username"], first["username"], "one loop per role");

    // Static: the existing user with the password OpenBao set; a forced rotation is picked up.
    let (status, static_creds) = server.database_creds(&token, "billing-static").await;
    assert_eq!(status, 200, "{static_creds}");
    assert_eq!(static_creds["kind"], "static");
    assert_eq!(static_creds["username"], "billing_static");
    let old_password = static_creds["password"].as_str().unwrap().to_owned();
    assert_ne!(old_password, "initial-static-pw");
    assert_eq!(
        current_user(&pg, "billing_static", &old_password)
            .await
            .unwrap(),
        "billing_static"
    );
    bao.sys_call(Method::POST, "database/rotate-role/billing-static", None)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let new_password = loop {
        let (_, creds) = server.database_creds(&token, "billing-static").await;
        let password = creds["password"].as_str().unwrap().to_owned();
        if password != old_password {
            break password;
        }
        assert!(
            Instant::now() < deadline,
            "the rotation was never picked up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        current_user(&pg, "billing_static", &new_password)
            .await
            .unwrap(),
        "billing_static"
    );
    assert!(
        current_user(&pg, "billing_static", &old_password)
            .await
            .is_err()
    );

    // A role Vault does not have: 404.
    let (status, body) = server.database_creds(&token, "billing-missing").await;
    assert_eq!(status, 404, "{body}");
    server.app.shutdown().await.unwrap();
}

/// Collects everything logged, for the log-secrecy test.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The whole scenario at `debug` (every crate: ours, sqlx, hyper, reqwest, vaultrs), captured
/// and searched for every secret value the scenario used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_debug_log_of_a_whole_scenario() {
    let capture = Capture::default();
    // nextest runs each test in its own process, so the global subscriber is this test's; it
    // also takes the `log` crate's records (try_init installs the bridge).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_writer(capture.clone())
        .try_init()
        .expect("no other subscriber");

    let bao = OpenBao::start().await.expect("OpenBao dev server");
    bao.enable_kv2("secret").await.unwrap();
    kv_put(
        &bao,
        "apps/billing/db",
        json!({"password": "log-kv-secret-0x5eed"}),
    )
    .await;
    let pg = database_engine(&bao).await;
    let mut proxy = Proxy::start(bao.port()).await;
    let dir = tempfile::tempdir().unwrap();
    let grants = format!("{DB_GRANTS}\n[[broker.grants]]\nclient_id = \"intruder\"\n");
    let config = with_vault(
        config(&dir.path().join("data"), &grants),
        &bao,
        &format!("http://127.0.0.1:{}", proxy.port),
    );
    let server = Server::start(config, SystemClock::shared()).await;
    let billing = server.client("billing", BROKER_AUDIENCE).await;
    let intruder = server.client("intruder", BROKER_AUDIENCE).await;
    let token = server.token("billing", &billing).await;
    let intruder_token = server.token("intruder", &intruder).await;

    let mut secrets = vec![
        bao.root_token().to_owned(),
        pg.superuser_password(),
        billing.clone(),
        intruder.clone(),
        token.clone(),
        intruder_token.clone(),
        "log-kv-secret-0x5eed".to_owned(),
    ];
    let (status, _, body) = server.get_secret(&token, "apps/billing/db").await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = server.get_secret(&intruder_token, "apps/billing/db").await;
    assert_eq!(status, 403);
    for role in ["billing", "billing-static"] {
        let (status, creds) = server.database_creds(&token, role).await;
        assert_eq!(status, 200, "{creds}");
        secrets.push(creds["password"].as_str().unwrap().to_owned());
    }
    // An outage and a recovery log errors: those must be clean too.
    proxy.cut();
    kv_put(
        &bao,
        "apps/billing/other",
        json!({"password": "log-kv-secret-0xbeef"}),
    )
    .await;
    secrets.push("log-kv-secret-0xbeef".to_owned());
    let (status, _, _) = server.get_secret(&token, "apps/billing/other").await;
    assert_eq!(status, 503);
    proxy.restore().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, _) = server.get_secret(&token, "apps/billing/other").await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    server.app.authority().broker().flush_audit().await;
    server.app.shutdown().await.unwrap();

    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(logs.contains("broker: access denied"), "the capture works");
    assert!(
        logs.contains("broker: secret source failed"),
        "the outage was logged"
    );
    assert!(
        logs.lines().count() > 50,
        "debug logging was on: {} lines",
        logs.lines().count()
    );
    for secret in &secrets {
        assert!(secret.len() >= 8, "a real secret: {secret:?}");
        assert!(
            !logs.contains(secret.as_str()),
            "a secret reached the log: {}",
            logs.lines()
                .find(|l| l.contains(secret.as_str()))
                .unwrap_or_default()
        );
    }
}
