//! Revocation reaching every API: a token revoked at the real authority (RFC 7009,
//! or by disabling its client) is refused by the field-service example once its middleware has
//! polled the signed feed `GET /v1/revocations`, and the example calls the authority only on
//! its poll schedule, never per request (counted at the authority through its `/metrics`).

use std::time::{Duration, Instant};

use field_service::{JobStore, app};
use gha_auth::SystemClock;
use gha_auth_middleware::{AuthLayer, RevocationFeed};
use gha_auth_server::config::{Config, Duration as ConfigDuration};
use gha_auth_server::testing::{ClientRegistration, GrantType};
use gha_auth_server::{RunningApp, build_app};
use reqwest::StatusCode;
use serde_json::Value;

const AUDIENCE: &str = "field-service";
/// The authority's `Cache-Control: max-age` on the feed, and the example's poll floor.
const POLL: Duration = Duration::from_secs(1);

async fn start_authority(data: &tempfile::TempDir) -> RunningApp {
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = data.path().join("data");
    config.revocations.poll_interval = ConfigDuration::seconds(1);
    // Real time: the example's layer reads the wall clock too.
    build_app(config, SystemClock::shared())
        .await
        .unwrap()
        .spawn()
}

async fn register(authority: &RunningApp, id: &str) -> String {
    let registration = ClientRegistration::new(id)
        .grant(GrantType::ClientCredentials)
        .audience(AUDIENCE)
        .scope("jobs:read")
        .tenant("acme");
    let (_, secret) = authority
        .authority()
        .clients()
        .register(registration, "e2e")
        .await
        .unwrap();
    secret.unwrap().expose().to_owned()
}

async fn token(http: &reqwest::Client, authority: &RunningApp, id: &str, secret: &str) -> String {
    let response = http
        .post(authority.authority().token_endpoint())
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Requests the authority has served per endpoint, from its own Prometheus counters.
async fn served(http: &reqwest::Client, authority: &RunningApp, endpoint: &str) -> u64 {
    let text = http
        .get(format!("{}/metrics", authority.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let label = format!("endpoint=\"{endpoint}\"");
    text.lines()
        .filter(|l| l.starts_with("gha_auth_http_requests_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test]
async fn a_revoked_token_is_refused_by_the_field_service_within_the_poll_interval() {
    let data = tempfile::tempdir().unwrap();
    let authority = start_authority(&data).await;
    let http = reqwest::Client::new();
    let secret = register(&authority, "mfs-sync").await;
    let other_secret = register(&authority, "dashboard").await;

    // The example's layer, as its main.rs builds it: JWKS plus the feed of the same authority.
    let base = authority.base_url();
    let auth = AuthLayer::builder()
        .issuer(authority.authority().issuer())
        .audience(AUDIENCE)
        .jwks_url(format!("{base}/.well-known/jwks.json"))
        .revocation_feed(RevocationFeed::for_authority(&base).poll_interval_bounds(POLL, POLL * 2))
        .build()
        .unwrap();
    assert!(
        auth.wait_ready(Duration::from_secs(30)).await,
        "JWKS loaded"
    );
    let poller = auth.revocation_feed().unwrap().clone();
    assert!(
        poller.wait_loaded(Duration::from_secs(30)).await,
        "feed loaded"
    );
    let first_seq = poller.seq().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = format!("http://{}", listener.local_addr().unwrap());
    let router = app(auth, JobStore::new(SystemClock::shared()), None);
    tokio::spawn(async move { axum::serve(listener, router).await });

    let revoked = token(&http, &authority, "mfs-sync", &secret).await;
    let kept = token(&http, &authority, "dashboard", &other_secret).await;
    let jobs = |token: String| {
        let http = http.clone();
        let url = format!("{service}/jobs");
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(jobs(revoked.clone()).await, StatusCode::OK);
    assert_eq!(jobs(kept.clone()).await, StatusCode::OK);

    // RFC 7009 at the real authority.
    let response = http
        .post(format!("{base}/oauth2/revoke"))
        .basic_auth("mfs-sync", Some(&secret))
        .form(&[
            ("token", revoked.as_str()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let feed_before = served(&http, &authority, "/v1/revocations").await;
    let jwks_before = served(&http, &authority, "/.well-known/jwks.json").await;
    let introspect_before = served(&http, &authority, "/oauth2/introspect").await;
    let started = Instant::now();
    let mut requests = 0u64;
    loop {
        let status = jobs(revoked.clone()).await;
        requests += 1;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the revocation never reached the field service"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(poller.seq().unwrap() > first_seq);
    // Other tokens are unaffected, and many requests cost the authority nothing more.
    for _ in 0..100 {
        assert_eq!(jobs(kept.clone()).await, StatusCode::OK);
        requests += 1;
    }
    let elapsed = started.elapsed();
    let feed_polls = served(&http, &authority, "/v1/revocations").await - feed_before;
    let jwks_polls = served(&http, &authority, "/.well-known/jwks.json").await - jwks_before;
    let bound = elapsed.as_secs() / POLL.as_secs() + 2;
    assert!(
        feed_polls <= bound,
        "{feed_polls} feed fetches in {elapsed:?} (bound {bound}) for {requests} requests"
    );
    assert!(
        feed_polls < requests,
        "{feed_polls} fetches for {requests} requests"
    );
    assert!(jwks_polls <= 2, "{jwks_polls} JWKS fetches");
    assert_eq!(
        served(&http, &authority, "/oauth2/introspect").await,
        introspect_before
    );

    // Disabling a client revokes the tokens it holds, through the same feed.
    authority
        .authority()
        .clients()
        .disable("dashboard", "e2e")
        .await
        .unwrap();
    let started = Instant::now();
    while jobs(kept.clone()).await == StatusCode::OK {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the client revocation never reached the field service"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(jobs(kept.clone()).await, StatusCode::UNAUTHORIZED);

    authority.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_feed_is_signed_etagged_and_served_from_the_shared_sequence() {
    let data = tempfile::tempdir().unwrap();
    let authority = start_authority(&data).await;
    let http = reqwest::Client::new();
    let base = authority.base_url();
    let secret = register(&authority, "mfs-sync").await;

    let first = http
        .get(format!("{base}/v1/revocations"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["content-type"], "application/jwt");
    assert_eq!(first.headers()["cache-control"], "max-age=1");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let jws = first.text().await.unwrap();

    // Verified with the published JWKS, as a middleware does.
    let jwks = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let keys = gha_auth::keys::JwkSet::parse_lenient(&jwks).unwrap();
    let verifier = gha_auth::revocation::FeedVerifier::new(
        authority.authority().issuer(),
        SystemClock::shared(),
    );
    let feed = verifier.verify(&jws, &keys).unwrap();
    assert_eq!(etag, format!("\"{}\"", feed.seq));
    assert!(feed.is_empty());

    let again = http
        .get(format!("{base}/v1/revocations"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);

    // A revocation moves the sequence; the old ETag no longer matches.
    let access = token(&http, &authority, "mfs-sync", &secret).await;
    let response = http
        .post(format!("{base}/oauth2/revoke"))
        .basic_auth("mfs-sync", Some(&secret))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let changed = http
        .get(format!("{base}/v1/revocations"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let feed = verifier
        .verify(&changed.text().await.unwrap(), &keys)
        .unwrap();
    assert_eq!(feed.jtis.len(), 1);
    let claims = gha_auth::jwt::dangerous::decode_unverified_claims(&access).unwrap();
    assert_eq!(feed.jtis[0].jti, claims["jti"].as_str().unwrap());
    assert!(feed.jtis[0].exp >= claims["exp"].as_i64().unwrap());

    // Revoking the same token again changes nothing: same sequence.
    let seq = feed.seq;
    http.post(format!("{base}/oauth2/revoke"))
        .basic_auth("mfs-sync", Some(&secret))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    let same = http
        .get(format!("{base}/v1/revocations"))
        .header("if-none-match", format!("\"{seq}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::NOT_MODIFIED);

    // The revocation is audited, once, and the chain is intact.
    let store = authority.authority().store();
    let rows = store.audit_rows_after(0, 10_000).await.unwrap();
    let revoked = rows.iter().filter(|r| r.kind == "token.revoked").count();
    assert_eq!(revoked, 1);
    assert!(gha_auth_server::testing::verify(store).await.unwrap().ok());

    authority.shutdown().await.unwrap();
}
