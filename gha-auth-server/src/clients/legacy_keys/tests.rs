use gha_auth::ManualClock;

use super::*;

const NOW: i64 = 1_767_225_600;

async fn open() -> (tempfile::TempDir, Store, AuditLog) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gha-auth.db").display());
    let store = Store::open(&url, 2).await.unwrap();
    let audit = AuditLog::new(store.clone(), ManualClock::at_unix(NOW).shared());
    (dir, store, audit)
}

fn spec() -> NewLegacyKey {
    let mut spec = NewLegacyKey::new("epicor-bridge", "epicor");
    spec.tenant = Some("acme".into());
    spec.scopes = vec!["jobs:read".into(), "jobs:epicor-update".into()];
    spec
}

#[tokio::test]
async fn imported_keys_are_found_by_keyed_hash_only() {
    let (_dir, store, audit) = open().await;
    let pepper = Pepper::new(vec![7; 32]).unwrap();
    let key = SecretString::new("old-static-key-0123456789".to_owned());
    let added = add(&store, &pepper, &audit, NOW, spec(), &key, "test")
        .await
        .unwrap();
    assert!(added.id.starts_with("lk_"));

    let found = find(&store, &pepper, &key).await.unwrap().unwrap();
    assert_eq!(found, added);
    let wrong = SecretString::new("old-static-key-0123456780".to_owned());
    assert!(find(&store, &pepper, &wrong).await.unwrap().is_none());
    // Another pepper (another deployment) cannot use the stored hash.
    let other = Pepper::new(vec![8; 32]).unwrap();
    assert!(find(&store, &other, &key).await.unwrap().is_none());

    // Nothing stored is the key.
    let stored: Vec<(String,)> = sqlx::query_as("SELECT key_hash FROM legacy_api_keys")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].0.contains("static"));
    assert_eq!(
        stored[0].0,
        pepper.hash_bytes(key.expose().as_bytes()).to_hex()
    );

    // The same key twice is refused; so is the same id.
    assert!(matches!(
        add(&store, &pepper, &audit, NOW, spec(), &key, "test").await,
        Err(LegacyKeyError::AlreadyExists)
    ));
    let mut same_id = spec();
    same_id.id = Some(added.id.clone());
    let another = SecretString::new("another-static-key-0123456789".to_owned());
    assert!(matches!(
        add(&store, &pepper, &audit, NOW, same_id, &another, "test").await,
        Err(LegacyKeyError::AlreadyExists)
    ));

    assert_eq!(list(&store, Some("epicor-bridge")).await.unwrap().len(), 1);
    assert!(list(&store, Some("nobody")).await.unwrap().is_empty());

    revoke(&store, &audit, NOW + 5, &added.id, "test")
        .await
        .unwrap();
    assert!(find(&store, &pepper, &key).await.unwrap().is_none());
    assert!(matches!(
        revoke(&store, &audit, NOW + 6, &added.id, "test").await,
        Err(LegacyKeyError::NotFound(_))
    ));
    assert_eq!(
        list(&store, None).await.unwrap()[0].revoked_at,
        Some(NOW + 5)
    );

    let kinds: Vec<String> = store
        .audit_rows_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(
        kinds,
        ["admin.legacy_key_imported", "admin.legacy_key_revoked"]
    );
}

#[tokio::test]
async fn bad_imports_are_refused_without_echoing_the_key() {
    let (_dir, store, audit) = open().await;
    let pepper = Pepper::new(vec![7; 32]).unwrap();
    let good = SecretString::new("old-static-key-0123456789".to_owned());
    for bad_key in ["short", "has a space in it 1234", "tab\tin-it-0123456789"] {
        let key = SecretString::new(bad_key.to_owned());
        let error = add(&store, &pepper, &audit, NOW, spec(), &key, "test")
            .await
            .unwrap_err();
        assert!(!error.to_string().contains(bad_key), "{error}");
    }
    let mut no_scope = spec();
    no_scope.scopes.clear();
    let mut bad_client = spec();
    bad_client.client_id = "bad client".into();
    let mut bad_subject = spec();
    bad_subject.subject = String::new();
    let mut bad_tenant = spec();
    bad_tenant.tenant = Some("a/b".into());
    for spec in [no_scope, bad_client, bad_subject, bad_tenant] {
        assert!(matches!(
            add(&store, &pepper, &audit, NOW, spec, &good, "test").await,
            Err(LegacyKeyError::Invalid(_))
        ));
    }
    assert!(list(&store, None).await.unwrap().is_empty());
}
