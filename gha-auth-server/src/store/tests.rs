use super::*;

fn new_client(id: &str, now: i64) -> NewClientRow {
    NewClientRow {
        id: id.to_owned(),
        tenant: Some("acme".to_owned()),
        grants: vec!["client_credentials".to_owned()],
        scopes: vec!["orders:read".to_owned(), "orders:write".to_owned()],
        audiences: vec!["mfs.api".to_owned()],
        token_lifetime_secs: Some(300),
        first_party: false,
        public_client: false,
        jwk: None,
        secret_hash: Some("aa".repeat(32)),
        now,
    }
}

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

    // clients
    store
        .insert_client(&new_client("svc-a", 100))
        .await
        .unwrap();
    assert!(matches!(
        store.insert_client(&new_client("svc-a", 100)).await,
        Err(StoreError::AlreadyExists(_))
    ));
    store
        .insert_client(&new_client("svc-b", 100))
        .await
        .unwrap();
    let row = store.client("svc-a").await.unwrap().unwrap();
    assert_eq!(row.scopes, vec!["orders:read", "orders:write"]);
    assert_eq!(row.tenant.as_deref(), Some("acme"));
    assert_eq!(row.token_lifetime_secs, Some(300));
    assert!(!row.disabled && !row.public_client && !row.first_party);
    assert_eq!(store.clients().await.unwrap().len(), 2);
    assert!(store.client("nope").await.unwrap().is_none());

    store
        .rotate_client_secret("svc-a", &SecretRotation::new("bb".repeat(32), 500, 200))
        .await
        .unwrap();
    let row = store.client("svc-a").await.unwrap().unwrap();
    assert_eq!(row.secret_hash, Some("bb".repeat(32)));
    assert_eq!(row.prev_secret_hash, Some("aa".repeat(32)));
    assert_eq!(row.prev_secret_expires_at, Some(500));
    assert!(matches!(
        store
            .rotate_client_secret("nope", &SecretRotation::new("cc".repeat(32), 1, 1))
            .await,
        Err(StoreError::NotFound(_))
    ));
    store.set_client_disabled("svc-a", true, 300).await.unwrap();
    assert!(store.client("svc-a").await.unwrap().unwrap().disabled);

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

    // jti replay
    use crate::clients::{purge_assertion_jtis, record_assertion_jti};
    assert!(
        record_assertion_jti(store, "svc-a", "j1", 50)
            .await
            .unwrap()
    );
    assert!(
        !record_assertion_jti(store, "svc-a", "j1", 50)
            .await
            .unwrap()
    );
    assert!(
        record_assertion_jti(store, "svc-b", "j1", 50)
            .await
            .unwrap()
    );
    assert_eq!(purge_assertion_jtis(store, 60).await.unwrap(), 2);
    assert!(
        record_assertion_jti(store, "svc-a", "j1", 70)
            .await
            .unwrap()
    );

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
    assert_eq!(store.audit_rows_after(0, 10).await.unwrap(), vec![row]);
    assert!(store.audit_rows_after(1, 10).await.unwrap().is_empty());
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
    assert_eq!(reopened.clients().await.unwrap().len(), 2);
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
    assert_eq!(again.clients().await.unwrap().len(), 2);
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
