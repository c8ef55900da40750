//! Audit of broker reads.
//!
//! **Denials** are written one by one, as they happen (`broker.denied`): each is worth a row, up
//! to [`DENIALS_WRITTEN_AT_ONCE`] per client per interval. Past that a client is flooding (each
//! row is a hash-chained write under the audit lock), so further denials are counted in memory
//! and written at the flush as one `broker.denied` event per client and path with their number
//! (`count`, `aggregated: true`).
//!
//! **Allowed reads** are aggregated: [`ReadAudit::note`] only bumps a counter in memory, and
//! [`ReadAudit::flush`] — every `[broker] read_audit_interval` (10 s by default) and at
//! shutdown — writes one `broker.read` event per client and path with the number of reads in
//! that interval. Writing a hash-chained audit row costs a store round trip under a lock; doing
//! it on every cached read would make the audit log, not the cache, the speed of the broker
//! (a cached read must stay several times faster than reading Vault directly), and would fill
//! the log with identical rows. Who read what, and how often, is kept; the exact instant of each
//! read within the interval is not. Reads still in memory when the process dies are lost (at
//! most one interval); the log line of each request is not written either, for the same reason.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::TimeDelta;

use super::policy::Target;
use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome};

/// Reads per client and path since the last flush, for one kind of target.
type Pending = HashMap<String, HashMap<String, u64>>;

/// The value at `key`, inserted as default first if absent: allocates a key only then.
fn lookup<'m, V: Default>(map: &'m mut HashMap<String, V>, key: &str) -> Option<&'m mut V> {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key)
}

fn kind_index(target: Target<'_>) -> usize {
    match target {
        Target::Secret(_) => 0,
        Target::DatabaseRole(_) => 1,
    }
}

const KINDS: [&str; 2] = ["secret", "database"];

/// Denials per client per interval written as they happen; the rest are aggregated.
pub(crate) const DENIALS_WRITTEN_AT_ONCE: u32 = 20;

/// Distinct (client, kind, path, reason) keys held for aggregation; past this, further paths
/// are counted under [`MANY_PATHS`], so a client naming ever new paths cannot grow the map.
const MAX_HELD_DENIALS: usize = 1024;

/// The path recorded for denials counted after [`MAX_HELD_DENIALS`] was reached.
const MANY_PATHS: &str = "<many paths>";

/// A denial held for the next flush: client, kind, path, reason.
type DenialKey = (String, &'static str, String, &'static str);

/// Denials since the last flush.
#[derive(Debug, Default)]
struct Denials {
    written: HashMap<String, u32>,
    held: HashMap<DenialKey, u64>,
}

/// What [`ReadAudit::denied`] did with a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum DenialRecord {
    /// Written to the audit log now.
    Written,
    /// Counted, to be written at the next flush with the others of its client and path.
    Aggregated,
}

/// Counts allowed reads and writes them as aggregated audit events.
#[derive(Debug)]
pub(crate) struct ReadAudit {
    log: Arc<AuditLog>,
    interval: TimeDelta,
    pending: Mutex<[Pending; 2]>,
    denials: Mutex<Denials>,
}

impl ReadAudit {
    /// Aggregates into `log`, one event per client and path per `interval`.
    pub(crate) fn new(log: Arc<AuditLog>, interval: TimeDelta) -> Self {
        Self {
            log,
            interval,
            pending: Mutex::new([HashMap::new(), HashMap::new()]),
            denials: Mutex::new(Denials::default()),
        }
    }

    /// The flush interval.
    pub(crate) fn interval(&self) -> TimeDelta {
        self.interval
    }

    /// Counts one allowed read. No I/O.
    pub(crate) fn note(&self, client_id: &str, target: Target<'_>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let per_kind = &mut pending[kind_index(target)];
        if let Some(count) = lookup(per_kind, client_id).and_then(|c| lookup(c, target.name())) {
            *count += 1;
        }
    }

    /// Writes one `broker.read` event per client and path counted since the last flush, and
    /// the aggregated denials.
    pub(crate) async fn flush(&self) {
        let drained =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        for (kind, per_kind) in KINDS.into_iter().zip(drained) {
            for (client, names) in per_kind {
                for (name, count) in names {
                    self.log
                        .record_or_log(
                            AuditEvent::new(
                                AuditKind::BrokerRead,
                                &client,
                                &name,
                                Outcome::Success,
                            )
                            .detail("kind", kind)
                            .detail("count", count)
                            .detail("interval_seconds", self.interval.num_seconds()),
                        )
                        .await;
                }
            }
        }
        let denials =
            std::mem::take(&mut *self.denials.lock().unwrap_or_else(PoisonError::into_inner));
        for ((client, kind, name, reason), count) in denials.held {
            self.log
                .record_or_log(
                    AuditEvent::new(AuditKind::BrokerDenied, &client, &name, Outcome::Failure)
                        .detail("kind", kind)
                        .detail("reason", reason)
                        .detail("count", count)
                        .detail("aggregated", true)
                        .detail("interval_seconds", self.interval.num_seconds()),
                )
                .await;
        }
    }

    /// Records a denial: written now, unless `client_id` already had
    /// [`DENIALS_WRITTEN_AT_ONCE`] written in this interval.
    pub(crate) async fn denied(
        &self,
        client_id: &str,
        target: Target<'_>,
        reason: &'static str,
    ) -> DenialRecord {
        if !self.may_write_denial(client_id, target, reason) {
            return DenialRecord::Aggregated;
        }
        self.log
            .record_or_log(
                AuditEvent::new(
                    AuditKind::BrokerDenied,
                    client_id,
                    target.name(),
                    Outcome::Failure,
                )
                .detail("kind", target.kind())
                .detail("reason", reason),
            )
            .await;
        DenialRecord::Written
    }

    /// Takes one of the client's immediate writes, or holds the denial for the flush.
    fn may_write_denial(&self, client_id: &str, target: Target<'_>, reason: &'static str) -> bool {
        let mut denials = self.denials.lock().unwrap_or_else(PoisonError::into_inner);
        let Denials { written, held } = &mut *denials;
        if let Some(count) = lookup(written, client_id)
            && *count < DENIALS_WRITTEN_AT_ONCE
        {
            *count += 1;
            return true;
        }
        let mut key = (
            client_id.to_owned(),
            target.kind(),
            target.name().to_owned(),
            reason,
        );
        if held.len() >= MAX_HELD_DENIALS && !held.contains_key(&key) {
            key.2 = MANY_PATHS.to_owned();
        }
        *held.entry(key).or_default() += 1;
        false
    }
}

#[cfg(test)]
mod tests {
    use gha_auth::ManualClock;
    use serde_json::Value;

    use super::*;
    use crate::audit::AuditRow;
    use crate::store::Store;

    const START: i64 = 1_767_225_600;

    async fn audit() -> (ReadAudit, Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("audit.db").display());
        let store = Store::open(&url, 2).await.unwrap();
        let clock = ManualClock::at_unix(START);
        let log = Arc::new(AuditLog::new(store.clone(), clock.shared()));
        (ReadAudit::new(log, TimeDelta::seconds(10)), store, dir)
    }

    async fn denied_rows(store: &Store) -> Vec<(AuditRow, Value)> {
        let rows = store.audit_rows_after(0, 1_000_000).await.unwrap();
        rows.into_iter()
            .filter(|row| row.kind == "broker.denied")
            .map(|row| {
                let detail = serde_json::from_str(&row.detail).unwrap();
                (row, detail)
            })
            .collect()
    }

    #[tokio::test]
    async fn a_flood_of_denials_is_aggregated_and_no_denial_is_lost() {
        let (audit, store, _dir) = audit().await;
        let limit = DENIALS_WRITTEN_AT_ONCE as usize;
        let mut written = 0;
        for _ in 0..limit + 5 {
            let record = audit
                .denied("intruder", Target::Secret("apps/a"), "no_grant")
                .await;
            written += usize::from(record == DenialRecord::Written);
        }
        assert_eq!(written, limit, "the first denials are written at once");
        // Ever new paths cannot grow the held map past its bound.
        for i in 0..MAX_HELD_DENIALS + 50 {
            let path = format!("apps/x{i}");
            let record = audit
                .denied("intruder", Target::Secret(&path), "no_grant")
                .await;
            assert_eq!(record, DenialRecord::Aggregated);
        }
        assert!(audit.denials.lock().unwrap().held.len() <= MAX_HELD_DENIALS + 1);
        // The budget is per client.
        let other = audit
            .denied("other", Target::DatabaseRole("billing"), "no_grant")
            .await;
        assert_eq!(other, DenialRecord::Written);
        assert_eq!(denied_rows(&store).await.len(), limit + 1);

        audit.flush().await;
        let rows = denied_rows(&store).await;
        let aggregated: Vec<_> = rows
            .iter()
            .filter(|(_, detail)| detail["aggregated"] == Value::Bool(true))
            .collect();
        let total: u64 = aggregated
            .iter()
            .map(|(_, detail)| detail["count"].as_u64().unwrap())
            .sum();
        assert_eq!(
            total,
            5 + MAX_HELD_DENIALS as u64 + 50,
            "every denial is counted"
        );
        assert!(aggregated.iter().all(|(row, _)| row.actor == "intruder"));
        let a = aggregated
            .iter()
            .find(|(row, _)| row.subject == "apps/a")
            .unwrap();
        assert_eq!(a.1["count"], 5);
        assert!(aggregated.iter().any(|(row, _)| row.subject == MANY_PATHS));

        // A new interval: written at once again.
        let record = audit
            .denied("intruder", Target::Secret("apps/a"), "no_grant")
            .await;
        assert_eq!(record, DenialRecord::Written);
    }
}
