//! The `client_assertion_jtis` table: replay protection for `private_key_jwt`.

use crate::store::{Store, StoreError};

/// Records that `client_id` used assertion `jti`, valid until `expires_at`. `false` when it was
/// already recorded: a replay.
pub(crate) async fn record_assertion_jti(
    store: &Store,
    client_id: &str,
    jti: &str,
    expires_at: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO client_assertion_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id, jti) DO NOTHING",
    )
    .bind(client_id)
    .bind(jti)
    .bind(expires_at)
    .execute(store.pool())
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Forgets assertion ids that expired before `now`; returns how many.
pub(crate) async fn purge_assertion_jtis(store: &Store, now: i64) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM client_assertion_jtis WHERE expires_at < $1")
            .bind(now)
            .execute(store.pool())
            .await?
            .rows_affected(),
    )
}
