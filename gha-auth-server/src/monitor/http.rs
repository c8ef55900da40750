//! `GET /admin/v1/monitor` and `GET /admin/v1/monitor/{name}/history`: the health board for the
//! console. Authorised like the admin API: a bearer token of this authority for the audience
//! `api_auth.admin_audience` (default `gha-auth-admin`, [`Caller<AdminApi>`]) with the scope
//! `admin:monitor` or the user role `admin`, not bound to a tenant (the board is the whole
//! authority's).

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use gha_auth::outbound::redact;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Monitor;
use super::machine::TargetState;
use super::store::{self, StateRow};
use crate::caller::{AdminApi, Caller, CallerError, Callers};
use crate::store::StoreError;

/// The scope that reads the board.
pub(crate) const MONITOR_SCOPE: &str = "admin:monitor";
/// The user role that may do everything in the admin API.
pub(crate) const ADMIN_ROLE: &str = "admin";

/// The board's routes.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Monitor>: FromRef<S>,
    Arc<Callers>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(board))
        .routes(routes!(history))
}

/// Whether a caller with `scopes`, `roles` and `tenant` may read the board.
pub(crate) fn may_read(scopes: &[String], roles: &[String], tenant: Option<&str>) -> bool {
    let granted =
        scopes.iter().any(|s| s == MONITOR_SCOPE) || roles.iter().any(|r| r == ADMIN_ROLE);
    granted && tenant.is_none()
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn refusal(status: StatusCode, code: &str, description: &str) -> Response {
    no_store(
        (
            status,
            Json(json!({"error": code, "error_description": description})),
        )
            .into_response(),
    )
}

fn unavailable(e: &StoreError) -> Response {
    tracing::warn!(error = %e, "health board: store unavailable");
    let mut response = refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "the store is unavailable",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// The refusal for a caller that may not read the board, if any.
fn refused(caller: Result<Caller<AdminApi>, CallerError>) -> Option<Response> {
    let caller = match caller {
        Ok(caller) => caller,
        Err(refusal) => return Some(refusal.into_response()),
    };
    if may_read(&caller.scopes, &caller.roles, caller.tenant.as_deref()) {
        return None;
    }
    tracing::info!(client_id = %caller.client_id, subject = %caller.subject, "health board refused: no admin:monitor scope or admin role");
    let mut response = refusal(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        "requires the admin:monitor scope or the admin role, without a tenant",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer error="insufficient_scope", scope="admin:monitor""#),
    );
    Some(response)
}

/// The last failed check.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct LastFailure {
    /// When.
    #[schema(value_type = String)]
    at: DateTime<Utc>,
    /// Why (no answer, a timeout, the HTTP status, the reported status).
    reason: Option<String>,
}

/// One target on the board.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TargetView {
    /// The target's name.
    name: String,
    /// The URL polled (credentials and query never shown).
    url: String,
    /// Seconds between checks.
    interval_seconds: i64,
    /// The current state (changes after `failures_before_alert` equal results).
    state: TargetState,
    /// Since when.
    #[schema(value_type = Option<String>)]
    since: Option<DateTime<Utc>>,
    /// The last check.
    #[schema(value_type = Option<String>)]
    checked_at: Option<DateTime<Utc>>,
    /// The last check's latency.
    latency_ms: Option<i64>,
    /// Share of checks over the last 24 hours that did not fail (0 to 1); none without checks.
    uptime_24h: Option<f64>,
    /// The same over the last 7 days (as far as the retention keeps results).
    uptime_7d: Option<f64>,
    /// The last failed check.
    last_failure: Option<LastFailure>,
}

/// The board.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Board {
    /// Every configured target, in configuration order.
    targets: Vec<TargetView>,
}

fn at(millis: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis)
}

#[allow(clippy::cast_precision_loss, reason = "a ratio of counts")]
fn ratio((total, good): (i64, i64)) -> Option<f64> {
    (total > 0).then(|| good as f64 / total as f64)
}

async fn view(
    monitor: &Monitor,
    target: &super::Target,
    row: Option<&StateRow>,
) -> Result<TargetView, StoreError> {
    let now = monitor.clock.now();
    let since = |delta: TimeDelta| (now - delta).timestamp_millis();
    let day = store::availability(&monitor.store, &target.name, since(TimeDelta::days(1))).await?;
    let week = store::availability(&monitor.store, &target.name, since(TimeDelta::days(7))).await?;
    Ok(TargetView {
        name: target.name.clone(),
        url: redact(&target.url),
        interval_seconds: target.interval.num_seconds(),
        state: row.map_or(TargetState::Unknown, |r| r.debounce.state),
        since: row.and_then(|r| at(r.changed_at)),
        checked_at: row.and_then(|r| at(r.checked_at)),
        latency_ms: row.map(|r| r.latency_ms),
        uptime_24h: ratio(day),
        uptime_7d: ratio(week),
        last_failure: row.and_then(|r| {
            Some(LastFailure {
                at: at(r.last_failure_at?)?,
                reason: r.last_failure_reason.clone(),
            })
        }),
    })
}

/// Every monitored target: its state, uptime and last failure.
#[utoipa::path(
    get,
    path = "/admin/v1/monitor",
    tag = "admin",
    responses(
        (status = 200, description = "The health board", body = Board),
        (status = 401, description = "No or invalid bearer token for gha-auth-admin (RFC 6750)"),
        (status = 403, description = "Neither the admin:monitor scope nor the admin role"),
        (status = 503, description = "The store is unavailable"),
    ),
)]
pub(crate) async fn board(
    State(monitor): State<Arc<Monitor>>,
    caller: Result<Caller<AdminApi>, CallerError>,
) -> Response {
    if let Some(refusal) = refused(caller) {
        return refusal;
    }
    let rows = match store::states(&monitor.store).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(&e),
    };
    let mut targets = Vec::new();
    for target in &monitor.targets {
        let row = rows.iter().find(|r| r.target == target.name);
        match view(&monitor, target, row).await {
            Ok(view) => targets.push(view),
            Err(e) => return unavailable(&e),
        }
    }
    no_store(Json(Board { targets }).into_response())
}

/// `?limit=`: how many results.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct HistoryQuery {
    /// Most results returned, newest first (default 100, at most 1000).
    limit: Option<u32>,
}

/// One check.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CheckView {
    /// When.
    #[schema(value_type = Option<String>)]
    checked_at: Option<DateTime<Utc>>,
    /// `up`, `degraded` or `down` (this check alone, before debouncing).
    outcome: TargetState,
    /// How long it took.
    latency_ms: i64,
    /// Why it failed or was degraded.
    reason: Option<String>,
}

/// A target's recent checks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct History {
    /// The target.
    name: String,
    /// Newest first.
    results: Vec<CheckView>,
}

/// A target's recent checks, newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/monitor/{name}/history",
    tag = "admin",
    params(("name" = String, Path, description = "The target's name"), HistoryQuery),
    responses(
        (status = 200, description = "The target's recent checks", body = History),
        (status = 401, description = "No or invalid bearer token for gha-auth-admin (RFC 6750)"),
        (status = 403, description = "Neither the admin:monitor scope nor the admin role"),
        (status = 404, description = "No such target"),
        (status = 503, description = "The store is unavailable"),
    ),
)]
pub(crate) async fn history(
    State(monitor): State<Arc<Monitor>>,
    Path(name): Path<String>,
    Query(query): Query<HistoryQuery>,
    caller: Result<Caller<AdminApi>, CallerError>,
) -> Response {
    if let Some(refusal) = refused(caller) {
        return refusal;
    }
    if !monitor.targets.iter().any(|t| t.name == name) {
        return refusal(StatusCode::NOT_FOUND, "not_found", "no such target");
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let results = match store::history(&monitor.store, &name, limit).await {
        Ok(results) => results,
        Err(e) => return unavailable(&e),
    };
    let results = results
        .into_iter()
        .map(|r| CheckView {
            checked_at: at(r.checked_at),
            outcome: r.outcome,
            latency_ms: r.latency_ms,
            reason: r.reason,
        })
        .collect();
    no_store(Json(History { name, results }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Scopes, roles, tenant, and whether the board may be read.
    type Case = (
        &'static [&'static str],
        &'static [&'static str],
        Option<&'static str>,
        bool,
    );

    #[test]
    fn who_may_read_the_board() {
        let cases: &[Case] = &[
            (&["admin:monitor"], &[], None, true),
            (&[], &["admin"], None, true),
            (&["admin:monitor", "jobs:read"], &["user"], None, true),
            (&[], &[], None, false),
            (&["admin:clients"], &["user"], None, false),
            (&["admin:monitorx"], &["administrator"], None, false),
            (&["admin:monitor"], &[], Some("acme"), false),
            (&[], &["admin"], Some("acme"), false),
        ];
        for (scopes, roles, tenant, expected) in cases {
            assert_eq!(
                may_read(&strings(scopes), &strings(roles), *tenant),
                *expected,
                "{scopes:?} {roles:?} {tenant:?}"
            );
        }
    }
}
