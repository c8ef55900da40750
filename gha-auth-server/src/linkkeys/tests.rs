//! The [`LinkKeyStore`] implementations against real backends: SQLite, PostgreSQL and an OpenBao
//! dev server. Every one must give compare-and-set with exactly one winner.

use std::sync::Arc;
use std::time::Duration;

use gha_auth::vault::{AuthConfig, CredentialSource, VaultConfig, VaultSession};
use gha_auth::{ManualClock, SystemClock};
use gha_auth_testkit::{OpenBao, PgDatabase};

use super::machine::{self, Stale};
use super::model::{LinkKeyState, StoredKey};
use super::store::{LinkKeyStoreError, LocalLinkKeyStore, VaultLinkKeyStore, update};
use super::*;
use crate::atrest::MasterKey;
use crate::store::{CasOutcome, SealedError, Store};

fn local(store: &Store, node: &str) -> LocalLinkKeyStore {
    LocalLinkKeyStore::new(
        store.clone(),
        Arc::new(MasterKey::from_bytes(&[7; 32]).unwrap()),
        ManualClock::at_unix(1_800_000_000).shared(),
        node.to_owned(),
    )
}

fn sample_state(name: &str) -> LinkKeyState {
    let now = ManualClock::at_unix(1_800_000_000).shared();
    let mut state = LinkKeyState::empty(name);
    state.current = Some(StoredKey::generate("rot-1", gha_auth::Clock::now(&*now)).unwrap());
    state
}

/// The contract every implementation keeps.
async fn exercise(store: &dyn LinkKeyStore, other: &dyn LinkKeyStore) {
    assert!(store.load("epicor").await.unwrap().is_none());
    let state = sample_state("epicor");
    let CasOutcome::Saved(v1) = store.save("epicor", None, &state).await.unwrap() else {
        panic!("first save must win");
    };
    assert_eq!(
        store.save("epicor", None, &state).await.unwrap(),
        CasOutcome::Conflict,
        "create-only save of an existing document"
    );
    let loaded = other.load("epicor").await.unwrap().unwrap();
    assert_eq!(loaded.version, v1);
    assert_eq!(
        loaded.state, state,
        "the key itself is retrievable (to install it)"
    );

    // Two writers read the same version: exactly one wins.
    let mut a = loaded.state.clone();
    a.rotations = 10;
    let mut b = loaded.state.clone();
    b.rotations = 20;
    let (ra, rb) = tokio::join!(
        store.save("epicor", Some(v1), &a),
        other.save("epicor", Some(v1), &b)
    );
    let outcomes = [ra.unwrap(), rb.unwrap()];
    let wins = outcomes
        .iter()
        .filter(|o| matches!(o, CasOutcome::Saved(_)))
        .count();
    assert_eq!(wins, 1, "{outcomes:?}");
    let after = store.load("epicor").await.unwrap().unwrap();
    assert!(after.version > v1);
    assert!([10, 20].contains(&after.state.rotations));

    // update(): a guard failure writes nothing; a change is saved with a new version.
    let refused: Result<(), Stale> = Err(Stale("test"));
    let outcome = update(store, "epicor", |_| refused.clone()).await.unwrap();
    assert!(outcome.is_err());
    assert_eq!(
        store.load("epicor").await.unwrap().unwrap().version,
        after.version
    );
    let (_, saved) = update(store, "epicor", |s| {
        machine::request(s, "cli", s.current.as_ref().unwrap().created_at);
        Ok(())
    })
    .await
    .unwrap()
    .unwrap();
    assert!(saved.version > after.version);
    assert!(
        other
            .load("epicor")
            .await
            .unwrap()
            .unwrap()
            .state
            .requested
            .is_some()
    );

    // Concurrent read-modify-writes all land (none lost).
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let fut = async move {
            let target = if i % 2 == 0 { store } else { other };
            update(target, "epicor", |s| {
                s.rotations += 1;
                Ok(())
            })
            .await
        };
        tasks.push(fut);
    }
    let before = store.load("epicor").await.unwrap().unwrap().state.rotations;
    for result in futures_util::future::join_all(tasks).await {
        result.unwrap().unwrap();
    }
    let final_state = store.load("epicor").await.unwrap().unwrap().state;
    assert_eq!(final_state.rotations, before + 8);

    // Names are separate documents.
    assert!(store.load("other").await.unwrap().is_none());
}

#[tokio::test]
async fn local_store_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &format!("sqlite://{}", dir.path().join("l.db").display()),
        4,
    )
    .await
    .unwrap();
    exercise(&local(&store, "a"), &local(&store, "b")).await;
}

#[tokio::test]
async fn local_store_on_postgres_seals_the_document() {
    let db = PgDatabase::create().await.unwrap();
    let store = Store::open(db.url(), 4).await.unwrap();
    exercise(&local(&store, "a"), &local(&store, "b")).await;
    // At rest the key text is nowhere in the row; another master key cannot open it.
    let (_, document, _) = local(&store, "a")
        .documents()
        .raw("epicor")
        .await
        .unwrap()
        .unwrap();
    let state = local(&store, "a")
        .load("epicor")
        .await
        .unwrap()
        .unwrap()
        .state;
    let key = state.current.unwrap().key;
    assert!(!document.contains(key.expose()));
    assert!(!document.contains("ghal_"));
    let wrong = LocalLinkKeyStore::new(
        store.clone(),
        Arc::new(MasterKey::from_bytes(&[8; 32]).unwrap()),
        SystemClock::shared(),
        "c".into(),
    );
    assert!(matches!(
        wrong.load("epicor").await,
        Err(LinkKeyStoreError::Local(SealedError::AtRest(_)))
    ));
    store.close().await;
}

#[tokio::test]
async fn vault_store_on_openbao() {
    let bao = OpenBao::start().await.unwrap();
    bao.enable_kv2("secret").await.unwrap();
    let session = |bao: &OpenBao| {
        let config = VaultConfig::new(
            bao.addr(),
            AuthConfig::token(CredentialSource::value(bao.root_token())),
        )
        .with_request_timeout(Duration::from_secs(10));
        VaultSession::start(&config, SystemClock::shared()).unwrap()
    };
    let (s1, s2) = (session(&bao), session(&bao));
    s1.ready(Duration::from_secs(30)).await.unwrap();
    s2.ready(Duration::from_secs(30)).await.unwrap();
    let a = VaultLinkKeyStore::new(s1.kv2("secret").unwrap(), "gha-auth/link-keys");
    let b = VaultLinkKeyStore::new(s2.kv2("secret").unwrap(), "/gha-auth/link-keys/");
    assert_eq!(a.describe(), "vault (secret/gha-auth/link-keys)");
    exercise(&a, &b).await;
    // A document for another name at this path is refused, not used.
    let kv = s1.kv2("secret").unwrap();
    let misfiled = sample_state("someone-else");
    kv.write("gha-auth/link-keys/misfiled", &misfiled, None)
        .await
        .unwrap();
    assert!(matches!(
        a.load("misfiled").await,
        Err(LinkKeyStoreError::Corrupt { .. })
    ));
}
