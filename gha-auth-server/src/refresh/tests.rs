//! The rotation against a real in-process authority (SQLite in a temp dir, manual clock): the
//! write order, racing requests and a disabled user. The end-to-end tests in `tests/` cover the
//! grant over HTTP on SQLite and PostgreSQL.

use gha_auth::ManualClock;
use gha_auth::apikey::ApiKey;
use gha_auth::secret::SecretString;

use super::{
    Families, NewFamily, RefreshError, hash_of, insert_token, rotate, start_family, successor_of,
};
use crate::config::Config;
use crate::services::Services;
use crate::users::Users;

const START: i64 = 1_767_225_600;
const CLIENT: &str = "mobile";

struct Fixture {
    state: Families,
    user_id: String,
    _dir: tempfile::TempDir,
}

#[allow(clippy::field_reassign_with_default)] // Config is #[non_exhaustive]: set what the test needs.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.path().join("data");
    // The lowest cost the configuration accepts: these tests are about refresh tokens.
    config.users.argon2_memory_kib = 1024;
    config.users.argon2_iterations = 1;
    let clock = ManualClock::at_unix(START);
    let services = Services::open(&config, clock.shared(), "test")
        .await
        .unwrap();
    let users = Users::new(
        services.store.clone(),
        services.audit.clone(),
        clock.shared(),
        config.users.clone(),
    )
    .await
    .unwrap();
    let state = Families::new(
        services.store.clone(),
        services.clients.pepper_arc(),
        services.audit.clone(),
        clock.shared(),
        config.refresh.clone(),
    );
    let password = SecretString::from("correct horse battery staple");
    let user = users
        .add("", "alice", &["technician".to_owned()], &password, "test")
        .await
        .unwrap();
    Fixture {
        state,
        user_id: user.id,
        _dir: dir,
    }
}

impl Fixture {
    async fn login(&self) -> ApiKey {
        start_family(
            &self.state,
            NewFamily {
                client_id: CLIENT.to_owned(),
                user_id: self.user_id.clone(),
                tenant: None,
                scopes: vec!["jobs:read".to_owned()],
                audiences: vec!["field-service".to_owned()],
            },
        )
        .await
        .unwrap()
    }

    async fn family_id(&self, token: &ApiKey) -> String {
        super::lookup(&self.state, token)
            .await
            .unwrap()
            .expect("stored")
            .1
            .id
    }
}

#[tokio::test]
async fn a_successor_stored_by_a_request_that_died_is_the_one_the_next_request_hands_out() {
    let f = fixture().await;
    let first = f.login().await;
    let family = f.family_id(&first).await;
    // A request stored the successor, then died before its compare-and-set.
    let successor = successor_of(&f.state, &family, &first);
    insert_token(
        f.state.store.pool(),
        &hash_of(&f.state, &successor),
        &family,
        Some(&hash_of(&f.state, &first)),
        START,
        START + 3600,
    )
    .await
    .unwrap();

    let rotated = rotate(&f.state, &first, CLIENT).await.unwrap();
    assert!(!rotated.repeated, "the first complete request wins");
    assert_eq!(rotated.successor.expose(), successor.expose());
    assert_eq!(rotated.user.id, f.user_id);
    assert_eq!(rotated.user.roles, ["technician"]);
    // And the successor works: the chain goes on.
    let next = rotate(&f.state, &rotated.successor, CLIENT).await.unwrap();
    assert_ne!(next.successor.expose(), successor.expose());
}

#[tokio::test]
async fn racing_requests_for_one_token_get_one_successor_and_one_winner() {
    let f = fixture().await;
    let first = f.login().await;
    let results =
        futures_util::future::join_all((0..8).map(|_| rotate(&f.state, &first, CLIENT))).await;
    let rotated: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(rotated.iter().filter(|r| !r.repeated).count(), 1);
    let successor = rotated[0].successor.expose();
    assert!(rotated.iter().all(|r| r.successor.expose() == successor));
}

#[tokio::test]
async fn a_reused_token_revokes_its_family() {
    let f = fixture().await;
    let first = f.login().await;
    let second = rotate(&f.state, &first, CLIENT).await.unwrap().successor;
    rotate(&f.state, &second, CLIENT).await.unwrap();
    // The first token again: its successor has been used, so this is reuse.
    let err = rotate(&f.state, &first, CLIENT).await.unwrap_err();
    assert!(matches!(err, RefreshError::Reused { .. }), "{err:?}");
    let (_, family) = super::lookup(&f.state, &second).await.unwrap().unwrap();
    assert_eq!(
        family.revoked_reason.as_deref(),
        Some("refresh_token_reused")
    );
}

#[tokio::test]
async fn another_clients_token_is_refused_without_revoking_the_family() {
    let f = fixture().await;
    let first = f.login().await;
    let err = rotate(&f.state, &first, "other-app").await.unwrap_err();
    assert!(
        matches!(err, RefreshError::Invalid("other_client")),
        "{err:?}"
    );
    assert!(rotate(&f.state, &first, CLIENT).await.is_ok());
}

#[tokio::test]
async fn a_disabled_user_ends_the_family_before_any_rotation() {
    let f = fixture().await;
    let first = f.login().await;
    // Disabled in the store directly (as another process would), so no revocation ran yet.
    sqlx::query("UPDATE users SET disabled = 1 WHERE id = $1")
        .bind(&f.user_id)
        .execute(f.state.store.pool())
        .await
        .unwrap();
    let err = rotate(&f.state, &first, CLIENT).await.unwrap_err();
    assert!(
        matches!(err, RefreshError::Invalid("user_disabled")),
        "{err:?}"
    );
    let (token, family) = super::lookup(&f.state, &first).await.unwrap().unwrap();
    assert_eq!(token.used_at, None, "nothing was rotated");
    assert_eq!(family.revoked_reason.as_deref(), Some("user_disabled"));
}
