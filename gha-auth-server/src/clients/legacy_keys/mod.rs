//! Legacy static API keys, imported by an operator so their holders can exchange them (RFC 8693
//! token exchange) for short-lived JWTs: the migration path off static keys.
//!
//! `gha-auth clients legacy-key add <client-id> --subject S [--tenant T] --scope S…` reads the
//! key from standard input; only its keyed hash (HMAC-SHA256 under the server pepper, like client
//! secrets) is stored. The key is bound to one client: only that client, authenticated as usual,
//! may exchange it, with `subject_token_type` [`LEGACY_API_KEY_TOKEN_TYPE`]. The tokens it gets
//! carry the key's subject and tenant and at most the key's scopes (further narrowed to the
//! client's registration and the request).

mod cli;

use gha_auth::SecretString;
use gha_auth::apikey::Pepper;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub(crate) use cli::LegacyKeyCommand;
pub(crate) use cli::{imported_text, list_text, read_key, revoked_text, run as run_cli};

use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome};
use crate::clients::{is_valid_client_id, is_valid_scope};
use crate::store::{Store, StoreError, split_list};

/// The `subject_token_type` of a legacy static API key in a token exchange.
pub const LEGACY_API_KEY_TOKEN_TYPE: &str = "urn:gha:params:oauth:token-type:legacy-api-key";

/// Shortest and longest key accepted for import: shorter keys are guessable, longer ones are
/// not API keys.
const KEY_LEN: std::ops::RangeInclusive<usize> = 16..=512;

/// A legacy key could not be imported or changed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LegacyKeyError {
    /// Bad input (the message never contains the key).
    #[error("{0}")]
    Invalid(String),
    /// The key (or its id) is already registered.
    #[error("this key or id is already registered")]
    AlreadyExists,
    /// No such key.
    #[error("legacy key {0:?} not found")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An imported key as stored (never the key itself); read back from the admin API by `--server`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LegacyKey {
    /// Operator-facing id (`lk_…` unless given).
    pub id: String,
    /// The only client that may exchange it.
    pub client_id: String,
    /// `sub` of the tokens it is exchanged for.
    pub subject: String,
    /// `tenant` of those tokens.
    pub tenant: Option<String>,
    /// The most scopes those tokens may have.
    pub scopes: Vec<String>,
    /// Import time.
    pub created_at: i64,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

/// What an operator imports.
#[derive(Debug)]
#[non_exhaustive]
pub struct NewLegacyKey {
    /// The client that will exchange it.
    pub client_id: String,
    /// Subject of the exchanged tokens.
    pub subject: String,
    /// Tenant of the exchanged tokens.
    pub tenant: Option<String>,
    /// Scopes the exchanged tokens may have.
    pub scopes: Vec<String>,
    /// Id to give it (default: generated).
    pub id: Option<String>,
}

impl NewLegacyKey {
    /// A key for `client_id`, exchanged for tokens about `subject`.
    pub fn new(client_id: impl Into<String>, subject: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            subject: subject.into(),
            tenant: None,
            scopes: Vec::new(),
            id: None,
        }
    }
}

type Row = (
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    Option<i64>,
);

fn from_row((id, client_id, subject, tenant, scopes, created_at, revoked_at): Row) -> LegacyKey {
    LegacyKey {
        id,
        client_id,
        subject,
        tenant,
        scopes: split_list(&scopes),
        created_at,
        revoked_at,
    }
}

const COLUMNS: &str = "id, client_id, subject, tenant, scopes, created_at, revoked_at";

fn hash_of(pepper: &Pepper, key: &SecretString) -> String {
    pepper.hash_bytes(key.expose().as_bytes()).to_hex()
}

fn new_id() -> Result<String, LegacyKeyError> {
    let mut bytes = [0u8; 8];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| LegacyKeyError::Invalid("no randomness for a key id".into()))?;
    Ok(format!("lk_{}", hex::encode(bytes)))
}

/// Imports `key` for `spec.client_id` (which must exist and allow token exchange: the caller
/// checks) and audits it. The key is checked for length and printable characters only.
pub async fn add(
    store: &Store,
    pepper: &Pepper,
    audit: &AuditLog,
    now: i64,
    spec: NewLegacyKey,
    key: &SecretString,
    actor: &str,
) -> Result<LegacyKey, LegacyKeyError> {
    let text = key.expose();
    if !KEY_LEN.contains(&text.len()) || text.chars().any(|c| c.is_control() || c == ' ') {
        return Err(LegacyKeyError::Invalid(
            "the key must be 16 to 512 characters without spaces or control characters".into(),
        ));
    }
    if !is_valid_client_id(&spec.client_id) {
        return Err(LegacyKeyError::Invalid("invalid client id".into()));
    }
    if spec.subject.is_empty()
        || spec.subject.len() > 256
        || spec.subject.chars().any(char::is_control)
    {
        return Err(LegacyKeyError::Invalid(
            "the subject must be 1 to 256 printable characters".into(),
        ));
    }
    if spec.scopes.is_empty() || spec.scopes.iter().any(|s| !is_valid_scope(s)) {
        return Err(LegacyKeyError::Invalid(
            "give at least one valid --scope".into(),
        ));
    }
    if spec
        .tenant
        .as_deref()
        .is_some_and(|t| !crate::users::is_valid_tenant(t))
    {
        return Err(LegacyKeyError::Invalid("invalid tenant".into()));
    }
    let id = match spec.id {
        Some(id) if is_valid_client_id(&id) => id,
        Some(_) => return Err(LegacyKeyError::Invalid("invalid key id".into())),
        None => new_id()?,
    };
    let inserted = sqlx::query(
        "INSERT INTO legacy_api_keys (key_hash, id, client_id, subject, tenant, scopes, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(hash_of(pepper, key))
    .bind(&id)
    .bind(&spec.client_id)
    .bind(&spec.subject)
    .bind(&spec.tenant)
    .bind(spec.scopes.join(" "))
    .bind(now)
    .execute(store.pool())
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    if inserted == 0 {
        return Err(LegacyKeyError::AlreadyExists);
    }
    audit
        .record_or_log(
            AuditEvent::new(
                AuditKind::LegacyKeyImported,
                actor,
                &spec.client_id,
                Outcome::Success,
            )
            .detail("key_id", id.as_str())
            .detail("subject", spec.subject.as_str())
            .detail("scopes", spec.scopes.join(" ")),
        )
        .await;
    Ok(LegacyKey {
        id,
        client_id: spec.client_id,
        subject: spec.subject,
        tenant: spec.tenant,
        scopes: spec.scopes,
        created_at: now,
        revoked_at: None,
    })
}

/// The live key matching `presented`, if any (one indexed lookup by keyed hash).
pub(crate) async fn find(
    store: &Store,
    pepper: &Pepper,
    presented: &SecretString,
) -> Result<Option<LegacyKey>, StoreError> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM legacy_api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
    ))
    .bind(hash_of(pepper, presented))
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(from_row))
}

/// Keys of one client (or all), by id.
pub async fn list(store: &Store, client_id: Option<&str>) -> Result<Vec<LegacyKey>, StoreError> {
    let rows: Vec<Row> = match client_id {
        Some(client) => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM legacy_api_keys WHERE client_id = $1 ORDER BY id"
            ))
            .bind(client)
            .fetch_all(store.pool())
            .await?
        }
        None => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM legacy_api_keys ORDER BY id"
            ))
            .fetch_all(store.pool())
            .await?
        }
    };
    Ok(rows.into_iter().map(from_row).collect())
}

/// Revokes a key by id: it can no longer be exchanged. Audited.
pub async fn revoke(
    store: &Store,
    audit: &AuditLog,
    now: i64,
    id: &str,
    actor: &str,
) -> Result<(), LegacyKeyError> {
    let changed = sqlx::query(
        "UPDATE legacy_api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(store.pool())
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    if changed == 0 {
        return Err(LegacyKeyError::NotFound(id.to_owned()));
    }
    audit
        .record_or_log(
            AuditEvent::new(AuditKind::LegacyKeyRevoked, actor, id, Outcome::Success)
                .detail("key_id", id),
        )
        .await;
    Ok(())
}

#[cfg(test)]
mod tests;
