//! The append-only, hash-chained audit log.
//!
//! Each row's `hash` is SHA-256 over the previous row's hash (lower-case hex, 64 zeros for the
//! first row) followed by the canonical row: the JSON array
//! `[seq, at, kind, actor, subject, outcome, detail]` with `detail` as stored (a JSON object in a
//! string). `seq` runs 1, 2, 3, … without gaps. [`verify`] recomputes the chain and reports
//! changed, removed and reordered rows. Every event is also emitted as a structured `tracing`
//! line (target `gha_auth::audit`) carrying its hash, so shipped logs anchor the chain.
//!
//! Events never contain secrets: callers pass identifiers and reasons only, and untrusted text
//! (a client id from a request) is cleaned and truncated by [`clean`].

pub(crate) mod aggregate;
mod cli;
pub(crate) mod store;
pub(crate) mod verify;

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gha_auth::SharedClock;
use ring::digest;
use serde_json::{Map, Value};
use thiserror::Error;
use tokio::sync::Mutex;

use crate::store::{Store, StoreError};

pub(crate) use cli::{AuditCommand, print_report, run as run_cli};
pub(crate) use store::AuditRow;
pub(crate) use verify::{VerifyReport, verify};

/// Hash that precedes the first row.
pub(crate) const GENESIS_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditKind {
    /// A client failed to authenticate at the token endpoint.
    ClientAuthFailed,
    /// A `private_key_jwt` assertion was presented twice.
    AssertionReplayed,
    /// An administrator registered a client.
    ClientCreated,
    /// An administrator rotated a client secret.
    ClientSecretRotated,
    /// An administrator disabled a client.
    ClientDisabled,
    /// A signing key was generated (first start or scheduled rotation).
    KeyGenerated,
    /// The key set advanced: a key became active, retired or was removed.
    KeySetAdvanced,
    /// An administrator asked for a rotation.
    KeyRotationRequested,
    /// An emergency rotation: the active key was revoked at once.
    KeyEmergencyRotation,
    /// The server started.
    ServerStarted,
    /// A user login failed (wrong password, unknown or disabled user, backing off).
    UserAuthFailed,
    /// Failed logins made a user or a source back off.
    UserLoginBackoff,
    /// A refresh token was reused outside the grace window; its family was revoked.
    RefreshReuseDetected,
    /// A client revoked a token (RFC 7009).
    TokenRevoked,
    /// An administrator created a user.
    UserCreated,
    /// An administrator set a user's password.
    UserPasswordSet,
    /// An administrator disabled a user.
    UserDisabled,
    /// A link-key rotation started (scheduled, requested or initial).
    LinkKeyRotationStarted,
    /// A link-key rotation step failed; CURRENT is unchanged and the step is retried.
    LinkKeyStepFailed,
    /// A link-key rotation completed: a new CURRENT key.
    LinkKeyRotated,
    /// A PREVIOUS link key was retired.
    LinkKeyRetired,
    /// An administrator asked for a link-key rotation.
    LinkKeyRotationRequested,
    /// An administrator retired the PREVIOUS link key at once.
    LinkKeyRetireRequested,
    /// A link-key endpoint refused a caller (no or bad credentials, unknown name, wrong tenant).
    LinkKeyAccessDenied,
    /// A browser session began (`/session/login`).
    SessionStarted,
    /// A browser session ended (`/session/logout`): its family is revoked.
    SessionEnded,
    /// A session request was refused by the CSRF defence (origin or header missing or wrong).
    SessionRefused,
    /// A subject or client got a revocation not-before time (published in the revocation feed).
    RevocationAdded,
    /// An administrator imported a legacy static API key for token exchange.
    LegacyKeyImported,
    /// An administrator revoked a legacy static API key.
    LegacyKeyRevoked,
    /// A token exchange (RFC 8693) issued a token, or was refused.
    TokenExchanged,
    /// The secrets broker refused a caller a secret path or database role (one per request).
    BrokerDenied,
    /// Allowed broker reads of one client and path, aggregated over an interval (with a count).
    BrokerRead,
    /// An administrator wrote a secret of the broker's local store.
    BrokerSecretWritten,
    /// An administrator set a user's roles.
    UserRolesSet,
    /// A call to the admin API (`/admin/v1`), allowed or refused, with its actor and action.
    AdminCall,
}

impl AuditKind {
    /// The stable name stored in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::ClientAuthFailed => "client.auth_failed",
            AuditKind::AssertionReplayed => "client.assertion_replayed",
            AuditKind::ClientCreated => "admin.client_created",
            AuditKind::ClientSecretRotated => "admin.client_secret_rotated",
            AuditKind::ClientDisabled => "admin.client_disabled",
            AuditKind::KeyGenerated => "keys.generated",
            AuditKind::KeySetAdvanced => "keys.advanced",
            AuditKind::KeyRotationRequested => "admin.keys_rotate",
            AuditKind::KeyEmergencyRotation => "admin.keys_emergency_rotate",
            AuditKind::ServerStarted => "server.started",
            AuditKind::UserAuthFailed => "user.auth_failed",
            AuditKind::UserLoginBackoff => "user.login_backoff",
            AuditKind::RefreshReuseDetected => "refresh.reuse_detected",
            AuditKind::TokenRevoked => "token.revoked",
            AuditKind::UserCreated => "admin.user_created",
            AuditKind::UserPasswordSet => "admin.user_password_set",
            AuditKind::UserDisabled => "admin.user_disabled",
            AuditKind::LinkKeyRotationStarted => "link_keys.rotation_started",
            AuditKind::LinkKeyStepFailed => "link_keys.step_failed",
            AuditKind::LinkKeyRotated => "link_keys.rotated",
            AuditKind::LinkKeyRetired => "link_keys.retired",
            AuditKind::LinkKeyRotationRequested => "admin.link_keys_rotate",
            AuditKind::LinkKeyRetireRequested => "admin.link_keys_retire_previous",
            AuditKind::LinkKeyAccessDenied => "link_keys.access_denied",
            AuditKind::SessionStarted => "session.started",
            AuditKind::SessionEnded => "session.ended",
            AuditKind::SessionRefused => "session.refused",
            AuditKind::RevocationAdded => "revocation.added",
            AuditKind::LegacyKeyImported => "admin.legacy_key_imported",
            AuditKind::LegacyKeyRevoked => "admin.legacy_key_revoked",
            AuditKind::TokenExchanged => "token.exchanged",
            AuditKind::BrokerDenied => "broker.denied",
            AuditKind::BrokerRead => "broker.read",
            AuditKind::BrokerSecretWritten => "admin.broker_secret_put",
            AuditKind::UserRolesSet => "admin.user_roles_set",
            AuditKind::AdminCall => "admin.api_call",
        }
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the audited action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// It did.
    Success,
    /// It was refused or failed.
    Failure,
}

impl Outcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// An event to append. Build it with [`AuditEvent::new`] and [`AuditEvent::detail`].
#[derive(Debug, Clone)]
pub struct AuditEvent {
    kind: AuditKind,
    actor: String,
    subject: String,
    outcome: Outcome,
    detail: Map<String, Value>,
}

impl AuditEvent {
    /// An event of `kind` by `actor` on `subject`. Both strings are cleaned with [`clean`].
    pub fn new(kind: AuditKind, actor: &str, subject: &str, outcome: Outcome) -> Self {
        Self {
            kind,
            actor: clean(actor),
            subject: clean(subject),
            outcome,
            detail: Map::new(),
        }
    }

    /// Adds a detail. Never pass a secret.
    #[must_use]
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        let value = match value.into() {
            Value::String(s) => Value::String(clean(&s)),
            other => other,
        };
        self.detail.insert(key.to_owned(), value);
        self
    }

    /// What happened.
    pub fn kind(&self) -> AuditKind {
        self.kind
    }
}

/// Untrusted text made safe for the log: control characters replaced, at most 128 characters.
pub(crate) fn clean(text: &str) -> String {
    text.chars()
        .take(128)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Appending to the audit log failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Other writers kept taking the next position.
    #[error("audit log is contended; gave up after {0} attempts")]
    Contended(u32),
}

const MAX_ATTEMPTS: u32 = 50;

/// Events kept in memory at most while the store is unreachable (a few hundred bytes each).
pub(crate) const MAX_PENDING: usize = 100_000;

impl AuditError {
    /// Whether the store could not be reached (the event can be written later).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AuditError::Store(e) if e.is_unavailable())
    }
}

/// An event that could not be written yet, with the time it happened.
#[derive(Debug)]
struct Pending {
    event: AuditEvent,
    at: i64,
}

/// Appends events to the chain. One per process; safe to share.
///
/// While the store is unreachable, events of request paths ([`AuditLog::record_or_log`]) are
/// kept in memory (at most [`MAX_PENDING`]) with the time they happened, and written in order
/// as soon as it is back ([`AuditLog::run_flush`], or the next event): none is lost to a
/// database outage, and no request waits for it.
#[derive(Debug)]
pub struct AuditLog {
    store: Store,
    clock: SharedClock,
    /// Held while appending; holds the events waiting for the store, oldest first.
    write: Mutex<VecDeque<Pending>>,
    /// How many events wait (readable without the lock).
    pending: AtomicUsize,
}

impl AuditLog {
    /// A log writing to `store`, timestamped by `clock`.
    pub fn new(store: Store, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            write: Mutex::new(VecDeque::new()),
            pending: AtomicUsize::new(0),
        }
    }

    /// Appends `event` at the head of the chain (after any event still waiting for the store)
    /// and emits its log line. Several processes may append at once: a writer that loses the
    /// race for the next `seq` re-reads the head.
    pub async fn record(&self, event: AuditEvent) -> Result<AuditRow, AuditError> {
        let at = self.clock.unix_seconds();
        let mut pending = self.write.lock().await;
        self.flush_locked(&mut pending).await?;
        self.append(&event, at).await
    }

    /// Like [`AuditLog::record`], but a failure is logged instead of returned: for request
    /// paths where the audit write must not change the response. While the store is
    /// unreachable the event waits in memory and is written, in order, when it is back.
    pub async fn record_or_log(&self, event: AuditEvent) {
        let at = self.clock.unix_seconds();
        let mut pending = self.write.lock().await;
        if !pending.is_empty() {
            // The store was unreachable a moment ago: keep the order, let the flusher write.
            self.keep(&mut pending, event, at);
            return;
        }
        match self.append(&event, at).await {
            Ok(_) => {}
            Err(e) if e.is_unavailable() => {
                tracing::warn!(kind = %event.kind, error = %e, "store unreachable: audit event kept in memory until it is back");
                self.keep(&mut pending, event, at);
            }
            Err(e) => {
                tracing::error!(kind = %event.kind, error = %e, "could not write audit event")
            }
        }
    }

    /// How many events wait for the store.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Writes the events that wait for the store, oldest first; stops at the first failure
    /// (they stay, in order).
    pub async fn flush(&self) -> Result<(), AuditError> {
        if self.pending() == 0 {
            return Ok(());
        }
        let mut pending = self.write.lock().await;
        self.flush_locked(&mut pending).await
    }

    /// Flushes the waiting events every second until `shutdown`, and once more then.
    pub async fn run_flush(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = &mut shutdown => break,
            }
            let waiting = self.pending();
            match self.flush().await {
                Ok(()) if waiting > 0 => {
                    tracing::info!(
                        written = waiting,
                        "store back: audit events kept in memory written"
                    );
                }
                Ok(()) => {}
                Err(e) => {
                    tracing::debug!(error = %e, waiting, "audit events still wait for the store")
                }
            }
        }
        if let Err(e) = self.flush().await {
            tracing::error!(error = %e, waiting = self.pending(), "audit events kept in memory could not be written before shutdown");
        }
    }

    fn keep(&self, pending: &mut VecDeque<Pending>, event: AuditEvent, at: i64) {
        if pending.len() >= MAX_PENDING {
            tracing::error!(kind = %event.kind, "audit events waiting for the store exceed the bound; event dropped");
            return;
        }
        pending.push_back(Pending { event, at });
        self.pending.store(pending.len(), Ordering::Relaxed);
    }

    async fn flush_locked(&self, pending: &mut VecDeque<Pending>) -> Result<(), AuditError> {
        while let Some(first) = pending.front() {
            self.append(&first.event, first.at).await?;
            pending.pop_front();
            self.pending.store(pending.len(), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Appends one event dated `at`; the caller holds the write lock.
    async fn append(&self, event: &AuditEvent, at: i64) -> Result<AuditRow, AuditError> {
        let detail = Value::Object(event.detail.clone()).to_string();
        for attempt in 1..=MAX_ATTEMPTS {
            let head = self.store.last_audit_row().await?;
            let (seq, prev_hash) = match head {
                Some(row) => (row.seq + 1, row.hash),
                None => (1, GENESIS_HASH.to_owned()),
            };
            let mut row = AuditRow::new(
                seq,
                at,
                event.kind.as_str().to_owned(),
                event.actor.clone(),
                event.subject.clone(),
                event.outcome.as_str().to_owned(),
                detail.clone(),
                prev_hash,
                String::new(),
            );
            row.hash = row_hash(&row);
            if self.store.try_append_audit_row(&row).await? {
                tracing::info!(
                    target: "gha_auth::audit",
                    seq = row.seq,
                    kind = %row.kind,
                    actor = %row.actor,
                    subject = %row.subject,
                    outcome = %row.outcome,
                    detail = %row.detail,
                    hash = %row.hash,
                    "audit event"
                );
                return Ok(row);
            }
            // Someone else appended first; back off a little and retry.
            tokio::time::sleep(std::time::Duration::from_millis(
                u64::from(attempt.min(10)) * 2,
            ))
            .await;
        }
        Err(AuditError::Contended(MAX_ATTEMPTS))
    }
}

/// The canonical form of a row that its hash covers.
pub(crate) fn canonical_row(row: &AuditRow) -> String {
    Value::Array(vec![
        Value::from(row.seq),
        Value::from(row.at),
        Value::from(row.kind.as_str()),
        Value::from(row.actor.as_str()),
        Value::from(row.subject.as_str()),
        Value::from(row.outcome.as_str()),
        Value::from(row.detail.as_str()),
    ])
    .to_string()
}

/// SHA-256 (hex) over the row's `prev_hash` and its canonical form.
pub(crate) fn row_hash(row: &AuditRow) -> String {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(row.prev_hash.as_bytes());
    context.update(canonical_row(row).as_bytes());
    hex::encode(context.finish().as_ref())
}

#[cfg(test)]
mod tests;
