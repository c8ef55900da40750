//! Link-key rotation against a real OpenBao and a real PostgreSQL: a crash after every
//! step resumes and completes, two replicas on one schedule rotate once per tick, a failing
//! target leaves CURRENT alone and alerts until it recovers, and the validators' endpoints.
//!
//! The target is the generic webhook target pointed at [`KeyHolder`], a small real HTTP server
//! that plays the integration (it holds the key it was given and can be told to refuse).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::TimeDelta;
use gha_auth::ManualClock;
use gha_auth::vault::{AuthConfig, CredentialSource, VaultConfig, VaultSession};
use gha_auth_server::config::Config;
use gha_auth_server::testing::AuditLog;
use gha_auth_server::testing::Store;
use gha_auth_server::testing::{
    DriverSettings, FaultPlan, FaultPoint, LinkKeyState, LinkKeyStore, LocalLinkKeyStore, Policy,
    Rotator, Step, VaultLinkKeyStore,
};
use gha_auth_server::testing::{TargetConfig, TargetDeps, build_target};
use gha_auth_testkit::{OpenBao, PgDatabase, random_hex};
use serde_json::{Value, json};

use crate::support::START;

/// Plays the integration behind the webhook target: `POST` installs `{"key"}`, `GET` reports
/// it; while `refusing`, both answer 503.
#[derive(Clone, Default)]
struct Holder {
    key: Arc<Mutex<Option<String>>>,
    installs: Arc<Mutex<u32>>,
    refusing: Arc<Mutex<bool>>,
}

pub(crate) struct KeyHolder {
    holder: Holder,
    addr: SocketAddr,
    secret_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

const HOLDER_SECRET: &str = "holder-bearer-secret-for-tests";

async fn holder_install(
    State(h): State<Holder>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {HOLDER_SECRET}"))
    {
        return StatusCode::UNAUTHORIZED;
    }
    if *h.refusing.lock().unwrap() {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    *h.key.lock().unwrap() = body["key"].as_str().map(str::to_owned);
    *h.installs.lock().unwrap() += 1;
    StatusCode::NO_CONTENT
}

async fn holder_read(State(h): State<Holder>) -> (StatusCode, Json<Value>) {
    if *h.refusing.lock().unwrap() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({})));
    }
    (StatusCode::OK, Json(json!({"key": *h.key.lock().unwrap()})))
}

pub(crate) async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

impl KeyHolder {
    pub(crate) async fn start() -> Self {
        let holder = Holder::default();
        let router = axum::Router::new()
            .route("/key", post(holder_install).get(holder_read))
            .with_state(holder.clone());
        let addr = serve(router).await;
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("holder-secret");
        std::fs::write(&secret_file, HOLDER_SECRET).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        Self {
            holder,
            addr,
            secret_file,
            _dir: dir,
        }
    }

    fn target_config(&self) -> TargetConfig {
        serde_json::from_value(self.target_json()).unwrap()
    }

    /// The webhook target pointed at this holder, as configuration JSON.
    pub(crate) fn target_json(&self) -> Value {
        json!({
            "kind": "webhook",
            "url": format!("http://{}/key", self.addr),
            "secret_file": self.secret_file,
            "request_timeout": "5s",
            "max_attempts": 1,
        })
    }

    pub(crate) fn key(&self) -> Option<String> {
        self.holder.key.lock().unwrap().clone()
    }

    fn installs(&self) -> u32 {
        *self.holder.installs.lock().unwrap()
    }

    fn refuse(&self, refusing: bool) {
        *self.holder.refusing.lock().unwrap() = refusing;
    }
}

/// Receives alert webhooks.
#[derive(Clone, Default)]
pub(crate) struct AlertSink {
    received: Arc<Mutex<Vec<Value>>>,
}

async fn sink_receive(State(sink): State<AlertSink>, Json(body): Json<Value>) -> StatusCode {
    sink.received.lock().unwrap().push(body);
    StatusCode::NO_CONTENT
}

impl AlertSink {
    pub(crate) async fn start() -> (Self, String) {
        let sink = AlertSink::default();
        let router = axum::Router::new()
            .route("/alerts", post(sink_receive))
            .with_state(sink.clone());
        let addr = serve(router).await;
        (sink, format!("http://{addr}/alerts"))
    }

    pub(crate) fn events(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }
}

/// Waits (generously, for a loaded machine) until `check` holds.
pub(crate) async fn eventually<F: FnMut() -> bool>(what: &str, mut check: F) {
    for _ in 0..600 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn policy() -> Policy {
    let config: gha_auth_server::config::LinkKeyConfig = serde_json::from_value(json!({
        "rotation_period": "1d", "overlap": "1h", "quiet_period": "10m", "max_age": "60s",
        "validator_max_stale": "0s", "publish_ahead": "2m", "retry_base": "10s",
        "retry_max": "2m", "claim_timeout": "1m",
        "target": {"kind": "webhook", "url": "http://127.0.0.1:1/"},
    }))
    .unwrap();
    assert!(config.problems("epicor").is_empty());
    config.policy()
}

async fn vault_store(bao: &OpenBao, prefix: &str) -> Arc<dyn LinkKeyStore> {
    let config = VaultConfig::new(
        bao.addr(),
        AuthConfig::token(CredentialSource::value(bao.root_token())),
    )
    .with_request_timeout(Duration::from_secs(10));
    let session = VaultSession::start(&config, gha_auth::SystemClock::shared()).unwrap();
    session.ready(Duration::from_secs(30)).await.unwrap();
    Arc::new(VaultLinkKeyStore::new(
        session.kv2("secret").unwrap(),
        prefix,
    ))
}

struct Rig {
    store: Arc<dyn LinkKeyStore>,
    db: Store,
    clock: ManualClock,
    holder: KeyHolder,
}

impl Rig {
    async fn rotator(&self, name: &str, node: &str, faults: Option<Arc<FaultPlan>>) -> Rotator {
        let target = build_target(
            &self.holder.target_config(),
            TargetDeps::new(self.clock.shared()),
        )
        .await
        .unwrap();
        let audit = Arc::new(AuditLog::new(self.db.clone(), self.clock.shared()));
        let rotator = Rotator::new(
            name,
            DriverSettings::new(policy(), TimeDelta::seconds(30)),
            self.store.clone(),
            target,
            self.clock.shared(),
            audit,
            node.to_owned(),
        );
        match faults {
            Some(plan) => rotator.with_faults(plan),
            None => rotator,
        }
    }

    async fn state(&self, name: &str) -> LinkKeyState {
        self.store.load(name).await.unwrap().unwrap().state
    }

    /// Ticks `rotator`, moving the clock to each next due time, until `done` holds.
    async fn drive(&self, rotator: &Rotator, name: &str, done: impl Fn(&LinkKeyState) -> bool) {
        for _ in 0..50 {
            let next = rotator.tick().await.unwrap();
            if done(&self.state(name).await) {
                return;
            }
            match next {
                Some(at) if at > gha_auth::Clock::now(&*self.clock.shared()) => self.clock.set(at),
                _ => self.clock.advance(TimeDelta::seconds(1)),
            }
        }
        panic!(
            "{name}: the rotation did not complete: {:?}",
            self.state(name).await
        );
    }
}

pub(crate) async fn count_audit(db: &Store, kind: &str, subject: &str) -> usize {
    db.audit_rows_after(0, 1_000_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|row| row.kind == kind && row.subject == subject)
        .count()
}

/// Every point a crash can happen at during a rotation.
fn crash_points() -> Vec<FaultPoint> {
    let mut points = vec![FaultPoint::BeforeBegin, FaultPoint::AfterBegin];
    for step in [Step::Create, Step::Promote] {
        points.push(FaultPoint::Before(step));
        points.push(FaultPoint::AfterPersist(step));
    }
    for step in [Step::Set, Step::Test] {
        points.push(FaultPoint::Before(step));
        points.push(FaultPoint::AfterEffect(step));
        points.push(FaultPoint::AfterPersist(step));
    }
    points
}

async fn crash_and_resume(rig: &Rig, name: &str) {
    // The key in service before the crashing rotation.
    let first = rig.rotator(name, "boot", None).await;
    rig.drive(&first, name, |s| s.rotations == 1 && s.rotation.is_none())
        .await;
    let before = rig.state(name).await;
    let old = before.current.clone().unwrap();
    assert_eq!(rig.holder.key().as_deref(), Some(old.key.expose()));

    for (round, point) in crash_points().into_iter().enumerate() {
        let rotations = rig.state(name).await.rotations;
        let previous_current = rig.state(name).await.current.unwrap();
        rig.clock.advance(TimeDelta::days(1));
        let plan = Arc::new(FaultPlan::stop_at(point));
        let crashing = rig
            .rotator(name, &format!("crash-{round}"), Some(plan.clone()))
            .await;
        let mut crashed = false;
        for _ in 0..20 {
            match crashing.tick().await {
                Err(_) => {
                    crashed = true;
                    break;
                }
                Ok(next) => match next {
                    Some(at) => rig.clock.set(at),
                    None => rig.clock.advance(TimeDelta::seconds(1)),
                },
            }
        }
        assert!(crashed && plan.fired(), "{point:?}: the fault never fired");
        drop(crashing);

        // A new process (another node) picks it up and completes it.
        let restarted = rig.rotator(name, &format!("restart-{round}"), None).await;
        rig.drive(&restarted, name, |s| {
            s.rotations == rotations + 1 && s.rotation.is_none()
        })
        .await;
        let state = rig.state(name).await;
        let current = state.current.clone().unwrap();
        let previous = state.previous.clone().unwrap();
        assert!(state.pending.is_none(), "{point:?}");
        assert_ne!(current.id, previous_current.id, "{point:?}: a new key");
        assert_eq!(previous.id, previous_current.id, "{point:?}: nothing lost");
        assert_eq!(
            rig.holder.key().as_deref(),
            Some(current.key.expose()),
            "{point:?}: the integration holds CURRENT"
        );
        let served = state.served(gha_auth::Clock::now(&*rig.clock.shared()));
        let currents = served
            .keys
            .iter()
            .filter(|k| k.state == gha_auth_server::testing::ServedState::Current)
            .count();
        assert_eq!(currents, 1, "{point:?}: exactly one CURRENT");
        assert_eq!(served.keys.len(), 2, "{point:?}: CURRENT and PREVIOUS");
    }
    let total = rig.state(name).await.rotations;
    assert_eq!(
        count_audit(&rig.db, "link_keys.rotated", name).await as u64,
        total,
        "one rotated event per rotation"
    );
}

#[tokio::test]
async fn a_crash_after_each_step_resumes_and_completes_on_openbao_and_postgres() {
    let bao = OpenBao::start().await.expect("OpenBao dev server");
    bao.enable_kv2("secret").await.unwrap();
    let pg = PgDatabase::create().await.expect("PostgreSQL database");
    let db = Store::open(pg.url(), 4).await.unwrap();
    let clock = ManualClock::at_unix(START);
    let prefix = format!("gha-auth-e2e-{}/link-keys", random_hex(4).unwrap());
    let vault = Rig {
        store: vault_store(&bao, &prefix).await,
        db: db.clone(),
        clock: clock.clone(),
        holder: KeyHolder::start().await,
    };
    crash_and_resume(&vault, "epicor").await;
    let local = Rig {
        store: Arc::new(LocalLinkKeyStore::new(
            db.clone(),
            Arc::new(gha_auth_server::testing::MasterKey::from_bytes(&[9; 32]).unwrap()),
            clock.shared(),
            "e2e".into(),
        )),
        db: db.clone(),
        clock,
        holder: KeyHolder::start().await,
    };
    crash_and_resume(&local, "epicor-local").await;
    crate::support::assert_audit_intact(&db).await;
    db.close().await;
}

fn link_key_config(holder: &KeyHolder) -> gha_auth_server::config::LinkKeyConfig {
    let mut value = json!({
        "rotation_period": "1d", "overlap": "1h", "quiet_period": "10m", "max_age": "60s",
        "validator_max_stale": "0s", "publish_ahead": "2m", "retry_base": "10s",
        "retry_max": "2m", "claim_timeout": "1m", "check_interval": "30s",
    });
    value["target"] = serde_json::to_value(json!({
        "kind": "webhook",
        "url": format!("http://{}/key", holder.addr),
        "secret_file": holder.secret_file,
        "request_timeout": "5s",
        "max_attempts": 1,
    }))
    .unwrap();
    serde_json::from_value(value).unwrap()
}

fn server_config(dir: &std::path::Path, store: Option<&str>, holder: &KeyHolder) -> Config {
    std::fs::create_dir_all(dir).unwrap();
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.join("data");
    config.store.url = store.map(str::to_owned);
    config
        .link_keys
        .insert("epicor".into(), link_key_config(holder));
    config
}

fn with_vault(mut config: Config, bao: &OpenBao, prefix: &str) -> Config {
    let token_file = config.data_dir.with_file_name("vault-token");
    std::fs::write(&token_file, bao.root_token()).unwrap();
    config.vault.address = Some(bao.addr().to_owned());
    config.vault.token_file = Some(token_file);
    config.vault.key_prefix = format!("{prefix}/keys");
    config.vault.link_key_prefix = format!("{prefix}/link-keys");
    config
}

/// The stored state of the `epicor` link key, if there is one yet.
pub(crate) async fn stored(app: &gha_auth_server::RunningApp) -> Option<LinkKeyState> {
    let entry = app.authority().link_keys().get("epicor").unwrap();
    let loaded = entry.rotator.store().load("epicor").await.unwrap();
    loaded.map(|loaded| loaded.state)
}

async fn load(app: &gha_auth_server::RunningApp) -> LinkKeyState {
    stored(app).await.unwrap()
}

/// Moves the manual clock forward in small steps, never while a replica holds a claim (a
/// target call in flight), until `done` holds for the stored state.
async fn advance_until(
    app: &gha_auth_server::RunningApp,
    clock: &ManualClock,
    step: TimeDelta,
    what: &str,
    done: impl Fn(&LinkKeyState) -> bool,
) {
    for _ in 0..2000 {
        let state = stored(app)
            .await
            .unwrap_or_else(|| LinkKeyState::empty("epicor"));
        if done(&state) {
            return;
        }
        let in_flight = state
            .rotation
            .as_ref()
            .is_some_and(|r| r.claimed_by.is_some());
        if !in_flight {
            clock.advance(step);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test]
async fn two_replicas_on_one_postgres_and_one_openbao_rotate_once_per_tick() {
    let bao = OpenBao::start().await.expect("OpenBao dev server");
    bao.enable_kv2("secret").await.unwrap();
    let pg = PgDatabase::create().await.expect("PostgreSQL database");
    let dir = tempfile::tempdir().unwrap();
    let holder = KeyHolder::start().await;
    let prefix = format!("gha-auth-e2e-{}", random_hex(4).unwrap());
    let clock = ManualClock::at_unix(START);
    let config_a = with_vault(
        server_config(&dir.path().join("a"), Some(pg.url()), &holder),
        &bao,
        &prefix,
    );
    let config_b = with_vault(
        server_config(&dir.path().join("b"), Some(pg.url()), &holder),
        &bao,
        &prefix,
    );
    let (a, b) = tokio::join!(
        gha_auth_server::build_app(config_a, clock.shared()),
        gha_auth_server::build_app(config_b, clock.shared())
    );
    let (a, b) = (a.unwrap().spawn(), b.unwrap().spawn());
    let described = a
        .authority()
        .link_keys()
        .get("epicor")
        .unwrap()
        .rotator
        .store()
        .describe();
    assert!(described.starts_with("vault"), "{described}");

    // First start: one initial rotation between the two.
    advance_until(&a, &clock, TimeDelta::seconds(10), "initial key", |s| {
        s.rotations == 1 && s.rotation.is_none()
    })
    .await;
    // Three scheduled ticks, each seen by both replicas at the same instant.
    for tick in 2..=4u64 {
        clock.advance(TimeDelta::days(1));
        advance_until(
            &a,
            &clock,
            TimeDelta::seconds(10),
            "scheduled rotation",
            |s| s.rotations == tick && s.rotation.is_none(),
        )
        .await;
        // Both serve the same state.
        let (sa, sb) = (load(&a).await, load(&b).await);
        assert_eq!(
            sa.current.as_ref().unwrap().id,
            sb.current.as_ref().unwrap().id
        );
    }
    let store = Store::open(pg.url(), 2).await.unwrap();
    assert_eq!(
        count_audit(&store, "link_keys.rotation_started", "epicor").await,
        4
    );
    assert_eq!(count_audit(&store, "link_keys.rotated", "epicor").await, 4);
    assert_eq!(
        holder.installs(),
        4,
        "each key installed once, by one replica"
    );
    let state = load(&a).await;
    assert_eq!(
        holder.key().as_deref(),
        Some(state.current.unwrap().key.expose())
    );
    crate::support::assert_audit_intact(&store).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn a_refusing_target_keeps_current_retries_alerts_degrades_and_recovers() {
    let pg = PgDatabase::create().await.expect("PostgreSQL database");
    let dir = tempfile::tempdir().unwrap();
    let holder = KeyHolder::start().await;
    let (sink, sink_url) = AlertSink::start().await;
    let clock = ManualClock::at_unix(START);
    let mut config = server_config(dir.path(), Some(pg.url()), &holder);
    config.alerts.webhook_url = Some(sink_url);
    let app = gha_auth_server::build_app(config, clock.shared())
        .await
        .unwrap()
        .spawn();
    advance_until(&app, &clock, TimeDelta::seconds(10), "initial key", |s| {
        s.rotations == 1 && s.rotation.is_none()
    })
    .await;
    let before = load(&app).await.current.unwrap();

    holder.refuse(true);
    clock.advance(TimeDelta::days(1));
    advance_until(
        &app,
        &clock,
        TimeDelta::seconds(5),
        "two failed attempts",
        |s| s.rotation.as_ref().is_some_and(|r| r.failures >= 2),
    )
    .await;
    let state = load(&app).await;
    assert_eq!(
        state.current.as_ref().unwrap().id,
        before.id,
        "CURRENT unchanged"
    );
    assert_eq!(state.rotations, 1);
    let rotation = state.rotation.as_ref().unwrap();
    assert_eq!(rotation.step, Step::Set);
    assert!(
        rotation.last_error.as_deref().unwrap().contains("503"),
        "{rotation:?}"
    );
    // The pending key is still served (the target might hold it), CURRENT too.
    let served = state.served(gha_auth::Clock::now(&*clock.shared()));
    assert_eq!(served.keys.len(), 2);

    eventually("failure alerts", || {
        sink.events()
            .iter()
            .filter(|e| e["event"] == "link_key.rotation_failed")
            .count()
            >= 2
    })
    .await;
    for alert in sink.events() {
        assert_eq!(alert["name"], "epicor");
        assert_eq!(alert["step"], "set");
        assert!(
            !alert.to_string().contains("ghal_"),
            "no key in an alert: {alert}"
        );
    }

    let http = reqwest::Client::new();
    let health: Value = http
        .get(format!("{}/HealthCheck", app.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "Degraded", "{health}");
    let component = &health["checks"]["link_keys"];
    assert_eq!(component["status"], "Degraded", "{health}");
    assert!(
        component["keys"]["epicor"]["rotation"]["last_error"].is_string(),
        "{health}"
    );
    assert!(!health.to_string().contains("ghal_"));
    let metrics = http
        .get(format!("{}/metrics", app.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gha_auth_link_key_rotation_steps_total")
                && l.contains("result=\"failure\"")
                && l.contains("step=\"set\"")),
        "{metrics}"
    );

    // The target comes back: the rotation completes by itself.
    holder.refuse(false);
    advance_until(&app, &clock, TimeDelta::seconds(5), "recovery", |s| {
        s.rotations == 2 && s.rotation.is_none()
    })
    .await;
    let state = load(&app).await;
    assert_eq!(state.previous.as_ref().unwrap().id, before.id);
    assert_eq!(
        holder.key().as_deref(),
        Some(state.current.as_ref().unwrap().key.expose())
    );
    eventually("recovery alert", || {
        sink.events()
            .iter()
            .any(|e| e["event"] == "link_key.rotation_recovered")
    })
    .await;
    // Wait for the driver's status to catch up with the store, then health is back.
    let mut healthy = false;
    for _ in 0..100 {
        let health: Value = http
            .get(format!("{}/HealthCheck", app.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if health["checks"]["link_keys"]["status"] == "Healthy" {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "health recovers");
    let store = Store::open(pg.url(), 2).await.unwrap();
    assert!(count_audit(&store, "link_keys.step_failed", "epicor").await >= 2);
    crate::support::assert_audit_intact(&store).await;
    app.shutdown().await.unwrap();
    store.close().await;
}

/// SHA-256 hex of a key text, as validators compare.
fn digest(key: &str) -> String {
    gha_auth_server::testing::digest_hex(key)
}

#[tokio::test]
async fn validators_get_digests_only_and_bad_callers_are_refused_and_audited() {
    use gha_auth_middleware::AuthLayer;
    use gha_auth_middleware::linkkey::{HttpLinkKeySource, LinkKeyIntegration, StaticToken};
    use gha_auth_server::testing::{ClientRegistration, GrantType};

    let dir = tempfile::tempdir().unwrap();
    let holder = KeyHolder::start().await;
    let config = server_config(dir.path(), None, &holder);
    // Real time: the middleware's source reads the wall clock too.
    let app = gha_auth_server::build_app(config, gha_auth::SystemClock::shared())
        .await
        .unwrap()
        .spawn();
    let (_, secret) = app
        .authority()
        .clients()
        .register(
            ClientRegistration::new("fs-validator")
                .grant(GrantType::ClientCredentials)
                .audience("gha-auth-link-keys"),
            "e2e",
        )
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let token: Value = http
        .post(app.authority().token_endpoint())
        .basic_auth("fs-validator", Some(secret.unwrap().expose()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    // The driver created the first key (PENDING) at start.
    let mut pending = None;
    for _ in 0..300 {
        if let Some(state) = stored(&app).await
            && let Some(key) = state.pending.or(state.current)
        {
            pending = Some(key);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let key = pending.expect("the first key is created at start");
    let url = format!("{}/v1/link-keys/epicor", app.base_url());

    // No credentials: 401 with a Bearer challenge.
    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().get("www-authenticate").is_some());
    // Unknown name: 404.
    let response = http
        .get(format!("{}/v1/link-keys/nope", app.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "not_found");

    // Digests only, cacheable, with an ETag.
    let response = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "max-age=60");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let text = response.text().await.unwrap();
    assert!(!text.contains("ghal_"), "never a key: {text}");
    let set: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(set["name"], "epicor");
    assert_eq!(set["keys"][0]["id"], key.id.as_str());
    assert_eq!(set["keys"][0]["digest"], digest(key.key.expose()).as_str());
    let response = http
        .get(&url)
        .bearer_auth(&token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);

    // A validator (the middleware's HTTP source) accepts the key, refuses one with a bad
    // checksum, and reports use, which the authority records.
    let source = HttpLinkKeySource::builder(app.base_url(), "epicor")
        .token_provider(StaticToken(gha_auth::SecretString::from(token.as_str())))
        .validator_name("field-service")
        .danger_accept_plain_http(true)
        .build()
        .unwrap();
    assert!(source.wait_loaded(Duration::from_secs(30)).await);
    let auth = AuthLayer::builder()
        .issuer(app.authority().issuer())
        .audience("field-service")
        .jwks_url(format!("{}/.well-known/jwks.json", app.base_url()))
        .link_key(
            LinkKeyIntegration::new("epicor", source.clone())
                .scopes(["jobs:epicor-update"])
                .tenant("acme"),
        )
        .build()
        .unwrap();
    assert!(auth.wait_ready(Duration::from_secs(10)).await);
    let router = field_service::app(
        auth,
        field_service::JobStore::new(gha_auth::SystemClock::shared()),
        None,
    );
    let fs = serve(router).await;
    let post = |api_key: String| {
        let http = http.clone();
        async move {
            http.post(format!("http://{fs}/epicor/job-updates"))
                .header("x-api-key", api_key)
                .json(&json!({"job_number": "J-1", "status": "open"}))
                .send()
                .await
                .unwrap()
        }
    };
    let accepted = post(key.key.expose().to_owned()).await;
    assert!(accepted.status().is_success(), "{}", accepted.status());
    let mut bad = key.key.expose().to_owned();
    let last = bad.pop().unwrap();
    bad.push(if last == 'A' { 'B' } else { 'A' });
    let refused = post(bad).await;
    assert_eq!(refused.status(), 401, "bad checksum refused");
    source.report_usage().await.unwrap();
    let state = load(&app).await;
    let seen = [state.current.as_ref(), state.pending.as_ref()]
        .into_iter()
        .flatten()
        .find(|k| k.id == key.id)
        .unwrap();
    assert!(seen.last_seen.is_some(), "usage recorded");

    // Refusals are audited: anonymous ones aggregated, written at the next flush (every 10 s).
    let store = app.authority().store().clone();
    let started = std::time::Instant::now();
    while count_audit(&store, "link_keys.access_denied", "epicor").await == 0
        || count_audit(&store, "link_keys.access_denied", "nope").await == 0
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "refusals not audited within two flush intervals"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    crate::support::assert_audit_intact(&store).await;
    app.shutdown().await.unwrap();
}
