//! Availability: what a replica does while its database is away, and after it is back.
//!
//! Each test runs the authority in-process (manual clock) on a private PostgreSQL cluster of its
//! own, which it stops and starts again on the same port: the shared server is never touched.

use gha_auth::ManualClock;
use gha_auth_server::config::Config;
use gha_auth_server::{RunningApp, build_app};
use gha_auth_testkit::PrivatePostgres;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{START, assert_audit_intact, register_service_client};

/// One authority on a private cluster.
struct Node {
    running: RunningApp,
    clock: ManualClock,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Node {
    async fn start(pg: &PrivatePostgres) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = data.path().join("data");
        config.store.url = Some(pg.admin_url());
        let clock = ManualClock::at_unix(START);
        let running = build_app(config, clock.shared())
            .await
            .expect("authority starts")
            .spawn();
        Self {
            running,
            clock,
            http: reqwest::Client::new(),
            _data: data,
        }
    }

    async fn token(&self, id: &str, secret: &str) -> reqwest::Response {
        self.http
            .post(self.running.authority().token_endpoint())
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
    }

    async fn register(&self, id: &str) -> String {
        register_service_client(self.running.authority().clients(), id, "test").await
    }
}

/// Asserts the answer is `503 temporarily_unavailable` with `Retry-After`.
async fn assert_unavailable(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert!(retry_after >= 1);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
}

#[tokio::test]
async fn database_outage_answers_503_promptly() {
    let pg = PrivatePostgres::start().await.unwrap();
    let node = Node::start(&pg).await;
    let secret = node.register("svc-unread").await;

    pg.stop().await.unwrap();
    // The client was never read, so authenticating it needs the store: with the pool's acquire
    // timeout under the request timeout, the store's answer (503) arrives, not a 408 or a 500.
    assert_unavailable(node.token("svc-unread", &secret).await).await;
    assert_unavailable(node.token("svc-unread", &secret).await).await;

    // Back without a restart.
    pg.resume().await.unwrap();
    assert_eq!(
        node.token("svc-unread", &secret).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn client_credentials_keeps_working_through_database_outage() {
    let pg = PrivatePostgres::start().await.unwrap();
    let node = Node::start(&pg).await;
    let secret = node.register("svc-cached").await;
    assert_eq!(
        node.token("svc-cached", &secret).await.status(),
        StatusCode::OK
    );

    pg.stop().await.unwrap();
    // Past the cache TTL (5 s) but within the outage window (5 min): served from the cache.
    node.clock.advance(chrono::TimeDelta::minutes(1));
    let response = node.token("svc-cached", &secret).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body["access_token"].is_string());
    // A wrong secret is checked again against the store, which is away: never accepted.
    let wrong = format!("{}x", &secret[..secret.len() - 1]);
    assert_ne!(
        node.token("svc-cached", &wrong).await.status(),
        StatusCode::OK
    );
    // The window is bounded.
    node.clock.advance(chrono::TimeDelta::minutes(10));
    assert_unavailable(node.token("svc-cached", &secret).await).await;

    pg.resume().await.unwrap();
    assert_eq!(
        node.token("svc-cached", &secret).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn audit_events_during_database_outage_written_in_order_when_back() {
    let pg = PrivatePostgres::start().await.unwrap();
    let node = Node::start(&pg).await;
    let audit = node.running.authority().audit().clone();

    pg.stop().await.unwrap();
    // A malformed secret is refused before any lookup, and audited: the store is away, so the
    // events wait in memory.
    let ghosts = ["ghost-1", "ghost-2", "ghost-3"];
    for ghost in ghosts {
        let response = node.token(ghost, "not-a-secret").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        node.clock.advance(chrono::TimeDelta::seconds(1));
    }
    assert_eq!(audit.pending(), ghosts.len());

    pg.resume().await.unwrap();
    // The flusher writes them (every second); waiting for it is not a timing assertion.
    for _ in 0..300 {
        if audit.pending() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(audit.pending(), 0, "audit events still wait after 30 s");

    let store = node.running.authority().store();
    let rows = store.audit_rows_after(0, 1000).await.unwrap();
    let failed: Vec<_> = rows
        .iter()
        .filter(|row| row.kind == "client.auth_failed")
        .collect();
    let subjects: Vec<&str> = failed.iter().map(|row| row.subject.as_str()).collect();
    assert_eq!(subjects, ghosts);
    // Each kept the time it happened, not the time it was written.
    let times: Vec<i64> = failed.iter().map(|row| row.at).collect();
    assert_eq!(times, [START, START + 1, START + 2]);
    assert_audit_intact(store).await;
}

/// `/HealthCheck` means "send me traffic": while the database is away the replica still issues
/// `client_credentials` tokens from its client cache, so it is `Degraded` (200) for that window,
/// and 503 only after it. Liveness never depends on the database.
#[tokio::test]
async fn health_stays_ready_during_database_outage_within_the_cache_window() {
    let pg = PrivatePostgres::start().await.unwrap();
    let node = Node::start(&pg).await;
    let health = |path: &'static str| {
        let url = format!("{}{path}", node.running.base_url());
        let http = node.http.clone();
        async move {
            let response = http.get(url).send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = health("/HealthCheck").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("Healthy")),
        "{body}"
    );

    pg.stop().await.unwrap();
    node.clock.advance(chrono::TimeDelta::minutes(1));
    let (status, body) = health("/HealthCheck").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "Degraded", "{body}");
    assert_eq!(body["checks"]["store"]["status"], "Degraded", "{body}");
    assert_eq!(body["checks"]["store"]["cache_window_open"], true, "{body}");

    // Past the window (clients.outage_window, 5 min) the replica cannot serve.
    node.clock.advance(chrono::TimeDelta::minutes(5));
    let (status, body) = health("/HealthCheck").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["store"]["status"], "Unhealthy", "{body}");
    let (status, _) = health("/HealthCheck/live").await;
    assert_eq!(status, StatusCode::OK);

    pg.resume().await.unwrap();
    let (status, body) = health("/HealthCheck").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["store"]["status"], "Healthy", "{body}");
}

/// Two replicas on one PostgreSQL database, each on a manual clock that never moves, so the
/// periodic sync never runs: an emergency rotation on one reaches the other only through the
/// change notice (`LISTEN`/`NOTIFY`).
#[tokio::test]
async fn emergency_rotation_reaches_the_other_replica_at_once() {
    let db = gha_auth_testkit::PgDatabase::create().await.unwrap();
    let start = |name: &'static str| {
        let url = db.url().to_owned();
        async move {
            let data = tempfile::tempdir().unwrap();
            let mut config = Config::default();
            config.listen = "127.0.0.1:0".parse().unwrap();
            config.data_dir = data.path().join(name);
            config.store.url = Some(url);
            // Both replicas share the master key, as replicas of one deployment do.
            config.keys.master_key_file = Some(data.path().join("master.key"));
            (config, data)
        }
    };
    let (config_a, dir) = start("a").await;
    let mut config_b = config_a.clone();
    config_b.data_dir = dir.path().join("b");
    let clock = ManualClock::at_unix(START);
    let a = build_app(config_a, clock.shared()).await.unwrap().spawn();
    let b = build_app(config_b, clock.shared()).await.unwrap().spawn();
    let http = reqwest::Client::new();
    let kids = |app: &RunningApp| {
        let url = format!("{}/.well-known/jwks.json", app.base_url());
        let http = http.clone();
        async move {
            let jwks: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            let mut kids: Vec<String> = jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect();
            kids.sort();
            kids
        }
    };
    let before = kids(&b).await;
    assert_eq!(before, kids(&a).await);
    let secret = register_service_client(b.authority().clients(), "svc", "test").await;

    let (new_kid, removed) = a.authority().keys().emergency_rotate().await.unwrap();
    assert!(!removed.is_empty());
    // B publishes the new key and drops the old ones (waiting for it is not a timing assertion;
    // bench/chaos.sh measures how fast).
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = kids(&b).await;
        if seen == std::slice::from_ref(&new_kid) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen,
        std::slice::from_ref(&new_kid),
        "replica B still publishes {seen:?}"
    );
    // And signs with the new key only.
    let response = http
        .post(b.authority().token_endpoint())
        .basic_auth("svc", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let token: Value = response.json().await.unwrap();
    let header = gha_auth::jwt::parse_header(token["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(header.kid, new_kid);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
