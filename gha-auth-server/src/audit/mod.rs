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

use std::fmt;

use gha_auth::SharedClock;
use ring::digest;
use serde_json::{Map, Value};
use thiserror::Error;
use tokio::sync::Mutex;

use crate::store::{Store, StoreError};

pub(crate) use cli::{AuditCommand, run as run_cli};
pub(crate) use store::AuditRow;
pub(crate) use verify::verify;

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

/// Appends events to the chain. One per process; safe to share.
#[derive(Debug)]
pub struct AuditLog {
    store: Store,
    clock: SharedClock,
    write: Mutex<()>,
}

impl AuditLog {
    /// A log writing to `store`, timestamped by `clock`.
    pub fn new(store: Store, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            write: Mutex::new(()),
        }
    }

    /// Appends `event` at the head of the chain and emits its log line. Several processes may
    /// append at once: a writer that loses the race for the next `seq` re-reads the head.
    pub async fn record(&self, event: AuditEvent) -> Result<AuditRow, AuditError> {
        let _guard = self.write.lock().await;
        let detail = Value::Object(event.detail.clone()).to_string();
        for attempt in 1..=MAX_ATTEMPTS {
            let head = self.store.last_audit_row().await?;
            let (seq, prev_hash) = match head {
                Some(row) => (row.seq + 1, row.hash),
                None => (1, GENESIS_HASH.to_owned()),
            };
            let mut row = AuditRow::new(
                seq,
                self.clock.unix_seconds(),
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

    /// Like [`AuditLog::record`], but a failure is logged instead of returned: for request
    /// paths where the audit write must not change the response.
    pub async fn record_or_log(&self, event: AuditEvent) {
        let kind = event.kind;
        if let Err(e) = self.record(event).await {
            tracing::error!(kind = %kind, error = %e, "could not write audit event");
        }
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
