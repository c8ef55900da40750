//! What the authority has revoked, and the signed feed of it (`GET /v1/revocations`) that
//! offline verifiers poll (document format in [`gha_auth::revocation`]).
//!
//! Entries live in the `revocations` table:
//! - `jti`: an access token revoked through RFC 7009, kept until its `exp` (plus leeway);
//! - `sub`: a not-before time for a subject (user disabled, password changed, refresh-token
//!   reuse);
//! - `client`: a not-before time for a client (disabled, secret rotated in an emergency).
//!
//! Every change bumps the shared sequence number in the same transaction, so every replica
//! serves the same `ETag: "<seq>"` for the same content, and a poller's `If-None-Match` gets a
//! 304 from any of them until something changes. Expired entries are pruned by the maintenance
//! task (which bumps the sequence too).

pub(crate) mod config;
mod feed;
pub(crate) mod store;

pub(crate) use feed::{FEED_PATH, Feed, router};
pub(crate) use store::{
    any_jti_revoked, is_revoked, prune_expired, revoke_client_before, revoke_jti,
    revoke_subject_before,
};

use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome};
use crate::store::{Store, StoreError};
pub(crate) use config::RevocationsConfig;

/// Records a not-before time for `subject` (tokens it holds with `iat < not_before` are revoked
/// everywhere once verifiers poll) and audits it. `not_before` is `now + 1`: a token issued in the
/// same second as the event is treated as issued before it.
pub(crate) async fn revoke_subject(
    store: &Store,
    audit: &AuditLog,
    now: i64,
    subject: &str,
    actor: &str,
    reason: &'static str,
) -> Result<(), StoreError> {
    let not_before = now.saturating_add(1);
    revoke_subject_before(store, subject, not_before, now).await?;
    audit_not_before(audit, actor, "subject", subject, not_before, reason).await;
    Ok(())
}

/// As [`revoke_subject`], for every token issued to a client.
pub(crate) async fn revoke_client(
    store: &Store,
    audit: &AuditLog,
    now: i64,
    client_id: &str,
    actor: &str,
    reason: &'static str,
) -> Result<(), StoreError> {
    let not_before = now.saturating_add(1);
    revoke_client_before(store, client_id, not_before, now).await?;
    audit_not_before(audit, actor, "client", client_id, not_before, reason).await;
    Ok(())
}

async fn audit_not_before(
    audit: &AuditLog,
    actor: &str,
    kind: &'static str,
    target: &str,
    not_before: i64,
    reason: &'static str,
) {
    audit
        .record_or_log(
            AuditEvent::new(AuditKind::RevocationAdded, actor, target, Outcome::Success)
                .detail("kind", kind)
                .detail("not_before", not_before)
                .detail("reason", reason),
        )
        .await;
}

#[cfg(test)]
mod tests;
