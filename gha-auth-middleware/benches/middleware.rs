//! What the layer costs per request.
//!
//! - `handler/*`: the same axum handler unprotected and behind `AuthLayer` with a token already
//!   verified (the verified-token cache hit path every request after the first takes), through
//!   `tower::ServiceExt::oneshot`.
//! - `first_sight/*`: one bare ES256 signature verification, the core verifier's full
//!   verification, and a request through the layer carrying a token never seen before.
//!
//! Run: `cargo bench -p gha-auth-middleware --bench middleware`. Figures: docs/BENCHMARKS.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use chrono::TimeDelta;
use criterion::{Criterion, criterion_group, criterion_main};
use gha_auth::jwt::{AccessClaims, Validation, Verifier, issue};
use gha_auth::keys::{Algorithm, SigningKey};
use gha_auth::{Clock, SystemClock};
use gha_auth_middleware::{AuthLayer, LocalKeys, Principal};
use tower::ServiceExt;

const ISSUER: &str = "https://auth.gha.test";
const AUDIENCE: &str = "field-service";

fn token(key: &SigningKey) -> String {
    let claims = AccessClaims::new(
        ISSUER,
        "user-1",
        AUDIENCE,
        "mfs-app",
        SystemClock.unix_seconds(),
        TimeDelta::minutes(10),
    )
    .unwrap()
    .with_scopes(["jobs:read", "jobs:write"]);
    let mut claims = claims;
    claims.tenant = Some("acme".into());
    issue(key, &claims).unwrap()
}

fn request(token: Option<&str>) -> Request<Body> {
    let mut builder = Request::get("/jobs");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::empty()).unwrap()
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let auth = AuthLayer::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .key_source(LocalKeys::new([key.verifying_key()]).unwrap())
        .build()
        .unwrap();
    let unprotected: Router = Router::new().route("/jobs", get(|| async { "[]" }));
    let protected: Router = Router::new()
        .route(
            "/jobs",
            get(|principal: Principal| async move {
                std::hint::black_box(principal.subject().len());
                "[]"
            }),
        )
        .layer(auth);

    let token_text = token(&key);
    // Warm the cache: every later request with this token is a cache hit.
    let warm = runtime
        .block_on(protected.clone().oneshot(request(Some(&token_text))))
        .unwrap();
    assert!(warm.status().is_success());

    let mut group = c.benchmark_group("handler");
    group.bench_function("unprotected", |b| {
        b.to_async(&runtime).iter(|| async {
            // The same request as the protected route gets, header included.
            let response = unprotected
                .clone()
                .oneshot(request(Some(&token_text)))
                .await
                .unwrap();
            assert!(response.status().is_success());
        });
    });
    group.bench_function("protected_cache_hit", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = protected
                .clone()
                .oneshot(request(Some(&token_text)))
                .await
                .unwrap();
            assert!(response.status().is_success());
        });
    });
    group.finish();

    let verifying = key.verifying_key();
    let (signing_input, signature) = token_text.rsplit_once('.').unwrap();
    let signature =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)
            .unwrap();
    let verifier = Verifier::new(
        Validation::new(ISSUER, [AUDIENCE]).unwrap(),
        SystemClock::shared(),
    );

    let mut group = c.benchmark_group("first_sight");
    group.bench_function("bare_signature_verify", |b| {
        b.iter(|| assert!(verifying.verify_signature(signing_input.as_bytes(), &signature)));
    });
    group.bench_function("core_verify", |b| {
        b.iter(|| {
            verifier
                .verify::<AccessClaims>(&token_text, &verifying)
                .unwrap();
        });
    });
    group.bench_function("layer_new_token", |b| {
        // Every request carries a token the layer has never seen. Tokens are signed in batches
        // outside the timed region, so signing does not sit between the timed requests.
        b.to_async(&runtime).iter_custom(|iters| {
            let protected = protected.clone();
            let key = &key;
            async move {
                let mut total = std::time::Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let batch = (iters - done).min(500);
                    let requests: Vec<_> = (0..batch).map(|_| request(Some(&token(key)))).collect();
                    let started = std::time::Instant::now();
                    for req in requests {
                        let response = protected.clone().oneshot(req).await.unwrap();
                        assert!(response.status().is_success());
                    }
                    total += started.elapsed();
                    done += batch;
                }
                total
            }
        });
    });
    group.finish();

    interleaved_ratios(&runtime, &key, &unprotected, &protected, &token_text);
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The two bars as ratios measured in one interleaved loop, so load from other processes on the
/// machine hits both sides alike: first sight of a token through the layer against one bare
/// signature verification, and the protected route against the unprotected one.
fn interleaved_ratios(
    runtime: &tokio::runtime::Runtime,
    key: &SigningKey,
    unprotected: &Router,
    protected: &Router,
    cached_token: &str,
) {
    const ROUNDS: usize = 2_000;
    let verifying = key.verifying_key();
    let tokens: Vec<String> = (0..ROUNDS).map(|_| token(key)).collect();
    let (mut bare, mut first) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for token in &tokens {
        let (input, signature) = token.rsplit_once('.').unwrap();
        let signature =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)
                .unwrap();
        let started = std::time::Instant::now();
        assert!(verifying.verify_signature(input.as_bytes(), &signature));
        bare.push(started.elapsed().as_secs_f64());
        let req = request(Some(token));
        let started = std::time::Instant::now();
        let response = runtime.block_on(protected.clone().oneshot(req)).unwrap();
        first.push(started.elapsed().as_secs_f64());
        assert!(response.status().is_success());
    }
    let (mut open, mut guarded) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        for (router, samples) in [(unprotected, &mut open), (protected, &mut guarded)] {
            let started = std::time::Instant::now();
            for _ in 0..500 {
                let response = runtime
                    .block_on(router.clone().oneshot(request(Some(cached_token))))
                    .unwrap();
                assert!(response.status().is_success());
            }
            samples.push(started.elapsed().as_secs_f64() / 500.0);
        }
    }
    let (bare, first) = (median(bare), median(first));
    let (open, guarded) = (median(open), median(guarded));
    println!(
        "interleaved: bare verify {:.1} µs, first sight through the layer {:.1} µs, ratio {:.3}",
        bare * 1e6,
        first * 1e6,
        first / bare
    );
    println!(
        "interleaved: unprotected {:.2} µs, protected (cache hit) {:.2} µs, throughput ratio {:.3}",
        open * 1e6,
        guarded * 1e6,
        open / guarded
    );
}

criterion_group!(middleware, benches);
criterion_main!(middleware);
