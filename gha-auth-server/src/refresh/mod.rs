//! Rotating refresh tokens with reuse detection, stored in the database so they
//! survive restarts and are shared by replicas.
//!
//! - A login starts a **family**; each `ghar_` token in it is stored only as a keyed hash
//!   (HMAC-SHA256 under the server pepper).
//! - Using a token marks it used with one conditional `UPDATE … WHERE used_at IS NULL`: the
//!   compare-and-set that lets exactly one request (on any replica) rotate it.
//! - The successor is **derived** from the presented token and the family id under the pepper
//!   ([`ApiKey::derive`]), so every request that presents the same token computes the same
//!   successor. A repeat within `refresh.grace_window` of the first use (a response lost on a
//!   mobile network, a second replica losing the race) gets that same successor, as long as the
//!   successor itself is still unused; no fork, no logout.
//! - Any other reuse revokes the whole family and is audited.
//! - Each token expires `refresh.idle_lifetime` after it was issued (sliding), never after the
//!   family's absolute end (`refresh.absolute_lifetime` after login).

pub(crate) mod config;

use std::fmt;
use std::sync::Arc;

use gha_auth::SharedClock;
use gha_auth::apikey::{ApiKey, Pepper, SecretKind};
use ring::rand::{SecureRandom, SystemRandom};

use crate::audit::AuditLog;
use crate::revocations::revoke_subject;
use crate::store::{Backend, Store, StoreError, flag, split_list};
pub(crate) use config::RefreshConfig;

/// Refresh-token families: where they are stored, the pepper their hashes and successors are
/// keyed with, and the rules of `[refresh]`.
#[derive(Clone)]
pub struct Families {
    store: Store,
    pepper: Arc<Pepper>,
    audit: Arc<AuditLog>,
    clock: SharedClock,
    config: RefreshConfig,
}

impl fmt::Debug for Families {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Families")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Families {
    /// Families in `store`, keyed under `pepper`.
    pub fn new(
        store: Store,
        pepper: Arc<Pepper>,
        audit: Arc<AuditLog>,
        clock: SharedClock,
        config: RefreshConfig,
    ) -> Self {
        Self {
            store,
            pepper,
            audit,
            clock,
            config,
        }
    }

    /// The rules in force.
    pub fn config(&self) -> &RefreshConfig {
        &self.config
    }
}

/// A refresh-token family as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
#[non_exhaustive]
pub struct FamilyRow {
    /// Family id.
    pub id: String,
    /// The client the family belongs to.
    pub client_id: String,
    /// The user (the tokens' `sub`).
    pub user_id: Option<String>,
    /// Tenant.
    pub tenant: Option<String>,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// Audiences, space-separated.
    pub audience: String,
    /// Login time.
    pub created_at: i64,
    /// Absolute end.
    pub expires_at: i64,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
    /// Why.
    pub revoked_reason: Option<String>,
}

impl FamilyRow {
    /// Granted scopes.
    pub fn scopes(&self) -> Vec<String> {
        split_list(&self.scope)
    }

    /// Audiences.
    pub fn audiences(&self) -> Vec<String> {
        split_list(&self.audience)
    }

    /// Whether the family still lets tokens be used at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// One refresh token as stored (keyed hash only).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
#[non_exhaustive]
pub struct TokenRow {
    /// Keyed hash (hex).
    pub token_hash: String,
    /// Family id.
    pub family_id: String,
    /// The token it replaced.
    pub parent_hash: Option<String>,
    /// The token that replaced it.
    pub successor_hash: Option<String>,
    /// Issue time.
    pub issued_at: i64,
    /// First use.
    pub used_at: Option<i64>,
    /// Sliding end.
    pub expires_at: i64,
}

/// What a new family holds.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub(crate) struct NewFamily {
    /// Client id.
    pub(crate) client_id: String,
    /// User id.
    pub(crate) user_id: String,
    /// Tenant.
    pub(crate) tenant: Option<String>,
    /// Scopes.
    pub(crate) scopes: Vec<String>,
    /// Audiences.
    pub(crate) audiences: Vec<String>,
}

/// Why a refresh was refused. All but `Internal` are `invalid_grant` to the client.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum RefreshError {
    /// Unknown, expired, revoked, or another client's token.
    Invalid(&'static str),
    /// Reuse outside the grace window: the family has been revoked.
    Reused {
        /// The family.
        family_id: String,
        /// The client of the family.
        client_id: String,
    },
    /// The store failed.
    Internal(StoreError),
}

impl From<StoreError> for RefreshError {
    fn from(e: StoreError) -> Self {
        RefreshError::Internal(e)
    }
}

impl From<sqlx::Error> for RefreshError {
    fn from(e: sqlx::Error) -> Self {
        RefreshError::Internal(StoreError::from(e))
    }
}

/// A successful rotation.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) struct Rotated {
    /// The successor to hand out.
    pub(crate) successor: ApiKey,
    /// The family.
    pub(crate) family: FamilyRow,
    /// The family's user as they are now.
    pub(crate) user: CurrentUser,
    /// Whether this was a repeat inside the grace window.
    pub(crate) repeated: bool,
}

/// A family's user as stored now, and not disabled: refresh issues tokens with the current
/// roles.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct CurrentUser {
    /// User id (the tokens' `sub`).
    pub(crate) id: String,
    /// Roles now.
    pub(crate) roles: Vec<String>,
}

const TOKEN_COLUMNS: &str =
    "token_hash, family_id, parent_hash, successor_hash, issued_at, used_at, expires_at";

/// A token, its family and the family's user, read in one statement (the rotation's only read
/// on its hot path). Columns both tables have are aliased.
const PRESENTED_QUERY: &str = "SELECT t.token_hash, t.family_id, t.parent_hash, \
     t.successor_hash, t.issued_at, t.used_at, t.expires_at AS token_expires_at, \
     f.client_id, f.user_id, f.tenant, f.scope, f.audience, f.created_at, \
     f.expires_at AS family_expires_at, f.revoked_at, f.revoked_reason, \
     u.disabled AS user_disabled, u.roles AS user_roles \
     FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
     LEFT JOIN users u ON u.id = f.user_id WHERE t.token_hash = $1";

#[derive(sqlx::FromRow)]
struct PresentedRow {
    token_hash: String,
    family_id: String,
    parent_hash: Option<String>,
    successor_hash: Option<String>,
    issued_at: i64,
    used_at: Option<i64>,
    token_expires_at: i64,
    client_id: String,
    user_id: Option<String>,
    tenant: Option<String>,
    scope: String,
    audience: String,
    created_at: i64,
    family_expires_at: i64,
    revoked_at: Option<i64>,
    revoked_reason: Option<String>,
    user_disabled: Option<i64>,
    user_roles: Option<String>,
}

/// A stored token with its family and the family's user (`None` if the family has none, or the
/// user is gone or disabled).
struct Presented {
    token: TokenRow,
    family: FamilyRow,
    user: Option<CurrentUser>,
}

impl From<PresentedRow> for Presented {
    fn from(row: PresentedRow) -> Self {
        let user = match (&row.user_id, row.user_disabled) {
            (Some(id), Some(disabled)) if !flag(disabled) => Some(CurrentUser {
                id: id.clone(),
                roles: split_list(row.user_roles.as_deref().unwrap_or_default()),
            }),
            _ => None,
        };
        Self {
            token: TokenRow {
                token_hash: row.token_hash,
                family_id: row.family_id.clone(),
                parent_hash: row.parent_hash,
                successor_hash: row.successor_hash,
                issued_at: row.issued_at,
                used_at: row.used_at,
                expires_at: row.token_expires_at,
            },
            family: FamilyRow {
                id: row.family_id,
                client_id: row.client_id,
                user_id: row.user_id,
                tenant: row.tenant,
                scope: row.scope,
                audience: row.audience,
                created_at: row.created_at,
                expires_at: row.family_expires_at,
                revoked_at: row.revoked_at,
                revoked_reason: row.revoked_reason,
            },
            user,
        }
    }
}

async fn presented_row<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    hash: &str,
) -> Result<Option<Presented>, StoreError> {
    let row: Option<PresentedRow> = sqlx::query_as(PRESENTED_QUERY)
        .bind(hash)
        .fetch_optional(executor)
        .await?;
    Ok(row.map(Presented::from))
}

async fn token_row<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    hash: &str,
) -> Result<Option<TokenRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM refresh_tokens WHERE token_hash = $1"
    ))
    .bind(hash)
    .fetch_optional(executor)
    .await?)
}

/// The stored token and its family, for introspection and revocation.
pub async fn lookup(
    state: &Families,
    presented: &ApiKey,
) -> Result<Option<(TokenRow, FamilyRow)>, StoreError> {
    let found = presented_row(state.store.pool(), &hash_of(state, presented)).await?;
    Ok(found.map(|p| (p.token, p.family)))
}

fn random_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StoreError::Corrupt {
            table: "refresh_families",
            message: "no randomness for a family id".into(),
        })?;
    Ok(hex::encode(bytes))
}

/// The successor of `presented` in `family_id`: the same for every request presenting it.
fn successor_of(state: &Families, family_id: &str, presented: &ApiKey) -> ApiKey {
    let mut context = Vec::with_capacity(128);
    context.extend_from_slice(b"refresh successor v1\0");
    context.extend_from_slice(family_id.as_bytes());
    context.push(0);
    context.extend_from_slice(presented.expose().as_bytes());
    ApiKey::derive(SecretKind::RefreshToken, &state.pepper, &context)
}

fn hash_of(state: &Families, token: &ApiKey) -> String {
    state.pepper.hash(token).to_hex()
}

/// Starts a family at login; returns its first token.
pub(crate) async fn start_family(
    state: &Families,
    family: NewFamily,
) -> Result<ApiKey, StoreError> {
    let settings = &state.config;
    let now = state.clock.unix_seconds();
    let id = random_id()?;
    let absolute_end = now.saturating_add(settings.absolute_lifetime.as_secs());
    let token = ApiKey::generate(SecretKind::RefreshToken).map_err(|_| StoreError::Corrupt {
        table: "refresh_tokens",
        message: "no randomness for a refresh token".into(),
    })?;
    // The family and its first token, in one commit.
    let mut tx = state.store.begin_write().await?;
    sqlx::query(
        "INSERT INTO refresh_families (id, client_id, user_id, tenant, scope, audience, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(&family.client_id)
    .bind(&family.user_id)
    .bind(&family.tenant)
    .bind(family.scopes.join(" "))
    .bind(family.audiences.join(" "))
    .bind(now)
    .bind(absolute_end)
    .execute(tx.conn())
    .await?;
    insert_token(
        tx.conn(),
        &hash_of(state, &token),
        &id,
        None,
        now,
        now.saturating_add(settings.idle_lifetime.as_secs())
            .min(absolute_end),
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

async fn insert_token<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    hash: &str,
    family_id: &str,
    parent: Option<&str>,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, parent_hash, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (token_hash) DO NOTHING",
    )
    .bind(hash)
    .bind(family_id)
    .bind(parent)
    .bind(now)
    .bind(expires_at)
    .execute(executor)
    .await?;
    Ok(())
}

/// Revokes a family (idempotent); true if this call revoked it.
pub(crate) async fn revoke_family(
    store: &Store,
    family_id: &str,
    now: i64,
    reason: &str,
) -> Result<bool, StoreError> {
    Ok(revoke_where(store, REVOKE_BY_FAMILY, family_id, now, reason).await? > 0)
}

/// Revokes every live family of a user; returns how many.
pub(crate) async fn revoke_user_families(
    store: &Store,
    user_id: &str,
    now: i64,
    reason: &str,
) -> Result<u64, StoreError> {
    revoke_where(store, REVOKE_BY_USER, user_id, now, reason).await
}

const REVOKE_BY_FAMILY: &str = "UPDATE refresh_families SET revoked_at = $1, revoked_reason = $2 \
     WHERE id = $3 AND revoked_at IS NULL";
const REVOKE_BY_USER: &str = "UPDATE refresh_families SET revoked_at = $1, revoked_reason = $2 \
     WHERE user_id = $3 AND revoked_at IS NULL";

/// Runs one of the revocation statements above; returns how many families it revoked.
async fn revoke_where(
    store: &Store,
    sql: &'static str,
    value: &str,
    now: i64,
    reason: &str,
) -> Result<u64, StoreError> {
    let result = sqlx::query(sql)
        .bind(now)
        .bind(reason)
        .bind(value)
        .execute(store.pool())
        .await?;
    Ok(result.rows_affected())
}

/// Rotates `presented` for `client_id`: the successor, or why not. Reuse outside the grace
/// window revokes the family (the caller audits [`RefreshError::Reused`]); so does a disabled
/// user.
pub(crate) async fn rotate(
    state: &Families,
    presented: &ApiKey,
    client_id: &str,
) -> Result<Rotated, RefreshError> {
    let settings = &state.config;
    let now = state.clock.unix_seconds();
    let hash = hash_of(state, presented);
    // One connection for the whole rotation: on PostgreSQL every acquisition is a health-check
    // round trip.
    let mut conn = state.store.pool().acquire().await?;
    let Some(Presented {
        token,
        family,
        user,
    }) = presented_row(&mut *conn, &hash).await?
    else {
        return Err(RefreshError::Invalid("unknown_token"));
    };
    if family.client_id != client_id {
        // Another client's token: refused, and not a reason to revoke the owner's family.
        return Err(RefreshError::Invalid("other_client"));
    }
    if family.revoked_at.is_some() {
        return Err(RefreshError::Invalid("family_revoked"));
    }
    if now >= family.expires_at {
        return Err(RefreshError::Invalid("family_expired"));
    }
    let Some(user) = user else {
        // Disabled (or gone) since login: the family ends here.
        drop(conn);
        revoke_family(&state.store, &family.id, now, "user_disabled").await?;
        return Err(RefreshError::Invalid("user_disabled"));
    };
    let successor = successor_of(state, &family.id, presented);
    let successor_hash = hash_of(state, &successor);

    if token.used_at.is_none() {
        if now >= token.expires_at {
            return Err(RefreshError::Invalid("token_expired"));
        }
        if mark_used(state, &mut conn, &token, &family, &successor_hash, now).await? {
            return Ok(Rotated {
                successor,
                family,
                user,
                repeated: false,
            });
        }
    }
    // Used before (or just now, by a concurrent request): a repeat within the grace window gets
    // the same successor, as long as that is still unused; anything else is reuse.
    let Some(token) = token_row(&mut *conn, &hash).await? else {
        return Err(RefreshError::Invalid("unknown_token"));
    };
    let used_at = token.used_at.unwrap_or(now);
    let within_grace = now.saturating_sub(used_at) <= settings.grace_window.as_secs();
    let same_successor = token.successor_hash.as_deref() == Some(successor_hash.as_str());
    if within_grace && same_successor {
        let successor_unused = token_row(&mut *conn, &successor_hash)
            .await?
            .is_some_and(|s| s.used_at.is_none());
        if successor_unused {
            return Ok(Rotated {
                successor,
                family,
                user,
                repeated: true,
            });
        }
    }
    // Back to the pool first: the revocation takes connections of its own.
    drop(conn);
    revoke_family(&state.store, &family.id, now, "refresh_token_reused").await?;
    // Someone else may hold the user's tokens: access tokens already issued stop working too.
    revoke_subject(
        &state.store,
        &state.audit,
        now,
        &user.id,
        &family.client_id,
        "refresh_token_reused",
    )
    .await?;
    Err(RefreshError::Reused {
        family_id: family.id,
        client_id: family.client_id,
    })
}

/// Marks `token` used with a compare-and-set and stores its successor; true if this request
/// won (exactly one request, on any replica, does).
async fn mark_used(
    state: &Families,
    conn: &mut sqlx::AnyConnection,
    token: &TokenRow,
    family: &FamilyRow,
    successor_hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let successor_expires = now
        .saturating_add(state.config.idle_lifetime.as_secs())
        .min(family.expires_at);
    if state.store.backend() == Backend::Postgres {
        // One statement, so one round trip and one commit: the successor is inserted only by
        // the update that won. (A winner whose insert met an existing successor reports a loss
        // and is then served as a repeat inside the grace window: the same answer.)
        let inserted = sqlx::query(
            "WITH won AS (UPDATE refresh_tokens SET used_at = $1, successor_hash = $2 \
             WHERE token_hash = $3 AND used_at IS NULL RETURNING family_id) \
             INSERT INTO refresh_tokens (token_hash, family_id, parent_hash, issued_at, \
             expires_at) SELECT $2, family_id, $3, $1, $4 FROM won \
             ON CONFLICT (token_hash) DO NOTHING",
        )
        .bind(now)
        .bind(successor_hash)
        .bind(&token.token_hash)
        .bind(successor_expires)
        .execute(&mut *conn)
        .await?;
        return Ok(inserted.rows_affected() == 1);
    }
    // SQLite has no data-modifying CTEs. Two statements, each its own commit, in this order,
    // instead of a transaction of four: the successor's value is handed out only after the
    // compare-and-set (or to a repeat that finds the token used), and every request presenting
    // the token derives the same successor. So a successor stored by a request that then loses
    // the race, or dies before its compare-and-set, is the very row the winner needs, and nobody
    // holds its value.
    let _turn = state.store.writer_turn().await;
    insert_token(
        &mut *conn,
        successor_hash,
        &family.id,
        Some(&token.token_hash),
        now,
        successor_expires,
    )
    .await?;
    let result = sqlx::query(
        "UPDATE refresh_tokens SET used_at = $1, successor_hash = $2 \
         WHERE token_hash = $3 AND used_at IS NULL",
    )
    .bind(now)
    .bind(successor_hash)
    .bind(&token.token_hash)
    .execute(&mut *conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Deletes families that ended before `now` and their tokens (housekeeping); returns how many
/// families. Revoked families stay until their absolute end, so a late replay is still seen.
pub async fn purge_expired(store: &Store, now: i64) -> Result<u64, StoreError> {
    sqlx::query(
        "DELETE FROM refresh_tokens WHERE family_id IN \
         (SELECT id FROM refresh_families WHERE expires_at < $1)",
    )
    .bind(now)
    .execute(store.pool())
    .await?;
    let result = sqlx::query("DELETE FROM refresh_families WHERE expires_at < $1")
        .bind(now)
        .execute(store.pool())
        .await?;
    Ok(result.rows_affected())
}

#[cfg(test)]
mod tests;
