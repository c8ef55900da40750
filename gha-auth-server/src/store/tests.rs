use super::*;

/// A document table for the generic checks (the `key_state` table's statements).
const TEST_DOCUMENTS: DocumentTable = DocumentTable {
    sealed_as: "test/",
    select: "SELECT version, document, updated_at FROM key_state WHERE name = $1",
    insert: "INSERT INTO key_state (name, version, document, updated_at, updated_by) \
             VALUES ($1, 1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
    update: "UPDATE key_state SET version = $1, document = $2, updated_at = $3, updated_by = $4 \
             WHERE name = $5 AND version = $6",
};

/// The same checks on every backend.
async fn exercise(store: &Store) {
    store.ping().await.unwrap();

    // sealed documents: compare-and-set, one winner among racers, sealed and bound to the row
    let documents = SealedDocuments::new(
        store.clone(),
        std::sync::Arc::new(crate::atrest::MasterKey::from_bytes(&[7; 32]).unwrap()),
        gha_auth::ManualClock::at_unix(1).shared(),
        &TEST_DOCUMENTS,
    );
    assert!(documents.load("signing-keys").await.unwrap().is_none());
    let save = |expected, plain: &'static str, writer: &'static str| {
        let documents = documents.clone();
        async move {
            documents
                .save("signing-keys", expected, plain.as_bytes(), writer)
                .await
                .unwrap()
        }
    };
    assert_eq!(save(None, "doc1", "n1").await, CasOutcome::Saved(1));
    assert_eq!(save(None, "doc1b", "n2").await, CasOutcome::Conflict);
    assert_eq!(save(Some(1), "doc2", "n1").await, CasOutcome::Saved(2));
    assert_eq!(save(Some(1), "doc2b", "n2").await, CasOutcome::Conflict);
    let loaded = documents.load("signing-keys").await.unwrap().unwrap();
    assert_eq!((loaded.version, loaded.plain.expose()), (2, &b"doc2"[..]));
    let (_, sealed, _) = documents.raw("signing-keys").await.unwrap().unwrap();
    assert!(!sealed.contains("doc2"), "{sealed}");
    let racers = (0..8).map(|i| {
        let documents = documents.clone();
        async move {
            documents
                .save("signing-keys", Some(2), format!("c{i}").as_bytes(), "x")
                .await
        }
    });
    let results = futures_join_all(racers).await;
    let wins = results
        .iter()
        .filter(|r| matches!(r, Ok(CasOutcome::Saved(3))))
        .count();
    assert_eq!(wins, 1, "{results:?}");
    // A sealed document copied to another row does not open there.
    sqlx::query(TEST_DOCUMENTS.insert)
        .bind("pepper")
        .bind(&sealed)
        .bind(1_i64)
        .bind("attacker")
        .execute(store.pool())
        .await
        .unwrap();
    assert!(matches!(
        documents.load("pepper").await,
        Err(SealedError::AtRest(_))
    ));
}

/// The row the exercise left behind (version 3 after the race).
async fn sealed_row(store: &Store) -> (i64, String, i64) {
    let documents = SealedDocuments::new(
        store.clone(),
        std::sync::Arc::new(crate::atrest::MasterKey::from_bytes(&[7; 32]).unwrap()),
        gha_auth::ManualClock::at_unix(1).shared(),
        &TEST_DOCUMENTS,
    );
    documents.raw("signing-keys").await.unwrap().unwrap()
}

async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn sqlite_store_works_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        dir.path().join("sub dir/gha-auth.db").display()
    );
    let store = Store::open(&url, 4).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    exercise(&store).await;
    store.close().await;

    let reopened = Store::open(&url, 4).await.unwrap();
    let (version, _, _) = sealed_row(&reopened).await;
    assert_eq!(version, 3);
    let mode: (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(reopened.pool())
        .await
        .unwrap();
    assert_eq!(mode.0.to_lowercase(), "wal");
}

#[tokio::test]
async fn postgres_store_works() {
    let db = gha_auth_testkit::PgDatabase::create().await.unwrap();
    let store = Store::open(db.url(), 4).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    exercise(&store).await;
    // migrations are idempotent
    let again = Store::open(db.url(), 2).await.unwrap();
    assert_eq!(sealed_row(&again).await.0, 3);
    store.close().await;
    again.close().await;
}

#[test]
fn urls_are_normalized() {
    assert!(matches!(
        normalize_url("mysql://x"),
        Err(StoreError::UnsupportedUrl)
    ));
    assert!(matches!(
        normalize_url("sqlite::memory:"),
        Err(StoreError::UnsupportedUrl)
    ));
    let dir = tempfile::tempdir().unwrap();
    let (backend, url, _) =
        normalize_url(&format!("sqlite:{}/a.db?mode=rw", dir.path().display())).unwrap();
    assert_eq!(backend, Backend::Sqlite);
    assert!(url.ends_with("a.db?mode=rw"), "{url}");
    let (backend, _, file) = normalize_url("postgresql://u@h/db").unwrap();
    assert!(file.is_none());
    assert_eq!(backend, Backend::Postgres);
}
