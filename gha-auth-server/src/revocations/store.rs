//! The `revocations` table and the feed's sequence number (`revocation_seq`).
//!
//! Each change is one transaction: the conditional write, then `seq = seq + 1` only when the
//! write changed a row. The `UPDATE` of the single sequence row serializes concurrent writers
//! on PostgreSQL (row lock) and on SQLite (the write lock), so the sequence never goes back and
//! never skips a change.

use crate::store::{Store, StoreError};

/// How long a subject or client not-before entry is kept: past it, every token issued before it
/// has expired (`tokens.max_lifetime` is at most 24 h) even with the largest leeway (300 s).
pub(crate) const NOT_BEFORE_KEPT_SECS: i64 = 24 * 3600 + 300;

/// What an entry revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum RevocationKind {
    /// One access token, by `jti`.
    Jti,
    /// Tokens of a subject issued before `not_before`.
    Subject,
    /// Tokens of a client issued before `not_before`.
    Client,
}

impl RevocationKind {
    /// The stored `kind`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RevocationKind::Jti => "jti",
            RevocationKind::Subject => "sub",
            RevocationKind::Client => "client",
        }
    }

    fn from_stored(kind: &str) -> Option<Self> {
        match kind {
            "jti" => Some(RevocationKind::Jti),
            "sub" => Some(RevocationKind::Subject),
            "client" => Some(RevocationKind::Client),
            _ => None,
        }
    }
}

/// One live entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct RevocationRow {
    /// What it revokes.
    pub(crate) kind: RevocationKind,
    /// The `jti`, subject or client id.
    pub(crate) value: String,
    /// For subjects and clients: tokens with `iat` before this are revoked.
    pub(crate) not_before: i64,
    /// When the entry can be forgotten (for a `jti`: the token's `exp` plus leeway).
    pub(crate) expires_at: i64,
}

const INSERT_JTI: &str = "INSERT INTO revocations (kind, value, not_before, expires_at, created_at) \
     VALUES ('jti', $1, $2, $3, $2) ON CONFLICT (kind, value) DO NOTHING";

// Raises the not-before (and its expiry) only when the new one is later: an older event arriving
// late never weakens a revocation, and an unchanged row does not bump the sequence.
const UPSERT_NOT_BEFORE: &str = "INSERT INTO revocations (kind, value, not_before, expires_at, created_at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, value) DO UPDATE \
     SET not_before = excluded.not_before, expires_at = excluded.expires_at \
     WHERE excluded.not_before > revocations.not_before";

const BUMP_SEQ: &str = "UPDATE revocation_seq SET seq = seq + 1 WHERE id = 1";

/// Revokes the access token `jti` until `expires_at`; `false` if it already was.
pub(crate) async fn revoke_jti(
    store: &Store,
    jti: &str,
    now: i64,
    expires_at: i64,
) -> Result<bool, StoreError> {
    let mut tx = store.pool().begin().await?;
    let changed = sqlx::query(INSERT_JTI)
        .bind(jti)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        > 0;
    if changed {
        sqlx::query(BUMP_SEQ).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// Revokes every token of `subject` issued before `not_before`; `false` if an equal or later
/// not-before was already in force.
pub(crate) async fn revoke_subject_before(
    store: &Store,
    subject: &str,
    not_before: i64,
    now: i64,
) -> Result<bool, StoreError> {
    upsert_not_before(store, RevocationKind::Subject, subject, not_before, now).await
}

/// Revokes every token issued to `client_id` before `not_before`.
pub(crate) async fn revoke_client_before(
    store: &Store,
    client_id: &str,
    not_before: i64,
    now: i64,
) -> Result<bool, StoreError> {
    upsert_not_before(store, RevocationKind::Client, client_id, not_before, now).await
}

async fn upsert_not_before(
    store: &Store,
    kind: RevocationKind,
    value: &str,
    not_before: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let mut tx = store.pool().begin().await?;
    let changed = sqlx::query(UPSERT_NOT_BEFORE)
        .bind(kind.as_str())
        .bind(value)
        .bind(not_before)
        .bind(not_before.saturating_add(NOT_BEFORE_KEPT_SECS))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        > 0;
    if changed {
        sqlx::query(BUMP_SEQ).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// The feed's current sequence number.
pub(crate) async fn current_seq(store: &Store) -> Result<u64, StoreError> {
    let (seq,): (i64,) = sqlx::query_as("SELECT seq FROM revocation_seq WHERE id = 1")
        .fetch_one(store.pool())
        .await?;
    u64::try_from(seq).map_err(|_| StoreError::Corrupt {
        table: "revocation_seq",
        message: "negative sequence number".into(),
    })
}

/// Entries that still matter at `now`, oldest first.
pub(crate) async fn live_entries(
    store: &Store,
    now: i64,
) -> Result<Vec<RevocationRow>, StoreError> {
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT kind, value, not_before, expires_at FROM revocations WHERE expires_at >= $1 \
         ORDER BY created_at, kind, value",
    )
    .bind(now)
    .fetch_all(store.pool())
    .await?;
    rows.into_iter()
        .map(|(kind, value, not_before, expires_at)| {
            let kind = RevocationKind::from_stored(&kind).ok_or_else(|| StoreError::Corrupt {
                table: "revocations",
                message: format!("unknown kind {kind:?}"),
            })?;
            Ok(RevocationRow {
                kind,
                value,
                not_before,
                expires_at,
            })
        })
        .collect()
}

/// Forgets entries that expired before `now`; returns how many (the sequence moves if any did).
pub(crate) async fn prune_expired(store: &Store, now: i64) -> Result<u64, StoreError> {
    let mut tx = store.pool().begin().await?;
    let removed = sqlx::query("DELETE FROM revocations WHERE expires_at < $1")
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if removed > 0 {
        sqlx::query(BUMP_SEQ).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(removed)
}

/// Whether any of `jtis` is revoked (the tokens a derived token came from).
pub(crate) async fn any_jti_revoked(store: &Store, jtis: &[String]) -> Result<bool, StoreError> {
    if jtis.is_empty() {
        return Ok(false);
    }
    let placeholders: Vec<String> = (1..=jtis.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT COUNT(*) FROM revocations WHERE kind = 'jti' AND value IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as::<_, (i64,)>(&sql);
    for jti in jtis {
        query = query.bind(jti);
    }
    let (count,) = query.fetch_one(store.pool()).await?;
    Ok(count > 0)
}

/// Whether a token is revoked: its `jti` is, or its subject or client has a not-before time after
/// the token was issued (`iat`).
pub(crate) async fn is_revoked(
    store: &Store,
    jti: &str,
    sub: &str,
    client_id: &str,
    iat: i64,
) -> Result<bool, StoreError> {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM revocations WHERE (kind = 'jti' AND value = $1) \
         OR (kind = 'sub' AND value = $2 AND not_before > $4) \
         OR (kind = 'client' AND value = $3 AND not_before > $4)",
    )
    .bind(jti)
    .bind(sub)
    .bind(client_id)
    .bind(iat)
    .fetch_one(store.pool())
    .await?;
    Ok(count > 0)
}
