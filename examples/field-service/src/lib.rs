//! The field-service jobs API: what an MFS API looks like behind `gha-auth-middleware`.
//!
//! | route | who |
//! |---|---|
//! | `GET /jobs` | a token with `jobs:read`; lists the caller's tenant's jobs |
//! | `POST /jobs` | a token with `jobs:write`; creates a job in the caller's tenant |
//! | `POST /epicor/job-updates` | the Epicor link key (`x-api-key`), or a token with `jobs:epicor-update`; upserts a job by its Epicor job number |
//! | `GET /HealthCheck` | anyone; readiness: key-set, revocation-feed and link-key freshness |
//! | `GET /HealthCheck/live` | anyone; liveness: 200 whenever the process serves |
//! | `GET /metrics` | anyone (bind to an internal interface); Prometheus text |
//!
//! Everything is tenant-scoped: the tenant comes from the principal (the token's `tenant`
//! claim, or the tenant configured for the link key), never from the request.
//!
//! The binary (`src/main.rs`) wires this to a running `gha-auth serve`; tests call [`app`].
//! [`link_keys`] builds the source of valid Epicor link keys from the authority.

pub mod link_keys;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, COOKIE, HeaderName};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use gha_auth::SharedClock;
use gha_auth_middleware::metrics::metrics_route;
use gha_auth_middleware::{AuthLayer, Principal, Requirement, Tenant, health_check_route};
use serde::{Deserialize, Serialize};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

/// Scope to list jobs.
pub const SCOPE_READ: &str = "jobs:read";
/// Scope to create jobs.
pub const SCOPE_WRITE: &str = "jobs:write";
/// Scope to post Epicor job updates (held by the Epicor link key).
pub const SCOPE_EPICOR_UPDATE: &str = "jobs:epicor-update";
/// The audience this API accepts by default.
pub const DEFAULT_AUDIENCE: &str = "field-service";

/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024;

/// A field-service job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Id, unique per tenant.
    pub id: u64,
    /// What to do.
    pub title: String,
    /// `open`, `scheduled`, `in_progress`, `completed` or `cancelled`.
    pub status: String,
    /// The Epicor job number, for jobs that came from Epicor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epicor_job: Option<String>,
    /// Who last changed it (the principal's subject).
    pub updated_by: String,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

const STATUSES: [&str; 5] = ["open", "scheduled", "in_progress", "completed", "cancelled"];

/// In-memory jobs, per tenant. Cheap to clone.
#[derive(Debug, Clone)]
pub struct JobStore {
    inner: Arc<Mutex<BTreeMap<String, Vec<Job>>>>,
    clock: SharedClock,
}

impl JobStore {
    /// An empty store reading time from `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            inner: Arc::default(),
            clock,
        }
    }

    /// The jobs of `tenant`.
    pub fn list(&self, tenant: &str) -> Vec<Job> {
        let jobs = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.get(tenant).cloned().unwrap_or_default()
    }

    fn insert(&self, tenant: &str, title: String, epicor_job: Option<String>, by: &str) -> Job {
        let mut jobs = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let list = jobs.entry(tenant.to_owned()).or_default();
        let job = Job {
            id: list.len() as u64 + 1,
            title,
            status: "open".into(),
            epicor_job,
            updated_by: by.to_owned(),
            updated_at: self.clock.now(),
        };
        list.push(job.clone());
        job
    }

    fn upsert_epicor(&self, tenant: &str, update: EpicorUpdate, by: &str) -> (bool, Job) {
        let mut jobs = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let list = jobs.entry(tenant.to_owned()).or_default();
        let now = self.clock.now();
        if let Some(job) = list
            .iter_mut()
            .find(|j| j.epicor_job.as_deref() == Some(&update.job_number))
        {
            job.status = update.status;
            if let Some(title) = update.title {
                job.title = title;
            }
            job.updated_by = by.to_owned();
            job.updated_at = now;
            return (false, job.clone());
        }
        let job = Job {
            id: list.len() as u64 + 1,
            title: update
                .title
                .unwrap_or_else(|| format!("Epicor job {}", update.job_number)),
            status: update.status,
            epicor_job: Some(update.job_number),
            updated_by: by.to_owned(),
            updated_at: now,
        };
        list.push(job.clone());
        (true, job)
    }
}

/// Body of `POST /jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewJob {
    /// What to do (1 to 200 characters).
    pub title: String,
    /// The Epicor job number, if any.
    #[serde(default)]
    pub epicor_job: Option<String>,
}

/// Body of `POST /epicor/job-updates`, as the Epicor data directive sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpicorUpdate {
    /// Epicor's job number (1 to 64 characters).
    pub job_number: String,
    /// The new status (one of the job statuses).
    pub status: String,
    /// A new title, if it changed.
    #[serde(default)]
    pub title: Option<String>,
}

/// A 422 with a short reason (validation errors only; they say nothing about auth).
fn unprocessable(reason: &'static str) -> axum::response::Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(serde_json::json!({ "error": reason })),
    )
        .into_response()
}

async fn list_jobs(State(store): State<JobStore>, Tenant(tenant): Tenant) -> Json<Vec<Job>> {
    Json(store.list(&tenant))
}

async fn create_job(
    State(store): State<JobStore>,
    Tenant(tenant): Tenant,
    principal: Principal,
    Json(new): Json<NewJob>,
) -> axum::response::Response {
    let title = new.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return unprocessable("title must be 1 to 200 characters");
    }
    let job = store.insert(
        &tenant,
        title.to_owned(),
        new.epicor_job,
        principal.subject(),
    );
    tracing::info!(
        tenant,
        job = job.id,
        by = principal.subject(),
        "job created"
    );
    (StatusCode::CREATED, Json(job)).into_response()
}

async fn epicor_job_update(
    State(store): State<JobStore>,
    Tenant(tenant): Tenant,
    principal: Principal,
    Json(update): Json<EpicorUpdate>,
) -> axum::response::Response {
    let number_ok = !update.job_number.is_empty()
        && update.job_number.len() <= 64
        && update.job_number.bytes().all(|b| b.is_ascii_graphic());
    if !number_ok {
        return unprocessable("job_number must be 1 to 64 visible ASCII characters");
    }
    if !STATUSES.contains(&update.status.as_str()) {
        return unprocessable("unknown status");
    }
    if update
        .title
        .as_ref()
        .is_some_and(|t| t.trim().is_empty() || t.chars().count() > 200)
    {
        return unprocessable("title must be 1 to 200 characters");
    }
    let via = principal.as_link_key().map(|k| k.key_id().to_owned());
    let (created, job) = store.upsert_epicor(&tenant, update, principal.subject());
    tracing::info!(tenant, job = job.id, created, link_key = ?via, "Epicor job update");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, Json(job)).into_response()
}

/// CORS for browser pages at `origins` (e.g. the web portal): `GET`/`POST` with a bearer token
/// in `Authorization`, no cookies. Exactly the listed origins, never `*`; none: no CORS at all.
pub fn with_cors(router: Router, origins: &[String]) -> anyhow::Result<Router> {
    if origins.is_empty() {
        return Ok(router);
    }
    let origins = origins
        .iter()
        .map(|o| axum::http::HeaderValue::from_str(o))
        .collect::<Result<Vec<_>, _>>()?;
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::AllowOrigin::list(origins))
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([AUTHORIZATION, axum::http::header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(600));
    Ok(router.layer(cors))
}

/// The whole API: routes with their guards, the auth layer, `/HealthCheck` and (when a
/// Prometheus handle is given) `/metrics` outside it.
pub fn app(
    auth: AuthLayer,
    store: JobStore,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> Router {
    let read = Requirement::scope(SCOPE_READ)
        .token_only()
        .any_tenant()
        .layer();
    let write = Requirement::scope(SCOPE_WRITE)
        .token_only()
        .any_tenant()
        .layer();
    let epicor = Requirement::scope(SCOPE_EPICOR_UPDATE).any_tenant().layer();
    let api = Router::new()
        .route(
            "/jobs",
            get(list_jobs)
                .route_layer(read)
                .merge(axum::routing::post(create_job).route_layer(write)),
        )
        .route(
            "/epicor/job-updates",
            axum::routing::post(epicor_job_update).route_layer(epicor),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(auth.clone())
        .with_state(store);
    let mut router = api.merge(health_check_route(auth.health()));
    if let Some(handle) = metrics {
        router = router.merge(metrics_route(handle));
    }
    router
        .layer(TraceLayer::new_for_http())
        // Before the trace layer: credentials never reach a log line.
        .layer(SetSensitiveRequestHeadersLayer::new([
            AUTHORIZATION,
            COOKIE,
            HeaderName::from_static("x-api-key"),
        ]))
}
