use std::sync::Arc;

use chrono::TimeDelta;
use gha_auth::keys::{Algorithm, KeySchedule, KeyState, Transition};
use gha_auth::{Clock, ManualClock};

use super::manager::SyncReport;
use super::*;
use crate::atrest::MasterKey;
use crate::audit::AuditLog;
use crate::store::Store;

struct Node {
    manager: Arc<KeyManager>,
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    clock: ManualClock,
    master: Arc<MasterKey>,
}

fn schedule() -> KeySchedule {
    KeySchedule {
        rotation_period: TimeDelta::days(30),
        publish_ahead: TimeDelta::hours(1),
        max_token_lifetime: TimeDelta::minutes(10),
        leeway: TimeDelta::seconds(60),
        jwks_max_age: TimeDelta::minutes(15),
        retain_retired: TimeDelta::minutes(26),
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &format!("sqlite://{}", dir.path().join("k.db").display()),
        4,
    )
    .await
    .unwrap();
    Fixture {
        _dir: dir,
        store,
        clock: ManualClock::at_unix(1_700_000_000),
        master: Arc::new(MasterKey::from_bytes(&[3; 32]).unwrap()),
    }
}

impl Fixture {
    fn key_store(&self, node: &str) -> Arc<dyn KeyStore> {
        Arc::new(LocalKeyStore::new(
            self.store.clone(),
            self.master.clone(),
            self.clock.shared(),
            node.to_owned(),
        ))
    }

    async fn node(&self, name: &str) -> Node {
        self.node_with(name, Algorithm::ES256).await
    }

    async fn node_with(&self, name: &str, algorithm: Algorithm) -> Node {
        let audit = Arc::new(AuditLog::new(self.store.clone(), self.clock.shared()));
        let manager = KeyManager::open(
            self.key_store(name),
            KeySettings::new(schedule(), algorithm),
            self.clock.shared(),
            audit,
            name,
        )
        .await
        .unwrap();
        Node {
            manager: Arc::new(manager),
        }
    }
}

fn jwks_kids(manager: &KeyManager) -> Vec<String> {
    let json: serde_json::Value = serde_json::from_slice(&manager.snapshot().jwks_json()).unwrap();
    json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// The published keys' ids and states (what `GET /v1/keys` serves); each JWK must be the one the
/// JWKS publishes, in the JWKS's order.
fn published_states(manager: &KeyManager) -> Vec<(String, KeyState)> {
    let jwks: serde_json::Value = serde_json::from_slice(&manager.snapshot().jwks_json()).unwrap();
    let published = manager.published();
    let jwks_keys: Vec<gha_auth::keys::Jwk> = serde_json::from_value(jwks["keys"].clone()).unwrap();
    let jwks_of_published: Vec<gha_auth::keys::Jwk> =
        published.iter().map(|(_, jwk)| jwk.clone()).collect();
    assert_eq!(jwks_of_published, jwks_keys);
    published
        .into_iter()
        .map(|(info, jwk)| {
            assert_eq!(jwk.kid.as_deref(), Some(info.kid.as_str()));
            (info.kid, info.state)
        })
        .collect()
}

fn signing_kid(manager: &KeyManager, clock: &ManualClock) -> String {
    manager
        .snapshot()
        .signing_key(clock.now())
        .unwrap()
        .kid()
        .to_owned()
}

#[tokio::test]
async fn the_first_start_creates_one_key_and_later_starts_load_it() {
    let f = fixture().await;
    let a = f.node("a").await;
    let kid = signing_kid(&a.manager, &f.clock);
    assert_eq!(jwks_kids(&a.manager), vec![kid.clone()]);
    let b = f.node("b").await;
    assert_eq!(
        signing_kid(&b.manager, &f.clock),
        kid,
        "a second process loads the same ring"
    );
    assert_eq!(a.manager.sync().await.unwrap(), SyncReport::default());
}

#[tokio::test]
async fn scheduled_rotation_publishes_ahead_then_switches_then_removes() {
    let f = fixture().await;
    let node = f.node("a").await;
    let m = &node.manager;
    let first = signing_kid(m, &f.clock);
    let s = schedule();

    // Just before the next key is due: nothing happens.
    f.clock
        .advance(s.rotation_period - s.publish_ahead - TimeDelta::seconds(1));
    assert_eq!(m.sync().await.unwrap(), SyncReport::default());
    assert_eq!(m.next_event(), Some(f.clock.now() + TimeDelta::seconds(1)));

    // Due: the next key is published but does not sign yet.
    f.clock.advance(TimeDelta::seconds(1));
    let report = m.sync().await.unwrap();
    let (second, activates_at) = report.generated.clone().unwrap();
    assert_eq!(activates_at, f.clock.now() + s.publish_ahead);
    assert_eq!(jwks_kids(m), vec![second.clone(), first.clone()]);
    assert_eq!(signing_kid(m, &f.clock), first);
    assert_eq!(m.next_event(), Some(activates_at));
    assert_eq!(
        published_states(m),
        vec![
            (second.clone(), KeyState::Next),
            (first.clone(), KeyState::Active)
        ]
    );

    // At activation the new key signs, even before the next sync; after it, the old one is retired.
    f.clock.set(activates_at);
    assert_eq!(signing_kid(m, &f.clock), second);
    // The states already say so, with the same two keys in the JWKS.
    assert_eq!(
        published_states(m),
        vec![
            (second.clone(), KeyState::Active),
            (first.clone(), KeyState::Retired)
        ]
    );
    let report = m.sync().await.unwrap();
    assert!(report.transitions.contains(&Transition::Activated {
        kid: second.clone(),
        at: activates_at
    }));
    assert!(report.transitions.contains(&Transition::Retired {
        kid: first.clone(),
        at: activates_at
    }));
    assert_eq!(
        jwks_kids(m),
        vec![second.clone(), first.clone()],
        "retired key still published"
    );
    let states: Vec<KeyState> = m.list().iter().map(|k| k.state).collect();
    assert_eq!(states, vec![KeyState::Active, KeyState::Retired]);

    // The retired key leaves once every token it signed has expired.
    assert_eq!(m.next_event(), Some(activates_at + s.retain_retired));
    f.clock.set(activates_at + s.retain_retired);
    let report = m.sync().await.unwrap();
    assert_eq!(
        report.transitions,
        vec![Transition::Removed {
            kid: first,
            at: activates_at + s.retain_retired
        }]
    );
    assert_eq!(jwks_kids(m), vec![second]);

    let rows = f.store.audit_rows_after(0, 100).await.unwrap();
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "keys.generated",
            "keys.generated",
            "keys.advanced",
            "keys.advanced",
            "keys.advanced"
        ]
    );
    assert!(crate::audit::verify(&f.store).await.unwrap().ok());
}

#[tokio::test]
async fn two_replicas_rotating_at_the_same_instant_make_exactly_one_key() {
    let f = fixture().await;
    let a = f.node("a").await;
    let b = f.node("b").await;
    let s = schedule();
    f.clock.advance(s.rotation_period - s.publish_ahead);
    let (ra, rb) = tokio::join!(a.manager.sync(), b.manager.sync());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let generated: Vec<_> = [ra.generated, rb.generated].into_iter().flatten().collect();
    assert_eq!(
        generated.len(),
        1,
        "exactly one node generates the next key"
    );
    assert_eq!(jwks_kids(&a.manager), jwks_kids(&b.manager));
    assert_eq!(jwks_kids(&a.manager).len(), 2);
    assert_eq!(
        a.manager.snapshot().version(),
        b.manager.snapshot().version()
    );
}

#[tokio::test]
async fn missed_rotations_run_at_start_without_skipping_pre_publication() {
    let f = fixture().await;
    let first = {
        let node = f.node("a").await;
        signing_kid(&node.manager, &f.clock)
    };
    // The service was down for 90 days.
    f.clock.advance(TimeDelta::days(90));
    let node = f.node("a").await;
    let report = node.manager.sync().await.unwrap();
    let (next, activates_at) = report.generated.unwrap();
    assert_eq!(activates_at, f.clock.now() + schedule().publish_ahead);
    assert_eq!(
        signing_kid(&node.manager, &f.clock),
        first,
        "old key signs until the new one is published long enough"
    );
    f.clock.set(activates_at);
    node.manager.sync().await.unwrap();
    assert_eq!(signing_kid(&node.manager, &f.clock), next);
}

#[tokio::test]
async fn on_demand_and_emergency_rotation() {
    let f = fixture().await;
    let node = f.node("a").await;
    let m = &node.manager;
    let first = signing_kid(m, &f.clock);

    let (next, activates_at) = m.rotate().await.unwrap();
    assert_eq!(activates_at, f.clock.now() + schedule().publish_ahead);
    assert!(jwks_kids(m).contains(&next));
    assert_eq!(signing_kid(m, &f.clock), first);
    assert!(matches!(
        m.rotate().await,
        Err(KeyManagerError::NextPending { .. })
    ));

    // Another process (the CLI) sees the same state.
    let other = f.node("cli").await;
    assert_eq!(jwks_kids(&other.manager), jwks_kids(m));

    let (fresh, removed) = other.manager.emergency_rotate().await.unwrap();
    assert!(removed.contains(&first) && removed.contains(&next));
    assert_eq!(jwks_kids(&other.manager), vec![fresh.clone()]);
    assert_eq!(signing_kid(&other.manager, &f.clock), fresh);
    // The server picks it up at its next sync.
    m.sync().await.unwrap();
    assert_eq!(jwks_kids(m), vec![fresh]);
    let kinds: Vec<String> = f
        .store
        .audit_rows_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert!(kinds.contains(&"admin.keys_rotate".to_owned()));
    assert!(kinds.contains(&"admin.keys_emergency_rotate".to_owned()));
}

#[tokio::test]
async fn the_scheduler_follows_the_manual_clock() {
    let f = fixture().await;
    let node = f.node("a").await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_scheduler(
        node.manager.clone(),
        f.clock.shared(),
        TimeDelta::seconds(30),
        async move {
            let _ = stopped.await;
        },
    ));
    let s = schedule();
    f.clock.advance(s.rotation_period - s.publish_ahead);
    wait_for(|| jwks_kids(&node.manager).len() == 2).await;
    stop.send(()).unwrap();
    task.await.unwrap();
}

async fn wait_for(mut condition: impl FnMut() -> bool) {
    for _ in 0..200 {
        if condition() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("condition not reached");
}

#[tokio::test]
async fn the_pepper_is_created_once_and_shared() {
    let f = fixture().await;
    let a = load_or_create_pepper(&*f.key_store("a")).await.unwrap();
    let b = load_or_create_pepper(&*f.key_store("b")).await.unwrap();
    assert_eq!(a.expose(), b.expose());
    // Sealed at rest: the row does not contain the pepper bytes.
    let local = LocalKeyStore::new(
        f.store.clone(),
        f.master.clone(),
        f.clock.shared(),
        "a".into(),
    );
    let (_, document, _) = local.documents().raw("pepper").await.unwrap().unwrap();
    assert!(!document.contains(&hex::encode(a.expose())));
    // Another master key cannot open it.
    let wrong = LocalKeyStore::new(
        f.store.clone(),
        Arc::new(MasterKey::from_bytes(&[4; 32]).unwrap()),
        f.clock.shared(),
        "x".into(),
    );
    assert!(load_or_create_pepper(&wrong).await.is_err());
}

#[test]
fn import_pem_refuses_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    std::fs::write(&path, "not a key").unwrap();
    assert!(load_import_pem(&path, false).is_err());
    assert!(load_import_pem(&dir.path().join("missing.pem"), true).is_err());
    let key = gha_auth::keys::SigningKey::generate(Algorithm::EdDSA).unwrap();
    std::fs::write(&path, key.to_pkcs8_pem().expose()).unwrap();
    assert_eq!(load_import_pem(&path, false).unwrap().kid(), key.kid());
}

#[test]
fn dev_keys_are_refused_outside_dev_mode() {
    let dev_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../keys-dev");
    for file in ["es256-dev.pem", "eddsa-dev.pem", "rs256-dev.pem"] {
        let dev_pem = dev_dir.join(file);
        let pem = std::fs::read_to_string(&dev_pem).unwrap();
        let key = gha_auth::keys::SigningKey::from_pkcs8_pem(&pem).unwrap();
        assert!(
            gha_auth::keys::is_dev_key(key.kid()),
            "{file} is a known dev key"
        );
        let err = load_import_pem(&dev_pem, false).unwrap_err();
        assert!(err.contains("development key"), "{file}: {err}");
        assert!(
            load_import_pem(&dev_pem, true).is_ok(),
            "{file} accepted in dev mode"
        );
    }
}

#[test]
fn schedule_from_the_default_config_is_valid() {
    let s = schedule_from(&KeysConfig::default(), crate::settings::Duration::hours(1)).unwrap();
    assert_eq!(
        s.retain_retired,
        TimeDelta::hours(1) + TimeDelta::seconds(60) + TimeDelta::minutes(15)
    );
    assert_eq!(s.cache_control_max_age(), 900);
}

/// Whoever made the first key, key generation follows the configuration: a server configured
/// for another algorithm publishes a key of that algorithm at its first sync, which takes over
/// after `publish_ahead` like any rotation.
#[tokio::test]
async fn the_configured_algorithm_takes_over_from_a_key_made_with_another() {
    let f = fixture().await;
    let first = f.node_with("cli", Algorithm::ES256).await;
    let first_kid = signing_kid(&first.manager, &f.clock);
    let server = f.node_with("server", Algorithm::EdDSA).await;
    let report = server.manager.sync().await.unwrap();
    let (next_kid, activates_at) = report.generated.expect("a key of the configured algorithm");
    assert_eq!(activates_at, f.clock.now() + schedule().publish_ahead);
    assert_eq!(
        jwks_kids(&server.manager),
        vec![next_kid.clone(), first_kid.clone()]
    );
    assert_eq!(signing_kid(&server.manager, &f.clock), first_kid);
    f.clock.advance(schedule().publish_ahead);
    server.manager.sync().await.unwrap();
    let signing = server
        .manager
        .snapshot()
        .signing_key(f.clock.now())
        .unwrap()
        .clone();
    assert_eq!(signing.kid(), next_kid);
    assert_eq!(signing.algorithm(), Algorithm::EdDSA);
    // Settled: no further key while the configured algorithm signs.
    assert_eq!(server.manager.sync().await.unwrap().generated, None);
}
