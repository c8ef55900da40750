use super::store::{NOT_BEFORE_KEPT_SECS, RevocationKind, current_seq, live_entries};
use super::*;

/// The same checks on every backend.
async fn exercise(store: &Store) {
    let seq0 = current_seq(store).await.unwrap();
    assert_eq!(seq0, 0);

    // A jti is revoked once; repeating changes nothing and leaves the sequence alone.
    assert!(revoke_jti(store, "j1", 100, 700).await.unwrap());
    assert!(!revoke_jti(store, "j1", 150, 900).await.unwrap());
    assert_eq!(current_seq(store).await.unwrap(), 1);

    // A not-before only ever moves forward, and only a move bumps the sequence.
    assert!(
        revoke_subject_before(store, "alice", 200, 199)
            .await
            .unwrap()
    );
    assert!(
        !revoke_subject_before(store, "alice", 150, 201)
            .await
            .unwrap()
    );
    assert!(
        !revoke_subject_before(store, "alice", 200, 201)
            .await
            .unwrap()
    );
    assert!(
        revoke_subject_before(store, "alice", 300, 299)
            .await
            .unwrap()
    );
    assert!(revoke_client_before(store, "svc", 250, 249).await.unwrap());
    // The same value as a subject and as a client are separate entries.
    assert!(revoke_client_before(store, "alice", 10, 9).await.unwrap());
    assert_eq!(current_seq(store).await.unwrap(), 5);

    let live = live_entries(store, 400).await.unwrap();
    let summary: Vec<(RevocationKind, &str, i64)> = live
        .iter()
        .map(|r| (r.kind, r.value.as_str(), r.not_before))
        .collect();
    assert_eq!(
        summary,
        // Ordered by when they were recorded.
        vec![
            (RevocationKind::Client, "alice", 10),
            (RevocationKind::Jti, "j1", 100),
            (RevocationKind::Subject, "alice", 300),
            (RevocationKind::Client, "svc", 250),
        ]
    );
    let alice = live
        .iter()
        .find(|r| r.kind == RevocationKind::Subject)
        .unwrap();
    assert_eq!(alice.expires_at, 300 + NOT_BEFORE_KEPT_SECS);

    // Pruning drops what has expired and moves the sequence; nothing to prune moves nothing.
    assert_eq!(prune_expired(store, 701).await.unwrap(), 1);
    assert_eq!(current_seq(store).await.unwrap(), 6);
    assert_eq!(prune_expired(store, 701).await.unwrap(), 0);
    assert_eq!(current_seq(store).await.unwrap(), 6);
    assert!(
        live_entries(store, 701)
            .await
            .unwrap()
            .iter()
            .all(|r| r.value != "j1")
    );

    // Concurrent writers (replicas): every change counted once.
    let writers = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { revoke_jti(&store, &format!("c{i}"), 1_000, 5_000).await })
    });
    for writer in writers {
        assert!(writer.await.unwrap().unwrap());
    }
    assert_eq!(current_seq(store).await.unwrap(), 14);
}

#[tokio::test]
async fn sqlite_revocations() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gha-auth.db").display());
    let store = Store::open(&url, 4).await.unwrap();
    exercise(&store).await;
    store.close().await;
    // The sequence is durable.
    let reopened = Store::open(&url, 2).await.unwrap();
    assert_eq!(current_seq(&reopened).await.unwrap(), 14);
}

#[tokio::test]
async fn postgres_revocations() {
    let db = gha_auth_testkit::PgDatabase::create().await.unwrap();
    let store = Store::open(db.url(), 4).await.unwrap();
    exercise(&store).await;
    store.close().await;
}
