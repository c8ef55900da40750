//! Audit of broker reads.
//!
//! **Denials** are written one by one, as they happen (`broker.denied`): each is worth a row.
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

/// Counts allowed reads and writes them as aggregated audit events.
#[derive(Debug)]
pub struct ReadAudit {
    log: Arc<AuditLog>,
    interval: TimeDelta,
    pending: Mutex<[Pending; 2]>,
}

impl ReadAudit {
    /// Aggregates into `log`, one event per client and path per `interval`.
    pub fn new(log: Arc<AuditLog>, interval: TimeDelta) -> Self {
        Self {
            log,
            interval,
            pending: Mutex::new([HashMap::new(), HashMap::new()]),
        }
    }

    /// The flush interval.
    pub fn interval(&self) -> TimeDelta {
        self.interval
    }

    /// Counts one allowed read. No I/O.
    pub fn note(&self, client_id: &str, target: Target<'_>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let per_kind = &mut pending[kind_index(target)];
        if let Some(count) = lookup(per_kind, client_id).and_then(|c| lookup(c, target.name())) {
            *count += 1;
        }
    }

    /// Writes one `broker.read` event per client and path counted since the last flush.
    pub async fn flush(&self) {
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
    }

    /// Writes a `broker.denied` event now.
    pub async fn denied(&self, client_id: &str, target: Target<'_>, reason: &str) {
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
    }
}
