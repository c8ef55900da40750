//! The key manager: loads the ring from the [`KeyStore`], moves it along the schedule, and holds
//! the snapshot that the token endpoint signs with and the JWKS endpoint serves.
//!
//! Every change is read–modify–write with compare-and-set on the document version: when two
//! replicas (or the server and `gha-auth keys rotate`) change the ring at once, one save wins and
//! the other reloads and finds nothing left to do. So exactly one key is made per rotation.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use gha_auth::SharedClock;
use gha_auth::keys::{
    Algorithm, Jwk, KeyError, KeyRing, KeySchedule, KeyState, SigningKey, Transition, is_dev_key,
};
use ring::digest;
use serde::Serialize;
use thiserror::Error;
use tokio::sync::Mutex;

use super::store::{CasOutcome, KeyDocument, KeyStore, KeyStoreError};
use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome};
use crate::store::{Change, KEYS_CHANNEL, MAX_ATTEMPTS, Store, Versioned, read_modify_write};

/// A key-management operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyManagerError {
    /// The key store failed.
    #[error(transparent)]
    Store(#[from] KeyStoreError),
    /// A key operation failed (generation, lifecycle rule, stored ring unreadable).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The ring holds a published development key and dev mode is off.
    #[error(
        "signing key {kid} is one of the published development keys in keys-dev/; refusing it \
         outside dev mode (set dev_mode = true only on a development machine)"
    )]
    DevKeyRefused {
        /// The key id.
        kid: String,
    },
    /// Other writers kept changing the ring.
    #[error("key ring is contended; gave up after {0} attempts")]
    Contended(u32),
    /// No key ring has been created yet.
    #[error("no signing keys yet: start the server once (or run `gha-auth keys rotate`)")]
    NotInitialized,
    /// A next key is already published and waiting to sign.
    #[error("a next key ({kid}) is already published and activates at {activates_at}")]
    NextPending {
        /// Its key id.
        kid: String,
        /// When it starts signing.
        activates_at: DateTime<Utc>,
    },
}

/// How keys are managed: the schedule and the choices around it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeySettings {
    /// The validated schedule.
    pub schedule: KeySchedule,
    /// Algorithm of generated keys.
    pub algorithm: Algorithm,
    /// Whether development keys are allowed.
    pub dev_mode: bool,
    /// A key to start with when the store has none (from `keys.import_pem`).
    pub initial_key: Option<SigningKey>,
}

impl KeySettings {
    /// Settings for `schedule`, generating `algorithm` keys.
    pub fn new(schedule: KeySchedule, algorithm: Algorithm) -> Self {
        Self {
            schedule,
            algorithm,
            dev_mode: false,
            initial_key: None,
        }
    }

    /// Allows development keys.
    #[must_use]
    pub fn dev_mode(mut self, on: bool) -> Self {
        self.dev_mode = on;
        self
    }

    /// Starts a new ring with `key` instead of a generated one.
    #[must_use]
    pub fn initial_key(mut self, key: Option<SigningKey>) -> Self {
        self.initial_key = key;
        self
    }
}

/// The ring as last loaded, with its JWKS rendered once.
pub struct KeySnapshot {
    version: u64,
    ring: KeyRing,
    jwks: Arc<[u8]>,
    etag: String,
    loaded_at: DateTime<Utc>,
}

impl fmt::Debug for KeySnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.ring.keys().iter().map(|k| k.kid()).collect();
        f.debug_struct("KeySnapshot")
            .field("version", &self.version)
            .field("kids", &kids)
            .field("etag", &self.etag)
            .finish_non_exhaustive()
    }
}

impl KeySnapshot {
    fn new(version: u64, ring: KeyRing, now: DateTime<Utc>) -> Result<Self, KeyError> {
        let jwks = ring.jwks(now).to_json()?;
        let digest = digest::digest(&digest::SHA256, &jwks);
        let etag = format!("\"{}\"", hex::encode(&digest.as_ref()[..16]));
        Ok(Self {
            version,
            ring,
            jwks: jwks.into(),
            etag,
            loaded_at: now,
        })
    }

    /// The key that signs at `now`.
    pub fn signing_key(&self, now: DateTime<Utc>) -> Option<&SigningKey> {
        self.ring.active(now)
    }

    /// The ring.
    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// The stored version this snapshot was read at.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The JWKS document to serve.
    pub fn jwks_json(&self) -> Arc<[u8]> {
        self.jwks.clone()
    }

    /// The strong ETag of [`KeySnapshot::jwks_json`].
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// When it was loaded.
    pub fn loaded_at(&self) -> DateTime<Utc> {
        self.loaded_at
    }
}

/// One key as `gha-auth keys list` shows it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct KeyInfo {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: &'static str,
    /// `next`, `active` or `retired` (as of now).
    pub state: KeyState,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it signs (or signed) first.
    pub activates_at: DateTime<Utc>,
    /// When it stopped signing.
    pub retires_at: Option<DateTime<Utc>>,
    /// When it leaves the JWKS.
    pub remove_at: Option<DateTime<Utc>>,
}

/// What one [`KeyManager::sync`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncReport {
    /// Lifecycle transitions saved by this node.
    pub transitions: Vec<Transition>,
    /// A key generated by this node, with its activation time.
    pub generated: Option<(String, DateTime<Utc>)>,
}

/// Loads, advances, rotates and publishes the signing keys.
pub struct KeyManager {
    store: Arc<dyn KeyStore>,
    settings: KeySettings,
    clock: SharedClock,
    audit: Arc<AuditLog>,
    actor: String,
    current: RwLock<Arc<KeySnapshot>>,
    write: Mutex<()>,
    health: RwLock<SyncHealth>,
    /// Where saved changes are announced to the other replicas (PostgreSQL `NOTIFY`).
    notices: Option<Store>,
}

/// How the last [`KeyManager::sync`] calls went, for `/HealthCheck`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncHealth {
    /// When a sync last succeeded.
    pub last_success: Option<DateTime<Utc>>,
    /// The error of the last sync, if it failed.
    pub last_error: Option<String>,
}

impl fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyManager")
            .field("store", &self.store)
            .field("settings", &self.settings)
            .field("snapshot", &self.snapshot())
            .finish_non_exhaustive()
    }
}

impl KeyManager {
    /// Loads the ring, creating the first key if the store has none (a generated key, or
    /// `settings.initial_key`). Does not advance it: call [`KeyManager::sync`] for that.
    pub async fn open(
        store: Arc<dyn KeyStore>,
        settings: KeySettings,
        clock: SharedClock,
        audit: Arc<AuditLog>,
        actor: &str,
    ) -> Result<Self, KeyManagerError> {
        let (version, ring) = match load(&*store).await? {
            Some(loaded) => loaded,
            None => init(&*store, &settings, &clock, &audit, actor).await?,
        };
        Self::with_ring(store, settings, clock, audit, actor, version, ring)
    }

    /// The manager of the stored ring, or `None` when no key was ever made.
    pub async fn load(
        store: Arc<dyn KeyStore>,
        settings: KeySettings,
        clock: SharedClock,
        audit: Arc<AuditLog>,
        actor: &str,
    ) -> Result<Option<Self>, KeyManagerError> {
        let Some((version, ring)) = load(&*store).await? else {
            return Ok(None);
        };
        Self::with_ring(store, settings, clock, audit, actor, version, ring).map(Some)
    }

    fn with_ring(
        store: Arc<dyn KeyStore>,
        settings: KeySettings,
        clock: SharedClock,
        audit: Arc<AuditLog>,
        actor: &str,
        version: u64,
        ring: KeyRing,
    ) -> Result<Self, KeyManagerError> {
        check_dev_keys(&ring, settings.dev_mode)?;
        let snapshot = KeySnapshot::new(version, ring, clock.now())?;
        Ok(Self {
            store,
            settings,
            clock,
            audit,
            actor: actor.to_owned(),
            current: RwLock::new(Arc::new(snapshot)),
            write: Mutex::new(()),
            health: RwLock::new(SyncHealth::default()),
            notices: None,
        })
    }

    /// Announces every saved change of the ring on `store` (a `NOTIFY` on PostgreSQL), so
    /// replicas following [`follow_changes`] re-read it at once.
    #[must_use]
    pub fn with_change_notices(mut self, store: Store) -> Self {
        self.notices = Some(store);
        self
    }

    /// The current snapshot: what signs and what is published.
    pub fn snapshot(&self) -> Arc<KeySnapshot> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The schedule in force.
    pub fn schedule(&self) -> &KeySchedule {
        &self.settings.schedule
    }

    /// Re-reads the ring and brings it up to now: activates a due next key, retires and removes
    /// old keys, and publishes a new next key when the active one's rotation is within
    /// `publish_ahead` (also when rotations were missed while the service was down). Saves with
    /// compare-and-set; a node that loses reloads and finds the work done.
    pub async fn sync(&self) -> Result<SyncReport, KeyManagerError> {
        let result = self.sync_inner().await;
        let mut health = self.health.write().unwrap_or_else(PoisonError::into_inner);
        match &result {
            Ok(_) => {
                health.last_success = Some(self.clock.now());
                health.last_error = None;
            }
            Err(e) => health.last_error = Some(e.to_string()),
        }
        result
    }

    /// How recent syncs went.
    pub fn sync_health(&self) -> SyncHealth {
        self.health
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn sync_inner(&self) -> Result<SyncReport, KeyManagerError> {
        let _guard = self.write.lock().await;
        let schedule = &self.settings.schedule;
        let written = self
            .change_ring(|ring| {
                let now = self.clock.now();
                let transitions = ring.advance(now, schedule);
                let mut generated = None;
                if ring.needs_new_next(now, schedule) {
                    let key = SigningKey::generate(self.settings.algorithm)?;
                    let kid = key.kid().to_owned();
                    let activates_at = ring.add_next(key, now, schedule)?;
                    generated = Some((kid, activates_at));
                } else if signs_another_algorithm(ring, now, self.settings.algorithm) {
                    // The configuration names another algorithm than the one signing (the
                    // first key came from elsewhere, or the setting changed): move to it by an
                    // ordinary rotation, published ahead like any other.
                    let key = SigningKey::generate(self.settings.algorithm)?;
                    let kid = key.kid().to_owned();
                    let activates_at = now + schedule.publish_ahead;
                    ring.add_next_at(key, now, activates_at, schedule)?;
                    generated = Some((kid, activates_at));
                }
                let report = SyncReport {
                    transitions,
                    generated,
                };
                Ok(
                    if report.transitions.is_empty() && report.generated.is_none() {
                        Change::Keep(report)
                    } else {
                        Change::Save(report)
                    },
                )
            })
            .await?;
        let (report, saved) = written;
        if saved {
            self.audit_sync(&report).await;
        }
        Ok(report)
    }

    /// On-demand rotation: publishes a new next key that starts signing `publish_ahead` from
    /// now, so cached key sets have it in time. Refused while a next key is pending.
    pub async fn rotate(&self) -> Result<(String, DateTime<Utc>), KeyManagerError> {
        let _guard = self.write.lock().await;
        let schedule = &self.settings.schedule;
        let written = self
            .change_ring(|ring| {
                let now = self.clock.now();
                let transitions = ring.advance(now, schedule);
                if let Some(pending) = ring.keys().iter().find(|k| k.state == KeyState::Next) {
                    return Err(KeyManagerError::NextPending {
                        kid: pending.kid().to_owned(),
                        activates_at: pending.activates_at,
                    });
                }
                let key = SigningKey::generate(self.settings.algorithm)?;
                let kid = key.kid().to_owned();
                let activates_at = now + schedule.publish_ahead;
                ring.add_next_at(key, now, activates_at, schedule)?;
                Ok(Change::Save((transitions, kid, activates_at)))
            })
            .await?;
        let ((transitions, kid, activates_at), _) = written;
        self.audit_sync(&SyncReport {
            transitions,
            generated: None,
        })
        .await;
        count_rotation("on_demand");
        self.audit
            .record_or_log(
                AuditEvent::new(
                    AuditKind::KeyRotationRequested,
                    &self.actor,
                    &kid,
                    Outcome::Success,
                )
                .detail("alg", self.settings.algorithm.name())
                .detail("activates_at", activates_at.to_rfc3339()),
            )
            .await;
        Ok((kid, activates_at))
    }

    /// Emergency rotation for a leaked key: every key is dropped from the ring and the JWKS at
    /// once and a new key signs immediately. Tokens signed by the old keys stop verifying as soon
    /// as verifiers refetch the JWKS. Returns the new key id and the removed ones.
    pub async fn emergency_rotate(&self) -> Result<(String, Vec<String>), KeyManagerError> {
        let _guard = self.write.lock().await;
        let written = self
            .change_ring(|ring| {
                let key = SigningKey::generate(self.settings.algorithm)?;
                let kid = key.kid().to_owned();
                let removed: Vec<String> = ring
                    .emergency_rotate(key, self.clock.now())
                    .into_iter()
                    .filter_map(|t| match t {
                        Transition::Removed { kid, .. } => Some(kid),
                        _ => None,
                    })
                    .collect();
                Ok(Change::Save((kid, removed)))
            })
            .await?;
        let ((kid, removed), _) = written;
        count_rotation("emergency");
        self.audit
            .record_or_log(
                AuditEvent::new(
                    AuditKind::KeyEmergencyRotation,
                    &self.actor,
                    &kid,
                    Outcome::Success,
                )
                .detail("removed", removed.join(" ")),
            )
            .await;
        Ok((kid, removed))
    }

    /// Applies `change` to the stored ring with compare-and-set (reloading on a conflict) and
    /// publishes the ring that results, saved or not.
    async fn change_ring<T: Send>(
        &self,
        change: impl FnMut(&mut KeyRing) -> Result<Change<T>, KeyManagerError> + Send,
    ) -> Result<(T, bool), KeyManagerError> {
        let written = read_modify_write(&StoredRing(&*self.store), change, || {
            KeyManagerError::Contended(MAX_ATTEMPTS)
        })
        .await?;
        self.publish(written.version.unwrap_or(0), written.document)?;
        if written.saved
            && let Some(store) = &self.notices
        {
            store.notify(KEYS_CHANNEL).await;
        }
        Ok((written.value, written.saved))
    }

    /// The keys of the current snapshot, newest first, with their states as of now.
    pub fn list(&self) -> Vec<KeyInfo> {
        self.published().into_iter().map(|(info, _)| info).collect()
    }

    /// The published keys as of now, newest first: what [`KeyManager::list`] shows, each with
    /// its public JWK (the same keys as the JWKS, with their states).
    pub fn published(&self) -> Vec<(KeyInfo, Jwk)> {
        let snapshot = self.snapshot();
        let now = self.clock.now();
        let mut ring = snapshot.ring.clone();
        ring.advance(now, &self.settings.schedule);
        let mut keys: Vec<(KeyInfo, Jwk)> = ring
            .keys()
            .iter()
            .map(|k| {
                let info = KeyInfo {
                    kid: k.kid().to_owned(),
                    alg: k.key.algorithm().name(),
                    state: k.state,
                    created_at: k.created_at,
                    activates_at: k.activates_at,
                    retires_at: k.retires_at,
                    remove_at: k.remove_at,
                };
                (info, k.key.public_jwk().clone())
            })
            .collect();
        keys.sort_by_key(|(k, _)| std::cmp::Reverse(k.activates_at));
        keys
    }

    /// The next moment the ring changes on its own: a next key activating, a retired key
    /// leaving, or a new next key being due. A moment at or before now means a sync is due
    /// (the clock moved on since the last one).
    pub fn next_event(&self) -> Option<DateTime<Utc>> {
        let snapshot = self.snapshot();
        let now = self.clock.now();
        let schedule = &self.settings.schedule;
        let ring = &snapshot.ring;
        let mut events: Vec<DateTime<Utc>> = Vec::new();
        for key in ring.keys() {
            match key.state {
                KeyState::Next => events.push(key.activates_at),
                KeyState::Retired => events.extend(key.remove_at),
                KeyState::Active => {}
            }
        }
        let has_pending_next = ring
            .keys()
            .iter()
            .any(|k| k.state == KeyState::Next && k.activates_at > now);
        if !has_pending_next && let Some(due) = ring.next_rotation_at(now, schedule) {
            events.push(due - schedule.publish_ahead);
        }
        // Events at or before now are due: the caller should sync at once.
        events.into_iter().min()
    }

    fn publish(&self, version: u64, ring: KeyRing) -> Result<(), KeyManagerError> {
        check_dev_keys(&ring, self.settings.dev_mode)?;
        let snapshot = KeySnapshot::new(version, ring, self.clock.now())?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
        Ok(())
    }

    async fn audit_sync(&self, report: &SyncReport) {
        if let Some((kid, activates_at)) = &report.generated {
            count_rotation("scheduled");
            self.audit
                .record_or_log(
                    AuditEvent::new(AuditKind::KeyGenerated, &self.actor, kid, Outcome::Success)
                        .detail("alg", self.settings.algorithm.name())
                        .detail("activates_at", activates_at.to_rfc3339()),
                )
                .await;
        }
        for transition in &report.transitions {
            let (what, kid, at) = match transition {
                Transition::Activated { kid, at } => ("activated", kid, at),
                Transition::Retired { kid, at } => ("retired", kid, at),
                Transition::Removed { kid, at } => ("removed", kid, at),
                _ => continue,
            };
            count_transition(what);
            self.audit
                .record_or_log(
                    AuditEvent::new(
                        AuditKind::KeySetAdvanced,
                        &self.actor,
                        kid,
                        Outcome::Success,
                    )
                    .detail("transition", what)
                    .detail("at", at.to_rfc3339()),
                )
                .await;
        }
    }
}

/// Whether the key signing now uses another algorithm than `configured`, with no next key
/// pending to replace it.
fn signs_another_algorithm(ring: &KeyRing, now: DateTime<Utc>, configured: Algorithm) -> bool {
    let pending = ring
        .keys()
        .iter()
        .any(|k| k.state == KeyState::Next && k.activates_at > now);
    !pending
        && ring
            .active(now)
            .is_some_and(|key| key.algorithm() != configured)
}

/// The signing-key ring in its key store, as one versioned document.
struct StoredRing<'a>(&'a dyn KeyStore);

#[async_trait::async_trait]
impl Versioned for StoredRing<'_> {
    type Document = KeyRing;
    type Error = KeyManagerError;

    async fn load(&self) -> Result<(Option<u64>, KeyRing), KeyManagerError> {
        let (version, ring) = load(self.0).await?.ok_or(KeyManagerError::NotInitialized)?;
        Ok((Some(version), ring))
    }

    async fn save(
        &self,
        expected: Option<u64>,
        ring: &KeyRing,
    ) -> Result<CasOutcome, KeyManagerError> {
        Ok(self
            .0
            .save(KeyDocument::SigningKeys, expected, &ring.to_stored()?)
            .await?)
    }
}

async fn load(store: &dyn KeyStore) -> Result<Option<(u64, KeyRing)>, KeyManagerError> {
    match store.load(KeyDocument::SigningKeys).await? {
        Some(doc) => Ok(Some((
            doc.version,
            KeyRing::from_stored(doc.document.expose())?,
        ))),
        None => Ok(None),
    }
}

async fn init(
    store: &dyn KeyStore,
    settings: &KeySettings,
    clock: &SharedClock,
    audit: &AuditLog,
    actor: &str,
) -> Result<(u64, KeyRing), KeyManagerError> {
    let key = match &settings.initial_key {
        Some(key) => key.clone(),
        None => SigningKey::generate(settings.algorithm)?,
    };
    check_dev_key(key.kid(), settings.dev_mode)?;
    let kid = key.kid().to_owned();
    let alg = key.algorithm();
    let now = clock.now();
    let ring = KeyRing::with_initial(key, now);
    match store
        .save(KeyDocument::SigningKeys, None, &ring.to_stored()?)
        .await?
    {
        CasOutcome::Saved(version) => {
            audit
                .record_or_log(
                    AuditEvent::new(AuditKind::KeyGenerated, actor, &kid, Outcome::Success)
                        .detail("alg", alg.name())
                        .detail("initial", true)
                        .detail("imported", settings.initial_key.is_some()),
                )
                .await;
            Ok((version, ring))
        }
        // Another process created the ring first: use theirs.
        _ => load(store).await?.ok_or(KeyManagerError::Contended(1)),
    }
}

fn check_dev_key(kid: &str, dev_mode: bool) -> Result<(), KeyManagerError> {
    if is_dev_key(kid) && !dev_mode {
        return Err(KeyManagerError::DevKeyRefused {
            kid: kid.to_owned(),
        });
    }
    Ok(())
}

fn check_dev_keys(ring: &KeyRing, dev_mode: bool) -> Result<(), KeyManagerError> {
    ring.keys()
        .iter()
        .try_for_each(|k| check_dev_key(k.kid(), dev_mode))
}

/// Series: signing keys this process generated, by `kind` (`scheduled`, `on_demand`,
/// `emergency`).
const ROTATIONS_METRIC: &str = "gha_auth_key_rotations_total";
/// Series: key state transitions this process saved.
const TRANSITIONS_METRIC: &str = "gha_auth_key_transitions_total";

fn count_rotation(kind: &'static str) {
    metrics::counter!(ROTATIONS_METRIC, "kind" => kind).increment(1);
}

fn count_transition(transition: &'static str) {
    metrics::counter!(TRANSITIONS_METRIC, "transition" => transition).increment(1);
}

/// HELP text of this module's series.
pub(super) fn describe_metrics() {
    metrics::describe_counter!(
        ROTATIONS_METRIC,
        "Signing keys generated by this process (scheduled, on demand, emergency)"
    );
    metrics::describe_counter!(
        TRANSITIONS_METRIC,
        "Signing-key state transitions saved by this process"
    );
}

/// Re-reads the ring whenever another process announces a change (PostgreSQL `LISTEN`), until
/// `shutdown`: an emergency rotation reaches this replica within about a second. Returns at once
/// on SQLite (one node). The scheduler's periodic sync stays the fallback.
pub(crate) async fn follow_changes(
    manager: Arc<KeyManager>,
    store: Store,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let Some(notices) = store.notices(KEYS_CHANNEL) else {
        return;
    };
    notices
        .follow(
            || {
                let manager = manager.clone();
                async move {
                    if let Err(e) = manager.sync().await {
                        tracing::warn!(error = %e, "key sync after a change notice failed; the scheduler retries");
                    }
                }
            },
            shutdown,
        )
        .await;
}
