//! Test support: an authority that mints tokens, a real JWKS server on 127.0.0.1:0 that counts
//! its fetches and can be stopped, and helpers to drive a protected router.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
pub(crate) use gha_auth::Clock;
use gha_auth::ManualClock;
use gha_auth::jwt::{AccessClaims, issue};
use gha_auth::keys::{Algorithm, JwkSet, SigningKey};
use gha_auth_middleware::{AuthError, AuthLayer, LocalKeys, Principal};
use tower::ServiceExt;

pub(crate) const ISSUER: &str = "https://auth.gha.test";
pub(crate) const AUDIENCE: &str = "field-service";
/// 2026-11-01T00:00:00Z.
pub(crate) const START: i64 = 1_793_491_200;

/// Mints tokens the way the authority does.
pub(crate) struct Authority {
    pub(crate) key: SigningKey,
    pub(crate) clock: ManualClock,
}

impl Authority {
    pub(crate) fn new() -> Self {
        Self::with_alg(Algorithm::ES256)
    }

    pub(crate) fn with_alg(alg: Algorithm) -> Self {
        Self {
            key: SigningKey::generate(alg).unwrap(),
            clock: ManualClock::at_unix(START),
        }
    }

    pub(crate) fn claims(&self) -> AccessClaims {
        AccessClaims::new(
            ISSUER,
            "user-1",
            AUDIENCE,
            "mfs-app",
            self.clock.unix_seconds(),
            TimeDelta::minutes(10),
        )
        .unwrap()
        .with_scopes(["jobs:read"])
    }

    pub(crate) fn token(&self) -> String {
        self.sign(&self.claims())
    }

    pub(crate) fn token_with(&self, edit: impl FnOnce(&mut AccessClaims)) -> String {
        let mut claims = self.claims();
        edit(&mut claims);
        self.sign(&claims)
    }

    pub(crate) fn sign(&self, claims: &AccessClaims) -> String {
        issue(&self.key, claims).unwrap()
    }

    pub(crate) fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.key.public_jwk().clone()],
        }
    }

    /// A layer trusting this authority's key, on its clock.
    pub(crate) fn layer(&self) -> AuthLayer {
        self.builder().build().unwrap()
    }

    pub(crate) fn builder(&self) -> gha_auth_middleware::AuthLayerBuilder {
        AuthLayer::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .key_source(LocalKeys::new([self.key.verifying_key()]).unwrap())
            .clock(self.clock.shared())
    }
}

/// A hand-built compact JWS: any header and payload, signed by `key` unless `signature` is
/// given.
pub(crate) fn forge(
    header: &serde_json::Value,
    payload: &serde_json::Value,
    key: Option<&SigningKey>,
    signature: Option<&[u8]>,
) -> String {
    let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
    input.push('.');
    input.push_str(&URL_SAFE_NO_PAD.encode(payload.to_string()));
    let signature = match (signature, key) {
        (Some(sig), _) => sig.to_vec(),
        (None, Some(key)) => key.sign(input.as_bytes()).unwrap(),
        (None, None) => Vec::new(),
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A router whose handler answers with the principal's subject and scopes.
pub(crate) fn protected(layer: AuthLayer) -> Router {
    Router::new()
        .route(
            "/whoami",
            get(|principal: Principal| async move {
                let scopes: Vec<&str> = principal.scopes().iter().collect();
                format!("{} {}", principal.subject(), scopes.join(","))
            })
            .post(|principal: Principal| async move { principal.subject().to_owned() })
            .options(|| async { StatusCode::NO_CONTENT }),
        )
        .layer(layer)
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) error: Option<AuthError>,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) async fn from(response: Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let error = response.extensions().get::<AuthError>().cloned();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        Self {
            status,
            headers,
            error,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub(crate) fn challenges(&self) -> Vec<&str> {
        self.headers
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    /// Asserts a 401 with `Bearer error="invalid_token"` and a generic body.
    #[track_caller]
    pub(crate) fn assert_invalid_token(&self) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "body: {}", self.body);
        assert_eq!(self.challenges(), [r#"Bearer error="invalid_token""#]);
        assert_eq!(self.body, r#"{"error":"invalid_token"}"#);
    }

    #[track_caller]
    pub(crate) fn assert_ok(&self) {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "{:?} {}",
            self.error,
            self.body
        );
    }
}

pub(crate) async fn call(router: &Router, request: Request<Body>) -> Answer {
    Answer::from(
        router
            .clone()
            .oneshot(request)
            .await
            .unwrap()
            .into_response(),
    )
    .await
}

pub(crate) fn get_with(headers: &[(&str, &str)]) -> Request<Body> {
    request("GET", headers)
}

pub(crate) fn request(method: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri("/whoami");
    for (name, value) in headers {
        builder = builder.header(*name, HeaderValue::from_str(value).unwrap());
    }
    builder.body(Body::empty()).unwrap()
}

pub(crate) fn bearer(token: &str) -> Request<Body> {
    get_with(&[("authorization", &format!("Bearer {token}"))])
}

/// A JWKS endpoint on 127.0.0.1:0 that serves whatever set it is given, counts fetches and can
/// be stopped.
pub(crate) struct JwksServer {
    pub(crate) addr: SocketAddr,
    pub(crate) fetches: Arc<AtomicUsize>,
    not_modified: Arc<AtomicUsize>,
    jwks: Arc<Mutex<(String, u64)>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl JwksServer {
    pub(crate) async fn start(jwks: &JwkSet, max_age: u64) -> Self {
        let body = String::from_utf8(jwks.to_json().unwrap()).unwrap();
        let state = Arc::new(Mutex::new((body, max_age)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let not_modified = Arc::new(AtomicUsize::new(0));
        let app = {
            let state = Arc::clone(&state);
            let fetches = Arc::clone(&fetches);
            let not_modified = Arc::clone(&not_modified);
            Router::new().route(
                "/.well-known/jwks.json",
                get(move |headers: HeaderMap| {
                    let state = Arc::clone(&state);
                    let fetches = Arc::clone(&fetches);
                    let not_modified = Arc::clone(&not_modified);
                    async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        let (body, max_age) = state.lock().unwrap().clone();
                        // A strong validator: the body's length and a cheap checksum.
                        let sum = body.bytes().fold(0u64, |acc, b| {
                            acc.wrapping_mul(31).wrapping_add(u64::from(b))
                        });
                        let etag = format!("\"{}-{sum:x}\"", body.len());
                        let cache = format!("public, max-age={max_age}");
                        let matches = headers
                            .get("if-none-match")
                            .is_some_and(|v| v.as_bytes() == etag.as_bytes());
                        if matches {
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
                }),
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            fetches,
            not_modified,
            jwks: state,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    pub(crate) fn set(&self, jwks: &JwkSet) {
        self.jwks.lock().unwrap().0 = String::from_utf8(jwks.to_json().unwrap()).unwrap();
    }

    pub(crate) fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Fetches answered `304 Not Modified`.
    pub(crate) fn not_modified(&self) -> usize {
        self.not_modified.load(Ordering::SeqCst)
    }

    /// Stops accepting connections and closes the open ones.
    pub(crate) async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// Waits (real time, bounded) until `condition` holds.
pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}
