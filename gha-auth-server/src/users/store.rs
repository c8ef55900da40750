//! Rows of `users` and `login_failures` (portable SQL, see `docs/decisions/0002-store.md`).

use std::fmt;

use crate::store::{Store, StoreError, flag, split_list};

/// A user as stored: the Argon2id PHC string, never a password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct UserRow {
    /// Stable id.
    pub(crate) id: String,
    /// Tenant (empty for none).
    pub(crate) tenant: String,
    /// Login name.
    pub(crate) username: String,
    /// Roles.
    pub(crate) roles: Vec<String>,
    /// Argon2id PHC string.
    pub(crate) password_hash: String,
    /// Disabled flag.
    pub(crate) disabled: bool,
    /// Creation time (Unix seconds).
    pub(crate) created_at: i64,
    /// Last change (Unix seconds).
    pub(crate) updated_at: i64,
}

impl fmt::Debug for UserRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("username", &self.username)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
struct RawUser {
    id: String,
    tenant: String,
    username: String,
    roles: String,
    password_hash: String,
    disabled: i64,
    created_at: i64,
    updated_at: i64,
}

impl From<RawUser> for UserRow {
    fn from(raw: RawUser) -> Self {
        Self {
            id: raw.id,
            tenant: raw.tenant,
            username: raw.username,
            roles: split_list(&raw.roles),
            password_hash: raw.password_hash,
            disabled: flag(raw.disabled),
            created_at: raw.created_at,
            updated_at: raw.updated_at,
        }
    }
}

const COLUMNS: &str =
    "id, tenant, username, roles, password_hash, disabled, created_at, updated_at";

pub(super) async fn insert(store: &Store, row: &UserRow) -> Result<(), StoreError> {
    let result = sqlx::query(
        "INSERT INTO users (id, tenant, username, roles, password_hash, disabled, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $6) ON CONFLICT DO NOTHING",
    )
    .bind(&row.id)
    .bind(&row.tenant)
    .bind(&row.username)
    .bind(row.roles.join(" "))
    .bind(&row.password_hash)
    .bind(row.created_at)
    .execute(store.pool())
    .await?;
    if result.rows_affected() == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "user {:?}",
            format!("{}/{}", row.tenant, row.username)
        )));
    }
    Ok(())
}

pub(super) async fn find(
    store: &Store,
    tenant: &str,
    username: &str,
) -> Result<Option<UserRow>, StoreError> {
    let raw: Option<RawUser> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users WHERE tenant = $1 AND username = $2"
    ))
    .bind(tenant)
    .bind(username)
    .fetch_optional(store.pool())
    .await?;
    Ok(raw.map(UserRow::from))
}

pub(super) async fn list(store: &Store, tenant: Option<&str>) -> Result<Vec<UserRow>, StoreError> {
    let raw: Vec<RawUser> = match tenant {
        Some(tenant) => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM users WHERE tenant = $1 ORDER BY tenant, username"
            ))
            .bind(tenant)
            .fetch_all(store.pool())
            .await?
        }
        None => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM users ORDER BY tenant, username"
            ))
            .fetch_all(store.pool())
            .await?
        }
    };
    Ok(raw.into_iter().map(UserRow::from).collect())
}

pub(super) async fn set_password(
    store: &Store,
    tenant: &str,
    username: &str,
    hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE users SET password_hash = $1, updated_at = $2 WHERE tenant = $3 AND username = $4",
    )
    .bind(hash)
    .bind(now)
    .bind(tenant)
    .bind(username)
    .execute(store.pool())
    .await?;
    Ok(result.rows_affected() > 0)
}

pub(super) async fn set_roles(
    store: &Store,
    id: &str,
    roles: &[String],
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET roles = $1, updated_at = $2 WHERE id = $3")
        .bind(roles.join(" "))
        .bind(now)
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(())
}

pub(super) async fn set_disabled(
    store: &Store,
    id: &str,
    disabled: bool,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(disabled))
        .bind(now)
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Until when `(kind, key)` backs off (Unix seconds; 0 for not).
pub(super) async fn locked_until(store: &Store, kind: &str, key: &str) -> Result<i64, StoreError> {
    let until: Option<(i64,)> =
        sqlx::query_as("SELECT locked_until FROM login_failures WHERE kind = $1 AND subject = $2")
            .bind(kind)
            .bind(key)
            .fetch_optional(store.pool())
            .await?;
    Ok(until.map_or(0, |(t,)| t))
}

/// Counts one failure of `(kind, key)` (forgetting failures older than `window` seconds) and
/// sets the backoff; returns until when it backs off. The increment is one atomic upsert, so
/// concurrent failures on several replicas all count.
pub(super) async fn record_failure(
    store: &Store,
    kind: &str,
    key: &str,
    rule: super::Backoff,
    now: i64,
    window: i64,
) -> Result<i64, StoreError> {
    sqlx::query(
        "INSERT INTO login_failures (kind, subject, failures, locked_until, updated_at) \
         VALUES ($1, $2, 1, 0, $3) ON CONFLICT (kind, subject) DO UPDATE SET \
         failures = CASE WHEN login_failures.updated_at < $4 THEN 1 \
                         ELSE login_failures.failures + 1 END, \
         updated_at = $3",
    )
    .bind(kind)
    .bind(key)
    .bind(now)
    .bind(now.saturating_sub(window))
    .execute(store.pool())
    .await?;
    let (failures,): (i64,) =
        sqlx::query_as("SELECT failures FROM login_failures WHERE kind = $1 AND subject = $2")
            .bind(kind)
            .bind(key)
            .fetch_one(store.pool())
            .await?;
    let until = rule.until(failures, now);
    if until > 0 {
        sqlx::query(
            "UPDATE login_failures SET locked_until = $1 \
             WHERE kind = $2 AND subject = $3 AND locked_until < $1",
        )
        .bind(until)
        .bind(kind)
        .bind(key)
        .execute(store.pool())
        .await?;
    }
    Ok(until)
}

/// Sets `(kind, key)`'s `locked_until` to `until` (a marker that lives until then, e.g. a
/// known source).
pub(super) async fn remember(
    store: &Store,
    kind: &str,
    key: &str,
    until: i64,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO login_failures (kind, subject, failures, locked_until, updated_at) \
         VALUES ($1, $2, 0, $3, $4) ON CONFLICT (kind, subject) DO UPDATE SET \
         locked_until = $3, updated_at = $4",
    )
    .bind(kind)
    .bind(key)
    .bind(until)
    .bind(now)
    .execute(store.pool())
    .await?;
    Ok(())
}

pub(super) async fn clear_failures(store: &Store, kind: &str, key: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM login_failures WHERE kind = $1 AND subject = $2")
        .bind(kind)
        .bind(key)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Forgets failures last seen before `before` whose backoff ended before `now` (housekeeping).
pub(crate) async fn purge_failures(
    store: &Store,
    before: i64,
    now: i64,
) -> Result<u64, StoreError> {
    let result =
        sqlx::query("DELETE FROM login_failures WHERE updated_at < $1 AND locked_until < $2")
            .bind(before)
            .bind(now)
            .execute(store.pool())
            .await?;
    Ok(result.rows_affected())
}
