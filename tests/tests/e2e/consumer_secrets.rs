//! The consumer half of the secrets broker: `SecretsClient`, examples/db-consumer and
//! `gha-auth agent`, against an in-process authority whose broker reads a real OpenBao (KV v2,
//! database engine) and a private PostgreSQL cluster that checks passwords.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use db_consumer::{PoolSettings, RotatingPool};
use gha_auth::broker::DEFAULT_BROKER_AUDIENCE;
use gha_auth::consumer::{ClientAuth, Freshness, SecretsClient, TokenKeeper};
use gha_auth::schedule::RenewalPolicy;
use gha_auth::{Clock, ManualClock, SharedClock, SystemClock};
use gha_auth_server::config::{BrokerGrant, Config};
use gha_auth_server::testing::{ClientRegistration, GrantType};
use gha_auth_server::{RunningApp, build_app};
use gha_auth_testkit::{Method, OpenBao, PrivatePostgres, random_hex};
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::support::Proxy;

const CLIENT: &str = "consumer-e2e";
const SECRET_PATH: &str = "apps/consumer/config";
const DYNAMIC_ROLE: &str = "app";
const STATIC_ROLE: &str = "fixed";
const STATIC_USER: &str = "fixed_user";

/// Timing of the authority's Vault token and of the database role.
#[derive(Clone, Copy)]
struct Ttls {
    token: Duration,
    token_max: Duration,
    lease: Duration,
    lease_max: Duration,
}

/// OpenBao, a private PostgreSQL, and the authority with its broker in front of them.
struct World {
    bao: OpenBao,
    pg: PrivatePostgres,
    authority: RunningApp,
    dir: tempfile::TempDir,
    secret_file: PathBuf,
    client_secret: String,
}

async fn kv_put(bao: &OpenBao, path: &str, data: Value) -> u64 {
    let answer = bao
        .sys_call(
            Method::POST,
            &format!("secret/data/{path}"),
            Some(json!({ "data": data })),
        )
        .await
        .unwrap();
    answer["data"]["version"].as_u64().unwrap()
}

impl World {
    async fn start(ttls: Ttls, tune: impl FnOnce(&mut Config)) -> Self {
        let (bao, pg) = tokio::join!(OpenBao::start(), PrivatePostgres::start());
        let (bao, pg) = (bao.unwrap(), pg.unwrap());
        bao.enable_kv2("secret").await.unwrap();
        bao.enable_database("database").await.unwrap();
        bao.configure_postgres_connection(
            "database",
            "pg",
            &pg.vault_connection_url(),
            "postgres",
            &pg.superuser_password(),
            &[DYNAMIC_ROLE, STATIC_ROLE],
        )
        .await
        .unwrap();
        bao.create_database_role(
            "database",
            DYNAMIC_ROLE,
            "pg",
            &[r#"CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"#],
            ttls.lease,
            ttls.lease_max,
        )
        .await
        .unwrap();
        bao.write_policy(
            "gha-auth-broker",
            r#"
            path "secret/data/*" { capabilities = ["create", "read", "update"] }
            path "secret/metadata/*" { capabilities = ["read", "list"] }
            path "database/creds/*" { capabilities = ["read"] }
            path "database/static-creds/*" { capabilities = ["read"] }
            path "sys/leases/renew" { capabilities = ["update"] }
            path "sys/leases/revoke" { capabilities = ["update"] }
            path "sys/leases/lookup" { capabilities = ["update"] }
            "#,
        )
        .await
        .unwrap();
        let (role_id, secret_id) = bao
            .enable_approle("gha-auth", &["gha-auth-broker"], ttls.token, ttls.token_max)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let role_id_file = dir.path().join("role_id");
        let secret_id_file = dir.path().join("secret_id");
        std::fs::write(&role_id_file, role_id).unwrap();
        std::fs::write(&secret_id_file, secret_id).unwrap();

        let mut config = Config::default();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = dir.path().join("data");
        config.rate_limit.enabled = false;
        config.vault.address = Some(bao.addr().to_owned());
        config.vault.role_id_file = Some(role_id_file);
        config.vault.secret_id_file = Some(secret_id_file);
        config.vault.key_prefix = format!("gha-auth-e2e-{}/keys", random_hex(4).unwrap());
        let grant: BrokerGrant = serde_json::from_value(json!({
            "client_id": CLIENT,
            "paths": ["apps/consumer/*"],
            "database_roles": [DYNAMIC_ROLE, STATIC_ROLE],
        }))
        .unwrap();
        config.broker.grants = vec![grant];
        tune(&mut config);
        let authority = build_app(config, SystemClock::shared())
            .await
            .expect("authority with broker starts")
            .spawn();
        let (_, secret) = authority
            .authority()
            .clients()
            .register(
                ClientRegistration::new(CLIENT)
                    .grant(GrantType::ClientCredentials)
                    .audience(DEFAULT_BROKER_AUDIENCE),
                "e2e",
            )
            .await
            .unwrap();
        let client_secret = secret.unwrap().expose().to_owned();
        let secret_file = dir.path().join("client-secret");
        std::fs::write(&secret_file, format!("{client_secret}\n")).unwrap();
        Self {
            bao,
            pg,
            authority,
            dir,
            secret_file,
            client_secret,
        }
    }

    fn keeper(&self, clock: SharedClock) -> TokenKeeper {
        TokenKeeper::builder(
            self.authority.base_url(),
            ClientAuth::secret_file(CLIENT, &self.secret_file),
        )
        .audience(DEFAULT_BROKER_AUDIENCE)
        .clock(clock)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
    }

    /// A client with compressed intervals: polled at least every `poll` (a re-login of the
    /// broker kills the leases of the old token before their own end).
    fn secrets(&self, poll: Duration) -> SecretsClient {
        SecretsClient::builder(self.keeper(SystemClock::shared()))
            .timeout(Duration::from_secs(5))
            .renewal_policy(fast_policy())
            .max_refresh_interval(poll)
            .build()
            .unwrap()
    }

    /// The private cluster's `postgres` database, without user or password.
    fn database(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.pg.port())
            .database("postgres")
    }

    async fn static_role(&self, rotation: Duration) {
        let mut admin = PgConnection::connect(&self.pg.admin_url()).await.unwrap();
        sqlx::query(&format!(
            "CREATE ROLE {STATIC_USER} WITH LOGIN PASSWORD 'initial-{STATIC_USER}'"
        ))
        .execute(&mut admin)
        .await
        .unwrap();
        self.bao
            .create_database_static_role("database", STATIC_ROLE, "pg", STATIC_USER, rotation)
            .await
            .unwrap();
    }

    /// Vault re-logins of the authority, from its `/HealthCheck`.
    async fn relogins(&self) -> u64 {
        let health: Value = reqwest::get(format!("{}/HealthCheck", self.authority.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        health["checks"]["vault"]["relogins"]
            .as_u64()
            .unwrap_or_else(|| panic!("no relogins in {health}"))
    }
}

fn fast_policy() -> RenewalPolicy {
    RenewalPolicy::default()
        .with_backoff(Duration::from_millis(200), Duration::from_secs(2))
        .with_min_interval(Duration::from_millis(200))
}

/// Failures seen by a load loop: what failed and when, for the assertion message.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn record<T, E: std::fmt::Display>(&self, started: Instant, what: &str, result: Result<T, E>) {
        match result {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self
                .failures
                .lock()
                .unwrap()
                .push(format!("{:?} {what}: {e}", started.elapsed())),
        }
    }

    fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap().clone()
    }
}

/// Serves db-consumer in-process on a free port; returns its base URL.
async fn serve_db_consumer(pool: RotatingPool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, db_consumer::app(pool)).await.unwrap();
    });
    format!("http://{addr}")
}

/// `GET /query` on db-consumer: the user that ran it.
async fn query(http: &reqwest::Client, base: &str) -> Result<String, String> {
    let response = http
        .get(format!("{base}/query"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status} {body}"));
    }
    Ok(body["current_user"].as_str().unwrap_or_default().to_owned())
}

/// The 30-day outage, compressed: the authority's Vault token lives 3 s at most 6 s. For a
/// minute, secret reads through the broker (fresh requests and a kept handle) and database
/// queries through db-consumer run without pause: the authority logs in to Vault again as often
/// as needed and not one request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_secrets_survive_the_vault_token_max_ttl() {
    let ttls = Ttls {
        token: Duration::from_secs(3),
        token_max: Duration::from_secs(6),
        lease: Duration::from_secs(30),
        lease_max: Duration::from_secs(120),
    };
    let world = World::start(ttls, |config| {
        config.broker.cache_ttl = "1s".parse().unwrap();
    })
    .await;
    let version = kv_put(
        &world.bao,
        SECRET_PATH,
        json!({ "api_key": "outage-key-1" }),
    )
    .await;
    let secrets = world.secrets(Duration::from_secs(1));
    let handle = secrets.secret(SECRET_PATH).await.unwrap();
    assert_eq!(handle.current().unwrap().version, version);
    let creds = secrets.database_credentials(DYNAMIC_ROLE).await.unwrap();
    let pool = RotatingPool::start(creds, world.database(), PoolSettings::default())
        .await
        .unwrap();
    let db_consumer = serve_db_consumer(pool.clone()).await;
    let relogins_before = world.relogins().await;

    let run_for = Duration::from_secs(60);
    let started = Instant::now();
    let reads = Arc::new(Tally::default());
    let queries = Arc::new(Tally::default());
    let kept = Arc::new(Tally::default());
    let reader = {
        let (secrets, reads) = (secrets.clone(), Arc::clone(&reads));
        tokio::spawn(async move {
            while started.elapsed() < run_for {
                let read = secrets.read_secret(SECRET_PATH).await;
                let read = read.and_then(|s| {
                    let value = s.data.get("api_key").map(|v| v.expose().to_owned());
                    if value.as_deref() == Some("outage-key-1") {
                        Ok(())
                    } else {
                        Err(gha_auth::consumer::ConsumerError::Config(
                            "wrong value".into(),
                        ))
                    }
                });
                reads.record(started, "secret read", read);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let querier = {
        let queries = Arc::clone(&queries);
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            while started.elapsed() < run_for {
                queries.record(started, "query", query(&http, &db_consumer).await);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    while started.elapsed() < run_for {
        kept.record(started, "kept handle", handle.current());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reader.await.unwrap();
    querier.await.unwrap();

    let relogins = world.relogins().await - relogins_before;
    let (reads_ok, queries_ok) = (
        reads.ok.load(Ordering::Relaxed),
        queries.ok.load(Ordering::Relaxed),
    );
    eprintln!(
        "outage test: {reads_ok} secret reads, {queries_ok} queries, {} handle checks, {relogins} \
         Vault re-logins; pool {:?}; credentials {:?}",
        kept.ok.load(Ordering::Relaxed),
        pool.status(),
        pool.credentials().status()
    );
    let failures: Vec<String> = [reads.failures(), queries.failures(), kept.failures()].concat();
    assert!(
        failures.is_empty(),
        "{} failures: {failures:#?}",
        failures.len()
    );
    assert!(relogins >= 5, "only {relogins} re-logins in a minute");
    assert!(
        reads_ok > 100 && queries_ok > 100,
        "{reads_ok} {queries_ok}"
    );
    // Leases die with the token that created them: the credentials were re-issued after the
    // re-logins and db-consumer switched pools without a failed query.
    let status = pool.status();
    assert!(status.pools_built >= 2, "{status:?}");
    assert_eq!(status.queries_failed, 0, "{status:?}");
}

/// Dynamic credentials with a 3 s lease and an 8 s max TTL: re-issued before the max TTL,
/// db-consumer switches pools and drains the old ones, and no query fails. Then a static role
/// whose rotation OpenBao forces (`rotate-role`): picked up with no failed query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_secrets_follow_dynamic_and_static_database_rotation() {
    let ttls = Ttls {
        token: Duration::from_secs(300),
        token_max: Duration::from_secs(3600),
        lease: Duration::from_secs(3),
        lease_max: Duration::from_secs(8),
    };
    let world = World::start(ttls, |config| {
        config.broker.static_roles = vec![STATIC_ROLE.to_owned()];
        config.broker.static_poll_interval = "1s".parse().unwrap();
    })
    .await;
    // Polled rarely: the switches come from the broker's schedule and from refused logins.
    let secrets = world.secrets(Duration::from_secs(300));
    let http = reqwest::Client::new();

    // Dynamic.
    let creds = secrets.database_credentials(DYNAMIC_ROLE).await.unwrap();
    let pool = RotatingPool::start(creds, world.database(), PoolSettings::default())
        .await
        .unwrap();
    let base = serve_db_consumer(pool.clone()).await;
    let started = Instant::now();
    let tally = Tally::default();
    let mut users = BTreeSet::new();
    while started.elapsed() < Duration::from_secs(20) {
        let answer = query(&http, &base).await;
        if let Ok(user) = &answer {
            users.insert(user.clone());
        }
        tally.record(started, "dynamic query", answer);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = pool.status();
    eprintln!(
        "dynamic: users {users:?}; pool {status:?}; {:?}",
        pool.credentials().status()
    );
    assert!(tally.failures().is_empty(), "{:#?}", tally.failures());
    // 20 s of 8 s max TTLs: at least two re-issues, each a new database user and pool.
    assert!(users.len() >= 3, "{users:?}");
    assert!(status.pools_built >= 3, "{status:?}");
    assert!(status.pools_drained >= 2, "{status:?}");
    assert!(users.iter().all(|u| u.starts_with("v-")), "{users:?}");

    // Static, rotation forced.
    world.static_role(Duration::from_secs(3600)).await;
    let fixed = secrets.database_credentials(STATIC_ROLE).await.unwrap();
    let first_password = fixed.current().unwrap().password.clone();
    let fixed_pool = RotatingPool::start(fixed, world.database(), PoolSettings::default())
        .await
        .unwrap();
    let fixed_base = serve_db_consumer(fixed_pool.clone()).await;
    let tally = Tally::default();
    let started = Instant::now();
    let mut rotated_at = None;
    while started.elapsed() < Duration::from_secs(12) {
        if rotated_at.is_none() && started.elapsed() > Duration::from_secs(2) {
            world
                .bao
                .sys_call(
                    Method::POST,
                    &format!("database/rotate-role/{STATIC_ROLE}"),
                    None,
                )
                .await
                .unwrap();
            rotated_at = Some(started.elapsed());
            // Sessions opened before a rotation keep working (PostgreSQL checks the password
            // at login only); drop the idle ones so the pool must log in again with the
            // password it holds, as after a restart of the database.
            terminate_sessions(&world.pg, STATIC_USER).await;
        }
        let answer = query(&http, &fixed_base).await;
        if let Ok(user) = &answer {
            assert_eq!(user, STATIC_USER);
        }
        tally.record(started, "static query", answer);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = fixed_pool.status();
    eprintln!("static: rotated at {rotated_at:?}; pool {status:?}");
    assert!(tally.failures().is_empty(), "{:#?}", tally.failures());
    let current = fixed_pool.credentials().current().unwrap();
    assert_ne!(current.password, first_password, "rotation not picked up");
    assert!(status.pools_built >= 2, "{status:?}");
    // The refused login made the pool ask at once (refresh_now) instead of waiting minutes.
    assert!(status.auth_failures >= 1, "{status:?}");
    // The pool in use has the new password: a new connection works.
    let mut conn = PgConnection::connect(&world.pg.url_for(
        STATIC_USER,
        current.password.expose(),
        "postgres",
    ))
    .await
    .unwrap();
    let _: (i32,) = sqlx::query_as("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
}

/// Ends the idle sessions of `user` on the private cluster.
async fn terminate_sessions(pg: &PrivatePostgres, user: &str) {
    let mut admin = PgConnection::connect(&pg.admin_url()).await.unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
        .bind(user)
        .execute(&mut admin)
        .await
        .unwrap();
}

/// Stale-if-error on the consumer's clock: with the broker unreachable the last secret is
/// served (status `stale`) until its max age plus the stale window, then refused with a clear
/// `expired` error; once the broker is back, it recovers without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_secrets_serve_stale_within_the_window_then_expire_and_recover() {
    let ttls = Ttls {
        token: Duration::from_secs(300),
        token_max: Duration::from_secs(3600),
        lease: Duration::from_secs(60),
        lease_max: Duration::from_secs(600),
    };
    let world = World::start(ttls, |config| {
        config.broker.cache_ttl = "30s".parse().unwrap();
    })
    .await;
    kv_put(&world.bao, SECRET_PATH, json!({ "api_key": "stale-key-1" })).await;
    let mut proxy = Proxy::start(world.authority.local_addr().port()).await;
    let clock = ManualClock::new(SystemClock.now());
    let client = SecretsClient::builder(world.keeper(clock.shared()))
        .broker_url(format!("http://127.0.0.1:{}", proxy.port))
        .timeout(Duration::from_secs(2))
        .stale_window(Duration::from_secs(60))
        .renewal_policy(
            RenewalPolicy::default().with_backoff(Duration::from_secs(1), Duration::from_secs(8)),
        )
        .build()
        .unwrap();
    let handle = client.secret(SECRET_PATH).await.unwrap();
    let first = handle.status();
    assert_eq!(first.freshness, Freshness::Fresh);
    let max_age = handle.current().unwrap().max_age_seconds;
    assert!(max_age > 0 && max_age <= 30, "{max_age}");

    proxy.cut();
    // Past the refresh time: the refresh fails, the value is still served.
    clock.set(first.next_fetch_at + TimeDelta::milliseconds(10));
    let status = wait_for(&handle, |s| s.failures >= 1).await;
    assert_eq!(status.freshness, Freshness::Stale, "{status:?}");
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap()
            .contains("unreachable"),
        "{status:?}"
    );
    let served = handle.current().unwrap();
    assert_eq!(served.data.get("api_key").unwrap().expose(), "stale-key-1");

    // Past max age + stale window: refused, visibly.
    clock.set(first.usable_until + TimeDelta::seconds(1));
    let error = handle.current().unwrap_err();
    assert_eq!(error.kind(), "expired", "{error}");
    assert!(error.to_string().contains(SECRET_PATH), "{error}");
    assert!(!error.to_string().contains("stale-key-1"), "{error}");
    assert_eq!(handle.status().freshness, Freshness::Expired);

    // The broker is back: a retry succeeds and the handle is fresh again, no restart.
    proxy.restore().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle.status().freshness != Freshness::Fresh {
        assert!(Instant::now() < deadline, "{:?}", handle.status());
        clock.advance(TimeDelta::seconds(5));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let current = handle.current().unwrap();
    assert_eq!(current.data.get("api_key").unwrap().expose(), "stale-key-1");
    let status = handle.status();
    assert_eq!(status.consecutive_failures, 0, "{status:?}");
    assert!(status.failures >= 1, "{status:?}");
}

/// Waits (real time, bounded) until the handle's status satisfies `done`.
async fn wait_for(
    handle: &gha_auth::consumer::SecretHandle,
    done: impl Fn(&gha_auth::consumer::RefreshStatus) -> bool,
) -> gha_auth::consumer::RefreshStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = handle.status();
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Everything the agent's subscriber printed.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `gha-auth agent`: writes the secret to a 0600 file, rewrites it and runs the reload command
/// when a new KV version appears; the secret is in no log line of the run (captured at debug)
/// and not in the reload command's environment.
#[tokio::test(flavor = "current_thread")]
async fn consumer_agent_writes_files_and_reloads_without_leaking() {
    // One thread: the subscriber set here sees the agent, the broker and the authority.
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_env_filter("debug")
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let ttls = Ttls {
        token: Duration::from_secs(300),
        token_max: Duration::from_secs(3600),
        lease: Duration::from_secs(60),
        lease_max: Duration::from_secs(600),
    };
    let world = World::start(ttls, |config| {
        config.broker.cache_ttl = "1s".parse().unwrap();
    })
    .await;
    let first_value = format!("agent-value-{}", random_hex(8).unwrap());
    let second_value = format!("agent-value-{}", random_hex(8).unwrap());
    kv_put(
        &world.bao,
        SECRET_PATH,
        json!({ "api_key": first_value, "user": "svc" }),
    )
    .await;

    let out = world.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let key_file = out.join("api_key");
    let env_file = out.join("config.env");
    let db_file = out.join("db.json");
    let reloads = out.join("reloads");
    let reload_env = out.join("reload-env");
    let config = format!(
        r#"
        authority = "{authority}"
        client_id = "{CLIENT}"
        client_secret_file = "{secret}"

        [reload]
        command = ["/bin/sh", "-c", "env >> {reload_env}; echo reload >> {reloads}"]

        [[file]]
        secret = "{SECRET_PATH}"
        field = "api_key"
        path = "{key_file}"

        [[file]]
        secret = "{SECRET_PATH}"
        format = "env"
        path = "{env_file}"

        [[file]]
        database_role = "{DYNAMIC_ROLE}"
        format = "json"
        path = "{db_file}"
        "#,
        authority = world.authority.base_url(),
        secret = world.secret_file.display(),
        reload_env = reload_env.display(),
        reloads = reloads.display(),
        key_file = key_file.display(),
        env_file = env_file.display(),
        db_file = db_file.display(),
    );
    let config_file = world.dir.path().join("agent.toml");
    std::fs::write(&config_file, config).unwrap();
    let config = gha_auth_server::testing::AgentConfig::load(&config_file).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(gha_auth_server::testing::run_agent(
        config,
        SystemClock::shared(),
        false,
        async {
            let _ = stopped.await;
        },
    ));

    let deadline = Instant::now() + Duration::from_secs(30);
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    while read(&key_file) != first_value || read(&db_file).is_empty() {
        assert!(Instant::now() < deadline, "agent wrote nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for file in [&key_file, &env_file, &db_file] {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    assert_eq!(
        read(&env_file),
        format!("api_key={first_value}\nuser=svc\n")
    );
    let db: Value = serde_json::from_str(&read(&db_file)).unwrap();
    let db_password = db["password"].as_str().unwrap().to_owned();
    assert!(db["username"].as_str().unwrap().starts_with("v-"), "{db}");
    assert!(!reloads.exists(), "no reload for the first write");

    // A new KV version: both files of the secret rewritten, one reload.
    kv_put(
        &world.bao,
        SECRET_PATH,
        json!({ "api_key": second_value, "user": "svc" }),
    )
    .await;
    while !read(&reloads).contains("reload") {
        assert!(Instant::now() < deadline, "no reload after the change");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(read(&key_file), second_value);
    assert_eq!(
        read(&env_file),
        format!("api_key={second_value}\nuser=svc\n")
    );
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(
        read(&reloads).lines().count(),
        1,
        "one reload for one change"
    );

    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();

    let env = read(&reload_env);
    assert!(!env.is_empty());
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("secret file rewritten"), "the capture works");
    let secrets: HashMap<&str, &str> = HashMap::from([
        ("first value", first_value.as_str()),
        ("second value", second_value.as_str()),
        ("database password", db_password.as_str()),
        ("client secret", world.client_secret.as_str()),
    ]);
    for (what, value) in secrets {
        assert!(!logs.contains(value), "the {what} is in the logs");
        assert!(
            !env.contains(value),
            "the {what} is in the reload command's environment"
        );
    }
}
