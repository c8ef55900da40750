//! The health board end to end: two authority replicas on one PostgreSQL database watch a real
//! field-service instance that is started, stopped and started again. Each state change is shown
//! by `/admin/v1/monitor` on both replicas, exported in `/metrics` and posted once to a webhook
//! receiver that counts the alerts; the service is polled once per interval between the two, and
//! by the survivor when one replica stops.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use field_service::{JobStore, app};
use gha_auth::SystemClock;
use gha_auth_middleware::AuthLayer;
use gha_auth_server::config::{Config, Duration as ConfigDuration, MonitorTarget};
use gha_auth_server::testing::{ClientRegistration, GrantType};
use gha_auth_server::{RunningApp, build_app};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::support::Backend;

const TARGET: &str = "field-service";
const ADMIN_AUDIENCE: &str = "gha-auth-admin";

/// A field-service instance on a fixed address, counting the health checks it answers.
struct FieldService {
    addr: SocketAddr,
    auth: AuthLayer,
    hits: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

async fn count_health_checks(
    State(hits): State<Arc<AtomicUsize>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == "/HealthCheck" {
        hits.fetch_add(1, Ordering::SeqCst);
    }
    next.run(request).await
}

impl FieldService {
    /// The service, its keys from `authority`, on a new local port.
    async fn start(authority: &RunningApp) -> Self {
        let auth = AuthLayer::builder()
            .issuer(authority.authority().issuer())
            .audience("field-service")
            .jwks_url(format!("{}/.well-known/jwks.json", authority.base_url()))
            .build()
            .unwrap();
        assert!(auth.wait_ready(Duration::from_secs(10)).await, "JWKS");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut service = Self {
            addr: listener.local_addr().unwrap(),
            auth,
            hits: Arc::new(AtomicUsize::new(0)),
            stop: None,
            task: None,
        };
        service.serve(listener);
        service
    }

    fn serve(&mut self, listener: TcpListener) {
        let router = app(
            self.auth.clone(),
            JobStore::new(SystemClock::shared()),
            None,
        )
        .layer(axum::middleware::from_fn_with_state(
            self.hits.clone(),
            count_health_checks,
        ));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(stop);
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        }));
    }

    /// Stops the service: its port refuses connections.
    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    /// Starts it again on the same address.
    async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    fn url(&self) -> String {
        format!("http://{}/HealthCheck", self.addr)
    }
}

/// A webhook receiver that keeps every alert posted to it.
async fn alert_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let kept = alerts.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(alert): axum::Json<Value>| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(alert);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/hook"), alerts)
}

async fn start_replica(config: Config) -> RunningApp {
    build_app(config, SystemClock::shared())
        .await
        .expect("replica starts")
        .spawn()
}

/// A client_credentials token for the admin API with `scopes`.
async fn admin_token(replica: &RunningApp, id: &str, scopes: &[&str]) -> String {
    let mut registration = ClientRegistration::new(id)
        .grant(GrantType::ClientCredentials)
        .audience(ADMIN_AUDIENCE);
    for scope in scopes {
        registration = registration.scope(*scope);
    }
    let (_, secret) = replica
        .authority()
        .clients()
        .register(registration, "e2e")
        .await
        .unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/oauth2/token", replica.base_url()))
        .basic_auth(id, Some(secret.unwrap().expose()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn board(replica: &RunningApp, token: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{}/admin/v1/monitor", replica.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn state_on(replica: &RunningApp, token: &str) -> String {
    let board = board(replica, token).await;
    board["targets"][0]["state"].as_str().unwrap().to_owned()
}

/// Waits until both replicas show `state` (the change is in the store, so both agree).
async fn wait_for_state(replicas: &[&RunningApp], token: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut seen = Vec::new();
        for replica in replicas {
            seen.push(state_on(replica, token).await);
        }
        if seen.iter().all(|s| s == state) {
            return;
        }
        assert!(Instant::now() < deadline, "never {state}: {seen:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_for_alerts(alerts: &Mutex<Vec<Value>>, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while alerts.lock().unwrap().len() < count {
        assert!(Instant::now() < deadline, "{:?}", alerts.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `replica`'s `/metrics` exports `state` for the target (each replica reads the
/// board from the store once a period).
async fn wait_for_export(replica: &RunningApp, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let exported = exported_state(replica).await;
        if exported == [state] {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never exported {state}: {exported:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The target's exported state: the `state` label whose one-hot value is 1.
async fn exported_state(replica: &RunningApp) -> Vec<String> {
    let text = reqwest::get(format!("{}/metrics", replica.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("# HELP gha_auth_monitor_target_state ")
            && text.contains("# HELP gha_auth_monitor_target_latency_seconds "),
        "{text}"
    );
    assert!(
        text.lines().any(
            |l| l.starts_with("gha_auth_monitor_target_latency_seconds{")
                && l.contains(&format!("target=\"{TARGET}\""))
        ),
        "{text}"
    );
    text.lines()
        .filter(|l| l.starts_with("gha_auth_monitor_target_state{"))
        .filter(|l| l.contains(&format!("target=\"{TARGET}\"")) && l.ends_with(" 1"))
        .filter_map(|l| l.split("state=\"").nth(1)?.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// `promtool check metrics` on the health board's families of `replica`'s `/metrics`: typed and
/// described, names and units as Prometheus expects. (Only these: the field service's middleware
/// records into the same process-wide recorder here, without its HELP text, which its own
/// binary's test checks.) The tool is `GHA_AUTH_PROMTOOL`, or the one `scripts/test` installs in
/// `.tools/`.
async fn promtool_accepts_the_metrics(replica: &RunningApp) {
    use std::io::Write;
    let promtool = std::env::var_os("GHA_AUTH_PROMTOOL").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/prometheus/promtool"),
        std::path::PathBuf::from,
    );
    assert!(
        promtool.exists(),
        "no promtool at {} (scripts/test installs it; or set GHA_AUTH_PROMTOOL)",
        promtool.display()
    );
    let text = reqwest::get(format!("{}/metrics", replica.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let text: String = text
        .lines()
        .filter(|l| l.contains("gha_auth_monitor_"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        text.contains("# HELP gha_auth_monitor_target_state "),
        "{text}"
    );
    let mut child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}\n{text}"
    );
}

#[tokio::test]
async fn two_replicas_poll_once_and_alert_each_state_change_once() {
    let Backend::Postgres(db) = Backend::postgres().await else {
        unreachable!()
    };
    let (hook, alerts) = alert_receiver().await;

    // The field service takes its keys from an authority of its own.
    let keys_dir = tempfile::tempdir().unwrap();
    let mut keys_config = Config::default();
    keys_config.listen = "127.0.0.1:0".parse().unwrap();
    keys_config.data_dir = keys_dir.path().join("data");
    let keys_authority = start_replica(keys_config).await;
    let mut service = FieldService::start(&keys_authority).await;

    // Two replicas on one database and data directory (the master key), one issuer, checking
    // every second and changing state after two equal results.
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.issuer = Some("http://127.0.0.1:8700".to_owned());
    config.data_dir = data.path().join("data");
    config.store.url = Some(db.url().to_owned());
    config.alerts.webhook_url = Some(hook);
    config.monitor.failures_before_alert = 2;
    config.monitor.lease_ttl = ConfigDuration::seconds(3);
    config.monitor.targets = vec![
        MonitorTarget::new(TARGET, service.url())
            .every(ConfigDuration::seconds(1), ConfigDuration::seconds(1)),
    ];
    let first = start_replica(config.clone()).await;
    let second = start_replica(config).await;
    let replicas = [&first, &second];

    // The board is the admin API's: no token is 401, a token without the scope is 403.
    let unauthenticated = reqwest::get(format!("{}/admin/v1/monitor", second.base_url()))
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let other = admin_token(&first, "clients-admin", &["admin:clients"]).await;
    let refused = reqwest::Client::new()
        .get(format!("{}/admin/v1/monitor", second.base_url()))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let token = admin_token(&first, "board", &["admin:monitor"]).await;

    // Up: shown on both replicas and exported; a new target coming up is not an alert.
    wait_for_state(&replicas, &token, "up").await;
    wait_for_export(&second, "up").await;
    assert!(alerts.lock().unwrap().is_empty());

    // Stopped: down after two failures, alerted once with the reason.
    service.stop().await;
    wait_for_state(&replicas, &token, "down").await;
    wait_for_alerts(&alerts, 1).await;
    wait_for_export(&first, "down").await;
    promtool_accepts_the_metrics(&first).await;
    let shown = board(&first, &token).await;
    let target = &shown["targets"][0];
    assert!(target["last_failure"]["reason"].is_string(), "{shown}");
    let uptime = target["uptime_24h"].as_f64().unwrap();
    assert!(uptime > 0.0 && uptime < 1.0, "{shown}");

    // Started again on the same address: up, and one recovery alert.
    service.restart().await;
    wait_for_state(&replicas, &token, "up").await;
    wait_for_alerts(&alerts, 2).await;
    wait_for_export(&second, "up").await;
    // A few more checks: still exactly two alerts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let posted = alerts.lock().unwrap().clone();
    let events: Vec<&str> = posted
        .iter()
        .map(|a| a["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        vec!["monitor.target_down", "monitor.target_recovered"],
        "{posted:?}"
    );
    assert_eq!(posted[0]["name"], TARGET);
    assert_eq!(posted[0]["from"], "up");
    assert_eq!(posted[0]["to"], "down");
    assert!(posted[0]["error"].is_string(), "{posted:?}");
    assert_eq!(posted[1]["to"], "up");

    // The history through the API, newest first.
    let history: Value = reqwest::Client::new()
        .get(format!(
            "{}/admin/v1/monitor/{TARGET}/history?limit=1000",
            second.base_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let results = history["results"].as_array().unwrap();
    assert!(results.len() >= 5, "{history}");
    assert!(results.iter().any(|r| r["outcome"] == "down"), "{history}");

    // The first replica stops (with the lease or not): the second goes on polling, taking the
    // lease over once it expired.
    first.shutdown().await.unwrap();
    let checked = |board: &Value| {
        board["targets"][0]["checked_at"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // Past the lease's 3 s, a check can only come from a replica holding a live lease.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before = checked(&board(&second, &token).await);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let later = checked(&board(&second, &token).await);
        if later > before {
            break;
        }
        assert!(Instant::now() < deadline, "nobody polls since {before}");
    }
    assert_eq!(state_on(&second, &token).await, "up");

    // Polled once between the replicas: every check the service answered is one stored
    // result, and no two stored checks are closer than the interval allows.
    second.shutdown().await.unwrap();
    service.stop().await;
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT checked_at, outcome FROM monitor_results WHERE target = $1 ORDER BY checked_at",
    )
    .bind(TARGET)
    .fetch_all(db.pool())
    .await
    .unwrap();
    let answered = rows.iter().filter(|(_, outcome)| outcome != "down").count();
    assert_eq!(answered, service.hits.load(Ordering::SeqCst), "{rows:?}");
    for pair in rows.windows(2) {
        assert!(
            pair[1].0 - pair[0].0 >= 900,
            "two checks {} ms apart: {rows:?}",
            pair[1].0 - pair[0].0
        );
    }
    let holders: Vec<(String,)> = sqlx::query_as("SELECT holder FROM monitor_lease")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(holders.len(), 1);
    keys_authority.shutdown().await.unwrap();
}
