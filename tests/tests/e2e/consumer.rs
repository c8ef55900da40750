//! The consumer side of the broker: the token keeper against the real token endpoint
//! of an in-process authority.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::TimeDelta;
use gha_auth::consumer::{ClientAuth, ConsumerError, TokenKeeper};
use gha_auth::keys::{Algorithm, SigningKey};
use gha_auth::{Clock, ManualClock, SecretString, SystemClock};
use gha_auth_server::config::Config;
use gha_auth_server::testing::{ClientRegistration, GrantType};
use gha_auth_server::{RunningApp, build_app};
use serde_json::Value;

const BROKER_AUDIENCE: &str = "gha-auth-broker";

async fn start_authority(data: &tempfile::TempDir) -> RunningApp {
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = data.path().join("data");
    config.rate_limit.enabled = false;
    build_app(config, SystemClock::shared())
        .await
        .unwrap()
        .spawn()
}

/// Registers a client-credentials client for the broker audience; returns its secret (none for
/// a private_key_jwt client).
async fn register(
    authority: &RunningApp,
    id: &str,
    lifetime: Option<TimeDelta>,
    jwk: Option<Value>,
) -> Option<String> {
    let mut registration = ClientRegistration::new(id)
        .grant(GrantType::ClientCredentials)
        .audience(BROKER_AUDIENCE);
    if let Some(lifetime) = lifetime {
        registration = registration.token_lifetime(lifetime);
    }
    if let Some(jwk) = jwk {
        registration = registration.jwk(jwk);
    }
    let (_, secret) = authority
        .authority()
        .clients()
        .register(registration, "e2e")
        .await
        .unwrap();
    secret.map(|s| s.expose().to_owned())
}

fn claims(token: &SecretString) -> Value {
    let payload = token.expose().split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// Client secret: one request for many concurrent callers; renewed at 2/3 of the token's life
/// (on the keeper's clock); a token refused downstream is replaced on the next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_token_keeper_single_flight_renewal_and_invalidation() {
    let data = tempfile::tempdir().unwrap();
    let authority = start_authority(&data).await;
    let secret = register(&authority, "keeper", Some(TimeDelta::seconds(300)), None)
        .await
        .unwrap();
    let secret_file = data.path().join("client-secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let clock = ManualClock::new(SystemClock.now());
    let keeper = TokenKeeper::builder(
        authority.base_url(),
        ClientAuth::secret_file("keeper", &secret_file),
    )
    .audience(BROKER_AUDIENCE)
    .clock(clock.shared())
    .build()
    .unwrap();

    let calls: Vec<_> = (0..16)
        .map(|_| {
            let keeper = keeper.clone();
            tokio::spawn(async move { keeper.token().await.unwrap() })
        })
        .collect();
    let mut tokens = Vec::new();
    for call in calls {
        tokens.push(call.await.unwrap());
    }
    assert!(tokens.iter().all(|t| t.serial == 1), "one token for all");
    assert_eq!(keeper.status().requests, 1, "single flight");
    let first = Arc::clone(&tokens[0]);
    let first_claims = claims(first.secret());
    assert_eq!(first_claims["sub"], "keeper");
    assert_eq!(first_claims["aud"], BROKER_AUDIENCE);
    assert_eq!(first.expires_at - first.issued_at, TimeDelta::seconds(300));

    // Before 2/3 of the life: the same token, no request.
    clock.advance(TimeDelta::seconds(190));
    assert_eq!(keeper.token().await.unwrap().serial, 1);
    assert_eq!(keeper.status().requests, 1);
    // After: a new token.
    clock.advance(TimeDelta::seconds(20));
    let second = keeper.token().await.unwrap();
    assert_eq!(second.serial, 2);
    assert_ne!(second.secret(), first.secret());
    assert_ne!(claims(second.secret())["jti"], first_claims["jti"]);

    // A resource server refused it: the next call fetches another; invalidating an old one
    // does not drop the current.
    keeper.invalidate(&second);
    let third = keeper.token().await.unwrap();
    assert_eq!(third.serial, 3);
    keeper.invalidate(&first);
    assert_eq!(keeper.token().await.unwrap().serial, 3);

    let status = keeper.status();
    assert_eq!((status.fetched, status.failures), (3, 0), "{status:?}");
    assert!(!format!("{status:?} {keeper:?} {third:?}").contains(&secret));
}

/// A wrong secret is an RFC 6749 refusal that names no secret, backs off, and recovers once the
/// file holds the right secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_token_keeper_refusal_backoff_and_recovery() {
    let data = tempfile::tempdir().unwrap();
    let authority = start_authority(&data).await;
    let secret = register(&authority, "refused", None, None).await.unwrap();
    let secret_file = data.path().join("client-secret");
    std::fs::write(&secret_file, "wrong-secret-value-1234").unwrap();
    let clock = ManualClock::new(SystemClock.now());
    let keeper = TokenKeeper::builder(
        authority.base_url(),
        ClientAuth::secret_file("refused", &secret_file),
    )
    .audience(BROKER_AUDIENCE)
    .clock(clock.shared())
    .backoff(Duration::from_secs(2), Duration::from_secs(10))
    .build()
    .unwrap();

    let error = keeper.token().await.unwrap_err();
    match &error {
        ConsumerError::TokenRefused { status, code, .. } => {
            assert_eq!((*status, code.as_str()), (401, "invalid_client"), "{error}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!error.to_string().contains("wrong-secret-value"));
    assert_eq!(keeper.token().await.unwrap_err().kind(), "backing_off");
    assert_eq!(keeper.status().requests, 1);

    // The provisioner writes the right secret; after the backoff the next call works.
    std::fs::write(&secret_file, &secret).unwrap();
    clock.advance(TimeDelta::seconds(3));
    let token = keeper.token().await.unwrap();
    assert_eq!(claims(token.secret())["sub"], "refused");
    assert_eq!(keeper.status().consecutive_failures, 0);
}

/// private_key_jwt: the keeper signs an RFC 7523 assertion with the client's key (read from its
/// PEM file) and gets a token; another key is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_token_keeper_private_key_jwt() {
    let data = tempfile::tempdir().unwrap();
    let authority = start_authority(&data).await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let jwk = serde_json::to_value(key.public_jwk()).unwrap();
    assert!(
        register(&authority, "signer", None, Some(jwk))
            .await
            .is_none()
    );
    let key_file = data.path().join("client-key.pem");
    std::fs::write(&key_file, key.to_pkcs8_pem().expose()).unwrap();
    let keeper = TokenKeeper::builder(
        authority.base_url(),
        ClientAuth::private_key_file("signer", &key_file),
    )
    .audience(BROKER_AUDIENCE)
    .assertion_audience(authority.authority().token_endpoint())
    .build()
    .unwrap();
    let token = keeper.token().await.unwrap();
    assert_eq!(claims(token.secret())["sub"], "signer");

    let other = SigningKey::generate(Algorithm::ES256).unwrap();
    let wrong = TokenKeeper::builder(
        authority.base_url(),
        ClientAuth::private_key("signer", other),
    )
    .audience(BROKER_AUDIENCE)
    .assertion_audience(authority.authority().token_endpoint())
    .build()
    .unwrap();
    let error = wrong.token().await.unwrap_err();
    assert_eq!(error.kind(), "token_refused", "{error}");
}
