//! The Epicor link end to end: the real server rotates the link key into the fake
//! Epicor (REST v2 `UserCodesSvc`, the one fake, see `gha_auth_testkit::FakeEpicor`), whose data
//! directive posts job updates to the real field-service example, which validates the key with
//! the middleware's HTTP link-key source reading `GET /v1/link-keys/epicor`.
//!
//! Time is compressed: the server, the link-key source and the layer share a manual clock that
//! the test moves forward one second at a time, never while a target call is in flight and never
//! past a validator's refresh that has not happened yet (real time must catch up with it). The
//! data directive runs in real time and never stops, so every key change races real traffic.

use std::path::Path;
use std::time::Duration;

use chrono::TimeDelta;
use gha_auth::{Clock as _, ManualClock, SecretString};
use gha_auth_middleware::linkkey::{HttpLinkKeySource, LinkKeyIntegration, LinkKeySource as _};
use gha_auth_middleware::{AuthLayer, HealthStatus, RefreshPolicy};
use gha_auth_server::RunningApp;
use gha_auth_server::config::Config;
use gha_auth_server::testing::LinkKeyState;
use gha_auth_server::testing::{ClientRegistration, GrantType};
use gha_auth_testkit::{DataDirective, EpicorMode, FakeEpicor, FakeEpicorConfig, PgDatabase};
use serde_json::{Value, json};

use crate::linkkeys::{AlertSink, count_audit, eventually, serve, stored};
use crate::support::START;

/// The compressed schedule. `validator_max_stale` is the test's own step: a validator may be
/// one step late with its refresh, and the server's checks must account for it.
fn link_key_config(epicor: &FakeEpicor, credentials: &Path) -> Value {
    json!({
        "rotation_period": "10s", "publish_ahead": "3s", "overlap": "4s", "quiet_period": "2s",
        "max_age": "2s", "validator_max_stale": "1s", "check_interval": "1s",
        "retry_base": "1s", "retry_max": "4s", "claim_timeout": "30s",
        "target": {
            "kind": "epicor",
            "base_url": epicor.base_url(),
            "company": epicor.config().company,
            "auth": "token",
            "credentials_file": credentials,
            "request_timeout": "5s",
            "max_attempts": 1,
        },
    })
}

fn credentials_file(dir: &Path, epicor: &FakeEpicor) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("epicor.toml");
    let c = epicor.config();
    std::fs::write(
        &path,
        format!(
            "username = \"{}\"\npassword = \"{}\"\napi_key = \"{}\"\n",
            c.username, c.password, c.api_key
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// The authority, the fake Epicor and field-service, wired as in production.
struct Link {
    app: RunningApp,
    epicor: FakeEpicor,
    clock: ManualClock,
    source: HttpLinkKeySource,
    field_service: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Link {
    async fn start(store_url: Option<&str>, alerts: Option<String>) -> Self {
        let epicor = FakeEpicor::start(FakeEpicorConfig::default())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let credentials = credentials_file(dir.path(), &epicor);
        let mut config = Config::default();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = dir.path().join("data");
        config.store.url = store_url.map(str::to_owned);
        config.alerts.webhook_url = alerts;
        let link_key = serde_json::from_value(link_key_config(&epicor, &credentials)).unwrap();
        config.link_keys.insert("epicor".into(), link_key);
        let clock = ManualClock::at_unix(START);
        let app = gha_auth_server::build_app(config, clock.shared())
            .await
            .unwrap()
            .spawn();

        let (_, secret) = app
            .authority()
            .clients()
            .register(
                ClientRegistration::new("field-service-validator")
                    .grant(GrantType::ClientCredentials)
                    .audience("gha-auth-link-keys"),
                "e2e",
            )
            .await
            .unwrap();
        let mut settings = field_service::link_keys::AuthorityLinkKeys::new(
            app.base_url(),
            "field-service-validator",
            SecretString::from(secret.unwrap().expose()),
        );
        settings.refresh = RefreshPolicy {
            min_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(60),
            default_interval: Duration::from_secs(2),
            max_stale: Duration::from_secs(60),
            retry_initial: Duration::from_secs(1),
        };
        settings.report_interval = Duration::from_secs(1);
        settings.accept_plain_http = true;
        let source = settings.start(clock.shared()).unwrap();
        let auth = AuthLayer::builder()
            .issuer(app.authority().issuer())
            .audience("field-service")
            .jwks_url(format!("{}/.well-known/jwks.json", app.base_url()))
            .clock(clock.shared())
            .link_key(
                LinkKeyIntegration::new("epicor", source.clone())
                    .scopes(["jobs:epicor-update"])
                    .tenant("acme"),
            )
            .build()
            .unwrap();
        assert!(auth.wait_ready(Duration::from_secs(30)).await);
        let router = field_service::app(auth, field_service::JobStore::new(clock.shared()), None);
        let field_service = format!("http://{}", serve(router).await);
        Self {
            app,
            epicor,
            clock,
            source,
            field_service,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn state(&self) -> LinkKeyState {
        stored(&self.app)
            .await
            .unwrap_or_else(|| LinkKeyState::empty("epicor"))
    }

    /// Whether the validator's list is fresh by the manual clock: if not, its refresh is due
    /// and real time has not run it yet.
    fn validator_fresh(&self) -> bool {
        self.source.health(self.clock.now()).status == HealthStatus::Healthy
    }

    /// Moves the clock one second at a time until `done` holds for the stored state.
    async fn advance_until(&self, what: &str, done: impl Fn(&LinkKeyState) -> bool) {
        for _ in 0..3000 {
            let state = self.state().await;
            if done(&state) {
                return;
            }
            let in_flight = state
                .rotation
                .as_ref()
                .is_some_and(|r| r.claimed_by.is_some());
            if !in_flight && self.validator_fresh() {
                self.clock.advance(TimeDelta::seconds(1));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for: {what}: {:?}", self.state().await);
    }

    async fn post_job_update(&self, api_key: &str) -> reqwest::StatusCode {
        self.http
            .post(format!("{}/epicor/job-updates", self.field_service))
            .header("x-api-key", api_key)
            .json(&json!({"job_number": "J-TEST", "status": "open"}))
            .send()
            .await
            .unwrap()
            .status()
    }

    /// What Epicor holds now in the User Code the directive reads.
    fn epicor_key(&self) -> Option<String> {
        self.epicor.user_code("GHA", "LINKKEY")
    }

    async fn health(&self) -> Value {
        self.http
            .get(format!("{}/HealthCheck", self.app.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Lets the directive make `n` more accepted calls (real time).
    async fn traffic(&self, directive: &DataDirective, n: u64) {
        let target = directive.counts().accepted + n;
        assert!(
            directive
                .wait_accepted(target, Duration::from_secs(60))
                .await,
            "the directive is not getting through: {:?}, {:?}",
            directive.counts(),
            directive.rejections()
        );
    }
}

fn current_key(state: &LinkKeyState) -> String {
    state.current.as_ref().unwrap().key.expose().to_owned()
}

#[tokio::test]
async fn fifty_rotations_under_continuous_epicor_traffic_reject_no_call() {
    const ROTATIONS: u64 = 50;
    let pg = PgDatabase::create().await.expect("PostgreSQL database");
    let link = Link::start(Some(pg.url()), None).await;

    // The first key: created, installed in Epicor, promoted; then Epicor starts calling.
    link.advance_until("the first key", |s| {
        s.rotations == 1 && s.rotation.is_none()
    })
    .await;
    let directive = link
        .epicor
        .start_data_directive(&link.field_service, Duration::from_millis(5));
    link.traffic(&directive, 5).await;

    let mut retired = Vec::new();
    for n in 2..=ROTATIONS + 1 {
        let before = link.state().await;
        let old = current_key(&before);
        link.advance_until("the next rotation", |s| {
            s.rotations == n && s.rotation.is_none()
        })
        .await;
        let now = link.state().await;
        let new = current_key(&now);
        assert_ne!(new, old, "rotation {n} changed the key");
        assert_eq!(
            link.epicor_key().as_deref(),
            Some(new.as_str()),
            "Epicor holds CURRENT"
        );
        // Epicor's calls go through with the new key…
        link.traffic(&directive, 3).await;
        // …and once the overlap (or the quiet period after the new key's first use) is over,
        // the old key is refused.
        let old_id = before.current.as_ref().unwrap().id.clone();
        let clock = link.clock.clone();
        link.advance_until("the old key retired", |s| {
            s.previous.as_ref().is_none_or(|p| {
                p.id != old_id || p.expires_at.is_some_and(|exp| exp <= clock.now())
            })
        })
        .await;
        // Validators learn of an early retirement at their next refresh: within max_age plus
        // their allowed staleness.
        let until = link.clock.now() + TimeDelta::seconds(3);
        link.advance_until("validators refreshed", |_| clock.now() >= until)
            .await;
        assert_eq!(
            link.post_job_update(&old).await,
            401,
            "rotation {n}: the retired key is refused"
        );
        retired.push(old);
    }

    let counts = directive.stop().await;
    assert_eq!(counts.rejected, 0, "no call rejected");
    assert_eq!(counts.failed, 0, "no call failed");
    assert!(
        counts.accepted >= 3 * ROTATIONS,
        "traffic ran throughout: {counts:?}"
    );
    // Every retired key stays refused; the current one is accepted.
    for old in &retired {
        assert_eq!(link.post_job_update(old).await, 401);
    }
    let state = link.state().await;
    assert_eq!(state.rotations, ROTATIONS + 1);
    assert!(
        link.post_job_update(&current_key(&state))
            .await
            .is_success()
    );
    assert_eq!(
        link.health().await["checks"]["link_keys"]["status"],
        "Healthy"
    );
    let store = link.app.authority().store().clone();
    assert_eq!(
        count_audit(&store, "link_keys.rotated", "epicor").await,
        usize::try_from(ROTATIONS + 1).unwrap()
    );
    crate::support::assert_audit_intact(&store).await;
    link.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn epicor_down_then_refusing_keeps_current_alerts_and_recovers_by_itself() {
    let (sink, sink_url) = AlertSink::start().await;
    let link = Link::start(None, Some(sink_url)).await;
    link.advance_until("the first key", |s| {
        s.rotations == 1 && s.rotation.is_none()
    })
    .await;
    let directive = link
        .epicor
        .start_data_directive(&link.field_service, Duration::from_millis(5));
    link.traffic(&directive, 5).await;
    let before = link.state().await.current.unwrap();

    for (mode, error) in [
        (EpicorMode::Down, "503"),
        (EpicorMode::RejectUpdates, "400"),
    ] {
        link.epicor.set_mode(mode);
        let failures_so_far = link.state().await.rotation.map_or(0, |r| r.failures);
        link.advance_until("two more failed attempts", |s| {
            s.rotation
                .as_ref()
                .is_some_and(|r| r.failures >= failures_so_far + 2)
        })
        .await;
        let state = link.state().await;
        assert_eq!(
            state.current.as_ref().unwrap().id,
            before.id,
            "CURRENT unchanged"
        );
        assert_eq!(state.rotations, 1);
        let rotation = state.rotation.as_ref().unwrap();
        assert!(
            rotation.last_error.as_deref().unwrap_or("").contains(error),
            "{mode:?}: {rotation:?}"
        );
        let health = link.health().await;
        assert_eq!(health["status"], "Degraded", "{health}");
        assert_eq!(
            health["checks"]["link_keys"]["status"], "Degraded",
            "{health}"
        );
        assert!(!health.to_string().contains("ghal_"), "{health}");
        // Epicor still holds CURRENT (a refused update changes nothing), and its calls still
        // go through while Epicor answers them.
        assert_eq!(
            link.epicor_key().as_deref(),
            Some(before.key.expose()),
            "Epicor keeps the current key"
        );
    }
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
        assert!(
            !alert.to_string().contains("ghal_"),
            "no key in an alert: {alert}"
        );
    }

    // Epicor comes back: the rotation completes without anyone touching it.
    link.epicor.set_mode(EpicorMode::Normal);
    link.advance_until("recovery", |s| s.rotations == 2 && s.rotation.is_none())
        .await;
    let state = link.state().await;
    assert_eq!(state.previous.as_ref().unwrap().id, before.id);
    assert_eq!(
        link.epicor_key().as_deref(),
        Some(state.current.as_ref().unwrap().key.expose())
    );
    link.traffic(&directive, 3).await;
    eventually("recovery alert", || {
        sink.events()
            .iter()
            .any(|e| e["event"] == "link_key.rotation_recovered")
    })
    .await;
    let counts = directive.stop().await;
    assert_eq!(counts.rejected, 0, "no call rejected: {counts:?}");
    let store = link.app.authority().store().clone();
    assert!(count_audit(&store, "link_keys.step_failed", "epicor").await >= 4);
    link.app.shutdown().await.unwrap();
}
