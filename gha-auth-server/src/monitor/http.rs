//! `GET /admin/v1/monitor` and `GET /admin/v1/monitor/{name}/history`: the health board for the
//! console. Routes of the admin API: a bearer token of this authority for the audience
//! `api_auth.admin_audience` (default `gha-auth-admin`, [`Caller<AdminApi>`]), allowed by
//! [`crate::admin::decide`] for the area `Monitor` (the scope `admin:monitor`, or the user role
//! `admin`; never a tenant's administrator: the board is the whole authority's), and every call
//! audited as `admin.api_call` with its actor.

use std::sync::Arc;

use axum::extract::{FromRef, Path, Query, State};
use axum::response::Response;
use chrono::{DateTime, TimeDelta, Utc};
use gha_auth::outbound::redact;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Monitor;
use super::machine::TargetState;
use super::store::{self, StateRow};
use crate::admin::decide::{Area, Target};
use crate::admin::{Admin, AdminError, Call};
use crate::caller::{AdminApi, Caller, Callers};
use crate::store::StoreError;

/// The board's routes.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Monitor>: FromRef<S>,
    Arc<Admin>: FromRef<S>,
    Arc<Callers>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(board))
        .routes(routes!(history))
}

fn unavailable(e: &StoreError) -> AdminError {
    AdminError::Unavailable(format!("health board: {e}"))
}

fn json_of<T: Serialize>(value: &T) -> Result<serde_json::Value, AdminError> {
    serde_json::to_value(value).map_err(|e| AdminError::Internal(e.to_string()))
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
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The health board", body = Board),
        (status = 401, description = "No or invalid bearer token for gha-auth-admin (RFC 6750)"),
        (status = 403, description = "Neither the admin:monitor scope nor the admin role"),
        (status = 503, description = "The store is unavailable"),
    ),
)]
pub(crate) async fn board(
    State(monitor): State<Arc<Monitor>>,
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
) -> Response {
    let call = Call::new(&admin, &caller, Area::Monitor, "monitor.board", "monitor");
    let result = async {
        call.allow(Target::Area, false)?;
        let rows = store::states(&monitor.store)
            .await
            .map_err(|e| unavailable(&e))?;
        let mut targets = Vec::new();
        for target in &monitor.targets {
            let row = rows.iter().find(|r| r.target == target.name);
            targets.push(
                view(&monitor, target, row)
                    .await
                    .map_err(|e| unavailable(&e))?,
            );
        }
        json_of(&Board { targets })
    }
    .await;
    call.finish(result).await
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
    security(("admin_token" = [])),
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
    State(admin): State<Arc<Admin>>,
    Path(name): Path<String>,
    Query(query): Query<HistoryQuery>,
    caller: Caller<AdminApi>,
) -> Response {
    let call = Call::new(&admin, &caller, Area::Monitor, "monitor.history", &name);
    let result = async {
        call.allow(Target::Area, false)?;
        if !monitor.targets.iter().any(|t| t.name == name) {
            return Err(AdminError::NotFound("no such target".to_owned()));
        }
        let limit = query.limit.unwrap_or(100).clamp(1, 1000);
        let results = store::history(&monitor.store, &name, limit)
            .await
            .map_err(|e| unavailable(&e))?
            .into_iter()
            .map(|r| CheckView {
                checked_at: at(r.checked_at),
                outcome: r.outcome,
                latency_ms: r.latency_ms,
                reason: r.reason,
            })
            .collect();
        json_of(&History {
            name: name.clone(),
            results,
        })
    }
    .await;
    call.finish(result).await
}
