//! The Vault client layer (`gha_auth::vault`) against a real OpenBao dev server and a private
//! PostgreSQL cluster with password authentication: the identity loop across token max TTLs,
//! AppRole secret_id rotation, KV v2 check-and-set, dynamic and static database credentials,
//! and an unreachable Vault.
//!
//! Timings use the real clock (Vault's TTLs are real), compressed to seconds.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use gha_auth::SystemClock;
use gha_auth::vault::{
    AuthConfig, CredentialSource, Database, DbCredentials, DynamicCredentials, Kv2, KvData,
    RenewalPolicy, StaticCredentials, VaultConfig, VaultError, VaultHealth, VaultSession,
};
use gha_auth_testkit::{Method, OpenBao, PrivatePostgres, random_hex};
use serde_json::json;
use sqlx::{Connection, PgConnection};

use crate::support::Proxy;

/// A private directory for credential files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "gha-auth-vault-e2e-{tag}-{}-{}",
            std::process::id(),
            random_hex(4).unwrap()
        ));
        std::fs::create_dir_all(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        Self(path)
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.join(name);
        // Replace atomically, as a provisioner would.
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, content).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fast backoff so failure tests finish quickly.
fn fast_policy() -> RenewalPolicy {
    RenewalPolicy::default()
        .with_backoff(Duration::from_millis(200), Duration::from_secs(2))
        .with_min_interval(Duration::from_millis(200))
}

fn config(bao: &OpenBao, auth: AuthConfig) -> VaultConfig {
    VaultConfig::new(bao.addr(), auth)
        .with_request_timeout(Duration::from_secs(5))
        .with_renewal(fast_policy())
}

fn root_session(bao: &OpenBao) -> VaultSession {
    let auth = AuthConfig::token(CredentialSource::value(bao.root_token()));
    VaultSession::start(&config(bao, auth), SystemClock::shared()).unwrap()
}

/// AppRole credentials in files, and a session logging in with them.
async fn approle_session(
    bao: &OpenBao,
    dir: &TempDir,
    role: &str,
    policies: &[&str],
    ttl: Duration,
    max_ttl: Duration,
) -> VaultSession {
    let auth = approle_auth(bao, dir, role, policies, ttl, max_ttl).await;
    let session = VaultSession::start(&config(bao, auth), SystemClock::shared()).unwrap();
    session.ready(Duration::from_secs(10)).await.unwrap();
    session
}

/// An AppRole role and its role_id / secret_id files.
async fn approle_auth(
    bao: &OpenBao,
    dir: &TempDir,
    role: &str,
    policies: &[&str],
    ttl: Duration,
    max_ttl: Duration,
) -> AuthConfig {
    let (role_id, secret_id) = bao
        .enable_approle(role, policies, ttl, max_ttl)
        .await
        .unwrap();
    let role_id_file = dir.write("role_id", &role_id);
    let secret_id_file = dir.write("secret_id", &secret_id);
    AuthConfig::approle(
        CredentialSource::file(role_id_file),
        CredentialSource::file(secret_id_file),
    )
}

async fn can_connect(pg: &PrivatePostgres, user: &str, password: &str) -> Result<(), String> {
    let url = pg.url_for(user, password, "postgres");
    let mut conn = PgConnection::connect(&url)
        .await
        .map_err(|e| e.to_string())?;
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(one, 1);
    conn.close().await.map_err(|e| e.to_string())
}

async fn creds_connect(pg: &PrivatePostgres, creds: &DbCredentials) -> Result<(), String> {
    can_connect(pg, creds.username.expose(), creds.password.expose()).await
}

/// The 30-day outage, compressed: tokens live 2 s and at most 6 s. For 20 s a reader reads KV v2
/// every 100 ms through the session's current token; not one read may fail, and the session must
/// have logged in again from its AppRole credentials several times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_identity_loop_survives_token_max_ttl() {
    let bao = OpenBao::start().await.unwrap();
    bao.enable_kv2("kv").await.unwrap();
    bao.write_policy(
        "reader",
        r#"path "kv/data/app/*" { capabilities = ["read"] }"#,
    )
    .await
    .unwrap();
    bao.sys_call(
        Method::POST,
        "kv/data/app/config",
        Some(json!({"data": {"password": "p1"}})),
    )
    .await
    .unwrap();
    let dir = TempDir::new("outage");
    let session = approle_session(
        &bao,
        &dir,
        "outage",
        &["reader"],
        Duration::from_secs(2),
        Duration::from_secs(6),
    )
    .await;
    let kv = Kv2::new(session.clone(), "kv").unwrap();

    let started = Instant::now();
    let (mut ok, mut failed) = (0u32, Vec::new());
    while started.elapsed() < Duration::from_secs(20) {
        match kv.read("app/config").await {
            Ok(secret) => {
                assert_eq!(secret.data.get_secret("password").unwrap().expose(), "p1");
                ok += 1;
            }
            Err(error) => failed.push(format!("{:?}: {error}", started.elapsed())),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = session.status();
    eprintln!(
        "outage test: {ok} reads ok, {} failed; status {status:?}",
        failed.len()
    );
    assert!(failed.is_empty(), "failed reads: {failed:#?}");
    assert!(ok > 150, "only {ok} reads");
    assert!(status.relogins >= 2, "re-logins: {}", status.relogins);
    assert!(status.renewals >= 2, "renewals: {}", status.renewals);
    assert_eq!(status.health, VaultHealth::Healthy);
    assert_eq!(status.login_failures, 0);
    assert!(
        status
            .token_ttl_remaining
            .is_some_and(|ttl| ttl > Duration::ZERO)
    );
    session.shutdown();
}

/// The secret_id file is replaced and the old secret_id destroyed: the next login reads the new
/// one. A broken file shows in the status (without its content) and is recovered from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_approle_rereads_the_secret_id_file() {
    let bao = OpenBao::start().await.unwrap();
    bao.write_policy("none", r#"path "sys/nothing" { capabilities = ["deny"] }"#)
        .await
        .unwrap();
    let dir = TempDir::new("approle");
    let session = approle_session(
        &bao,
        &dir,
        "rotating",
        &["none"],
        Duration::from_secs(60),
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(session.current().unwrap().generation(), 1);
    let old_secret_id = std::fs::read_to_string(dir.0.join("secret_id")).unwrap();

    // The provisioner issues a new secret_id, replaces the file and destroys the old one.
    let new_secret_id = bao.approle_secret_id("rotating").await.unwrap();
    dir.write("secret_id", &new_secret_id);
    bao.sys_call(
        Method::POST,
        "auth/approle/role/rotating/secret-id/destroy",
        Some(json!({ "secret_id": old_secret_id })),
    )
    .await
    .unwrap();
    let mut tokens = session.subscribe();
    tokens.borrow_and_update();
    session.relogin_now();
    tokio::time::timeout(Duration::from_secs(10), tokens.changed())
        .await
        .unwrap()
        .unwrap();
    let status = session.status();
    assert_eq!(session.current().unwrap().generation(), 2);
    assert_eq!(status.login_failures, 0, "{status:?}");
    assert_eq!(status.relogins, 1);

    // A wrong secret_id: the login fails, the status says so without the value, the old token
    // stays in use.
    dir.write("secret_id", "wrong-secret-id-value-0000");
    session.relogin_now();
    let deadline = Instant::now() + Duration::from_secs(10);
    while session.status().login_failures == 0 {
        assert!(Instant::now() < deadline, "login never failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = session.status();
    assert_eq!(status.health, VaultHealth::Degraded, "{status:?}");
    let error = status.last_error.clone().unwrap();
    assert!(error.contains("approle"), "{error}");
    assert!(
        !format!("{status:?}").contains("wrong-secret-id-value"),
        "{status:?}"
    );
    assert_eq!(session.current().unwrap().generation(), 2);

    // Fixed: the loop's next retry (backoff ≤ 2 s) logs in.
    let fixed = bao.approle_secret_id("rotating").await.unwrap();
    dir.write("secret_id", &fixed);
    let deadline = Instant::now() + Duration::from_secs(10);
    while session.current().unwrap().generation() < 3 {
        assert!(
            Instant::now() < deadline,
            "no recovery: {:?}",
            session.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(session.status().health, VaultHealth::Healthy);
}

/// KV v2: versions and metadata, check-and-set conflicts, read-modify-write retrying on a
/// conflict, list, not found and permission denied told apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_kv2_check_and_set() {
    let bao = OpenBao::start().await.unwrap();
    bao.enable_kv2("kv").await.unwrap();
    let session = root_session(&bao);
    let kv = Kv2::new(session.clone(), "kv").unwrap();

    let v1 = kv
        .write("app/db", &KvData::new().with("password", "one"), Some(0))
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    // cas 0 = create only: exists now.
    let error = kv
        .write("app/db", &KvData::new().with("password", "x"), Some(0))
        .await
        .unwrap_err();
    assert!(error.is_cas_conflict(), "{error}");
    let v2 = kv
        .write("app/db", &KvData::new().with("password", "two"), Some(1))
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    // A writer still holding version 1 loses.
    let error = kv
        .write("app/db", &KvData::new().with("password", "x"), Some(1))
        .await
        .unwrap_err();
    assert!(matches!(error, VaultError::CasConflict { .. }), "{error}");
    assert!(!error.to_string().contains("\"x\""));

    let latest = kv.read("app/db").await.unwrap();
    assert_eq!(latest.metadata.version, 2);
    assert_eq!(latest.metadata.created_time, v2.created_time);
    assert_eq!(latest.data.get_secret("password").unwrap().expose(), "two");
    assert!(!format!("{latest:?}").contains("two\""));
    let first = kv.read_version("app/db", 1).await.unwrap();
    assert_eq!(first.data.get_secret("password").unwrap().expose(), "one");

    assert!(kv.read("app/missing").await.unwrap_err().is_not_found());
    assert!(
        kv.read_version("app/db", 99)
            .await
            .unwrap_err()
            .is_not_found()
    );
    kv.write("app/other", &KvData::new().with("k", "v"), None)
        .await
        .unwrap();
    let mut keys = kv.list("app").await.unwrap();
    keys.sort();
    assert_eq!(keys, ["db", "other"]);
    assert!(kv.list("nothing/here").await.unwrap().is_empty());

    // Read-modify-write: a concurrent writer slips in between our read and our write once; the
    // helper retries and applies the change on top of the other writer's version.
    // (No serde derive in this crate: the counter is plain JSON.)
    type Counter = serde_json::Value;
    let count = |c: &Counter| c["n"].as_u64().unwrap();
    kv.write("app/counter", &json!({"n": 0}), Some(0))
        .await
        .unwrap();
    let calls = AtomicU32::new(0);
    let runtime = tokio::runtime::Handle::current();
    let result = kv
        .read_modify_write::<Counter, _>("app/counter", 5, |current| {
            let n = current.as_ref().map_or(0, count);
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                // The other writer: n = 100, version 2.
                tokio::task::block_in_place(|| {
                    runtime
                        .block_on(kv.write("app/counter", &json!({"n": 100}), None))
                        .unwrap();
                });
            }
            Some(json!({"n": n + 1}))
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one conflict, one retry");
    assert_eq!(result.version, 3);
    let counter = kv.read_as::<Counter>("app/counter", None).await.unwrap();
    assert_eq!(count(&counter.data), 101);

    // Many concurrent increments: none lost.
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let kv = kv.clone();
            tokio::spawn(async move {
                for _ in 0..4 {
                    kv.read_modify_write::<Counter, _>("app/counter", 100, |c| {
                        Some(json!({"n": c.map_or(0, |c| c["n"].as_u64().unwrap()) + 1}))
                    })
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        count(
            &kv.read_as::<Counter>("app/counter", None)
                .await
                .unwrap()
                .data
        ),
        125
    );
    // Creating through read-modify-write (cas 0), and leaving unchanged.
    let created = kv
        .read_modify_write::<Counter, _>("app/new", 3, |c| {
            assert!(c.is_none());
            Some(json!({"n": 7}))
        })
        .await
        .unwrap();
    assert_eq!(created.unwrap().version, 1);
    assert!(
        kv.read_modify_write::<Counter, _>("app/new", 3, |_| None)
            .await
            .unwrap()
            .is_none()
    );

    // A poller publishes new versions.
    let watch = kv.watch("app/db", Duration::from_millis(200)).unwrap();
    let mut versions = watch.subscribe();
    tokio::time::timeout(
        Duration::from_secs(5),
        versions.wait_for(|v| v.as_ref().is_some_and(|s| s.metadata.version == 2)),
    )
    .await
    .unwrap()
    .unwrap();
    kv.write("app/db", &KvData::new().with("password", "three"), Some(2))
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        versions.wait_for(|v| v.as_ref().is_some_and(|s| s.metadata.version == 3)),
    )
    .await
    .unwrap()
    .unwrap();
    let three = watch.current().unwrap();
    assert_eq!(three.data.get_secret("password").unwrap().expose(), "three");
    assert_eq!(watch.status().version, 3);

    // Permission denied is its own error.
    bao.write_policy(
        "kv-read",
        r#"path "kv/data/app/*" { capabilities = ["read"] }"#,
    )
    .await
    .unwrap();
    let token = bao
        .create_token(&["kv-read"], Duration::from_secs(300), None, true)
        .await
        .unwrap();
    let limited = VaultSession::start(
        &config(
            &bao,
            AuthConfig::token(CredentialSource::value(token.as_str())),
        ),
        SystemClock::shared(),
    )
    .unwrap();
    limited.ready(Duration::from_secs(5)).await.unwrap();
    let limited_kv = Kv2::new(limited, "kv").unwrap();
    assert_eq!(limited_kv.read("app/db").await.unwrap().metadata.version, 3);
    let error = limited_kv
        .write("app/db", &KvData::new().with("p", "q"), None)
        .await
        .unwrap_err();
    assert!(error.is_permission_denied(), "{error}");
    assert!(!error.to_string().contains(&token));
}

/// Sets up OpenBao's database engine on a private PostgreSQL cluster: connection `pg`, dynamic
/// role `app` (given TTLs) and the policy `db-app` for it.
async fn database_engine(bao: &OpenBao, pg: &PrivatePostgres, ttl: Duration, max_ttl: Duration) {
    bao.enable_database("database").await.unwrap();
    bao.configure_postgres_connection(
        "database",
        "pg",
        &pg.vault_connection_url(),
        "postgres",
        &pg.superuser_password(),
        &["app", "fixed", "quick"],
    )
    .await
    .unwrap();
    bao.create_database_role(
        "database",
        "app",
        "pg",
        &[r#"CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"#],
        ttl,
        max_ttl,
    )
    .await
    .unwrap();
    bao.write_policy(
        "db-app",
        r#"
        path "database/creds/app" { capabilities = ["read"] }
        path "database/static-creds/*" { capabilities = ["read"] }
        path "sys/leases/renew" { capabilities = ["update"] }
        path "sys/leases/revoke" { capabilities = ["update"] }
        path "sys/leases/lookup" { capabilities = ["update"] }
        "#,
    )
    .await
    .unwrap();
}

/// Dynamic credentials (TTL 3 s, max 8 s): the lease is renewed, new credentials are issued
/// before the max TTL, every published credential logs in to PostgreSQL (which checks the
/// password), the previous one keeps working until its lease ends and then stops working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_dynamic_database_credentials_renew_and_reissue() {
    let (bao, pg) = tokio::join!(OpenBao::start(), PrivatePostgres::start());
    let (bao, pg) = (bao.unwrap(), pg.unwrap());
    database_engine(&bao, &pg, Duration::from_secs(3), Duration::from_secs(8)).await;
    let dir = TempDir::new("dynamic");
    let session = approle_session(
        &bao,
        &dir,
        "db-client",
        &["db-app"],
        Duration::from_secs(120),
        Duration::from_secs(600),
    )
    .await;
    let db = Database::new(session.clone(), "database").unwrap();

    // The raw API first: the lease comes with the credentials, and can be renewed and revoked.
    let one = db.issue("app").await.unwrap();
    assert!(
        one.lease.id.starts_with("database/creds/app/"),
        "{}",
        one.lease.id
    );
    assert_eq!(one.lease.duration, Duration::from_secs(3));
    assert!(one.lease.renewable);
    creds_connect(&pg, &one).await.unwrap();
    let renewed = db
        .leases()
        .renew(&one.lease.id, Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(renewed.id, one.lease.id);
    assert!(renewed.duration > Duration::ZERO && renewed.duration <= Duration::from_secs(3));
    let info = db.leases().lookup(&one.lease.id).await.unwrap();
    assert!(info.renewable && info.ttl <= 3, "{info:?}");
    db.leases().revoke(&one.lease.id).await.unwrap();
    assert!(
        creds_connect(&pg, &one).await.is_err(),
        "revoked credentials still work"
    );
    assert!(!format!("{one:?}").contains(one.password.expose()));

    // The loop.
    let started = Instant::now();
    let creds = DynamicCredentials::start(db.clone(), "app").await.unwrap();
    let first = creds.current();
    assert_eq!(first.serial, 1);
    let mut changes = creds.subscribe();
    let mut seen: Vec<Arc<DbCredentials>> = vec![Arc::clone(&first)];
    let mut checks = 0u32;
    while started.elapsed() < Duration::from_secs(15) {
        tokio::select! {
            changed = changes.changed() => {
                changed.unwrap();
                let fresh = Arc::clone(&changes.borrow_and_update());
                eprintln!("{:?}: serial {} lease {}", started.elapsed(), fresh.serial, fresh.lease.id);
                creds_connect(&pg, &fresh).await.unwrap_or_else(|e| {
                    panic!("new credentials {} do not work: {e}", fresh.serial)
                });
                // The previous credentials still work: connections can drain.
                let previous = seen.last().unwrap();
                creds_connect(&pg, previous).await.unwrap_or_else(|e| {
                    panic!("previous credentials {} stopped at once: {e}", previous.serial)
                });
                seen.push(fresh);
            }
            () = tokio::time::sleep(Duration::from_millis(250)) => {
                let current = creds.current();
                creds_connect(&pg, &current).await.unwrap_or_else(|e| {
                    panic!("current credentials {} failed at {:?}: {e}", current.serial, started.elapsed())
                });
                checks += 1;
            }
        }
    }
    let status = creds.status();
    eprintln!(
        "dynamic credentials: {} published, {checks} checks, status {status:?}",
        seen.len()
    );
    assert!(seen.len() >= 2, "no re-issue before max TTL");
    assert!(status.renewals >= 2, "{status:?}");
    assert_eq!(status.consecutive_failures, 0, "{status:?}");
    assert_eq!(
        status.last_replacement_reason,
        Some("lease max TTL reached")
    );
    // The first credentials were issued more than max TTL (8 s) ago: their lease is over and
    // OpenBao dropped the user.
    assert!(
        creds_connect(&pg, &first).await.is_err(),
        "expired credentials still work"
    );
    // Forced refresh (e.g. after the database refused the password).
    let before = creds.current().serial;
    creds.refresh_now();
    tokio::time::timeout(Duration::from_secs(5), changes.changed())
        .await
        .unwrap()
        .unwrap();
    let after = creds.current();
    assert_eq!(after.serial, before + 1);
    creds_connect(&pg, &after).await.unwrap();
    creds.shutdown();
}

/// Leases die with the token that created them: with a token max TTL of 6 s, every re-login must
/// be followed by new credentials, and the current credentials must always work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_dynamic_credentials_follow_relogins() {
    let (bao, pg) = tokio::join!(OpenBao::start(), PrivatePostgres::start());
    let (bao, pg) = (bao.unwrap(), pg.unwrap());
    database_engine(&bao, &pg, Duration::from_secs(20), Duration::from_secs(60)).await;
    let dir = TempDir::new("relogin");
    let session = approle_session(
        &bao,
        &dir,
        "short-token",
        &["db-app"],
        Duration::from_secs(2),
        Duration::from_secs(6),
    )
    .await;
    let db = Database::new(session.clone(), "database").unwrap();
    let creds = DynamicCredentials::start(db, "app").await.unwrap();
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut checks = 0;
    while started.elapsed() < Duration::from_secs(14) {
        let current = creds.current();
        if let Err(error) = creds_connect(&pg, &current).await {
            failures.push(format!(
                "{:?} serial {}: {error}",
                started.elapsed(),
                current.serial
            ));
        }
        checks += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = creds.status();
    let session_status = session.status();
    eprintln!("relogin test: {checks} checks; credentials {status:?}; session {session_status:?}");
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(session_status.relogins >= 1, "{session_status:?}");
    let current = creds.current();
    assert!(current.serial >= 2, "credentials never re-issued");
    assert_eq!(
        current.token_generation,
        session.current().unwrap().generation()
    );
}

/// Static roles: forced rotation in OpenBao → the old password fails, a refresh brings the new
/// one, which works; a short rotation period is followed from the TTL alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_static_database_credentials_follow_rotation() {
    let (bao, pg) = tokio::join!(OpenBao::start(), PrivatePostgres::start());
    let (bao, pg) = (bao.unwrap(), pg.unwrap());
    database_engine(&bao, &pg, Duration::from_secs(60), Duration::from_secs(120)).await;
    let mut admin = PgConnection::connect(&pg.admin_url()).await.unwrap();
    for user in ["fixed_user", "quick_user"] {
        sqlx::query(&format!(
            "CREATE ROLE {user} WITH LOGIN PASSWORD 'initial-{user}'"
        ))
        .execute(&mut admin)
        .await
        .unwrap();
    }
    bao.create_database_static_role(
        "database",
        "fixed",
        "pg",
        "fixed_user",
        Duration::from_secs(3600),
    )
    .await
    .unwrap();
    let dir = TempDir::new("static");
    let session = approle_session(
        &bao,
        &dir,
        "static-client",
        &["db-app"],
        Duration::from_secs(120),
        Duration::from_secs(600),
    )
    .await;
    let db = Database::new(session.clone(), "database").unwrap();

    let fixed = StaticCredentials::start(db.clone(), "fixed", Duration::from_secs(60))
        .await
        .unwrap();
    let one = fixed.current();
    assert_eq!(one.username.expose(), "fixed_user");
    assert!(one.last_vault_rotation.is_some());
    assert!(one.ttl > Duration::from_secs(3500));
    can_connect(&pg, "fixed_user", one.password.expose())
        .await
        .unwrap();
    assert!(
        can_connect(&pg, "fixed_user", "initial-fixed_user")
            .await
            .is_err()
    );

    // Forced rotation in OpenBao: the password we hold stops working at once (static roles
    // have no overlap), and the refresh hook fetches the new one.
    bao.sys_call(Method::POST, "database/rotate-role/fixed", None)
        .await
        .unwrap();
    assert!(
        can_connect(&pg, "fixed_user", one.password.expose())
            .await
            .is_err()
    );
    let two = fixed.refresh().await.unwrap();
    assert_eq!(two.serial, 2);
    assert!(two.differs_from(&one));
    assert!(two.last_vault_rotation > one.last_vault_rotation);
    can_connect(&pg, "fixed_user", two.password.expose())
        .await
        .unwrap();
    assert_eq!(fixed.current().serial, 2);
    assert_eq!(fixed.status().replacements, 1);
    // Nothing changed: a refresh publishes nothing.
    assert_eq!(fixed.refresh().await.unwrap().serial, 2);

    // A 5 s rotation period (OpenBao's minimum): the loop notices from the TTL, with no hint.
    bao.create_database_static_role(
        "database",
        "quick",
        "pg",
        "quick_user",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let quick = StaticCredentials::start(db, "quick", Duration::from_secs(60))
        .await
        .unwrap();
    let first = quick.current();
    let mut changes = quick.subscribe();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(20), changes.changed())
        .await
        .unwrap()
        .unwrap();
    let rotated = quick.current();
    eprintln!(
        "static rotation noticed after {:?}: {:?}",
        started.elapsed(),
        quick.status()
    );
    assert_eq!(rotated.serial, 2);
    can_connect(&pg, "quick_user", rotated.password.expose())
        .await
        .unwrap();
    assert!(
        can_connect(&pg, "quick_user", first.password.expose())
            .await
            .is_err()
    );
}

/// Vault goes away: the status shows the error, the loop backs off (a bounded number of
/// attempts, no spin), and a read fails with an "unreachable" error rather than hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_unreachable_is_visible_and_backs_off() {
    let bao = OpenBao::start().await.unwrap();
    bao.enable_kv2("kv").await.unwrap();
    bao.write_policy("reader", r#"path "kv/data/*" { capabilities = ["read"] }"#)
        .await
        .unwrap();
    let dir = TempDir::new("down");
    let session = approle_session(
        &bao,
        &dir,
        "down",
        &["reader"],
        Duration::from_secs(2),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(session.status().health, VaultHealth::Healthy);
    let kv = Kv2::new(session.clone(), "kv").unwrap();
    drop(bao); // kills the server

    tokio::time::sleep(Duration::from_secs(8)).await;
    let status = session.status();
    eprintln!("while down: {status:?}");
    let tries = status.login_failures + status.renewal_failures;
    assert!(tries >= 3, "too few attempts: {status:?}");
    // 200 ms doubling to a 2 s cap over ~7 s: about 7 attempts; a spinning loop makes thousands.
    assert!(tries <= 15, "not backing off: {status:?}");
    assert!(
        matches!(
            status.health,
            VaultHealth::Degraded | VaultHealth::Unhealthy
        ),
        "{status:?}"
    );
    let error = status.last_error.clone().unwrap();
    assert!(error.contains("unreachable"), "{error}");
    assert_eq!(status.next_step, "login");
    assert!(status.next_step_at.is_some());

    // The token expired meanwhile (TTL 2 s): unhealthy, and the status says so.
    assert_eq!(status.health, VaultHealth::Unhealthy);
    assert_eq!(status.token_ttl_remaining, Some(Duration::ZERO));

    let started = Instant::now();
    let error = kv.read("anything").await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "read hung for {:?}",
        started.elapsed()
    );
}

/// Vault unreachable for a while, then back at the same address: the loop recovers by itself
/// (no restart), logs in again and reads work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_recovers_when_it_comes_back() {
    let bao = OpenBao::start().await.unwrap();
    bao.enable_kv2("kv").await.unwrap();
    bao.write_policy("reader", r#"path "kv/data/*" { capabilities = ["read"] }"#)
        .await
        .unwrap();
    bao.sys_call(
        Method::POST,
        "kv/data/app",
        Some(json!({"data": {"k": "v"}})),
    )
    .await
    .unwrap();
    let mut proxy = Proxy::start(bao.port()).await;
    let dir = TempDir::new("recover");
    let auth = approle_auth(
        &bao,
        &dir,
        "recover",
        &["reader"],
        Duration::from_secs(2),
        Duration::from_secs(60),
    )
    .await;
    let config = VaultConfig::new(format!("http://127.0.0.1:{}", proxy.port), auth)
        .with_request_timeout(Duration::from_secs(2))
        .with_renewal(fast_policy());
    let session = VaultSession::start(&config, SystemClock::shared()).unwrap();
    session.ready(Duration::from_secs(10)).await.unwrap();
    let kv = Kv2::new(session.clone(), "kv").unwrap();
    assert_eq!(kv.read("app").await.unwrap().metadata.version, 1);

    proxy.cut();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let down = session.status();
    eprintln!("while cut: {down:?}");
    assert_eq!(down.health, VaultHealth::Unhealthy, "{down:?}");
    assert!(kv.read("app").await.unwrap_err().is_transient());

    let restored = Instant::now();
    proxy.restore().await;
    while session.status().health != VaultHealth::Healthy {
        assert!(
            restored.elapsed() < Duration::from_secs(6),
            "no recovery: {:?}",
            session.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "recovered in {:?}: {:?}",
        restored.elapsed(),
        session.status()
    );
    assert_eq!(session.current().unwrap().generation(), 2);
    assert_eq!(kv.read("app").await.unwrap().metadata.version, 1);
}

/// A CA certificate for the Kubernetes auth config (required by OpenBao when the local CA is
/// disabled; unused with the plain-HTTP fake API below). No private key exists for it.
const FAKE_KUBERNETES_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBpDCCAUugAwIBAgIUQ0+IFANCEHwI/+QkN2mjlvDNzucwCgYIKoZIzj0EAwIw
JzElMCMGA1UEAwwcZmFrZS1rdWJlcm5ldGVzLWNhLWZvci10ZXN0czAgFw0yNjEx
MjUyMzMwNDdaGA8yMTI2MTEwMTIzMzA0N1owJzElMCMGA1UEAwwcZmFrZS1rdWJl
cm5ldGVzLWNhLWZvci10ZXN0czBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABHKt
3b+vMFzDYOgRvQNF2lb7VD3c+JLUdXnnB/UM5LMAYofMPE/dhnMsF+HfzRuhzk3M
+/7sOxslcfN15FF0EQajUzBRMB0GA1UdDgQWBBR0R6r3ZVISlY+p2kRK6fxD+ybZ
hDAfBgNVHSMEGDAWgBR0R6r3ZVISlY+p2kRK6fxD+ybZhDAPBgNVHRMBAf8EBTAD
AQH/MAoGCCqGSM49BAMCA0cAMEQCIHfxhcKQ6jS79gdhuzipsYCxVeC/D1E9/+ao
UAE7Kh/kAiB8PxPDPOWrqEpZlEbnuEMypVaUajufqGldGgAD09qsgg==
-----END CERTIFICATE-----
";

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// A service-account JWT as the kubelet would mount it (legacy claims). OpenBao does not check
/// the signature without `pem_keys`; the TokenReview (our fake API server) decides.
fn service_account_jwt() -> String {
    let header = base64url(br#"{"alg":"RS256","kid":"test"}"#);
    let claims = json!({
        "iss": "kubernetes/serviceaccount",
        "sub": "system:serviceaccount:default:app",
        "kubernetes.io/serviceaccount/namespace": "default",
        "kubernetes.io/serviceaccount/secret.name": "app-token",
        "kubernetes.io/serviceaccount/service-account.name": "app",
        "kubernetes.io/serviceaccount/service-account.uid": "uid-1",
    });
    let claims = base64url(claims.to_string().as_bytes());
    let signature = base64url(random_hex(64).unwrap().as_bytes());
    format!("{header}.{claims}.{signature}")
}

/// A fake Kubernetes API server answering TokenReviews: only `valid` is authenticated; every
/// reviewed token is recorded.
struct FakeKubernetes {
    port: u16,
    valid: Arc<std::sync::Mutex<String>>,
    reviewed: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeKubernetes {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let valid = Arc::new(std::sync::Mutex::new(String::new()));
        let reviewed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (v, r) = (Arc::clone(&valid), Arc::clone(&reviewed));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (v, r) = (Arc::clone(&v), Arc::clone(&r));
                tokio::spawn(async move {
                    let _ = review(stream, &v, &r).await;
                });
            }
        });
        Self {
            port,
            valid,
            reviewed,
            task,
        }
    }
}

impl Drop for FakeKubernetes {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn review(
    mut stream: tokio::net::TcpStream,
    valid: &std::sync::Mutex<String>,
    reviewed: &std::sync::Mutex<Vec<String>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body: serde_json::Value = serde_json::from_slice(&buf[header_end..]).unwrap_or_default();
    let token = body["spec"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let authenticated = token == *valid.lock().unwrap();
    reviewed.lock().unwrap().push(token);
    let status = if authenticated {
        json!({"authenticated": true, "user": {
            "username": "system:serviceaccount:default:app", "uid": "uid-1", "groups": []}})
    } else {
        json!({"authenticated": false, "error": "token has been invalidated"})
    };
    let response = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "status": status})
    .to_string();
    let reply = format!(
        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{response}",
        response.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

/// Kubernetes auth: the service-account token file is re-read at every login. The kubelet
/// rotates it and the API server stops accepting the old one; the next login uses the new file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_kubernetes_auth_rereads_the_token_file() {
    let bao = OpenBao::start().await.unwrap();
    let kube = FakeKubernetes::start().await;
    bao.sys_call(
        Method::POST,
        "sys/auth/kubernetes",
        Some(json!({"type": "kubernetes"})),
    )
    .await
    .unwrap();
    bao.sys_call(
        Method::POST,
        "auth/kubernetes/config",
        Some(json!({
            "kubernetes_host": format!("http://127.0.0.1:{}", kube.port),
            "kubernetes_ca_cert": FAKE_KUBERNETES_CA,
            "disable_local_ca_jwt": true,
        })),
    )
    .await
    .unwrap();
    bao.sys_call(
        Method::POST,
        "auth/kubernetes/role/app",
        Some(json!({
            "bound_service_account_names": ["app"],
            "bound_service_account_namespaces": ["default"],
            "token_policies": ["default"],
            "token_ttl": "60s",
        })),
    )
    .await
    .unwrap();

    let dir = TempDir::new("k8s");
    let first = service_account_jwt();
    *kube.valid.lock().unwrap() = first.clone();
    let jwt_file = dir.write("token", &first);
    let auth = AuthConfig::kubernetes_with("app", CredentialSource::file(&jwt_file));
    let session = VaultSession::start(&config(&bao, auth), SystemClock::shared()).unwrap();
    let token = session.ready(Duration::from_secs(10)).await.unwrap();
    assert_eq!(token.generation(), 1);
    assert!(token.policies().iter().any(|p| p == "default"));
    assert_eq!(kube.reviewed.lock().unwrap().last(), Some(&first));

    // The kubelet rotates the projected token; the API server no longer accepts the old one.
    let second = service_account_jwt();
    assert_ne!(first, second);
    *kube.valid.lock().unwrap() = second.clone();
    dir.write("token", &second);
    let mut tokens = session.subscribe();
    tokens.borrow_and_update();
    session.relogin_now();
    tokio::time::timeout(Duration::from_secs(10), tokens.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.current().unwrap().generation(), 2);
    assert_eq!(session.status().login_failures, 0, "{:?}", session.status());
    assert_eq!(kube.reviewed.lock().unwrap().last(), Some(&second));
    assert!(!format!("{:?} {session:?}", session.status()).contains(&second));
}
