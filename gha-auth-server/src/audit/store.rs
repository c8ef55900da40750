//! Rows of the append-only `audit_events` table. Hashing and verification live in
//! the parent module; this one only reads and appends.

use crate::store::{Store, StoreError};

/// One stored audit event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
#[non_exhaustive]
pub struct AuditRow {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (Unix seconds).
    pub at: i64,
    /// What happened, e.g. `client.auth_failed`.
    pub kind: String,
    /// Who did it (a client id, `cli`, `scheduler`, …).
    pub actor: String,
    /// What it was done to.
    pub subject: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Canonical JSON object with details (never secrets).
    pub detail: String,
    /// Hash of the previous row (hex), zeros for the first.
    pub prev_hash: String,
    /// SHA-256 (hex) over `prev_hash` and the canonical row.
    pub hash: String,
}

impl AuditRow {
    /// A row with every field given (for the audit module and tests).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        seq: i64,
        at: i64,
        kind: String,
        actor: String,
        subject: String,
        outcome: String,
        detail: String,
        prev_hash: String,
        hash: String,
    ) -> Self {
        Self {
            seq,
            at,
            kind,
            actor,
            subject,
            outcome,
            detail,
            prev_hash,
            hash,
        }
    }
}

const COLUMNS: &str = "seq, at, kind, actor, subject, outcome, detail, prev_hash, hash";

impl Store {
    /// The last row of the chain, if any.
    pub async fn last_audit_row(&self) -> Result<Option<AuditRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM audit_events ORDER BY seq DESC LIMIT 1"
        ))
        .fetch_optional(self.pool())
        .await?)
    }

    /// Appends `row` if its `seq` is still free; `false` when another writer took it first (the
    /// caller re-reads the head and retries).
    pub async fn try_append_audit_row(&self, row: &AuditRow) -> Result<bool, StoreError> {
        let result = sqlx::query(&format!(
            "INSERT INTO audit_events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (seq) DO NOTHING"
        ))
        .bind(row.seq)
        .bind(row.at)
        .bind(&row.kind)
        .bind(&row.actor)
        .bind(&row.subject)
        .bind(&row.outcome)
        .bind(&row.detail)
        .bind(&row.prev_hash)
        .bind(&row.hash)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Up to `limit` rows with `seq > after`, in `seq` order (for paging through the chain).
    pub async fn audit_rows_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Up to `limit` rows with `seq < before` whose kind starts with `kind` and whose actor is
    /// `actor` (empty: any), newest first (for reading the tail of the chain).
    pub async fn audit_rows_before(
        &self,
        before: i64,
        kind: &str,
        actor: &str,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        // Each parameter is bound once, in order: SQLite and PostgreSQL number them alike then.
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM audit_events WHERE seq < $1 \
             AND ($2 = '' OR substr(kind, 1, length($3)) = $4) AND ($5 = '' OR actor = $6) \
             ORDER BY seq DESC LIMIT $7"
        ))
        .bind(before)
        .bind(kind)
        .bind(kind)
        .bind(kind)
        .bind(actor)
        .bind(actor)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same checks on every backend.
    async fn exercise(store: &Store) {
        // audit rows: a taken seq is refused
        let row = AuditRow::new(
            1,
            10,
            "k".into(),
            "a".into(),
            "s".into(),
            "success".into(),
            "{}".into(),
            "0".repeat(64),
            "1".repeat(64),
        );
        assert!(store.try_append_audit_row(&row).await.unwrap());
        assert!(!store.try_append_audit_row(&row).await.unwrap());
        assert_eq!(store.last_audit_row().await.unwrap(), Some(row.clone()));
        assert_eq!(
            store.audit_rows_after(0, 10).await.unwrap(),
            vec![row.clone()]
        );
        assert!(store.audit_rows_after(1, 10).await.unwrap().is_empty());

        // the tail, newest first, by kind prefix and actor
        let mut prev = row.hash.clone();
        for (seq, kind, actor) in [
            (2, "link_keys.rotated", "scheduler"),
            (3, "link_keys.rotation_requested", "user:u1"),
            (4, "admin.api_call", "user:u1"),
        ] {
            let next = AuditRow::new(
                seq,
                10,
                kind.into(),
                actor.into(),
                "s".into(),
                "success".into(),
                "{}".into(),
                prev.clone(),
                format!("{seq}").repeat(64),
            );
            prev.clone_from(&next.hash);
            assert!(store.try_append_audit_row(&next).await.unwrap());
        }
        let seqs = |rows: Vec<AuditRow>| rows.iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(
            seqs(store.audit_rows_before(i64::MAX, "", "", 10).await.unwrap()),
            [4, 3, 2, 1]
        );
        assert_eq!(
            seqs(store.audit_rows_before(i64::MAX, "", "", 2).await.unwrap()),
            [4, 3]
        );
        assert_eq!(
            seqs(store.audit_rows_before(3, "", "", 10).await.unwrap()),
            [2, 1]
        );
        assert_eq!(
            seqs(
                store
                    .audit_rows_before(i64::MAX, "link_keys.", "", 10)
                    .await
                    .unwrap()
            ),
            [3, 2]
        );
        assert_eq!(
            seqs(
                store
                    .audit_rows_before(i64::MAX, "", "user:u1", 10)
                    .await
                    .unwrap()
            ),
            [4, 3]
        );
        assert_eq!(
            seqs(
                store
                    .audit_rows_before(i64::MAX, "link_keys.", "user:u1", 10)
                    .await
                    .unwrap()
            ),
            [3]
        );
        assert!(
            store
                .audit_rows_before(i64::MAX, "link_keys.rotated.", "", 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn on_sqlite() {
        let (store, _dir) = crate::store::testing::sqlite().await;
        exercise(&store).await;
    }

    #[tokio::test]
    async fn on_postgres() {
        let (store, _db) = crate::store::testing::postgres().await;
        exercise(&store).await;
    }
}
