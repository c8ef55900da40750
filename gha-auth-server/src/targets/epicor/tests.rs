//! The Epicor client and target against the fake Epicor of `gha-auth-testkit` (the one fake the
//! project allows) and, for credentials, a real OpenBao.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use gha_auth::vault::{AuthConfig, CredentialSource, VaultConfig, VaultSession};
use gha_auth::{SecretString, SystemClock};
use gha_auth_testkit::{EpicorMode, FakeEpicor, FakeEpicorConfig, OpenBao};

use crate::settings::Duration;
use crate::targets::{
    EpicorAuthMode, EpicorTargetConfig, LinkKeyTarget, TargetConfig, TargetDeps, TargetError,
    UserCodeField, build_target,
};

const KEY_1: &str = "ghal_first-key-for-tests";
const KEY_2: &str = "ghal_second-key-for-tests";

fn config(epicor: &FakeEpicor, credentials_file: PathBuf) -> EpicorTargetConfig {
    EpicorTargetConfig {
        base_url: epicor.base_url(),
        company: epicor.config().company.clone(),
        code_type_id: "GHA".into(),
        code_id: "LINKKEY".into(),
        key_field: UserCodeField::LongDesc,
        auth: EpicorAuthMode::Basic,
        credentials_vault_mount: "secret".into(),
        credentials_vault_path: None,
        credentials_file: Some(credentials_file),
        ca_file: None,
        connect_timeout: Duration::seconds(5),
        request_timeout: Duration::seconds(10),
        max_attempts: 3,
        retry_backoff: Duration::seconds(0),
    }
}

fn credentials_file(dir: &tempfile::TempDir, epicor: &FakeEpicor, password: &str) -> PathBuf {
    let path = dir.path().join("epicor.toml");
    let c = epicor.config();
    std::fs::write(
        &path,
        format!(
            "username = \"{}\"\npassword = \"{password}\"\napi_key = \"{}\"\n",
            c.username, c.api_key
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

async fn target(config: EpicorTargetConfig) -> Arc<dyn LinkKeyTarget> {
    build_target(
        &TargetConfig::Epicor(config),
        TargetDeps::new(SystemClock::shared()),
    )
    .await
    .unwrap()
}

async fn fake() -> FakeEpicor {
    FakeEpicor::start(FakeEpicorConfig::default())
        .await
        .unwrap()
}

fn assert_no_secrets(text: &str, epicor: &FakeEpicor) {
    for secret in [
        KEY_1,
        KEY_2,
        epicor.config().password.as_str(),
        epicor.config().api_key.as_str(),
    ] {
        assert!(!text.contains(secret), "secret in {text:?}");
    }
}

#[tokio::test]
async fn install_creates_then_updates_the_user_code_and_reads_it_back() {
    let epicor = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let target = target(config(
        &epicor,
        credentials_file(&dir, &epicor, &epicor.config().password),
    ))
    .await;

    target.install(&SecretString::from(KEY_1)).await.unwrap();
    assert_eq!(epicor.user_code("GHA", "LINKKEY").as_deref(), Some(KEY_1));
    assert_eq!(target.read_back().await.unwrap().expose(), KEY_1);

    target.install(&SecretString::from(KEY_2)).await.unwrap();
    assert_eq!(epicor.user_code("GHA", "LINKKEY").as_deref(), Some(KEY_2));
    assert_eq!(epicor.revision("GHA", "LINKKEY"), 2);

    // Idempotent: the same key again reads but does not write.
    let updates = epicor.calls("UpdateExt");
    target.install(&SecretString::from(KEY_2)).await.unwrap();
    assert_eq!(epicor.calls("UpdateExt"), updates);
    assert_eq!(epicor.revision("GHA", "LINKKEY"), 2);

    let described = target.describe();
    assert!(described.contains("GHA/LINKKEY.LongDesc"), "{described}");
    assert_no_secrets(&described, &epicor);
    assert_no_secrets(&format!("{target:?}"), &epicor);
}

#[tokio::test]
async fn code_desc_column_is_supported() {
    let epicor = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(
        &epicor,
        credentials_file(&dir, &epicor, &epicor.config().password),
    );
    config.key_field = UserCodeField::CodeDesc;
    let target = target(config).await;
    target.install(&SecretString::from(KEY_1)).await.unwrap();
    assert_eq!(
        epicor
            .user_code_column("GHA", "LINKKEY", "CodeDesc")
            .as_deref(),
        Some(KEY_1)
    );
    assert_eq!(target.read_back().await.unwrap().expose(), KEY_1);
}

#[tokio::test]
async fn wrong_password_is_a_401_without_retry_or_secrets() {
    let epicor = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let target = target(config(
        &epicor,
        credentials_file(&dir, &epicor, "wrong-password"),
    ))
    .await;
    let error = target
        .install(&SecretString::from(KEY_1))
        .await
        .unwrap_err();
    let TargetError::Rejected { status, .. } = &error else {
        panic!("not a rejection: {error}");
    };
    assert_eq!(*status, 401);
    assert!(!error.is_transient());
    assert_eq!(epicor.calls("GetByID"), 1, "4xx is never retried");
    assert_no_secrets(&error.to_string(), &epicor);
    assert_eq!(epicor.user_code("GHA", "LINKKEY"), None);
}

#[tokio::test]
async fn wrong_api_key_is_refused() {
    let epicor = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("epicor.toml");
    std::fs::write(
        &path,
        format!(
            "username = \"{}\"\npassword = \"{}\"\napi_key = \"not-the-key\"\n",
            epicor.config().username,
            epicor.config().password
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let target = target(config(&epicor, path)).await;
    let error = target.read_back().await.unwrap_err();
    assert!(
        matches!(&error, TargetError::Rejected { status: 401, message } if message.contains("API Key")),
        "{error}"
    );
    assert_eq!(epicor.refused_auth(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let epicor = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let target = target(config(
        &epicor,
        credentials_file(&dir, &epicor, &epicor.config().password),
    ))
    .await;
    epicor.fail_next(2);
    target.install(&SecretString::from(KEY_1)).await.unwrap();
    // GetByID: two 503s then the answer; UpdateExt: once.
    assert_eq!(epicor.calls("GetByID"), 3);
    assert_eq!(epicor.calls("UpdateExt"), 1);
    assert_eq!(epicor.user_code("GHA", "LINKKEY").as_deref(), Some(KEY_1));
}

#[tokio::test]
async fn epicor_down_gives_up_after_max_attempts_and_keeps_the_key() {
    let epicor = fake().await;
    epicor.set_user_code("GHA", "LINKKEY", KEY_1);
    let dir = tempfile::tempdir().unwrap();
    let target = target(config(
        &epicor,
        credentials_file(&dir, &epicor, &epicor.config().password),
    ))
    .await;
    epicor.set_mode(EpicorMode::Down);
    let error = target
        .install(&SecretString::from(KEY_2))
        .await
        .unwrap_err();
    assert!(
        matches!(error, TargetError::Rejected { status: 503, .. }),
        "{error}"
    );
    assert!(error.is_transient());
    assert_eq!(epicor.calls("GetByID"), 3, "max_attempts = 3");
    epicor.set_mode(EpicorMode::Normal);
    assert_eq!(epicor.user_code("GHA", "LINKKEY").as_deref(), Some(KEY_1));
}

#[tokio::test]
async fn rejected_updates_are_not_retried() {
    let epicor = fake().await;
    epicor.set_user_code("GHA", "LINKKEY", KEY_1);
    let dir = tempfile::tempdir().unwrap();
    let target = target(config(
        &epicor,
        credentials_file(&dir, &epicor, &epicor.config().password),
    ))
    .await;

    epicor.set_mode(EpicorMode::RejectUpdates);
    let error = target
        .install(&SecretString::from(KEY_2))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, TargetError::Rejected { status: 400, message } if message.contains("method directive")),
        "{error}"
    );
    assert_eq!(epicor.calls("UpdateExt"), 1);

    epicor.set_mode(EpicorMode::RowErrors);
    let error = target
        .install(&SecretString::from(KEY_2))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, TargetError::Rejected { message, .. } if message.contains("Field security")),
        "{error}"
    );
    assert_no_secrets(&error.to_string(), &epicor);
    assert_eq!(epicor.user_code("GHA", "LINKKEY").as_deref(), Some(KEY_1));
}

#[tokio::test]
async fn a_swallowed_update_shows_as_a_read_back_mismatch() {
    let epicor = fake().await;
    epicor.set_user_code("GHA", "LINKKEY", KEY_1);
    let dir = tempfile::tempdir().unwrap();
    let target = target(config(
        &epicor,
        credentials_file(&dir, &epicor, &epicor.config().password),
    ))
    .await;
    epicor.set_mode(EpicorMode::SwallowUpdates);
    target.install(&SecretString::from(KEY_2)).await.unwrap();
    let held = target.read_back().await.unwrap();
    assert_ne!(held.expose(), KEY_2, "the test step must catch this");
    assert_eq!(held.expose(), KEY_1);
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let epicor = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(
        &epicor,
        credentials_file(&dir, &epicor, &epicor.config().password),
    );
    config.request_timeout = Duration::seconds(1);
    config.max_attempts = 2;
    let target = target(config).await;
    epicor.set_delay(StdDuration::from_secs(3));
    let error = target.read_back().await.unwrap_err();
    assert!(matches!(error, TargetError::Unreachable(_)), "{error}");
    assert!(error.to_string().contains("timed out"), "{error}");
    // Both attempts reached the fake (the timeout is the client's).
    assert!(epicor.calls("GetByID") >= 1);
}

#[tokio::test]
async fn unknown_code_type_is_a_clear_rejection() {
    let epicor = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(
        &epicor,
        credentials_file(&dir, &epicor, &epicor.config().password),
    );
    config.code_type_id = "NOPE".into();
    let target = target(config).await;
    let error = target.read_back().await.unwrap_err();
    assert!(
        matches!(&error, TargetError::Rejected { status: 404, message } if message.contains("Record not found")),
        "{error}"
    );
}

#[tokio::test]
async fn token_auth_gets_a_token_reuses_it_and_renews_it_after_a_restart() {
    let epicor = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(
        &epicor,
        credentials_file(&dir, &epicor, &epicor.config().password),
    );
    config.auth = EpicorAuthMode::Token;
    let target = target(config).await;
    target.install(&SecretString::from(KEY_1)).await.unwrap();
    target.read_back().await.unwrap();
    assert_eq!(epicor.calls("TokenResource.svc"), 1, "token cached");

    epicor.revoke_tokens();
    assert_eq!(target.read_back().await.unwrap().expose(), KEY_1);
    assert_eq!(epicor.calls("TokenResource.svc"), 2, "401 → one new token");
}

#[tokio::test]
async fn credentials_come_from_vault() {
    let epicor = fake().await;
    let bao = OpenBao::start().await.unwrap();
    let root = bao.client().unwrap();
    let c = epicor.config();
    vaultrs::kv2::set(
        &root,
        "secret",
        "integrations/epicor",
        &serde_json::json!({"username": c.username, "password": c.password, "api_key": c.api_key}),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, bao.root_token()).unwrap();
    let session = VaultSession::start(
        &VaultConfig::new(
            bao.addr(),
            AuthConfig::token(CredentialSource::file(&token_file)),
        ),
        SystemClock::shared(),
    )
    .unwrap();
    session.ready(StdDuration::from_secs(30)).await.unwrap();

    let mut config = config(&epicor, PathBuf::new());
    config.credentials_file = None;
    config.credentials_vault_path = Some("integrations/epicor".into());
    let target = build_target(
        &TargetConfig::Epicor(config.clone()),
        TargetDeps::new(SystemClock::shared()).with_vault(session),
    )
    .await
    .unwrap();
    target.install(&SecretString::from(KEY_1)).await.unwrap();
    assert_eq!(epicor.user_code("GHA", "LINKKEY").as_deref(), Some(KEY_1));

    // No Vault configured: a configuration error at build time, not at the first rotation.
    let error = build_target(
        &TargetConfig::Epicor(config),
        TargetDeps::new(SystemClock::shared()),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, TargetError::Config(_)), "{error}");
}

#[tokio::test]
async fn plain_http_off_loopback_is_refused_at_build() {
    let epicor = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&epicor, credentials_file(&dir, &epicor, "x"));
    config.base_url = "http://erp.example.com/EpicorERP".into();
    let error = build_target(
        &TargetConfig::Epicor(config),
        TargetDeps::new(SystemClock::shared()),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, TargetError::Config(_)), "{error}");
}
