//! The revocation-feed poller against a real HTTP server on 127.0.0.1:0 serving signed feed
//! documents (what `GET /v1/revocations` serves), with the layer's own keys.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use chrono::TimeDelta;
use gha_auth::keys::{Algorithm, SigningKey};
use gha_auth::revocation::{
    ClientNotBefore, RevocationFeed as FeedDocument, RevokedJti, SubjectNotBefore, sign,
};
use gha_auth_middleware::revocation::PollOutcome;
use gha_auth_middleware::{AuthLayer, HealthStatus, RevocationFeed};
use serde_json::json;

use crate::common::{Authority, ISSUER, bearer, call, eventually, forge, protected};

/// What the feed server answers.
#[derive(Clone)]
enum Serve {
    Feed {
        seq: u64,
        body: String,
        max_age: u64,
    },
    Fail,
}

struct FeedServer {
    addr: SocketAddr,
    serve: Arc<Mutex<Serve>>,
    fetches: Arc<AtomicUsize>,
    not_modified: Arc<AtomicUsize>,
}

impl FeedServer {
    async fn start() -> Self {
        let serve = Arc::new(Mutex::new(Serve::Fail));
        let fetches = Arc::new(AtomicUsize::new(0));
        let not_modified = Arc::new(AtomicUsize::new(0));
        let app = {
            let (serve, fetches, not_modified) = (
                Arc::clone(&serve),
                Arc::clone(&fetches),
                Arc::clone(&not_modified),
            );
            Router::new().route(
                "/v1/revocations",
                get(move |headers: HeaderMap| {
                    let (serve, fetches, not_modified) = (
                        Arc::clone(&serve),
                        Arc::clone(&fetches),
                        Arc::clone(&not_modified),
                    );
                    async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        let current = serve.lock().unwrap().clone();
                        match current {
                            Serve::Fail => (
                                StatusCode::INTERNAL_SERVER_ERROR,
                                [("etag", String::new()), ("cache-control", String::new())],
                                String::new(),
                            ),
                            Serve::Feed { seq, body, max_age } => {
                                let etag = format!("\"{seq}\"");
                                let cache = format!("max-age={max_age}");
                                if headers
                                    .get("if-none-match")
                                    .is_some_and(|v| v.as_bytes() == etag.as_bytes())
                                {
                                    not_modified.fetch_add(1, Ordering::SeqCst);
                                    return (
                                        StatusCode::NOT_MODIFIED,
                                        [("etag", etag), ("cache-control", cache)],
                                        String::new(),
                                    );
                                }
                                (
                                    StatusCode::OK,
                                    [("etag", etag), ("cache-control", cache)],
                                    body,
                                )
                            }
                        }
                    }
                }),
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            addr,
            serve,
            fetches,
            not_modified,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/v1/revocations", self.addr)
    }

    fn publish(&self, seq: u64, body: String, max_age: u64) {
        *self.serve.lock().unwrap() = Serve::Feed { seq, body, max_age };
    }

    fn fail(&self) {
        *self.serve.lock().unwrap() = Serve::Fail;
    }
}

fn document(authority: &Authority, seq: u64) -> FeedDocument {
    let now = authority.clock.now().timestamp();
    FeedDocument {
        iss: ISSUER.into(),
        seq,
        iat: now,
        exp: now + 3600,
        jtis: Vec::new(),
        subjects: Vec::new(),
        clients: Vec::new(),
    }
}

fn layer_polling(authority: &Authority, server: &FeedServer) -> AuthLayer {
    authority
        .builder()
        .revocation_feed(
            RevocationFeed::new(server.url())
                .poll_interval_bounds(Duration::from_secs(1), Duration::from_secs(60)),
        )
        .build()
        .unwrap()
}

use gha_auth::Clock as _;

#[tokio::test]
async fn feed_entries_revoke_cached_and_new_tokens() {
    let authority = Authority::new();
    let server = FeedServer::start().await;
    let layer = layer_polling(&authority, &server);
    let router = protected(layer.clone());
    let poller = layer.revocation_feed().unwrap().clone();

    let claims = authority.claims();
    let by_jti = authority.sign(&claims);
    let by_subject = authority.token_with(|c| c.sub = "user-2".into());
    let by_client = authority.token_with(|c| {
        c.sub = "svc".into();
        c.client_id = "leaky-app".into();
    });
    let untouched = authority.token_with(|c| c.sub = "user-3".into());
    for token in [&by_jti, &by_subject, &by_client, &untouched] {
        call(&router, bearer(token)).await.assert_ok(); // now cached
    }

    authority.clock.advance(TimeDelta::seconds(5));
    let mut feed = document(&authority, 1);
    feed.jtis.push(RevokedJti {
        jti: claims.jti.clone(),
        exp: claims.exp,
    });
    feed.subjects.push(SubjectNotBefore {
        sub: "user-2".into(),
        not_before: authority.clock.now().timestamp(),
    });
    feed.clients.push(ClientNotBefore {
        client_id: "leaky-app".into(),
        not_before: authority.clock.now().timestamp(),
    });
    server.publish(1, sign(&authority.key, &feed).unwrap(), 30);
    assert_eq!(poller.poll_now().await, Ok(PollOutcome::Applied { seq: 1 }));
    assert_eq!(poller.seq(), Some(1));

    for token in [&by_jti, &by_subject, &by_client] {
        call(&router, bearer(token)).await.assert_invalid_token();
    }
    call(&router, bearer(&untouched)).await.assert_ok();
    // Issued after the not-before: accepted.
    let later = authority.token_with(|c| c.sub = "user-2".into());
    call(&router, bearer(&later)).await.assert_ok();

    // Same sequence again: 304, state unchanged.
    assert_eq!(poller.poll_now().await, Ok(PollOutcome::NotModified));
    assert!(server.not_modified.load(Ordering::SeqCst) >= 1);
    call(&router, bearer(&by_jti)).await.assert_invalid_token();
    let health = poller.health(authority.clock.now());
    assert_eq!(health.status, HealthStatus::Healthy, "{health:?}");
    assert_eq!(health.details["seq"], 1);
}

#[tokio::test]
async fn failures_keep_the_last_good_state_and_show_in_health() {
    let authority = Authority::new();
    let server = FeedServer::start().await;
    let layer = layer_polling(&authority, &server);
    let router = protected(layer.clone());
    let poller = layer.revocation_feed().unwrap().clone();
    let health = poller.health(authority.clock.now());
    assert_eq!(health.status, HealthStatus::Degraded, "nothing loaded yet");

    let claims = authority.claims();
    let token = authority.sign(&claims);
    let mut feed = document(&authority, 4);
    feed.jtis.push(RevokedJti {
        jti: claims.jti.clone(),
        exp: claims.exp,
    });
    server.publish(4, sign(&authority.key, &feed).unwrap(), 30);
    assert!(poller.wait_loaded(Duration::from_secs(10)).await || poller.poll_now().await.is_ok());
    call(&router, bearer(&token)).await.assert_invalid_token();

    // The authority fails: the revocation stays, requests are still answered, health degrades.
    server.fail();
    assert!(poller.poll_now().await.is_err());
    call(&router, bearer(&token)).await.assert_invalid_token();
    call(&router, bearer(&authority.token())).await.assert_ok();
    authority.clock.advance(TimeDelta::seconds(20));
    let health = poller.health(authority.clock.now());
    assert_eq!(health.status, HealthStatus::Degraded);
    assert_eq!(health.details["age_seconds"], 20);
    assert_eq!(health.details["consecutive_failures"], 1);
    assert_eq!(health.details["seq"], 4);
    let report = layer.health().report().await;
    assert!(
        report.checks.contains_key("revocations"),
        "{:?}",
        report.checks
    );

    // Forged, mistyped, foreign or stale documents are refused; the state stays.
    let stranger = SigningKey::generate(Algorithm::ES256).unwrap();
    let empty = document(&authority, 5);
    let mut foreign = document(&authority, 5);
    foreign.iss = "https://elsewhere".into();
    let mut expired = document(&authority, 5);
    expired.iat -= 7200;
    expired.exp -= 7200;
    let as_access_token = forge(
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": authority.key.kid()}),
        &serde_json::to_value(&empty).unwrap(),
        Some(&authority.key),
        None,
    );
    let bad = [
        sign(&stranger, &empty).unwrap(),
        as_access_token,
        sign(&authority.key, &foreign).unwrap(),
        sign(&authority.key, &expired).unwrap(),
        "not a jws".to_owned(),
    ];
    for (i, body) in bad.into_iter().enumerate() {
        server.publish(100 + i as u64, body, 30);
        assert!(
            poller.poll_now().await.is_err(),
            "document {i} was accepted"
        );
        assert_eq!(poller.seq(), Some(4));
        call(&router, bearer(&token)).await.assert_invalid_token();
    }

    // Back to normal.
    server.publish(
        6,
        sign(&authority.key, &document(&authority, 6)).unwrap(),
        30,
    );
    assert_eq!(poller.poll_now().await, Ok(PollOutcome::Applied { seq: 6 }));
    call(&router, bearer(&token)).await.assert_invalid_token();
    assert_eq!(
        poller.health(authority.clock.now()).status,
        HealthStatus::Healthy
    );
}

#[tokio::test]
async fn polls_on_the_max_age_schedule() {
    let authority = Authority::new();
    let server = FeedServer::start().await;
    server.publish(
        1,
        sign(&authority.key, &document(&authority, 1)).unwrap(),
        10,
    );
    let layer = layer_polling(&authority, &server);
    let poller = layer.revocation_feed().unwrap().clone();
    assert!(poller.wait_loaded(Duration::from_secs(10)).await);
    let after_first = server.fetches.load(Ordering::SeqCst);

    let claims = authority.claims();
    let token = authority.sign(&claims);
    let router = protected(layer.clone());
    call(&router, bearer(&token)).await.assert_ok();
    let mut feed = document(&authority, 2);
    feed.jtis.push(RevokedJti {
        jti: claims.jti.clone(),
        exp: claims.exp,
    });
    server.publish(2, sign(&authority.key, &feed).unwrap(), 10);
    // Nothing happens until the interval has passed on the layer's clock…
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(poller.seq(), Some(1));
    assert_eq!(server.fetches.load(Ordering::SeqCst), after_first);
    // …then the scheduled poll brings the revocation, with no request involved.
    authority.clock.advance(TimeDelta::seconds(10));
    eventually("the scheduled poll applied seq 2", || {
        poller.seq() == Some(2)
    })
    .await;
    call(&router, bearer(&token)).await.assert_invalid_token();
    assert_eq!(server.fetches.load(Ordering::SeqCst), after_first + 1);
}

#[tokio::test]
async fn builder_checks_the_feed_settings() {
    let authority = Authority::new();
    let no_keys = AuthLayer::builder()
        .issuer(ISSUER)
        .audience("x")
        .link_key(gha_auth_middleware::linkkey::LinkKeyIntegration::new(
            "epicor",
            gha_auth_middleware::linkkey::StaticLinkKeys::new(
                gha_auth_middleware::linkkey::LinkKeySet {
                    name: "epicor".into(),
                    keys: Vec::new(),
                },
            ),
        ))
        .revocation_feed(RevocationFeed::new("http://127.0.0.1:1/v1/revocations"))
        .build();
    assert!(no_keys.is_err());
    for (min, max) in [(0, 10), (10, 5), (1, 7200)] {
        let result = authority
            .builder()
            .revocation_feed(
                RevocationFeed::new("http://127.0.0.1:1/v1/revocations")
                    .poll_interval_bounds(Duration::from_secs(min), Duration::from_secs(max)),
            )
            .build();
        assert!(result.is_err(), "{min}..{max}");
    }
    let insecure = authority
        .builder()
        .revocation_feed(RevocationFeed::for_authority("http://auth.example"))
        .build();
    assert!(insecure.is_err());
}
