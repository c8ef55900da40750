//! The health board's SQL: the polling lease, each target's state and the results
//! (`monitor_lease`, `monitor_state`, `monitor_results`). Every write that decides something
//! (who polls, which replica records a state change) is one conditional statement whose
//! affected-row count says who won. Times are Unix milliseconds.

use super::machine::{Debounce, Lease, TargetState};
use crate::store::{Store, StoreError};

/// The name of the one lease row.
const LEASE: &str = "poller";

/// The lease, if any replica ever took it.
pub(crate) async fn read_lease(store: &Store) -> Result<Option<Lease>, StoreError> {
    let row: Option<(String, i64, i64)> =
        sqlx::query_as("SELECT holder, expires_at, version FROM monitor_lease WHERE name = $1")
            .bind(LEASE)
            .fetch_optional(store.pool())
            .await?;
    Ok(row.map(|(holder, expires_at, version)| Lease {
        holder,
        expires_at,
        version,
    }))
}

/// Takes the lease nobody ever held; `false` if another replica did first.
pub(crate) async fn insert_lease(
    store: &Store,
    holder: &str,
    expires_at: i64,
) -> Result<bool, StoreError> {
    let _turn = store.writer_turn().await;
    let done = sqlx::query(
        "INSERT INTO monitor_lease (name, holder, expires_at, version) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(LEASE)
    .bind(holder)
    .bind(expires_at)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Renews or takes over the lease at `version`; `false` if it changed meanwhile.
pub(crate) async fn update_lease(
    store: &Store,
    holder: &str,
    expires_at: i64,
    version: i64,
) -> Result<bool, StoreError> {
    let _turn = store.writer_turn().await;
    let done = sqlx::query(
        "UPDATE monitor_lease SET holder = $1, expires_at = $2, version = version + 1 \
         WHERE name = $3 AND version = $4",
    )
    .bind(holder)
    .bind(expires_at)
    .bind(LEASE)
    .bind(version)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One target's stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StateRow {
    /// The target's name.
    pub(crate) target: String,
    /// The state and its streak.
    pub(crate) debounce: Debounce,
    /// When the state last changed.
    pub(crate) changed_at: i64,
    /// When the target was last checked.
    pub(crate) checked_at: i64,
    /// When it is next due.
    pub(crate) next_due: i64,
    /// The last check's latency.
    pub(crate) latency_ms: i64,
    /// When the last failed check was.
    pub(crate) last_failure_at: Option<i64>,
    /// Why it failed.
    pub(crate) last_failure_reason: Option<String>,
    /// Compare-and-set version.
    pub(crate) version: i64,
}

type RawState = (
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    i64,
);

const STATE_COLUMNS: &str = "target, state, streak_outcome, streak, changed_at, checked_at, \
     next_due, latency_ms, last_failure_at, last_failure_reason, version";

fn state_row(raw: RawState) -> Result<StateRow, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        table: "monitor_state",
        message,
    };
    let parse =
        |text: &str| TargetState::parse(text).ok_or_else(|| corrupt(format!("state {text:?}")));
    Ok(StateRow {
        debounce: Debounce {
            state: parse(&raw.1)?,
            streak_outcome: parse(&raw.2)?,
            streak: u32::try_from(raw.3).map_err(|_| corrupt(format!("streak {}", raw.3)))?,
        },
        target: raw.0,
        changed_at: raw.4,
        checked_at: raw.5,
        next_due: raw.6,
        latency_ms: raw.7,
        last_failure_at: raw.8,
        last_failure_reason: raw.9,
        version: raw.10,
    })
}

/// Every target's stored state (also of targets no longer configured), by name.
pub(crate) async fn states(store: &Store) -> Result<Vec<StateRow>, StoreError> {
    let raw: Vec<RawState> = sqlx::query_as(&format!(
        "SELECT {STATE_COLUMNS} FROM monitor_state ORDER BY target"
    ))
    .fetch_all(store.pool())
    .await?;
    raw.into_iter().map(state_row).collect()
}

/// Writes `row` if the stored version is still `row.version - 1` (or, for the first write with
/// `row.version == 1`, if there is none); `false` if another writer won.
pub(crate) async fn save_state(store: &Store, row: &StateRow) -> Result<bool, StoreError> {
    let _turn = store.writer_turn().await;
    let debounce = &row.debounce;
    let query = if row.version == 1 {
        format!(
            "INSERT INTO monitor_state ({STATE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (target) DO NOTHING"
        )
    } else {
        "UPDATE monitor_state SET state = $2, streak_outcome = $3, streak = $4, changed_at = $5, \
         checked_at = $6, next_due = $7, latency_ms = $8, last_failure_at = $9, \
         last_failure_reason = $10, version = $11 WHERE target = $1 AND version = $11 - 1"
            .to_owned()
    };
    let done = sqlx::query(&query)
        .bind(&row.target)
        .bind(debounce.state.as_str())
        .bind(debounce.streak_outcome.as_str())
        .bind(i64::from(debounce.streak))
        .bind(row.changed_at)
        .bind(row.checked_at)
        .bind(row.next_due)
        .bind(row.latency_ms)
        .bind(row.last_failure_at)
        .bind(row.last_failure_reason.as_deref())
        .bind(row.version)
        .execute(store.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResultRow {
    /// When (Unix ms).
    pub(crate) checked_at: i64,
    /// `up`, `degraded` or `down`.
    pub(crate) outcome: TargetState,
    /// How long the check took.
    pub(crate) latency_ms: i64,
    /// Why it failed (or was degraded).
    pub(crate) reason: Option<String>,
}

/// Records one check of `target`.
pub(crate) async fn insert_result(
    store: &Store,
    target: &str,
    result: &ResultRow,
) -> Result<(), StoreError> {
    let _turn = store.writer_turn().await;
    sqlx::query(
        "INSERT INTO monitor_results (target, checked_at, outcome, latency_ms, reason) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(target)
    .bind(result.checked_at)
    .bind(result.outcome.as_str())
    .bind(result.latency_ms)
    .bind(result.reason.as_deref())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// The newest `limit` results of `target`, newest first.
pub(crate) async fn history(
    store: &Store,
    target: &str,
    limit: u32,
) -> Result<Vec<ResultRow>, StoreError> {
    let raw: Vec<(i64, String, i64, Option<String>)> = sqlx::query_as(
        "SELECT checked_at, outcome, latency_ms, reason FROM monitor_results \
         WHERE target = $1 ORDER BY checked_at DESC LIMIT $2",
    )
    .bind(target)
    .bind(i64::from(limit))
    .fetch_all(store.pool())
    .await?;
    raw.into_iter()
        .map(|(checked_at, outcome, latency_ms, reason)| {
            let outcome = TargetState::parse(&outcome).ok_or_else(|| StoreError::Corrupt {
                table: "monitor_results",
                message: format!("outcome {outcome:?}"),
            })?;
            Ok(ResultRow {
                checked_at,
                outcome,
                latency_ms,
                reason,
            })
        })
        .collect()
}

/// `(checks, checks that did not fail)` of `target` since `since`.
pub(crate) async fn availability(
    store: &Store,
    target: &str,
    since: i64,
) -> Result<(i64, i64), StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT outcome, COUNT(*) FROM monitor_results WHERE target = $1 AND checked_at >= $2 \
         GROUP BY outcome",
    )
    .bind(target)
    .bind(since)
    .fetch_all(store.pool())
    .await?;
    let total = rows.iter().map(|(_, n)| n).sum();
    let good = rows
        .iter()
        .filter(|(outcome, _)| outcome != TargetState::Down.as_str())
        .map(|(_, n)| n)
        .sum();
    Ok((total, good))
}

/// Removes results older than `before`, and of `target` all but the newest `keep`; returns how
/// many rows went.
pub(crate) async fn prune(
    store: &Store,
    targets: &[String],
    before: i64,
    keep: u32,
) -> Result<u64, StoreError> {
    let _turn = store.writer_turn().await;
    let mut removed = sqlx::query("DELETE FROM monitor_results WHERE checked_at < $1")
        .bind(before)
        .execute(store.pool())
        .await?
        .rows_affected();
    for target in targets {
        removed += sqlx::query(
            "DELETE FROM monitor_results WHERE target = $1 AND checked_at < \
             (SELECT checked_at FROM monitor_results WHERE target = $1 \
              ORDER BY checked_at DESC LIMIT 1 OFFSET $2)",
        )
        .bind(target)
        .bind(i64::from(keep.saturating_sub(1)))
        .execute(store.pool())
        .await?
        .rows_affected();
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        Store::open(&url, 2).await.unwrap()
    }

    #[tokio::test]
    async fn lease_is_taken_once_and_renewed_by_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        assert_eq!(read_lease(&store).await.unwrap(), None);
        assert!(insert_lease(&store, "a", 100).await.unwrap());
        assert!(!insert_lease(&store, "b", 100).await.unwrap());
        let lease = read_lease(&store).await.unwrap().unwrap();
        assert_eq!((lease.holder.as_str(), lease.version), ("a", 1));
        assert!(update_lease(&store, "b", 200, 1).await.unwrap());
        assert!(
            !update_lease(&store, "a", 300, 1).await.unwrap(),
            "stale version loses"
        );
        assert_eq!(read_lease(&store).await.unwrap().unwrap().holder, "b");
    }

    #[tokio::test]
    async fn state_writes_are_compare_and_set() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let mut row = StateRow {
            target: "jobs".to_owned(),
            debounce: Debounce::NEW,
            changed_at: 1,
            checked_at: 1,
            next_due: 2,
            latency_ms: 3,
            last_failure_at: None,
            last_failure_reason: None,
            version: 1,
        };
        assert!(save_state(&store, &row).await.unwrap());
        assert!(
            !save_state(&store, &row).await.unwrap(),
            "second insert loses"
        );
        row.version = 2;
        row.last_failure_reason = Some("timeout".to_owned());
        assert!(save_state(&store, &row).await.unwrap());
        assert!(
            !save_state(&store, &row).await.unwrap(),
            "same version twice loses"
        );
        assert_eq!(states(&store).await.unwrap(), vec![row]);
    }

    #[tokio::test]
    async fn results_are_pruned_by_age_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        for at in 0..30 {
            let outcome = if at % 3 == 0 {
                TargetState::Down
            } else {
                TargetState::Up
            };
            for target in ["a", "b"] {
                let row = ResultRow {
                    checked_at: at,
                    outcome,
                    latency_ms: 1,
                    reason: None,
                };
                insert_result(&store, target, &row).await.unwrap();
            }
        }
        assert_eq!(availability(&store, "a", 0).await.unwrap(), (30, 20));
        assert_eq!(availability(&store, "a", 27).await.unwrap(), (3, 2));
        // Older than 5 goes (10 rows), then "a" keeps its newest 10.
        let removed = prune(&store, &["a".to_owned()], 5, 10).await.unwrap();
        assert_eq!(removed, 10 + 15);
        let a = history(&store, "a", 100).await.unwrap();
        assert_eq!(a.len(), 10);
        assert_eq!(a[0].checked_at, 29);
        assert_eq!(a[9].checked_at, 20);
        assert_eq!(history(&store, "b", 100).await.unwrap().len(), 25);
    }
}
