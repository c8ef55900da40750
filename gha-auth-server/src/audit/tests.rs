use std::sync::Arc;

use gha_auth::ManualClock;

use super::verify::ChainProblem;
use super::*;

async fn store_with_events(n: usize) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let store = Store::open(&url, 2).await.unwrap();
    let log = AuditLog::new(store.clone(), ManualClock::at_unix(1_700_000_000).shared());
    for i in 0..n {
        log.record(
            AuditEvent::new(
                AuditKind::ClientCreated,
                "cli",
                &format!("svc-{i}"),
                Outcome::Success,
            )
            .detail("grants", "client_credentials"),
        )
        .await
        .unwrap();
    }
    (dir, store)
}

#[tokio::test]
async fn an_untouched_chain_verifies() {
    let (_dir, store) = store_with_events(5).await;
    let report = verify(&store).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.rows, 5);
    assert_eq!(report.head_seq, Some(5));
    let first = store.audit_rows_after(0, 1).await.unwrap().remove(0);
    assert_eq!(first.prev_hash, GENESIS_HASH);
    assert_eq!(first.detail, r#"{"grants":"client_credentials"}"#);
}

#[tokio::test]
async fn an_empty_chain_verifies() {
    let (_dir, store) = store_with_events(0).await;
    let report = verify(&store).await.unwrap();
    assert!(report.ok());
    assert_eq!(report.rows, 0);
}

#[tokio::test]
async fn a_changed_row_is_detected() {
    let (_dir, store) = store_with_events(4).await;
    tamper(
        &store,
        "UPDATE audit_events SET subject = 'mallory' WHERE seq = 2",
    )
    .await
    .unwrap();
    let report = verify(&store).await.unwrap();
    assert_eq!(report.problems, vec![ChainProblem::Altered { seq: 2 }]);
}

#[tokio::test]
async fn a_changed_row_with_recomputed_hash_breaks_the_next_link() {
    let (_dir, store) = store_with_events(4).await;
    let mut row = store.audit_rows_after(1, 1).await.unwrap().remove(0);
    row.outcome = "failure".into();
    row.hash = row_hash(&row);
    tamper(
        &store,
        &format!(
            "UPDATE audit_events SET outcome = 'failure', hash = '{}' WHERE seq = 2",
            row.hash
        ),
    )
    .await
    .unwrap();
    let report = verify(&store).await.unwrap();
    assert_eq!(report.problems, vec![ChainProblem::BrokenLink { seq: 3 }]);
}

#[tokio::test]
async fn a_removed_row_is_detected() {
    let (_dir, store) = store_with_events(4).await;
    tamper(&store, "DELETE FROM audit_events WHERE seq = 2")
        .await
        .unwrap();
    let report = verify(&store).await.unwrap();
    assert_eq!(
        report.problems,
        vec![
            ChainProblem::Missing {
                expected: 2,
                found: 3
            },
            ChainProblem::BrokenLink { seq: 3 }
        ]
    );
    // Renumbering the rest to hide the gap does not help.
    tamper(
        &store,
        "UPDATE audit_events SET seq = seq - 1 WHERE seq > 2",
    )
    .await
    .unwrap();
    let report = verify(&store).await.unwrap();
    assert!(
        report
            .problems
            .contains(&ChainProblem::BrokenLink { seq: 2 }),
        "{:?}",
        report.problems
    );
    assert!(
        report.problems.contains(&ChainProblem::Altered { seq: 2 }),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn reordered_rows_are_detected() {
    let (_dir, store) = store_with_events(4).await;
    for sql in [
        "UPDATE audit_events SET seq = -1 WHERE seq = 2",
        "UPDATE audit_events SET seq = 2 WHERE seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE seq = -1",
    ] {
        tamper(&store, sql).await.unwrap();
    }
    let report = verify(&store).await.unwrap();
    assert!(
        report.problems.contains(&ChainProblem::Altered { seq: 2 }),
        "{:?}",
        report.problems
    );
    assert!(
        report.problems.contains(&ChainProblem::Altered { seq: 3 }),
        "{:?}",
        report.problems
    );
    assert!(
        report
            .problems
            .contains(&ChainProblem::BrokenLink { seq: 2 }),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn concurrent_writers_in_separate_logs_keep_one_chain() {
    let (_dir, store) = store_with_events(0).await;
    let clock = ManualClock::at_unix(1_700_000_000).shared();
    // Two AuditLogs stand for two processes (server and an admin command) on one store.
    let a = Arc::new(AuditLog::new(store.clone(), clock.clone()));
    let b = Arc::new(AuditLog::new(store.clone(), clock));
    let mut tasks = Vec::new();
    for i in 0..10 {
        for log in [a.clone(), b.clone()] {
            tasks.push(tokio::spawn(async move {
                log.record(AuditEvent::new(
                    AuditKind::ClientAuthFailed,
                    "anonymous",
                    &format!("c{i}"),
                    Outcome::Failure,
                ))
                .await
                .unwrap()
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let report = verify(&store).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.rows, 20);
}

#[test]
fn untrusted_text_is_cleaned() {
    assert_eq!(clean("a\nb\u{7}c"), "a?b?c");
    assert_eq!(clean(&"x".repeat(500)).len(), 128);
    let event = AuditEvent::new(AuditKind::ClientAuthFailed, "x\r\ny", "s", Outcome::Failure)
        .detail("client_id", "evil\n{\"forged\":1}");
    assert_eq!(event.actor, "x??y");
    assert_eq!(event.detail["client_id"], "evil?{\"forged\":1}");
}

#[test]
fn the_hash_is_sha256_over_prev_hash_and_canonical_row() {
    let row = AuditRow::new(
        1,
        2,
        "k".into(),
        "a".into(),
        "s".into(),
        "success".into(),
        "{}".into(),
        GENESIS_HASH.into(),
        String::new(),
    );
    assert_eq!(canonical_row(&row), r#"[1,2,"k","a","s","success","{}"]"#);
    let expected = digest::digest(
        &digest::SHA256,
        format!("{GENESIS_HASH}[1,2,\"k\",\"a\",\"s\",\"success\",\"{{}}\"]").as_bytes(),
    );
    assert_eq!(row_hash(&row), hex::encode(expected.as_ref()));
}

/// Runs `sql` against the audit table behind the log's back.
async fn tamper(store: &Store, sql: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(sql)
        .execute(store.pool())
        .await?
        .rows_affected())
}
