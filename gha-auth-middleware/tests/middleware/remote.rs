//! The remote JWKS against a real HTTP server: rotation without restart, a flood of unknown
//! `kid`s, and the authority going down.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use gha_auth::keys::{Algorithm, JwkSet, SigningKey};
use gha_auth_middleware::{AuthErrorKind, AuthLayer, HealthStatus, RefreshPolicy, RemoteJwks};
use serde_json::json;

use crate::common::*;

fn policy() -> RefreshPolicy {
    RefreshPolicy {
        min_interval: Duration::from_secs(30),
        max_interval: Duration::from_secs(3600),
        default_interval: Duration::from_secs(300),
        max_stale: Duration::from_secs(600),
        retry_initial: Duration::from_secs(1),
    }
}

async fn remote_layer(authority: &Authority, server: &JwksServer) -> AuthLayer {
    let jwks = RemoteJwks::builder(server.url())
        .clock(authority.clock.shared())
        .refresh_policy(policy())
        .unknown_kid_cooldown(Duration::from_secs(30))
        .build()
        .unwrap();
    let layer = AuthLayer::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .key_source(jwks)
        .clock(authority.clock.shared())
        .build()
        .unwrap();
    assert!(
        layer.wait_ready(Duration::from_secs(5)).await,
        "initial JWKS fetch"
    );
    layer
}

fn token_signed_by(authority: &Authority, key: &SigningKey) -> String {
    gha_auth::jwt::issue(key, &authority.claims()).unwrap()
}

#[tokio::test]
async fn a_just_activated_key_is_accepted_after_the_scheduled_refresh() {
    let authority = Authority::new();
    let server = JwksServer::start(&authority.jwks(), 300).await;
    let layer = remote_layer(&authority, &server).await;
    let router = protected(layer.clone());
    call(&router, bearer(&authority.token())).await.assert_ok();
    assert_eq!(server.fetches(), 1);

    // The authority publishes its next key (one cache lifetime before it signs).
    let next = SigningKey::generate(Algorithm::ES256).unwrap();
    let both = JwkSet {
        keys: vec![
            authority.key.public_jwk().clone(),
            next.public_jwk().clone(),
        ],
    };
    server.set(&both);

    // The background refresh runs on the clock: advance past max-age and it fetches.
    authority.clock.advance(TimeDelta::seconds(301));
    eventually("scheduled refresh", || server.fetches() == 2).await;
    eventually("new key installed", || jwks_keys(&layer) == Some(2)).await;

    // The next key activates: its tokens are accepted, the old key's too, no restart.
    call(&router, bearer(&token_signed_by(&authority, &next)))
        .await
        .assert_ok();
    call(&router, bearer(&authority.token())).await.assert_ok();
    assert_eq!(
        server.fetches(),
        2,
        "no extra fetch for a key already known"
    );
}

#[tokio::test]
async fn a_key_activated_early_is_fetched_on_first_sight() {
    let authority = Authority::new();
    let server = JwksServer::start(&authority.jwks(), 3600).await;
    let router = protected(remote_layer(&authority, &server).await);

    let next = SigningKey::generate(Algorithm::EdDSA).unwrap();
    server.set(&JwkSet {
        keys: vec![
            authority.key.public_jwk().clone(),
            next.public_jwk().clone(),
        ],
    });
    // Past the cooldown but long before max-age: the unknown kid triggers one refetch, and the
    // very request that carried it is accepted.
    authority.clock.advance(TimeDelta::seconds(31));
    call(&router, bearer(&token_signed_by(&authority, &next)))
        .await
        .assert_ok();
    assert_eq!(server.fetches(), 2);
}

#[tokio::test]
async fn a_removed_key_stops_working_even_for_cached_tokens() {
    let authority = Authority::new();
    let server = JwksServer::start(&authority.jwks(), 60).await;
    let layer = remote_layer(&authority, &server).await;
    let router = protected(layer);
    let token = authority.token();
    call(&router, bearer(&token)).await.assert_ok(); // cached

    // Emergency rotation: the authority drops the key at once.
    let replacement = SigningKey::generate(Algorithm::ES256).unwrap();
    server.set(&JwkSet {
        keys: vec![replacement.public_jwk().clone()],
    });
    authority.clock.advance(TimeDelta::seconds(61));
    eventually("refresh", || server.fetches() == 2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    call(&router, bearer(&token)).await.assert_invalid_token();
    call(&router, bearer(&token_signed_by(&authority, &replacement)))
        .await
        .assert_ok();
}

fn random_kid(i: usize) -> String {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
    format!("{}{i}", hex_lower(&bytes))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn flood(router: &axum::Router, authority: &Authority, n: usize) {
    let payload = serde_json::to_value(authority.claims()).unwrap();
    let requests = (0..n).map(|i| {
        let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": random_kid(i) });
        let token = forge(&header, &payload, Some(&authority.key), None);
        let router = router.clone();
        tokio::spawn(async move { call(&router, bearer(&token)).await })
    });
    for answer in futures_util::future::join_all(requests).await {
        answer.unwrap().assert_invalid_token();
    }
}

#[tokio::test]
async fn a_flood_of_random_kids_causes_at_most_one_fetch_per_cooldown() {
    let authority = Authority::new();
    let server = JwksServer::start(&authority.jwks(), 3600).await;
    let router = protected(remote_layer(&authority, &server).await);
    assert_eq!(server.fetches(), 1);

    // Within the cooldown of the initial fetch: no fetch at all.
    flood(&router, &authority, 300).await;
    assert_eq!(server.fetches(), 1);

    // Each time the cooldown has passed: exactly one fetch, however many requests.
    for round in 1..=3 {
        authority.clock.advance(TimeDelta::seconds(30));
        flood(&router, &authority, 300).await;
        assert_eq!(server.fetches(), 1 + round, "round {round}");
    }
    // Valid tokens are unaffected throughout.
    call(&router, bearer(&authority.token())).await.assert_ok();
}

#[tokio::test]
async fn valid_tokens_are_accepted_while_the_authority_is_down_within_the_stale_window() {
    let authority = Authority::new();
    let mut server = JwksServer::start(&authority.jwks(), 60).await;
    let layer = remote_layer(&authority, &server).await;
    let router = protected(layer.clone());
    call(&router, bearer(&authority.token())).await.assert_ok();

    server.stop().await;
    // Freshness (60 s) ends; the refresh fails; the keys stay in use for max_stale (600 s).
    authority.clock.advance(TimeDelta::seconds(61));
    eventually("a failed refresh", || {
        layer
            .key_source()
            .unwrap()
            .health(authority.clock.now())
            .details
            .contains_key("consecutive_failures")
    })
    .await;
    let health = layer.key_source().unwrap().health(authority.clock.now());
    assert_eq!(health.status, HealthStatus::Degraded);

    // Tokens never seen before still verify against the stale keys, for the whole window.
    for _ in 0..5 {
        call(&router, bearer(&authority.token())).await.assert_ok();
        authority.clock.advance(TimeDelta::seconds(100));
    }
    // 61 + 500 s elapsed; the window ends at 60 + 600 s.
    call(&router, bearer(&authority.token())).await.assert_ok();

    // Past the window: no usable key. A 401 with the reason logged, never a 5xx.
    authority.clock.advance(TimeDelta::seconds(100));
    let answer = call(&router, bearer(&authority.token())).await;
    answer.assert_invalid_token();
    assert_eq!(answer.error.unwrap().kind(), AuthErrorKind::KeysUnavailable);
    let health = layer.key_source().unwrap().health(authority.clock.now());
    assert_eq!(health.status, HealthStatus::Unhealthy);
}

#[tokio::test]
async fn an_authority_that_never_answered_means_401_not_500() {
    let authority = Authority::new();
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    drop(listener);
    let jwks = RemoteJwks::builder(url)
        .clock(authority.clock.shared())
        .build()
        .unwrap();
    let layer = AuthLayer::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .key_source(jwks)
        .clock(authority.clock.shared())
        .build()
        .unwrap();
    assert!(!layer.wait_ready(Duration::from_millis(300)).await);
    let answer = call(&protected(layer), bearer(&authority.token())).await;
    answer.assert_invalid_token();
    assert_eq!(answer.error.unwrap().kind(), AuthErrorKind::KeysUnavailable);
}

#[tokio::test]
async fn unknown_key_types_in_the_jwks_are_skipped() {
    let authority = Authority::new();
    let mut set = serde_json::to_value(authority.jwks()).unwrap();
    let keys = set["keys"].as_array_mut().unwrap();
    keys.insert(0, json!({ "kty": "oct", "k": "c2VjcmV0", "kid": "hmac" }));
    keys.insert(
        0,
        json!({ "kty": "PQC", "kid": "from-the-future", "alg": "ML-DSA-65" }),
    );
    keys.push(json!({ "kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "RSA-OAEP", "use": "enc" }));
    let set: JwkSet = serde_json::from_value(set).unwrap();
    let server = JwksServer::start(&set, 300).await;
    let router = protected(remote_layer(&authority, &server).await);
    call(&router, bearer(&authority.token())).await.assert_ok();
}

/// Keys that must never verify (another `use`, `key_ops` without `verify`, an Ed25519 point of
/// small order) are skipped like unknown types; the good key still verifies, and tokens naming a
/// refused key are refused. (RSA moduli with the ROCA fingerprint take the same path; the core
/// library's tests cover them in a set.)
#[tokio::test]
async fn refused_keys_in_the_jwks_are_skipped_and_never_verify() {
    let authority = Authority::new();
    let good = serde_json::to_value(authority.key.public_jwk()).unwrap();
    let mut enc = good.clone();
    enc["kid"] = "enc-copy".into();
    enc["use"] = "enc".into();
    let mut ops = good.clone();
    ops["kid"] = "ops-copy".into();
    ops["key_ops"] = json!(["encrypt"]);
    // The identity point: with it, `R = identity, S = 0` verifies any message.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let small = json!({
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "small-order",
        "x": URL_SAFE_NO_PAD.encode(identity),
    });
    let set: JwkSet = serde_json::from_value(json!({ "keys": [enc, ops, small, good] })).unwrap();
    let server = JwksServer::start(&set, 300).await;
    let layer = remote_layer(&authority, &server).await;
    let router = protected(layer.clone());

    call(&router, bearer(&authority.token())).await.assert_ok();
    assert_eq!(jwks_keys(&layer), Some(1));

    let claims = serde_json::to_value(authority.claims()).unwrap();
    for kid in ["enc-copy", "ops-copy"] {
        let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": kid });
        let token = forge(&header, &claims, Some(&authority.key), None);
        call(&router, bearer(&token)).await.assert_invalid_token();
    }
    let mut forgery = [0u8; 64];
    forgery[..32].copy_from_slice(&identity);
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "small-order" });
    let token = forge(&header, &claims, None, Some(&forgery[..]));
    call(&router, bearer(&token)).await.assert_invalid_token();
}

/// The `keys` detail of the layer's `jwks` health check.
fn jwks_keys(layer: &AuthLayer) -> Option<u64> {
    let health = layer.key_source()?.health(chrono::DateTime::UNIX_EPOCH);
    health.details.get("keys")?.as_u64()
}

#[tokio::test]
async fn an_unchanged_key_set_is_revalidated_with_a_conditional_get() {
    let authority = Authority::new();
    let mut server = JwksServer::start(&authority.jwks(), 60).await;
    let layer = remote_layer(&authority, &server).await;
    let router = protected(layer.clone());
    // Two scheduled refreshes answered 304: the keys stay, their freshness is renewed.
    for expected in [2, 3] {
        authority.clock.advance(TimeDelta::seconds(61));
        eventually("revalidation", || server.fetches() == expected).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.not_modified(), 2);
    let health = layer.key_source().unwrap().health(authority.clock.now());
    assert_eq!(health.status, HealthStatus::Healthy, "{health:?}");
    assert_eq!(jwks_keys(&layer), Some(1));
    call(&router, bearer(&authority.token())).await.assert_ok();
    server.stop().await;
}
