//! `GET /v1/revocations`: the signed feed, with `ETag: "<seq>"`, `If-None-Match` → 304 and
//! `Cache-Control: max-age=<revocations.poll_interval>`.
//!
//! A poll costs one indexed read of the sequence number; the document is rebuilt and signed
//! only when the sequence moved (or the cached one is past half its lifetime), so thousands of
//! verifiers polling every few seconds cost almost nothing.

use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gha_auth::revocation::{ClientNotBefore, RevocationFeed, RevokedJti, SubjectNotBefore, sign};
use serde_json::json;

use axum::extract::FromRef;
use gha_auth::SharedClock;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::RevocationsConfig;
use super::store::{RevocationKind, current_seq, live_entries};
use crate::caching::if_none_match;
use crate::keys::KeyManager;
use crate::store::{Store, StoreError};

/// Path of the feed.
pub(crate) const FEED_PATH: &str = "/v1/revocations";

/// The feed endpoint's state: what signs the document and where its entries are.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) struct Feed {
    /// `iss` of the document.
    pub(crate) issuer: String,
    /// The injected clock.
    pub(crate) clock: SharedClock,
    /// The signing keys (the document is signed like a token).
    pub(crate) keys: Arc<KeyManager>,
    /// Where the entries are.
    pub(crate) store: Store,
    /// `[revocations]`.
    pub(crate) config: RevocationsConfig,
    /// The last signed document, per process.
    last: Mutex<Option<Signed>>,
}

impl Feed {
    /// The feed of `store`'s entries, signed with `keys`.
    pub(crate) fn new(
        issuer: String,
        clock: SharedClock,
        keys: Arc<KeyManager>,
        store: Store,
        config: RevocationsConfig,
    ) -> Self {
        Self {
            issuer,
            clock,
            keys,
            store,
            config,
            last: Mutex::new(None),
        }
    }
}

/// The feed route.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Feed>: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(revocations_endpoint))
}

#[derive(Debug, Clone)]
struct Signed {
    seq: u64,
    iat: i64,
    exp: i64,
    jws: Arc<str>,
}

/// `GET /v1/revocations`.
#[utoipa::path(
    get,
    path = "/v1/revocations",
    tag = "discovery",
    responses(
        (status = 200, description = "Compact JWS (`typ: gha-revocations+jwt`) of revoked jtis and not-before times per subject and client; `ETag: \"<seq>\"`, `Cache-Control: max-age=<poll interval>`", content_type = "application/jwt", body = String),
        (status = 304, description = "Not modified (If-None-Match named the current sequence)"),
        (status = 503, description = "The store is unavailable; see Retry-After", body = Object),
    ),
)]
pub(crate) async fn revocations_endpoint(
    State(state): State<Arc<Feed>>,
    headers: HeaderMap,
) -> Response {
    match answer(&state, &headers).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "revocation feed unavailable");
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"error": "temporarily_unavailable"})),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
    }
}

async fn answer(state: &Feed, headers: &HeaderMap) -> Result<Response, FeedFailure> {
    let seq = current_seq(&state.store).await?;
    let etag = format!("\"{seq}\"");
    let mut response = if if_none_match(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let jws = document(state, seq).await?;
        let mut response = jws.to_string().into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/jwt"),
        );
        response
    };
    let max_age = state.config.poll_interval.as_secs();
    let out = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("max-age={max_age}")) {
        out.insert(header::CACHE_CONTROL, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, value);
    }
    Ok(response)
}

/// The signed document for `seq`: the cached one while it is for the same sequence and in the
/// first half of its lifetime, else a fresh one.
async fn document(state: &Feed, seq: u64) -> Result<Arc<str>, FeedFailure> {
    let now = state.clock.unix_seconds();
    {
        let last = state.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(signed) = last.as_ref()
            && signed.seq == seq
            && now < signed.iat + (signed.exp - signed.iat) / 2
        {
            return Ok(Arc::clone(&signed.jws));
        }
    }
    // Rows are read after the sequence, so they are at least as new as it: a change landing in
    // between shows up early, and the next poll sees the new sequence anyway.
    let rows = live_entries(&state.store, now).await?;
    let mut feed = RevocationFeed {
        iss: state.issuer.clone(),
        seq,
        iat: now,
        exp: now.saturating_add(state.config.document_lifetime.as_secs()),
        jtis: Vec::new(),
        subjects: Vec::new(),
        clients: Vec::new(),
    };
    for row in rows {
        match row.kind {
            RevocationKind::Jti => feed.jtis.push(RevokedJti {
                jti: row.value,
                exp: row.expires_at,
            }),
            RevocationKind::Subject => feed.subjects.push(SubjectNotBefore {
                sub: row.value,
                not_before: row.not_before,
            }),
            RevocationKind::Client => feed.clients.push(ClientNotBefore {
                client_id: row.value,
                not_before: row.not_before,
            }),
        }
    }
    let snapshot = state.keys.snapshot();
    let key = snapshot
        .signing_key(state.clock.now())
        .ok_or(FeedFailure::NoKey)?;
    let jws: Arc<str> = sign(key, &feed).map_err(FeedFailure::Sign)?.into();
    *state.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(Signed {
        seq,
        iat: feed.iat,
        exp: feed.exp,
        jws: Arc::clone(&jws),
    });
    Ok(jws)
}

#[derive(Debug, thiserror::Error)]
enum FeedFailure {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("no active signing key")]
    NoKey,
    #[error("signing the feed failed: {0}")]
    Sign(gha_auth::revocation::FeedError),
}
