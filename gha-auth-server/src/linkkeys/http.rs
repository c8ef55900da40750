//! `GET /v1/link-keys/{name}` and `POST /v1/link-keys/{name}/usage`: the protocol the
//! middleware's HTTP link-key source speaks (see its module docs in `gha-auth-middleware`).
//!
//! Validators authenticate with a bearer token of this authority for the link-key audience
//! ([`Caller<LinkKeysApi>`]). They get digests only (SHA-256 of the key text), never a key, with
//! `Cache-Control: max-age` and an `ETag` (`If-None-Match` → 304). Usage reports update each
//! key's `last_seen`, which lets rotation retire the previous key early. Refusals (no or bad
//! token, unknown name, another tenant's key) are audited: an authenticated caller's first
//! [`DENIALS_WRITTEN_AT_ONCE`] per interval one by one, the rest, and every anonymous one, as one
//! aggregated event per caller, name and reason and interval (an anonymous request's unknown
//! name is recorded as [`UNKNOWN_NAME`], so made-up names cannot multiply the rows). The routes
//! are rate-limited per source address.

use std::future::Future;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::machine::{self, Stale};
use super::model::ServedSet;
use gha_auth::SharedClock;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::registry::{LinkKeyEntry, LinkKeys};
use super::store::update;
use crate::audit::aggregate::Refusals;
use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome};
use crate::caller::{Caller, CallerError, Callers, LinkKeysApi};
use crate::ratelimit::RateLimits;

/// What the validators' endpoints need: the configured link keys, the audit log for refusals
/// and the clock.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) struct Validators {
    /// The configured link keys.
    pub(crate) link_keys: Arc<LinkKeys>,
    /// Where refusals are audited.
    pub(crate) audit: Arc<AuditLog>,
    /// The injected clock.
    pub(crate) clock: SharedClock,
    /// Refusals held for the next aggregated audit write.
    pub(crate) refusals: Refusals,
    /// The per-source rate limit of these routes.
    pub(crate) limits: Arc<RateLimits>,
}

/// Refusals of one authenticated caller written one by one per interval; the rest aggregated.
pub(crate) const DENIALS_WRITTEN_AT_ONCE: u32 = 20;

/// How often held refusals are written.
pub(crate) const REFUSAL_FLUSH_INTERVAL: TimeDelta = TimeDelta::seconds(10);

/// The name recorded for an anonymous request's name that is not a configured link key.
pub(crate) const UNKNOWN_NAME: &str = "<unknown name>";

impl Validators {
    /// Writes the held refusals, one aggregated event each.
    pub(crate) async fn flush_refusals(&self) {
        for ((actor, name, reason), count) in self.refusals.drain() {
            self.audit
                .record_or_log(
                    AuditEvent::new(
                        AuditKind::LinkKeyAccessDenied,
                        &actor,
                        &name,
                        Outcome::Failure,
                    )
                    .detail("reason", reason)
                    .detail("count", count)
                    .detail("aggregated", true)
                    .detail("interval_seconds", REFUSAL_FLUSH_INTERVAL.num_seconds()),
                )
                .await;
        }
    }

    /// Flushes the held refusals every interval until `shutdown`, and once more then.
    pub(crate) async fn run_refusal_flush(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = self.clock.sleep(REFUSAL_FLUSH_INTERVAL) => self.flush_refusals().await,
                () = &mut shutdown => break,
            }
        }
        self.flush_refusals().await;
    }
}

/// The validators' routes, rate-limited per source address.
pub(crate) fn router<S>(state: &S) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Validators>: FromRef<S>,
    Arc<Callers>: FromRef<S>,
{
    let limits = Arc::<Validators>::from_ref(state).limits.clone();
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(usage))
        .route_layer(axum::middleware::from_fn_with_state(
            limits,
            crate::ratelimit::per_source,
        ))
}

/// Most keys one usage report may name (there are at most three valid keys).
const MAX_REPORTED_KEYS: usize = 16;

/// A usage report (`POST /v1/link-keys/{name}/usage`).
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageReport {
    /// The link key's name (must match the path).
    pub(crate) name: String,
    /// Which validator reports.
    pub(crate) validator: String,
    /// Last use per key id.
    pub(crate) keys: Vec<KeyUseReport>,
}

/// The last use of one key, as a validator saw it.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyUseReport {
    /// The key id from the list.
    pub(crate) id: String,
    /// When it was last accepted (RFC 3339).
    #[schema(value_type = String)]
    pub(crate) last_seen: DateTime<Utc>,
    /// Acceptances since the validator started.
    #[serde(default)]
    pub(crate) uses: u64,
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn unavailable() -> Response {
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "the link-key store is unavailable",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

async fn deny(state: &Validators, actor: Option<&str>, name: &str, reason: &str) {
    let name = match actor {
        None if state.link_keys.get(name).is_none() => UNKNOWN_NAME,
        _ => name,
    };
    if !state.refusals.note(actor, name, reason) {
        return;
    }
    let actor = actor.unwrap_or("anonymous");
    state
        .audit
        .record_or_log(
            AuditEvent::new(
                AuditKind::LinkKeyAccessDenied,
                actor,
                name,
                Outcome::Failure,
            )
            .detail("reason", reason),
        )
        .await;
}

/// Checks the caller and the name; the refusal is already audited when `Err`.
async fn authorize<'a>(
    state: &'a Validators,
    caller: Result<Caller<LinkKeysApi>, CallerError>,
    name: &str,
) -> Result<(Caller<LinkKeysApi>, &'a LinkKeyEntry), Response> {
    let caller = match caller {
        Ok(caller) => caller,
        Err(refusal) => {
            deny(state, None, name, refusal.label()).await;
            return Err(refusal.into_response());
        }
    };
    let Some(entry) = state.link_keys.get(name) else {
        deny(state, Some(&caller.client_id), name, "unknown link key").await;
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such link key",
        ));
    };
    if let (Some(required), Some(tenant)) = (&entry.config.tenant, &caller.tenant)
        && required != tenant
    {
        deny(
            state,
            Some(&caller.client_id),
            name,
            "caller belongs to another tenant",
        )
        .await;
        return Err(error(
            StatusCode::FORBIDDEN,
            "access_denied",
            "this link key belongs to another tenant",
        ));
    }
    Ok((caller, entry))
}

/// A strong ETag over the served document.
fn etag_of(body: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    format!("\"{}\"", hex::encode(&digest.as_ref()[..16]))
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|candidate| candidate == etag || candidate == "*")
}

/// The digests of the link keys valid now.
#[utoipa::path(
    get,
    path = "/v1/link-keys/{name}",
    tag = "link-keys",
    params(("name" = String, Path, description = "The integration, e.g. epicor")),
    responses(
        (status = 200, description = "Digests (SHA-256 hex) of the valid keys, never the keys", body = ServedSet),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 401, description = "No or invalid bearer token (RFC 6750)"),
        (status = 429, description = "Rate limited per source address; see Retry-After"),
        (status = 403, description = "The link key belongs to another tenant"),
        (status = 404, description = "No such link key"),
        (status = 503, description = "The link-key store is unavailable"),
    ),
)]
pub(crate) async fn list(
    State(state): State<Arc<Validators>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    caller: Result<Caller<LinkKeysApi>, CallerError>,
) -> Response {
    let (_caller, entry) = match authorize(&state, caller, &name).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let loaded = match entry.rotator.store().load(&name).await {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!(name, error = %e, "cannot read link-key state");
            return unavailable();
        }
    };
    let served = match loaded {
        Some(loaded) => loaded.state.served(state.clock.now()),
        None => ServedSet {
            name: name.clone(),
            keys: Vec::new(),
        },
    };
    let Ok(body) = serde_json::to_vec(&served) else {
        return unavailable();
    };
    let etag = etag_of(&body);
    let cache = format!("max-age={}", entry.config.max_age.as_secs());
    let mut headers_out = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers_out.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&cache) {
        headers_out.insert(header::CACHE_CONTROL, value);
    }
    if if_none_match(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, headers_out).into_response();
    }
    headers_out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (StatusCode::OK, headers_out, body).into_response()
}

/// Records when each key was last accepted by a validator.
#[utoipa::path(
    post,
    path = "/v1/link-keys/{name}/usage",
    tag = "link-keys",
    params(("name" = String, Path, description = "The integration, e.g. epicor")),
    request_body = UsageReport,
    responses(
        (status = 204, description = "Recorded"),
        (status = 400, description = "Malformed report"),
        (status = 401, description = "No or invalid bearer token (RFC 6750)"),
        (status = 429, description = "Rate limited per source address; see Retry-After"),
        (status = 403, description = "The link key belongs to another tenant"),
        (status = 404, description = "No such link key"),
        (status = 503, description = "The link-key store is unavailable"),
    ),
)]
pub(crate) async fn usage(
    State(state): State<Arc<Validators>>,
    Path(name): Path<String>,
    caller: Result<Caller<LinkKeysApi>, CallerError>,
    body: Bytes,
) -> Response {
    let (caller, entry) = match authorize(&state, caller, &name).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let report: UsageReport = match serde_json::from_slice(&body) {
        Ok(report) => report,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the body is not a usage report",
            );
        }
    };
    if report.name != name || report.keys.len() > MAX_REPORTED_KEYS || report.validator.len() > 128
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the report names another link key or is too large",
        );
    }
    let now = state.clock.now();
    let result = update(&**entry.rotator.store(), &name, |s| {
        let mut changed = false;
        for key in &report.keys {
            changed |= machine::record_use(s, &key.id, key.last_seen, now);
        }
        if changed {
            Ok(())
        } else {
            Err(Stale("nothing new"))
        }
    })
    .await;
    match result {
        Ok(_) => {
            tracing::debug!(name, validator = %crate::audit::clean(&report.validator),
                client = %caller.client_id, "link-key usage recorded");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            tracing::error!(name, error = %e, "cannot record link-key usage");
            unavailable()
        }
    }
}
